"""Contrastive losses on similarity matrices: symmetric InfoNCE and H-NAC (seed 003).

Inputs are ``(B, B)`` similarity matrices of L2-normalised embeddings, rows = captions,
columns = videos, with the positives on the diagonal (caption i describes video i). Both losses
are symmetric: the mean of the text→video loss (each row a softmax over videos) and the
video→text loss (each column a softmax over captions).

    sim = text_emb @ video_emb.T                       # (B, B) cosine similarities
    loss = info_nce(sim, temperature=0.07)
    loss = hnac(sim, temperature=0.07, decay=5.0, margin=0.1)

With paired embeddings instead of a matrix, :func:`contrastive_loss` computes the same losses and,
under ``torch.distributed`` (e.g. ``torchrun``, see :mod:`vtr.train`), gathers every rank's
features with gradients so each rank's captions compete against the whole global batch:

    loss = contrastive_loss(text_emb, video_emb, "hnac", temperature=0.07)

The temperature may be a float or a tensor (a learned one, e.g. ``1 / logit_scale.exp()`` as in CLIP).
Losses are registered by name (:func:`register_loss`, :func:`list_losses`, :func:`create_loss`).

Seed 003 names H-NAC ("hard-negative-aware contrastive loss: a similarity-based decay function
down-weights hard false negatives") without a formula; the exact one vtr uses is in :func:`hnac`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor

from vtr.registry import Entry, Registry

# Hard-negative masking: a similarity this low drops out of a softmax over cosine similarities / T.
_MASKED_SIMILARITY = -1e4


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


def _cross_entropies(t2v: Tensor, v2t: Tensor, offset: int = 0) -> Tensor:
    """Mean of the t2v and v2t cross-entropies: row i of ``t2v`` is caption i against every video,
    row i of ``v2t`` is video i against every caption, and the positive of row i is column ``offset + i``
    (0 on one process; this rank's first row in the gathered batch under torch.distributed)."""
    targets = torch.arange(t2v.shape[0], device=t2v.device) + offset
    return (F.cross_entropy(t2v, targets) + F.cross_entropy(v2t, targets)) / 2


def _decay_log_weights(sim: Tensor, decay: float, margin: float, offset: int = 0) -> Tensor:
    """H-NAC's ``-decay * relu(s_ij - s_i,pos + margin)`` for each row of queries, 0 at the positive."""
    rows = torch.arange(sim.shape[0], device=sim.device)
    positive = sim[rows, rows + offset]
    negative = torch.ones_like(sim, dtype=torch.bool)
    negative[rows, rows + offset] = False
    return -decay * F.relu(sim - positive[:, None] + margin) * negative


def _info_nce_rows(t2v: Tensor, v2t: Tensor, offset: int, temperature: float | Tensor) -> Tensor:
    inverse = _inverse_temperature(temperature, t2v)
    return _cross_entropies(t2v * inverse, v2t * inverse, offset)


def _hnac_rows(
    t2v: Tensor,
    v2t: Tensor,
    offset: int,
    temperature: float | Tensor,
    decay: float = 5.0,
    margin: float = 0.1,
) -> Tensor:
    if decay < 0:
        raise ValueError(f"decay must be >= 0, got {decay}")
    inverse = _inverse_temperature(temperature, t2v)
    return _cross_entropies(
        t2v * inverse + _decay_log_weights(t2v, decay, margin, offset),
        v2t * inverse + _decay_log_weights(v2t, decay, margin, offset),
        offset,
    )


def info_nce(sim: Tensor, temperature: float | Tensor = 0.07) -> Tensor:
    """Symmetric InfoNCE: ``(CE_rows(sim / T) + CE_cols(sim / T)) / 2`` with the diagonal as targets.

    Equals :func:`vtr.metrics.info_nce_loss` on the same matrix (that one is numpy, for reporting).
    ``temperature`` may be a tensor with ``requires_grad`` (a learnable temperature).
    """
    _check_square(sim)
    return _info_nce_rows(sim, sim.T, 0, temperature)


def hard_negative_mask(sim: Tensor, k: int) -> Tensor:
    """(B, B) bool: the diagonal, plus each row's and each column's ``k`` most similar off-diagonal entries.

    Rows are text→video queries and columns video→text queries, so each query in either direction keeps
    its ``k`` hardest negatives (and may keep a few more that the other direction mined).
    """
    n = sim.shape[0]
    eye = torch.eye(n, dtype=torch.bool, device=sim.device)
    scores = sim.detach().masked_fill(eye, -math.inf)
    k = min(k, n - 1)
    keep = eye.clone()
    keep.scatter_(1, scores.topk(k, dim=1).indices, True)
    keep.scatter_(0, scores.topk(k, dim=0).indices, True)
    return keep


def hard_negative_info_nce(sim: Tensor, temperature: float | Tensor = 0.07, k: int = 8) -> Tensor:
    """Seed 002's loss: symmetric InfoNCE (:func:`info_nce`) over the positive and the hard
    negatives of :func:`hard_negative_mask`; the other in-batch negatives are dropped from the softmax.

    ``k <= 0`` or ``k >= B - 1`` keeps every negative, i.e. plain InfoNCE.
    """
    if 0 < k < sim.shape[0] - 1:
        sim = sim.masked_fill(~hard_negative_mask(sim, k), _MASKED_SIMILARITY)
    return info_nce(sim, temperature)


def hnac_log_weights(sim: Tensor, decay: float, margin: float) -> tuple[Tensor, Tensor]:
    """``log w`` of every pair for the t2v (rows) and v2t (columns) directions; 0 on the diagonal.

    t2v: ``log w_ij = -decay * relu(s_ij - s_ii + margin)`` (caption i, negative video j);
    v2t: ``log w_ij = -decay * relu(s_ij - s_jj + margin)`` (video j, negative caption i).
    """
    return _decay_log_weights(sim, decay, margin), _decay_log_weights(sim.T, decay, margin).T


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
    return _hnac_rows(sim, sim.T, 0, temperature, decay, margin)  # checks decay >= 0


LossFn = Callable[..., Tensor]

#: The losses by name: ``fn(sim, temperature, **options) -> Tensor``; each entry's ``options`` metadata
#: names the keyword options the loss takes beyond the temperature.
LOSSES: Registry[LossFn] = Registry("loss")
LOSSES.add("infonce", info_nce, options=(), rows=_info_nce_rows)
LOSSES.add("hnac", hnac, options=("decay", "margin"), rows=_hnac_rows)


def register_loss(
    name: str,
    *,
    options: tuple[str, ...] = (),
    rows: Callable[..., Tensor] | None = None,
    replace: bool = False,
) -> Callable[[LossFn], LossFn]:
    """Register ``fn(sim, temperature, **options)`` as the loss ``name`` (a decorator).

    Args:
        name: the name profiles use (``finetune.losses``).
        options: its keyword options beyond the temperature (H-NAC: ``("decay", "margin")``).
        rows: ``rows(t2v, v2t, offset, temperature, **options)``, the loss of rows of queries whose
            positive is column ``offset + i``; only :func:`contrastive_loss` (which needs it across
            processes) requires it.
        replace: allow re-registering a taken name.
    """
    return LOSSES.register(name, replace=replace, options=tuple(options), rows=rows)


def list_losses() -> list[str]:
    """The registered loss names (what ``finetune.losses`` may hold)."""
    return LOSSES.names()


def _canonical_name(name: str) -> str:
    if name in LOSSES:
        return name
    key = name.lower().replace("-", "").replace("_", "")
    if key not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; known: {sorted(LOSSES)}")
    return key


def _entry_of(loss: str | LossFn) -> Entry[LossFn]:
    if isinstance(loss, str):
        return LOSSES.entry(_canonical_name(loss))
    for name in LOSSES:
        if LOSSES.get(name) is loss:
            return LOSSES.entry(name)
    raise ValueError(f"{getattr(loss, '__name__', loss)!r} is not a registered loss; known: {sorted(LOSSES)}")


def get_loss(name: str) -> LossFn:
    """The loss function ``name``: ``"infonce"`` or ``"hnac"`` (case and punctuation-insensitive:
    ``"InfoNCE"``, ``"H-NAC"``)."""
    return LOSSES.get(_canonical_name(name))


def loss_options(name: str) -> tuple[str, ...]:
    """The keyword options loss ``name`` takes beyond the temperature: ``()`` for InfoNCE,
    ``("decay", "margin")`` for H-NAC."""
    return LOSSES.entry(_canonical_name(name)).meta["options"]


def create_loss(
    name: str, temperature: float | Tensor = 0.07, **options: float
) -> Callable[[Tensor], Tensor]:
    """``sim -> loss`` for the loss ``name`` at a fixed temperature and options.

    ``options`` the loss does not take are dropped, so callers can pass every option they hold:
    ``create_loss(name, ft.temperature, decay=ft.hnac_decay, margin=ft.hnac_margin)``.
    """
    fn = get_loss(name)
    taken = {key: value for key, value in options.items() if key in loss_options(name)}
    return lambda sim: fn(sim, temperature, **taken)


# ------------------------------------------------------------------------------- across processes


class _GatherWithGrad(torch.autograd.Function):
    """All ranks' rows concatenated in rank order (``counts`` rows each); the backward pass sums every
    rank's gradient of the gathered tensor and hands each rank the rows it contributed."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, counts: list[int], rank: int) -> Tensor:  # type: ignore[override]
        padded = x.new_zeros((max(counts), *x.shape[1:]))  # all_gather needs equal shapes
        padded[: x.shape[0]] = x
        parts = [torch.empty_like(padded) for _ in counts]
        dist.all_gather(parts, padded)
        ctx.start, ctx.stop = sum(counts[:rank]), sum(counts[: rank + 1])
        return torch.cat([part[:n] for part, n in zip(parts, counts, strict=True)])

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None, None]:  # type: ignore[override]
        grad = grad.contiguous()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad[ctx.start : ctx.stop], None, None


def distributed_world() -> tuple[int, int]:
    """(rank, world size) of the torch.distributed process group; (0, 1) when there is none."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def gather_with_grad(x: Tensor) -> tuple[Tensor, int]:
    """Every rank's rows of ``x`` concatenated in rank order, differentiable, and the index of this
    rank's first row in it; ``(x, 0)`` on a single process. As open_clip's ``gather_with_grad``:
    gradients flow back to the rank that computed each row. Ranks may hold different numbers of rows."""
    rank, world = distributed_world()
    if world == 1:
        return x, 0
    sizes = [torch.zeros(1, dtype=torch.long, device=x.device) for _ in range(world)]
    dist.all_gather(sizes, torch.tensor([x.shape[0]], dtype=torch.long, device=x.device))
    counts = [int(n) for n in sizes]
    return _GatherWithGrad.apply(x.contiguous(), counts, rank), sum(counts[:rank])


def contrastive_loss(
    text: Tensor,
    video: Tensor,
    loss: str | LossFn = "infonce",
    temperature: float | Tensor = 0.07,
    **kwargs: float,
) -> Tensor:
    """:func:`info_nce` or :func:`hnac` of paired (B, D) embeddings: row i of ``text`` describes row i
    of ``video`` and similarities are their dot products (pass L2-normalised embeddings).

    On one process this is ``loss(text @ video.T)``. Under torch.distributed each rank gathers all
    ranks' features with gradients and scores its own captions against every video and its own
    videos against every caption (open_clip's ``gather_with_grad=True, local_loss=True``); the result
    is scaled by ``B_rank * world / B_total`` so that the mean over ranks (what DDP's gradient
    averaging optimises) is exactly the loss of the concatenated batch, and its gradient that batch's
    gradient. ``kwargs`` are the loss's options (H-NAC: ``decay``, ``margin``); others are ignored.
    """
    entry = _entry_of(loss)
    rows = entry.meta.get("rows")
    if rows is None:
        raise ValueError(f"contrastive_loss needs a loss registered with rows=...; {entry.name!r} has none")
    options = {key: value for key, value in kwargs.items() if key in entry.meta["options"]}
    if text.ndim != 2 or text.shape != video.shape or text.shape[0] == 0:
        raise ValueError(
            f"text and video must be non-empty (B, D) with equal shapes, got {tuple(text.shape)} "
            f"and {tuple(video.shape)}"
        )
    all_text, offset = gather_with_grad(text)
    all_video, _ = gather_with_grad(video)
    world = distributed_world()[1]
    t2v = text @ all_video.T
    # one process: the transpose, so the result is bit for bit loss(text @ video.T)
    v2t = video @ all_text.T if world > 1 else t2v.T
    value = rows(t2v, v2t, offset, temperature, **options)
    return value * (text.shape[0] * world / all_text.shape[0]) if world > 1 else value
