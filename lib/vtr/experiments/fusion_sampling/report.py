"""Stage 5 of notebook 03: what was found, in sentences built from the numbers, and the headline keys.

The verdicts are :func:`vtr.finetune.describe_differences` (Holm-adjusted, as in notebook 02:
:func:`vtr.experiments.crossattn_hnac.report.verdicts`) and the interaction sentences
:func:`vtr.finetune.describe_effects`; :func:`describe_findings` sets seed 003's measure (training
loss at its epoch) against held-out R@1.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from vtr.calibration import Effect
from vtr.experiments.crossattn_hnac.evaluate import Differences
from vtr.experiments.crossattn_hnac.report import verdicts
from vtr.experiments.fusion_sampling.evaluate import means
from vtr.finetune import describe_effects

__all__ = ["describe_findings", "describe_interaction", "headline", "verdicts"]


def describe_interaction(effects: dict[str, Effect]) -> str:
    """One sentence per interaction effect, saying whether its interval excludes zero."""
    return describe_effects(effects)


def describe_findings(table: pd.DataFrame, epoch: int, diffs: Differences) -> str:
    """Which (loss, strategy) seed 003's measure ranks first and which held-out R@1 does, and how many
    strategy and loss differences survive the correction."""
    mean = means(table)
    train, test = mean.loc[mean["loss_at_epoch"].idxmin()], mean.loc[mean["t2v_R@1"].idxmax()]
    same = (train["loss"], train["strategy"]) == (test["loss"], test["strategy"])
    sentences = [
        f"Lowest training loss at epoch {epoch} (seed 003's measure): {train['loss']}/{train['strategy']} "
        f"({train['loss_at_epoch']:.4f}); highest held-out t2v R@1: {test['loss']}/{test['strategy']} "
        f"({test['t2v_R@1']:.1f}%)" + (", the same configuration." if same else ", a different one.")
    ]
    r1 = diffs.table[diffs.table["metric"] == "t2v_R@1"]
    for label, rows in (("strategy", r1[~r1["comparison"].str.startswith("H-NAC")]),
                        ("H-NAC vs InfoNCE", r1[r1["comparison"].str.startswith("H-NAC")])):  # fmt: skip
        if len(rows):
            real = rows[rows["significant"]]
            named = "; ".join(f"{r.comparison} {r.diff:+.1f} points" for r in real.itertuples())
            sentences.append(f"{len(real)} of {len(rows)} {label} differences in R@1 are real after "
                             f"Holm–Bonferroni correction{': ' + named if named else ''}.")  # fmt: skip
    return " ".join(sentences)


def headline(metrics: dict[str, Any]) -> list[str]:
    """The keys the reports index shows first for notebook 03, in order."""
    return ["best_test_R@1", "lowest_train_loss", "n_real_differences_R@1",
            *(f"mean_t2v_R@1.{k}" for k in metrics["mean_t2v_R@1"]),
            *(f"interaction.{name}.diff" for name in metrics["interaction"])]  # fmt: skip
