"""Video I/O: probing, seek-based frame sampling (PyAV), a frame cache, and writing H.264 files.

    info = probe("clip.mp4")                       # VideoInfo(duration, fps, frame_count, ...)
    frames = sample_frames("clip.mp4", 8)          # (8, 224, 224, 3) uint8 RGB, uniform
    frames = sample_frames("long.mp4", 8, strategy="random", seed=3, start=12.0, end=19.5)
    good, errors = sample_many(paths, 8, cache=True)   # never raises on a bad file

How frames are addressed. Frame ``i`` is the i-th frame in presentation order: exactly the i-th
frame of a plain sequential decode (``container.decode(video=0)``), for constant and variable frame
rates alike. One demux pass (packets only, no decoding) lists the video packets in decode order with
their pts and keyframe flags; the frame count is the number of packets shown (edit-list discards
excluded), never the header's estimate. A ``start``/``end`` window is cut by the frames' real
timestamps (seconds from the first frame).

Decoding only what the sample needs. Where the container stores presentation timestamps
(:data:`PTS_DEMUXERS`: mp4/mov, Matroska/WebM, MPEG-TS/PS, FLV, NUT) frame ``i`` is the packet with
the i-th smallest pts. Each wanted frame is decoded from the last keyframe before it in decode order
(one shown no later than it, so an open GOP's leading pictures start one keyframe earlier); wanted
frames that share a keyframe share one run, and no packet is decoded twice. While a run scans
towards a wanted frame the decoder skips non-reference frames (``skip_frame`` NONREF: they cannot
matter to later frames), and decodes the wanted frames and the keyframe in full (DEFAULT); only
wanted frames are converted to RGB. So the work is keyframe -> reference chain -> target. For
H.264 the chain is read from the slice headers during the demux pass (:mod:`vtr.h264`): the
pictures no wanted frame depends on are not sent to the decoder at all -- non-reference frames, and
references nothing wanted uses, e.g. the middle B-frame of each x264 B-pyramid group that P-frames
do not use; where that reader cannot model a stream every reference is decoded. The packet index (and that graph) of the last
:data:`INDEX_CACHE_FILES` files is kept in memory by content fingerprint, so sampling a file again
skips the demux pass. The
output is checked as it comes: a run must start with an intra frame at the keyframe's pts (an index
that flags a non-keyframe is caught, and the keyframe before it used) and rise in pts.

Where timestamps cannot be trusted -- AVI and raw streams, which store no pts (with B-frames the pts
libavformat guesses are decode positions), duplicate or missing pts, or output that contradicts
them -- frames are decoded forward from the start and counted in output order, which is the
definition itself. Tests compare every strategy frame by frame with a full decode on real and
generated files of each kind (tests/test_video.py).

Resampling. Each wanted frame is resized by libswscale (inside PyAV) so that its shorter side is
``size``, with the bicubic filter (swscale widens the filter when shrinking, so it anti-aliases,
as PIL's bicubic does in CLIP preprocessing), then centre-cropped to ``size`` x ``size`` with
torchvision's offset rounding. YUV to RGB conversion happens in the same swscale call.

Errors. A packet cut short by the end of the file, or an mp4 whose index lists more frames than the
file holds (a truncated download whose index survived), raises VideoDecodeError rather than silently
sampling the part that survived. Clips shorter than ``n`` frames repeat frames. :func:`probe` reads
the header only; its ``frame_count`` is the header's estimate.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import math
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TypeVar

import av
import numpy as np
from tqdm.auto import tqdm

from vtr.atomic import atomic_path
from vtr.h264 import Picture, ReferenceTracker, dependency_closure
from vtr.keys import cache_root
from vtr.paths import project_root
from vtr.progress import show_progress
from vtr.registry import Registry

PathLike = str | os.PathLike[str]
IndexFn = Callable[[int, int, np.random.Generator], np.ndarray]
AggregateFn = Callable[[np.ndarray, int], np.ndarray]
T = TypeVar("T")

# Demuxers whose packets carry the presentation timestamps stored in the file (mp4/mov composition
# offsets, Matroska block times, MPEG PES PTS, FLV composition times, NUT). AVI and raw elementary
# streams store none: the pts libavformat gives their packets are guesses from the decode order,
# wrong wherever frames are reordered (B-frames), so those files are decoded forward and counted.
PTS_DEMUXERS = frozenset({"mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm", "mpegts", "mpeg", "flv", "nut"})
# When a demuxer's seek lands after the keyframe asked for, ask again this much earlier (doubling).
SEEK_BACKOFF_SECONDS = 1.0
# The ``mean`` strategy averages this many uniformly spaced frames (or every frame of a shorter
# clip, or ``n`` if larger): a dense sample gives the same mean as all frames to within rounding
# for natural video, without decoding every frame of a long file.
MEAN_SAMPLE_FRAMES = 32
# ``dropout`` drops this fraction of frames at random before sampling uniformly from the rest.
DROPOUT_FRACTION = 0.3
# Bump when the decoding or resampling changes, so old cache entries are not reused.
CACHE_VERSION = 2
# The content fingerprint hashes the file size plus its first and last FINGERPRINT_BYTES.
FINGERPRINT_BYTES = 1 << 20
# The packet index of the files read last (by content fingerprint) is kept in memory, so sampling a
# file again (the next epoch, another strategy) skips the demux pass and the slice-header reading:
# at most this many files and this many packets in all (about 0.5 KB each: ~250 MB, 5 h at 25 fps).
INDEX_CACHE_FILES = 64
INDEX_CACHE_PACKETS = 500_000
# libavcodec threading inside one file: "AUTO" (frame + slice threads, one per core) is fastest for
# one file at a time; when several files decode in parallel (sample_many's thread pool, DataLoader
# workers) "NONE" is faster, as the cores are already busy (benchmarks/decode.py measures both).
DECODER_THREAD_TYPES = ("NONE", "SLICE", "FRAME", "AUTO")
# libavcodec's thread count for SLICE/FRAME/AUTO: 0 lets it choose (for frame threads one per core plus
# one). Frame threads hold frames back for reordering, which the short runs of a sample flush often.
DECODER_THREAD_COUNT = 0


class VideoDecodeError(RuntimeError):
    """A video that cannot be read: missing, empty, truncated, corrupt or not a video.

    The message names the file and the reason; ``path`` and ``reason`` are also attributes.
    ``transient`` tells a failure of the machine from one of the file: True when the cause is an
    OS error (I/O error, no space, permission, too many open files, ...) or running out of
    memory, which the same read may not meet next time; False for what the bytes themselves say
    (invalid data, no video stream, truncated). Callers may remember only non-transient failures
    (:mod:`vtr.embeddings` caches them). It is read from the exception chained with
    ``raise ... from cause`` unless given.
    """

    def __init__(self, path: PathLike, reason: str, *, transient: bool | None = None) -> None:
        self.path = os.fspath(path)
        self.reason = reason
        self._transient = transient
        super().__init__(f"{self.path}: {reason}")

    @property
    def transient(self) -> bool:
        if self._transient is not None:
            return self._transient
        cause = self.__cause__
        while cause is not None:
            # PyAV raises errno failures as OSError subclasses (av.error.OSError for EIO and ENOSPC,
            # av.error.PermissionError, ...); bad data is InvalidDataError (a ValueError) or EOFError.
            if isinstance(cause, OSError | MemoryError):
                return True
            cause = cause.__cause__ or cause.__context__
        return False


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe` reads from a container (no decoding beyond the header)."""

    path: str
    duration: float  # seconds
    fps: float  # average frame rate
    frame_count: int
    codec: str
    width: int
    height: int


# --------------------------------------------------------------------------------------------
# Strategies: which frame indices to take
# --------------------------------------------------------------------------------------------

#: The sampling strategies by name (a :class:`vtr.registry.Registry`: ``list(STRATEGIES)``, ``name in
#: STRATEGIES``); each entry's ``aggregate`` metadata, when set, reduces the decoded frames to ``n``.
STRATEGIES: Registry[IndexFn] = Registry("sampling strategy")


def register_strategy(
    name: str, *, aggregate: AggregateFn | None = None, replace: bool = False
) -> Callable[[IndexFn], IndexFn]:
    """Register ``fn(frame_count, n, rng) -> sorted int indices`` under ``name`` (a decorator).

    ``aggregate(frames, n) -> (n, H, W, 3)``, when given, turns the decoded frames into the result
    (the ``mean`` strategy); otherwise the function must return exactly ``n`` indices. A taken
    name is an error unless ``replace=True``.
    """
    return STRATEGIES.register(name, replace=replace, aggregate=aggregate)


def list_strategies() -> list[str]:
    """The registered strategy names, in registration order (what ``video.strategy`` may be)."""
    return STRATEGIES.names()


def strategy_aggregate(strategy: str) -> AggregateFn | None:
    """The function that reduces ``strategy``'s decoded frames to ``n`` frames, or None."""
    return STRATEGIES.entry(strategy).meta.get("aggregate")


def sample_indices(frame_count: int, n: int, strategy: str = "uniform", seed: int = 0) -> np.ndarray:
    """The sorted frame indices (int64, within ``[0, frame_count)``) that ``strategy`` takes.

    Deterministic for a given ``seed``. For ``mean`` these are the frames that are averaged
    (their count is not ``n``). Clips with fewer frames than ``n`` repeat frames.
    """
    if frame_count < 1:
        raise ValueError(f"frame_count must be >= 1, got {frame_count}")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; known: {sorted(STRATEGIES)}")
    fn = STRATEGIES.get(strategy)
    indices = np.asarray(fn(frame_count, n, np.random.default_rng(seed)), dtype=np.int64)
    if indices.size and (indices.min() < 0 or indices.max() >= frame_count):
        raise AssertionError(f"strategy {strategy!r} returned indices outside [0, {frame_count})")
    return np.sort(indices)


@register_strategy("uniform")
def _uniform(frame_count: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """The middle frame of each of ``n`` equal segments: floor((k + 1/2) * F / n), in integers."""
    return (2 * np.arange(n, dtype=np.int64) + 1) * frame_count // (2 * n)


@register_strategy("stride")
def _stride(frame_count: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """Every ``F // n``-th frame from the first: ViCLIP's demo sampling (``frames[::F // n][:n]``).

    A clip with fewer than ``n`` frames (where the demo stops with an error) falls back to ``uniform``.
    """
    if frame_count < n:
        return _uniform(frame_count, n, rng)
    return np.arange(n, dtype=np.int64) * (frame_count // n)


@register_strategy("random")
def _random(frame_count: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """One random frame from each of ``n`` equal segments (training-time jitter).

    Segment k is the time span [k * F / n, (k + 1) * F / n) and holds the frames i that start in it;
    when a clip has fewer frames than n a segment can hold none, and then takes the frame on screen
    where it starts, floor(k * F / n) (so ``sample_indices(3, 8, "random")`` is [0 0 1 1 1 2 2 2]).
    """
    k = np.arange(n + 1, dtype=np.int64)
    first = -(-k * frame_count // n)  # ceil(k * F / n): the first frame starting in segment k
    lo, hi = first[:-1], first[1:]
    empty = hi <= lo
    lo = np.where(empty, k[:-1] * frame_count // n, lo)
    return rng.integers(lo, np.where(empty, lo + 1, hi))


@register_strategy("keyframes")
def _keyframes(frame_count: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """Start, middle and end frames, each repeated for a third of the ``n`` slots."""
    key = np.array([0, (frame_count - 1) // 2, frame_count - 1])
    return key[_uniform(3, n, rng)]


@register_strategy("weighted")
def _weighted(frame_count: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` distinct frames drawn with probability rising linearly with time (later favoured).

    A clip with no more than ``n`` frames has nothing to choose: it falls back to ``uniform``.
    """
    if frame_count <= n:
        return _uniform(frame_count, n, rng)
    weights = np.arange(1, frame_count + 1, dtype=np.float64)
    return rng.choice(frame_count, size=n, replace=False, p=weights / weights.sum())


@register_strategy("dropout")
def _dropout(frame_count: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """Drop ``DROPOUT_FRACTION`` of the frames at random, then take ``uniform`` over the rest."""
    keep = max(1, frame_count - round(DROPOUT_FRACTION * frame_count))
    kept = np.sort(rng.choice(frame_count, size=keep, replace=False))
    return kept[_uniform(keep, n, rng)]


def _mean_frame(frames: np.ndarray, n: int) -> np.ndarray:
    mean = np.rint(frames.mean(axis=0, dtype=np.float64)).astype(np.uint8)
    return np.repeat(mean[None], n, axis=0)


@register_strategy("mean", aggregate=_mean_frame)
def _mean(frame_count: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """The frames averaged by ``mean``: a dense uniform sample, every frame of a short clip."""
    return np.unique(_uniform(frame_count, max(n, MEAN_SAMPLE_FRAMES), rng))


# --------------------------------------------------------------------------------------------
# Probing
# --------------------------------------------------------------------------------------------


def _open(path: Path) -> av.container.InputContainer:
    """Open ``path`` for reading, turning every failure into a VideoDecodeError."""
    if not path.exists():
        raise VideoDecodeError(path, "file not found")
    if path.is_dir():
        raise VideoDecodeError(path, "is a directory, not a video file")
    if path.stat().st_size == 0:
        raise VideoDecodeError(path, "file is empty (0 bytes)")
    try:
        container = av.open(os.fspath(path), mode="r")
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as exc:
        raise VideoDecodeError(path, f"not a readable video container ({exc})") from exc
    if not container.streams.video:
        container.close()
        raise VideoDecodeError(path, "no video stream in the container")
    return container


def _stream_timing(path: Path, container: av.container.InputContainer) -> tuple[Fraction, float, int]:
    """(fps, duration in seconds, estimated frame count) from the header, without decoding."""
    stream = container.streams.video[0]
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    if not rate or rate <= 0:
        raise VideoDecodeError(path, "the video stream declares no frame rate")
    fps = Fraction(rate)
    if stream.duration and stream.time_base:
        duration = float(stream.duration * stream.time_base)
    elif container.duration:
        duration = container.duration / av.time_base
    else:
        duration = 0.0
    from_duration = round(duration * fps)
    header = stream.frames or 0
    # Trust the header count when it agrees with duration * fps (tolerating rounding at the ends);
    # some muxers leave it 0 or write a wrong value, and then the duration is the better estimate.
    if header > 0 and (from_duration == 0 or abs(header - from_duration) <= max(2, 0.02 * from_duration)):
        count = header
    elif from_duration > 0:
        count = from_duration
    else:
        count = sum(1 for packet in container.demux(stream) if packet.pts is not None)
        container.seek(0)
    if count < 1:
        raise VideoDecodeError(path, "the video stream has no frames")
    if duration <= 0:
        duration = float(count / fps)
    return fps, duration, count


def probe(path: PathLike) -> VideoInfo:
    """Duration, frame rate, frame count, codec and size of a video (header only, no decoding)."""
    path = Path(path)
    with _open(path) as container:
        stream = container.streams.video[0]
        fps, duration, count = _stream_timing(path, container)
        return VideoInfo(
            path=os.fspath(path),
            duration=duration,
            fps=float(fps),
            frame_count=count,
            codec=stream.codec_context.name,
            width=stream.codec_context.width,
            height=stream.codec_context.height,
        )


# --------------------------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------------------------


class _Shortfall(Exception):
    """Decoding forward ended before a wanted frame: the file holds ``count`` frames, fewer than counted."""

    def __init__(self, count: int) -> None:
        self.count = count
        super().__init__(count)


class _Untrusted(Exception):
    """The decoder's output contradicts the packet timestamps: decode forward from the start instead."""


class _BadKeyframe(Exception):
    """Decoding from the packet at ``position`` (flagged a keyframe) did not start with an intra frame."""

    def __init__(self, position: int) -> None:
        self.position = position
        super().__init__(position)


@dataclass
class DecodeStats:
    """What one :func:`sample_frames` call did; pass one as ``stats=`` to have it filled in.

    ``mode`` is "seek" (frames found by the stream's timestamps), "forward" (decoded from the start,
    frames counted in output order) or "cache". ``decoded`` counts the frames the decoder
    reconstructed (non-reference frames it skipped are not counted), ``converted`` those converted
    to RGB (the distinct wanted frames), ``seeks`` the demuxer seeks. ``index_cached`` is True when
    the packet index came from memory (:data:`INDEX_CACHE_FILES`, :data:`INDEX_CACHE_PACKETS`) instead
    of a demux pass.
    """

    mode: str = ""
    decoded: int = 0
    converted: int = 0
    seeks: int = 0
    index_cached: bool = False


# content fingerprint -> (pts, dts, key, discard, pictures) of the files read last (LRU order)
_INDEX_CACHE: OrderedDict[str, tuple] = OrderedDict()
_INDEX_LOCK = threading.Lock()


class _Reader:
    """The video packets of one file (one demux pass, no decoding) and the decoding of chosen frames.

    Frame ``i`` is the i-th frame in presentation order, i.e. the i-th frame a plain sequential
    decode returns. Where the container stores presentation timestamps (:data:`PTS_DEMUXERS`) the
    frames are the packets sorted by pts, and each wanted frame is decoded from the last keyframe
    before it; otherwise, or when the decoder's output contradicts the timestamps, frames are
    decoded forward from the start and counted.
    """

    def __init__(
        self, path: Path, container: av.container.InputContainer, threads: str, stats: DecodeStats
    ) -> None:
        self.path, self.container, self.threads, self.stats = path, container, threads, stats
        self.stream = container.streams.video[0]
        self.stream.thread_type = threads
        self.stream.thread_count = DECODER_THREAD_COUNT
        self.fps, _, _ = _stream_timing(path, container)
        self.time_base = self.stream.time_base or Fraction(1, av.time_base)
        self._read_packets()
        usable = [j for j in range(len(self.pts)) if not self.discard[j]]
        pts_known = None not in self.pts and len(set(self.pts)) == len(self.pts)
        self.mode = "seek" if container.format.name in PTS_DEMUXERS and pts_known else "forward"
        if self.mode == "seek":
            self.frame_pts = sorted(self.pts[j] for j in usable)
            self.position = {p: j for j, p in enumerate(self.pts)}
        self.count = len(usable)
        if self.count < 1:
            raise VideoDecodeError(path, "the video stream has no frames")

    def _read_packets(self) -> None:
        """pts, dts, keyframe and discard flags of every video packet, in decode order (cached in memory)."""
        fingerprint = content_fingerprint(self.path)
        with _INDEX_LOCK:
            cached = _INDEX_CACHE.get(fingerprint)
            if cached is not None:
                _INDEX_CACHE.move_to_end(fingerprint)
        if cached is not None:
            pts, dts, key, discard, self.pictures = cached
            self.pts, self.dts, self.key, self.discard = list(pts), list(dts), list(key), list(discard)
            self.stats.index_cached = True
            return
        self._demux_packets()
        entry = (tuple(self.pts), tuple(self.dts), tuple(self.key), tuple(self.discard), self.pictures)
        with _INDEX_LOCK:
            _INDEX_CACHE[fingerprint] = entry
            while len(_INDEX_CACHE) > INDEX_CACHE_FILES or (
                len(_INDEX_CACHE) > 1 and sum(len(e[0]) for e in _INDEX_CACHE.values()) > INDEX_CACHE_PACKETS
            ):
                _INDEX_CACHE.popitem(last=False)

    def _demux_packets(self) -> None:
        """One demux pass: the packet flags and timestamps, and the H.264 reference graph."""
        self.pts: list[int | None] = []
        self.dts: list[int | None] = []
        self.key: list[bool] = []
        self.discard: list[bool] = []
        context = self.stream.codec_context
        tracker = ReferenceTracker(context.extradata) if context.name == "h264" else None
        for packet in self.container.demux(self.stream):
            if packet.size == 0:  # PyAV's end-of-stream flush packet
                continue
            if packet.is_corrupt:  # cut inside a packet: the file is truncated
                raise VideoDecodeError(self.path, f"truncated or corrupt data at packet pts {packet.pts}")
            self.pts.append(packet.pts)
            self.dts.append(packet.dts)
            self.key.append(packet.is_keyframe)
            self.discard.append(packet.is_discard)  # decoded (a reference) but not shown: edit lists
            if tracker is not None:
                tracker.add(memoryview(packet))
        # Which packet each H.264 picture can reference (slice headers only): None for other codecs
        # or streams the reader does not model, and then every reference frame is decoded.
        self.pictures: list[Picture] | None = tracker.pictures if tracker is not None else None
        # An mp4's header lists every sample; when the index survived a cut, some of them are gone.
        listed = (self.stream.frames or 0) if self.container.format.name.startswith("mov") else 0
        if listed > len(self.pts):
            raise VideoDecodeError(
                self.path, f"truncated: the header lists {listed} frames, the file holds {len(self.pts)}"
            )

    def first_at(self, seconds: float) -> int:
        """Index of the first frame shown at or after ``seconds`` from the first frame (count if none)."""
        if self.mode == "seek":
            ticks = self.frame_pts[0] + round(seconds / self.time_base)
            return bisect.bisect_left(self.frame_pts, ticks)
        return min(self.count, math.ceil(round(seconds * self.fps, 6)))

    def frames_at(self, indices: Sequence[int], convert: Callable[[av.VideoFrame], T]) -> list[T]:
        """``convert`` of frames ``indices`` (sorted, distinct), each converted once as it is decoded."""
        if self.mode == "seek":
            try:
                return self._by_timestamps(indices, convert)
            except _Untrusted:
                self.mode = "forward"
        return self._forward(indices, convert)

    # ------------------------------------------------------------------ decoding by timestamps

    def _by_timestamps(self, indices: Sequence[int], convert: Callable[[av.VideoFrame], T]) -> list[T]:
        found: dict[int, T] = {}
        wanted = [self.frame_pts[i] for i in indices]
        while len(found) < len(wanted):
            try:
                for start, last, group in self._groups([p for p in wanted if p not in found]):
                    self._decode_group(start, last, group, convert, found)
            except _BadKeyframe as bad:  # a packet flagged key that is not: start from the one before
                self.key[bad.position] = False
        return [found[p] for p in wanted]

    def _groups(self, wanted: list[int]) -> list[tuple[int, int, set[int]]]:
        """(first, last packet position, wanted pts) per decode run, in decode order.

        A frame's run starts at the last keyframe at or before it in decode order that is not shown
        after it (an open GOP's leading pictures need the keyframe before theirs); runs that overlap
        are merged, so no packet is decoded twice.
        """
        keys = [j for j, key in enumerate(self.key) if key]
        runs = []
        for p in wanted:
            last = self.position[p]
            k = bisect.bisect_right(keys, last) - 1
            while k >= 0 and self.pts[keys[k]] > p:
                k -= 1
            if k < 0:
                raise _Untrusted()  # no keyframe to start from
            runs.append((keys[k], last, p))
        groups: list[tuple[int, int, set[int]]] = []
        for first, last, p in sorted(runs):
            if groups and first <= groups[-1][1]:
                groups[-1] = (groups[-1][0], max(groups[-1][1], last), groups[-1][2] | {p})
            else:
                groups.append((first, last, {p}))
        return groups

    def _decode_group(
        self, first: int, last: int, wanted: set[int], convert: Callable[[av.VideoFrame], T], found: dict
    ) -> None:
        """Decode packets ``first..last`` (keyframe to last wanted frame) and convert the wanted frames.

        Non-reference frames that are not wanted are skipped by the decoder (skip_frame NONREF);
        wanted frames and the keyframe are decoded in full. The output must start with the keyframe
        as an intra frame and rise in pts; anything else means the flags or timestamps lie.
        """
        context = self.stream.codec_context
        key_pts = self.pts[first]
        needed = None
        if self.pictures is not None and len(self.pictures) == len(self.pts):
            needed = dependency_closure(self.pictures, [self.position[p] for p in wanted])
        # A keyframe an edit list hides (a clip cut without re-encoding) is decoded but never shown.
        state = {"started": self.discard[first], "previous": None}

        def take(frames: Iterable[av.VideoFrame]) -> None:
            for frame in frames:
                self.stats.decoded += 1
                p = frame.pts
                if p is None or p not in self.position:
                    raise _Untrusted()
                if p < key_pts:  # a leading picture of an open GOP, decoded without its references
                    continue
                if not state["started"]:
                    if p != key_pts or not (
                        frame.key_frame or frame.pict_type == av.video.frame.PictureType.I
                    ):
                        raise _BadKeyframe(first)
                    state["started"] = True
                if state["previous"] is not None and p <= state["previous"]:
                    raise _Untrusted()
                state["previous"] = p
                if p in wanted and p not in found:
                    found[p] = convert(frame)
                    self.stats.converted += 1

        try:
            for packet in self._packets_from(first):
                if packet.size == 0:  # PyAV's end-of-stream flush packet; the drain below follows
                    break
                position = self.position.get(packet.pts)
                if position is None:
                    raise _Untrusted()
                if position > last:
                    break
                level = self._skip_level(position, packet.pts in wanted or position == first, needed)
                if level is None:  # no wanted frame depends on it: not even sent to the decoder
                    continue
                context.skip_frame = level
                take(context.decode(packet))
                if all(p in found for p in wanted):
                    break
            context.skip_frame = "DEFAULT"
            take(context.decode(None))  # drain the frames still held for reordering
        finally:
            context.skip_frame = "DEFAULT"
            context.flush_buffers()
        if not state["started"]:
            raise _BadKeyframe(first)
        if not all(p in found for p in wanted):
            raise _Untrusted()

    def _skip_level(self, position: int, decode: bool, needed: set[int] | None) -> str | None:
        """libavcodec's ``skip_frame`` for one packet of a run, or None where it need not be sent at all.

        With the H.264 reference graph (``needed``: the wanted frames' dependency closure) a picture
        outside the closure is never sent -- a non-reference frame, or a reference no wanted frame
        uses, such as an x264 B-pyramid reference that P-frames do not use (the decoder then fills
        the gap in ``frame_num`` as H.264 prescribes, with a picture nothing reads). Without the
        graph every reference picture counts as needed and the decoder drops the others (NONREF).
        """
        if decode or (needed is not None and position in needed):
            return "DEFAULT"
        return None if needed is not None else "NONREF"

    def _packets_from(self, position: int) -> Iterator[av.Packet]:
        """Demuxed packets starting exactly at packet ``position`` (a keyframe).

        Seeks to its timestamp and drops packets before it; a demuxer that lands after it (some seek
        by byte position or by approximate time) is asked again further back, then from the start.
        """
        anchor = self.dts[position] if self.dts[position] is not None else self.pts[position]
        earliest = min(t for t in (*self.dts, *self.pts) if t is not None)
        step = max(1, round(SEEK_BACKOFF_SECONDS / self.time_base))
        seek_to = anchor
        while True:
            seek_to = max(seek_to, earliest)
            try:
                self.container.seek(seek_to, stream=self.stream, backward=True)
            except av.error.FFmpegError:
                if seek_to == earliest:
                    raise _Untrusted() from None
            else:
                self.stats.seeks += 1
                packets = self.container.demux(self.stream)
                for packet in packets:
                    j = self.position.get(packet.pts) if packet.size else None
                    if j is None:
                        continue
                    if j == position:
                        return itertools.chain([packet], packets)
                    if j > position:
                        break
            if seek_to == earliest:
                raise _Untrusted()
            seek_to -= step
            step *= 2

    # ------------------------------------------------------------------ decoding forward

    def _forward(self, indices: Sequence[int], convert: Callable[[av.VideoFrame], T]) -> list[T]:
        """Decode from the start in a fresh demuxer, counting frames in output order."""
        wanted, last = set(indices), max(indices)
        found: dict[int, T] = {}
        count = 0
        with av.open(os.fspath(self.path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = self.threads
            stream.thread_count = DECODER_THREAD_COUNT
            for frame in container.decode(stream):
                self.stats.decoded += 1
                if count in wanted:
                    found[count] = convert(frame)
                    self.stats.converted += 1
                count += 1
                if count > last:
                    break
        if len(found) < len(wanted):
            raise _Shortfall(count)
        return [found[i] for i in indices]


def _to_rgb(frame: av.VideoFrame, size: int | None) -> np.ndarray:
    """Resize the shorter side to ``size`` (bicubic, swscale) and centre-crop a square; None keeps it."""
    if size is None:
        return frame.to_ndarray(format="rgb24")
    width, height = frame.width, frame.height
    scale = size / min(width, height)
    new_w, new_h = max(size, round(width * scale)), max(size, round(height * scale))
    rgb = frame.reformat(width=new_w, height=new_h, format="rgb24", interpolation="BICUBIC").to_ndarray()
    top, left = round((new_h - size) / 2), round((new_w - size) / 2)
    return np.ascontiguousarray(rgb[top : top + size, left : left + size])


def _window(reader: _Reader, start: float | None, end: float | None) -> tuple[int, int]:
    """Frame range [first, stop) shown in the time window ``[start, end)`` (seconds from the first frame)."""
    if start is not None and end is not None and end <= start:
        raise VideoDecodeError(reader.path, f"window end {end} must be after start {start}")
    first = 0 if start is None else reader.first_at(max(0.0, start))
    stop = reader.count if end is None else reader.first_at(end)
    if first >= reader.count:
        duration = reader.count / reader.fps
        raise VideoDecodeError(
            reader.path, f"window start {start}s is past the end of the video ({float(duration):.3f}s)"
        )
    return first, max(stop, first + 1)


def _decode_sample(
    path: Path,
    n: int,
    strategy: str,
    size: int | None,
    seed: int,
    start: float | None,
    end: float | None,
    threads: str = "AUTO",
    stats: DecodeStats | None = None,
) -> np.ndarray:
    stats = DecodeStats() if stats is None else stats
    with _open(path) as container:
        try:
            reader = _Reader(path, container, threads, stats)
            for attempt in range(2):
                lo, hi = _window(reader, start, end)
                indices = lo + sample_indices(hi - lo, n, strategy, seed)
                wanted = np.unique(indices)
                try:
                    decoded = reader.frames_at(wanted.tolist(), lambda frame: _to_rgb(frame, size))
                    break
                except _Shortfall as short:  # decoding forward found fewer frames than packets
                    if attempt == 1 or short.count < 1:
                        raise VideoDecodeError(path, "decoding ended before the counted frames") from None
                    reader.count = short.count
        except av.error.FFmpegError as exc:
            raise VideoDecodeError(path, f"corrupt or truncated video stream ({exc})") from exc
    stats.mode = reader.mode
    rgb = dict(zip(wanted.tolist(), decoded, strict=True))
    frames = np.stack([rgb[i] for i in indices.tolist()])
    aggregate = strategy_aggregate(strategy)
    return aggregate(frames, n) if aggregate is not None else frames


# --------------------------------------------------------------------------------------------
# Cache
# --------------------------------------------------------------------------------------------


def default_cache_dir(data_dir: PathLike | None = None) -> Path:
    """``<data_dir>/cache/frames`` (:func:`vtr.keys.cache_root`); ``data_dir`` defaults to ``<project>/data``."""
    return cache_root(project_root() / "data" if data_dir is None else data_dir, "frames")


def content_fingerprint(path: PathLike) -> str:
    """blake2b of the file size and its first and last MiB (the whole file when it is smaller).

    Reading 2 MiB costs about a millisecond whatever the video's length, while any re-encode or
    edit of an mp4 changes its size or its index (the moov atom, at one end of the file). Unlike an
    mtime, the fingerprint survives copying a dataset to another machine, so caches stay valid.
    """
    path = Path(path)
    digest = hashlib.blake2b(digest_size=16)
    size = path.stat().st_size
    digest.update(size.to_bytes(8, "little"))
    with path.open("rb") as f:
        digest.update(f.read(FINGERPRINT_BYTES))
        if size > 2 * FINGERPRINT_BYTES:
            f.seek(size - FINGERPRINT_BYTES)
        digest.update(f.read())
    return digest.hexdigest()


def _cache_file(
    cache_dir: Path, path: Path, n: int, strategy: str, size: int | None, seed: int, start, end
) -> Path:
    key = repr(
        (CACHE_VERSION, av.__version__, content_fingerprint(path), strategy, n, size, seed, start, end)
    )
    name = hashlib.blake2b(key.encode(), digest_size=16).hexdigest()
    return cache_dir / name[:2] / f"{name}.npy"


def _resolve_cache(cache: bool | PathLike) -> Path | None:
    if cache is False or cache is None:
        return None
    return default_cache_dir() if cache is True else Path(cache)


# --------------------------------------------------------------------------------------------
# Public sampling API
# --------------------------------------------------------------------------------------------


def sample_frames(
    path: PathLike,
    n: int,
    strategy: str = "uniform",
    size: int | None = 224,
    seed: int = 0,
    *,
    start: float | None = None,
    end: float | None = None,
    cache: bool | PathLike = False,
    decoder_threads: str = "AUTO",
    stats: DecodeStats | None = None,
) -> np.ndarray:
    """``n`` frames of ``path`` as a (n, size, size, 3) uint8 RGB array.

    ``strategy`` is a key of :data:`STRATEGIES`; ``seed`` makes the random ones reproducible.
    ``start``/``end`` (seconds from the stream start) restrict sampling to a window of the file.
    ``size=None`` keeps the native resolution (no resize or crop). ``cache`` is False, True (the
    default folder, :func:`default_cache_dir`) or a folder: results are stored there as .npy,
    keyed by the file's content fingerprint and every argument. ``decoder_threads`` is the
    libavcodec threading (see DECODER_THREAD_TYPES): pass "NONE" where many decodes already run in
    parallel, e.g. in DataLoader workers. It never changes the frames. ``stats``, when given, is
    filled in with what was decoded (:class:`DecodeStats`). Raises VideoDecodeError.
    """
    path = Path(path)
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; known: {sorted(STRATEGIES)}")
    if decoder_threads not in DECODER_THREAD_TYPES:
        raise ValueError(f"decoder_threads must be one of {DECODER_THREAD_TYPES}, got {decoder_threads!r}")
    if n < 1 or (size is not None and size < 1):
        raise ValueError(f"n and size must be >= 1, got n={n}, size={size}")
    cache_dir = _resolve_cache(cache)
    if cache_dir is None:
        return _decode_sample(path, n, strategy, size, seed, start, end, decoder_threads, stats)
    if not path.is_file():
        raise VideoDecodeError(path, "file not found")
    target = _cache_file(cache_dir, path, n, strategy, size, seed, start, end)
    if target.is_file():
        try:
            frames = np.load(target)
            if stats is not None:
                stats.mode = "cache"
            return frames
        except (OSError, ValueError):
            pass  # a damaged cache entry is recomputed and replaced
    frames = _decode_sample(path, n, strategy, size, seed, start, end, decoder_threads, stats)
    with atomic_path(target) as tmp, tmp.open("wb") as f:
        np.save(f, frames)
    return frames


ClipSpec = PathLike | tuple[PathLike, float | None, float | None]


def sample_many(
    clips: Sequence[PathLike] | Mapping[Hashable, ClipSpec],
    n: int,
    strategy: str = "uniform",
    size: int | None = 224,
    seed: int = 0,
    *,
    cache: bool | PathLike = False,
    workers: int | None = None,
    on_error: str = "record",
    progress: bool = True,
) -> tuple[dict[Hashable, np.ndarray], dict[Hashable, str]]:
    """Sample many videos; bad files are recorded, not raised (unless ``on_error="raise"``).

    ``clips`` is a list of paths (results keyed by ``str(path)``) or a mapping from your key to a
    path or a ``(path, start, end)`` window. Returns ``(frames_by_key, errors_by_key)`` where each
    error is the VideoDecodeError message (it names the file and the reason).

    ``workers`` files decode at once in a thread pool (PyAV releases the GIL while decoding);
    default: one per CPU core. With more than one worker each file decodes single-threaded, which
    measured 1.3x faster on 2 cores than one file at a time with libavcodec's own threads.
    """
    if on_error not in ("record", "raise"):
        raise ValueError(f"on_error must be 'record' or 'raise', got {on_error!r}")
    workers = workers or os.cpu_count() or 1
    threads = "AUTO" if workers == 1 else "NONE"
    items = list(clips.items()) if isinstance(clips, Mapping) else [(os.fspath(p), p) for p in clips]

    def run(spec: ClipSpec) -> np.ndarray:
        path, start, end = spec if isinstance(spec, tuple) else (spec, None, None)
        return sample_frames(
            path, n, strategy, size, seed, start=start, end=end, cache=cache, decoder_threads=threads
        )

    frames: dict[Hashable, np.ndarray] = {}
    errors: dict[Hashable, str] = {}
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results: Iterable = pool.map(_capture(run), [spec for _, spec in items])
        for (key, _), (result, error) in tqdm(
            zip(items, results, strict=True),
            total=len(items),
            desc="decode",
            disable=not show_progress(progress),
        ):
            if error is None:
                frames[key] = result
            elif on_error == "raise":
                raise error
            else:
                errors[key] = str(error)
    return frames, errors


def _capture(fn: Callable[[ClipSpec], np.ndarray]) -> Callable[[ClipSpec], tuple]:
    """Wrap ``fn`` so that a VideoDecodeError comes back as a value instead of ending the batch."""

    def wrapped(spec: ClipSpec) -> tuple:
        try:
            return fn(spec), None
        except VideoDecodeError as exc:
            return None, exc

    return wrapped


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def write_video(
    path: str | os.PathLike[str],
    frames: np.ndarray,
    fps: float,
    *,
    codec: str = "libx264",
    crf: int = 20,
    gop: int = 12,
) -> None:
    """Write ``frames`` (T, H, W, 3) uint8 RGB as an mp4 (H.264, yuv420p; H and W must be even).

    ``gop`` sets the keyframe interval so that seeking into the file is cheap, as in real datasets.
    Not atomic by itself: wrap in :func:`vtr.atomic.atomic_path` when the file is a result.
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be (T, H, W, 3) uint8, got {frames.shape} {frames.dtype}")
    _, height, width, _ = frames.shape
    if height % 2 or width % 2:
        raise ValueError(f"H.264 with yuv420p needs even sizes, got {width}x{height}")
    with av.open(os.fspath(path), mode="w", format="mp4") as container:
        stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1000))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        options = {"crf": str(crf), "g": str(gop), "preset": "veryfast"}
        if codec == "libx264":
            # Identical inputs must give identical files: one thread, and x264's portable C code instead
            # of its assembly. With the assembly, on AVX-512 CPUs, the same frames encoded twice could
            # differ (most often the first encode in a process against later ones) whenever mb-tree
            # rate control was on; x264 without AVX-512 or without mb-tree was stable. The C code
            # gives the same bytes on every x86 CPU and costs ~1.5-2x the encoding time.
            stream.codec_context.thread_count = 1
            options["x264-params"] = "asm=0"
        stream.options = options
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
