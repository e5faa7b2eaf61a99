"""vtr.experiments.hnerv.study: every run trained and evaluated, and the Study's views."""

from __future__ import annotations

import pytest

from vtr.experiments.hnerv.splits import split_frames
from vtr.experiments.hnerv.study import OVERVIEW_COLUMNS, Study, long_table, study_table


def _study(tiny_study: tuple) -> Study:
    cfg, data, runs = tiny_study
    return Study(cfg.hnerv, data, runs)


def test_study_plan_runs_sizes_splits_and_the_reference(tiny_study: tuple) -> None:
    _, _, runs = tiny_study
    names = [r.spec.name for r in runs]
    assert names == [
        "coords-small-6_6_10",
        "coords-large-6_6_10",
        "coords-small-1_1_1",
        "content-small-6_6_10",
    ]
    for r in runs:
        assert list(r.history.epoch) == [1, 2, 3]
        assert {"train_loss", "train_psnr", "train_cosine"} <= set(r.history.columns)


def test_content_runs_store_their_training_embeddings(tiny_study: tuple) -> None:
    _, data, runs = tiny_study
    table = study_table(runs).set_index("run")
    content, coords = table.loc["content-small-6_6_10"], table.loc["coords-small-6_6_10"]
    n_train = len(split_frames(data.n_frames, "6_6_10").train)
    net = runs[3].model
    assert content.embeddings == n_train * data.n_patches * net.embedding_numel > 0
    assert content.stored == content.weights + content.embeddings
    assert coords.embeddings == 0 and coords.stored == coords.weights == runs[0].params["total"]
    assert len(long_table(runs)) == 2 * len(runs)


def test_study_finds_the_main_run_and_selects_runs(tiny_study: tuple) -> None:
    study = _study(tiny_study)
    assert study.main.spec.name == "coords-small-6_6_10"
    assert [r.spec.name for r in study.where(kind="coords", split="6_6_10")] == [
        "coords-small-6_6_10",
        "coords-large-6_6_10",
    ]
    assert study.where(size="large", split="1_1_1") == []
    with pytest.raises(KeyError, match="coords-small-6_6_10"):
        study.run("coords-huge-6_6_10")
    overview = study.overview()
    assert list(overview.columns)[: len(OVERVIEW_COLUMNS)] == list(OVERVIEW_COLUMNS)
    assert "heldout_psnr_own_pixels" in overview and len(overview) == len(study.runs)


def test_study_bars_drop_held_out_bars_of_splits_without_held_out_frames(tiny_study: tuple) -> None:
    bars = _study(tiny_study).bars()
    assert set(bars["by size"]["size"]) == {"small", "large"} and set(bars["by size"].split) == {"6_6_10"}
    by_split = bars["by split"]
    assert by_split[by_split.split == "1_1_1"].group.tolist() == ["train"]  # no held-out frames there
    assert by_split[by_split.split == "6_6_10"].group.tolist() == ["train", "held-out"]
    assert (bars["by size"].kind == "coords").all()


def test_showcase_frames_runs_checks_and_paper_reference(tiny_study: tuple) -> None:
    study = _study(tiny_study)
    frames = study.showcase_frames()  # train 0-5, held out 6-9
    assert frames == [1, 3, 6, 8]
    assert [r.spec.name for r in study.showcase_runs()] == [
        "coords-small-6_6_10",
        "coords-large-6_6_10",
        "content-small-6_6_10",
    ]
    checks = study.checks()
    assert list(checks) == ["coords-small-6_6_10", "content-small-6_6_10"]
    assert {"matched_cosine", "pass_gap"} <= set(checks["coords-small-6_6_10"])
    assert study.paper_reference().spec.name == "content-small-6_6_10"  # no content run on 1_1_1
