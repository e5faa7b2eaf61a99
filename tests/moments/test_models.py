import itertools

import numpy as np
import pytest
import torch

from vtr.config import TrainConfig
from vtr.moments.features import QueryFeatures, VideoFeatures
from vtr.moments.models import (
    MomentBatch,
    SpanMoments,
    create_moment_model,
    list_moment_models,
    pairwise_giou,
    predict_windows,
    span_to_edges,
    windows_from_scores,
)
from vtr.moments.training import MomentSample, collate, train_moment_model, validation_loss

DIM = 16


def _toy_samples(n: int, seed: int = 0) -> list[MomentSample]:
    """Videos of 12 one-second clips; the query's direction marks the clips of one window."""
    rng = np.random.default_rng(seed)
    samples = []
    for i in range(n):
        query = rng.normal(size=DIM).astype(np.float32)
        query /= np.linalg.norm(query)
        clips = rng.normal(size=(12, DIM)).astype(np.float32)
        start = int(rng.integers(0, 8))
        length = int(rng.integers(2, 5))
        clips[start : start + length] += 2.5 * query
        clips /= np.linalg.norm(clips, axis=1, keepdims=True)
        tokens = torch.from_numpy(np.stack([query, rng.normal(size=DIM).astype(np.float32)]))
        q = QueryFeatures("q", tokens, torch.ones(2, dtype=torch.bool), torch.from_numpy(query))
        video = VideoFeatures(f"v{i}", clips, 1.0, 12.0)
        samples.append(MomentSample(i, video, q, [(float(start), float(min(start + length, 12)))]))
    return samples


def test_registry_lists_the_three_models():
    assert list_moment_models() == ["zero_shot", "temporal", "span"]


@pytest.mark.parametrize("name", ["zero_shot", "temporal", "span"])
def test_forward_shapes_and_masking(name):
    model = create_moment_model(name, dim=DIM, hidden=32, layers=1)
    samples = _toy_samples(3)
    samples[1].video = VideoFeatures("short", samples[1].video.clips[:7], 1.0, 7.0)
    batch = collate(samples)
    assert batch.clips.shape == (3, 12, DIM) and batch.clip_mask[1].sum() == 7
    out = model.eval()(batch)
    assert out["saliency"].shape == (3, 12)
    results = predict_windows(model, batch, 1.0, [12.0, 7.0, 12.0])
    windows, saliency = results[1]
    assert saliency.shape == (7,) and all(0 <= s < e <= 7.0 for s, e, _ in windows)


def test_giou_against_hand_computed_values():
    a = torch.tensor([[0.0, 2.0]])
    b = torch.tensor([[1.0, 3.0], [4.0, 5.0]])
    iou, giou = pairwise_giou(a, b)
    torch.testing.assert_close(iou, torch.tensor([[1 / 3, 0.0]]))
    torch.testing.assert_close(giou, torch.tensor([[1 / 3, 0.0 - (5 - 3) / 5]]))
    torch.testing.assert_close(span_to_edges(torch.tensor([0.5, 0.2])), torch.tensor([0.4, 0.6]))


def test_hungarian_matching_is_the_cheapest_assignment():
    torch.manual_seed(0)
    model = SpanMoments(dim=DIM, hidden=32, layers=1, n_queries=4)
    spans, logits, target = torch.rand(4, 2) * 0.5 + 0.25, torch.randn(4, 2), torch.rand(3, 2) * 0.5 + 0.25
    rows, cols = model.match(spans, logits, target)
    cost_l1, cost_giou, cost_class = model.costs
    _, giou = pairwise_giou(span_to_edges(spans), span_to_edges(target))
    cost = (
        cost_l1 * torch.cdist(spans, target, p=1) - cost_giou * giou - cost_class * logits.softmax(-1)[:, :1]
    )
    best = min(
        sum(float(cost[r, c]) for r, c in zip(perm, range(3), strict=False))
        for perm in itertools.permutations(range(4), 3)
    )
    assert sum(float(cost[r, c]) for r, c in zip(rows, cols, strict=True)) == pytest.approx(best)


def test_windows_from_scores_finds_the_peak_run():
    scores = np.array([0, 0, 1, 1, 1, 0, 0, 0.2, 0, 0], dtype=float)
    windows = windows_from_scores(scores, 2.0, 20.0, top_k=3)
    assert windows[0][:2] == (4.0, 10.0) and windows[0][2] == pytest.approx(1.0)
    assert all(windows[i][2] >= windows[i + 1][2] for i in range(len(windows) - 1))


@pytest.mark.parametrize("name", ["temporal", "span"])
def test_trained_models_learn_the_toy_task_through_fit(name, tmp_path):
    torch.manual_seed(0)
    train, val = _toy_samples(96, seed=1), _toy_samples(32, seed=2)
    model = create_moment_model(name, dim=DIM, hidden=32, layers=1, dropout=0.0)
    before = validation_loss(val)(model)["val_loss"]
    cfg = TrainConfig(epochs=8, batch_size=16, lr_head=3e-3, patience=0, tensorboard=False)
    result = train_moment_model(model, train, cfg, out_dir=tmp_path / name, validate=validation_loss(val),
                                progress=False)  # fmt: skip
    assert (tmp_path / name).is_dir() and result is not None
    after = validation_loss(val)(model)["val_loss"]
    assert after < 0.8 * before
    # the ground-truth window's clips outrank the others
    batch = collate(val)
    saliency = model.eval()(batch)["saliency"]
    inside = saliency[batch.labels.bool()].mean()
    outside = saliency[(~batch.labels.bool()) & batch.clip_mask].mean()
    assert inside > outside


def test_loss_needs_targets():
    model = create_moment_model("temporal", dim=DIM)
    batch = collate(_toy_samples(2))
    with pytest.raises(ValueError, match="labels"):
        model.loss(MomentBatch(batch.clips, batch.clip_mask, batch.tokens, batch.token_mask, batch.pooled))
