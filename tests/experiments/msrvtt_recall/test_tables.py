"""vtr.experiments.msrvtt_recall.tables and .figures on the tiny synthetic run: gains, breakdowns,
cases, similarity statistics, the published comparison, the metrics summary, the figures."""

from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from vtr.anchors import anchor  # noqa: E402
from vtr.experiments.msrvtt_recall import figures, tables  # noqa: E402
from vtr.experiments.msrvtt_recall.evaluate import ZERO_SHOT  # noqa: E402


def test_tiny_tables_cases_and_summary(tiny_run) -> None:
    cfg, train, test, rows, _ = tiny_run
    gains = tables.gains_table(rows, n_boot=50)
    assert gains.loc[("mean head", "t2v"), "ΔR@1"] == 0.0
    real = int(gains["significant"].sum())
    assert tables.gains_verdict(gains).startswith(f"{real} of {len(gains)} R@1 gains")
    assert tables.gains_verdict(gains.iloc[0:0]).startswith("no gains")
    categories, lengths = tables.category_breakdown(rows, test), tables.length_breakdown(rows, test)
    assert set(categories["category"]) == {"music", "sports", "news"}
    assert (categories.groupby("system", observed=True)["n"].sum() == 24).all()
    row = rows[ZERO_SHOT]
    successes, failures = tables.pick_cases(row, test, 3, "success"), tables.pick_cases(row, test, 3, "failure")
    assert all(c.rank == 1 and c.top == c.target for c in successes)
    assert [c.margin for c in successes] == sorted((c.margin for c in successes), reverse=True)
    assert all(c.rank > 1 for c in failures) and failures[0].rank == row.t2v_ranks.max()
    cases = tables.cases_table(successes, failures)
    assert cases["kind"].tolist() == ["success"] * len(successes) + ["failure"] * len(failures)
    assert cases["query"].tolist() == [c.query for c in successes + failures]
    pos, neg, hardest = tables.similarity_split(row)
    assert len(pos) == 24 and len(neg) == 24 * 11 and np.all(hardest >= neg.reshape(24, 11).min(axis=1))
    pairs = tables.pair_table(rows)
    summary = tables.summary_metrics(rows, categories, lengths, gains, train, test, profile_name=cfg.name,
                                     best="seed 002", pairs=pairs, successes=successes, failures=failures)  # fmt: skip
    json.dumps(summary)  # serialisable as is
    assert summary["test"] == {"split": "test_1k", "videos": 12, "queries": 24, "dropped_videos": 0}
    assert summary["best_row"] == "seed 002" and summary["profile"] == cfg.name
    assert summary["cases"] == {"success": [c.query for c in successes], "failure": [c.query for c in failures]}
    headline = tables.headline_keys(summary)
    assert headline[0] == "best_row" and headline[-1] == "n_real_gains_R@1"
    assert f"rows.{ZERO_SHOT}.t2v_R@1" in headline and len(headline) == 2 + 3 * len(rows)


def test_published_comparison_takes_the_anchors_from_vtr_anchors(tiny_run) -> None:
    rows = tiny_run[3]
    table = tables.recall_table(rows)
    both = tables.published_comparison(table, "sample")
    zero_shot = anchor("msrvtt-1ka-clip-b32-zero-shot")
    assert both.loc[zero_shot.label, "R@1"] == zero_shot.metrics["t2v_R@1"]  # 31.2, with its source
    ours = both.loc[f"vtr (sample profile): {ZERO_SHOT}"]
    assert ours["R@1"] == table.loc[(ZERO_SHOT, "t2v"), "R@1"]
    assert len(both) == len(tables.ANCHOR_KEYS) + len(rows)


def test_figures_draw(tiny_run) -> None:
    _, _, test, rows, _ = tiny_run
    categories = tables.category_breakdown(rows, test)
    failures = tables.pick_cases(rows[ZERO_SHOT], test, 3, "failure")
    for fig in (figures.recall_figure(rows), figures.breakdown_figure(categories, "category"),
                figures.similarity_figure(rows), figures.category_distribution_figure(test),
                figures.cases_figure(failures, test, "failures")):  # fmt: skip
        assert fig.axes
        plt.close(fig)
