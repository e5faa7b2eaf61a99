"""vtr.experiments.msrvtt_recall.data: the real MSR-VTT annotation files through the loader, feature
validation, the held-out split and the MSR-VTT folders of a profile."""

from __future__ import annotations

import csv
import json
import zlib
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from vtr.config import load_profile
from vtr.data.manifest import ClipRecord, ManifestError
from vtr.data.msrvtt import load_msrvtt, msrvtt_dirs
from vtr.experiments.msrvtt_recall.data import (
    SplitData,
    assemble_split,
    load_split,
    load_video_features,
    split_train_val,
)
from vtr.experiments.msrvtt_recall.evaluate import score_row
from vtr.experiments.msrvtt_recall.tables import category_breakdown, category_counts, length_breakdown


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
def real_test(msrvtt_dir: Path, msrvtt_info) -> SplitData:
    """The real 1k-A test split with random frame features and stand-in caption embeddings."""
    records = list(load_msrvtt(msrvtt_dir, "test_1k", info=msrvtt_info))
    rng = np.random.default_rng(0)
    frames = {r.id: _unit(rng.normal(size=(3, 16))) for r in records}
    return assemble_split("test_1k", records, frames, StandInEncoder().encode_text)


def test_real_1k_a_split_sizes_and_categories(real_test: SplitData, msrvtt_dir: Path) -> None:
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
    counts = category_counts(real_test)
    assert len(counts) == 20 and counts["videos"].sum() == 1000
    assert counts["videos"].to_dict() == dict(expected)
    assert list(counts["videos"]) == sorted(counts["videos"], reverse=True)


def test_real_breakdowns_count_every_query_once(real_test: SplitData, msrvtt_dir: Path) -> None:
    # A perfect system (queries = their own videos) and a hand-made one whose ranks we know.
    perfect = score_row(
        "perfect", real_test.videos, real_test.videos, real_test.caption_to_video, n_boot=20
    )
    rows = {"perfect": perfect}
    categories = category_breakdown(rows, real_test)
    assert categories["n"].sum() == 1000 and len(categories) == 20
    assert (categories["R@1"] == 100.0).all()
    lengths = length_breakdown(rows, real_test)
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
    data = load_split(cfg, "test_1k", StandInEncoder(), info=msrvtt_info, progress=False)
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
        load_video_features(tmp_path / "f.npy", tmp_path / "ids.txt", _records(["video1", "video3"]))


def test_features_bad_rows_name_the_file_and_the_id(tmp_path: Path) -> None:
    array = np.ones((3, 2, 4), dtype=np.float32)
    array[1, 1, 2] = np.nan
    array[2] = 0.0
    np.save(tmp_path / "f.npy", array)
    (tmp_path / "ids.json").write_text(json.dumps(["a", "b", "c"]))
    with pytest.raises(ManifestError, match=r"f\.npy.*'b'.*non-finite"):
        load_video_features(tmp_path / "f.npy", tmp_path / "ids.json", _records(["a", "b"]))
    with pytest.raises(ManifestError, match=r"f\.npy.*'c'.*all-zero"):
        load_video_features(tmp_path / "f.npy", tmp_path / "ids.json", _records(["c"]))
    out = load_video_features(tmp_path / "f.npy", tmp_path / "ids.json", _records(["a"]))
    np.testing.assert_allclose(out, np.full((1, 2, 4), 0.5))  # (1,1,1,1) / 2 per frame


def test_features_row_count_mismatch_is_an_error(tmp_path: Path) -> None:
    np.save(tmp_path / "f.npy", np.ones((3, 4), dtype=np.float32))
    (tmp_path / "ids.txt").write_text("a\nb\n")
    with pytest.raises(ManifestError, match="3 rows but .*ids.txt lists 2 ids"):
        load_video_features(tmp_path / "f.npy", tmp_path / "ids.txt", _records(["a"]))


# ------------------------------------------------------------------------ loss and batches



def test_split_train_val_is_disjoint_and_deterministic(synthetic_split: Callable[..., SplitData]) -> None:
    data = synthetic_split("train_9k", 20, np.random.default_rng(0))
    fit, val = split_train_val(data, 0.25, seed=0)
    assert len(fit) == 15 and len(val) == 5 and not set(fit.ids) & set(val.ids)
    assert set(fit.ids) | set(val.ids) == set(data.ids)
    assert all(fit.captions[q] in fit.records[v].captions for q, v in enumerate(fit.caption_to_video))
    assert split_train_val(data, 0.25, seed=0)[1].ids == val.ids
    same, none = split_train_val(data, 0.0, seed=0)
    assert same is data and none is None


def test_msrvtt_dirs_follow_the_profile(tmp_path: Path) -> None:
    cfg = load_profile(
        "sample", {"data.msrvtt_annotations": str(tmp_path / "ann"), "data.root": str(tmp_path / "v")}
    )
    assert msrvtt_dirs(cfg) == (tmp_path / "ann", tmp_path / "v")
