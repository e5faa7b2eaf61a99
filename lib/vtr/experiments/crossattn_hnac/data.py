"""Stage 1 of notebook 02: the frozen features of the three splits, and the runs the grid trains."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

from vtr.experiments.finetune_grids import Grid
from vtr.finetune import FeatureSplit, RunSpec, build_features

if TYPE_CHECKING:
    from vtr.config import Profile
    from vtr.models.encoders import Encoder

NOTEBOOK = "02_cross_attention_hnac"


def plan(cfg: Profile, encoder: Encoder) -> Grid:
    """Every scorer x loss x seed on ``video.strategy``, validated on the val split (early stopping)."""
    ft, strategy = cfg.finetune, cfg.video.strategy
    train, val, test = (build_features(cfg, encoder, name, strategy) for name in ("train", "val", "test"))
    specs = [RunSpec(s, loss, strategy, seed) for s, loss, seed in itertools.product(ft.scorers, ft.losses, ft.seeds)]
    return Grid(NOTEBOOK, specs, {strategy: (train, val, test)}, None)


def describe_split(split: FeatureSplit) -> str:
    """``"test: 150 videos, 300 captions, 0 unreadable"``."""
    return f"{split.name}: {len(split.ids)} videos, {len(split.captions)} captions, {len(split.errors)} unreadable"
