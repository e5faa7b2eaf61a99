"""Stage 6 of notebook 05: its figures (each a matplotlib ``Figure``, never shown here)."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from vtr.experiments.msrvtt_recall.data import SplitData
from vtr.experiments.msrvtt_recall.evaluate import Row
from vtr.experiments.msrvtt_recall.tables import Case, category_counts, similarity_split
from vtr.report.plots import frame_grid, grouped_bars


def recall_figure(rows: dict[str, Row], direction: str = "t2v") -> Figure:
    """Seed 002's recall comparison: R@1/5/10 per system with 95% bootstrap whiskers."""
    lines = [
        {"metric": stat, "system": name, "value": row.metrics[f"{direction}_{stat}"],
         "value_lo": row.metrics[f"{direction}_{stat}_lo"], "value_hi": row.metrics[f"{direction}_{stat}_hi"]}
        for stat in ("R@1", "R@5", "R@10") for name, row in rows.items()
    ]  # fmt: skip
    return grouped_bars(pd.DataFrame(lines), x="metric", y="value", hue="system",
                        title=f"{direction} recall on the test split (95% bootstrap CI)", ylabel="recall (%)")  # fmt: skip


def breakdown_figure(table: pd.DataFrame, by: str, stat: str = "R@1") -> Figure:
    """Horizontal bars of ``stat`` per group (rows) and system (colours), with the query count per group."""
    import seaborn as sns

    groups = list(dict.fromkeys(table[by].astype(str)))
    n_of = table.groupby(table[by].astype(str), sort=False)["n"].first()
    labels = [f"{g} (n={n_of[g]})" for g in groups]
    data = table.assign(group=table[by].astype(str).map(dict(zip(groups, labels, strict=True))))
    fig, ax = plt.subplots(figsize=(7.5, 1.2 + 0.28 * len(groups) * max(1, table["system"].nunique()) ** 0.5))
    sns.barplot(data=data, y="group", x=stat, hue="system", order=labels, orient="h", ax=ax, errorbar=None)
    ax.set_xlabel(f"t2v {stat} (%)")
    ax.set_ylabel(by)
    ax.set_title(f"t2v {stat} by {by}")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig


def similarity_figure(rows: dict[str, Row], bins: int = 60) -> Figure:
    """Seed 002's similarity distributions: per system, positives vs negatives (densities)."""
    fig, axes = plt.subplots(1, len(rows), figsize=(3.4 * len(rows), 2.9), sharey=False, squeeze=False)
    for ax, (name, row) in zip(axes[0], rows.items(), strict=True):
        pos, neg, hardest = similarity_split(row)
        edges = np.histogram_bin_edges(np.concatenate([pos, neg]), bins=bins)
        ax.hist(neg, bins=edges, density=True, alpha=0.5, label=f"negatives (mean {neg.mean():.2f})")
        ax.hist(hardest, bins=edges, density=True, histtype="step", linewidth=1.4, color="black",
                label=f"hardest negative (mean {hardest.mean():.2f})")  # fmt: skip
        ax.hist(pos, bins=edges, density=True, alpha=0.5, label=f"positives (mean {pos.mean():.2f})")
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("cosine similarity")
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("density")
    fig.suptitle(
        "similarity of each query to its own video (positives), to the others (negatives) and to the "
        "most similar other (hardest)"
    )
    fig.tight_layout()
    return fig


def category_distribution_figure(data: SplitData) -> Figure:
    """Seed 002's category distribution of the test set (videos per category)."""
    counts = category_counts(data)
    fig, ax = plt.subplots(figsize=(6.5, 1.0 + 0.26 * len(counts)))
    ax.barh(counts.index[::-1], counts["videos"][::-1], color="tab:blue")
    ax.set_xlabel("videos")
    ax.set_title(f"category distribution of the {data.split} split ({len(data)} videos)")
    fig.tight_layout()
    return fig


def _frames_of(data: SplitData, video_id: str, n_frames: int, size: int) -> np.ndarray:
    """Frames of a video for display; a grey strip when its file cannot be read (e.g. features-only)."""
    from vtr.video import VideoDecodeError, sample_frames

    record = data.records[data.ids.index(video_id)]
    try:
        return sample_frames(record.video_path(data.base_dir or "."), n_frames, "uniform", size=size)
    except (VideoDecodeError, OSError, ValueError):
        return np.full((n_frames, size, size, 3), 128, dtype=np.uint8)


def cases_figure(
    cases: Sequence[Case], data: SplitData, title: str, n_frames: int = 6, size: int = 80
) -> Figure:
    """Two rows of frames per case: the query's own video, then the video ranked first (when different)."""
    frames, labels = [], []
    for case in cases:
        query = textwrap.fill(f"“{case.caption}”", 38)
        frames.append(_frames_of(data, case.target, n_frames, size))
        labels.append(f"{query}\nown video {case.target}: rank {case.rank}")
        if case.top != case.target:
            frames.append(_frames_of(data, case.top, n_frames, size))
            labels.append(f"ranked first: {case.top}")
    if not frames:
        fig, ax = plt.subplots(figsize=(5, 1))
        ax.axis("off")
        ax.set_title(f"{title}: none")
        return fig
    return frame_grid(frames, row_labels=labels, title=title, cell_inches=1.0)
