"""vtr.experiments.hnerv.evaluate: scores per patch and frame, fair held-out frames, the four
checks, text search, the projection."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vtr.experiments.hnerv.data import PatchData
from vtr.experiments.hnerv.evaluate import (
    embedding_checks,
    evaluate,
    per_patch_table,
    project_embeddings,
    text_search,
)
from vtr.experiments.hnerv.splits import HELD_OUT, split_frames
from vtr.metrics import psnr


def test_embedding_checks_on_perfect_and_on_collapsed_predictions(unit) -> None:
    rng = np.random.default_rng(0)
    targets = unit(rng.normal(size=(10, 4, 16)))
    split = split_frames(10, "6_6_10")
    perfect = embedding_checks(targets, targets, split)
    assert perfect["matched_cosine"] == pytest.approx(1.0)
    assert perfect["variance_ratio"] == pytest.approx(1.0)
    assert perfect["position_R@1"] == pytest.approx(100.0)
    assert perfect["cosine_gap"] == pytest.approx(0.0, abs=1e-6)
    assert all(v for k, v in perfect.items() if k.startswith("pass_"))
    collapsed = np.broadcast_to(unit(targets.mean(axis=(0, 1))), targets.shape)
    bad = embedding_checks(collapsed, targets, split)
    assert bad["variance_ratio"] == pytest.approx(0.0, abs=1e-9)
    assert bad["matched_cosine"] == pytest.approx(bad["mismatched_cosine"], abs=0.02)
    assert not bad["pass_diversity"] and not bad["pass_similarity"]


def test_text_search_with_perfect_predictions_finds_the_ground_truth_top_k(unit, fake_encoder) -> None:
    rng = np.random.default_rng(1)
    targets = unit(rng.normal(size=(6, 2, 6)))
    split = split_frames(6, "1_1_2")
    result = text_search(fake_encoder, ["q0", "q1"], targets, targets, split, k=3)
    assert (result.summary["overlap@3"] == 1.0).all()
    # 12 patches: the ground truth's top 5% is its single best patch, one of the three found
    assert result.summary["precision@3"].tolist() == pytest.approx([1 / 3, 1 / 3])
    top = result.hits[(result.hits["query"] == "q1") & (result.hits.source == "predicted")]
    flat = targets.reshape(-1, 6)[:, 1].argsort()[::-1][:3]
    assert (top.frame * 2 + top.patch).tolist() == flat.tolist()
    shuffled = text_search(fake_encoder, ["q0"], -targets, targets, split, k=3)
    assert shuffled.summary["precision@3"].iloc[0] == 0.0


def test_projection_returns_two_sources_per_patch(unit) -> None:
    rng = np.random.default_rng(2)
    targets = unit(rng.normal(size=(8, 2, 5)))
    points = project_embeddings(targets, targets, split_frames(8, "6_6_10"), n_points=10, seed=0)
    assert len(points) == 20 and set(points.source) == {"predicted", "ground truth"}
    assert np.isfinite(points[["x", "y"]].to_numpy()).all()


def test_evaluation_scores_every_patch_and_frame(tiny_study: tuple) -> None:
    _, data, runs = tiny_study
    ev = runs[0].evaluation
    assert len(ev.patches) == 20 and len(ev.frames) == 10
    assert ev.reconstructions.shape == data.frames.shape and ev.reconstructions.dtype == np.uint8
    assert (ev.frames.group == HELD_OUT).sum() == 4  # frames 6..9
    # a frame's PSNR follows from its reconstruction (to uint8 rounding)
    truth = torch.from_numpy(data.frames[:1]).permute(0, 3, 1, 2).float() / 255
    recon = torch.from_numpy(ev.reconstructions[:1]).permute(0, 3, 1, 2).float() / 255
    assert float(psnr(recon, truth)[0]) == pytest.approx(ev.frames.psnr.iloc[0], abs=0.05)
    np.testing.assert_allclose(np.linalg.norm(ev.embeddings, axis=-1), 1.0, rtol=1e-5)
    summary = ev.summary()
    assert summary["gap_psnr"] == pytest.approx(summary["train_psnr"] - summary["heldout_psnr"])
    no_heldout = runs[2].evaluation.summary()
    assert np.isnan(no_heldout["heldout_psnr"])


def test_per_patch_table_is_the_mean_by_grid_position(tiny_study: tuple) -> None:
    _, _, runs = tiny_study
    ev = runs[0].evaluation
    table = per_patch_table(ev)
    assert list(table.columns) == [0, 1] and set(table.index.get_level_values("group")) == {"train", HELD_OUT}
    held_col1 = ev.patches[(ev.patches.group == HELD_OUT) & (ev.patches.col == 1)].psnr.mean()
    assert table.loc[(HELD_OUT, 0), 1] == pytest.approx(held_col1)


def test_held_out_frames_are_decoded_without_reading_their_pixels(tiny_study: tuple) -> None:
    """Scrambling the held-out frames' pixels changes nothing for the content model's evaluation
    (their embeddings come from the training frames) and everything for the autoencoder reading."""
    _, data, runs = tiny_study
    content = runs[3]
    held = split_frames(data.n_frames, content.spec.split).held_out
    frames = data.frames.copy()
    frames[held] = 255 - frames[held]
    scrambled = PatchData(frames, data.targets, data.grid, "scrambled", "scrambled")
    fair = evaluate(content.model, scrambled, content.spec.split)
    np.testing.assert_array_equal(fair.reconstructions, content.evaluation.reconstructions)
    np.testing.assert_allclose(fair.embeddings, content.evaluation.embeddings, atol=1e-6)
    own = evaluate(content.model, scrambled, content.spec.split, held_out="own pixels")
    assert not np.array_equal(own.reconstructions[held], content.evaluation.reconstructions[held])
    np.testing.assert_array_equal(own.reconstructions[:6], content.evaluation.reconstructions[:6])
    row = content.row()
    assert row["heldout_psnr_own_pixels"] == pytest.approx(content.own_pixels.summary()["heldout_psnr"])
    assert "heldout_psnr_own_pixels" not in runs[0].row()
