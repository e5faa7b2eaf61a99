"""Scorers of (caption, video) pairs: a dual encoder, cross-modal attention and a fusion transformer.

All three take the same inputs, features in the CLIP joint space (frozen or from a tunable encoder):

* :class:`TextFeatures`: ``pooled`` (Q, D) caption embeddings, ``tokens`` (Q, L, D) per-token
  features (the text tower's token outputs through its projection, :func:`text_token_features`),
  ``mask`` (Q, L) valid tokens;
* :class:`VideoFeatures`: ``frames`` (N, T, D) per-frame embeddings, ``mask`` (N, T) valid frames.

and give ``scores(text, video) -> (Q, N)`` for every pair (``pair_scores`` for a list of pairs).

* :class:`DualEncoderScorer`: cosine of a text embedding (pooled + zero-initialised residual
  adapter) and a video embedding (a temporal head, :mod:`vtr.models.temporal`). One forward per
  caption and per video, so it ranks any number of videos with one matrix product.
* :class:`CrossAttentionScorer` (seed 003's "cross-attention module"): the dual encoder plus text
  tokens attending to frames and frames attending to text tokens; the attended features are added
  to each side's embedding through zero-initialised projections and the score is their cosine.
* :class:`FusionScorer` (seed 003's "fusion transformer"): the dual encoder plus a 4-layer
  transformer over ``[CLS | video tokens | text tokens]`` whose CLS output feeds a zero-initialised
  matching head; the score is the dual cosine plus that head's output.

Pair scorers cost one forward per pair, so retrieval shortlists with the dual part and re-scores
the top k (:func:`vtr.finetune.score_retrieval`). Every residual starts at zero, so at
initialisation each pair scorer *equals* its dual encoder (a test), and fine-tuning on a few
hundred clips starts from the pretrained model's ranking instead of from noise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vtr.models.temporal import create_temporal_head, masked_mean
from vtr.registry import Registry

#: The scorers by name (``finetune.scorers`` in a profile is validated against it).
SCORERS: Registry = Registry("scorer")
register_scorer = SCORERS.register
list_scorers = SCORERS.names

# --------------------------------------------------------------------------------- features


@dataclass
class TextFeatures:
    pooled: Tensor  # (Q, D) L2-normalised caption embeddings
    tokens: Tensor  # (Q, L, D) per-token features in the joint space
    mask: Tensor  # (Q, L) bool, True for real tokens (start, words, end)

    def __len__(self) -> int:
        return self.pooled.shape[0]

    def index(self, idx: Tensor | slice) -> TextFeatures:
        return TextFeatures(self.pooled[idx], self.tokens[idx], self.mask[idx])

    def to(self, device: torch.device | str) -> TextFeatures:
        return TextFeatures(self.pooled.to(device), self.tokens.to(device), self.mask.to(device))


@dataclass
class VideoFeatures:
    frames: Tensor  # (N, T, D) per-frame embeddings
    mask: Tensor  # (N, T) bool, True for valid frames

    def __len__(self) -> int:
        return self.frames.shape[0]

    def index(self, idx: Tensor | slice) -> VideoFeatures:
        return VideoFeatures(self.frames[idx], self.mask[idx])

    def to(self, device: torch.device | str) -> VideoFeatures:
        return VideoFeatures(self.frames.to(device), self.mask.to(device))


def text_token_features(clip_model: nn.Module, token_ids: Tensor) -> TextFeatures:
    """An open_clip ``CLIP``'s text tower, keeping every token: the same steps as its ``encode_text``
    (embedding, positions, transformer, final norm, projection) but without pooling the end token.

    ``pooled`` is the end-of-text token (open_clip's ``argmax`` pooling), exactly ``encode_text``'s
    output, L2-normalised; ``tokens`` are all token outputs through the same projection. Gradients
    flow when the caller enables them (a partly unfrozen text tower).
    """
    needed = ("token_embedding", "positional_embedding", "transformer", "ln_final", "text_projection")
    missing = [name for name in needed if not hasattr(clip_model, name)]
    if missing or getattr(clip_model, "text_pool_type", "argmax") != "argmax":
        raise NotImplementedError(
            f"token features need an open_clip CLIP with a built-in text tower and argmax pooling "
            f"({type(clip_model).__name__} lacks {missing or 'argmax pooling'})"
        )
    end = token_ids.argmax(dim=-1)  # the end-of-text token has the largest id
    width = token_ids.shape[1]
    # Why only the first `used` columns: the causal mask keeps every token up to the end token blind to
    # the padding after it, so those outputs are the same without it, and captions fill a third of the
    # context. The padding columns come back as zeros (masked out below).
    used = int(end.max()) + 1 if len(end) else width
    ids = token_ids[:, :used]
    cast = clip_model.transformer.get_cast_dtype()
    x = clip_model.token_embedding(ids).to(cast) + clip_model.positional_embedding[:used].to(cast)
    attn_mask = clip_model.attn_mask[:used, :used] if clip_model.attn_mask is not None else None
    x = clip_model.ln_final(clip_model.transformer(x, attn_mask=attn_mask))
    projection = clip_model.text_projection
    x = projection(x) if isinstance(projection, nn.Linear) else x @ projection
    x = F.pad(x.float(), (0, 0, 0, width - used))
    positions = torch.arange(width, device=token_ids.device)
    mask = positions[None, :] <= end[:, None]
    pooled = F.normalize(x[torch.arange(len(x), device=x.device), end], dim=-1)
    return TextFeatures(pooled=pooled, tokens=x, mask=mask)


# --------------------------------------------------------------------------------- scorers


@register_scorer("dual")
class DualEncoderScorer(nn.Module):
    """Cosine of ``normalize(pooled + adapter(pooled))`` and ``temporal_head(frames)``; the adapter is a
    zero-initialised linear layer, so an untrained scorer is the frozen dual encoder (with mean pooling
    when ``temporal="mean"``, or seqTransf, which also starts as mean pooling)."""

    kind = "dual"

    def __init__(self, dim: int, temporal: str = "seqtransf", temporal_kwargs: dict[str, Any] | None = None):
        super().__init__()
        self.dim = dim
        self.temporal = create_temporal_head(temporal, dim, **(temporal_kwargs or {}))
        self.text_adapter = nn.Linear(dim, dim)
        nn.init.zeros_(self.text_adapter.weight)
        nn.init.zeros_(self.text_adapter.bias)

    def embed_text(self, text: TextFeatures) -> Tensor:
        return F.normalize(text.pooled + self.text_adapter(text.pooled), dim=-1)

    def embed_video(self, video: VideoFeatures) -> Tensor:
        return self.temporal(video.frames, video.mask)

    def dual_scores(self, text: TextFeatures, video: VideoFeatures) -> Tensor:
        """(Q, N) cosine similarities of the dual part: cheap, used for shortlists."""
        return self.embed_text(text) @ self.embed_video(video).T

    def scores(self, text: TextFeatures, video: VideoFeatures) -> Tensor:
        """(Q, N) scores of every caption against every video."""
        return self.dual_scores(text, video)

    def pair_scores(self, text: TextFeatures, video: VideoFeatures, t_idx: Tensor, v_idx: Tensor) -> Tensor:
        """(P,) scores of the pairs ``(text[t_idx[p]], video[v_idx[p]])``."""
        return (self.embed_text(text)[t_idx] * self.embed_video(video)[v_idx]).sum(-1)

    @property
    def is_pair_scorer(self) -> bool:
        return False


class _PairScorer(DualEncoderScorer):
    """A dual encoder plus a per-pair module; ``scores`` runs it on every pair, in chunks."""

    chunk_pairs = 4096  # pairs per forward when scoring all pairs: bounds memory

    @property
    def is_pair_scorer(self) -> bool:
        return True

    def scores(self, text: TextFeatures, video: VideoFeatures) -> Tensor:
        q, n = len(text), len(video)
        t_idx = torch.arange(q, device=text.pooled.device).repeat_interleave(n)
        v_idx = torch.arange(n, device=text.pooled.device).repeat(q)
        return self.pair_scores(text, video, t_idx, v_idx).view(q, n)

    def pair_scores(self, text: TextFeatures, video: VideoFeatures, t_idx: Tensor, v_idx: Tensor) -> Tensor:
        base_t, base_v = self.embed_text(text), self.embed_video(video)
        prepared = self.prepare(text, video)
        parts = [
            self.score_pairs(
                base_t, base_v, prepared, t_idx[s : s + self.chunk_pairs], v_idx[s : s + self.chunk_pairs]
            )
            for s in range(0, len(t_idx), self.chunk_pairs)
        ]
        return torch.cat(parts) if parts else base_t.new_zeros(0)

    def prepare(self, text: TextFeatures, video: VideoFeatures) -> dict[str, Tensor]:  # pragma: no cover
        raise NotImplementedError

    def score_pairs(
        self, base_t: Tensor, base_v: Tensor, prepared: dict[str, Tensor], t_idx: Tensor, v_idx: Tensor
    ) -> Tensor:  # pragma: no cover
        raise NotImplementedError


def _used_columns(text: TextFeatures) -> TextFeatures:
    """``text`` without the padding columns no caption uses: a pair's cost is linear in the length,
    and the masked columns change no score."""
    used = int(text.mask.any(dim=0).nonzero().max()) + 1 if text.mask.any() else 1
    return TextFeatures(text.pooled, text.tokens[:, :used], text.mask[:, :used])


def _attend(q: Tensor, k: Tensor, v: Tensor, key_mask: Tensor, heads: int) -> Tensor:
    """Multi-head attention of queries (P, Lq, D) over keys/values (P, Lk, D) with valid keys ``key_mask``."""
    p, lq, d = q.shape
    lk = k.shape[1]
    split = lambda x, n: x.view(p, n, heads, d // heads).transpose(1, 2)  # noqa: E731
    out = F.scaled_dot_product_attention(
        split(q, lq), split(k, lk), split(v, lk), attn_mask=key_mask[:, None, None, :]
    )
    return out.transpose(1, 2).reshape(p, lq, d)


@register_scorer("crossattn")
class CrossAttentionScorer(_PairScorer):
    """Text tokens attend to the frames and frames attend to the text tokens (seed 003's module).

    For a pair (caption i, video j): ``t_ctx = mean_tokens(Attn(q=text_i, kv=frames_j + pos))``,
    ``v_ctx = mean_frames(Attn(q=frames_j + pos, kv=text_i))``, then
    ``score = cos(base_t_i + W_t t_ctx, base_v_j + W_v v_ctx)`` with ``W_t``, ``W_v`` zero at init.
    Frame positions let the text attend to *when* something happens, not only to what is seen.
    """

    kind = "crossattn"

    def __init__(
        self,
        dim: int,
        heads: int | None = None,
        max_frames: int = 64,
        temporal: str = "seqtransf",
        temporal_kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(dim, temporal, temporal_kwargs)
        self.heads = heads or max(1, dim // 64)
        if dim % self.heads:
            raise ValueError(f"dim {dim} is not divisible by heads {self.heads}")
        self.frame_positions = nn.Parameter(torch.randn(max_frames, dim) * 0.01)
        self.norm_text, self.norm_video = nn.LayerNorm(dim), nn.LayerNorm(dim)
        # t2v: text queries, frame keys/values; v2t: frame queries, text keys/values
        self.t2v_q, self.t2v_kv = nn.Linear(dim, dim), nn.Linear(dim, 2 * dim)
        self.v2t_q, self.v2t_kv = nn.Linear(dim, dim), nn.Linear(dim, 2 * dim)
        self.out_text, self.out_video = nn.Linear(dim, dim), nn.Linear(dim, dim)
        for layer in (self.out_text, self.out_video):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def prepare(self, text: TextFeatures, video: VideoFeatures) -> dict[str, Tensor]:
        # Projections depend on one side only: computed once per caption / video, gathered per pair.
        text = _used_columns(text)
        t = self.norm_text(text.tokens)
        steps = video.frames.shape[1]
        if steps > self.frame_positions.shape[0]:
            raise ValueError(f"{steps} frames exceed max_frames={self.frame_positions.shape[0]}")
        v = self.norm_video(video.frames + self.frame_positions[:steps])
        t_k, t_v = self.v2t_kv(t).chunk(2, dim=-1)
        v_k, v_v = self.t2v_kv(v).chunk(2, dim=-1)
        return {
            "t_q": self.t2v_q(t), "t_k": t_k, "t_v": t_v, "t_mask": text.mask,
            "v_q": self.v2t_q(v), "v_k": v_k, "v_v": v_v, "v_mask": video.mask,
        }  # fmt: skip

    def score_pairs(
        self, base_t: Tensor, base_v: Tensor, prepared: dict[str, Tensor], t_idx: Tensor, v_idx: Tensor
    ) -> Tensor:
        t_mask, v_mask = prepared["t_mask"][t_idx], prepared["v_mask"][v_idx]
        t_ctx = _attend(
            prepared["t_q"][t_idx], prepared["v_k"][v_idx], prepared["v_v"][v_idx], v_mask, self.heads
        )
        v_ctx = _attend(
            prepared["v_q"][v_idx], prepared["t_k"][t_idx], prepared["t_v"][t_idx], t_mask, self.heads
        )
        text_vec = F.normalize(base_t[t_idx] + self.out_text(masked_mean(t_ctx, t_mask)), dim=-1)
        video_vec = F.normalize(base_v[v_idx] + self.out_video(masked_mean(v_ctx, v_mask)), dim=-1)
        return (text_vec * video_vec).sum(-1)


@register_scorer("fusion")
class FusionScorer(_PairScorer):
    """A transformer encoder over ``[CLS | frames | text tokens]`` of a pair with a matching head.

    ``score = cos(base_t_i, base_v_j) + head(LN(CLS output))`` with ``head`` zero at init. Inputs are
    projected to ``width`` (cost grows with width² per token per pair); ``text="pooled"`` feeds the
    caption embedding as one token instead of all its tokens (cheaper; the sample profile's choice).
    """

    kind = "fusion"

    def __init__(
        self,
        dim: int,
        width: int = 256,
        layers: int = 4,
        heads: int = 4,
        text: str = "tokens",
        max_frames: int = 64,
        max_text_tokens: int = 77,
        dropout: float = 0.1,
        temporal: str = "seqtransf",
        temporal_kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(dim, temporal, temporal_kwargs)
        if text not in ("tokens", "pooled"):
            raise ValueError(f"text must be 'tokens' or 'pooled', got {text!r}")
        self.text_input = text
        self.in_video, self.in_text = nn.Linear(dim, width), nn.Linear(dim, width)
        self.cls = nn.Parameter(torch.randn(width) * 0.02)
        self.video_positions = nn.Parameter(torch.randn(max_frames, width) * 0.02)
        self.text_positions = nn.Parameter(torch.randn(max_text_tokens, width) * 0.02)
        layer = nn.TransformerEncoderLayer(
            width, heads, dim_feedforward=4 * width, dropout=dropout, batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def prepare(self, text: TextFeatures, video: VideoFeatures) -> dict[str, Tensor]:
        steps = video.frames.shape[1]
        if text.tokens.shape[1] > self.text_positions.shape[0] or steps > self.video_positions.shape[0]:
            raise ValueError("more frames or text tokens than the fusion transformer's positions")
        if self.text_input == "pooled":
            t_tokens, t_mask = text.pooled[:, None, :], torch.ones_like(text.mask[:, :1])
        else:
            trimmed = _used_columns(text)
            t_tokens, t_mask = trimmed.tokens, trimmed.mask
        t = self.in_text(t_tokens) + self.text_positions[: t_tokens.shape[1]]
        v = self.in_video(video.frames) + self.video_positions[:steps]
        return {"t": t, "t_mask": t_mask, "v": v, "v_mask": video.mask}

    def score_pairs(
        self, base_t: Tensor, base_v: Tensor, prepared: dict[str, Tensor], t_idx: Tensor, v_idx: Tensor
    ) -> Tensor:
        v, t = prepared["v"][v_idx], prepared["t"][t_idx]
        cls = self.cls.expand(len(t_idx), 1, -1)
        tokens = torch.cat([cls, v, t], dim=1)
        valid = torch.cat([torch.ones_like(prepared["v_mask"][v_idx][:, :1]), prepared["v_mask"][v_idx],
                           prepared["t_mask"][t_idx]], dim=1)  # fmt: skip
        out = self.encoder(tokens, src_key_padding_mask=~valid)
        match = self.head(self.norm(out[:, 0])).squeeze(-1)
        return (base_t[t_idx] * base_v[v_idx]).sum(-1) + match


def create_scorer(kind: str, dim: int, **kwargs: Any) -> DualEncoderScorer:
    """A registered scorer (``"dual"``, ``"crossattn"``, ``"fusion"``, or one added with
    :func:`register_scorer`) with the class's keyword options; an unknown name lists the known ones."""
    return SCORERS.create(kind, dim, **kwargs)


__all__ = [
    "CrossAttentionScorer",
    "DualEncoderScorer",
    "FusionScorer",
    "SCORERS",
    "TextFeatures",
    "VideoFeatures",
    "create_scorer",
    "list_scorers",
    "register_scorer",
    "text_token_features",
]
