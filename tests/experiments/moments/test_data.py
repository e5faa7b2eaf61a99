"""Data stage of notebook 07 on QVHighlights-format files: splits by video, missing videos skipped."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from vtr.config import load_profile
from vtr.experiments.moments import data as mdata
from vtr.video import write_video


def _row(qid: int, vid: str) -> dict:
    return {"qid": qid, "query": f"q {qid}", "duration": 8, "vid": vid, "relevant_windows": [[2, 6]],
            "relevant_clip_ids": [1, 2], "saliency_scores": [[1, 2, 3], [4, 4, 4]]}  # fmt: skip


@pytest.fixture()
def qvh(tmp_path: Path) -> Path:
    (tmp_path / "videos").mkdir()
    write_video(tmp_path / "videos" / "v1.mp4", np.zeros((32, 32, 32, 3), dtype=np.uint8), 4)
    train = [_row(i, f"t{i % 40}") for i in range(80)] + [_row(900, "v1")]
    for name, rows in (("train", train), ("val", [_row(1000, "v1"), _row(1001, "gone")])):
        (tmp_path / f"highlight_{name}_release.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return tmp_path


def _cfg(qvh: Path, tmp_path: Path):
    return load_profile("sample", overrides={
        "data_dir": str(tmp_path / "data"), "moments.dataset": "qvhighlights", "moments.annotations": str(qvh),
        "moments.videos": str(qvh / "videos"), "moments.frames_per_clip": 1,
    })  # fmt: skip


def test_a_tenth_of_the_training_videos_is_held_out_whole(qvh: Path, tmp_path: Path) -> None:
    queries, videos, source = mdata.ground_truth(_cfg(qvh, tmp_path))
    train_vids = {q.vid for q in queries["train"]}
    val_vids = {q.vid for q in queries["val"]}
    assert val_vids and not train_vids & val_vids  # by video, never by query
    assert 1 <= len(val_vids) <= 10  # about a tenth of 41 videos
    assert [q.qid for q in queries["test"]] == [1000, 1001] and "QVHighlights" in source
    assert videos["v1"] == qvh / "videos" / "v1.mp4"


def test_missing_videos_are_skipped_and_listed(qvh: Path, tmp_path: Path, random_tiny_encoder) -> None:
    data = mdata.load_moment_data(_cfg(qvh, tmp_path), random_tiny_encoder, progress=False)
    assert "gone" in data.skipped and "not found" in data.skipped["gone"]
    assert [q.qid for q in data.queries["test"]] == [1000]
    (sample,) = data.samples["test"]
    assert sample.video.n_clips == 4 and sample.windows == [(2, 6)]
    assert any(mdata.feature_cache_dir(_cfg(qvh, tmp_path)).glob("*.npy"))  # cached for the next run


def test_unknown_dataset_and_missing_files_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="'moments.dataset' must be one of"):
        mdata.ground_truth(load_profile("sample", overrides={"moments.dataset": "nope"}))
    cfg = load_profile(
        "sample", overrides={"moments.dataset": "qvhighlights", "moments.annotations": str(tmp_path)}
    )
    with pytest.raises(FileNotFoundError, match="highlight_train_release.jsonl"):
        mdata.ground_truth(cfg)
