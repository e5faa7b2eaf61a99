"""The canonical manifest: one JSON object per line, one line per clip, for every data source.

Fields: ``id``, ``video`` (path, relative to the manifest's folder or absolute), ``captions``
(list of strings, at least one), ``start`` / ``end`` (seconds inside the video file, or null for
the whole file), ``split`` (train / val / test), ``category`` (string or null) and ``meta`` (a
free dict for source-specific fields, such as MSR-VTT's url or the sample world's motion).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vtr.atomic import write_text
from vtr.keys import unit_hash

SPLITS = ("train", "val", "test")


class ManifestError(ValueError):
    """A manifest or annotation file that does not match its format: names the file, the line and the field."""


@dataclass
class ClipRecord:
    id: str
    video: str
    captions: list[str]
    split: str  # required: a record never lands in a split by default (train / val / test)
    start: float | None = None
    end: float | None = None
    category: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def video_path(self, base: str | os.PathLike[str]) -> Path:
        """The video file, resolving a relative ``video`` against ``base`` (the manifest's folder)."""
        p = Path(self.video)
        return p if p.is_absolute() else Path(base) / p

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True, ensure_ascii=False)


def validate(record: ClipRecord, where: str = "") -> ClipRecord:
    prefix = f"{where}: " if where else ""
    if not record.id or not isinstance(record.id, str):
        raise ManifestError(f"{prefix}field 'id' must be a non-empty string, got {record.id!r}")
    if not record.video:
        raise ManifestError(f"{prefix}field 'video' is empty for id {record.id!r}")
    if (
        not isinstance(record.captions, list)
        or not record.captions
        or not all(isinstance(c, str) and c.strip() for c in record.captions)
    ):
        raise ManifestError(
            f"{prefix}field 'captions' must be a non-empty list of non-empty strings for id {record.id!r}"
        )
    if record.split not in SPLITS:
        raise ManifestError(
            f"{prefix}field 'split' is {record.split!r} for id {record.id!r}; expected {SPLITS}"
        )
    if record.start is not None and record.end is not None and record.end <= record.start:
        raise ManifestError(f"{prefix}'end' ({record.end}) <= 'start' ({record.start}) for id {record.id!r}")
    return record


def write_manifest(path: str | os.PathLike[str], records: Iterable[ClipRecord]) -> Path:
    """Validate and write ``records`` atomically; ids must be unique."""
    seen: set[str] = set()
    lines = []
    for i, rec in enumerate(records):
        validate(rec, f"{path} record {i}")
        if rec.id in seen:
            raise ManifestError(f"{path}: duplicate id {rec.id!r}")
        seen.add(rec.id)
        lines.append(rec.to_json())
    return write_text(path, "\n".join(lines) + ("\n" if lines else ""))


def iter_jsonl(path: str | os.PathLike[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    """``("file:line", object)`` for each non-blank line of a jsonl file; a bad line is a ManifestError."""
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                raw = json.loads(line)
            except json.JSONDecodeError as err:
                raise ManifestError(f"{where}: not valid JSON ({err.msg})") from None
            if not isinstance(raw, dict):
                raise ManifestError(f"{where}: expected a JSON object, got {type(raw).__name__}")
            yield where, raw


def read_manifest(path: str | os.PathLike[str], split: str | None = None) -> list[ClipRecord]:
    """Read and validate a manifest; ``split`` keeps only that split."""
    names = {f.name for f in dataclasses.fields(ClipRecord)}
    records = []
    for where, raw in iter_jsonl(path):
        unknown = set(raw) - names
        if unknown:
            raise ManifestError(f"{where}: unknown field(s) {sorted(unknown)}; valid fields: {sorted(names)}")
        missing = {"id", "video", "captions", "split"} - set(raw)
        if missing:
            raise ManifestError(f"{where}: missing field(s) {sorted(missing)}")
        rec = validate(ClipRecord(**raw), where)
        if split is None or rec.split == split:
            records.append(rec)
    return records


class DataWarning(UserWarning):
    """Something in a data source was skipped; the loader's ``report`` lists what and why."""


class LoadedRecords(list[ClipRecord]):
    """The loaded :class:`ClipRecord` list plus ``report``: what was skipped and why (JSON-able)."""

    def __init__(self, records: Iterable[ClipRecord] = (), report: dict[str, Any] | None = None):
        super().__init__(records)
        self.report: dict[str, Any] = report if report is not None else {}


def warn_skipped(source: str | os.PathLike[str], what: str, items: Sequence[Any], limit: int = 5) -> None:
    """One :class:`DataWarning` per kind of problem, showing the first few items."""
    if items:
        shown = ", ".join(str(x) for x in items[:limit]) + (", ..." if len(items) > limit else "")
        warnings.warn(f"{source}: {len(items)} {what}: {shown}", DataWarning, stacklevel=3)


def hash_split(key: str, seed: int | None, fractions: Sequence[float]) -> str:
    """A deterministic split for ``key``: :func:`vtr.keys.unit_hash` of ``seed:key`` (or of ``key``
    when ``seed`` is None) bucketed by ``fractions`` (train, val, test).

    Independent of the order and number of other keys, so adding videos never moves existing ones.
    """
    check_split_fractions(fractions)
    u = unit_hash(key, seed)
    cumulative = 0.0
    for split, fraction in zip(SPLITS, fractions, strict=True):
        cumulative += fraction
        if u < cumulative:
            return split
    # only when the fractions' float sum falls short of 1: the last split that takes any share
    return next(s for s, f in zip(reversed(SPLITS), reversed(fractions), strict=True) if f > 0)


def check_split_fractions(fractions: Sequence[float]) -> None:
    if (
        len(fractions) != len(SPLITS)
        or any(f < 0 for f in fractions)
        or not math.isclose(sum(fractions), 1.0)
    ):
        raise ValueError(
            f"split_fractions must be {len(SPLITS)} non-negative numbers summing to 1 {SPLITS}, got {fractions}"
        )
