"""A folder of videos with a captions file: the "bring your own data" source.

The captions file is a csv or a jsonl with one row per (video, caption) pair; several rows for the
same video give several captions. Columns (jsonl keys):

* the video: ``video`` (or ``video_id``, ``id``, ``file``, ``filename``, ``path``) -- a path
  relative to the videos folder (``sub/a.mp4``), a file name (``a.mp4``) or a stem (``a``);
* ``caption`` (or ``sentence``, ``text``);
* optional ``split`` (train / val / test), ``category``, ``start`` and ``end`` (seconds inside the
  file). Rows of one video with different ``start`` / ``end`` are different clips.

Problems with single rows or videos never stop the load: videos without captions, captions without
videos and bad rows are skipped with a :class:`DataWarning` and listed in the returned records'
``report``. Only a missing or unreadable captions file, or one without a video or caption column,
raises :class:`~vtr.data.manifest.ManifestError`.

Clips without a split are assigned one by a hash of their *video* (not of the clip), so all clips
cut from one video land in the same split and moments of a test video never leak into training.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from vtr.data.manifest import (
    SPLITS,
    ClipRecord,
    LoadedRecords,
    ManifestError,
    check_split_fractions,
    hash_split,
    warn_skipped,
)

VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v", ".mpg", ".mpeg")
VIDEO_COLUMNS = ("video", "video_id", "id", "file", "filename", "path")
CAPTION_COLUMNS = ("caption", "sentence", "text")


def index_videos(videos_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """Map every way a captions row may name a video to its path relative to ``videos_dir``.

    The names are the relative path with and without extension, the file name and the stem. A name
    shared by two files (``a.mp4`` and ``a.webm``, or ``x/a.mp4`` and ``y/a.mp4``) is left out, so
    rows using it are reported as naming no video instead of silently picking one.
    """
    root = Path(videos_dir)
    if not root.is_dir():
        raise ManifestError(f"videos folder {root} does not exist")
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS)
    by_name: dict[str, list[Path]] = {}
    for path in files:
        rel = path.relative_to(root)
        keys = {rel.as_posix(), rel.with_suffix("").as_posix(), rel.name, rel.stem}
        for key in keys:
            by_name.setdefault(key, []).append(rel)
    return {key: paths[0] for key, paths in by_name.items() if len(paths) == 1}


@dataclass
class _Clip:
    key: str  # the video's id: clips cut from one video share it (and its hashed split)
    rel: Path
    start: float | None
    end: float | None
    captions: list[str] = field(default_factory=list)
    split: str | None = None
    category: str | None = None
    lines: list[int] = field(default_factory=list)


def _read_rows(path: Path) -> tuple[list[tuple[int, dict[str, Any]]], list[str]]:
    """Rows with their line numbers (1-based, counting a csv header), and the unreadable lines."""
    if not path.is_file():
        raise ManifestError(f"captions file {path} does not exist")
    bad: list[str] = []
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        rows = []
        with open(path, encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as err:
                    bad.append(f"{path}:{lineno}: not valid JSON ({err.msg})")
                    continue
                if not isinstance(obj, dict):
                    bad.append(f"{path}:{lineno}: not a JSON object")
                    continue
                rows.append((lineno, obj))
        return rows, bad
    if path.suffix.lower() in (".csv", ".tsv"):
        try:
            sep = "\t" if path.suffix.lower() == ".tsv" else ","
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, sep=sep)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
            raise ManifestError(f"{path}: cannot parse as csv ({err})") from None
        return [(i + 2, row) for i, row in enumerate(frame.to_dict("records"))], bad
    raise ManifestError(f"{path}: captions must be a .csv, .tsv or .jsonl file")


def _pick_column(
    path: Path, rows: list[tuple[int, dict[str, Any]]], options: Sequence[str], what: str
) -> str:
    present = set().union(*(row.keys() for _, row in rows)) if rows else set()
    for name in options:
        if name in present:
            return name
    raise ManifestError(f"{path}: no {what} column; expected one of {list(options)}, found {sorted(present)}")


def _optional_seconds(value: Any, name: str) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"field {name!r} is {value!r}, not a number of seconds") from None
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"field {name!r} is {value!r}; expected a finite number >= 0")
    return seconds


def video_key(rel: Path, index: dict[str, Path]) -> str:
    """The id of a video: its relative path without extension, or with it where that is ambiguous."""
    stem = rel.with_suffix("").as_posix()
    return stem if index.get(stem) == rel else rel.as_posix()


def _clip_id(base: str, start: float | None, end: float | None) -> str:
    if start is None and end is None:
        return base
    return f"{base}@{'' if start is None else f'{start:g}'}-{'' if end is None else f'{end:g}'}"


def load_folder(
    videos_dir: str | os.PathLike[str],
    captions_path: str | os.PathLike[str],
    split_seed: int = 0,
    split_fractions: Sequence[float] = (0.8, 0.1, 0.1),
) -> LoadedRecords:
    """Records for the videos in ``videos_dir`` that have captions in ``captions_path``.

    ``video`` fields are absolute paths. Record ids are the video's path relative to ``videos_dir``
    without its extension, plus ``@start-end`` for a clip with times. Records are sorted by id.
    ``report`` holds ``videos_without_captions``, ``captions_without_videos`` and ``skipped_rows``.
    """
    check_split_fractions(split_fractions)
    root = Path(videos_dir).resolve()
    path = Path(captions_path)
    index = index_videos(root)
    rows, skipped = _read_rows(path)
    video_col = _pick_column(path, rows, VIDEO_COLUMNS, "video")
    caption_col = _pick_column(path, rows, CAPTION_COLUMNS, "caption")

    clips: dict[str, _Clip] = {}
    unmatched: list[str] = []
    for lineno, row in rows:
        where = f"{path}:{lineno}"
        name = str(row.get(video_col) or "").strip()
        caption = " ".join(str(row.get(caption_col) or "").split())
        if not name:
            skipped.append(f"{where}: field {video_col!r} is empty")
            continue
        if not caption:
            skipped.append(f"{where}: field {caption_col!r} is empty")
            continue
        rel = index.get(name) or index.get(name.removeprefix("./"))
        if rel is None:
            unmatched.append(f"{where}: {name}")
            continue
        try:
            clip = _add_row(clips, rel, video_key(rel, index), row, caption)
        except ValueError as err:
            skipped.append(f"{where}: {err}")
            continue
        clip.lines.append(lineno)

    used = {clip.rel for clip in clips.values()}
    unique_files = sorted({rel.as_posix() for rel in index.values()})
    without_captions = [rel for rel in unique_files if Path(rel) not in used]
    records = LoadedRecords(
        (_to_record(cid, clip, root, split_seed, split_fractions) for cid, clip in sorted(clips.items())),
        report={
            "videos_without_captions": without_captions,
            "captions_without_videos": unmatched,
            "skipped_rows": skipped,
        },
    )
    warn_skipped(root, "video(s) without captions", without_captions)
    warn_skipped(path, "caption row(s) naming no video in the folder (missing or ambiguous)", unmatched)
    warn_skipped(path, "bad row(s) skipped", skipped)
    return records


def _add_row(clips: dict[str, _Clip], rel: Path, key: str, row: dict[str, Any], caption: str) -> _Clip:
    start = _optional_seconds(row.get("start"), "start")
    end = _optional_seconds(row.get("end"), "end")
    if start is not None and end is not None and end <= start:
        raise ValueError(f"field 'end' ({end}) <= 'start' ({start})")
    split = str(row.get("split") or "").strip() or None
    if split is not None and split not in SPLITS:
        raise ValueError(f"field 'split' is {split!r}; expected one of {SPLITS}")
    category = str(row.get("category") or "").strip() or None
    cid = _clip_id(key, start, end)
    clip = clips.setdefault(cid, _Clip(key=key, rel=rel, start=start, end=end))
    for name, value in (("split", split), ("category", category)):
        current = getattr(clip, name)
        if value is not None and current is not None and value != current:
            raise ValueError(
                f"field {name!r} is {value!r} but line {clip.lines[0]} gave {current!r} for {cid!r}"
            )
        if current is None:
            setattr(clip, name, value)
    clip.captions.append(caption)
    return clip


def _to_record(cid: str, clip: _Clip, root: Path, seed: int, fractions: Sequence[float]) -> ClipRecord:
    return ClipRecord(
        id=cid,
        video=os.fspath(root / clip.rel),
        captions=clip.captions,
        split=clip.split or hash_split(clip.key, seed, fractions),
        start=clip.start,
        end=clip.end,
        category=clip.category,
        meta={
            "source": "folder",
            "video_key": clip.key,
            "split_from": "file" if clip.split else "hash",
            "lines": clip.lines,
        },
    )
