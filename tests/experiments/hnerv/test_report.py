"""vtr.experiments.hnerv.report: sentences built from the numbers, the metrics file, the headline."""

from __future__ import annotations

import pandas as pd
import pytest

from vtr.anchors import anchor
from vtr.experiments.hnerv.evaluate import SearchResult, embedding_checks
from vtr.experiments.hnerv.report import (
    conclusions,
    headline,
    published_comparison,
    report_metrics,
    search_conclusion,
)
from vtr.experiments.hnerv.splits import split_frames
from vtr.experiments.hnerv.study import Study, study_table


def test_tables_conclusions_and_report_metrics(tiny_study: tuple) -> None:
    _, data, runs = tiny_study
    table = study_table(runs)
    split = split_frames(data.n_frames, "6_6_10")
    checks = embedding_checks(runs[0].evaluation.embeddings, data.targets, split)
    lines = conclusions(table, checks, "coords-small-6_6_10")
    assert any("Capacity" in line for line in lines) and any("Content embeddings" in line for line in lines)
    assert f"{table.train_psnr.iloc[0]:.1f} dB" in lines[0]
    metrics = report_metrics(runs, checks)
    assert metrics["runs"]["coords-small-1_1_1"]["heldout_psnr"] is None
    assert metrics["runs"]["coords-small-6_6_10"]["train_psnr"] == pytest.approx(table.train_psnr.iloc[0])


def test_search_conclusion_is_built_from_the_summary() -> None:
    summary = pd.DataFrame({"query": ["a", "b"], "precision@4": [0.25, 0.75], "overlap@4": [0.0, 0.5]})
    line = search_conclusion(SearchResult(pd.DataFrame(), summary), 4)
    assert "over 2 queries, 50% of the predicted top 4" in line
    assert "(best: 'b', 75%)" in line and "recovered at 25%" in line


def test_published_comparison_and_headline(tiny_study: tuple) -> None:
    cfg, data, runs = tiny_study
    study = Study(cfg.hnerv, data, runs)
    published = anchor("hnerv-bunny-1.5m")
    lines = published_comparison(study, published, cfg.hnerv.epochs)
    assert f"{published.metrics['psnr']:.2f} dB" in lines[0] and published.source in lines[1]
    reference = study.paper_reference()
    assert f"{reference.evaluation.summary()['train_psnr']:.2f} dB" in lines[2]
    assert reference.spec.name in lines[2]
    keys = headline(runs)
    assert keys[:2] == ["main_run", "published_bunny_psnr"] and len(keys) == 2 + 2 * len(runs)
    assert "runs.content-small-6_6_10.heldout_psnr" in keys
