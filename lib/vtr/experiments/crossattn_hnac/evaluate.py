"""Stage 4 of notebook 02: held-out tables, seed 003's two tables, the comparisons and the calibration.

Every retrieval number comes from :func:`vtr.finetune.evaluate` (built by :mod:`vtr.evaluation`);
comparisons are :func:`vtr.finetune.paired_differences` (two-level paired bootstrap over test clips
or hard-pair groups and seeds, exact McNemar for pair accuracy, Holm–Bonferroni per metric) and the
calibration effects :mod:`vtr.calibration`'s intervals.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from vtr.calibration import Effect
from vtr.config import FinetuneConfig
from vtr.experiments.crossattn_hnac.model import StartingPoints
from vtr.finetune import (
    FeatureSplit,
    GridResult,
    pair_accuracy_table,
    pair_gain_between,
    pair_gain_over_baseline,
    paired_differences,
    summary_table,
)

#: The held-out columns of the summary (``pair_acc`` added where there are hard pairs).
COLUMNS = ("train_loss", "alignment_loss", "t2v_R@1", "t2v_R@5", "t2v_R@10", "t2v_MedR", "v2t_R@1", "cosine_gap")
GROUPS = ["scorer", "loss"]

#: One comparison: its name, the runs of side a, the runs of side b (b - a is reported).
Comparison = tuple[str, dict[str, Any], dict[str, Any]]


def columns(grid: GridResult) -> list[str]:
    """:data:`COLUMNS`, plus ``pair_acc`` when the test split has hard pairs."""
    return [*COLUMNS, *(c for c in ("pair_acc",) if c in grid.table)]


def summary(grid: GridResult) -> pd.DataFrame:
    """Mean ± std over seeds of every held-out column, one row per (scorer, loss)."""
    return summary_table(grid.table, GROUPS, columns(grid))


def seed003_tables(grid: GridResult) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Seed 003's two tables, recomputed: train and held-out alignment loss per (loss, scorer), and the
    cosine gap per loss (mean and std over scorers and seeds)."""
    means = grid.table.groupby(["loss", "scorer"])[["train_loss", "alignment_loss", "cosine_gap"]].mean()
    losses = pd.concat({"train alignment loss": means["train_loss"].unstack("scorer"),
                        "held-out alignment loss": means["alignment_loss"].unstack("scorer")}, axis=1).round(4)  # fmt: skip
    gap = grid.table.groupby("loss")["cosine_gap"].agg(["mean", "std"]).round(4)
    return losses, gap


def mean_curves(grid: GridResult) -> dict[tuple[str, str], pd.DataFrame]:
    """Per (scorer, loss), sorted: the training history averaged over seeds epoch by epoch (a run that
    stopped early contributes to the epochs it ran)."""
    groups: dict[tuple[str, str], list[pd.DataFrame]] = {}
    for spec in sorted(grid.histories, key=lambda s: (s.scorer, s.loss, s.seed)):
        groups.setdefault((spec.scorer, spec.loss), []).append(grid.histories[spec].set_index("epoch"))
    return {key: pd.concat(parts).groupby(level=0).mean() for key, parts in groups.items()}


def comparisons(ft: FinetuneConfig) -> list[Comparison]:
    """Every scorer against the dual encoder under each loss, then H-NAC against InfoNCE for each scorer."""
    out: list[Comparison] = [(f"{scorer} vs dual ({loss})", {"scorer": "dual", "loss": loss},
                              {"scorer": scorer, "loss": loss})
                             for loss in ft.losses for scorer in ft.scorers[1:]]  # fmt: skip
    if "infonce" in ft.losses and "hnac" in ft.losses:
        out += [(f"H-NAC vs InfoNCE ({scorer})", {"scorer": scorer, "loss": "infonce"},
                 {"scorer": scorer, "loss": "hnac"}) for scorer in ft.scorers]  # fmt: skip
    return out


@dataclass
class Differences:
    """The Holm-corrected comparisons (one row per comparison and metric) and the pair-accuracy table."""

    table: pd.DataFrame
    pairs: pd.DataFrame  # pair accuracy per group, pooled over seeds; empty without hard pairs

    @property
    def has_pairs(self) -> bool:
        return bool((self.table["metric"] == "pair_acc").any())

    @property
    def n_real_r1(self) -> int:
        """How many t2v R@1 differences are real after the correction."""
        return int(self.table[self.table["metric"] == "t2v_R@1"]["significant"].sum())


def differences(
    grid: GridResult, plan: list[Comparison], ft: FinetuneConfig, seed: int = 0, by: Sequence[str] = GROUPS
) -> Differences:
    """:func:`vtr.finetune.paired_differences` of ``plan``, and the pair accuracy per group of ``by``
    (notebook 02: scorer and loss; notebook 03 passes loss and strategy)."""
    table = paired_differences(grid, plan, n_boot=ft.n_boot, seed=seed)
    return Differences(table, pair_accuracy_table(grid, by))


def calibration_effects(
    grid: GridResult, start: StartingPoints, test: FeatureSplit, plan: list[Comparison], ft: FinetuneConfig,
    seed: int = 0,
) -> dict[str, Effect]:  # fmt: skip
    """Pair accuracy of each (scorer, loss) minus frozen mean pooling's, then each comparison of ``plan``
    on pair accuracy, each with its two-level bootstrap interval (hard-pair groups and seeds)."""
    effects = {
        f"{scorer}/{loss} vs frozen mean pooling, pair accuracy": pair_gain_over_baseline(
            grid, start.baseline, {"scorer": scorer, "loss": loss}, test, n_boot=ft.n_boot, seed=seed)
        for scorer in ft.scorers for loss in ft.losses
    }  # fmt: skip
    for name, a, b in plan:
        effects[f"{name}, pair accuracy"] = pair_gain_between(grid, a, b, test, n_boot=ft.n_boot, seed=seed)
    return effects


def mean_r1(grid: GridResult) -> pd.Series:
    """Mean test t2v R@1 over seeds per (scorer, loss)."""
    return grid.table.groupby(GROUPS)["t2v_R@1"].mean()


def saved_metrics(
    grid: GridResult, start: StartingPoints, diffs: Differences, effects: dict[str, Effect], plan: list[Comparison],
    texts: dict[str, str],
) -> dict[str, Any]:  # fmt: skip
    """The notebook's metrics file: starting points, every run, means and stds, the comparisons, the
    calibration effects and the sentences of ``texts`` (``verdict``, ``pair_verdict``, ``calibration_text``,
    ``findings``)."""
    shown, best = columns(grid), mean_r1(grid)
    grouped = grid.table.groupby(GROUPS)[shown]
    pairs = diffs.pairs
    return {
        "baseline": {k: start.baseline.metrics[k] for k in start.keys},
        "untrained": {k: start.untrained.metrics[k] for k in start.keys},
        "calibration": {name: e._asdict() | {"excludes_zero": e.excludes_zero} for name, e in effects.items()},
        "calibration_text": texts["calibration_text"],
        "runs": grid.table.drop(columns=[c for c in grid.table.columns if c.endswith(("_lo", "_hi"))]).to_dict(
            "records"),
        "mean": grouped.mean().reset_index().to_dict("records"),
        "std": grouped.std(ddof=1).reset_index().to_dict("records"),
        "differences": diffs.table.to_dict("records"),
        "verdict": texts["verdict"],
        "pair_verdict": texts["pair_verdict"],
        "findings": texts["findings"],
        "n_real_differences_R@1": diffs.n_real_r1,
        "n_comparisons": len(plan),
        "pair_accuracy": {"/".join(k): v for k, v in pairs.to_dict("index").items()} if not pairs.empty else {},
        "best_config": "/".join(best.idxmax()),
        "mean_t2v_R@1": {"/".join(k): v for k, v in best.items()},
    }  # fmt: skip
