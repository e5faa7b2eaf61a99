"""Figures shared by the notebooks: frame grids, similarity heatmaps, recall bars.

Every function returns a matplotlib ``Figure`` and never calls ``plt.show()``; notebooks display
the figure and pass it to :func:`vtr.report.outputs.save_figure`.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure


def frame_grid(
    rows: Sequence[np.ndarray],
    row_labels: Sequence[str] = (),
    col_labels: Sequence[str] = (),
    title: str = "",
    cell_inches: float = 1.1,
    cell_labels: Sequence[Sequence[str]] = (),
) -> Figure:
    """One row of frames per entry of ``rows`` (each (T, H, W, 3) uint8); rows may differ in length.

    ``cell_labels[r][c]`` is written under frame ``c`` of row ``r`` (e.g. its frame index).
    """
    n_rows = len(rows)
    n_cols = max((len(r) for r in rows), default=1)
    fig, axes = plt.subplots(
        n_rows, n_cols, figsize=(cell_inches * n_cols + 1.5, cell_inches * n_rows + 0.4), squeeze=False
    )
    for r, frames in enumerate(rows):
        for c in range(n_cols):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if c < len(frames):
                ax.imshow(frames[c])
            if r < len(cell_labels) and c < len(cell_labels[r]):
                ax.set_xlabel(cell_labels[r][c], fontsize=7, labelpad=2)
            if r == 0 and c < len(col_labels):
                ax.set_title(col_labels[c], fontsize=8)
        if r < len(row_labels):
            axes[r][0].set_ylabel(row_labels[r], rotation=0, ha="right", va="center", fontsize=9)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


def similarity_heatmap(sim: np.ndarray, title: str = "", max_items: int = 40) -> Figure:
    """The top-left ``max_items`` block of a caption × video similarity matrix."""
    block = np.asarray(sim)[:max_items, :max_items]
    fig, ax = plt.subplots(figsize=(5.5, 4.6))
    image = ax.imshow(block, cmap="viridis", aspect="auto")
    ax.set_xlabel("video")
    ax.set_ylabel("caption (query)")
    ax.set_title(title or f"similarity, first {len(block)} pairs (diagonal = matches)")
    fig.colorbar(image, ax=ax, shrink=0.85)
    fig.tight_layout()
    return fig


def grouped_bars(table: pd.DataFrame, x: str, y: str, hue: str, title: str = "", ylabel: str = "") -> Figure:
    """A seaborn bar chart of ``y`` per ``x``, one bar per ``hue``; error columns are drawn when present.

    If ``table`` has columns ``f"{y}_lo"`` and ``f"{y}_hi"`` they are drawn as interval whiskers.
    """
    import seaborn as sns

    fig, ax = plt.subplots(figsize=(max(5.0, 0.55 * table[x].nunique() * max(1, table[hue].nunique())), 3.6))
    sns.barplot(data=table, x=x, y=y, hue=hue, ax=ax, errorbar=None)
    lo, hi = f"{y}_lo", f"{y}_hi"
    if lo in table and hi in table:
        for container, (_, group) in zip(ax.containers, table.groupby(hue, sort=False), strict=False):
            for bar, (_, row) in zip(container, group.iterrows(), strict=False):
                centre = bar.get_x() + bar.get_width() / 2
                ax.plot([centre, centre], [row[lo], row[hi]], color="black", linewidth=1)
    ax.set_title(title)
    ax.set_ylabel(ylabel or y)
    ax.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    return fig
