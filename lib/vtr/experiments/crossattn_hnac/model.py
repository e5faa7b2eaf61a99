"""Stage 2 of notebook 02: the two starting points every trained scorer is measured against.

Frozen mean pooling is order blind: the baseline of every temporal gain. The untrained dual scorer
(every new layer a zero residual) is where training starts; with the ``trend`` head that is
vtr-tiny's pretrained clip head. The scorers themselves are :mod:`vtr.models.crossmodal`'s, built by
:func:`vtr.finetune.build_model`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

from vtr.finetune import Evaluation, FeatureSplit, build_model, evaluate, mean_pooling_baseline

if TYPE_CHECKING:
    from vtr.config import Profile
    from vtr.models.encoders import Encoder

#: The metrics shown and saved for the starting points (pair accuracy added where there are hard pairs).
KEYS = ("t2v_R@1", "t2v_R@5", "t2v_R@10", "t2v_MedR", "v2t_R@1", "alignment_loss", "cosine_gap")
PAIR_KEYS = ("pair_acc", "pair_acc_lo", "pair_acc_hi")


@dataclass
class StartingPoints:
    """Frozen mean pooling and the untrained dual scorer, scored on the test split."""

    baseline: Evaluation
    untrained: Evaluation
    temporal: str  # the untrained scorer's video head (finetune.temporal)

    @property
    def keys(self) -> list[str]:
        return [*KEYS, *(k for k in PAIR_KEYS if k in self.baseline.metrics)]

    def table(self) -> pd.DataFrame:
        """One column per starting point, one row per :attr:`keys` metric."""
        return pd.DataFrame({"frozen mean pooling": {k: self.baseline.metrics[k] for k in self.keys},
                             f"untrained dual ({self.temporal} head)": {k: self.untrained.metrics[k]
                                                                        for k in self.keys}})  # fmt: skip


def starting_points(cfg: Profile, encoder: Encoder, test: FeatureSplit) -> StartingPoints:
    """:func:`vtr.finetune.mean_pooling_baseline` and the untrained dual scorer on ``test``."""
    baseline = mean_pooling_baseline(cfg, encoder, test)
    untrained = evaluate(build_model(cfg, "dual", encoder.output_dim, encoder), test, cfg.finetune, seed=cfg.seed)
    return StartingPoints(baseline, untrained, cfg.finetune.temporal)
