"""Stage 7 of the HNeRV study: its figures (matplotlib; each function returns the figure)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from vtr.experiments.hnerv.data import PatchData
from vtr.experiments.hnerv.evaluate import SearchResult
from vtr.experiments.hnerv.splits import HELD_OUT, split_frames
from vtr.experiments.hnerv.study import RunResult

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def patches_figure(data: PatchData, frames: Sequence[int] | None = None) -> Figure:
    """The patch grid of a few frames (first, middle and last by default): one row per frame, one
    column per patch, each patch one training sample."""
    from vtr.report.plots import frame_grid

    shown = list(frames) if frames is not None else [0, data.n_frames // 2, data.n_frames - 1]
    cols = data.grid[1]
    patches = data.patches()
    return frame_grid(
        [patches[f] for f in shown],
        row_labels=[f"frame {f}" for f in shown],
        col_labels=[f"patch {p} (r{p // cols}, c{p % cols})" for p in range(data.n_patches)],
        title="the patch grid: each patch is one training sample",
    )


def train_vs_heldout_figure(bars: Mapping[str, pd.DataFrame], main_split: str, main_size: str) -> Figure:
    """PSNR and cosine, train against held-out frames, by size (on ``main_split``) and by split (at
    ``main_size``): the two tables of :meth:`vtr.experiments.hnerv.study.Study.bars`."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    fig, axes = plt.subplots(2, 2, figsize=(11, 6.5))
    panels = (("by size", "size", f" ({main_split})"), ("by split", "split", f" ({main_size})"))
    for row, (key, x, note) in enumerate(panels):
        frame = bars[key]
        for col, metric in enumerate(("psnr", "cosine")):
            ax = axes[row, col]
            sns.barplot(data=frame, x=x, y=metric, hue="group", ax=ax)
            ax.set_ylim(frame[metric].min() * 0.9, frame[metric].max() * 1.02)
            ax.set_title(f"{metric} by {x}{note}")
    fig.tight_layout()
    return fig


def reconstruction_figure(
    data: PatchData, runs: Sequence[RunResult], frames: Sequence[int], title: str = ""
) -> Figure:
    """Originals in the first row, then one row of reconstructions per run, for the given frames."""
    from vtr.report.plots import frame_grid

    split = split_frames(data.n_frames, runs[0].spec.split)
    groups = split.group_of(data.n_frames)
    idx = list(frames)
    rows = [data.frames[idx]] + [r.evaluation.reconstructions[idx] for r in runs]
    labels = ["original"] + [r.spec.name for r in runs]
    cells = [[f"#{f} {groups[f]}" for f in idx]] + [
        [f"{r.evaluation.frames.psnr.iloc[f]:.1f} dB" for f in idx] for r in runs
    ]
    return frame_grid(rows, row_labels=labels, cell_labels=cells, title=title, cell_inches=1.6)


def search_figure(data: PatchData, result: SearchResult, source: str = "predicted") -> Figure:
    """The top patches (original pixels) of each query, as ranked by ``source``."""
    from vtr.report.plots import frame_grid

    patches = data.patches()
    hits = result.hits[result.hits.source == source]
    rows, labels, cells = [], [], []
    for query, group in hits.groupby("query", sort=False):
        rows.append(np.stack([patches[f, p] for f, p in zip(group.frame, group.patch, strict=True)]))
        labels.append(query)
        cells.append(
            [f"#{f}/{p} {s:.2f}" for f, p, s in zip(group.frame, group.patch, group.score, strict=True)]
        )
    return frame_grid(
        rows,
        row_labels=labels,
        cell_labels=cells,
        title=f"top patches per query, ranked by {source} embeddings",
    )


def projection_figure(points: pd.DataFrame, title: str = "") -> Figure:
    """Scatter of :func:`project_embeddings`: colour = source, marker = train / held-out."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    fig, ax = plt.subplots(figsize=(6.2, 5.0))
    sns.scatterplot(data=points, x="x", y="y", hue="source", style="group", s=18, alpha=0.75, ax=ax)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel("t-SNE 1")
    ax.set_ylabel("t-SNE 2")
    ax.set_title(title or "t-SNE of predicted vs ground-truth patch embeddings")
    fig.tight_layout()
    return fig


def per_frame_figure(results: Sequence[RunResult], metric: str = "psnr") -> Figure:
    """``metric`` of every frame along the video for each run; held-out frames marked with dots."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9.0, 3.6))
    for i, r in enumerate(results):
        f = r.evaluation.frames
        ax.plot(f.frame, f[metric], color=f"C{i}", linewidth=1, label=r.spec.name)
        held = f[f.group == HELD_OUT]
        ax.plot(held.frame, held[metric], ".", color=f"C{i}", markersize=4)
    ax.set_xlabel("frame")
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} per frame (dots: held-out frames)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def curves_figure(results: Sequence[RunResult], metric: str = "psnr") -> Figure:
    """Per-epoch ``train_<metric>`` (solid) and ``heldout_<metric>`` (dashed) of each run."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 3.8))
    for i, r in enumerate(results):
        colour = f"C{i}"
        for column, style in ((f"train_{metric}", "-"), (f"heldout_{metric}", "--")):
            if column in r.history:
                ax.plot(
                    r.history.epoch,
                    r.history[column],
                    style,
                    color=colour,
                    label=f"{r.spec.name} {column.split('_')[0]}",
                )
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric)
    ax.set_title(f"{metric}: training frames (solid) vs held-out frames (dashed)")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig
