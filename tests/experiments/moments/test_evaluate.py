"""Scoring stage of notebook 07: submission rows, the comparison table and paired differences."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vtr.data.moments import MomentQuery, load_predictions
from vtr.experiments.moments import evaluate as meval
from vtr.moments.evaluate import evaluate_qvhighlights
from vtr.moments.predictor import MomentResult


def _query(qid: int, vid: str, window: tuple[float, float]) -> MomentQuery:
    clips = list(range(int(window[0] // 2), int(window[1] // 2)))
    return MomentQuery(qid, f"query {qid}", vid, 20.0, [window], clips, [[4, 4, 4]] * len(clips))


QUERIES = [_query(i, f"v{i // 2}", (2.0 * (i % 4), 2.0 * (i % 4) + 6)) for i in range(12)]


def _run(name: str, exact: bool) -> meval.ModelRun:
    """Exact: the first window is the ground truth and saliency peaks inside it; else a fixed wrong guess."""
    results, preds = {}, []
    for q in QUERIES:
        start, end = q.windows[0] if exact else (14.0, 20.0)
        saliency = np.zeros(10)
        saliency[int(start // 2) : int(end // 2)] = 1.0
        results[q.qid] = MomentResult(q.query, [(start, end, 0.9), (0.0, 2.0, 0.1)], saliency, 2.0)
        preds.append(meval.to_prediction(q, results[q.qid]))
    return meval.ModelRun(name, preds, results, evaluate_qvhighlights(preds, QUERIES, n_boot=50))


def test_saliency_is_resampled_to_two_second_clips() -> None:
    assert meval.saliency_per_2s(np.array([1.0, 2.0, 3.0]), 2.0, 6.0) == [1.0, 2.0, 3.0]
    # 1 s clips: each 2 s clip takes the 1 s clip under its centre
    assert meval.saliency_per_2s(np.arange(6.0), 1.0, 6.0) == [1.0, 3.0, 5.0]


def test_windows_are_clipped_to_the_annotated_duration() -> None:
    q = _query(1, "v", (0.0, 4.0))
    row = meval.to_prediction(
        q, MomentResult("x", [(18.0, 20.04, 0.5), (-0.01, 3.0, 0.4)], np.zeros(10), 2.0)
    )
    assert row.windows == [(18.0, 20.0, 0.5), (0.0, 3.0, 0.4)] and len(row.saliency) == 10


def test_the_table_and_a_real_gain_against_a_baseline(tmp_path) -> None:
    runs = {"zero_shot": _run("zero_shot", exact=False), "temporal": _run("temporal", exact=True)}
    table = meval.comparison_table(runs)
    assert table.loc["temporal", "MR-full-R1@0.7"] == 100.0
    assert table.loc["zero_shot", "MR-full-R1@0.7"] < 100.0
    assert table.loc["temporal", "MR-full-R1@0.7 95% CI"] == "[100.0, 100.0]"
    diffs = meval.paired_differences(runs, QUERIES, n_boot=200)
    r1 = diffs.set_index("metric").loc["R1@0.5"]
    assert r1["diff"] > 0 and r1["low"] > 0 and bool(r1["real"])
    assert "temporal is better than zero-shot on R1@0.5" in meval.narrative(runs, diffs)
    written = meval.write_runs(tmp_path, runs, "test")
    assert json.loads(written["temporal"].read_text())["brief"]["MR-full-R1@0.7"] == 100.0
    assert len(load_predictions(tmp_path / "test" / "temporal_preds.jsonl")) == len(QUERIES)
    summary = meval.summary_metrics(runs, diffs)
    assert summary["n_real_gains"] >= 1 and summary["models"]["temporal"]["MR-full-R1@0.7"] == 100.0


def test_identical_systems_differ_by_nothing() -> None:
    runs = {"zero_shot": _run("zero_shot", exact=True), "span": _run("span", exact=True)}
    diffs = meval.paired_differences(runs, QUERIES, n_boot=100)
    assert (diffs["diff"] == 0).all() and not diffs["real"].any()
    assert "No difference from zero-shot survives" in meval.narrative(runs, diffs)
    with pytest.raises(KeyError, match="baseline"):
        meval.paired_differences({"span": runs["span"]}, QUERIES)


def test_the_narrative_names_a_tie_as_a_tie() -> None:
    runs = {"zero_shot": _run("zero_shot", exact=True), "temporal": _run("temporal", exact=True)}
    diffs = meval.paired_differences(runs, QUERIES, n_boot=50)
    assert "**zero_shot** and **temporal** share the highest MR-full-R1@0.5 (100.0)." in meval.narrative(
        runs, diffs
    )
