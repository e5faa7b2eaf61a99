"""Stage 3 of notebook 03: seed 003's table recomputed, held-out tables, comparisons and the interaction.

Every retrieval number comes from :func:`vtr.finetune.evaluate` (built by :mod:`vtr.evaluation`).
Comparisons are the paired two-level bootstrap of :func:`vtr.finetune.paired_differences`,
Holm-corrected per metric (the same call as notebook 02's,
:func:`vtr.experiments.crossattn_hnac.evaluate.differences`); the mean-frame interaction is
:func:`vtr.finetune.sampling_interaction`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from vtr.calibration import Effect
from vtr.config import FinetuneConfig
from vtr.experiments.crossattn_hnac.evaluate import Comparison, Differences
from vtr.finetune import GridResult, RunSpec, category_breakdown, sampling_interaction, summary_table

#: The held-out columns (``pair_acc`` added where there are hard pairs).
COLUMNS = ("alignment_loss", "t2v_R@1", "t2v_R@5", "t2v_R@10", "t2v_MedR", "v2t_R@1", "cosine_gap")
GROUPS = ["loss", "strategy"]


def with_loss_at_epoch(grid: GridResult, epoch: int) -> pd.DataFrame:
    """``grid.table`` plus ``loss_at_epoch``: each run's training loss at ``epoch`` (NaN if it stopped
    before), looked up by the run's own spec, whatever the order of the table and the histories."""
    table = grid.table.copy()
    specs = [RunSpec(r.scorer, r.loss, r.strategy, int(r.seed)) for r in table.itertuples()]
    table["loss_at_epoch"] = [grid.histories[s].set_index("epoch")["train_loss"].get(epoch) for s in specs]
    return table


def columns(table: pd.DataFrame) -> list[str]:
    """:data:`COLUMNS`, plus ``pair_acc`` when the test split has hard pairs."""
    return [*COLUMNS, *(c for c in ("pair_acc",) if c in table)]


def seed003_table(table: pd.DataFrame, strategies: Sequence[str]) -> pd.DataFrame:
    """Seed 003's table: training loss at its epoch, mean ± std over seeds, loss (rows) x strategy."""
    pivot = summary_table(table, GROUPS, ["loss_at_epoch"], digits=3)
    return pivot["loss_at_epoch"].unstack("strategy")[list(strategies)]


def held_out_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Mean ± std over seeds of every held-out column, one row per (loss, strategy)."""
    return summary_table(table, GROUPS, columns(table))


def by_category(grid: GridResult, strategies: Sequence[str]) -> pd.DataFrame:
    """Test t2v R@1 per caption category (rows) and strategy (columns), pooled over losses and seeds."""
    return category_breakdown(grid, ["strategy"], "R@1")[["n", *strategies]]


def comparisons(ft: FinetuneConfig) -> list[Comparison]:
    """Each strategy against the first (uniform) under each loss, then H-NAC against InfoNCE per strategy."""
    base = ft.strategies[0]
    out: list[Comparison] = [(f"{s} vs {base} ({loss})", {"loss": loss, "strategy": base},
                              {"loss": loss, "strategy": s})
                             for loss in ft.losses for s in ft.strategies[1:]]  # fmt: skip
    if {"infonce", "hnac"} <= set(ft.losses):
        out += [(f"H-NAC vs InfoNCE ({s})", {"loss": "infonce", "strategy": s}, {"loss": "hnac", "strategy": s})
                for s in ft.strategies]  # fmt: skip
    return out


def shown_differences(diffs: Differences) -> pd.DataFrame:
    """The comparison rows of t2v R@1 and pair accuracy (the notebook's table)."""
    return diffs.table[diffs.table["metric"].isin(["t2v_R@1", "pair_acc"])]


POOLED_INTERACTION = "mean vs uniform: motion categories minus static clips, t2v R@1"


def interaction_effects(
    grid: GridResult, ft: FinetuneConfig, seed: int = 0
) -> tuple[dict[str, Effect], dict[str, dict[str, float]]]:
    """(mean - uniform) R@1 on the motion categories minus that on the static clips, with its two-level
    interval, and its parts: first over every loss (the notebook's test: each (loss, seed) run is a
    level resampled like a seed, so the interval covers training noise), then per loss (descriptive);
    empty when the grid lacks either strategy."""
    effects: dict[str, Effect] = {}
    parts: dict[str, dict[str, float]] = {}
    if "mean" in ft.strategies and "uniform" in ft.strategies:
        if len(ft.losses) > 1:
            name = f"{POOLED_INTERACTION} ({' and '.join(ft.losses)} runs pooled)"
            effects[name], parts[name] = sampling_interaction(
                grid, {"strategy": "uniform"}, {"strategy": "mean"}, n_boot=ft.n_boot, seed=seed
            )
        for loss in ft.losses:
            name = f"mean vs uniform ({loss}): motion categories minus static clips, t2v R@1"
            effects[name], parts[name] = sampling_interaction(
                grid, {"loss": loss, "strategy": "uniform"}, {"loss": loss, "strategy": "mean"},
                n_boot=ft.n_boot, seed=seed,
            )  # fmt: skip
    return effects, parts


def means(table: pd.DataFrame) -> pd.DataFrame:
    """Mean over seeds of the training loss at the epoch and every held-out column, per (loss, strategy)."""
    return table.groupby(GROUPS)[["loss_at_epoch", *columns(table)]].mean().reset_index()


def saved_metrics(
    table: pd.DataFrame, epoch: int, categories: pd.DataFrame, diffs: Differences, plan: list[Comparison],
    effects: dict[str, Effect], parts: dict[str, dict[str, float]], texts: dict[str, str],
) -> dict[str, Any]:  # fmt: skip
    """The notebook's metrics file: means and stds, the breakdown, the comparisons, the interaction and
    the sentences of ``texts`` (``verdict``, ``pair_verdict``, ``interaction_text``, ``findings``)."""
    mean = means(table)
    best_train, best_test = mean.loc[mean["loss_at_epoch"].idxmin()], mean.loc[mean["t2v_R@1"].idxmax()]
    pairs = diffs.pairs
    return {
        "epoch": epoch,
        "mean": mean.to_dict("records"),
        "std": table.groupby(GROUPS)[["loss_at_epoch", *columns(table)]].std(ddof=1).reset_index().to_dict("records"),
        "by_category_R@1": categories.to_dict(),
        "differences": diffs.table.to_dict("records"),
        "n_real_differences_R@1": diffs.n_real_r1,
        "n_comparisons": len(plan),
        "verdict": texts["verdict"],
        "interaction": {name: e._asdict() | {"excludes_zero": e.excludes_zero, **parts[name]}
                        for name, e in effects.items()},
        "interaction_text": texts["interaction_text"],
        "pair_verdict": texts["pair_verdict"],
        "findings": texts["findings"],
        "pair_accuracy": {"/".join(k): v for k, v in pairs.to_dict("index").items()} if not pairs.empty else {},
        "lowest_train_loss": f"{best_train['loss']}/{best_train['strategy']}",
        "best_test_R@1": f"{best_test['loss']}/{best_test['strategy']}",
        "mean_t2v_R@1": {f"{r['loss']}/{r['strategy']}": r["t2v_R@1"] for _, r in mean.iterrows()},
    }  # fmt: skip
