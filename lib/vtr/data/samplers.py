"""Batch samplers for contrastive training: random batches, or batches that keep hard pairs together.

A contrastive loss learns from the negatives in its batch. In the sample world the negative that
matters is a clip's hard-pair partner (same look, opposite motion), and a random batch of 32 out
of ~640 training clips holds it only about 5% of the time, so the losses rarely see it.
:class:`PairBatchSampler` shuffles whole groups (a hard pair, or a clip on its own) and packs them
into batches, so every partner that exists shares its clip's batch:

    sampler = PairBatchSampler(train.video_clusters, batch_size=32, generator=g)
    loader = DataLoader(torch.arange(n), batch_sampler=sampler, collate_fn=...)

Shuffling draws from ``generator`` only, which ``vtr.train.fit`` reseeds every epoch (pass the
same generator to the DataLoader), so a resumed run sees the same batches.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Sampler

from vtr.registry import Registry

SAMPLERS: Registry = Registry("batch sampler")
register_sampler = SAMPLERS.register
list_samplers = SAMPLERS.names


class PairBatchSampler(Sampler[list[int]]):
    """Batches of item indices in which items sharing a cluster label are never split.

    Groups are shuffled, then packed greedily in that order into batches of at most ``batch_size``
    items; a group larger than a batch gets a batch of its own. With ``drop_last`` a final batch
    smaller than ``batch_size`` is dropped (as the random sampler does).
    """

    def __init__(
        self,
        clusters: Sequence[object] | np.ndarray,
        batch_size: int,
        *,
        generator: torch.Generator | None = None,
        drop_last: bool = False,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        _, codes = np.unique(np.asarray(clusters, dtype=str), return_inverse=True)
        order = np.argsort(codes, kind="stable")
        bounds = np.flatnonzero(np.diff(codes[order])) + 1
        self.groups = [g.tolist() for g in np.split(order, bounds)] if len(order) else []
        self.batch_size = batch_size
        self.generator = generator
        self.drop_last = drop_last

    def _batches(self) -> list[list[int]]:
        perm = torch.randperm(len(self.groups), generator=self.generator).tolist()
        batches: list[list[int]] = []
        current: list[int] = []
        for g in perm:
            group = self.groups[g]
            if current and len(current) + len(group) > self.batch_size:
                batches.append(current)
                current = []
            current = current + group
        if current and not (self.drop_last and len(current) < self.batch_size and batches):
            batches.append(current)
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        yield from self._batches()

    def __len__(self) -> int:
        # Greedy packing of shuffled groups: the count can vary by a batch between epochs, so the
        # length is that of one packing with a fixed order (what fit uses to size its schedule).
        sizes = [len(g) for g in self.groups]
        batches, filled = 0, 0
        for size in sizes:
            if filled and filled + size > self.batch_size:
                batches, filled = batches + 1, 0
            filled += size
        last_full = filled >= self.batch_size or not self.drop_last or batches == 0
        return batches + (1 if filled and last_full else 0)


def random_batches(n: int, batch_size: int, generator: torch.Generator, drop_last: bool) -> Sampler[list[int]]:
    """Random batches (the default sampler): a shuffled permutation cut into ``batch_size`` chunks."""
    return torch.utils.data.BatchSampler(
        torch.utils.data.RandomSampler(range(n), generator=generator), batch_size, drop_last
    )


def pair_batches(clusters: Sequence[object], batch_size: int, generator: torch.Generator, drop_last: bool):
    """Batches that keep each hard pair together (:class:`PairBatchSampler`)."""
    return PairBatchSampler(clusters, batch_size, generator=generator, drop_last=drop_last)


SAMPLERS.add("random", lambda clusters, batch_size, generator, drop_last: random_batches(
    len(clusters), batch_size, generator, drop_last))  # fmt: skip
SAMPLERS.add("pairs", pair_batches)


def create_batch_sampler(
    name: str, clusters: Sequence[object], batch_size: int, generator: torch.Generator, drop_last: bool
) -> Sampler[list[int]]:
    """The registered batch sampler ``name`` (``random`` or ``pairs``) over items labelled ``clusters``."""
    return SAMPLERS.create(name, clusters, batch_size, generator, drop_last)
