"""Stage 5 of notebook 02: its figures (each a matplotlib ``Figure``, never shown here)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure


def curves_figure(
    curves: dict[tuple[str, str], pd.DataFrame], baseline_r1: float, baseline_pair_acc: float | None = None
) -> Figure:
    """Training loss, validation R@1 and (when logged) validation pair accuracy per epoch, one line per
    (scorer, loss) averaged over seeds (:func:`~vtr.experiments.crossattn_hnac.evaluate.mean_curves`); the
    frozen baseline's test figures dashed."""
    pairs = any("val_pair_acc" in curve for curve in curves.values())
    fig, axes = plt.subplots(1, 3 if pairs else 2, figsize=(15 if pairs else 11, 3.6))
    for (scorer, loss), curve in curves.items():
        axes[0].plot(curve.index, curve["train_loss"], marker="o", label=f"{scorer} / {loss}")
        axes[1].plot(curve.index, curve["val_R@1"], marker="o", label=f"{scorer} / {loss}")
        if pairs:
            axes[2].plot(curve.index, curve["val_pair_acc"], marker="o", label=f"{scorer} / {loss}")
    axes[0].set(xlabel="epoch", ylabel="training loss (mean over seeds)", title="training loss")
    axes[1].set(xlabel="epoch", ylabel="val t2v R@1 (%)", title="validation R@1")
    axes[1].axhline(baseline_r1, color="grey", ls="--", lw=1, label="frozen baseline (test)")
    if pairs:
        axes[2].set(xlabel="epoch", ylabel="val pair accuracy (%)", title="validation pair accuracy")
        if baseline_pair_acc is not None:
            axes[2].axhline(baseline_pair_acc, color="grey", ls="--", lw=1, label="frozen mean pooling (test)")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    return fig
