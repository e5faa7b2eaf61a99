"""vtr.msrvtt_recall: loaders and breakdowns on the real MSR-VTT annotation files, feature validation,
seed 002's hard-negative loss, batching, and a tiny end-to-end run of every row on synthetic features."""

from __future__ import annotations

import csv
import json
import zlib
from collections import Counter
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from vtr import metrics as M
from vtr import msrvtt_recall as mr
from vtr.config import load_profile
from vtr.data.manifest import ClipRecord, ManifestError
from vtr.data.msrvtt import load_msrvtt
from vtr.losses import info_nce


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def _caption_vector(text: str, dim: int) -> np.ndarray:
    """A deterministic stand-in caption embedding (crc32-seeded), independent of vtr."""
    return np.random.default_rng(zlib.crc32(text.encode())).normal(size=dim)


class StandInEncoder:
    """What ``embed_texts`` needs of an encoder, without a CLIP: seeded vectors per caption."""

    batch_size = 256
    output_dim = 16

    def encode_text(self, texts: list[str]) -> np.ndarray:
        return _unit(np.stack([_caption_vector(t, self.output_dim) for t in texts]))


# ------------------------------------------------------------------- real annotation files


@pytest.fixture(scope="session")
def real_test(msrvtt_dir: Path, msrvtt_info) -> mr.SplitData:
    """The real 1k-A test split with random frame features and stand-in caption embeddings."""
    records = list(load_msrvtt(msrvtt_dir, "test_1k", info=msrvtt_info))
    rng = np.random.default_rng(0)
    frames = {r.id: _unit(rng.normal(size=(3, 16))) for r in records}
    return mr.assemble_split("test_1k", records, frames, StandInEncoder().encode_text)


def test_real_1k_a_split_sizes_and_categories(real_test: mr.SplitData, msrvtt_dir: Path) -> None:
    assert len(real_test) == 1000 and len(real_test.captions) == 1000
    np.testing.assert_array_equal(real_test.caption_to_video, np.arange(1000))
    # Category of each 1k-A video, read independently from the raw json and category.txt.
    names = {}
    for line in (msrvtt_dir / "category.txt").read_text().splitlines():
        name, idx = line.rsplit(maxsplit=1)
        names[int(idx)] = name.strip()
    raw = json.loads((msrvtt_dir / "test_videodatainfo.json").read_text())
    category_of = {v["video_id"]: names[v["category"]] for v in raw["videos"]}
    with open(msrvtt_dir / "MSRVTT_JSFUSION_test.csv", newline="") as fh:
        csv_ids = [row["video_id"] for row in csv.DictReader(fh)]
    expected = Counter(category_of[v] for v in csv_ids)
    counts = mr.category_counts(real_test)
    assert len(counts) == 20 and counts["videos"].sum() == 1000
    assert counts["videos"].to_dict() == dict(expected)
    assert list(counts["videos"]) == sorted(counts["videos"], reverse=True)


def test_real_breakdowns_count_every_query_once(real_test: mr.SplitData, msrvtt_dir: Path) -> None:
    # A perfect system (queries = their own videos) and a hand-made one whose ranks we know.
    perfect = mr.score_row(
        "perfect", real_test.videos, real_test.videos, real_test.caption_to_video, n_boot=20
    )
    rows = {"perfect": perfect}
    categories = mr.category_breakdown(rows, real_test)
    assert categories["n"].sum() == 1000 and len(categories) == 20
    assert (categories["R@1"] == 100.0).all()
    lengths = mr.length_breakdown(rows, real_test)
    with open(msrvtt_dir / "MSRVTT_JSFUSION_test.csv", newline="") as fh:
        words = [len(row["sentence"].split()) for row in csv.DictReader(fh)]
    expected = {
        "1–10": sum(w <= 10 for w in words),
        "11–20": sum(11 <= w <= 20 for w in words),
        "21+": sum(w > 20 for w in words),
    }
    got = dict(zip(lengths["query words"].astype(str), lengths["n"], strict=True))
    assert got == {k: v for k, v in expected.items() if v}
    assert list(lengths["query words"].cat.categories)[:2] == ["1–10", "11–20"]


def test_real_9k_split_and_pre_extracted_features(msrvtt_dir: Path, msrvtt_info, tmp_path: Path) -> None:
    """The full profile's path: real annotations, pre-extracted (N, D) features, stand-in text encoder."""
    train = list(load_msrvtt(msrvtt_dir, "train_9k", info=msrvtt_info))
    test = list(load_msrvtt(msrvtt_dir, "test_1k", info=msrvtt_info))
    assert len(train) == 9000 and sum(len(r.captions) for r in train) == 180_000
    ids = [r.id for r in test][::-1]  # features stored in another order than the annotations
    features = np.random.default_rng(1).normal(size=(len(ids), 8)).astype(np.float32)
    np.save(tmp_path / "feats.npy", features)
    (tmp_path / "ids.txt").write_text("\n".join(ids))
    cfg = load_profile(
        "sample",
        {
            "data.msrvtt_annotations": str(msrvtt_dir),
            "data.root": str(tmp_path / "videos"),
            "video.cache": False,
            "msrvtt_recall.video_features": str(tmp_path / "feats.npy"),
            "msrvtt_recall.video_feature_ids": str(tmp_path / "ids.txt"),
        },
    )
    data = mr.load_split(cfg, "test_1k", StandInEncoder(), info=msrvtt_info, progress=False)
    assert data.frames.shape == (1000, 1, 8) and data.text.shape == (1000, 16)
    row_of = {vid: i for i, vid in enumerate(ids)}
    expected = _unit(features[[row_of[r.id] for r in data.records]])
    np.testing.assert_allclose(data.frames[:, 0], expected, rtol=1e-6)
    np.testing.assert_allclose(data.text[0], _unit(_caption_vector(test[0].captions[0], 16)), rtol=1e-6)


# ---------------------------------------------------------------- pre-extracted features


def _records(ids: list[str]) -> list[ClipRecord]:
    return [ClipRecord(id=i, video=f"{i}.mp4", captions=[f"caption of {i}"], split="test") for i in ids]


def test_features_missing_id_names_the_file_and_the_id(tmp_path: Path) -> None:
    np.save(tmp_path / "f.npy", np.ones((2, 4), dtype=np.float32))
    (tmp_path / "ids.txt").write_text("video1\nvideo2\n")
    with pytest.raises(ManifestError, match=r"ids\.txt.*video3"):
        mr.load_video_features(tmp_path / "f.npy", tmp_path / "ids.txt", _records(["video1", "video3"]))


def test_features_bad_rows_name_the_file_and_the_id(tmp_path: Path) -> None:
    array = np.ones((3, 2, 4), dtype=np.float32)
    array[1, 1, 2] = np.nan
    array[2] = 0.0
    np.save(tmp_path / "f.npy", array)
    (tmp_path / "ids.json").write_text(json.dumps(["a", "b", "c"]))
    with pytest.raises(ManifestError, match=r"f\.npy.*'b'.*non-finite"):
        mr.load_video_features(tmp_path / "f.npy", tmp_path / "ids.json", _records(["a", "b"]))
    with pytest.raises(ManifestError, match=r"f\.npy.*'c'.*all-zero"):
        mr.load_video_features(tmp_path / "f.npy", tmp_path / "ids.json", _records(["c"]))
    out = mr.load_video_features(tmp_path / "f.npy", tmp_path / "ids.json", _records(["a"]))
    np.testing.assert_allclose(out, np.full((1, 2, 4), 0.5))  # (1,1,1,1) / 2 per frame


def test_features_row_count_mismatch_is_an_error(tmp_path: Path) -> None:
    np.save(tmp_path / "f.npy", np.ones((3, 4), dtype=np.float32))
    (tmp_path / "ids.txt").write_text("a\nb\n")
    with pytest.raises(ManifestError, match="3 rows but .*ids.txt lists 2 ids"):
        mr.load_video_features(tmp_path / "f.npy", tmp_path / "ids.txt", _records(["a"]))


# ------------------------------------------------------------------------ loss and batches


def test_hard_negative_loss_by_hand() -> None:
    sim = torch.tensor([[0.9, 0.5, 0.1], [0.2, 0.8, 0.6], [0.3, 0.7, 0.4]])
    # k=1: row hardest: (0,1) (1,2) (2,1); column hardest: (2,0) (2,1) (1,2). Kept off-diagonal:
    keep = {(0, 1), (1, 2), (2, 1), (2, 0)}
    mask = mr.hard_negative_mask(sim, 1)
    assert {(i, j) for i in range(3) for j in range(3) if mask[i, j] and i != j} == keep
    t = 0.1
    s = sim.numpy() / t

    def ce(logits: list[float], target: float) -> float:
        return float(np.log(np.sum(np.exp(logits))) - target)

    rows = [ce([s[0, 0], s[0, 1]], s[0, 0]), ce([s[1, 1], s[1, 2]], s[1, 1]),
            ce([s[2, 2], s[2, 0], s[2, 1]], s[2, 2])]  # fmt: skip
    cols = [ce([s[0, 0], s[2, 0]], s[0, 0]), ce([s[1, 1], s[0, 1], s[2, 1]], s[1, 1]),
            ce([s[2, 2], s[1, 2]], s[2, 2])]  # fmt: skip
    expected = (np.mean(rows) + np.mean(cols)) / 2
    assert float(mr.hard_negative_info_nce(sim, t, k=1)) == pytest.approx(expected, rel=1e-5)


def test_hard_negative_loss_limits() -> None:
    sim = torch.nn.functional.normalize(torch.randn(6, 4, generator=torch.Generator().manual_seed(0)), dim=1)
    sim = sim @ sim.T
    full = info_nce(sim, 0.07)
    assert torch.equal(mr.hard_negative_info_nce(sim, 0.07, k=0), full)
    assert torch.equal(mr.hard_negative_info_nce(sim, 0.07, k=5), full)
    fewer = mr.hard_negative_info_nce(sim, 0.07, k=2)
    assert float(fewer) < float(full)  # fewer negatives in every softmax: a smaller loss
    mask = mr.hard_negative_mask(sim, 2)
    assert (mask.sum(dim=1) >= 3).all() and mask.diagonal().all()


def test_pair_batches_hold_distinct_videos_and_their_own_captions() -> None:
    owners = np.array([0, 1, 1, 2, 2, 2, 3, 4, 4, 0, 3])
    videos = torch.arange(5)
    text = torch.from_numpy(owners)  # "embedding" = the owner, so pairs are checkable
    batches = mr.PairBatches(videos, text, owners, batch_size=2, seed=3, rounds=2)
    drawn = list(batches)
    assert len(drawn) == len(batches) == 4  # 2 rounds x (2 full batches; the lone 5th video is skipped)
    for video, caption_owner in drawn:
        assert torch.equal(video, caption_owner) and len(set(video.tolist())) == len(video)
    batches.generator.manual_seed(7)
    first = [v.tolist() for v, _ in batches]
    batches.generator.manual_seed(7)
    assert [v.tolist() for v, _ in batches] == first
    with pytest.raises(ValueError, match="video 5 has no caption"):
        mr.PairBatches(torch.arange(6), text, owners, batch_size=2)


def test_text_projection_starts_as_identity() -> None:
    x = torch.nn.functional.normalize(torch.randn(4, 8), dim=1)
    assert torch.allclose(mr.TextProjection(8, 8, 16)(x), x, atol=1e-6)
    assert mr.TextProjection(8, 12, 16)(x).shape == (4, 12)


# ------------------------------------------------------------------------- end to end


def _synthetic_split(name: str, n_videos: int, rng: np.random.Generator, dim: int = 16) -> mr.SplitData:
    """Videos whose frames scatter around a centre, two captions each lying near that centre."""
    centres = _unit(rng.normal(size=(n_videos, dim)))
    frames = _unit(centres[:, None, :] + 0.3 * rng.normal(size=(n_videos, 4, dim)))
    categories = ["music", "sports", "news"]
    records = [
        ClipRecord(
            id=f"video{i}",
            video=f"video{i}.mp4",
            captions=[f"clip {i} shows a thing", f"video {i}"],
            split="test",
            category=categories[i % 3],
        )  # fmt: skip
        for i in range(n_videos)
    ]
    text_of = {
        c: _unit(centres[i] + 0.6 * rng.normal(size=dim)) for i, r in enumerate(records) for c in r.captions
    }
    return mr.assemble_split(
        name, records, dict(zip([r.id for r in records], frames, strict=True)),
        lambda caps: np.stack([text_of[c] for c in caps]),
    )  # fmt: skip


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory):
    rng = np.random.default_rng(0)
    train, test = _synthetic_split("train_9k", 40, rng), _synthetic_split("test_1k", 12, rng)
    cfg = load_profile(
        "sample",
        {"msrvtt_recall.epochs": 2, "msrvtt_recall.batch_size": 8, "msrvtt_recall.head_layers": 1,
         "msrvtt_recall.projection_hidden": 32, "msrvtt_recall.n_boot": 50, "msrvtt_recall.hard_negatives": 3,
         "train.tensorboard": False},
    )  # fmt: skip
    out = tmp_path_factory.mktemp("runs")
    rows = mr.compute_rows(cfg, train, test, progress=False, out_root=out)
    return cfg, train, test, rows, out


def test_tiny_end_to_end_rows(tiny_run) -> None:
    cfg, train, test, rows, out = tiny_run
    assert list(rows) == [mr.ZERO_SHOT, mr.SEED_002, "mean head", "seqtransf head"]
    zero = rows[mr.ZERO_SHOT]
    # zero-shot t2v R@1 by hand: the argmax video of each caption's similarity row.
    sim = test.text @ test.videos.T
    assert zero.metrics["t2v_R@1"] == pytest.approx(100 * np.mean(sim.argmax(1) == test.caption_to_video))
    assert zero.metrics["t2v_R@1_lo"] <= zero.metrics["t2v_R@1"] <= zero.metrics["t2v_R@1_hi"]
    assert zero.metrics["t2v_MedR_lo"] <= zero.metrics["t2v_MedR"] <= zero.metrics["t2v_MedR_hi"]
    # Mean pooling has no parameters: its row is the zero-shot row.
    assert rows["mean head"].history is None
    np.testing.assert_allclose(rows["mean head"].videos, zero.videos, atol=1e-6)
    for name in (mr.SEED_002, "seqtransf head"):
        history = rows[name].history
        assert list(history["epoch"]) == [1, 2] and "seconds" not in history
        assert "val_R@1" in history and (out / name.replace(" ", "_") / "best.pt").is_file()
    table = mr.recall_table(rows)
    assert table.shape[0] == 8 and {"R@1 95% CI", "DSL R@1", "MeanR 95% CI"} <= set(table.columns)
    # two captions per video: the v2t lines name their rule
    assert table.loc[(mr.ZERO_SHOT, "v2t (clip4clip rule)"), "R@5"] == round(zero.metrics["v2t_R@5"], 1)


def test_tiny_run_repeats_exactly(tiny_run, tmp_path: Path) -> None:
    cfg, train, test, rows, _ = tiny_run
    again = mr.compute_rows(cfg, train, test, progress=False, out_root=tmp_path)
    for name, row in rows.items():
        assert again[name].metrics == row.metrics, name


def test_tiny_tables_cases_figures_and_summary(tiny_run) -> None:
    cfg, train, test, rows, _ = tiny_run
    gains = mr.gains_table(rows, n_boot=50)
    assert gains.loc[("mean head", "t2v"), "ΔR@1"] == 0.0
    categories, lengths = mr.category_breakdown(rows, test), mr.length_breakdown(rows, test)
    assert set(categories["category"]) == {"music", "sports", "news"}
    assert (categories.groupby("system", observed=True)["n"].sum() == 24).all()
    row = rows[mr.ZERO_SHOT]
    successes, failures = mr.pick_cases(row, test, 3, "success"), mr.pick_cases(row, test, 3, "failure")
    assert all(c.rank == 1 and c.top == c.target for c in successes)
    assert [c.margin for c in successes] == sorted((c.margin for c in successes), reverse=True)
    assert all(c.rank > 1 for c in failures) and failures[0].rank == row.t2v_ranks.max()
    pos, neg, hardest = mr.similarity_split(row)
    assert len(pos) == 24 and len(neg) == 24 * 11 and np.all(hardest >= neg.reshape(24, 11).min(axis=1))
    summary = mr.summary_metrics(rows, categories, lengths, gains, train, test)
    json.dumps(summary)  # serialisable as is
    assert summary["test"] == {"split": "test_1k", "videos": 12, "queries": 24, "dropped_videos": 0}
    for fig in (mr.recall_figure(rows), mr.breakdown_figure(categories, "category"),
                mr.similarity_figure(rows), mr.category_distribution_figure(test),
                mr.cases_figure(failures, test, "failures")):  # fmt: skip
        assert fig.axes
        plt.close(fig)


def test_split_train_val_is_disjoint_and_deterministic() -> None:
    data = _synthetic_split("train_9k", 20, np.random.default_rng(0))
    fit, val = mr.split_train_val(data, 0.25, seed=0)
    assert len(fit) == 15 and len(val) == 5 and not set(fit.ids) & set(val.ids)
    assert set(fit.ids) | set(val.ids) == set(data.ids)
    assert all(fit.captions[q] in fit.records[v].captions for q, v in enumerate(fit.caption_to_video))
    assert mr.split_train_val(data, 0.25, seed=0)[1].ids == val.ids
    same, none = mr.split_train_val(data, 0.0, seed=0)
    assert same is data and none is None


def test_msrvtt_dirs_follow_the_profile(tmp_path: Path) -> None:
    cfg = load_profile(
        "sample", {"data.msrvtt_annotations": str(tmp_path / "ann"), "data.root": str(tmp_path / "v")}
    )
    assert mr.msrvtt_dirs(cfg) == (tmp_path / "ann", tmp_path / "v")


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
        mr.ZERO_SHOT: mr.score_row(mr.ZERO_SHOT, blind[owners], blind, owners, n_boot=200, pairs=pairs),
        "perfect": mr.score_row("perfect", videos, videos, owners, n_boot=200, pairs=pairs),
    }  # fmt: skip
    assert rows[mr.ZERO_SHOT].metrics["pair_acc"] == 0.0 and rows["perfect"].metrics["pair_acc"] == 100.0
    assert rows["perfect"].metrics["pair_acc_lo"] == pytest.approx(100 * 0.025 ** (1 / n))  # exact CP bound
    table = mr.pair_table(rows)
    assert table.loc["perfect", "captions"] == n
    gains = mr.gains_table(rows, n_boot=500)
    t2v = gains.loc[("perfect", "t2v")]
    assert t2v["Δpair_acc"] == 100.0 and t2v["pair_p"] == pytest.approx(2 * 0.5**n)
    np.testing.assert_allclose(gains["p_holm"], M.holm(gains["p"]))
    assert gains["significant"].tolist() == (gains["p_holm"] < 0.05).tolist()
