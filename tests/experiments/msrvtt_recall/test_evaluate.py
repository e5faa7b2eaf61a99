"""vtr.experiments.msrvtt_recall.evaluate: every row of the table end to end on a tiny synthetic run,
scored by vtr.evaluation, repeatable exactly; gains and pair accuracy with hard pairs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vtr import metrics as M
from vtr.experiments.msrvtt_recall.evaluate import ZERO_SHOT, best_row, compute_rows, score_row
from vtr.experiments.msrvtt_recall.tables import gains_table, pair_table, recall_table
from vtr.experiments.msrvtt_recall.train import SEED_002


def test_tiny_end_to_end_rows(tiny_run) -> None:
    cfg, train, test, rows, out = tiny_run
    assert list(rows) == [ZERO_SHOT, SEED_002, "mean head", "trend head"]
    zero = rows[ZERO_SHOT]
    # zero-shot t2v R@1 by hand: the argmax video of each caption's similarity row.
    sim = test.text @ test.videos.T
    assert zero.metrics["t2v_R@1"] == pytest.approx(100 * np.mean(sim.argmax(1) == test.caption_to_video))
    assert zero.metrics["t2v_R@1_lo"] <= zero.metrics["t2v_R@1"] <= zero.metrics["t2v_R@1_hi"]
    assert zero.metrics["t2v_MedR_lo"] <= zero.metrics["t2v_MedR"] <= zero.metrics["t2v_MedR_hi"]
    # Mean pooling has no parameters: its row is the zero-shot row.
    assert rows["mean head"].history is None
    np.testing.assert_allclose(rows["mean head"].videos, zero.videos, atol=1e-6)
    for name in (SEED_002, "trend head"):
        history = rows[name].history
        assert list(history["epoch"]) == [1, 2] and "seconds" not in history
        assert "val_R@1" in history and (out / name.replace(" ", "_") / "best.pt").is_file()
    table = recall_table(rows)
    assert table.shape[0] == 8 and {"R@1 95% CI", "DSL R@1", "MeanR 95% CI"} <= set(table.columns)
    # two captions per video: the v2t lines name their rule
    assert table.loc[(ZERO_SHOT, "v2t (clip4clip rule)"), "R@5"] == round(zero.metrics["v2t_R@5"], 1)


def test_tiny_run_repeats_exactly(tiny_run, tmp_path: Path) -> None:
    cfg, train, test, rows, _ = tiny_run
    again = compute_rows(cfg, train, test, progress=False, out_root=tmp_path)
    for name, row in rows.items():
        assert again[name].metrics == row.metrics, name



def test_best_row_is_the_highest_t2v_r1(tiny_run) -> None:
    rows = tiny_run[3]
    best = best_row(rows)
    assert rows[best].metrics["t2v_R@1"] == max(r.metrics["t2v_R@1"] for r in rows.values())


def test_gains_with_hard_pairs_holm_and_pair_accuracy() -> None:
    """Pair groups as the bootstrap unit, McNemar on pair accuracy, Holm over each family."""
    from vtr.evaluation import hard_pairs

    rng = np.random.default_rng(5)
    n = 20
    ids = [f"video{i}" for i in range(n)]
    metas = [{"pair_group": f"p{i // 2}", "pair_partner": f"video{i ^ 1}"} for i in range(n)]
    pairs = hard_pairs(ids, metas)
    videos = np.linalg.qr(rng.normal(size=(32, n)))[0].T  # orthonormal: a perfect system
    blind = videos.copy()
    blind[1::2] = blind[0::2]  # pair partners embed identically: every pair caption ties -> wrong
    owners = np.arange(n)
    rows = {
        ZERO_SHOT: score_row(ZERO_SHOT, blind[owners], blind, owners, n_boot=200, pairs=pairs),
        "perfect": score_row("perfect", videos, videos, owners, n_boot=200, pairs=pairs),
    }  # fmt: skip
    assert rows[ZERO_SHOT].metrics["pair_acc"] == 0.0 and rows["perfect"].metrics["pair_acc"] == 100.0
    assert rows["perfect"].metrics["pair_acc_lo"] == pytest.approx(100 * 0.025 ** (1 / n))  # exact CP bound
    table = pair_table(rows)
    assert table.loc["perfect", "captions"] == n
    gains = gains_table(rows, n_boot=500)
    t2v = gains.loc[("perfect", "t2v")]
    assert t2v["Δpair_acc"] == 100.0 and t2v["pair_p"] == pytest.approx(2 * 0.5**n)
    np.testing.assert_allclose(gains["p_holm"], M.holm(gains["p"]))
    assert gains["significant"].tolist() == (gains["p_holm"] < 0.05).tolist()


def test_temporal_pair_gain_over_mean_pooling_has_an_interval() -> None:
    """The trend head's pair accuracy minus mean pooling's, bootstrapped over hard-pair groups."""
    from vtr.evaluation import hard_pairs
    from vtr.experiments.msrvtt_recall.tables import MEAN_HEAD, temporal_pair_gains

    rng = np.random.default_rng(2)
    n = 40
    ids = [f"video{i}" for i in range(n)]
    pairs = hard_pairs(ids, [{"pair_group": f"p{i // 2}", "pair_partner": f"video{i ^ 1}"} for i in range(n)])
    videos = np.linalg.qr(rng.normal(size=(64, n)))[0].T
    blind = videos.copy()
    blind[1::2] = blind[0::2]  # order-blind: partners tie, every pair caption counts as wrong
    owners = np.repeat(np.arange(n), 2)  # two captions per video
    rows = {
        MEAN_HEAD: score_row(MEAN_HEAD, blind[owners], blind, owners, n_boot=100, pairs=pairs),
        "trend head": score_row("trend head", videos[owners], videos, owners, n_boot=100, pairs=pairs),
        SEED_002: score_row(SEED_002, videos[owners], videos, owners, n_boot=100, pairs=pairs),
    }  # fmt: skip
    assert rows["trend head"].pair_clusters.tolist() == [f"p{v // 2}" for v in owners]
    gains = temporal_pair_gains(rows, n_boot=300)
    assert list(gains) == ["trend head vs mean head, pair accuracy"]  # heads only, not seed 002
    effect = gains["trend head vs mean head, pair accuracy"]
    assert effect.diff == 100.0 and effect.excludes_zero and effect.n_queries == 2 * n
    half = videos.copy()
    half[1:n // 2:2] = half[0:n // 2:2]  # right on the second half of the pairs only
    rows["trend head"] = score_row("trend head", half[owners], half, owners, n_boot=100, pairs=pairs)
    effect = temporal_pair_gains(rows, n_boot=300)["trend head vs mean head, pair accuracy"]
    assert effect.low < effect.diff < effect.high and 0 < effect.diff < 100
    assert temporal_pair_gains({"trend head": rows["trend head"]}) == {}  # no baseline row
