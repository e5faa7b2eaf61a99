"""Notebook 01's saved metrics and findings: built from the run's numbers, with the verdict the numbers give."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from vtr.data.manifest import ClipRecord
from vtr.data.sources import ClipSet
from vtr.embeddings import VideoEmbeddings
from vtr.experiments.baselines.evaluate import (
    PAIR_KEYS,
    RUN_KEYS,
    Sweep,
    ZeroShotRun,
    category_metrics,
    run_metrics,
)
from vtr.experiments.baselines.model import TinyPretraining
from vtr.experiments.baselines.report import describe_run, describe_sweep


def _run(pair_acc: tuple[float, float, float] | None, t2v: float = 40.0) -> ZeroShotRun:
    """Two clips (a hard pair a/b) whose captions q0 (a, ranks a first) and q1 (b, ranks a first)."""
    ids = ["a", "b"]
    records = [ClipRecord(id=i, video=f"{i}.mp4", captions=["x"], split="test", meta={"pair_partner": p})
               for i, p in (("a", "b"), ("b", "a"))]  # fmt: skip
    metrics = {key: 1.0 for key in RUN_KEYS} | {"t2v_R@1": t2v, "t2v_R@1_lo": t2v - 5, "t2v_R@1_hi": t2v + 5,
                                                "t2v_R@5": 80.0, "t2v_MedR": 2.0, "n_queries": 2.0, "n_videos": 2.0}  # fmt: skip
    if pair_acc is not None:
        metrics |= dict(zip(PAIR_KEYS, (*pair_acc, 2.0), strict=True))
    embedded = VideoEmbeddings(ids, np.zeros((2, 1, 2), np.float32), {}, ids)
    sim = np.array([[0.9, 0.1], [0.8, 0.2]])
    return ZeroShotRun(ClipSet("toy", "test", records, Path(".")), embedded, ["q0", "q1"], np.array([0, 1]), sim,
                       metrics)  # fmt: skip


def test_run_metrics_keep_the_whitelist_and_the_partner_confusion() -> None:
    saved = run_metrics("test", _run((50.0, 10.0, 90.0)))
    assert list(saved)[:4] == [f"test_{k}" for k in PAIR_KEYS]
    assert {f"test_{k}" for k in RUN_KEYS} <= set(saved)
    assert saved["test_partner_confusion"] == 1.0  # q1's only miss ranks its partner a first
    assert "test_pair_acc" not in run_metrics("test", _run(None))


@pytest.mark.parametrize(
    ("pair", "says"),
    [((70.0, 55.0, 82.0), "lies above 50%"), ((50.0, 10.0, 90.0), "includes 50%"), ((20.0, 5.0, 40.0), "below 50%")],
)
def test_describe_run_reads_the_pair_interval_against_chance(pair: tuple[float, float, float], says: str) -> None:
    text = describe_run(_run(pair))
    assert "R@1 is 40.0% (95% CI [35.0, 45.0])" in text
    assert f"is {pair[0]:.1f}% (exact 95% CI [{pair[1]:.1f}, {pair[2]:.1f}])" in text and says in text
    assert "100% of the missed queries" in text


def test_describe_sweep_names_only_the_real_differences() -> None:
    runs = {("uniform", 8): _run(None, 40.0)}
    diffs = pd.DataFrame(
        [{"strategy": "mean", "n_frames": 8, "dR@1": -15.0, "low": -20.0, "high": -10.0, "p_holm": 0.001,
          "real": True, "pair_real": False, "d_pair_acc": 0.0, "pair_p_holm": 1.0},
         {"strategy": "stride", "n_frames": 8, "dR@1": 1.0, "low": -2.0, "high": 4.0, "p_holm": 0.6,
          "real": False, "pair_real": False, "d_pair_acc": 1.0, "pair_p_holm": 1.0}]
    )  # fmt: skip
    sweep = Sweep(runs, pd.DataFrame(), diffs, ("uniform", 8))
    text = describe_sweep(sweep)
    assert "uniform/8 (t2v R@1 40.0%), 1 of 2 settings differ" in text
    assert "mean/8: R@1 -15.0 points, 95% CI [-20.0, -10.0], Holm-adjusted p = 0.001, a real loss." in text
    assert "stride/8" not in text and "0 of 2 pair-accuracy differences are real" in text
    assert sweep.saved_metrics() == {"sweep_reference": "uniform/8", "sweep_n_real_R@1_differences": 1,
                                     "sweep_n_comparisons": 2, "sweep_n_real_pair_acc_differences": 0}  # fmt: skip


def test_category_metrics_and_the_tiny_attribute_table() -> None:
    table = pd.DataFrame({"category": ["static", "horizontal"], "R@1": [50.0, 25.0], "n": [4, 4]})
    assert category_metrics(table) == {"test_category_static_R@1": 50.0, "test_category_horizontal_R@1": 25.0}
    tiny = TinyPretraining({"test_attr_shape": 0.9, "test_chance_attr_shape": 0.3, "test_attr_mean": 0.9,
                            "test_attr_colour": 0.7, "test_chance_attr_colour": 0.2, "curve": [{"epoch": 1}]})  # fmt: skip
    assert tiny.attributes().to_dict("index") == {"colour": {"accuracy": 0.7, "majority baseline": 0.2},
                                                  "shape": {"accuracy": 0.9, "majority baseline": 0.3}}  # fmt: skip
    assert tiny.curve["epoch"].tolist() == [1]
