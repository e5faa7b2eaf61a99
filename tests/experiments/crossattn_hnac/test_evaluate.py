"""Notebook 02's evaluation stage on a hand-built grid: comparisons, curves, saved metrics and findings."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vtr.calibration import Effect
from vtr.config import load_profile
from vtr.experiments.crossattn_hnac import evaluate as E
from vtr.experiments.crossattn_hnac import report as R
from vtr.experiments.crossattn_hnac.model import StartingPoints
from vtr.finetune import Evaluation, GridResult, RunSpec


def _grid(r1: dict[tuple[str, str], list[float]], train_loss: dict[tuple[str, str], float]) -> GridResult:
    """A grid whose runs have the given test R@1 per seed; histories of two epochs per run."""
    rows, histories, ranks = [], {}, {}
    for (scorer, loss), values in r1.items():
        for seed, value in enumerate(values):
            spec = RunSpec(scorer, loss, "uniform", seed)
            rows.append({"scorer": scorer, "loss": loss, "strategy": "uniform", "seed": seed, "t2v_R@1": value,
                         "train_loss": train_loss[scorer, loss] + seed, "alignment_loss": 1.0, "cosine_gap": 0.1,
                         "t2v_R@5": 90.0, "t2v_R@10": 100.0, "t2v_MedR": 1.0, "v2t_R@1": value,
                         "t2v_R@1_lo": 0.0, "t2v_R@1_hi": 100.0})  # fmt: skip
            histories[spec] = pd.DataFrame({"epoch": [1, 2], "train_loss": [2.0 + seed, 1.0 + seed],
                                            "val_R@1": [10.0 * (seed + 1), 20.0 * (seed + 1)]})  # fmt: skip
            ranks[spec] = {"t2v": np.ones(4), "v2t": np.ones(2), "pair": np.zeros(0, dtype=bool)}
    return GridResult(pd.DataFrame(rows), ranks, histories, ["x"] * 4)


def _evaluation(r1: float) -> Evaluation:
    return Evaluation({"t2v_R@1": r1}, np.ones(4), np.ones(2), None, np.zeros(0, dtype=bool))  # type: ignore[arg-type]


def test_comparisons_follow_the_profile() -> None:
    ft = load_profile("sample", {"finetune.scorers": ["dual", "crossattn"], "finetune.losses": ["infonce", "hnac"]}).finetune
    names = [name for name, _, _ in E.comparisons(ft)]
    assert names == ["crossattn vs dual (infonce)", "crossattn vs dual (hnac)", "H-NAC vs InfoNCE (dual)",
                     "H-NAC vs InfoNCE (crossattn)"]  # fmt: skip
    only_infonce = load_profile("sample", {"finetune.losses": ["infonce"], "finetune.scorers": ["dual", "fusion"]})
    assert [n for n, _, _ in E.comparisons(only_infonce.finetune)] == ["fusion vs dual (infonce)"]


def test_mean_curves_average_seeds_epoch_by_epoch_whatever_the_history_order() -> None:
    grid = _grid({("dual", "infonce"): [30.0, 40.0], ("crossattn", "hnac"): [20.0, 50.0]},
                 {("dual", "infonce"): 1.0, ("crossattn", "hnac"): 2.0})  # fmt: skip
    grid.histories = dict(reversed(list(grid.histories.items())))
    curves = E.mean_curves(grid)
    assert list(curves) == [("crossattn", "hnac"), ("dual", "infonce")]
    assert curves["dual", "infonce"]["train_loss"].tolist() == [2.5, 1.5]  # (2 + 3) / 2, (1 + 2) / 2
    assert curves["dual", "infonce"]["val_R@1"].tolist() == [15.0, 30.0]


def test_findings_name_the_best_configuration_and_its_interval() -> None:
    grid = _grid({("dual", "infonce"): [30.0, 40.0], ("crossattn", "hnac"): [50.0, 60.0]},
                 {("dual", "infonce"): 1.0, ("crossattn", "hnac"): 2.0})  # fmt: skip
    start = StartingPoints(_evaluation(33.3), _evaluation(34.4), "trend")
    effects = {"crossattn/hnac vs frozen mean pooling, pair accuracy": Effect(12.0, 4.0, 20.0, 0.01, 40, 2)}
    text = R.describe_findings(grid, start, effects)
    assert "over 2 seeds: crossattn/hnac, 55.0% (frozen mean pooling 33.3%, untrained dual 34.4%)." in text
    assert "Lowest training loss (seed 003's measure): dual/infonce (1.5000); it reaches 35.0% R@1." in text
    assert "+12.0 points, 95% CI [+4.0, +20.0]; its interval excludes zero." in text
    assert "includes zero" in R.describe_findings(
        grid, start, {"crossattn/hnac vs frozen mean pooling, pair accuracy": Effect(2.0, -1.0, 5.0, 0.3, 40, 2)})


def test_saved_metrics_and_headline() -> None:
    grid = _grid({("dual", "infonce"): [30.0, 40.0], ("crossattn", "infonce"): [50.0, 60.0]},
                 {("dual", "infonce"): 1.0, ("crossattn", "infonce"): 2.0})  # fmt: skip
    start = StartingPoints(_evaluation(33.3), _evaluation(34.4), "trend")
    start.baseline.metrics.update({k: 0.0 for k in ("t2v_R@5", "t2v_R@10", "t2v_MedR", "v2t_R@1", "alignment_loss",
                                                   "cosine_gap")})  # fmt: skip
    start.untrained.metrics.update(start.baseline.metrics | {"t2v_R@1": 34.4})
    table = pd.DataFrame([{"comparison": "crossattn vs dual (infonce)", "metric": "t2v_R@1", "diff": 20.0,
                           "low": 10.0, "high": 30.0, "p": 0.01, "p_holm": 0.01, "significant": True}])  # fmt: skip
    diffs = E.Differences(table, pd.DataFrame())
    plan = [("crossattn vs dual (infonce)", {"scorer": "dual"}, {"scorer": "crossattn"})]
    texts = {**R.verdicts(diffs), "calibration_text": "", "findings": "f"}
    metrics = E.saved_metrics(grid, start, diffs, {}, plan, texts)
    assert metrics["best_config"] == "crossattn/infonce" and metrics["n_real_differences_R@1"] == 1
    assert metrics["mean_t2v_R@1"] == {"crossattn/infonce": 55.0, "dual/infonce": 35.0}
    assert metrics["untrained"]["t2v_R@1"] == 34.4 and metrics["pair_verdict"] == ""
    assert "a real gain" in metrics["verdict"] and "t2v_R@1_lo" not in metrics["runs"][0]
    assert R.headline(metrics)[:3] == ["baseline.t2v_R@1", "mean_t2v_R@1.crossattn/infonce",
                                       "mean_t2v_R@1.dual/infonce"]  # fmt: skip
    assert metrics["std"][0]["t2v_R@1"] == pytest.approx(np.std([50.0, 60.0], ddof=1))
