"""vtr.experiments.hnerv.splits: HNeRV's a_b_c rule, held-out frames, malformed splits."""

from __future__ import annotations

import numpy as np
import pytest

from vtr.experiments.hnerv.splits import HELD_OUT, TRAIN, split_frames, split_table


def _hnerv_reference_split(n: int, a: int, b: int, c: int) -> tuple[list[int], list[int]]:
    """HNeRV's data_split (hnerv_utils.py), restated: position < a trains, position >= b validates."""
    train, val = [], []
    for i in range(n):
        if i % c < a:
            train.append(i)
        elif i % c >= b:
            val.append(i)
    return train, val


@pytest.mark.parametrize("split", ["9_10_10", "6_6_10", "8_8_10", "18_19_20", "1_1_1"])
def test_split_frames_matches_hnervs_rule_and_partitions_the_frames(split: str) -> None:
    a, b, c = map(int, split.split("_"))
    s = split_frames(132, split)
    train, val = _hnerv_reference_split(132, a, b, c)
    assert s.train.tolist() == train and s.val.tolist() == val
    together = np.sort(np.concatenate([s.train, s.skipped, s.val]))
    assert together.tolist() == list(range(132))
    assert set(s.held_out) == set(range(132)) - set(train)


def test_split_9_10_10_has_no_validation_but_holds_out_every_tenth_frame() -> None:
    s = split_frames(30, "9_10_10")
    assert s.val.size == 0
    assert s.held_out.tolist() == [9, 19, 29]
    groups = s.group_of(30)
    assert groups[9] == HELD_OUT and groups[8] == TRAIN


@pytest.mark.parametrize("bad", ["6_10", "a_b_c", "7_6_10", "0_5_10"])
def test_split_frames_rejects_malformed_splits(bad: str) -> None:
    with pytest.raises(ValueError, match="split"):
        split_frames(20, bad)


def test_split_table_counts_every_frame_once() -> None:
    table = split_table(132, ["6_6_10", "9_10_10"]).set_index("split")
    assert (table.train + table.skipped + table.val == 132).all()
    assert table.loc["9_10_10", "held-out"] == table.loc["9_10_10", "skipped"] == 13
    assert table.loc["6_6_10", "first held-out frames"].startswith("6, 7, 8, 9, 16")
