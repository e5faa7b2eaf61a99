"""Stage 5 of notebook 02: its figures (each a matplotlib ``Figure``, never shown here)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure


def curves_figure(curves: dict[tuple[str, str], pd.DataFrame], baseline_r1: float) -> Figure:
    """Training loss and validation R@1 per epoch, one line per (scorer, loss) averaged over seeds
    (:func:`~vtr.experiments.crossattn_hnac.evaluate.mean_curves`), the frozen baseline's test R@1 dashed."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    for (scorer, loss), curve in curves.items():
        axes[0].plot(curve.index, curve["train_loss"], marker="o", label=f"{scorer} / {loss}")
        axes[1].plot(curve.index, curve["val_R@1"], marker="o", label=f"{scorer} / {loss}")
    axes[0].set(xlabel="epoch", ylabel="training loss (mean over seeds)", title="training loss")
    axes[1].set(xlabel="epoch", ylabel="val t2v R@1 (%)", title="validation R@1")
    axes[1].axhline(baseline_r1, color="grey", ls="--", lw=1, label="frozen baseline (test)")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    return fig
