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


def create_temporal_head(kind: str, dim: int, **kwargs: Any) -> TemporalHead:
    """A registered head by kind, case-insensitive: ``"mean"`` (no options) or ``"seqtransf"``
    (``layers``, ``heads``, ``max_frames``, ``dropout`` as keywords)."""
    key = kind.lower()
    if key not in HEADS:
        raise ValueError(f"unknown temporal head {kind!r}; known: {sorted(HEADS)}")
    if key == "mean" and kwargs:
        raise TypeError(f"the mean head takes no options, got {sorted(kwargs)}")
    return HEADS.create(key, dim, **kwargs)
