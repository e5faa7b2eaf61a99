"""Contrastive losses on similarity matrices: symmetric InfoNCE and H-NAC (seed 003).

Inputs are ``(B, B)`` similarity matrices of L2-normalised embeddings, rows = captions,
columns = videos, with the positives on the diagonal (caption i describes video i). Both losses
are symmetric: the mean of the text→video loss (each row a softmax over videos) and the
video→text loss (each column a softmax over captions).

    sim = text_emb @ video_emb.T                       # (B, B) cosine similarities
    loss = info_nce(sim, temperature=0.07)
    loss = hnac(sim, temperature=0.07, decay=5.0, margin=0.1)

The temperature may be a float or a tensor, so it can be learned: :class:`LearnableTemperature`
holds ``log(1 / T)`` like CLIP's ``logit_scale`` and clamps ``1 / T`` at 100.

Seed 003 names H-NAC ("hard-negative-aware contrastive loss: a similarity-based decay function
down-weights hard false negatives") without a formula; the exact one vtr uses is in :func:`hnac`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# CLIP clamps its logit scale at 100 (temperature 0.01) so the learnt temperature cannot collapse.
MAX_LOGIT_SCALE = 100.0


def _check_square(sim: Tensor) -> None:
    if sim.ndim != 2 or sim.shape[0] != sim.shape[1] or sim.shape[0] == 0:
        raise ValueError(
            f"sim must be a non-empty square (B, B) similarity matrix with positives on the diagonal, "
            f"got shape {tuple(sim.shape)}"
        )


def _inverse_temperature(temperature: float | Tensor, like: Tensor) -> Tensor:
    t = torch.as_tensor(temperature, dtype=like.dtype, device=like.device)
    if t.numel() != 1:
        raise ValueError(f"temperature must be a scalar, got shape {tuple(t.shape)}")
    if not bool((t > 0).all()):
        raise ValueError(f"temperature must be positive, got {float(t)}")
    return 1.0 / t.reshape(())


def _symmetric_cross_entropy(logits: Tensor, logits_v2t: Tensor | None = None) -> Tensor:
    """Mean of the row-wise (t2v) and column-wise (v2t) cross-entropies with diagonal targets."""
    targets = torch.arange(logits.shape[0], device=logits.device)
    t2v = F.cross_entropy(logits, targets)
    v2t = F.cross_entropy((logits if logits_v2t is None else logits_v2t).T, targets)
    return (t2v + v2t) / 2


def info_nce(sim: Tensor, temperature: float | Tensor = 0.07) -> Tensor:
    """Symmetric InfoNCE: ``(CE_rows(sim / T) + CE_cols(sim / T)) / 2`` with the diagonal as targets.

    Equals :func:`vtr.metrics.info_nce_loss` on the same matrix (that one is numpy, for reporting).
    ``temperature`` may be a tensor with ``requires_grad`` (a learnable temperature).
    """
    _check_square(sim)
    return _symmetric_cross_entropy(sim * _inverse_temperature(temperature, sim))


def hnac_log_weights(sim: Tensor, decay: float, margin: float) -> tuple[Tensor, Tensor]:
    """``log w`` of every pair for the t2v (rows) and v2t (columns) directions; 0 on the diagonal.

    t2v: ``log w_ij = -decay * relu(s_ij - s_ii + margin)`` (caption i, negative video j);
    v2t: ``log w_ij = -decay * relu(s_ij - s_jj + margin)`` (video j, negative caption i).
    """
    positive = torch.diagonal(sim)
    off_diagonal = ~torch.eye(sim.shape[0], dtype=torch.bool, device=sim.device)
    t2v = -decay * F.relu(sim - positive[:, None] + margin) * off_diagonal
    v2t = -decay * F.relu(sim - positive[None, :] + margin) * off_diagonal
    return t2v, v2t


def hnac(
    sim: Tensor,
    temperature: float | Tensor = 0.07,
    decay: float = 5.0,
    margin: float = 0.1,
) -> Tensor:
    r"""H-NAC, the hard-negative-aware contrastive loss: InfoNCE whose negatives are down-weighted as
    their similarity approaches (or passes) the positive's, since those are the likeliest false
    negatives (another clip that the caption also describes).

    With ``s_ij`` the similarity of caption i and video j, ``T`` the temperature, ``λ = decay`` and
    ``m = margin``, the text→video loss of caption i is

        L_i^{t2v} = -log [ exp(s_ii/T) / ( exp(s_ii/T) + Σ_{j≠i} w_ij exp(s_ij/T) ) ],
        w_ij      = exp( -λ · max(0, s_ij - s_ii + m) ),

    the video→text loss of video j is the same over column j with ``w'_ij = exp(-λ·max(0, s_ij - s_jj + m))``
    (negatives are the other captions, compared with video j's own caption ``s_jj``), and

        H-NAC = ( mean_i L_i^{t2v} + mean_j L_j^{v2t} ) / 2.

    A negative scoring below ``s_ii - m`` keeps its full weight (w = 1, exactly InfoNCE); above
    that its weight decays exponentially with the excess similarity, e.g. ``λ = 5``: a negative
    level with the positive counts ``exp(-5·0.1) ≈ 0.61`` of a normal one, one 0.2 above it 0.22.
    The weights are part of the function (not detached), so the gradient is the true gradient
    (``torch.autograd.gradcheck`` passes); with ``λ < 1/T`` a negative's logit still decreases
    along the gradient, only less steeply than under InfoNCE. ``decay = 0`` gives ``w = 1``
    and the loss equals :func:`info_nce` exactly (the same operations on the same logits).

    Computed stably as a cross-entropy over the logits ``s_ij/T + log w_ij``.
    """
    _check_square(sim)
    if decay < 0:
        raise ValueError(f"decay must be >= 0, got {decay}")
    logits = sim * _inverse_temperature(temperature, sim)
    log_w_t2v, log_w_v2t = hnac_log_weights(sim, decay, margin)
    return _symmetric_cross_entropy(logits + log_w_t2v, logits + log_w_v2t)


LossFn = Callable[..., Tensor]
LOSSES: dict[str, LossFn] = {"infonce": info_nce, "hnac": hnac}


def get_loss(name: str) -> LossFn:
    """``"infonce"`` or ``"hnac"`` (case and punctuation-insensitive: ``"InfoNCE"``, ``"H-NAC"``)."""
    key = name.lower().replace("-", "").replace("_", "")
    if key not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; known: {sorted(LOSSES)}")
    return LOSSES[key]


class LearnableTemperature(nn.Module):
    """A learnable temperature stored as ``log(1/T)`` (CLIP's ``logit_scale``); ``1/T`` is clamped at 100.

    Calling it returns the temperature tensor to pass to :func:`info_nce` / :func:`hnac`. Its
    parameter is a 0-d tensor, so :func:`vtr.train.param_groups` exempts it from weight decay.
    """

    def __init__(self, initial: float = 0.07) -> None:
        super().__init__()
        if initial <= 0:
            raise ValueError(f"initial temperature must be positive, got {initial}")
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / initial)))

    def forward(self) -> Tensor:
        return 1.0 / self.logit_scale.exp().clamp(max=MAX_LOGIT_SCALE)
