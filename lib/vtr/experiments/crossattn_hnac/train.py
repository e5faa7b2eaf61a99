"""Stage 3 of notebook 02: the grid trained (or its finished runs reloaded) through :func:`vtr.train.fit`.

Checkpoints go to ``<data_dir>/runs/02_cross_attention_hnac/<run key>/``; an interrupted run resumes
and a finished one is reloaded. Validation t2v R@1 picks the epoch and stops early. ``vtr train``
trains the same runs on several GPUs first (:mod:`vtr.experiments.finetune_grids`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vtr.experiments.finetune_grids import Grid, train_grid
from vtr.finetune import GridResult

if TYPE_CHECKING:
    from vtr.config import Profile
    from vtr.models.encoders import Encoder


def run_grid(cfg: Profile, plan: Grid, encoder: Encoder, *, progress: bool = True) -> GridResult:
    """Every run of ``plan`` trained and tested: one table row, test ranks and a history per run."""
    return train_grid(cfg, plan, encoder, progress=progress)
