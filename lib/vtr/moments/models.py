"""Moment-retrieval models over per-clip video features and per-token query features.

All three take a :class:`MomentBatch` and return per-clip ``saliency`` scores plus what their
window decoder needs; :func:`predict_windows` turns either output into ranked ``(start, end, score)``
windows in seconds. Registered in :data:`MOMENT_MODELS` (``create_moment_model(name, dim=...)``):

* ``zero_shot`` — the baseline: each clip's cosine to the pooled query; windows are runs of clips
  above several thresholds (:func:`windows_from_scores`). Nothing to train.
* ``temporal`` — seed 004's design: the clip–query cosine refined by temporal self-attention over
  the clips and cross-attention to the query tokens; a relevance head scores each clip, trained
  with binary cross-entropy against "clip inside a ground-truth window"; windows as for zero-shot.
* ``span`` — Moment-DETR-style: a transformer encoder over clips and query tokens, ``n_queries``
  learned moment queries decoded to (centre, width) spans with a foreground score, matched to the
  ground truth by the Hungarian algorithm (L1 + generalised IoU + class cost), and a saliency head
  on the encoded clips.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment
from torch import nn

from vtr.registry import Registry

MOMENT_MODELS: Registry = Registry("moment model")
register_moment_model = MOMENT_MODELS.register
create_moment_model = MOMENT_MODELS.create
list_moment_models = MOMENT_MODELS.names


@dataclass
class MomentBatch:
    """Padded inputs and targets of ``B`` (video, query) pairs."""

    clips: torch.Tensor  # [B, N, D] L2-normalised clip features
    clip_mask: torch.Tensor  # [B, N] True for real clips
    tokens: torch.Tensor  # [B, L, D] query token features
    token_mask: torch.Tensor  # [B, L] True for real tokens
    pooled: torch.Tensor  # [B, D] L2-normalised pooled query features
    labels: torch.Tensor | None = None  # [B, N] 1.0 for clips inside a ground-truth window
    spans: list[torch.Tensor] = field(default_factory=list)  # per pair [k, 2] (centre, width) in [0, 1]

    def to(self, device: torch.device | str) -> MomentBatch:
        move = lambda t: t.to(device) if isinstance(t, torch.Tensor) else t  # noqa: E731
        return MomentBatch(
            move(self.clips), move(self.clip_mask), move(self.tokens), move(self.token_mask),
            move(self.pooled), move(self.labels), [move(s) for s in self.spans],
        )  # fmt: skip


def _cosine(batch: MomentBatch) -> torch.Tensor:
    return torch.einsum("bnd,bd->bn", batch.clips, F.normalize(batch.pooled, dim=-1))


def _masked_bce(logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    loss = F.binary_cross_entropy_with_logits(logits, labels, reduction="none")
    return (loss * mask).sum() / mask.sum().clamp(min=1)


@register_moment_model("zero_shot")
class ZeroShotMoments(nn.Module):
    """Clip–query cosine as saliency; no parameters to train."""

    def __init__(self, dim: int = 0, **_: object) -> None:
        super().__init__()

    def forward(self, batch: MomentBatch) -> dict[str, torch.Tensor]:
        return {"saliency": _cosine(batch).masked_fill(~batch.clip_mask, -1e4)}


@register_moment_model("temporal")
class TemporalAttentionMoments(nn.Module):
    """Seed 004's model: temporal self-attention over clips, cross-attention to the query tokens."""

    def __init__(
        self, dim: int, hidden: int = 128, heads: int = 4, layers: int = 2, dropout: float = 0.1,
        max_clips: int = 256,
    ) -> None:  # fmt: skip
        super().__init__()
        self.max_clips = max_clips
        self.clip_in = nn.Linear(dim + 1, hidden)  # features and their cosine to the query
        self.query_in = nn.Linear(dim, hidden)
        self.position = nn.Embedding(max_clips, hidden)
        layer = nn.TransformerEncoderLayer(
            hidden, heads, 2 * hidden, dropout, batch_first=True, norm_first=True
        )
        self.temporal = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.cross = nn.MultiheadAttention(hidden, heads, dropout=dropout, batch_first=True)
        self.cross_norm = nn.LayerNorm(hidden)
        self.head = nn.Sequential(
            nn.LayerNorm(hidden), nn.Linear(hidden, hidden), nn.GELU(), nn.Linear(hidden, 1)
        )
        # The relevance logit is a learned affine map of the zero-shot cosine plus the attention head's
        # correction; the correction starts at zero, so training starts from the zero-shot ranking and
        # a few dozen training queries refine it rather than having to rediscover it.
        nn.init.zeros_(self.head[-1].weight)
        nn.init.zeros_(self.head[-1].bias)
        self.cosine_scale = nn.Parameter(torch.tensor(10.0))
        self.cosine_bias = nn.Parameter(torch.tensor(-2.0))

    def forward(self, batch: MomentBatch) -> dict[str, torch.Tensor]:
        n = batch.clips.shape[1]
        if n > self.max_clips:
            raise ValueError(
                f"{n} clips exceed the model's window of {self.max_clips}; predict with sliding windows"
            )
        cosine = _cosine(batch)
        h = self.clip_in(torch.cat([batch.clips, cosine.unsqueeze(-1)], dim=-1))
        h = h + self.position(torch.arange(n, device=h.device))
        h = self.temporal(h, src_key_padding_mask=~batch.clip_mask)
        q = self.query_in(batch.tokens)
        attended, _ = self.cross(
            self.cross_norm(h), q, q, key_padding_mask=~batch.token_mask, need_weights=False
        )
        prior = self.cosine_scale * cosine + self.cosine_bias
        logits = prior + self.head(h + attended).squeeze(-1)
        return {"saliency": logits.masked_fill(~batch.clip_mask, -1e4)}

    def loss(self, batch: MomentBatch) -> torch.Tensor:
        if batch.labels is None:
            raise ValueError("training needs per-clip labels")
        return _masked_bce(self(batch)["saliency"], batch.labels, batch.clip_mask.float())


# ------------------------------------------------------------------------------------------ span model


def span_to_edges(spans: torch.Tensor) -> torch.Tensor:
    """(centre, width) → (start, end), any leading shape."""
    centre, width = spans.unbind(-1)
    return torch.stack([centre - width / 2, centre + width / 2], dim=-1)


def pairwise_giou(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """IoU and generalised IoU of 1-D (start, end) segments ``a`` [M, 2] against ``b`` [K, 2]: [M, K]."""
    inter = (torch.min(a[:, None, 1], b[None, :, 1]) - torch.max(a[:, None, 0], b[None, :, 0])).clamp(min=0)
    union = (a[:, 1] - a[:, 0])[:, None] + (b[:, 1] - b[:, 0])[None, :] - inter
    iou = inter / union.clamp(min=1e-6)
    hull = torch.max(a[:, None, 1], b[None, :, 1]) - torch.min(a[:, None, 0], b[None, :, 0])
    return iou, iou - (hull - union) / hull.clamp(min=1e-6)


@register_moment_model("span")
class SpanMoments(nn.Module):
    """Moment-DETR-style span predictor with Hungarian matching and a saliency head."""

    def __init__(
        self, dim: int, hidden: int = 128, heads: int = 4, layers: int = 2, n_queries: int = 10,
        dropout: float = 0.1, max_clips: int = 256, cost_l1: float = 10.0, cost_giou: float = 1.0,
        cost_class: float = 4.0, background_weight: float = 0.1,
    ) -> None:  # fmt: skip
        super().__init__()
        self.max_clips = max_clips
        self.costs = (cost_l1, cost_giou, cost_class)
        self.background_weight = background_weight
        self.clip_in = nn.Linear(dim + 1, hidden)
        self.query_in = nn.Linear(dim, hidden)
        self.position = nn.Embedding(max_clips, hidden)
        self.kind = nn.Embedding(2, hidden)  # clip token or query token
        self.transformer = nn.Transformer(
            hidden, heads, layers, layers, 2 * hidden, dropout, batch_first=True, norm_first=True
        )
        self.moment_queries = nn.Embedding(n_queries, hidden)
        self.span_head = nn.Sequential(nn.Linear(hidden, hidden), nn.GELU(), nn.Linear(hidden, 2))
        self.class_head = nn.Linear(hidden, 2)  # foreground, background
        self.saliency_head = nn.Linear(hidden, 1)

    def forward(self, batch: MomentBatch) -> dict[str, torch.Tensor]:
        b, n = batch.clips.shape[:2]
        if n > self.max_clips:
            raise ValueError(
                f"{n} clips exceed the model's window of {self.max_clips}; predict with sliding windows"
            )
        clips = self.clip_in(torch.cat([batch.clips, _cosine(batch).unsqueeze(-1)], dim=-1))
        clips = clips + self.position(torch.arange(n, device=clips.device)) + self.kind.weight[0]
        words = self.query_in(batch.tokens) + self.kind.weight[1]
        source = torch.cat([clips, words], dim=1)
        padding = ~torch.cat([batch.clip_mask, batch.token_mask], dim=1)
        memory = self.transformer.encoder(source, src_key_padding_mask=padding)
        queries = self.moment_queries.weight.unsqueeze(0).expand(b, -1, -1)
        decoded = self.transformer.decoder(queries, memory, memory_key_padding_mask=padding)
        saliency = self.saliency_head(memory[:, :n]).squeeze(-1).masked_fill(~batch.clip_mask, -1e4)
        return {
            "spans": self.span_head(decoded).sigmoid(),
            "logits": self.class_head(decoded),
            "saliency": saliency,
        }

    @torch.no_grad()
    def match(
        self, spans: torch.Tensor, logits: torch.Tensor, target: torch.Tensor
    ) -> tuple[np.ndarray, np.ndarray]:
        """Hungarian matching of one pair's predicted spans [K, 2] to its ground truth [k, 2]."""
        cost_l1, cost_giou, cost_class = self.costs
        foreground = logits.softmax(-1)[:, 0]
        _, giou = pairwise_giou(span_to_edges(spans), span_to_edges(target))
        cost = cost_l1 * torch.cdist(spans, target, p=1) - cost_giou * giou - cost_class * foreground[:, None]
        rows, cols = linear_sum_assignment(cost.cpu().numpy())
        return rows, cols

    def loss(self, batch: MomentBatch) -> torch.Tensor:
        if batch.labels is None or len(batch.spans) != batch.clips.shape[0]:
            raise ValueError("training needs per-clip labels and ground-truth spans for every pair")
        out = self(batch)
        spans, logits = out["spans"], out["logits"]
        classes = torch.ones(logits.shape[:2], dtype=torch.long, device=logits.device)  # background
        l1 = giou_loss = spans.new_zeros(())
        matched = 0
        for i, target in enumerate(batch.spans):
            rows, cols = self.match(spans[i], logits[i], target)
            classes[i, rows] = 0
            pred, gt = spans[i, rows], target[cols]
            l1 = l1 + F.l1_loss(pred, gt, reduction="sum")
            _, giou = pairwise_giou(span_to_edges(pred), span_to_edges(gt))
            giou_loss = giou_loss + (1 - giou.diagonal()).sum()
            matched += len(rows)
        weights = logits.new_tensor([1.0, self.background_weight])
        class_loss = F.cross_entropy(logits.flatten(0, 1), classes.flatten(), weight=weights)
        saliency = _masked_bce(out["saliency"], batch.labels, batch.clip_mask.float())
        return (l1 + giou_loss) / max(matched, 1) + class_loss + saliency


# ------------------------------------------------------------------------------------------ decoding


def windows_from_scores(
    scores: np.ndarray,
    clip_len: float,
    duration: float,
    top_k: int = 10,
    quantiles: tuple[float, ...] = (0.5, 0.6, 0.7, 0.8, 0.9),
) -> list[tuple[float, float, float]]:
    """Ranked windows from per-clip scores: runs of consecutive clips at or above each of several
    score quantiles (so both broad and tight windows are proposed), scored by their mean score, with
    duplicates removed, best ``top_k`` first."""
    scores = np.asarray(scores, dtype=np.float64)
    found: dict[tuple[int, int], float] = {}
    for level in np.quantile(scores, quantiles):
        above = np.concatenate([[False], scores >= level, [False]])
        edges = np.flatnonzero(above[1:] != above[:-1])
        for first, stop in zip(edges[::2], edges[1::2], strict=True):
            found[(int(first), int(stop))] = float(scores[first:stop].mean())
    if not found:  # constant scores: the whole video
        found[(0, len(scores))] = float(scores.mean()) if len(scores) else 0.0
    ranked = sorted(found.items(), key=lambda item: -item[1])[:top_k]
    return [(first * clip_len, min(stop * clip_len, duration), score) for (first, stop), score in ranked]


def predict_windows(
    model: nn.Module, batch: MomentBatch, clip_len: float, durations: list[float], top_k: int = 10
) -> list[tuple[list[tuple[float, float, float]], np.ndarray]]:
    """Per pair: ranked (start, end, score) windows in seconds and per-clip saliency (real clips only)."""
    model.eval()
    with torch.no_grad():
        out = model(batch)
    results = []
    for i, duration in enumerate(durations):
        n = int(batch.clip_mask[i].sum())
        saliency = out["saliency"][i, :n].float().cpu().numpy()
        if "spans" in out:
            span_len = n * clip_len
            edges = span_to_edges(out["spans"][i]).clamp(0, 1).float().cpu().numpy() * span_len
            scores = out["logits"][i].softmax(-1)[:, 0].float().cpu().numpy()
            order = np.argsort(-scores)[:top_k]
            windows = [
                (float(edges[j, 0]), float(min(edges[j, 1], duration)), float(scores[j])) for j in order
            ]
        else:
            windows = windows_from_scores(saliency, clip_len, duration, top_k)
        results.append((windows, saliency))
    return results
