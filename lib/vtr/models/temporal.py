"""Temporal pooling heads: (B, T, D) per-frame embeddings -> (B, D) L2-normalised video embeddings.

    head = create_temporal_head("seqtransf", dim=512)     # or "mean"; list_temporal_heads() names them
    video = head(frames, mask)                           # frames (B, T, D), mask (B, T) bool, True = valid

Heads are registered in :data:`HEADS` (a :class:`vtr.registry.Registry`) with
``@register_temporal_head(kind)``.

* ``mean``: the masked mean of the frames, re-normalised (what the frozen baselines use; no parameters).
* ``seqtransf``: CLIP4Clip's sequential transformer (Luo et al. 2021, arXiv:2104.08860): learnt
  positional embeddings, a small transformer over the frame sequence, a residual connection to
  the input frames, then the masked mean. Its output projection starts at zero, so at
  initialisation the head *is* mean pooling and training can only move away from that baseline
  as far as the data supports; this matters when fine-tuning on a few hundred clips.
* ``trend``: mean pooling plus learnt linear maps of the frames' Legendre time moments (the
  slope and the curvature of the frame features over normalised time). A clip and its time
  reversal have the same mean but opposite slopes, so the time signal is in the embedding from
  the first step; vtr-tiny pretrains these maps on motion clips (``vtr.models.tiny``) and
  fine-tuning can start from them (``init_trend_from``).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vtr.registry import Registry

HEADS: Registry = Registry("temporal head")
register_temporal_head = HEADS.register
list_temporal_heads = HEADS.names


def masked_mean(frames: Tensor, mask: Tensor | None) -> Tensor:
    """Mean over T of (B, T, D) ``frames`` counting only the valid (``mask`` True) frames."""
    if mask is None:
        return frames.mean(dim=1)
    weights = mask.to(frames.dtype).unsqueeze(-1)
    return (frames * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)


def _check_inputs(frames: Tensor, mask: Tensor | None, dim: int) -> None:
    if frames.ndim != 3 or frames.shape[-1] != dim:
        raise ValueError(f"frames must be (B, T, {dim}), got {tuple(frames.shape)}")
    if mask is not None:
        if tuple(mask.shape) != tuple(frames.shape[:2]) or mask.dtype != torch.bool:
            raise ValueError(
                f"mask must be bool (B, T) = {tuple(frames.shape[:2])}, got {mask.dtype} {tuple(mask.shape)}"
            )
        empty = ~mask.any(dim=1)
        if bool(empty.any()):
            rows = torch.nonzero(empty).flatten()[:5].tolist()
            raise ValueError(f"every video needs a valid frame; batch rows {rows} have none")


class TemporalHead(nn.Module):
    """Base class: ``forward(frames (B, T, D), mask (B, T) bool | None) -> (B, D)`` L2-normalised."""

    kind: str = ""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def pool(self, frames: Tensor, mask: Tensor | None) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, frames: Tensor, mask: Tensor | None = None) -> Tensor:
        _check_inputs(frames, mask, self.dim)
        return F.normalize(self.pool(frames, mask), dim=-1)


@register_temporal_head("mean")
class MeanPoolHead(TemporalHead):
    """Masked mean pooling: no parameters."""

    kind = "mean"

    def pool(self, frames: Tensor, mask: Tensor | None) -> Tensor:
        return masked_mean(frames, mask)


@register_temporal_head("seqtransf")
class SeqTransfHead(TemporalHead):
    """CLIP4Clip-style ``seqTransf``: frames + positional embeddings -> transformer -> zero-initialised
    projection, added back to the frames (residual) and mean-pooled over the valid frames."""

    kind = "seqtransf"

    def __init__(
        self,
        dim: int,
        layers: int = 4,
        heads: int | None = None,
        max_frames: int = 64,
        dropout: float = 0.1,
        ff_mult: int = 4,
    ) -> None:
        super().__init__(dim)
        heads = heads or max(1, dim // 64)
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by heads {heads}")
        self.max_frames = max_frames
        self.positions = nn.Parameter(torch.zeros(max_frames, dim))
        nn.init.normal_(self.positions, std=0.01)
        layer = nn.TransformerEncoderLayer(
            dim, heads, dim_feedforward=ff_mult * dim, dropout=dropout, batch_first=True, norm_first=True
        )
        # enable_nested_tensor only speeds up inference with padding and warns with norm_first.
        self.transformer = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.out = nn.Linear(dim, dim)
        nn.init.zeros_(self.out.weight)  # identity residual at init: the head starts as mean pooling
        nn.init.zeros_(self.out.bias)

    def pool(self, frames: Tensor, mask: Tensor | None) -> Tensor:
        steps = frames.shape[1]
        if steps > self.max_frames:
            raise ValueError(f"{steps} frames exceed this head's max_frames={self.max_frames}")
        x = frames + self.positions[:steps]
        padding = None if mask is None else ~mask
        x = self.transformer(x, src_key_padding_mask=padding)
        return masked_mean(frames + self.out(x), mask)


def legendre_weights(steps: int, degree: int, device: torch.device | None = None) -> Tensor:
    """(degree, steps) Legendre polynomials P1..P_degree at ``steps`` evenly spaced times in [-1, 1],
    each scaled to unit mean square, so a moment's size does not depend on the number of frames."""
    u = torch.linspace(-1.0, 1.0, steps, device=device) if steps > 1 else torch.zeros(1, device=device)
    rows = [u, (3 * u**2 - 1) / 2, (5 * u**3 - 3 * u) / 2][:degree]
    weights = torch.stack(rows)
    scale = weights.pow(2).mean(dim=1, keepdim=True).sqrt().clamp(min=1e-6)
    return weights / scale


@register_temporal_head("trend")
class TrendHead(TemporalHead):
    """``mean(f) + sum_k A_k m_k``: the masked mean plus linear maps ``A_k`` of the time moments
    ``m_k = mean_t P_k(u_t) (f_t - mean f)`` (Legendre degree k = 1..``degree`` over normalised time).

    A still clip has zero moments, so the head reduces to mean pooling there; a reversed clip flips
    the sign of the odd moments. ``init_scale`` sets ``A_k = init_scale * I`` at initialisation, so
    the time signal is present before any training (0 makes the head start as mean pooling)."""

    kind = "trend"

    def __init__(self, dim: int, degree: int = 2, init_scale: float = 1.0) -> None:
        super().__init__(dim)
        if not 1 <= degree <= 3:
            raise ValueError(f"degree must be 1, 2 or 3, got {degree}")
        self.degree = degree
        self.maps = nn.ModuleList(nn.Linear(dim, dim, bias=False) for _ in range(degree))
        for layer in self.maps:
            nn.init.eye_(layer.weight)
            layer.weight.data.mul_(init_scale)

    def moments(self, frames: Tensor, mask: Tensor | None) -> Tensor:
        """(B, degree, D) time moments of the frames around their mean (padded frames count zero)."""
        mean = masked_mean(frames, mask)
        centred = frames - mean.unsqueeze(1)
        if mask is not None:
            centred = centred * mask.to(frames.dtype).unsqueeze(-1)
        weights = legendre_weights(frames.shape[1], self.degree, frames.device).to(frames.dtype)
        return torch.einsum("kt,btd->bkd", weights, centred) / frames.shape[1]

    def pool(self, frames: Tensor, mask: Tensor | None) -> Tensor:
        moments = self.moments(frames, mask)
        trend = sum(layer(moments[:, k]) for k, layer in enumerate(self.maps))
        return masked_mean(frames, mask) + trend


def load_pretrained_trend(head: TemporalHead, state: dict[str, Tensor]) -> None:
    """Load a pretrained :class:`TrendHead` state (vtr-tiny's clip head, from
    :func:`vtr.models.tiny.pretrained_trend_state`) into ``head``, naming both shapes when they differ
    (another degree or embedding width)."""
    expected = {k: tuple(v.shape) for k, v in head.state_dict().items()}
    given = {k: tuple(v.shape) for k, v in state.items()}
    if expected != given:
        raise ValueError(f"the pretrained trend head has shapes {given}, but this head needs {expected}")
    head.load_state_dict(state)


def create_temporal_head(kind: str, dim: int, **kwargs: Any) -> TemporalHead:
    """A registered head by kind, case-insensitive: ``"mean"`` (no options), ``"seqtransf"``
    (``layers``, ``heads``, ``max_frames``, ``dropout`` as keywords) or ``"trend"`` (``degree``,
    ``init_scale``)."""
    key = kind.lower()
    if key not in HEADS:
        raise ValueError(f"unknown temporal head {kind!r}; known: {sorted(HEADS)}")
    if key == "mean" and kwargs:
        raise TypeError(f"the mean head takes no options, got {sorted(kwargs)}")
    return HEADS.create(key, dim, **kwargs)
