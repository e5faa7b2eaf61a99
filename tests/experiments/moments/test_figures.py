"""Figures of notebook 07: which queries they show, and that they draw."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from vtr.data.moments import MomentQuery  # noqa: E402
from vtr.experiments.moments import evaluate as meval  # noqa: E402
from vtr.experiments.moments import figures as mfig  # noqa: E402
from vtr.moments.evaluate import evaluate_qvhighlights  # noqa: E402
from vtr.moments.predictor import MomentResult  # noqa: E402

QUERIES = [
    MomentQuery(i, f"q{i}", f"v{i}", 20.0, [(4.0, 10.0)], [2, 3, 4], [[4, 4, 4]] * 3) for i in range(4)
]
FIRST = {0: (4.0, 10.0), 1: (6.0, 10.0), 2: (12.0, 14.0), 3: (0.0, 20.0)}  # IoU 1, 0.67, 0, 0.3


def _runs() -> dict[str, meval.ModelRun]:
    results = {
        q.qid: MomentResult(q.query, [(*FIRST[q.qid], 1.0)], np.linspace(0, 1, 10), 2.0) for q in QUERIES
    }
    preds = [meval.to_prediction(q, results[q.qid]) for q in QUERIES]
    return {"temporal": meval.ModelRun("temporal", preds, results, evaluate_qvhighlights(preds, QUERIES))}


def test_pick_queries_by_top1_iou() -> None:
    runs = _runs()
    assert [q.qid for q in mfig.pick_queries(runs, QUERIES, "temporal", 2, "best")] == [0, 1]
    assert [q.qid for q in mfig.pick_queries(runs, QUERIES, "temporal", 1, "failure")] == [2]
    assert len(mfig.pick_queries(runs, QUERIES, "temporal", 2, "median")) == 2
    with pytest.raises(ValueError, match="kind"):
        mfig.pick_queries(runs, QUERIES, "temporal", 1, "worst")


def test_timeline_and_metrics_figures_draw() -> None:
    runs = _runs()
    fig = mfig.timeline_figure(runs, QUERIES[:2], "title")
    assert len(fig.axes) == 2 and "q0" in fig.axes[0].get_title()
    table = meval.comparison_table(runs)
    fig = mfig.metrics_figure(table, ["MR-full-R1@0.5", "MR-full-mAP"])
    assert len(fig.axes[0].patches) == 2
