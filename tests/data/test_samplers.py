"""Batch samplers: hard pairs stay together, batches cover every item once, reseeding repeats them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vtr.data.samplers import PairBatchSampler, create_batch_sampler, list_samplers


def _clusters() -> list[str]:
    # 20 pairs and 10 singles, interleaved as a manifest would list them
    labels = [f"pair{i}" for i in range(20) for _ in range(2)] + [f"clip{i}" for i in range(10)]
    return [labels[i] for i in np.random.default_rng(0).permutation(len(labels))]


def test_pairs_share_a_batch_and_every_item_appears_once() -> None:
    clusters = _clusters()
    sampler = PairBatchSampler(clusters, batch_size=8, generator=torch.Generator().manual_seed(1))
    batches = list(sampler)
    seen = [i for b in batches for i in b]
    assert sorted(seen) == list(range(len(clusters)))
    assert all(len(b) <= 8 for b in batches) and len(batches) == len(sampler)
    batch_of = {i: n for n, b in enumerate(batches) for i in b}
    for label in {c for c in clusters if c.startswith("pair")}:
        members = [i for i, c in enumerate(clusters) if c == label]
        assert len({batch_of[i] for i in members}) == 1, label


def test_reseeding_the_generator_repeats_the_batches() -> None:
    generator = torch.Generator()
    sampler = create_batch_sampler("pairs", _clusters(), 8, generator, drop_last=False)
    generator.manual_seed(5)
    first = list(sampler)
    generator.manual_seed(5)
    assert list(sampler) == first
    generator.manual_seed(6)
    assert list(sampler) != first


def test_random_sampler_is_registered_and_drop_last_works() -> None:
    assert {"random", "pairs"} <= set(list_samplers())
    random = create_batch_sampler("random", _clusters(), 8, torch.Generator().manual_seed(0), drop_last=True)
    assert all(len(b) == 8 for b in random) and len(list(random)) == 50 // 8
    with pytest.raises(ValueError, match="batch_size"):
        PairBatchSampler(["a"], 0)
