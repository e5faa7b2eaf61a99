"""Frame-sampling speed on the real sample videos; prints markdown tables (ratios from one run).

    .venv/bin/python benchmarks/decode.py [--repeats 3] [--sizes 8 12 32]

Compares, per video and number of frames n (uniform strategy, 224 x 224 output):
  * vtr      -- ``vtr.video.sample_frames``: seek to the keyframe before each wanted frame, decode
                forward, convert only the wanted frames (PyAV, bicubic swscale resize + crop);
  * naive    -- decode every frame to RGB, keep them all, then pick the n and resize them;
  * torchcodec (when it loads) -- ``VideoDecoder.get_frames_at`` (exact seek mode), same resize
                as naive;
  * ffmpeg   -- ``ffmpeg -i file -f null -`` (imageio-ffmpeg's binary): a full decode with no
                conversion, the ceiling for any approach that decodes every frame.
Then the decoder threading inside one file and a thread pool across files (``sample_many``), and a
cache hit. Times are the median of ``--repeats`` runs.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import av
import imageio_ffmpeg
import numpy as np
import torch
import torch.nn.functional as F

from vtr.data.real_videos import real_videos
from vtr.runtime import median_seconds
from vtr.video import probe, sample_frames, sample_indices, sample_many

SIZE = 224


def torch_resize_crop(frames: torch.Tensor) -> np.ndarray:
    """(n, H, W, 3) uint8 -> (n, SIZE, SIZE, 3): shorter side to SIZE (bicubic, antialias), centre crop."""
    x = frames.permute(0, 3, 1, 2).float()
    h, w = x.shape[-2:]
    scale = SIZE / min(h, w)
    new_h, new_w = max(SIZE, round(h * scale)), max(SIZE, round(w * scale))
    x = F.interpolate(x, size=(new_h, new_w), mode="bicubic", antialias=True, align_corners=False)
    top, left = round((new_h - SIZE) / 2), round((new_w - SIZE) / 2)
    x = x[..., top : top + SIZE, left : left + SIZE].clamp(0, 255).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).numpy()


def naive(path: Path, n: int) -> np.ndarray:
    with av.open(str(path)) as container:
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    picked = np.stack([frames[i] for i in sample_indices(len(frames), n)])
    return torch_resize_crop(torch.from_numpy(picked))


def load_torchcodec() -> tuple[Callable[[Path, int], np.ndarray] | None, str]:
    """The torchcodec sampler, or None and the reason it cannot load."""
    try:
        from torchcodec.decoders import VideoDecoder
    except Exception as exc:  # missing package, or no FFmpeg shared libraries it can load
        return None, f"{type(exc).__name__}: {str(exc).splitlines()[0]}"

    def sample(path: Path, n: int) -> np.ndarray:
        decoder = VideoDecoder(str(path), dimension_order="NHWC", num_ffmpeg_threads=0)
        indices = sample_indices(decoder.metadata.num_frames, n).tolist()
        return torch_resize_crop(decoder.get_frames_at(indices).data)

    try:
        sample(next(iter(real_videos().values())), 1)
    except Exception as exc:
        return None, f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
    return sample, "loaded"


def ffmpeg_full_decode(path: Path) -> None:
    subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(path), "-an", "-f", "null", "-"],
        check=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sizes", type=int, nargs="+", default=[8, 12, 32])
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    videos = real_videos()
    tc_sample, tc_status = load_torchcodec()

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, ", end="")
    print(
        f"PyAV {av.__version__} (FFmpeg {'.'.join(map(str, av.library_versions['libavcodec']))} libavcodec)"
    )
    print(f"torchcodec: {tc_status}; times: median of {args.repeats}; output {SIZE}x{SIZE}, uniform\n")

    header = "| video | size | frames | n | vtr videos/s | vtr frames/s | naive videos/s | vtr / naive |"
    rule = "|---|---|---:|---:|---:|---:|---:|---:|"
    if tc_sample:
        header += " torchcodec videos/s | vtr / torchcodec |"
        rule += "---:|---:|"
    header += " ffmpeg full decode, frames/s | vtr videos/s / ffmpeg videos/s |"
    rule += "---:|---:|"
    print(header)
    print(rule)
    for name, path in videos.items():
        info = probe(path)
        t_ffmpeg = median_seconds(lambda p=path: ffmpeg_full_decode(p), args.repeats)
        for n in args.sizes:
            t_vtr = median_seconds(lambda p=path, n=n: sample_frames(p, n, size=SIZE), args.repeats)
            t_naive = median_seconds(lambda p=path, n=n: naive(p, n), args.repeats)
            row = (
                f"| {name} | {info.width}x{info.height} | {info.frame_count} | {n} | {1 / t_vtr:.1f} | "
                f"{n / t_vtr:.0f} | {1 / t_naive:.1f} | {t_naive / t_vtr:.1f}x |"
            )
            if tc_sample:
                t_tc = median_seconds(lambda p=path, n=n: tc_sample(p, n), args.repeats)
                row += f" {1 / t_tc:.1f} | {t_tc / t_vtr:.2f}x |"
            row += f" {info.frame_count / t_ffmpeg:.0f} | {t_ffmpeg / t_vtr:.1f}x |"
            print(row, flush=True)

    paths = list(videos.values()) * 2
    print(f"\nThreading, {len(paths)} videos, n=8 (videos/s):\n")
    print("| libavcodec threads per file | one file at a time | 2 files at once (thread pool) |")
    print("|---|---:|---:|")
    for thread_type in ("NONE", "AUTO"):
        cells = []
        for workers in (1, 2):

            def batch(w: int = workers, t: str = thread_type) -> None:
                with ThreadPoolExecutor(max_workers=w) as pool:
                    list(pool.map(lambda p: sample_frames(p, 8, size=SIZE, decoder_threads=t), paths))

            cells.append(f"{len(paths) / median_seconds(batch, args.repeats):.1f}")
        print(f"| {thread_type} | {' | '.join(cells)} |", flush=True)
    t = median_seconds(lambda: sample_many(paths, 8, size=SIZE, progress=False), args.repeats)
    print(f"\n`sample_many` defaults ({os.cpu_count()} workers, NONE): {len(paths) / t:.1f} videos/s")

    with tempfile.TemporaryDirectory() as cache:
        sample_many(paths, 8, size=SIZE, cache=cache, progress=False)
        t = median_seconds(
            lambda: sample_many(paths, 8, size=SIZE, cache=cache, progress=False), args.repeats
        )
    print(f"\nCache hits (n=8): {len(paths) / t:.0f} videos/s")


if __name__ == "__main__":
    main()
