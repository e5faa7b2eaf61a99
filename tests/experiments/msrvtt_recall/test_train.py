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


def test_pair_batches_keep_hard_partners_together() -> None:
    owners = np.repeat(np.arange(12), 2)
    clusters = np.array([f"p{i // 2}" if i < 8 else f"clip{i}" for i in range(12)])  # 4 pairs, 4 singles
    batches = PairBatches(torch.arange(12), torch.from_numpy(owners), owners, batch_size=4, seed=1, rounds=2,
                          clusters=clusters)  # fmt: skip
    drawn = [v.tolist() for v, _ in batches]
    assert len(drawn) == len(batches) == 6 and sorted(sum(drawn[:3], [])) == list(range(12))
    for video in drawn:
        for v in video:
            if v < 8:  # a paired clip: its partner is in the same batch
                assert v ^ 1 in video
    batches.generator.manual_seed(4)
    first = [v.tolist() for v, _ in batches]
    batches.generator.manual_seed(4)
    assert [v.tolist() for v, _ in batches] == first
    with pytest.raises(ValueError, match="clusters label 3 videos"):
        PairBatches(torch.arange(12), torch.from_numpy(owners), owners, batch_size=4, clusters=clusters[:3])


def test_trend_head_starts_from_the_given_state() -> None:
    from vtr.experiments.msrvtt_recall.train import build_temporal_head
    from vtr.models.temporal import TrendHead

    cfg = load_profile("sample", {"tiny.trend_degree": 2})
    source = TrendHead(8, degree=2, init_scale=0.3)
    head = build_temporal_head(cfg, "trend", 8, source.state_dict())
    frames = torch.randn(3, 4, 8)
    torch.testing.assert_close(head(frames), source(frames))
    assert build_temporal_head(cfg, "trend", 8).maps[0].weight.equal(torch.eye(8))  # identity start
    with pytest.raises(ValueError, match="pretrained trend head has shapes"):
        build_temporal_head(cfg, "trend", 16, source.state_dict())
    assert build_temporal_head(load_profile("sample", {"msrvtt_recall.head_layers": 1}), "seqtransf", 8) \
        .transformer.num_layers == 1


def test_subset_keeps_the_hard_pairs_it_can(synthetic_split: Callable[..., SplitData]) -> None:
    import dataclasses

    from vtr.evaluation import hard_pairs

    split = synthetic_split("train_9k", 6, np.random.default_rng(0))
    metas = [{"pair_group": f"p{i // 2}", "pair_partner": f"video{i ^ 1}"} for i in range(6)]
    split = dataclasses.replace(split, pairs=hard_pairs(split.ids, metas))
    part = split.subset([1, 2, 3, 5])
    assert part.pairs.clusters.tolist() == ["p0", "p1", "p1", "p2"]
    assert part.pairs.partner.tolist() == [-1, 2, 1, -1]  # video0 and video4 are not in the subset
