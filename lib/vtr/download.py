"""Download InternVid clips: fetch the span from YouTube (yt-dlp), cut it exactly (ffmpeg), check it.

    from vtr.config import load_profile
    report = download_internvid(load_profile("full").internvid)
    print(report.summary())

For each selected metadata row (:mod:`vtr.data.internvid`) one worker

1. fetches the source with yt-dlp's Python API into a private temporary folder, only the
   ``[start, end]`` section when ``section_download`` is on (``download_ranges`` with
   ``force_keyframes_at_cuts``, so the section starts exactly at ``start``). ffmpeg reads that
   section over the network and needs HTTP byte ranges to seek; when the section cannot be read
   (a host that ignores ``Range`` answers every read with the whole file from byte 0, which ffmpeg
   reports as a "partial file") the whole file is downloaded instead and cut locally
   (``fetched: "whole"`` in the status line), so a host's limits never pass for a damaged file;
2. cuts ``[start, end]`` with ffmpeg (through ffmpeg-python), re-encoding to H.264 so that the
   cut is frame-exact whatever the source's keyframes;
3. checks the clip: its duration is within ``duration_tolerance`` of ``end - start`` and frames
   decode across it (:func:`vtr.video.probe`, :func:`vtr.video.sample_frames`);
4. renames it to ``<out>/clips/<youtube_id>_<start_ms>_<end_ms>.mp4`` (atomic: same folder tree)
   and appends a line to ``<out>/status.jsonl``.

Every failure (dead, private or blocked video, HTTP error, timeout, truncated or non-video
file, bad cut) becomes a ``failed`` status line with a short ``reason`` and the full ``detail``;
the batch carries on. ``truncated`` is only said of a file held whole on disk: a read over the
network that ends early says nothing about the file (see ``diagnose_media``). A rerun skips clips
already done or failed for good (``retry_failed`` retries those too); failures of the moment
(``TRANSIENT_REASONS``: a timeout, the network, a busy server, a full disk) are retried on every
rerun. At the end ``<out>/manifest.jsonl`` (:mod:`vtr.data.manifest`) lists the clips that
are done.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ffmpeg
from tqdm.auto import tqdm

from vtr.atomic import write_text
from vtr.config import ConfigError, InternVidConfig
from vtr.data.internvid import InternVidClip, Selection, load_metadata, select_clips, split_for
from vtr.data.manifest import ClipRecord, write_manifest
from vtr.paths import resolve
from vtr.progress import show_progress
from vtr.video import VideoDecodeError, probe, sample_frames

STATUS_FILE = "status.jsonl"
MANIFEST_FILE = "manifest.jsonl"
REJECTED_FILE = "rejected_rows.jsonl"
CLIPS_DIR = "clips"
# Frames decoded across each finished clip to prove it is readable end to end.
CHECK_FRAMES = 4
# Failures that say nothing lasting about the video: a rerun tries these clips again by itself.
TRANSIENT_REASONS = frozenset(
    {"timeout", "network", "incomplete_read", "os_error", "http_408", "http_429", "http_500", "http_502",
     "http_503", "http_504"}
)  # fmt: skip


class ClipError(Exception):
    """One clip failed; ``reason`` is a short machine-friendly cause, the message the detail.

    ``retry_whole``: the failure came from reading only a section over the network, so
    downloading the whole file may still succeed (see :func:`fetch_clip`).
    """

    def __init__(self, reason: str, detail: str, *, retry_whole: bool = False) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self.retry_whole = retry_whole


# --------------------------------------------------------------------------------------------
# Status log: one JSON line per finished item, appended as soon as the item finishes
# --------------------------------------------------------------------------------------------


@dataclass
class ItemStatus:
    """The outcome for one clip, as stored in ``status.jsonl``."""

    id: str
    status: str  # done | failed
    reason: str = ""  # failed only: http_404, private, unavailable, timeout, truncated, not_video, ...
    detail: str = ""
    path: str = ""  # done only: the clip, relative to the output folder
    fetched: str = ""  # done only: "section" (only [start, end] was read) or "whole" (cut locally)
    duration: float | None = None  # measured duration of the cut clip
    youtube_id: str = ""
    start: float | None = None  # source timestamps (seconds in the YouTube video)
    end: float | None = None
    url: str = ""
    finished_at: float = 0.0

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True, ensure_ascii=False)


class StatusLog:
    """Append-only ``status.jsonl``; the last line for an id wins.

    Each line is written with one ``write`` on an ``O_APPEND`` descriptor and fsynced, so a crash
    loses at most the line being written; a torn last line is ignored when reading.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self.entries: dict[str, ItemStatus] = self._read()

    def _read(self) -> dict[str, ItemStatus]:
        entries: dict[str, ItemStatus] = {}
        if not self.path.is_file():
            return entries
        names = {f.name for f in dataclasses.fields(ItemStatus)}
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                raw = json.loads(line)
                entry = ItemStatus(**{k: v for k, v in raw.items() if k in names})
            except (json.JSONDecodeError, TypeError):
                continue  # a line torn by a crash: that item is simply redone
            entries[entry.id] = entry
        return entries

    def append(self, entry: ItemStatus) -> None:
        data = (entry.to_json() + "\n").encode("utf-8")
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            self.entries[entry.id] = entry

    def compact(self) -> None:
        """Rewrite with one line per id (atomically), so the file does not grow with every rerun."""
        with self._lock:
            lines = [e.to_json() for e in self.entries.values()]
            write_text(self.path, "".join(line + "\n" for line in lines))


# --------------------------------------------------------------------------------------------
# One clip: fetch, cut, check
# --------------------------------------------------------------------------------------------


def ffmpeg_exe() -> str:
    """The ffmpeg binary: the one on PATH, else the one bundled with imageio-ffmpeg."""
    found = shutil.which("ffmpeg")
    if found:
        return found
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


class _CapturedLog:
    """A yt-dlp logger that keeps warnings and errors instead of printing them (workers run in
    parallel); they go into the failure's detail."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def debug(self, msg: str) -> None:
        pass

    def info(self, msg: str) -> None:
        pass

    def warning(self, msg: str) -> None:
        self.messages.append(msg)

    def error(self, msg: str) -> None:
        self.messages.append(msg)


# yt-dlp / ffmpeg messages → reason. First match wins, so specific patterns come first.
_REASONS: list[tuple[str, str]] = [
    (r"private video", "private"),
    (r"sign in to confirm|confirm your age|age[- ]restricted|members[- ]only|join this channel", "blocked"),
    (r"not made this video available in your country|geo[- ]?restrict|blocked it in your country", "blocked"),
    (r"requested format is not available|no video formats found", "no_format"),
    (r"copyright|terminated|removed by the uploader|video has been removed", "unavailable"),
    (r"video unavailable|this video is (?:not |un)available|is not available", "unavailable"),
    (r"timed? ?out", "timeout"),
    (r"moov atom not found|end of file|partial file|stream ends prematurely|truncat", "truncated"),
    # The machine, not the video (ENOSPC, EIO, EACCES, EMFILE, EROFS): may work next time. After
    # "truncated": ffmpeg adds "Input/output error" to a network read that ended early.
    (
        r"no space left|input/output error|permission denied|too many open files|read-only file system",
        "os_error",
    ),
    (r"invalid data found when processing input|no video stream|does not contain any stream", "not_video"),
    (r"unsupported url", "unsupported_url"),
    (r"name or service not known|connection refused|network is unreachable|temporary failure", "network"),
]
_URL = re.compile(r"\S+://\S+")
_HTTP_STATUS = re.compile(r"HTTP Error (\d{3})|Server returned (\d{3})|\b(\d{3}) (?:Not Found|Forbidden)")


def classify_error(message: str, ignore: Iterable[str] = ()) -> str:
    """A short reason for a yt-dlp or ffmpeg error message (``http_404``, ``private``, ...).

    URLs and the ``ignore`` strings (the video id, which also appears in file names) are removed
    first, so that an id such as ``timeout0001`` cannot decide the reason.
    """
    message = _URL.sub(" ", message)
    for text in ignore:
        if text:
            message = message.replace(text, " ")
    status = _HTTP_STATUS.search(message)
    if status:
        return f"http_{next(g for g in status.groups() if g)}"
    lowered = message.lower()
    for pattern, reason in _REASONS:
        if re.search(pattern, lowered):
            return reason
    return "download_failed"


def fetch_source(
    url: str, workdir: Path, cfg: InternVidConfig, section: tuple[float, float] | None, video_id: str = ""
) -> Path:
    """Download ``url`` (only ``section`` when given) into ``workdir``; raises :class:`ClipError`."""
    import yt_dlp
    from yt_dlp.utils import DownloadError, download_range_func

    exe = ffmpeg_exe()
    _point_yt_dlp_at_ffmpeg(exe)
    log = _CapturedLog()
    opts: dict[str, Any] = {
        "format": cfg.format,
        "outtmpl": str(workdir / "source.%(ext)s"),
        "paths": {"home": str(workdir), "temp": str(workdir)},
        "logger": log,
        "quiet": True,
        "no_warnings": True,
        "noprogress": True,
        "noplaylist": True,
        "overwrites": True,
        "cachedir": False,
        "socket_timeout": cfg.timeout,
        "retries": cfg.retries,
        "fragment_retries": cfg.retries,
        "extractor_retries": cfg.retries,
        "ffmpeg_location": exe,
        "fixup": "never",  # the clip is re-encoded by cut_clip anyway
        # ffmpeg reads the section from the network itself: bound its reads too.
        "external_downloader_args": {"ffmpeg_i": ["-rw_timeout", str(int(cfg.timeout * 1e6))]},
    }
    if section is not None:
        opts["download_ranges"] = download_range_func(None, [section])
        opts["force_keyframes_at_cuts"] = True
    ignore = [url, str(workdir), video_id]
    media: tuple[str, dict[str, str]] | None = None
    try:
        with yt_dlp.YoutubeDL(opts) as ydl:
            # Two steps, so that a failed download can be told from a failed look-up (a dead or
            # private video) and diagnosed from the media URL it read.
            info = ydl.extract_info(url, download=False) or {}
            if info.get("url"):
                media = (info["url"], dict(info.get("http_headers") or {}))
            info = ydl.process_ie_result(info, download=True) or {}
    except DownloadError as err:
        message = str(err)
        warnings = [m for m in log.messages if m.strip() and m not in message][-2:]
        detail = _one_line(" | ".join([message, *warnings]))
        reason = classify_error(message, ignore)
        if section is not None and media is not None:
            # The look-up worked and reading the section failed: the whole file may still come.
            raise ClipError(reason, detail, retry_whole=_may_read_whole(reason)) from None
        if media is not None and "ffmpeg exited" in message:
            # yt-dlp runs ffmpeg quietly; read the media again to learn the cause.
            reason, cause = diagnose_media(media[0], cfg, media[1], ignore)
            raise ClipError(reason, _one_line(f"{detail}: {cause}")) from None
        raise ClipError(reason, detail) from None
    except Exception as err:  # noqa: BLE001 - yt-dlp raises a wide variety; all are per-item failures
        message = f"{type(err).__name__}: {err}"
        raise ClipError(classify_error(message, ignore), _one_line(message)) from None
    files = [Path(d["filepath"]) for d in info.get("requested_downloads") or [] if d.get("filepath")]
    files = [f for f in files if f.is_file()] or sorted(workdir.glob("source.*"))
    if not files:
        raise ClipError("download_failed", f"yt-dlp reported success but wrote no file for {url}")
    return files[0]


def _may_read_whole(reason: str) -> bool:
    """Whether a section read that failed for ``reason`` is worth a whole-file download: not when
    the host is unreachable, too slow or refuses the file (416, range not satisfiable, is a range
    problem and so is worth it)."""
    return reason not in ("timeout", "network") and (not reason.startswith("http_") or reason == "http_416")


def _point_yt_dlp_at_ffmpeg(exe: str) -> None:
    """yt-dlp's check for a partial-download-capable ffmpeg ignores ``ffmpeg_location`` (its own
    TODO in ``FFmpegFD.available``) and reads a context variable that only its CLI sets; set it for
    this thread too, so the bundled imageio-ffmpeg binary works without ffmpeg on PATH."""
    from yt_dlp.postprocessor.ffmpeg import FFmpegPostProcessor

    location = getattr(FFmpegPostProcessor, "_ffmpeg_location", None)
    if location is not None and hasattr(location, "set"):
        location.set(exe)


# The first bytes of the containers a video host serves: ISO BMFF (mp4/mov, "ftyp" etc. at offset 4),
# Matroska/WebM (EBML), FLV, MPEG-TS (sync byte), AVI/RIFF, Ogg.
_BOX_TYPES = {b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"styp", b"sidx"}
_MAGIC = (b"\x1a\x45\xdf\xa3", b"FLV", b"\x47", b"RIFF", b"OggS")


def looks_like_video(head: bytes) -> bool:
    """Whether ``head`` (a file's first bytes) starts like a video container."""
    return head[4:8] in _BOX_TYPES or head.startswith(_MAGIC)


def diagnose_media(
    source: str, cfg: InternVidConfig, headers: dict[str, str] | None = None, ignore: Iterable[str] = ()
) -> tuple[str, str]:
    """Why ``source`` (a local path or an http(s) URL) cannot be read: ``(reason, detail)``.

    The first bytes tell a file that is no video at all (an HTML error page, say) from a damaged
    one; ffmpeg's own error names the damage (``moov atom not found`` for a cut-off mp4). Over
    the network a read that ends early (``partial file``, ``stream ends prematurely``) is
    ``incomplete_read``, never ``truncated``: a host without byte ranges, or a dropped connection,
    reads the same as a cut-off file, and only a file held whole can be called truncated.
    """
    head = _read_head(source, headers or {}, cfg.timeout)
    message = _ffmpeg_read_error(source, cfg, headers or {}) or "ffmpeg reads it without error"
    if head is not None and not looks_like_video(head):
        return "not_video", f"starts with {head[:16]!r}, no known video container; ffmpeg: {message}"
    reason = classify_error(message, ignore)
    if reason == "truncated" and "://" in source:
        reason = "incomplete_read"
    return ("undecodable" if reason == "download_failed" else reason), message


def _read_head(source: str, headers: dict[str, str], timeout: float, size: int = 64) -> bytes | None:
    try:
        if "://" not in source:
            with open(source, "rb") as fh:
                return fh.read(size)
        import urllib.request

        request = urllib.request.Request(source, headers={**headers, "Range": f"bytes=0-{size - 1}"})
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - http(s) from yt-dlp
            return response.read(size)
    except Exception:  # noqa: BLE001 - no head is no verdict; ffmpeg's message decides
        return None


def _ffmpeg_read_error(source: str, cfg: InternVidConfig, headers: dict[str, str]) -> str:
    """ffmpeg's error output for decoding the first second of ``source``; "" when it reads fine."""
    options: dict[str, Any] = {"t": 1}
    if "://" in source:
        options["rw_timeout"] = int(cfg.timeout * 1e6)
        if headers:
            options["headers"] = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    stream = ffmpeg.input(source, **options).output("-", format="null")
    args = stream.global_args("-nostdin", "-v", "error").compile(cmd=ffmpeg_exe())
    try:
        result = subprocess.run(args, capture_output=True, text=True, timeout=cfg.timeout)
    except subprocess.TimeoutExpired:
        return "ffmpeg timed out reading the input"
    return _one_line(" | ".join(line.strip() for line in result.stderr.splitlines() if line.strip()))


def cut_clip(source: Path, target: Path, offset: float, duration: float, cfg: InternVidConfig) -> None:
    """Re-encode ``[offset, offset + duration]`` of ``source`` to an H.264 mp4 (frame-exact).

    ``-ss`` before the input seeks fast, and because the video is decoded (not stream-copied)
    ffmpeg drops the frames before ``offset`` exactly; the scale filter makes sizes even for yuv420p.
    """
    audio = {} if cfg.keep_audio else {"an": None}
    stream = ffmpeg.input(str(source), ss=f"{offset:.3f}").output(
        str(target),
        t=f"{duration:.3f}",
        vf="scale=trunc(iw/2)*2:trunc(ih/2)*2",
        vcodec="libx264",
        preset="veryfast",
        crf=cfg.crf,
        pix_fmt="yuv420p",
        movflags="+faststart",
        f="mp4",
        **audio,
    )
    args = stream.global_args("-nostdin", "-v", "error").overwrite_output().compile(cmd=ffmpeg_exe())
    try:
        result = subprocess.run(args, capture_output=True, text=True, timeout=cfg.timeout)
    except subprocess.TimeoutExpired:
        raise ClipError("timeout", f"ffmpeg cut of {source.name} took over {cfg.timeout:.0f} s") from None
    if result.returncode != 0 or not target.is_file() or target.stat().st_size == 0:
        message = _one_line(result.stderr) or f"ffmpeg exited with code {result.returncode}"
        reason = classify_error(message, [str(source.parent)])
        raise ClipError(
            "cut_failed" if reason == "download_failed" else reason, f"cutting {source.name}: {message}"
        )


def check_clip(path: Path, expected: float, tolerance: float) -> float:
    """The clip's duration, after checking it against ``expected`` and decoding frames across it."""
    try:
        info = probe(path)
        sample_frames(path, CHECK_FRAMES, "uniform", size=None)
    except VideoDecodeError as err:
        raise ClipError("undecodable", str(err)) from None
    if abs(info.duration - expected) > tolerance:
        raise ClipError(
            "bad_duration",
            f"{path.name}: cut is {info.duration:.3f} s, expected {expected:.3f} s (± {tolerance} s); "
            "the source is probably shorter than the metadata says",
        )
    return info.duration


def fetch_clip(clip: InternVidClip, cfg: InternVidConfig, out_dir: Path) -> ItemStatus:
    """Fetch, cut, check and store one clip. Never raises: failures come back as a failed status."""
    url = cfg.url_template.format(youtube_id=clip.youtube_id)
    base = {
        "id": clip.clip_id,
        "youtube_id": clip.youtube_id,
        "start": clip.start,
        "end": clip.end,
        "url": url,
    }
    target = out_dir / CLIPS_DIR / clip.filename
    scratch = out_dir / ".tmp"
    scratch.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix=f"{clip.clip_id}.", dir=scratch))
    try:
        fetched, note = "whole", ""
        if cfg.section_download:
            try:
                cut, duration = _fetch_cut_check(url, workdir / "section", cfg, clip, whole=False)
                fetched = "section"
            except ClipError as err:
                if not err.retry_whole:
                    raise
                note = f"reading only the section failed ({err.reason}: {err.detail}); fetched the whole file"
        if fetched == "whole":
            try:
                cut, duration = _fetch_cut_check(url, workdir / "whole", cfg, clip, whole=True)
            except ClipError as err:
                err.detail = f"{err.detail} ({note})" if note else err.detail
                raise
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(cut, target)  # same file system (out_dir/.tmp → out_dir/clips): atomic
        path = target.relative_to(out_dir).as_posix()
        return ItemStatus(
            status="done",
            path=path,
            fetched=fetched,
            detail=_one_line(note),
            duration=round(duration, 3),
            finished_at=time.time(),
            **base,
        )
    except ClipError as err:
        return ItemStatus(
            status="failed", reason=err.reason, detail=err.detail, finished_at=time.time(), **base
        )
    except Exception as err:  # noqa: BLE001 - one broken item must never stop the batch
        detail = _one_line(f"{type(err).__name__}: {err}")
        reason = "os_error" if isinstance(err, OSError) else "error"  # a full disk is not the video's fault
        return ItemStatus(status="failed", reason=reason, detail=detail, finished_at=time.time(), **base)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _fetch_cut_check(
    url: str, workdir: Path, cfg: InternVidConfig, clip: InternVidClip, *, whole: bool
) -> tuple[Path, float]:
    """Fetch the section (or the whole video), cut the clip and check it: ``(cut file, duration)``.

    A section file that does not read, or a cut from it that does not decode, is ``retry_whole``:
    ffmpeg wrote what it could read over the network, which says nothing about the video itself.
    """
    workdir.mkdir()
    section = None if whole else (clip.start, clip.end)
    source = fetch_source(url, workdir, cfg, section, clip.youtube_id)
    # A section download starts at clip.start; a whole video is cut at the source timestamps.
    offset = clip.start if whole else 0.0
    if not _probe_ok(source):
        reason, cause = diagnose_media(str(source), cfg, ignore=[str(workdir), clip.youtube_id])
        raise ClipError(reason, f"{url}: {cause}", retry_whole=not whole)
    cut = workdir / clip.filename
    try:
        cut_clip(source, cut, offset, clip.duration, cfg)
        return cut, check_clip(cut, clip.duration, cfg.duration_tolerance)
    except ClipError as err:
        # A wrong duration is the metadata's fault whatever was fetched: not worth a whole video.
        err.retry_whole = not whole and err.reason not in ("bad_duration", "timeout")
        raise


def _probe_ok(path: Path) -> bool:
    try:
        probe(path)
    except VideoDecodeError:
        return False
    return True


def _one_line(text: str, limit: int = 500) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --------------------------------------------------------------------------------------------
# The batch
# --------------------------------------------------------------------------------------------


@dataclass
class DownloadReport:
    """What a run did: counts, failure reasons and where the outputs are."""

    out_dir: Path
    manifest: Path
    status_file: Path
    selected: int = 0  # clips chosen from the metadata
    done: int = 0  # clips on disk now (this run and earlier ones)
    downloaded: int = 0  # of which fetched in this run
    failed: int = 0  # failed in this run or earlier (and not retried)
    failed_by_reason: dict[str, int] = field(default_factory=dict)
    skipped_done: int = 0  # already done by an earlier run
    skipped_failed: int = 0  # failed for good in an earlier run, not retried
    retried_transient: int = 0  # failed in an earlier run for a TRANSIENT_REASONS reason: tried again
    invalid_rows: int = 0
    filtered: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def summary(self) -> str:
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(self.failed_by_reason.items())) or "-"
        return (
            f"InternVid: {self.selected} clips selected ({self.invalid_rows} invalid rows); "
            f"done {self.done} ({self.downloaded} new), failed {self.failed} [{reasons}], "
            f"skipped {self.skipped_done} done + {self.skipped_failed} failed earlier; "
            f"{self.retried_transient} retried after a transient failure; "
            f"{self.seconds:.1f} s. Manifest: {self.manifest}"
        )


def download_internvid(
    cfg: InternVidConfig,
    *,
    metadata: str | os.PathLike[str] | Iterable[dict[str, Any]] | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    retry_failed: bool = False,
    progress: bool = True,
) -> DownloadReport:
    """Select clips from the metadata, download the missing ones and write the canonical manifest.

    ``metadata`` overrides ``cfg.metadata`` (a path, a hub id, or already-loaded rows);
    ``out_dir`` overrides ``cfg.out_dir`` (relative paths are relative to the project root).
    """
    started = time.monotonic()
    check_config(cfg)
    out = resolve(out_dir if out_dir is not None else cfg.out_dir)
    rows = _metadata_rows(cfg, metadata)
    selection = select_clips(
        rows,
        min_aesthetic=cfg.min_aesthetic,
        min_duration=cfg.min_duration,
        max_duration=cfg.max_duration,
        count=cfg.count,
    )
    out.mkdir(parents=True, exist_ok=True)
    _write_rejected(out / REJECTED_FILE, selection)
    log = StatusLog(out / STATUS_FILE)
    report = DownloadReport(out_dir=out, manifest=out / MANIFEST_FILE, status_file=log.path)
    report.selected, report.invalid_rows = len(selection.clips), len(selection.rejected)
    report.filtered = dict(selection.filtered)

    todo = _plan(selection.clips, cfg, log, out, retry_failed, report)
    _run(todo, cfg, out, log, progress)
    log.compact()
    shutil.rmtree(out / ".tmp", ignore_errors=True)

    finals = [log.entries[c.clip_id] for c in selection.clips if c.clip_id in log.entries]
    fresh = {c.clip_id for c in todo}
    report.done = sum(e.status == "done" for e in finals)
    report.downloaded = sum(e.status == "done" and e.id in fresh for e in finals)
    failures = Counter(e.reason for e in finals if e.status == "failed")
    report.failed, report.failed_by_reason = sum(failures.values()), dict(failures)
    write_clip_manifest(report.manifest, selection.clips, log.entries, cfg.split_fractions)
    report.seconds = time.monotonic() - started
    return report


def check_config(cfg: InternVidConfig) -> None:
    """Reject settings that would fail every clip, before any network work; names the key."""
    problems = []
    try:
        url = cfg.url_template.format(youtube_id="aaaaaaaaaaa")
    except (KeyError, IndexError, ValueError) as err:
        url = ""
        problems.append(f"internvid.url_template {cfg.url_template!r} is not a valid template ({err!r})")
    if url == cfg.url_template:
        problems.append(f"internvid.url_template {cfg.url_template!r} must contain {{youtube_id}}")
    if not 0 <= cfg.min_duration <= cfg.max_duration:
        problems.append(
            f"internvid.min_duration/max_duration must satisfy 0 <= min <= max, got {cfg.min_duration}, {cfg.max_duration}"
        )
    for name in ("count", "workers"):
        if getattr(cfg, name) < 1:
            problems.append(f"internvid.{name} must be >= 1, got {getattr(cfg, name)}")
    for name in ("timeout", "duration_tolerance"):
        if getattr(cfg, name) <= 0:
            problems.append(f"internvid.{name} must be > 0, got {getattr(cfg, name)}")
    if problems:
        raise ConfigError("; ".join(problems))


def _metadata_rows(cfg: InternVidConfig, metadata: Any) -> Iterable[dict[str, Any]]:
    if metadata is not None and not isinstance(metadata, str | os.PathLike):
        return metadata
    source = os.fspath(metadata if metadata is not None else cfg.metadata)
    local = resolve(source)
    return load_metadata(local if local.exists() else source, subset=cfg.subset, split=cfg.split)


def _plan(
    clips: list[InternVidClip],
    cfg: InternVidConfig,
    log: StatusLog,
    out: Path,
    retry_failed: bool,
    report: DownloadReport,
) -> list[InternVidClip]:
    """The clips to fetch now: not done (with the file still there), and not failed for good
    unless retrying (a transient failure is always tried again)."""
    todo = []
    for clip in clips:
        prior = log.entries.get(clip.clip_id) or _adopt(clip, cfg, out, log)
        if prior and prior.status == "done" and (out / prior.path).is_file():
            report.skipped_done += 1
        elif prior and prior.status == "failed" and prior.reason in TRANSIENT_REASONS:
            report.retried_transient += 1
            todo.append(clip)
        elif prior and prior.status == "failed" and not retry_failed:
            report.skipped_failed += 1
        else:
            todo.append(clip)
    return todo


def _adopt(clip: InternVidClip, cfg: InternVidConfig, out: Path, log: StatusLog) -> ItemStatus | None:
    """A clip file without a status line (the process died between the rename and the append).

    Files reach ``clips/`` only by an atomic rename after their check, so the file is complete;
    it is checked again anyway before it is recorded as done.
    """
    target = out / CLIPS_DIR / clip.filename
    if not target.is_file():
        return None
    try:
        duration = check_clip(target, clip.duration, cfg.duration_tolerance)
    except ClipError:
        return None
    entry = ItemStatus(
        id=clip.clip_id,
        status="done",
        path=target.relative_to(out).as_posix(),
        duration=round(duration, 3),
        youtube_id=clip.youtube_id,
        start=clip.start,
        end=clip.end,
        url=cfg.url_template.format(youtube_id=clip.youtube_id),
        finished_at=time.time(),
    )
    log.append(entry)
    return entry


def _run(todo: list[InternVidClip], cfg: InternVidConfig, out: Path, log: StatusLog, progress: bool) -> None:
    if not todo:
        return
    with (
        ThreadPoolExecutor(max_workers=max(1, cfg.workers)) as pool,
        tqdm(
            total=len(todo), desc="InternVid clips", unit="clip", disable=not show_progress(progress)
        ) as bar,
    ):
        futures = [pool.submit(fetch_clip, clip, cfg, out) for clip in todo]
        failed = 0
        try:
            for future in as_completed(futures):
                entry = future.result()
                log.append(entry)  # at once: a crash later never loses this clip
                failed += entry.status == "failed"
                bar.set_postfix(failed=failed, refresh=False)
                bar.update()
        except BaseException:
            # Ctrl-C: drop the queued clips; the pool still lets the running ones finish.
            for future in futures:
                future.cancel()
            raise


def write_clip_manifest(
    path: Path, clips: list[InternVidClip], entries: dict[str, ItemStatus], fractions: list[float]
) -> Path:
    """The canonical manifest of the done clips, in metadata order; split by YouTube id hash."""
    records = []
    for clip in clips:
        entry = entries.get(clip.clip_id)
        if entry is None or entry.status != "done":
            continue
        records.append(
            ClipRecord(
                id=clip.clip_id,
                video=entry.path,
                captions=[clip.caption],
                split=split_for(clip.youtube_id, fractions),
                start=None,  # the file is the clip
                end=None,
                category=None,
                meta={
                    "source": "internvid",
                    "youtube_id": clip.youtube_id,
                    "source_start": clip.start,
                    "source_end": clip.end,
                    "start_timestamp": clip.start_timestamp,
                    "end_timestamp": clip.end_timestamp,
                    "aesthetic_score": clip.aesthetic,
                    "umt_score": clip.umt,
                    "duration": entry.duration,
                    "url": entry.url,
                },
            )
        )
    return write_manifest(path, records)


def _write_rejected(path: Path, selection: Selection) -> None:
    lines = [
        json.dumps(dataclasses.asdict(r), sort_keys=True, ensure_ascii=False, default=str)
        for r in selection.rejected
    ]
    write_text(path, "".join(line + "\n" for line in lines))
