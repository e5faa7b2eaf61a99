"""Figures of notebook 07: per-query timelines and the choice of the queries they show."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from vtr.data.moments import MomentQuery
from vtr.experiments.moments.evaluate import ModelRun, per_query_values

MODEL_COLOURS = {"zero_shot": "tab:grey", "temporal": "tab:blue", "span": "tab:orange"}


def pick_queries(
    runs: dict[str, ModelRun], queries: Sequence[MomentQuery], model: str, n: int, kind: str
) -> list[MomentQuery]:
    """``n`` queries by ``model``'s top-1 IoU: ``"best"``, ``"median"`` (around the median) or ``"failure"``
    (lowest IoU, ties broken by the widest ground truth, i.e. the most to miss)."""
    values = per_query_values(queries, runs[model].predictions)
    values["gt_seconds"] = [sum(e - s for s, e in q.windows) for q in queries]
    if kind == "best":
        order = values.sort_values(["top1_IoU", "gt_seconds"], ascending=[False, True]).index
    elif kind == "failure":
        order = values.sort_values(["top1_IoU", "gt_seconds"], ascending=[True, False]).index
    elif kind == "median":
        order = (values["top1_IoU"] - values["top1_IoU"].median()).abs().sort_values(kind="stable").index
    else:
        raise ValueError(f"kind must be best, median or failure, got {kind!r}")
    return [queries[i] for i in order[:n]]


def _normalised(values: np.ndarray) -> np.ndarray:
    span = float(np.ptp(values))
    return (values - values.min()) / span if span > 0 else np.zeros_like(values)


def timeline_figure(
    runs: dict[str, ModelRun], queries: Sequence[MomentQuery], title: str = "", windows_shown: int = 1
) -> plt.Figure:
    """One panel per query: the ground-truth windows (green band), each model's first ``windows_shown``
    windows (bars, one row per model) and its saliency curve min-max normalised to [0, 1]."""
    fig, axes = plt.subplots(len(queries), 1, figsize=(10, 2.3 * len(queries)), squeeze=False)
    names = list(runs)
    for ax, query in zip(axes[:, 0], queries, strict=True):
        for start, end in query.windows:
            ax.axvspan(start, end, color="tab:green", alpha=0.18, lw=0)
        for row, name in enumerate(names):
            result = runs[name].results[query.qid]
            colour = MODEL_COLOURS.get(name, f"C{row}")
            times = (np.arange(len(result.saliency)) + 0.5) * result.clip_len
            ax.plot(times, _normalised(np.asarray(result.saliency)), color=colour, lw=1.4, label=name)
            y = -0.15 - 0.15 * row
            for start, end, _ in result.windows[:windows_shown]:
                ax.plot([start, end], [y, y], color=colour, lw=5, solid_capstyle="butt")
        iou = {n: per_query_values([query], runs[n].predictions)["top1_IoU"].iloc[0] for n in names}
        scores = ", ".join(f"{n} {v:.0f}" for n, v in iou.items())
        ax.set_title(f"qid {query.qid} ({query.vid}): {query.query!r} — top-1 IoU {scores}", fontsize=9)
        ax.set_xlim(0, query.duration)
        ax.set_ylim(-0.2 - 0.15 * len(names), 1.08)
        ax.set_yticks([0, 0.5, 1])
        ax.set_ylabel("saliency")
    axes[-1, 0].set_xlabel("seconds (green: ground truth; bars: each model's first window)")
    axes[0, 0].legend(loc="upper right", fontsize=8, ncol=len(names))
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def metrics_figure(table: pd.DataFrame, metrics: Sequence[str]) -> plt.Figure:
    """Bars of ``metrics`` per model with their bootstrap intervals (from :func:`comparison_table`)."""
    fig, ax = plt.subplots(figsize=(9, 3.2))
    width = 0.8 / max(len(table), 1)
    x = np.arange(len(metrics))
    for i, (name, row) in enumerate(table.iterrows()):
        values = np.array([row[m] for m in metrics], dtype=float)
        bounds = [tuple(map(float, row[f"{m} 95% CI"].strip("[]").split(","))) for m in metrics]
        lows, highs = np.array([b[0] for b in bounds]), np.array([b[1] for b in bounds])
        errors = np.clip(np.stack([values - lows, highs - values]), 0, None)
        ax.bar(x + i * width, values, width, yerr=errors, capsize=3, label=name,
               color=MODEL_COLOURS.get(str(name), f"C{i}"))  # fmt: skip
    ax.set_xticks(x + width * (len(table) - 1) / 2, metrics, fontsize=8)
    ax.set_ylabel("percent (95% bootstrap interval over videos)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
