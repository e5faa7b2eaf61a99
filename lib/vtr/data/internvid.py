"""InternVid metadata: load it (hub or local file), validate rows, select short aesthetic clips.

InternVid (10M-FLT, 18M-AES, ...) ships one row per clip: ``YoutubeID``, ``Start_timestamp`` and
``End_timestamp`` ("HH:MM:SS.mmm" inside the YouTube video), ``Caption``, ``Aesthetic_Score`` and
``UMT_Score``. The clips themselves must be fetched from YouTube (:mod:`vtr.download`).

    rows = load_metadata("OpenGVLab/InternVid", subset="InternVid-18M", split="AES")  # streamed
    sel = select_clips(rows, min_aesthetic=4.0, min_duration=3.0, max_duration=15.0, count=50)

Rows are streamed, so taking the first 1,000 matches never downloads the 18M-row file. A bad row
(missing caption, malformed id or timestamp) is recorded in ``sel.rejected`` with the field and
the reason; it never stops the selection.
"""

from __future__ import annotations

import math
import os
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vtr.data.manifest import hash_split
from vtr.keys import hub_offline

COLUMNS = ("YoutubeID", "Start_timestamp", "End_timestamp", "Caption", "Aesthetic_Score", "UMT_Score")
YOUTUBE_ID = re.compile(r"[A-Za-z0-9_-]{11}")
_TIMESTAMP = re.compile(r"(\d+):([0-5]\d):([0-5]\d)(?:\.(\d{1,6}))?")
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")
_FILE_BUILDERS = {".jsonl": "json", ".json": "json", ".parquet": "parquet", ".csv": "csv"}


class MetadataError(RuntimeError):
    """The metadata cannot be loaded (file missing, hub unreachable, unknown subset)."""


class RowError(ValueError):
    """One metadata row is invalid; ``field`` names the column at fault."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def parse_timestamp(text: str) -> int:
    """``"HH:MM:SS.mmm"`` → milliseconds (an int, so that clip names and ids are exact)."""
    if not isinstance(text, str):
        raise ValueError(f"expected a 'HH:MM:SS.mmm' string, got {type(text).__name__} {text!r}")
    match = _TIMESTAMP.fullmatch(text.strip())
    if not match:
        raise ValueError(f"{text!r} is not of the form 'HH:MM:SS.mmm'")
    hours, minutes, seconds, fraction = match.groups()
    whole = (int(hours) * 60 + int(minutes)) * 60 + int(seconds)
    millis = round(int(fraction) / 10 ** (len(fraction) - 3)) if fraction else 0
    return whole * 1000 + millis


@dataclass(frozen=True)
class InternVidClip:
    """One validated metadata row: a span of a YouTube video with its caption and scores."""

    youtube_id: str
    start_ms: int
    end_ms: int
    caption: str
    aesthetic: float | None = None
    umt: float | None = None
    row: int = -1  # position in the metadata, for error messages

    @property
    def start(self) -> float:
        return self.start_ms / 1000

    @property
    def end(self) -> float:
        return self.end_ms / 1000

    @property
    def duration(self) -> float:
        return (self.end_ms - self.start_ms) / 1000

    @property
    def clip_id(self) -> str:
        """Unique per clip (one video holds many clips); built only from validated fields."""
        return f"{self.youtube_id}_{self.start_ms:08d}_{self.end_ms:08d}"

    @property
    def filename(self) -> str:
        return f"{self.clip_id}.mp4"

    @property
    def start_timestamp(self) -> str:
        return format_timestamp(self.start_ms)

    @property
    def end_timestamp(self) -> str:
        return format_timestamp(self.end_ms)


def format_timestamp(ms: int) -> str:
    """Milliseconds → ``"HH:MM:SS.mmm"`` (the inverse of :func:`parse_timestamp`)."""
    seconds, millis = divmod(ms, 1000)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}.{millis:03d}"


@dataclass(frozen=True)
class RejectedRow:
    """A metadata row that failed validation, kept so the user can see what was dropped and why."""

    row: int
    field: str
    reason: str
    raw: dict[str, Any]


def parse_row(raw: Mapping[str, Any], row: int = -1) -> InternVidClip:
    """Validate one metadata row; raises :class:`RowError` naming the offending field."""
    youtube_id = _required(raw, "YoutubeID")
    if not isinstance(youtube_id, str) or not YOUTUBE_ID.fullmatch(youtube_id):
        raise RowError("YoutubeID", f"{youtube_id!r} is not an 11-character YouTube id ([A-Za-z0-9_-])")
    start_ms = _timestamp(raw, "Start_timestamp")
    end_ms = _timestamp(raw, "End_timestamp")
    if end_ms <= start_ms:
        raise RowError("End_timestamp", f"{raw['End_timestamp']!r} is not after {raw['Start_timestamp']!r}")
    caption = _required(raw, "Caption")
    if not isinstance(caption, str) or not caption.strip():
        raise RowError("Caption", f"empty or not a string: {caption!r}")
    return InternVidClip(
        youtube_id=youtube_id,
        start_ms=start_ms,
        end_ms=end_ms,
        caption=caption.strip(),
        aesthetic=_score(raw, "Aesthetic_Score"),
        umt=_score(raw, "UMT_Score"),
        row=row,
    )


def _required(raw: Mapping[str, Any], name: str) -> Any:
    value = raw.get(name)
    if value is None:
        raise RowError(name, "missing")
    return value


def _timestamp(raw: Mapping[str, Any], name: str) -> int:
    value = _required(raw, name)
    try:
        return parse_timestamp(value)
    except ValueError as err:
        raise RowError(name, str(err)) from None


def _score(raw: Mapping[str, Any], name: str) -> float | None:
    """Scores are optional (not every InternVid release has both) but must be numbers when present."""
    value = raw.get(name)
    if value is None:
        return None
    try:
        score = float(value)
    except (TypeError, ValueError):
        raise RowError(name, f"not a number: {value!r}") from None
    return None if math.isnan(score) else score


@dataclass
class Selection:
    """The clips kept by :func:`select_clips`, plus an account of every row that was not."""

    clips: list[InternVidClip] = field(default_factory=list)
    rejected: list[RejectedRow] = field(default_factory=list)  # invalid rows
    filtered: Counter[str] = field(default_factory=Counter)  # valid rows dropped, by reason
    rows_read: int = 0

    def summary(self) -> str:
        dropped = ", ".join(f"{k} {v}" for k, v in sorted(self.filtered.items())) or "none"
        return (
            f"read {self.rows_read} rows: kept {len(self.clips)}, invalid {len(self.rejected)}, "
            f"filtered out: {dropped}"
        )


def select_clips(
    rows: Iterable[Mapping[str, Any]],
    *,
    min_aesthetic: float | None = 4.0,
    min_duration: float = 3.0,
    max_duration: float = 15.0,
    count: int | None = None,
) -> Selection:
    """Keep valid rows with aesthetic ≥ ``min_aesthetic`` and duration in [min, max], in input order.

    Stops reading once ``count`` clips are kept, so a streamed 18M-row source is read only as far
    as needed. A repeated clip (same video and timestamps) is kept once.
    """
    sel = Selection()
    seen: set[str] = set()
    for index, raw in enumerate(rows):
        if count is not None and len(sel.clips) >= count:
            break
        sel.rows_read += 1
        try:
            clip = parse_row(raw, index)
        except RowError as err:
            sel.rejected.append(RejectedRow(index, err.field, err.reason, dict(raw)))
            continue
        reason = _filter_reason(clip, min_aesthetic, min_duration, max_duration)
        if reason is None and clip.clip_id in seen:
            reason = "duplicate"
        if reason:
            sel.filtered[reason] += 1
            continue
        seen.add(clip.clip_id)
        sel.clips.append(clip)
    return sel


def _filter_reason(
    clip: InternVidClip, min_aesthetic: float | None, min_duration: float, max_duration: float
) -> str | None:
    if min_aesthetic is not None:
        if clip.aesthetic is None:
            return "no_aesthetic_score"
        if clip.aesthetic < min_aesthetic:
            return "low_aesthetic"
    if clip.duration < min_duration:
        return "too_short"
    if clip.duration > max_duration:
        return "too_long"
    return None


def split_for(key: str, fractions: Sequence[float] = (0.8, 0.1, 0.1)) -> str:
    """train / val / test from a hash of ``key``: stable across runs, machines and subsets.

    Callers pass the YouTube id, so all clips cut from one video land in the same split and no
    test video leaks into training. The one hash split of vtr (:func:`vtr.data.manifest.hash_split`),
    unseeded: the same id always lands in the same split.
    """
    return hash_split(key, None, fractions)


def is_hub_id(source: str) -> bool:
    """``owner/name`` that is not an existing path and has no data-file suffix."""
    return (
        bool(_HUB_ID.fullmatch(source))
        and not Path(source).exists()
        and Path(source).suffix.lower() not in _FILE_BUILDERS
    )


def load_metadata(
    source: str | os.PathLike[str], subset: str | None = None, split: str = "train"
) -> Iterator[dict[str, Any]]:
    """Stream metadata rows (dicts) from a local jsonl/json/parquet/csv file or a hub dataset id.

    ``subset`` and ``split`` apply to hub datasets (e.g. ``"InternVid-18M"`` / ``"AES"``); a local
    file is read as one split. Offline (``HF_HUB_OFFLINE`` / ``HF_DATASETS_OFFLINE``) or without a
    connection, a hub id fails at once with :class:`MetadataError` instead of retrying for minutes.
    """
    import datasets

    text = os.fspath(source)
    if is_hub_id(text):
        _check_hub_reachable(text)
        try:
            ds = datasets.load_dataset(text, subset or None, split=split, streaming=True)
        except Exception as err:  # noqa: BLE001 - any loader failure becomes one clear message
            raise MetadataError(
                f"cannot load {text!r} (subset {subset!r}, split {split!r}) from the hub: {err}. "
                "InternVid is gated: accept its terms on the dataset page and log in "
                "(`hf auth login` or HF_TOKEN), or pass a local jsonl/parquet file."
            ) from err
        return _rows(ds, text)
    path = Path(text).expanduser()
    builder = _FILE_BUILDERS.get(path.suffix.lower())
    if not path.is_file():
        raise MetadataError(f"metadata file not found: {path} (expected a local file or a hub id owner/name)")
    if builder is None:
        raise MetadataError(f"{path}: unsupported metadata format; use one of {sorted(_FILE_BUILDERS)}")
    try:
        ds = datasets.load_dataset(builder, data_files=str(path), split="train", streaming=True)
    except Exception as err:  # noqa: BLE001
        raise MetadataError(f"cannot read metadata file {path}: {err}") from err
    return _rows(ds, str(path))


def _rows(ds: Iterable[dict[str, Any]], where: str) -> Iterator[dict[str, Any]]:
    """Iterate, turning a mid-stream read failure into a :class:`MetadataError` naming the source."""
    iterator = iter(ds)
    while True:
        try:
            row = next(iterator)
        except StopIteration:
            return
        except Exception as err:  # noqa: BLE001
            raise MetadataError(f"error while reading metadata {where}: {err}") from err
        yield row


def _check_hub_reachable(repo_id: str) -> None:
    """One quick request, so a missing network fails in a second, not after minutes of retries."""
    hint = "pass a local jsonl/parquet copy of the metadata instead (--metadata PATH)"
    if hub_offline():
        raise MetadataError(
            f"{repo_id!r} is a hub dataset id but HF_HUB_OFFLINE/HF_DATASETS_OFFLINE is set; {hint}"
        )
    from huggingface_hub import HfApi
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    try:
        HfApi().dataset_info(repo_id, timeout=15)
    except GatedRepoError:
        return  # reachable; load_dataset reports the missing access with its own message
    except RepositoryNotFoundError:
        raise MetadataError(f"no dataset {repo_id!r} on the hub; {hint}") from None
    except Exception as err:  # noqa: BLE001 - connection errors differ between httpx/requests versions
        raise MetadataError(f"cannot reach the Hugging Face hub for {repo_id!r} ({err}); {hint}") from err
