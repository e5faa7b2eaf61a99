"""Stage 1 of the HNeRV study: HNeRV's ``a_b_c`` frame splits.

HNeRV's ``--data_split a_b_c`` (``data_split`` in its ``hnerv_utils.py``): frame ``i`` is at position
``p = i mod c`` of its block of ``c`` frames; ``p < a`` trains, ``p >= b`` is HNeRV's validation set,
and ``a <= p < b`` is used for neither. So ``6_6_10`` trains on 60% and validates on 40%, ``8_8_10``
trains on 80% and validates on 20%, and ``9_10_10`` trains on 90% and has *no* validation frames
(every 10th frame is skipped; seed 000's table shows "-" there). HNeRV's own evaluation counts the
skipped frames as "seen"; here every frame that was not trained on is *held out*, so ``9_10_10``
reports its skipped 10% as held-out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

TRAIN, HELD_OUT = "train", "held-out"


@dataclass(frozen=True)
class FrameSplit:
    """Frame indices of HNeRV's ``a_b_c`` split; ``held_out`` is every frame not trained on."""

    name: str
    train: np.ndarray
    skipped: np.ndarray  # HNeRV uses these for neither training nor validation
    val: np.ndarray

    @property
    def held_out(self) -> np.ndarray:
        return np.sort(np.concatenate([self.skipped, self.val]))

    def group_of(self, n_frames: int) -> np.ndarray:
        """Per frame: ``"train"`` or ``"held-out"``."""
        groups = np.full(n_frames, HELD_OUT, dtype=object)
        groups[self.train] = TRAIN
        return groups


def split_frames(n_frames: int, split: str) -> FrameSplit:
    """HNeRV's ``--data_split a_b_c`` over ``n_frames`` frames (see the module docstring)."""
    try:
        a, b, c = (int(v) for v in split.split("_"))
    except ValueError:
        raise ValueError(f"split {split!r} must be HNeRV's 'a_b_c' with integers, e.g. '6_6_10'") from None
    if not 0 < a <= b <= c:
        raise ValueError(f"split {split!r} needs 0 < a <= b <= c")
    if n_frames < 1:
        raise ValueError(f"n_frames must be >= 1, got {n_frames}")
    position = np.arange(n_frames) % c
    idx = np.arange(n_frames)
    return FrameSplit(split, idx[position < a], idx[(position >= a) & (position < b)], idx[position >= b])


def split_table(n_frames: int, splits: Sequence[str]) -> pd.DataFrame:
    """Frame counts per split: trained, skipped (HNeRV's unused), validated, held out (= not trained)."""
    rows = []
    for name in splits:
        s = split_frames(n_frames, name)
        rows.append(
            {
                "split": name,
                "train": len(s.train),
                "skipped": len(s.skipped),
                "val": len(s.val),
                "held-out": len(s.held_out),
                "first held-out frames": ", ".join(map(str, s.held_out[:6])),
            }
        )
    return pd.DataFrame(rows)
