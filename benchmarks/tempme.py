"""TempMe-style token merging: encoder cost with and without merging (one run, ratios in one table).

    .venv/bin/python benchmarks/tempme.py [--frames 12] [--videos 4] [--repeats 3]

For the full profile's ViT-B-32 at 224 px (random weights: the cost of trained ones) with the full
profile's merge schedule (its ``extract`` section: TempMe's default, frames joined 2-2-3 at blocks
8-9-10, 30% then 10% of tokens) and for the sample profile's ``vtr-tiny-vit`` at 64 px with the
sample's (the same schedule on its 6 blocks), it prints the tokens processed by
the transformer blocks and the CPU time per clip (median of ``--repeats``), merged against
open_clip's per-frame encoding (``Encoder.encode_clips``), and how far the merged clip embedding is from the unmerged one (cosine).
CPU time (``time.process_time``) is used because wall time is unreliable on a shared machine.
"""

from __future__ import annotations

import argparse
import platform

import numpy as np
import torch

from vtr.config import load_profile
from vtr.models.encoders import create_encoder
from vtr.models.tome import MergeConfig, MergeStats, encode_clips_merged, merge_config
from vtr.runtime import median_cpu_and_wall

#: architecture -> (frame size, the profile whose ``extract`` section gives the schedule)
MODELS = {"ViT-B-32": (224, "full"), "vtr-tiny-vit": (64, "sample")}


def run(frames: int, n_videos: int, repeats: int) -> list[dict[str, float | str]]:
    rows = []
    for arch, (size, profile) in MODELS.items():
        schedule = merge_config(load_profile(profile))
        torch.manual_seed(0)
        encoder = create_encoder(arch, "", device="cpu")
        rng = np.random.default_rng(0)
        videos = [rng.integers(0, 255, (frames, size, size, 3), dtype=np.uint8) for _ in range(n_videos)]
        plain_stats, merged_stats = MergeStats(), MergeStats()
        plain = encode_clips_merged(encoder, videos, MergeConfig(), plain_stats)
        merged = encode_clips_merged(encoder, videos, schedule, merged_stats)
        # The alternative is open_clip's own per-frame forward (Encoder.encode_clips), not ours unmerged.
        t_plain, _ = median_cpu_and_wall(lambda e=encoder, v=videos: e.encode_clips(v), repeats)
        t_merged, _ = median_cpu_and_wall(
            lambda e=encoder, v=videos, s=schedule: encode_clips_merged(e, v, s), repeats
        )
        rows.append(
            {
                "model": arch,
                "tokens_plain": plain_stats.total_tokens / n_videos,
                "tokens_merged": merged_stats.total_tokens / n_videos,
                "cpu_ms_plain": 1000 * t_plain / n_videos,
                "cpu_ms_merged": 1000 * t_merged / n_videos,
                "cosine": float(np.mean(np.sum(plain * merged, axis=1))),
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--videos", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    print(f"# TempMe merging, {args.frames} frames, {platform.processor() or platform.machine()}, "
          f"{torch.get_num_threads()} threads, CPU time per clip\n")  # fmt: skip
    print(
        "| model | tokens per clip (plain → merged) | token ratio | CPU ms per clip (plain → merged) | speed-up | cosine to unmerged |"
    )
    print("|---|---|---|---|---|---|")
    for r in run(args.frames, args.videos, args.repeats):
        print(
            f"| {r['model']} | {r['tokens_plain']:.0f} → {r['tokens_merged']:.0f} | "
            f"{r['tokens_merged'] / r['tokens_plain']:.2f} | {r['cpu_ms_plain']:.1f} → {r['cpu_ms_merged']:.1f} | "
            f"{r['cpu_ms_plain'] / r['cpu_ms_merged']:.2f}x | {r['cosine']:.3f} |"
        )


if __name__ == "__main__":
    main()
