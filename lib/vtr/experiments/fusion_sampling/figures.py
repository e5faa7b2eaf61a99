"""Stage 4 of notebook 03: its figures (each a matplotlib ``Figure``, never shown here)."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure


def heatmap_figure(table: pd.DataFrame, strategies: Sequence[str], epoch: int) -> Figure:
    """Training loss at ``epoch`` beside held-out t2v R@1, loss x strategy, each the mean over seeds."""
    import seaborn as sns

    n_seeds = table["seed"].nunique()
    fig, axes = plt.subplots(1, 2, figsize=(12, 3.2))
    for ax, column, title in ((axes[0], "loss_at_epoch", f"training alignment loss at epoch {epoch}"),
                              (axes[1], "t2v_R@1", "held-out t2v R@1 (%)")):  # fmt: skip
        mean = table.groupby(["loss", "strategy"])[column].mean().unstack("strategy")[list(strategies)]
        sns.heatmap(mean, annot=True, fmt=".3g", cmap="viridis", ax=ax, cbar=False)
        ax.set_title(f"{title}, mean over {n_seeds} seed{'s' * (n_seeds != 1)}")
    fig.tight_layout()
    return fig


def categories_figure(by_category: pd.DataFrame, strategies: Sequence[str]) -> Figure:
    """Held-out t2v R@1 per caption category (rows) and strategy (columns)."""
    import seaborn as sns

    fig, ax = plt.subplots(figsize=(7, 3.6))
    sns.heatmap(by_category[list(strategies)], annot=True, fmt=".0f", cmap="magma", ax=ax)
    ax.set(title="held-out t2v R@1 (%) by category and sampling strategy", xlabel="strategy", ylabel="category")
    fig.tight_layout()
    return fig
