"""A miniature QVHighlights: four short random-noise videos and their queries, in the release's format."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from vtr.video import write_video

SECONDS, FPS = 12, 4
TRAIN_VIDS = ("vA", "vB", "vC")
TEST_VIDS = ("vT",)
# --set values that keep `vtr moments` runs to seconds: a random vtr-tiny (no pretraining), 2 epochs
FAST = [
    'model.pretrained=""', "moments.epochs=2", "moments.hidden=16", "moments.layers=1", "moments.heads=2",
    "moments.n_boot=20", "moments.batch_size=4", "moments.frames_per_clip=1", "device=cpu",
]  # fmt: skip


def _query(qid: int, vid: str, start: int, end: int) -> dict:
    clips = list(range(start // 2, end // 2))
    return {
        "qid": qid, "query": f"query {qid} about a moving shape", "duration": SECONDS, "vid": vid,
        "relevant_windows": [[start, end]], "relevant_clip_ids": clips, "saliency_scores": [[2, 3, 4]] * len(clips),
    }  # fmt: skip


def write_mini_qvhighlights(root: Path) -> Path:
    """``root/annotations/highlight_{train,val}_release.jsonl`` and ``root/videos/<vid>.mp4``; returns root."""
    rng = np.random.default_rng(0)
    (root / "videos").mkdir(parents=True)
    (root / "annotations").mkdir()
    for vid in TRAIN_VIDS + TEST_VIDS:
        frames = rng.integers(0, 255, size=(SECONDS * FPS, 32, 32, 3), dtype=np.uint8)
        write_video(root / "videos" / f"{vid}.mp4", frames, FPS)
    train = [_query(i, vid, 2 * (i % 3), 2 * (i % 3) + 4) for i, vid in enumerate(TRAIN_VIDS * 2)]
    test = [_query(100 + i, "vT", 4 * i, 4 * i + 4) for i in range(2)]
    for name, rows in (("train", train), ("val", test)):
        text = "".join(json.dumps(r) + "\n" for r in rows)
        (root / "annotations" / f"highlight_{name}_release.jsonl").write_text(text)
    return root


@pytest.fixture()
def mini_qvh(tmp_path: Path) -> Path:
    return write_mini_qvhighlights(tmp_path / "qvh")


def qvh_overrides(root: Path, data_dir: Path) -> list[str]:
    """``--set`` arguments pointing the sample profile at the miniature QVHighlights."""
    return [
        f"data_dir={data_dir}", "moments.dataset=qvhighlights", f"moments.annotations={root / 'annotations'}",
        f"moments.videos={root / 'videos'}", *FAST,
    ]  # fmt: skip


@pytest.fixture()
def fast_sets() -> list[str]:
    """``--set KEY=VALUE`` strings for quick runs (see :data:`FAST`)."""
    return list(FAST)


@pytest.fixture()
def qvh_sets(mini_qvh: Path, tmp_path: Path) -> list[str]:
    """``--set KEY=VALUE`` strings for `vtr moments train` on the miniature QVHighlights."""
    return qvh_overrides(mini_qvh, tmp_path / "data")
