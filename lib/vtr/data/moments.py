"""Moment-retrieval annotations and predictions: QVHighlights and Charades-STA.

Both use the jsonl format of the Moment-DETR release (Lei, Berg and Bansal, "QVHighlights:
Detecting Moments and Highlights in Videos via Natural Language Queries", NeurIPS 2021), one query
per line:

* ``qid``, ``query``, ``vid``, ``duration`` (seconds), ``relevant_windows`` ([[start, end], ...]
  in seconds);
* QVHighlights only: ``relevant_clip_ids`` (indices of the 2-second clips inside the windows) and
  ``saliency_scores`` (per relevant clip, one 0-4 score from each of three annotators).

Charades-STA (Gao et al., "TALL: Temporal Activity Localization via Language Query", ICCV 2017) is
read from the same format (the lighthouse release). Predictions follow the QVHighlights submission
format: ``pred_relevant_windows`` ([[start, end, score], ...]) and ``pred_saliency_scores`` (one
score per 2-second clip of the video).

Numbers are kept as the file has them (an int duration stays an int) and unknown keys are kept in
``extra``, so reading and writing a file gives it back line for line.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from vtr.atomic import write_text
from vtr.data.manifest import ManifestError, iter_jsonl

_QUERY_KEYS = ("qid", "query", "duration", "vid", "relevant_clip_ids", "saliency_scores", "relevant_windows")
_PRED_KEYS = ("qid", "query", "vid", "pred_relevant_windows", "pred_saliency_scores")


@dataclass
class MomentQuery:
    """One natural-language query and the windows of its video that match it."""

    qid: int | str
    query: str
    vid: str
    duration: float
    windows: list[tuple[float, float]]
    clip_ids: list[int] | None = None  # QVHighlights: relevant 2-second clips
    saliency: list[list[int]] | None = None  # QVHighlights: per relevant clip, three annotators' 0-4 scores
    extra: dict[str, Any] = field(
        default_factory=dict
    )  # keys this format does not know, kept for round trips


@dataclass
class MomentPrediction:
    """A model's answer for one query: scored windows and, optionally, per-clip saliency."""

    qid: int | str
    vid: str
    windows: list[tuple[float, float, float]]  # (start, end, score)
    saliency: list[float] | None = None  # one score per 2-second clip of the video
    query: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _check_id(raw: dict[str, Any], key: str) -> int | str:
    value = raw[key]
    if isinstance(value, bool) or not isinstance(value, int | str) or value == "":
        raise ValueError(f"field {key!r} must be an int or a non-empty string, got {value!r}")
    return value


def _check_text(raw: dict[str, Any], key: str) -> str:
    value = raw[key]
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"field {key!r} must be a non-empty string, got {value!r}")
    return value


def _parse_query(raw: dict[str, Any]) -> MomentQuery:
    if missing := [k for k in ("qid", "query", "vid", "duration", "relevant_windows") if k not in raw]:
        raise ValueError(f"missing field(s) {missing}")
    duration = raw["duration"]
    if not _is_number(duration) or duration <= 0:
        raise ValueError(f"field 'duration' must be a positive number, got {duration!r}")
    windows = raw["relevant_windows"]
    if not isinstance(windows, list) or not windows:
        raise ValueError(f"field 'relevant_windows' must be a non-empty list, got {windows!r}")
    for w in windows:
        if not (isinstance(w, list | tuple) and len(w) == 2 and all(_is_number(x) for x in w)):
            raise ValueError(f"field 'relevant_windows': {w!r} is not a [start, end] pair of numbers")
        if not 0 <= w[0] < w[1] <= duration:
            raise ValueError(
                f"field 'relevant_windows': {list(w)} must satisfy 0 <= start < end <= duration ({duration})"
            )
    clip_ids, saliency = raw.get("relevant_clip_ids"), raw.get("saliency_scores")
    if clip_ids is not None and not (
        isinstance(clip_ids, list) and all(_is_int(c) and c >= 0 for c in clip_ids)
    ):
        raise ValueError(f"field 'relevant_clip_ids' must be a list of non-negative ints, got {clip_ids!r}")
    if saliency is not None:
        if not isinstance(saliency, list) or not all(
            isinstance(s, list) and all(_is_number(x) for x in s) for s in saliency
        ):
            raise ValueError(
                "field 'saliency_scores' must be a list of lists of numbers (one list per relevant clip)"
            )
        if clip_ids is None or len(saliency) != len(clip_ids):
            raise ValueError(
                f"field 'saliency_scores' has {len(saliency)} entries but 'relevant_clip_ids' has "
                f"{None if clip_ids is None else len(clip_ids)}"
            )
    return MomentQuery(
        qid=_check_id(raw, "qid"),
        query=_check_text(raw, "query"),
        vid=_check_text(raw, "vid"),
        duration=duration,
        windows=[(w[0], w[1]) for w in windows],
        clip_ids=clip_ids,
        saliency=saliency,
        extra={k: v for k, v in raw.items() if k not in _QUERY_KEYS},
    )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _parse_prediction(raw: dict[str, Any]) -> MomentPrediction:
    if missing := [k for k in ("qid", "vid", "pred_relevant_windows") if k not in raw]:
        raise ValueError(f"missing field(s) {missing}")
    windows = raw["pred_relevant_windows"]
    if not isinstance(windows, list):
        raise ValueError(f"field 'pred_relevant_windows' must be a list, got {windows!r}")
    for w in windows:
        if not (isinstance(w, list | tuple) and len(w) == 3 and all(_is_number(x) for x in w)):
            raise ValueError(
                f"field 'pred_relevant_windows': {w!r} is not a [start, end, score] triple of numbers"
            )
        if w[1] < w[0]:
            raise ValueError(f"field 'pred_relevant_windows': {list(w)} ends before it starts")
    saliency = raw.get("pred_saliency_scores")
    if saliency is not None and not (isinstance(saliency, list) and all(_is_number(x) for x in saliency)):
        raise ValueError("field 'pred_saliency_scores' must be a list of numbers")
    query = raw.get("query")
    return MomentPrediction(
        qid=_check_id(raw, "qid"),
        vid=_check_text(raw, "vid"),
        windows=[(w[0], w[1], w[2]) for w in windows],
        saliency=saliency,
        query=query if query is None else _check_text(raw, "query"),
        extra={k: v for k, v in raw.items() if k not in _PRED_KEYS},
    )


T = TypeVar("T")


def _read_located(
    path: str | os.PathLike[str], parse: Callable[[dict[str, Any]], T]
) -> list[tuple[str, T]]:
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"moment file {path} not found")
    items: list[tuple[str, T]] = []
    seen: dict[Any, str] = {}
    for where, raw in iter_jsonl(path):
        try:
            item = parse(raw)
        except ValueError as err:
            raise ManifestError(f"{where}: {err}") from None
        qid = item.qid  # type: ignore[attr-defined]
        if qid in seen:
            raise ManifestError(f"{where}: field 'qid' {qid!r} already used at {seen[qid]}")
        seen[qid] = where
        items.append((where, item))
    return items


def _read_jsonl(path: str | os.PathLike[str], parse: Callable[[dict[str, Any]], T]) -> list[T]:
    return [item for _, item in _read_located(path, parse)]


def load_moments(path: str | os.PathLike[str]) -> list[MomentQuery]:
    """Read and validate a QVHighlights / Charades-STA jsonl file.

    Raises :class:`ManifestError` naming ``file:line`` and the field for a malformed line: missing
    fields, a window outside [0, duration] or with start >= end, saliency not matching clip ids,
    or a repeated ``qid``.
    """
    return _read_jsonl(path, _parse_query)


def load_predictions(path: str | os.PathLike[str]) -> list[MomentPrediction]:
    """Read and validate predictions in the QVHighlights submission format."""
    return _read_jsonl(path, _parse_prediction)


def load_moments_located(path: str | os.PathLike[str]) -> list[tuple[str, MomentQuery]]:
    """:func:`load_moments` with each query's ``"file:line"``, for checks that name the line later."""
    return _read_located(path, _parse_query)


def load_predictions_located(path: str | os.PathLike[str]) -> list[tuple[str, MomentPrediction]]:
    """:func:`load_predictions` with each prediction's ``"file:line"`` (the evaluator's checks name it)."""
    return _read_located(path, _parse_prediction)


def query_to_json(q: MomentQuery) -> dict[str, Any]:
    """The jsonl object of ``q``, keys in the order of the QVHighlights release."""
    raw: dict[str, Any] = {"qid": q.qid, "query": q.query, "duration": q.duration, "vid": q.vid}
    if q.clip_ids is not None:
        raw["relevant_clip_ids"] = q.clip_ids
    if q.saliency is not None:
        raw["saliency_scores"] = q.saliency
    raw["relevant_windows"] = [list(w) for w in q.windows]
    return {**raw, **q.extra}


def prediction_to_json(p: MomentPrediction) -> dict[str, Any]:
    """The jsonl object of ``p``, keys in the order of the Moment-DETR submission files."""
    raw: dict[str, Any] = {"qid": p.qid}
    if p.query is not None:
        raw["query"] = p.query
    raw.update(vid=p.vid, pred_relevant_windows=[list(w) for w in p.windows])
    if p.saliency is not None:
        raw["pred_saliency_scores"] = p.saliency
    return {**raw, **p.extra}


def _write_jsonl(path: str | os.PathLike[str], objects: Iterable[dict[str, Any]]) -> Path:
    # json.dumps defaults (", " / ": " separators, ASCII escapes) are what the releases use.
    lines = [json.dumps(obj) for obj in objects]
    return write_text(path, "".join(line + "\n" for line in lines))


def _write_validated(
    path: str | os.PathLike[str],
    items: Iterable[Any],
    to_json: Callable[[Any], dict[str, Any]],
    parse: Callable[[dict[str, Any]], Any],
    kind: str,
) -> Path:
    """Serialise each item, check it parses back and that its ``qid`` is new, then write atomically."""
    objects: list[dict[str, Any]] = []
    seen: set[int | str] = set()
    for i, item in enumerate(items):
        raw = to_json(item)
        if item.qid in seen:
            raise ManifestError(f"{path}: {kind} {i}: field 'qid' {item.qid!r} appears twice")
        seen.add(item.qid)
        try:
            parse(raw)
        except ValueError as err:
            raise ManifestError(f"{path}: {kind} {i} (qid {item.qid!r}): {err}") from None
        objects.append(raw)
    return _write_jsonl(path, objects)


def write_moments(path: str | os.PathLike[str], queries: Iterable[MomentQuery]) -> Path:
    """Validate and write ``queries`` atomically in the format :func:`load_moments` reads."""
    return _write_validated(path, queries, query_to_json, _parse_query, "query")


def write_predictions(path: str | os.PathLike[str], predictions: Iterable[MomentPrediction]) -> Path:
    """Validate and write ``predictions`` atomically in the QVHighlights submission format."""
    return _write_validated(path, predictions, prediction_to_json, _parse_prediction, "prediction")
