"""Stage 2 of notebook 03: the fusion grid trained (or reloaded) through :func:`vtr.train.fit`.

The model is :class:`vtr.models.crossmodal.FusionScorer` (``finetune.fusion_layers`` layers over
``[video tokens | text tokens]`` with a matching head), built by :func:`vtr.finetune.build_model`.
Checkpoints go to ``<data_dir>/runs/03_fusion_sampling/<run key>/``; ``vtr train`` trains the same
runs on several GPUs first (:mod:`vtr.experiments.finetune_grids`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vtr.experiments.finetune_grids import Grid, train_grid
from vtr.finetune import GridResult

if TYPE_CHECKING:
    from vtr.config import Profile
    from vtr.models.encoders import Encoder


def run_grid(cfg: Profile, plan: Grid, encoder: Encoder, *, progress: bool = True) -> GridResult:
    """Every run of ``plan`` trained for ``plan.epochs`` epochs and tested on the held-out clips."""
    return train_grid(cfg, plan, encoder, progress=progress)
