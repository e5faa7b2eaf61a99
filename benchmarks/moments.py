"""Moment inference per video on CPU (features + model): a sample long video and a 150 s video.

    .venv/bin/python benchmarks/moments.py [--repeats 3] [--profile sample] [--threads 2]

Videos: the first long video of the profile's sample world, and a 150 s video (QVHighlights'
length) written once with :func:`vtr.video.write_video` into a temporary folder (moving shapes on
noise, 8 fps, 64 x 64 like the sample world). The encoder is the profile's (vtr-tiny on the sample
profile, its checkpoint built on first use). Per video and model, each the median of ``--repeats``
runs after a warm-up, in CPU time of this process (``time.process_time``; wall time beside it, noisy
on a shared machine):

* *features*: decoding ``frames_per_clip`` frames per clip and encoding them (no cache);
* *model*: :meth:`MomentPredictor.predict` for one query on those features (query encoding, the
  model over sliding windows of ``moments.max_clips`` clips, window decoding), for zero-shot and
  randomly initialised temporal and span models of the profile's size (speed does not depend on
  training).
"""

from __future__ import annotations

import argparse
import platform
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vtr.config import load_profile
from vtr.experiments.moments.train import model_kwargs
from vtr.models.encoders import load_encoder
from vtr.moments.features import video_clip_features
from vtr.moments.models import create_moment_model
from vtr.moments.predictor import MomentPredictor
from vtr.runtime import median_cpu_and_wall
from vtr.video import probe, write_video


def long_video(path: Path, seconds: int = 150, fps: int = 8, size: int = 64) -> Path:
    """A ``seconds``-long video: a bright square sweeping over dim noise, so frames differ."""
    rng = np.random.default_rng(0)
    n = seconds * fps
    frames = rng.integers(0, 60, size=(n, size, size, 3), dtype=np.uint8)
    for i in range(n):
        x = int((i % (4 * fps)) / (4 * fps) * (size - 12))
        frames[i, 20:32, x : x + 12] = 230
    write_video(path, frames, fps)
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--profile", default="sample")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from vtr.config import parse_override

    cfg = load_profile(args.profile, overrides=dict(parse_override(t) for t in args.overrides))
    cfg.device = "cpu"
    encoder = load_encoder(cfg, device="cpu")
    m = cfg.moments
    from vtr.data.synthetic.world import sample_world

    sample = sorted(sample_world(cfg).long_videos_dir.glob("*.mp4"))[0]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        videos = {f"sample {sample.name}": sample, "150 s": long_video(Path(tmp) / "long150.mp4")}
        for label, path in videos.items():
            duration = probe(path).duration

            def features(p: Path = path) -> Any:
                return video_clip_features(encoder, p, m.clip_len, frames_per_clip=m.frames_per_clip)

            cpu, wall = median_cpu_and_wall(features, args.repeats)
            feats = features()
            rows.append((label, f"{duration:.0f}", feats.n_clips, "features", cpu, wall))
            for name in ("zero_shot", "temporal", "span"):
                torch.manual_seed(0)
                kwargs = model_kwargs(cfg, name, encoder.output_dim)
                predictor = MomentPredictor(
                    encoder, create_moment_model(name, **kwargs), model_name=name, model_kwargs=kwargs,
                    clip_len=m.clip_len, frames_per_clip=m.frames_per_clip,
                )  # fmt: skip
                cpu, wall = median_cpu_and_wall(
                    lambda pr=predictor, f=feats: pr.predict("a white square moves right", f), args.repeats
                )
                rows.append((label, f"{duration:.0f}", feats.n_clips, f"model: {name}", cpu, wall))
    print(f"# moment inference per video, CPU ({platform.processor() or platform.machine()}, "
          f"{args.threads} torch threads), profile {cfg.name}: {cfg.model.arch}, clips of {m.clip_len:g} s, "
          f"{m.frames_per_clip} frames per clip, window {m.max_clips} clips; median of {args.repeats}\n")  # fmt: skip
    print("| video | seconds | clips | stage | CPU s | wall s |")
    print("|---|---:|---:|---|---:|---:|")
    for label, seconds, clips, stage, cpu, wall in rows:
        print(f"| {label} | {seconds} | {clips} | {stage} | {cpu:.3f} | {wall:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
