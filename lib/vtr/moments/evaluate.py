"""Moment-retrieval and highlight-detection metrics, computed as the official QVHighlights evaluator does.

The official evaluator is ``standalone_eval/eval.py`` of the Moment-DETR release (Lei, Berg and
Bansal, NeurIPS 2021). This module is an independent implementation of the same definitions; on the
Moment-DETR sample predictions it reproduces every number of the release's
``sample_val_preds_metrics_raw.json`` (``tests/moments/test_evaluate.py`` checks it).

**Moment retrieval (MR)**, per query, on the ground-truth windows and the predicted
``[start, end, score]`` windows:

* ``MR-R1@t``: the *first* predicted window (file order; submissions are sorted by score) has a
  temporal IoU of at least ``t`` with some ground-truth window;
* ``MR-mAP@t``: average precision of the first 10 predicted windows (file order), ranked by score
  (ties keep file order), each matched greedily to the unmatched ground-truth window of highest IoU
  (ties: the later window) when that IoU is at least ``t``; precision interpolated as in the
  VOC 2011 devkit (ActivityNet's detection AP). ``average`` is the mean over
  ``t = 0.5, 0.55, ..., 0.95``.

Every value is the mean over queries, in percent, rounded to 2 decimals. The ``short``, ``middle`` and
``long`` splits keep, of each query, the ground-truth windows of length in (0, 10], (10, 30] and
(30, 150] seconds, and only the queries that keep at least one; ``full`` is every query.

**Highlight detection (HL)**: the video is cut into 2-second clips (``int(duration / 2)`` of them); a
clip's ground truth is the three annotators' 0-4 saliency scores (0 for clips outside
``relevant_clip_ids``); ``min-Fair`` / ``min-Good`` / ``min-VeryGood`` call a clip positive for one
annotator when that annotator gave at least 2 / 3 / 4.

* ``HL-mAP``: per query and annotator, the average precision of the predicted saliency scores
  (truncated, or padded with zeros, to the number of clips) against that annotator's positives: the
  mean, over the distinct recall levels reached as the score threshold is lowered (tied scores form
  one step), of the best precision at that recall or higher; 1 when every clip is positive and 0 when
  none is. Averaged over annotators, then queries.
* ``HL-Hit1``: the clip of the highest predicted saliency (the first on ties) is positive for at
  least one annotator.

Beside the official numbers: Charades-STA's ``R1@t`` and ``mIoU`` (:func:`evaluate_charades`), and
the two metrics of the seed project (``seeds/004``), which names them without a formula, so the
definitions are ours: ``R@K,IoU=t`` (:func:`recall_at_k`: one of the first K windows reaches IoU t
with a ground-truth window, TALL's "R@K, IoU=m") and temporal consistency
(:func:`temporal_consistency`: 100 x (1 - the mean absolute step between consecutive clips of the
min-max normalised saliency curve); 100 is a flat or monotone-in-one-step curve, lower is jumpier).

**Intervals** (``n_boot > 0``): every metric above is a mean of per-query values, so its interval is
a percentile bootstrap that resamples *videos* with all their queries (queries of one video are not
independent), through :func:`vtr.metrics.bootstrap_ci`. The official numbers stay point estimates.

**Checks** (:func:`check_predictions`): a prediction for every ground-truth query and for no other,
each with at least one window, windows inside ``[0, duration]``, saliency for all queries or none;
each error names the qid and the ``file:line``. The Moment-DETR sample predictions have two windows
that end after their video (lines 98 and 403; the model predicts over the full 150-second segment);
``allow_overrun=True`` scores such windows as they are, as the official evaluator does.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from vtr.data.manifest import ManifestError
from vtr.data.moments import MomentPrediction, MomentQuery, load_moments_located, load_predictions_located
from vtr.metrics import bootstrap_ci

IOU_THRESHOLDS: tuple[float, ...] = tuple(round(0.5 + 0.05 * i, 2) for i in range(10))
MAX_PRED_WINDOWS = 10  # the official mAP reads the first 10 windows of each prediction
CLIP_SECONDS = 2.0  # QVHighlights saliency clips
LENGTH_RANGES: dict[str, tuple[float, float]] = {  # (low, high]: GT window length, seconds
    "short": (0.0, 10.0),
    "middle": (10.0, 30.0),
    "long": (30.0, 150.0),
}
SALIENCY_LEVELS: dict[str, int] = {"Fair": 2, "Good": 3, "VeryGood": 4}
CHARADES_THRESHOLDS: tuple[float, ...] = (0.3, 0.5, 0.7)


class PredictionError(ManifestError):
    """A predictions file that cannot be scored against its ground truth; names the qid and the line."""


# --------------------------------------------------------------------------- per-query pieces


def temporal_iou(spans_a: Any, spans_b: Any) -> np.ndarray:
    """IoU of every ``[start, end]`` in ``spans_a`` (N, 2+) with every one in ``spans_b`` (M, 2+): (N, M).

    Extra columns (a score) are ignored; a pair whose union is empty (two zero-length windows at
    the same time) has IoU 0.
    """
    a = np.asarray(spans_a, dtype=np.float64).reshape(-1, np.shape(spans_a)[-1])[:, :2]
    b = np.asarray(spans_b, dtype=np.float64).reshape(-1, np.shape(spans_b)[-1])[:, :2]
    inter = np.clip(
        np.minimum(a[:, None, 1], b[None, :, 1]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None
    )
    union = (a[:, 1] - a[:, 0])[:, None] + (b[:, 1] - b[:, 0])[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def _voc_ap(precision: np.ndarray, recall: np.ndarray) -> float:
    """Area under the precision envelope (VOC 2011): precision at recall r is the best at recall >= r."""
    prec = np.concatenate([[0.0], precision, [0.0]])
    rec = np.concatenate([[0.0], recall, [1.0]])
    envelope = np.maximum.accumulate(prec[::-1])[::-1]
    steps = np.flatnonzero(rec[1:] != rec[:-1]) + 1
    return float(np.sum((rec[steps] - rec[steps - 1]) * envelope[steps]))


def detection_ap(
    gt_windows: Any, pred_windows: Any, thresholds: Sequence[float] = IOU_THRESHOLDS
) -> np.ndarray:
    """Average precision of one query's scored windows at each IoU threshold: ``(len(thresholds),)``.

    ``pred_windows`` is ``(N, 3)`` ``[start, end, score]``, ``gt_windows`` ``(M, 2)``. Windows are ranked by
    score (ties keep their order); each is a true positive when the unmatched ground-truth window of
    highest IoU with it (ties: the later one) reaches the threshold, and that window is then matched.
    """
    pred = np.asarray(pred_windows, dtype=np.float64).reshape(-1, 3)
    gt = np.asarray(gt_windows, dtype=np.float64).reshape(-1, 2)
    if len(pred) == 0:
        return np.zeros(len(thresholds))
    pred = pred[np.argsort(-pred[:, 2], kind="stable")]
    iou = temporal_iou(pred, gt)
    # Candidates in decreasing IoU, later window first among equals (the official argsort()[::-1]).
    order = np.argsort(iou, axis=1, kind="stable")[:, ::-1]
    aps = np.zeros(len(thresholds))
    for t, threshold in enumerate(thresholds):
        matched = np.zeros(len(gt), dtype=bool)
        hits = np.zeros(len(pred))
        for i, candidates in enumerate(order):
            for j in candidates:
                if iou[i, j] < threshold:
                    break
                if not matched[j]:
                    matched[j] = True
                    hits[i] = 1.0
                    break
        tp = np.cumsum(hits)
        aps[t] = _voc_ap(tp / np.arange(1, len(pred) + 1), tp / len(gt))
    return aps


def saliency_ap(positives: Any, scores: Any) -> float:
    """Average precision of clip ``scores`` against binary ``positives`` as the official HL-mAP takes it.

    Lowering the threshold through the distinct scores (tied clips enter together) gives one
    precision/recall point per score; the AP is the mean, over the distinct non-zero recall levels,
    of the best precision at that recall or higher. All positive: 1; none: 0.
    """
    y = np.asarray(positives, dtype=np.float64).reshape(-1)
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(y) != len(s) or len(y) == 0:
        raise ValueError(f"need one score per clip, got {len(s)} scores for {len(y)} clips")
    if np.all(y == y[0]):
        return float(y[0] != 0)
    order = np.argsort(-s, kind="stable")
    ranked_scores, ranked_pos = s[order], y[order]
    last_of_tie = np.flatnonzero(np.r_[ranked_scores[1:] != ranked_scores[:-1], True])
    tp = np.cumsum(ranked_pos)[last_of_tie]
    precision = tp / (last_of_tie + 1)
    recall = tp / tp[-1]
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    first_at_level = np.flatnonzero((recall > 0) & (np.r_[0.0, recall[:-1]] != recall))
    return float(np.mean(envelope[first_at_level]))


def _clip_scores(query: MomentQuery) -> np.ndarray:
    """The three annotators' 0-4 scores of every 2-second clip of the video: ``(n_clips, 3)``."""
    n_clips = int(query.duration / CLIP_SECONDS)
    scores = np.zeros((n_clips, 3))
    if query.clip_ids:
        scores[np.asarray(query.clip_ids)] = np.asarray(query.saliency, dtype=np.float64)
    return scores


def _fit_length(values: np.ndarray, n: int) -> np.ndarray:
    """Truncate, or pad with zeros, to ``n`` values (the official evaluator's rule for saliency)."""
    out = np.zeros(n)
    out[: min(n, len(values))] = values[:n]
    return out


def highlight_scores(query: MomentQuery, saliency: Sequence[float], min_score: int) -> tuple[float, float]:
    """One query's ``(HL AP, Hit@1)`` in [0, 1] at a minimum annotator score (2 Fair, 3 Good, 4 VeryGood)."""
    positive = _clip_scores(query) >= min_score
    pred = np.asarray(saliency, dtype=np.float64)
    fitted = _fit_length(pred, len(positive))
    ap = float(np.mean([saliency_ap(positive[:, w], fitted) for w in range(positive.shape[1])]))
    top = int(np.argmax(pred))
    hit = float(top < len(positive) and positive[top].any())
    return ap, hit


def top1_iou(query: MomentQuery, prediction: MomentPrediction) -> float:
    """IoU of the first predicted window with the ground-truth window it overlaps most."""
    return float(temporal_iou(prediction.windows[:1], query.windows).max())


def recall_at_k(query: MomentQuery, prediction: MomentPrediction, k: int, threshold: float) -> float:
    """1.0 when one of the first ``k`` predicted windows has IoU >= ``threshold`` with a ground-truth window."""
    return float(temporal_iou(prediction.windows[:k], query.windows).max() >= threshold)


def temporal_consistency(saliency: Sequence[float]) -> float:
    """``1 - mean |s[t+1] - s[t]|`` of the saliency curve min-max normalised to [0, 1]; 1 for a flat curve.

    The seed project's "smoothness of predictions over time", made precise: a curve that rises once
    from its minimum to its maximum scores ``1 - 1 / (n - 1)``, one that alternates between them 0.
    """
    s = np.asarray(saliency, dtype=np.float64)
    if len(s) < 2 or np.ptp(s) == 0:
        return 1.0
    return float(1.0 - np.mean(np.abs(np.diff((s - s.min()) / np.ptp(s)))))


# --------------------------------------------------------------------------- checks


def _where(locations: Sequence[str] | None, i: int, kind: str) -> str:
    return locations[i] if locations is not None else f"{kind} {i}"


def check_predictions(
    predictions: Sequence[MomentPrediction],
    ground_truth: Sequence[MomentQuery],
    *,
    pred_locations: Sequence[str] | None = None,
    gt_locations: Sequence[str] | None = None,
    allow_overrun: bool = False,
) -> None:
    """Raise :class:`PredictionError` naming the qid and line of the first prediction that cannot be scored.

    Checked: no qid twice; a prediction for every ground-truth qid and none for another; at least one
    window each; windows with ``0 <= start <= end <= duration`` (``allow_overrun``: ends after the
    video are scored as they are); saliency scores (non-empty) for all predictions or for none, and
    ground-truth saliency wherever predictions have it. ``*_locations`` give each item's ``file:line``.
    """
    gt_by_qid = {q.qid: q for q in ground_truth}
    seen: dict[int | str, str] = {}
    with_saliency = None
    for i, pred in enumerate(predictions):
        where = _where(pred_locations, i, "prediction")
        if pred.qid in seen:
            raise PredictionError(f"{where}: qid {pred.qid!r} appears twice (first at {seen[pred.qid]})")
        seen[pred.qid] = where
        query = gt_by_qid.get(pred.qid)
        if query is None:
            raise PredictionError(f"{where}: qid {pred.qid!r} is not in the ground truth")
        if not pred.windows:
            raise PredictionError(f"{where}: qid {pred.qid!r} has no predicted window")
        for start, end, _ in pred.windows:
            if start < 0 or end < start or (end > query.duration and not allow_overrun):
                raise PredictionError(
                    f"{where}: qid {pred.qid!r}: window [{start}, {end}] is outside the video "
                    f"[0, {query.duration}]"
                    + (
                        ""
                        if end <= query.duration
                        else "; --allow-overrun scores it as the official evaluator does"
                    )
                )
        has = pred.saliency is not None
        if with_saliency is None:
            with_saliency = has
        if has != with_saliency:
            raise PredictionError(
                f"{where}: qid {pred.qid!r} {'has' if has else 'lacks'} pred_saliency_scores, unlike the "
                "first prediction: give them for every query or for none"
            )
        if has and not pred.saliency:
            raise PredictionError(f"{where}: qid {pred.qid!r}: pred_saliency_scores is empty")
        if has and query.saliency is None:
            raise PredictionError(f"{where}: qid {pred.qid!r} has saliency but its ground truth has none")
    for i, query in enumerate(ground_truth):
        if query.qid not in seen:
            where = _where(gt_locations, i, "query")
            raise PredictionError(f"qid {query.qid!r} ({where}) has no prediction")
        n_clips = int(query.duration / CLIP_SECONDS)
        if query.clip_ids and max(query.clip_ids) >= n_clips and with_saliency:
            raise PredictionError(
                f"{_where(gt_locations, i, 'query')}: qid {query.qid!r}: relevant clip {max(query.clip_ids)} "
                f"is past the last 2-second clip of a {query.duration}-second video"
            )


# --------------------------------------------------------------------------- aggregation


def _percent(values: Any) -> float:
    """Mean in percent, rounded as the official evaluator rounds (format to 2 decimals)."""
    return float(f"{100 * float(np.mean(values)):.2f}")


@dataclass
class _PerQuery:
    """Per-query values (fractions) behind one block of metrics, and each query's video for the bootstrap."""

    values: dict[str, np.ndarray]
    videos: np.ndarray


def _in_range(query: MomentQuery, low: float, high: float) -> MomentQuery | None:
    kept = [w for w in query.windows if low < w[1] - w[0] <= high]
    if not kept:
        return None
    return MomentQuery(query.qid, query.query, query.vid, query.duration, kept)


def _mr_block(pairs: Sequence[tuple[MomentQuery, MomentPrediction]]) -> _PerQuery:
    ap = np.array([detection_ap(q.windows, p.windows[:MAX_PRED_WINDOWS]) for q, p in pairs])
    iou = np.array([top1_iou(q, p) for q, p in pairs])
    values = {f"MR-mAP/{t}": ap[:, i] for i, t in enumerate(IOU_THRESHOLDS)}
    values["MR-mAP/average"] = ap.mean(axis=1)
    values.update({f"MR-R1/{t}": (iou >= t).astype(float) for t in IOU_THRESHOLDS})
    return _PerQuery(values, np.array([q.vid for q, _ in pairs]))


def _hl_block(pairs: Sequence[tuple[MomentQuery, MomentPrediction]]) -> _PerQuery:
    values: dict[str, np.ndarray] = {}
    for name, min_score in SALIENCY_LEVELS.items():
        scores = np.array([highlight_scores(q, p.saliency or [], min_score) for q, p in pairs])
        values[f"HL-min-{name}/HL-mAP"] = scores[:, 0]
        values[f"HL-min-{name}/HL-Hit1"] = scores[:, 1]
    return _PerQuery(values, np.array([q.vid for q, _ in pairs]))


def _nest(flat: dict[str, Any]) -> dict[str, Any]:
    """``{"full/MR-mAP/0.5": v}`` -> ``{"full": {"MR-mAP": {"0.5": v}}}``."""
    out: dict[str, Any] = {}
    for key, value in flat.items():
        *parents, leaf = key.split("/")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out


def _brief(nested: dict[str, Any]) -> dict[str, Any]:
    """The official ``brief`` block: the headline numbers under flat names, in the official order."""
    brief: dict[str, Any] = {}
    if "full" in nested:
        mr = {
            "MR-full-mAP": nested["full"]["MR-mAP"]["average"],
            "MR-full-mAP@0.5": nested["full"]["MR-mAP"]["0.5"],
            "MR-full-mAP@0.75": nested["full"]["MR-mAP"]["0.75"],
            **{
                f"MR-{name}-mAP": nested[name]["MR-mAP"]["average"]
                for name in LENGTH_RANGES
                if name in nested
            },
            "MR-full-R1@0.5": nested["full"]["MR-R1"]["0.5"],
            "MR-full-R1@0.7": nested["full"]["MR-R1"]["0.7"],
        }
        brief.update(sorted(mr.items()))
    for level in SALIENCY_LEVELS:
        block = nested.get(f"HL-min-{level}")
        if block is not None:
            brief[f"HL-min-{level}-mAP"] = block["HL-mAP"]
            brief[f"HL-min-{level}-Hit1"] = block["HL-Hit1"]
    return brief


def _official(nested: dict[str, Any]) -> dict[str, Any]:
    return {"brief": _brief(nested), **dict(sorted(nested.items()))}


def _bootstrap(blocks: dict[str, _PerQuery], n_boot: int, seed: int, alpha: float) -> dict[str, Any]:
    """``[low, high]`` (percent, 2 decimals) of every metric: videos resampled with all their queries."""
    flat: dict[str, Any] = {}
    for prefix, block in blocks.items():
        for key, values in block.values.items():
            # bootstrap_ci's "MeanR" is the (cluster-weighted) mean of whatever per-query values it gets.
            low, high = bootstrap_ci(
                100 * values, "MeanR", n_boot=n_boot, seed=seed, alpha=alpha, clusters=block.videos
            )
            flat[f"{prefix}{key}"] = [round(low, 2), round(high, 2)]
    return flat


@dataclass
class MomentMetrics:
    """Evaluation result: ``official`` in the official evaluator's nested layout (``brief``,
    ``HL-min-Fair``, ..., ``full``, ``long``, ``middle``, ``short``), ``extra`` (the seed's Recall@K and
    temporal consistency, Charades-style mIoU), ``intervals`` (same keys, ``[low, high]``) when
    bootstrapped, and the query counts of each split."""

    official: dict[str, Any]
    extra: dict[str, float]
    counts: dict[str, int]
    intervals: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        """``official`` with ``extra`` and, when computed, ``intervals`` added as top-level keys."""
        out = {**self.official, "extra": self.extra}
        return out if self.intervals is None else {**out, "intervals": self.intervals}

    def table(self) -> pd.DataFrame:
        """The ``brief`` numbers and ``extra`` as rows (``value``, and ``low``/``high`` with intervals)."""
        rows = {**self.official["brief"], **self.extra}
        frame = pd.DataFrame({"value": pd.Series(rows, dtype=float)})
        if self.intervals is not None:
            bounds = {**self.intervals.get("brief", {}), **self.intervals.get("extra", {})}
            frame["low"] = [bounds.get(k, [np.nan, np.nan])[0] for k in frame.index]
            frame["high"] = [bounds.get(k, [np.nan, np.nan])[1] for k in frame.index]
        frame.index.name = "metric"
        return frame


def _pairs(
    predictions: Sequence[MomentPrediction], ground_truth: Sequence[MomentQuery]
) -> list[tuple[MomentQuery, MomentPrediction]]:
    by_qid = {p.qid: p for p in predictions}
    return [(q, by_qid[q.qid]) for q in ground_truth]


def _extra_block(pairs: Sequence[tuple[MomentQuery, MomentPrediction]], ks: Sequence[int]) -> _PerQuery:
    values = {
        f"R@{k},IoU={t}": np.array([recall_at_k(q, p, k, t) for q, p in pairs])
        for k in ks
        for t in (0.5, 0.7)
    }
    values["mIoU"] = np.array([top1_iou(q, p) for q, p in pairs])
    if pairs and pairs[0][1].saliency is not None:
        values["temporal-consistency"] = np.array([temporal_consistency(p.saliency or []) for _, p in pairs])
    return _PerQuery(values, np.array([q.vid for q, _ in pairs]))


def evaluate_qvhighlights(
    predictions: Sequence[MomentPrediction],
    ground_truth: Sequence[MomentQuery],
    *,
    n_boot: int = 0,
    seed: int = 0,
    alpha: float = 0.05,
    allow_overrun: bool = False,
    recall_ks: Sequence[int] = (1, 5, 10),
    pred_locations: Sequence[str] | None = None,
    gt_locations: Sequence[str] | None = None,
) -> MomentMetrics:
    """The official QVHighlights metrics of ``predictions`` (see the module docstring for definitions).

    Checks the predictions first (:func:`check_predictions`). HL metrics are computed when the
    predictions carry saliency scores. ``n_boot > 0`` adds ``1 - alpha`` bootstrap intervals with
    videos as the resampled unit.
    """
    check_predictions(
        predictions, ground_truth, pred_locations=pred_locations, gt_locations=gt_locations,
        allow_overrun=allow_overrun,
    )  # fmt: skip
    pairs = _pairs(predictions, ground_truth)
    blocks = {"full/": _mr_block(pairs)}
    counts = {"full": len(pairs)}
    for name, (low, high) in LENGTH_RANGES.items():
        kept = [(q2, p) for q, p in pairs if (q2 := _in_range(q, low, high)) is not None]
        counts[name] = len(kept)
        if kept:
            blocks[f"{name}/"] = _mr_block(kept)
    if pairs and pairs[0][1].saliency is not None:
        blocks[""] = _hl_block(pairs)
    extra_block = _extra_block(pairs, recall_ks)
    nested = _nest({f"{prefix}{k}": _percent(v) for prefix, b in blocks.items() for k, v in b.values.items()})
    extra = {k: _percent(v) for k, v in extra_block.values.items()}
    intervals = None
    if n_boot > 0:
        flat = _bootstrap({**blocks, "extra/": extra_block}, n_boot, seed, alpha)
        nested_ci = _nest({k: v for k, v in flat.items() if not k.startswith("extra/")})
        intervals = {**_official(nested_ci), "extra": _nest(flat).get("extra", {})}
    return MomentMetrics(_official(nested), extra, counts, intervals)


def evaluate_charades(
    predictions: Sequence[MomentPrediction],
    ground_truth: Sequence[MomentQuery],
    *,
    thresholds: Sequence[float] = CHARADES_THRESHOLDS,
    n_boot: int = 0,
    seed: int = 0,
    alpha: float = 0.05,
    allow_overrun: bool = False,
    pred_locations: Sequence[str] | None = None,
    gt_locations: Sequence[str] | None = None,
) -> MomentMetrics:
    """Charades-STA's ``R1@t`` (first window reaches IoU t with the ground truth) and ``mIoU`` (its mean IoU).

    The result's ``official`` holds ``{"brief": {"R1@0.3": ..., "R1@0.5": ..., "R1@0.7": ..., "mIoU": ...}}``
    in percent; ``extra`` is empty.
    """
    check_predictions(
        predictions, ground_truth, pred_locations=pred_locations, gt_locations=gt_locations,
        allow_overrun=allow_overrun,
    )  # fmt: skip
    pairs = _pairs(predictions, ground_truth)
    iou = np.array([top1_iou(q, p) for q, p in pairs])
    values = {f"R1@{t}": (iou >= t).astype(float) for t in thresholds}
    values["mIoU"] = iou
    block = _PerQuery(values, np.array([q.vid for q, _ in pairs]))
    official = {"brief": {k: _percent(v) for k, v in values.items()}}
    intervals = None
    if n_boot > 0:
        intervals = {"brief": _bootstrap({"": block}, n_boot, seed, alpha)}
    return MomentMetrics(official, {}, {"full": len(pairs)}, intervals)


EVALUATORS: dict[str, Callable[..., MomentMetrics]] = {
    "qvhighlights": evaluate_qvhighlights,
    "charades-sta": evaluate_charades,
}


def evaluate_files(
    preds_path: str | os.PathLike[str],
    gt_path: str | os.PathLike[str],
    *,
    dataset: str = "auto",
    **options: Any,
) -> MomentMetrics:
    """Read, check and score a predictions file against a ground-truth file.

    ``dataset`` is ``"qvhighlights"``, ``"charades-sta"`` or ``"auto"`` (QVHighlights when every
    ground-truth query has saliency scores). Errors name the qid and the ``file:line``;
    ``options`` go to the evaluator (``n_boot``, ``seed``, ``alpha``, ``allow_overrun``, ...).
    """
    located_gt = load_moments_located(gt_path)
    located_preds = load_predictions_located(preds_path)
    ground_truth = [q for _, q in located_gt]
    if dataset == "auto":
        dataset = "qvhighlights" if all(q.saliency is not None for q in ground_truth) else "charades-sta"
    if dataset not in EVALUATORS:
        raise ValueError(f"unknown dataset {dataset!r}; use 'auto' or one of {sorted(EVALUATORS)}")
    return EVALUATORS[dataset](
        [p for _, p in located_preds],
        ground_truth,
        pred_locations=[w for w, _ in located_preds],
        gt_locations=[w for w, _ in located_gt],
        **options,
    )
