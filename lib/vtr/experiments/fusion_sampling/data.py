"""Stage 1 of notebook 03: frame features under every sampling strategy, and the runs the grid trains.

Caption features do not depend on the strategy, so they are computed once per split and shared;
frame features come from the embedding cache, one entry per strategy. There is no validation split:
the grid trains a fixed number of epochs, as seed 003's table did.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

from vtr.experiments.finetune_grids import Grid, Splits
from vtr.finetune import RunSpec, build_features

if TYPE_CHECKING:
    from vtr.config import Profile
    from vtr.models.encoders import Encoder

NOTEBOOK = "03_fusion_sampling"
#: Seed 003 reports the training loss at epoch 10; the grid trains min(10, train.epochs) epochs.
SEED003_EPOCH = 10


def plan(cfg: Profile, encoder: Encoder) -> Grid:
    """The fusion scorer, every sampling strategy x loss x seed, ``min(10, train.epochs)`` epochs."""
    ft = cfg.finetune
    splits: Splits = {}
    text = {}
    for strategy in ft.strategies:
        parts = []
        for name in ("train", "test"):
            split = build_features(cfg, encoder, name, strategy, text=text.get(name))
            if split.text is not None:
                text.setdefault(name, split.text)  # caption features do not depend on the strategy
            parts.append(split)
        splits[strategy] = (parts[0], None, parts[1])
    specs = [RunSpec("fusion", loss, strategy, seed)
             for strategy, loss, seed in itertools.product(ft.strategies, ft.losses, ft.seeds)]  # fmt: skip
    return Grid(NOTEBOOK, specs, splits, min(SEED003_EPOCH, cfg.train.epochs))


def describe_plan(plan: Grid) -> str:
    """The split sizes (the same under every strategy) and the number of runs."""
    train, _, test = next(iter(plan.splits.values()))
    return (f"train {len(train.ids)} videos, test {len(test.ids)} videos / {len(test.captions)} captions; "
            f"{len(plan.specs)} runs of {plan.epochs} epochs")  # fmt: skip
