"""vtr.experiments.msrvtt_recall.train: the batch sampler and the run folders of the trained rows."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from vtr.config import load_profile
from vtr.experiments.msrvtt_recall.data import SplitData
from vtr.experiments.msrvtt_recall.train import PairBatches, run_dir


def test_pair_batches_hold_distinct_videos_and_their_own_captions() -> None:
    owners = np.array([0, 1, 1, 2, 2, 2, 3, 4, 4, 0, 3])
    videos = torch.arange(5)
    text = torch.from_numpy(owners)  # "embedding" = the owner, so pairs are checkable
    batches = PairBatches(videos, text, owners, batch_size=2, seed=3, rounds=2)
    drawn = list(batches)
    assert len(drawn) == len(batches) == 4  # 2 rounds x (2 full batches; the lone 5th video is skipped)
    for video, caption_owner in drawn:
        assert torch.equal(video, caption_owner) and len(set(video.tolist())) == len(video)
    batches.generator.manual_seed(7)
    first = [v.tolist() for v, _ in batches]
    batches.generator.manual_seed(7)
    assert [v.tolist() for v, _ in batches] == first
    with pytest.raises(ValueError, match="video 5 has no caption"):
        PairBatches(torch.arange(6), text, owners, batch_size=2)



def test_run_dir_changes_with_settings_and_features_but_not_with_data_dir(
    synthetic_split: Callable[..., SplitData], tmp_path: Path
) -> None:
    split = synthetic_split("train_9k", 6, np.random.default_rng(0))
    cfg = load_profile("sample", {"data_dir": str(tmp_path / "a")})
    first = run_dir(cfg, split, "seed 002")
    assert first.parent == tmp_path / "a" / "runs" / "05_msrvtt_recall" and first.name.startswith("seed_002-")
    moved = run_dir(load_profile("sample", {"data_dir": str(tmp_path / "b")}), split, "seed 002")
    assert moved.name == first.name  # data_dir is where, not what: not in the key (vtr.keys.NOT_IN_KEYS)
    assert run_dir(load_profile("sample", {"data_dir": str(tmp_path / "a"), "msrvtt_recall.lr": 0.5}),
                   split, "seed 002") != first  # fmt: skip
    assert run_dir(cfg, split, "seqtransf head") != first
    other = synthetic_split("train_9k", 6, np.random.default_rng(1))
    assert run_dir(cfg, other, "seed 002") != first
