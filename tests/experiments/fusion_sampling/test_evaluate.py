"""Notebook 03's evaluation stage on a hand-built grid: loss at the epoch by spec, tables, findings."""

from __future__ import annotations

import numpy as np
import pandas as pd

from vtr.config import load_profile
from vtr.experiments.crossattn_hnac.evaluate import Differences
from vtr.experiments.fusion_sampling import evaluate as E
from vtr.experiments.fusion_sampling import report as R
from vtr.finetune import GridResult, RunSpec

CONFIGS = {("infonce", "uniform"): 40.0, ("infonce", "mean"): 20.0, ("hnac", "uniform"): 45.0, ("hnac", "mean"): 25.0}


def _grid() -> GridResult:
    """Two seeds per (loss, strategy); run i's training loss at epoch e is 10 * i + e, so each lookup is checkable."""
    rows, histories, ranks = [], {}, {}
    for i, ((loss, strategy), r1) in enumerate(CONFIGS.items()):
        for seed in (0, 1):
            spec = RunSpec("fusion", loss, strategy, seed)
            rows.append({"scorer": "fusion", "loss": loss, "strategy": strategy, "seed": seed, "t2v_R@1": r1 + seed,
                         **{c: 1.0 for c in E.COLUMNS if c != "t2v_R@1"}})  # fmt: skip
            histories[spec] = pd.DataFrame({"epoch": [1, 2, 3], "train_loss": [10.0 * i + e + seed for e in (1, 2, 3)]})
            ranks[spec] = {"t2v": np.ones(4), "v2t": np.ones(2), "pair": np.zeros(0, dtype=bool)}
    return GridResult(pd.DataFrame(rows), ranks, histories, ["x"] * 4)


def test_loss_at_epoch_is_looked_up_by_each_rows_spec_not_by_order() -> None:
    grid = _grid()
    grid.histories = dict(reversed(list(grid.histories.items())))  # history order no longer the table's
    grid.ranks = dict(reversed(list(grid.ranks.items())))
    table = E.with_loss_at_epoch(grid, 2)
    expected = [10.0 * i + 2 + seed for i in range(4) for seed in (0, 1)]
    assert table["loss_at_epoch"].tolist() == expected
    assert E.with_loss_at_epoch(grid, 7)["loss_at_epoch"].isna().all()  # no run reached epoch 7
    assert "loss_at_epoch" not in grid.table  # the grid's own table is left alone


def test_seed003_table_and_means() -> None:
    table = E.with_loss_at_epoch(_grid(), 3)
    pivot = E.seed003_table(table, ["uniform", "mean"])
    assert list(pivot.columns) == ["uniform", "mean"] and pivot.loc["infonce", "uniform"] == "3.5 ± 0.707"
    means = E.means(table).set_index(["loss", "strategy"])
    assert means.loc[("hnac", "mean"), "t2v_R@1"] == 25.5 and means.loc[("hnac", "mean"), "loss_at_epoch"] == 33.5


def test_comparisons_against_the_first_strategy_and_between_losses() -> None:
    ft = load_profile("sample", {"finetune.strategies": ["uniform", "mean"], "finetune.losses": ["infonce", "hnac"]})
    names = [name for name, _, _ in E.comparisons(ft.finetune)]
    assert names == ["mean vs uniform (infonce)", "mean vs uniform (hnac)", "H-NAC vs InfoNCE (uniform)",
                     "H-NAC vs InfoNCE (mean)"]  # fmt: skip


def test_findings_set_seed003s_measure_against_held_out_recall() -> None:
    table = E.with_loss_at_epoch(_grid(), 3)
    diffs = Differences(pd.DataFrame([
        {"comparison": "mean vs uniform (infonce)", "metric": "t2v_R@1", "diff": -20.0, "significant": True},
        {"comparison": "mean vs uniform (hnac)", "metric": "t2v_R@1", "diff": -20.0, "significant": False},
        {"comparison": "H-NAC vs InfoNCE (uniform)", "metric": "t2v_R@1", "diff": 5.0, "significant": False},
    ]), pd.DataFrame())  # fmt: skip
    text = R.describe_findings(table, 3, diffs)
    assert "Lowest training loss at epoch 3 (seed 003's measure): infonce/uniform (3.5000)" in text
    assert "highest held-out t2v R@1: hnac/uniform (45.5%), a different one." in text
    assert "1 of 2 strategy differences in R@1 are real after Holm–Bonferroni correction: " \
           "mean vs uniform (infonce) -20.0 points." in text  # fmt: skip
    assert "0 of 1 H-NAC vs InfoNCE differences in R@1 are real after Holm–Bonferroni correction." in text


def test_interaction_pools_the_losses_runs_pairing_each_with_its_twin() -> None:
    """Mean sampling misses both motion queries under InfoNCE and one of two under H-NAC, never a static
    one: per loss -100 and -50 points, pooled -75; the pairing holds whatever order the runs are stored in."""
    ranks = {}
    motion_ranks = {"infonce": [5, 5], "hnac": [1, 5]}
    for loss in ("infonce", "hnac"):
        for seed in (0, 1):
            ranks[RunSpec("fusion", loss, "uniform", seed)] = {"t2v": np.ones(4)}
            ranks[RunSpec("fusion", loss, "mean", seed)] = {"t2v": np.array([*motion_ranks[loss], 1, 1])}
    grid = GridResult(pd.DataFrame(), dict(reversed(list(ranks.items()))), {}, ["horizontal", "vertical", "static", "static"])
    ft = load_profile("sample", {"finetune.losses": ["infonce", "hnac"], "finetune.n_boot": 200}).finetune
    effects, parts = E.interaction_effects(grid, ft)
    names = list(effects)
    assert names[0].startswith(E.POOLED_INTERACTION) and "pooled" in names[0] and len(names) == 3
    assert [effects[n].diff for n in names] == [-75.0, -100.0, -50.0]
    assert effects[names[0]].n_seeds == 4 and parts[names[0]] == {"in_group": -75.0, "rest": 0.0}
