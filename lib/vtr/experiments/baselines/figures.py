"""Stage 4 of notebook 01: its figures (each a matplotlib ``Figure``, never shown here)."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

from vtr.data.sources import ClipSet
from vtr.experiments.baselines.data import clip_path
from vtr.experiments.baselines.evaluate import ZeroShotRun
from vtr.report.plots import frame_grid, grouped_bars, similarity_heatmap
from vtr.video import sample_frames


def pretraining_figure(curve: pd.DataFrame) -> Figure:
    """vtr-tiny's training loss and held-out accuracies per epoch."""
    fig, axes = plt.subplots(1, 2, figsize=(9, 3))
    curve.plot(x="epoch", y="train_loss", ax=axes[0], legend=False, title="training loss")
    curve.plot(x="epoch", y=["val_attr_mean", "val_caption_top1"], ax=axes[1], title="held-out accuracy")
    fig.tight_layout()
    return fig


def sweep_figure(table: pd.DataFrame, strategies: Sequence[str], frame_counts: Sequence[int]) -> Figure:
    """The sweep's t2v R@1 as a strategy x frame-count heatmap, and per strategy with its 95% interval."""
    import seaborn as sns

    pivot = table.pivot(index="strategy", columns="n_frames", values="t2v_R@1").loc[list(strategies)]
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    sns.heatmap(pivot, annot=True, fmt=".1f", cmap="viridis", ax=axes[0], cbar_kws={"label": "t2v R@1 (%)"})
    axes[0].set_title("text→video R@1, test split")
    for strategy, rows in table.groupby("strategy", sort=False):
        axes[1].errorbar(rows["n_frames"], rows["t2v_R@1"],
                         yerr=[rows["t2v_R@1"] - rows["t2v_R@1_lo"], rows["t2v_R@1_hi"] - rows["t2v_R@1"]],
                         label=strategy, capsize=2, marker="o")  # fmt: skip
    axes[1].set(xlabel="frames", ylabel="t2v R@1 (%)", title="with 95% bootstrap intervals",
                xticks=list(frame_counts))  # fmt: skip
    axes[1].legend(fontsize=7, ncols=2)
    fig.tight_layout()
    return fig


def similarity_figure(run: ZeroShotRun) -> Figure:
    """Each clip's first caption against every clip (a bright diagonal is good)."""
    first = pd.Series(run.caption_to_video).drop_duplicates().index.to_numpy()
    return similarity_heatmap(run.sim[first], title="first caption × clip, cosine similarity")


def per_category_figure(per_category: pd.DataFrame) -> Figure:
    """Text-to-video R@1 and R@5 per clip category (:meth:`ZeroShotRun.per_category`)."""
    long = per_category.melt(id_vars=["category", "n"], value_vars=["R@1", "R@5"], var_name="metric")
    return grouped_bars(long, x="category", y="value", hue="metric", title="text→video recall per category",
                        ylabel="%")  # fmt: skip


def examples_figure(picked: pd.DataFrame, clips: ClipSet, n_frames: int = 6, size: int = 96) -> Figure:
    """For each picked query (:func:`~vtr.experiments.baselines.evaluate.best_and_worst`): its own clip's
    frames and, for a miss, those of the clip ranked first."""
    rows, labels = [], []
    for q in picked.itertuples():
        shown = [("query's clip", q.clip)] + ([("ranked first", q.top1_clip)] if q.rank > 1 else [])
        for role, clip_id in shown:
            rows.append(sample_frames(clip_path(clips, clip_id), n_frames, "uniform", size))
            labels.append(f"{q.kind} · {role}")
    return frame_grid(rows, row_labels=labels, title="best (top) and worst (bottom) text→video queries")
