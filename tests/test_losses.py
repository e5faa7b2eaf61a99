"""vtr.losses: InfoNCE against vtr.metrics and a hand computation, H-NAC against its formula."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vtr.losses import (
    LOSSES,
    contrastive_loss,
    create_loss,
    get_loss,
    hard_negative_info_nce,
    hard_negative_mask,
    hnac,
    info_nce,
    list_losses,
    loss_options,
    register_loss,
)
from vtr.metrics import info_nce_loss


def _random_sim(n: int = 6, seed: int = 0, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    text = torch.nn.functional.normalize(torch.randn(n, 8, generator=gen, dtype=dtype), dim=-1)
    video = torch.nn.functional.normalize(torch.randn(n, 8, generator=gen, dtype=dtype), dim=-1)
    return text @ video.T


def _hnac_reference(sim: np.ndarray, temperature: float, decay: float, margin: float) -> float:
    """The docstring's formula, written out with loops."""
    n = len(sim)
    t2v, v2t = [], []
    for i in range(n):
        denominator = sum(
            (1.0 if j == i else math.exp(-decay * max(0.0, sim[i, j] - sim[i, i] + margin)))
            * math.exp(sim[i, j] / temperature)
            for j in range(n)
        )
        t2v.append(-math.log(math.exp(sim[i, i] / temperature) / denominator))
    for j in range(n):
        denominator = sum(
            (1.0 if i == j else math.exp(-decay * max(0.0, sim[i, j] - sim[j, j] + margin)))
            * math.exp(sim[i, j] / temperature)
            for i in range(n)
        )
        v2t.append(-math.log(math.exp(sim[j, j] / temperature) / denominator))
    return (np.mean(t2v) + np.mean(v2t)) / 2


def test_info_nce_by_hand() -> None:
    sim = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    # each of the four cross-entropies is -log(e / (e + 1)) = log(1 + e^-1)
    assert float(info_nce(sim, 1.0)) == pytest.approx(math.log(1 + math.exp(-1)), abs=1e-12)


def test_info_nce_matches_metrics_implementation() -> None:
    sim = _random_sim(7)
    for temperature in (0.07, 0.5):
        assert float(info_nce(sim, temperature)) == pytest.approx(
            info_nce_loss(sim.numpy(), temperature), rel=1e-10
        )


def test_info_nce_is_symmetric_in_directions() -> None:
    sim = _random_sim(5, seed=3)
    # transposing swaps t2v and v2t, and the loss is their mean, so it is unchanged
    assert float(info_nce(sim.T)) == pytest.approx(float(info_nce(sim)), rel=1e-12)


def test_hnac_at_zero_decay_is_info_nce_exactly() -> None:
    sim = _random_sim(9, seed=1, dtype=torch.float32)
    assert torch.equal(hnac(sim, 0.07, decay=0.0, margin=0.3), info_nce(sim, 0.07))


def test_hnac_matches_formula() -> None:
    sim = _random_sim(6, seed=2)
    for decay, margin in ((5.0, 0.1), (2.0, 0.5), (10.0, -0.1)):
        expected = _hnac_reference(sim.numpy(), 0.1, decay, margin)
        assert float(hnac(sim, 0.1, decay=decay, margin=margin)) == pytest.approx(expected, rel=1e-10)


def test_hnac_never_exceeds_info_nce_and_ignores_easy_negatives() -> None:
    sim = _random_sim(8, seed=4)
    assert float(hnac(sim, 0.07, decay=5.0)) < float(info_nce(sim, 0.07))
    easy = torch.full((4, 4), -0.5, dtype=torch.float64).fill_diagonal_(0.9)
    assert float(hnac(easy, 0.07, decay=5.0, margin=0.1)) == pytest.approx(float(info_nce(easy, 0.07)))


def test_hnac_pushes_a_false_negative_less_than_info_nce() -> None:
    # video 1 is a near-duplicate of video 0: caption 0 scores it almost as high as its own video
    sim = torch.tensor([[0.8, 0.78, 0.1], [0.75, 0.8, 0.0], [0.1, 0.0, 0.9]], dtype=torch.float64)
    grads = {}
    for name, fn in (("infonce", info_nce), ("hnac", lambda s, t: hnac(s, t, decay=5.0))):
        s = sim.clone().requires_grad_(True)
        fn(s, 0.07).backward()
        grads[name] = s.grad[0, 1].item()
    assert grads["infonce"] > 0 and grads["hnac"] > 0  # descent still lowers the negative ...
    assert grads["hnac"] < 0.8 * grads["infonce"]  # ... but with a clearly smaller push


def test_hnac_gradcheck() -> None:
    sim = _random_sim(5, seed=5).requires_grad_(True)
    temperature = torch.tensor(0.2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda s, t: hnac(s, t, decay=3.0, margin=0.2), (sim, temperature))
    assert torch.autograd.gradcheck(lambda s: info_nce(s, 0.1), (sim,))


def test_a_tensor_temperature_gets_gradient() -> None:
    logit_scale = torch.nn.Parameter(torch.tensor(math.log(1 / 0.07)))  # CLIP's learnt temperature
    hnac(_random_sim(4).float(), 1.0 / logit_scale.exp()).backward()
    assert logit_scale.grad is not None and torch.isfinite(logit_scale.grad) and logit_scale.grad != 0


def test_losses_are_registered_with_their_options() -> None:
    assert list_losses() == ["infonce", "hnac"]
    assert loss_options("infonce") == () and loss_options("H-NAC") == ("decay", "margin")
    sim = _random_sim(5).float()
    # create_loss drops the options a loss does not take, so callers pass everything they hold
    assert torch.equal(create_loss("infonce", 0.1, decay=2.0, margin=0.3)(sim), info_nce(sim, 0.1))
    assert torch.equal(
        create_loss("hnac", 0.1, decay=2.0, margin=0.3)(sim), hnac(sim, 0.1, decay=2.0, margin=0.3)
    )


def test_a_registered_loss_is_one_function() -> None:
    @register_loss("plain", options=("scale",))
    def plain(sim: torch.Tensor, temperature: float = 0.07, scale: float = 1.0) -> torch.Tensor:
        return scale * info_nce(sim, temperature)

    try:
        sim = _random_sim(4).float()
        assert "plain" in list_losses()
        assert torch.equal(create_loss("plain", 0.1, scale=2.0)(sim), 2.0 * info_nce(sim, 0.1))
        with pytest.raises(ValueError, match="already registered"):
            register_loss("plain")(plain)
    finally:
        LOSSES.unregister("plain")


def test_bad_inputs_raise() -> None:
    with pytest.raises(ValueError, match="square"):
        info_nce(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="positive"):
        hnac(torch.eye(3), temperature=0.0)
    with pytest.raises(ValueError, match="decay"):
        hnac(torch.eye(3), decay=-1.0)
    with pytest.raises(ValueError, match="unknown loss"):
        get_loss("triplet")
    assert get_loss("H-NAC") is hnac and get_loss("InfoNCE") is info_nce


def test_hard_negative_loss_by_hand() -> None:
    sim = torch.tensor([[0.9, 0.5, 0.1], [0.2, 0.8, 0.6], [0.3, 0.7, 0.4]])
    # k=1: row hardest: (0,1) (1,2) (2,1); column hardest: (2,0) (2,1) (1,2). Kept off-diagonal:
    keep = {(0, 1), (1, 2), (2, 1), (2, 0)}
    mask = hard_negative_mask(sim, 1)
    assert {(i, j) for i in range(3) for j in range(3) if mask[i, j] and i != j} == keep
    t = 0.1
    s = sim.numpy() / t

    def ce(logits: list[float], target: float) -> float:
        return float(np.log(np.sum(np.exp(logits))) - target)

    rows = [ce([s[0, 0], s[0, 1]], s[0, 0]), ce([s[1, 1], s[1, 2]], s[1, 1]),
            ce([s[2, 2], s[2, 0], s[2, 1]], s[2, 2])]  # fmt: skip
    cols = [ce([s[0, 0], s[2, 0]], s[0, 0]), ce([s[1, 1], s[0, 1], s[2, 1]], s[1, 1]),
            ce([s[2, 2], s[1, 2]], s[2, 2])]  # fmt: skip
    expected = (np.mean(rows) + np.mean(cols)) / 2
    assert float(hard_negative_info_nce(sim, t, k=1)) == pytest.approx(expected, rel=1e-5)


def test_hard_negative_loss_limits() -> None:
    sim = torch.nn.functional.normalize(torch.randn(6, 4, generator=torch.Generator().manual_seed(0)), dim=1)
    sim = sim @ sim.T
    full = info_nce(sim, 0.07)
    assert torch.equal(hard_negative_info_nce(sim, 0.07, k=0), full)
    assert torch.equal(hard_negative_info_nce(sim, 0.07, k=5), full)
    fewer = hard_negative_info_nce(sim, 0.07, k=2)
    assert float(fewer) < float(full)  # fewer negatives in every softmax: a smaller loss
    mask = hard_negative_mask(sim, 2)
    assert (mask.sum(dim=1) >= 3).all() and mask.diagonal().all()


def test_contrastive_loss_dispatches_through_the_registry() -> None:
    text = torch.nn.functional.normalize(
        torch.randn(5, 4, generator=torch.Generator().manual_seed(0)), dim=-1
    )
    video = torch.nn.functional.normalize(
        torch.randn(5, 4, generator=torch.Generator().manual_seed(1)), dim=-1
    )
    sim = text @ video.T
    # by name or by function; an option the loss does not take is ignored, as create_loss does
    assert torch.equal(contrastive_loss(text, video, info_nce, 0.1, decay=2.0), info_nce(sim, 0.1))
    torch.testing.assert_close(
        contrastive_loss(text, video, "hnac", 0.1, decay=2.0), hnac(sim, 0.1, decay=2.0)
    )
    with pytest.raises(ValueError, match="decay"):
        contrastive_loss(text, video, "hnac", 0.1, decay=-1.0)

    @register_loss("matrix-only")
    def matrix_only(sim: torch.Tensor, temperature: float = 0.07) -> torch.Tensor:
        return info_nce(sim, temperature)

    try:
        with pytest.raises(ValueError, match="registered with rows"):
            contrastive_loss(text, video, "matrix-only")
        with pytest.raises(ValueError, match="not a registered loss"):
            contrastive_loss(text, video, lambda sim, t: sim.sum())
    finally:
        LOSSES.unregister("matrix-only")
