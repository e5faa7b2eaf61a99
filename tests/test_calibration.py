"""The calibration comparisons: pair-accuracy gains and category interactions with intervals."""

from __future__ import annotations

import numpy as np
import pytest

from vtr.calibration import category_interaction, pair_accuracy_gain


def test_pair_accuracy_gain_by_hand_and_its_interval() -> None:
    rng = np.random.default_rng(0)
    clusters = np.repeat(np.arange(100), 4)  # 100 pair groups of 4 captions
    chance = rng.random(400) < 0.5
    better = rng.random((2, 400)) < 0.9
    effect = pair_accuracy_gain(chance, better, clusters, n_boot=500)
    assert effect.diff == pytest.approx(100 * (better.mean() - chance.mean()))
    assert effect.n_seeds == 2 and effect.n_queries == 400
    assert effect.excludes_zero and effect.low < effect.diff < effect.high
    same = pair_accuracy_gain(chance, chance, clusters, n_boot=200)
    assert same.diff == 0 and not same.excludes_zero and same.p_value == 1.0


def test_pair_accuracy_gain_rejects_unpaired_inputs() -> None:
    with pytest.raises(ValueError, match="same captions"):
        pair_accuracy_gain(np.ones(4, bool), np.ones(5, bool))
    with pytest.raises(ValueError, match="numbers of seeds"):
        pair_accuracy_gain(np.ones((2, 4), bool), np.ones((3, 4), bool))


def test_category_interaction_separates_a_loss_confined_to_one_group() -> None:
    categories = np.array(["horizontal"] * 300 + ["static"] * 100)
    a = np.ones((1, 400), dtype=int)  # every query at rank 1
    b = a.copy()
    b[0, :150] = 2  # b loses half of the motion queries, none of the static ones
    effect, parts = category_interaction(a, b, categories, ["horizontal"], n_boot=500)
    assert parts == {"in_group": pytest.approx(-50.0), "rest": pytest.approx(0.0)}
    assert effect.diff == pytest.approx(-50.0) and effect.excludes_zero
    b_everywhere = a.copy()
    b_everywhere[0, ::2] = 2  # the same loss in both groups: no interaction
    flat, _ = category_interaction(a, b_everywhere, categories, ["horizontal"], n_boot=500)
    assert flat.diff == pytest.approx(0.0) and not flat.excludes_zero


def test_category_interaction_needs_both_groups() -> None:
    with pytest.raises(ValueError, match="inside and outside"):
        category_interaction(np.ones(3), np.ones(3), ["a", "a", "a"], ["a"])
