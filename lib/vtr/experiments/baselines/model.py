"""Stage 2 of notebook 01: the frozen encoder, and what the sample profile's vtr-tiny learnt in pretraining.

The encoder itself is :func:`vtr.models.encoders.load_encoder`; nothing is trained in notebook 01.
With ``model.pretrained: vtr-tiny`` the checkpoint's held-out still-frame accuracy says what the
model can see before any video is shown: :func:`tiny_pretraining` reads it (building the checkpoint
if needed, :func:`vtr.models.tiny.tiny_metrics`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from vtr.config import Profile

#: The pretraining metrics notebook 01 reports (saved as ``tiny_<key>``).
TINY_KEYS = ("test_caption_top1", "test_caption_top5", "test_appearance_top1", "test_attr_mean")


@dataclass
class TinyPretraining:
    """vtr-tiny's pretraining record: its metrics, checkpoint and training curve."""

    metrics: dict[str, Any]

    @property
    def curve(self) -> pd.DataFrame:
        """One row per epoch: ``epoch``, ``train_loss`` and the held-out accuracies."""
        return pd.DataFrame(self.metrics["curve"])

    def attributes(self) -> pd.DataFrame:
        """Held-out accuracy per attribute (shape, colour, ...) beside the majority-value baseline."""
        names = sorted(k.removeprefix("test_attr_") for k in self.metrics
                       if k.startswith("test_attr_") and k != "test_attr_mean")  # fmt: skip
        return pd.DataFrame(
            {"accuracy": [self.metrics[f"test_attr_{a}"] for a in names],
             "majority baseline": [self.metrics[f"test_chance_attr_{a}"] for a in names]},
            index=names,
        )  # fmt: skip

    def summary(self) -> str:
        """How long pretraining took and where the checkpoint is."""
        m = self.metrics
        return f"pretraining took {m['train_seconds']:.0f} s ({m['epochs']:.0f} epochs), checkpoint {m['checkpoint']}"

    def saved_metrics(self) -> dict[str, float]:
        """The :data:`TINY_KEYS` as ``tiny_<key>``, for the notebook's metrics file."""
        return {f"tiny_{key}": self.metrics[key] for key in TINY_KEYS}


def tiny_pretraining(profile: Profile) -> TinyPretraining | None:
    """The profile's vtr-tiny record, or None when the profile uses another encoder."""
    if profile.model.pretrained != "vtr-tiny":
        return None
    from vtr.models.tiny import tiny_metrics  # open_clip: imported when needed

    return TinyPretraining(tiny_metrics(profile))
