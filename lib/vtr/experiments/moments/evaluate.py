"""Score every model on a split: predictions, the official metrics with intervals, paired differences.

Intervals and differences resample *videos* with all their queries (the queries of one video are not
independent). Paired differences against zero-shot use the same resampled videos for both systems
(:func:`vtr.metrics.paired_bootstrap_diff`) and are Holm-corrected over the whole family of
(model, metric) comparisons (:func:`vtr.metrics.holm`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from vtr.atomic import write_text
from vtr.data.moments import MomentPrediction, MomentQuery, write_predictions
from vtr.metrics import holm, paired_bootstrap_diff
from vtr.moments.evaluate import (
    CLIP_SECONDS,
    MomentMetrics,
    evaluate_qvhighlights,
    highlight_scores,
    top1_iou,
)
from vtr.moments.predictor import MomentPredictor, MomentResult
from vtr.moments.training import MomentSample

# The metrics of the comparison table, official key names.
HEADLINE_METRICS: tuple[str, ...] = (
    "MR-full-R1@0.5", "MR-full-R1@0.7", "MR-full-mAP", "MR-full-mAP@0.5", "HL-min-VeryGood-mAP",
    "HL-min-VeryGood-Hit1",
)  # fmt: skip


@dataclass
class ModelRun:
    """One model's predictions on one split and their metrics."""

    name: str
    predictions: list[MomentPrediction]
    results: dict[int | str, MomentResult]  # qid -> windows and saliency at the model's clip length
    metrics: MomentMetrics


def saliency_per_2s(saliency: np.ndarray, clip_len: float, duration: float) -> list[float]:
    """Per-clip saliency resampled to QVHighlights' 2-second clips (nearest clip centre)."""
    n = max(int(duration / CLIP_SECONDS), 1)
    if clip_len == CLIP_SECONDS:
        return [float(v) for v in saliency]
    centres = (np.arange(n) + 0.5) * CLIP_SECONDS
    index = np.minimum((centres / clip_len).astype(int), len(saliency) - 1)
    return [float(v) for v in np.asarray(saliency)[index]]


def to_prediction(query: MomentQuery, result: MomentResult) -> MomentPrediction:
    """A QVHighlights submission row: windows clipped to the annotated duration, 2-second saliency."""
    windows = []
    for start, end, score in result.windows:
        start, end = min(max(start, 0.0), query.duration), min(max(end, 0.0), query.duration)
        windows.append((round(start, 4), round(max(start, end), 4), round(float(score), 6)))
    saliency = saliency_per_2s(result.saliency, result.clip_len, query.duration)
    return MomentPrediction(query.qid, query.vid, windows, saliency, query.query)


def predict_split(
    predictor: MomentPredictor,
    samples: Sequence[MomentSample],
    queries: Sequence[MomentQuery],
    top_k: int = 10,
) -> tuple[list[MomentPrediction], dict[int | str, MomentResult]]:
    """Predictions of ``predictor`` for every sample (``queries`` in the same order)."""
    results = {s.qid: predictor.predict(s.query, s.video, top_k=top_k) for s in samples}
    return [to_prediction(q, results[q.qid]) for q in queries], results


def evaluate_models(
    predictors: dict[str, MomentPredictor],
    samples: Sequence[MomentSample],
    queries: Sequence[MomentQuery],
    *,
    top_k: int = 10,
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, ModelRun]:
    """Predict with every model and score with the official metrics (intervals from ``n_boot`` resamples)."""
    runs = {}
    for name, predictor in predictors.items():
        predictions, results = predict_split(predictor, samples, queries, top_k)
        metrics = evaluate_qvhighlights(predictions, queries, n_boot=n_boot, seed=seed)
        runs[name] = ModelRun(name, predictions, results, metrics)
    return runs


def comparison_table(runs: dict[str, ModelRun], metrics: Sequence[str] = HEADLINE_METRICS) -> pd.DataFrame:
    """One row per model: each metric's value and ``[low, high]`` interval (percent)."""
    rows = {}
    for name, run in runs.items():
        brief, bounds = run.metrics.official["brief"], (run.metrics.intervals or {}).get("brief", {})
        row = {}
        for key in metrics:
            row[key] = brief.get(key, np.nan)
            low, high = bounds.get(key, [np.nan, np.nan])
            row[f"{key} 95% CI"] = f"[{low:.1f}, {high:.1f}]"
        rows[name] = row
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "model"
    return table


def per_query_values(queries: Sequence[MomentQuery], predictions: Sequence[MomentPrediction]) -> pd.DataFrame:
    """Per query (in ``queries`` order): top-1 IoU, R1@0.5, R1@0.7 and the VeryGood HL AP and Hit@1 (0-100)."""
    by_qid = {p.qid: p for p in predictions}
    rows = []
    for q in queries:
        p = by_qid[q.qid]
        iou = top1_iou(q, p)
        ap, hit = highlight_scores(q, p.saliency or [0.0], 4) if q.saliency is not None else (np.nan, np.nan)
        rows.append({
            "qid": q.qid, "vid": q.vid, "query": q.query, "top1_IoU": 100 * iou,
            "R1@0.5": 100.0 * (iou >= 0.5), "R1@0.7": 100.0 * (iou >= 0.7),
            "HL-VeryGood-mAP": 100 * ap, "HL-VeryGood-Hit1": 100 * hit,
        })  # fmt: skip
    return pd.DataFrame(rows)


def paired_differences(
    runs: dict[str, ModelRun],
    queries: Sequence[MomentQuery],
    *,
    baseline: str = "zero_shot",
    metrics: Sequence[str] = ("R1@0.5", "R1@0.7", "top1_IoU", "HL-VeryGood-mAP"),
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Each model minus ``baseline`` on the same queries: difference, interval, p-value, Holm-adjusted
    p-value and whether the gain is real (adjusted p < ``alpha``), one row per (model, metric)."""
    if baseline not in runs:
        raise KeyError(f"baseline {baseline!r} not among the models {sorted(runs)}")
    base = per_query_values(queries, runs[baseline].predictions)
    videos = base["vid"].to_numpy()
    rows = []
    for name, run in runs.items():
        if name == baseline:
            continue
        other = per_query_values(queries, run.predictions)
        for metric in metrics:
            d = paired_bootstrap_diff(
                base[metric].to_numpy(), other[metric].to_numpy(), "MeanR", n_boot=n_boot, seed=seed,
                alpha=alpha, clusters=videos,
            )  # fmt: skip
            rows.append({"model": name, "metric": metric, "diff": d.diff, "low": d.low, "high": d.high,
                         "p": d.p_value})  # fmt: skip
    table = pd.DataFrame(rows, columns=["model", "metric", "diff", "low", "high", "p"])
    table["p_holm"] = holm(table["p"]) if len(table) else []
    table["real"] = table["p_holm"] < alpha
    return table


def write_runs(out_dir: str | Path, runs: dict[str, ModelRun], split: str) -> dict[str, Path]:
    """``<out_dir>/<split>/<model>_preds.jsonl`` (validated submission format) and ``_metrics.json``
    (official key names, plus ``extra`` and ``intervals``) for every model."""
    folder = Path(out_dir) / split
    written = {}
    for name, run in runs.items():
        write_predictions(folder / f"{name}_preds.jsonl", run.predictions)
        metrics = folder / f"{name}_metrics.json"
        write_text(metrics, json.dumps(run.metrics.to_json(), indent=4) + "\n")
        written[name] = metrics
    return written


def summary_metrics(runs: dict[str, ModelRun], differences: pd.DataFrame) -> dict[str, object]:
    """The notebook's metrics file: each model's ``brief`` numbers and intervals, and the differences."""
    return {
        "models": {name: run.metrics.official["brief"] for name, run in runs.items()},
        "intervals": {name: (run.metrics.intervals or {}).get("brief", {}) for name, run in runs.items()},
        "counts": next(iter(runs.values())).metrics.counts if runs else {},
        "differences": differences.to_dict("records"),
        "n_real_gains": int((differences["real"] & (differences["diff"] > 0)).sum())
        if len(differences)
        else 0,
        "n_real_losses": int((differences["real"] & (differences["diff"] < 0)).sum())
        if len(differences)
        else 0,
    }


def narrative(runs: dict[str, ModelRun], differences: pd.DataFrame, key: str = "MR-full-R1@0.5") -> str:
    """A few sentences (markdown) that say what the numbers say: the best model on ``key`` and which
    differences from zero-shot survive the Holm correction."""
    values = {name: run.metrics.official["brief"].get(key, float("nan")) for name, run in runs.items()}
    best = max(values, key=lambda n: values[n])
    n_queries = next(iter(runs.values())).metrics.counts.get("full", 0)
    leaders = [n for n, v in values.items() if v == values[best]]
    others = ", ".join(f"{n} {v:.1f}" for n, v in values.items() if n not in leaders)
    who = (
        f"**{leaders[0]}** has" if len(leaders) == 1 else " and ".join(f"**{n}**" for n in leaders) + " share"
    )
    lines = [
        f"On {n_queries} queries, {who} the highest {key} ({values[best]:.1f}"
        + (f"; {others})." if others else ").")
    ]
    real = differences[differences["real"]] if len(differences) else differences
    if len(real) == 0:
        lines.append(
            "No difference from zero-shot survives the Holm correction: with this few videos the "
            "intervals are too wide to tell the models apart."
        )
    for row in real.itertuples():
        direction = "better" if row.diff > 0 else "worse"
        lines.append(
            f"{row.model} is {direction} than zero-shot on {row.metric} by {abs(row.diff):.1f} points "
            f"(95% interval [{row.low:.1f}, {row.high:.1f}], Holm-adjusted p = {row.p_holm:.3g})."
        )
    return " ".join(lines)
