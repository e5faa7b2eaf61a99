"""What to extract: the videos of a folder, or the lines of a jsonl manifest, as :class:`ClipRecord` s.

    records = list_videos("videos/")              # every video file under the folder, sorted
    records = list_videos("clips.jsonl")          # {"video": "a.mp4", "id": ..., "start": ..., "end": ...}

A folder is listed with :func:`vtr.data.folder.index_videos` (the extensions of
:data:`~vtr.data.folder.VIDEO_EXTENSIONS`, searched recursively); a video's id is its path
relative to the folder without the extension, or with it where two files share a stem, as the
folder data source names them. A manifest is read line by line with
:func:`vtr.data.manifest.iter_jsonl`: vtr's canonical manifests work as they are, and so does any
jsonl whose lines name a ``video`` (or ``video_path``); ``id``, ``start`` and ``end`` are optional.
Relative paths are resolved against the manifest's folder.
"""

from __future__ import annotations

import os
from pathlib import Path

from vtr.data.folder import index_videos, video_key
from vtr.data.manifest import ClipRecord, ManifestError, iter_jsonl

MANIFEST_SUFFIXES = (".jsonl",)
VIDEO_FIELDS = ("video", "video_path")


class InputError(ValueError):
    """Nothing to extract (an empty or missing folder), or a manifest line that names no video."""


def list_videos(source: str | os.PathLike[str]) -> list[ClipRecord]:
    """The videos to extract from ``source``: a folder of videos or a ``.jsonl`` manifest.

    Raises:
        InputError: ``source`` does not exist, is an empty folder, or is a file that is not a
            ``.jsonl`` manifest.
        ManifestError: a manifest line that is not JSON or names no video (file and line named).
    """
    path = Path(source)
    if path.is_dir():
        records = _folder_records(path)
        if not records:
            raise InputError(f"{path}: no video files in this folder (looked for {_extensions()})")
        return records
    if path.is_file() and path.suffix.lower() in MANIFEST_SUFFIXES:
        records = _manifest_records(path)
        if not records:
            raise InputError(f"{path}: the manifest lists no video")
        return records
    if path.is_file():
        raise InputError(
            f"{path}: expected a folder of videos or a .jsonl manifest, got a {path.suffix} file"
        )
    raise InputError(f"{path}: no such folder or manifest")


def _extensions() -> str:
    from vtr.data.folder import VIDEO_EXTENSIONS

    return " ".join(VIDEO_EXTENSIONS)


def _folder_records(root: Path) -> list[ClipRecord]:
    root = root.resolve()
    index = index_videos(root)
    files = sorted(set(index.values()))
    return [
        ClipRecord(id=video_key(rel, index), video=os.fspath(root / rel), captions=[], split="test")
        for rel in files
    ]


def _manifest_records(path: Path) -> list[ClipRecord]:
    base = path.resolve().parent
    records: list[ClipRecord] = []
    seen: dict[str, str] = {}
    for where, raw in iter_jsonl(path):
        name = next((raw[f] for f in VIDEO_FIELDS if raw.get(f)), None)
        if not isinstance(name, str):
            raise ManifestError(
                f"{where}: no video; expected a non-empty string field {' or '.join(VIDEO_FIELDS)}"
            )
        video = Path(name) if Path(name).is_absolute() else base / name
        start, end = _seconds(raw, "start", where), _seconds(raw, "end", where)
        default_id = Path(name).with_suffix("").as_posix()
        if start is not None or end is not None:
            default_id += f"@{'' if start is None else f'{start:g}'}-{'' if end is None else f'{end:g}'}"
        clip_id = str(raw.get("id") or default_id)
        if clip_id in seen:
            raise ManifestError(f"{where}: duplicate id {clip_id!r} (first at {seen[clip_id]})")
        seen[clip_id] = where
        records.append(
            ClipRecord(id=clip_id, video=os.fspath(video), captions=[], split="test", start=start, end=end)
        )
    return records


def _seconds(raw: dict, field: str, where: str) -> float | None:
    value = raw.get(field)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ManifestError(f"{where}: field {field!r} is {value!r}; expected seconds >= 0 or null")
    return float(value)
