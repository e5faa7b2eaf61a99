"""TempMe-style token merging inside an open_clip Vision Transformer, for whole clips.

A clip of ``T`` frames normally costs ``T`` independent ViT passes of ``1 + P`` tokens each. Merging
removes redundant tokens as the clip goes up the network, in two phases (after TempMe, which builds
on ToMe's bipartite soft matching):

1. **Intra-frame** (blocks before the first merge layer): in every block, after attention, the
   ``intra`` fraction of each frame's patch tokens is merged into their most similar partners.
2. **Cross-frame** (from ``merge_layers[0]`` on): before block ``merge_layers[i]`` runs, groups of
   ``merge_frames[i]`` neighbouring frames (or already merged clips) are joined into one sequence:
   their class tokens are averaged and their patch tokens interleaved, and every block from there
   on merges the ``inter`` fraction of the joined patch tokens, so similar tokens of neighbouring
   frames collapse into one.

Merged tokens are size-weighted means, and attention is *proportional* (each key's logit gets
``log(size)``), so a token that stands for ``k`` identical tokens attends exactly as the ``k`` would:
merging exact duplicates changes nothing (the tests check this). The class token is never merged
into a patch. With ``intra = inter = 0`` and all groups 1 the forward pass equals open_clip's
per-frame ``visual(frames)`` (tested).

How vtr reads TempMe's settings (``merge_frame_num="2-2-3"``, ``merge_layer="8-9-10"``,
``merge_token_proportion="30-10"``): 0-based block indices, the first proportion for the intra-frame
phase and the second for the cross-frame phase. The paper's default for ViT-B/32 at 12 frames is
:data:`TEMPME_VIT_B32`. Matching uses the attention keys averaged over heads, as ToMe recommends.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vtr.models.encoders import Encoder

if TYPE_CHECKING:
    from vtr.config import ExtractConfig, Profile


@dataclass(frozen=True)
class MergeConfig:
    """Where and how much to merge; see the module docstring."""

    merge_frames: tuple[int, ...] = ()  # frames joined at each merge layer, e.g. (2, 2, 3)
    merge_layers: tuple[int, ...] = ()  # 0-based block indices, e.g. (8, 9, 10)
    intra: float = 0.0  # fraction of a frame's patch tokens merged per block before the first merge layer
    inter: float = 0.0  # fraction of the joined patch tokens merged per block from the first merge layer on

    def __post_init__(self) -> None:
        if len(self.merge_frames) != len(self.merge_layers):
            raise ValueError(
                f"merge_frames {self.merge_frames} and merge_layers {self.merge_layers} differ in length"
            )
        if any(g < 1 for g in self.merge_frames):
            raise ValueError(f"merge_frames must be >= 1, got {self.merge_frames}")
        if list(self.merge_layers) != sorted(set(self.merge_layers)):
            raise ValueError(f"merge_layers must be strictly increasing, got {self.merge_layers}")
        for name in ("intra", "inter"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}")

    @classmethod
    def from_tempme(
        cls,
        merge_frame_num: str | Sequence[int],
        merge_layer: str | Sequence[int],
        merge_token_proportion: str | Sequence[float],
    ) -> MergeConfig:
        """From TempMe's settings: dash-separated strings (``"2-2-3"``, ``"8-9-10"``, ``"30-10"``, the
        proportions in percent) or lists as seed 001's JSON writes them (``[6, 8, 10]``, ``[0.3, 0.7]``)."""
        frames = _numbers(merge_frame_num, int)
        layers = _numbers(merge_layer, int)
        proportions = _numbers(merge_token_proportion, float)
        if len(proportions) not in (1, 2):
            raise ValueError(f"merge_token_proportion {merge_token_proportion!r}: expected one or two values")
        proportions = tuple(p / 100 if p > 1 else p for p in proportions)  # "30-10" is in percent
        return cls(merge_frames=frames, merge_layers=layers, intra=proportions[0], inter=proportions[-1])

    def frames_out(self, frames: int) -> int:
        """Clip-level groups left after every merge layer, or ValueError when they do not divide."""
        for group in self.merge_frames:
            if frames % group:
                raise ValueError(
                    f"{frames} frames cannot be joined in groups of {group} ({self.merge_frames})"
                )
            frames //= group
        return frames


def _numbers(value: str | Sequence[Any], kind: type) -> tuple[Any, ...]:
    parts = value.split("-") if isinstance(value, str) else list(value)
    return tuple(kind(v) for v in parts if v != "")


def merge_config(cfg: Profile | ExtractConfig) -> MergeConfig:
    """The merge schedule a profile's ``extract`` section sets (whether or not ``extract.merge`` is on)."""
    section = getattr(cfg, "extract", cfg)
    return MergeConfig.from_tempme(
        section.merge_frame_num, section.merge_layer, section.merge_token_proportion
    )


#: TempMe's default for ViT-B/32 at 12 frames: frames joined 2-2-3 at blocks 8-9-10, 30% then 10%
#: (the full profile's ``extract`` section; ``merge_config(load_profile("full"))`` equals it).
TEMPME_VIT_B32 = MergeConfig(merge_frames=(2, 2, 3), merge_layers=(8, 9, 10), intra=0.3, inter=0.1)
#: The same schedule scaled to the 4 blocks of the sample profile's ``vtr-tiny-vit`` (the defaults).
TEMPME_TINY_VIT = MergeConfig(merge_frames=(2, 2, 3), merge_layers=(1, 2, 3), intra=0.3, inter=0.1)


@dataclass
class MergeStats:
    """Token counts per block (summed over the batch), for cost accounting."""

    tokens_per_block: list[int] = field(default_factory=list)

    @property
    def total_tokens(self) -> int:
        return sum(self.tokens_per_block)


def bipartite_merge(
    x: torch.Tensor, size: torch.Tensor, metric: torch.Tensor, r: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Merge ``r`` tokens of ``x`` [B, N, C] (sizes [B, N, 1]) by bipartite soft matching on ``metric``.

    Tokens alternate between two sets; each token of the first set (which holds the class token at
    index 0, never merged) picks its most similar token of the second; the ``r`` best-matched pairs
    are merged as size-weighted means. Unmerged tokens keep their order, so the class token stays first.
    """
    if r <= 0:
        return x, size
    metric = F.normalize(metric, dim=-1)
    a, b = metric[:, ::2], metric[:, 1::2]
    r = min(r, a.shape[1] - 1)  # the class token is in a and stays
    scores = a @ b.transpose(-1, -2)
    scores[:, 0, :] = -math.inf
    best, best_idx = scores.max(dim=-1)
    order = best.argsort(dim=-1, descending=True)
    src_idx = order[:, :r, None]
    keep_idx = order[:, r:].sort(dim=-1).values[..., None]
    dst_idx = best_idx[..., None].gather(1, src_idx)

    weighted = x * size
    xa, xb = weighted[:, ::2], weighted[:, 1::2]
    sa, sb = size[:, ::2], size[:, 1::2]
    channels = x.shape[-1]
    xb = xb.scatter_add(1, dst_idx.expand(-1, -1, channels), xa.gather(1, src_idx.expand(-1, -1, channels)))
    sb = sb.scatter_add(1, dst_idx, sa.gather(1, src_idx))
    xa, sa = xa.gather(1, keep_idx.expand(-1, -1, channels)), sa.gather(1, keep_idx)
    merged_size = torch.cat([sa, sb], dim=1)
    return torch.cat([xa, xb], dim=1) / merged_size, merged_size


def join_frames(x: torch.Tensor, size: torch.Tensor, group: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Join ``group`` neighbouring sequences of ``x`` [B*T, N, C]: class tokens averaged (by size),
    patch tokens interleaved (patch 1 of each frame, then patch 2, ...), so that the alternating
    sets of :func:`bipartite_merge` hold different frames' tokens and matching runs across frames.
    Returns [B*T/group, 1 + group*(N-1), C] and the matching sizes."""
    if group == 1:
        return x, size
    rows, tokens, channels = x.shape
    x = x.reshape(rows // group, group, tokens, channels)
    size = size.reshape(rows // group, group, tokens, 1)
    cls_size = size[:, :, 0].sum(dim=1, keepdim=True)
    cls = (x[:, :, 0] * size[:, :, 0]).sum(dim=1, keepdim=True) / cls_size
    patches = x[:, :, 1:].transpose(1, 2).reshape(rows // group, group * (tokens - 1), channels)
    patch_size = size[:, :, 1:].transpose(1, 2).reshape(rows // group, group * (tokens - 1), 1)
    return torch.cat([cls, patches], dim=1), torch.cat([cls_size, patch_size], dim=1)


def _keys(block: nn.Module, normed: torch.Tensor) -> torch.Tensor:
    """The attention keys of ``block`` for ``normed`` tokens, averaged over heads ([B, N, head_dim])."""
    attn: nn.MultiheadAttention = block.attn
    dim = attn.embed_dim
    weight = attn.in_proj_weight[dim : 2 * dim]
    bias = attn.in_proj_bias[dim : 2 * dim] if attn.in_proj_bias is not None else None
    keys = F.linear(normed, weight, bias)
    return keys.reshape(*keys.shape[:2], attn.num_heads, dim // attn.num_heads).mean(dim=2)


def _attend(block: nn.Module, x: torch.Tensor, size: torch.Tensor) -> torch.Tensor:
    """``block``'s attention residual with proportional attention (``log(size)`` added to key logits)."""
    attn: nn.MultiheadAttention = block.attn
    normed = block.ln_1(x)
    bias = None
    if bool((size != 1).any()):  # before any merge every size is 1: keep attention's fast path
        bias = size.log().transpose(1, 2)  # [B, 1, N]
        bias = bias.expand(-1, x.shape[1], -1).repeat_interleave(attn.num_heads, dim=0).to(x.dtype)
    out = attn(normed, normed, normed, need_weights=False, attn_mask=bias)[0]
    return x + block.ls_1(out)


def _n_merge(tokens: int, fraction: float) -> int:
    """Patch tokens merged in one block: ``fraction`` of the patch tokens, rounded down."""
    return int((tokens - 1) * fraction)


def _check_visual(visual: nn.Module) -> None:
    transformer = getattr(visual, "transformer", None)
    if (
        transformer is None
        or not hasattr(visual, "_embeds")
        or getattr(visual, "attn_pool", None) is not None
    ):
        raise TypeError(
            f"{type(visual).__name__} is not an open_clip VisionTransformer with class-token pooling; "
            "token merging needs one (convolutional towers such as vtr-tiny's ResNet have no tokens)"
        )
    if getattr(visual, "pool_type", "tok") != "tok" or not getattr(transformer, "batch_first", True):
        raise TypeError("token merging supports pool_type='tok' with batch_first transformers")


def merged_clip_features(
    visual: nn.Module, frames: torch.Tensor, cfg: MergeConfig, stats: MergeStats | None = None
) -> torch.Tensor:
    """Clip features [B, T', D] of ``frames`` [B, T, 3, H, W] through ``visual`` with merging.

    ``T'`` is :meth:`MergeConfig.frames_out` of ``T`` (1 for TempMe's default at 12 frames); the
    video embedding is their mean (:func:`merged_video_features`). ``stats`` collects token counts.
    """
    _check_visual(visual)
    batch, n_frames = frames.shape[:2]
    groups_left = cfg.frames_out(n_frames)
    x = visual._embeds(frames.flatten(0, 1))
    size = torch.ones(*x.shape[:2], 1, dtype=x.dtype, device=x.device)
    joins = dict(zip(cfg.merge_layers, cfg.merge_frames, strict=True))
    first_join = cfg.merge_layers[0] if cfg.merge_layers else math.inf
    for index, block in enumerate(visual.transformer.resblocks):
        if index in joins:
            x, size = join_frames(x, size, joins[index])
        if stats is not None:
            stats.tokens_per_block.append(x.shape[0] * x.shape[1])
        x = _attend(block, x, size)
        fraction = cfg.intra if index < first_join else cfg.inter
        r = _n_merge(x.shape[1], fraction)
        if r > 0:
            x, size = bipartite_merge(x, size, _keys(block, block.ln_1(x)), r)
        x = x + block.ls_2(block.mlp(block.ln_2(x)))
    if x.shape[0] != batch * groups_left:  # merge layers beyond the last block were never reached
        raise ValueError(
            f"merge_layers {cfg.merge_layers} exceed the {len(visual.transformer.resblocks)} blocks"
        )
    pooled, _ = visual._pool(x)
    if visual.proj is not None:
        pooled = pooled @ visual.proj
    return pooled.reshape(batch, groups_left, -1)


def merged_video_features(
    visual: nn.Module, frames: torch.Tensor, cfg: MergeConfig, stats: MergeStats | None = None
) -> torch.Tensor:
    """One L2-normalised embedding per clip [B, D]: the re-normalised mean of the normalised
    :func:`merged_clip_features`, as ``Encoder.encode_clips`` pools frames (equal without merging)."""
    groups = F.normalize(merged_clip_features(visual, frames, cfg, stats), dim=-1)
    return F.normalize(groups.mean(dim=1), dim=-1)


@torch.inference_mode()
def encode_clips_merged(
    encoder: Encoder, videos: Sequence[np.ndarray], cfg: MergeConfig, stats: MergeStats | None = None
) -> np.ndarray:
    """uint8 (T, H, W, 3) videos of equal ``T`` → float32 (N, D) clip embeddings, merged as ``cfg`` says,
    through ``encoder``'s own preprocessing (the merging counterpart of ``Encoder.encode_clips``)."""
    if not videos:
        return np.zeros((0, encoder.output_dim), dtype=np.float32)
    pixels = torch.stack([encoder.preprocess(np.asarray(v)) for v in videos])
    with encoder._autocast():
        features = merged_video_features(encoder.model.visual, pixels, cfg, stats)
    return features.float().cpu().numpy()


class MergingEncoder(Encoder):
    """An :class:`~vtr.models.encoders.Encoder` whose videos go through the ViT with token merging.

    It shares the wrapped encoder's model, tokenizer and preprocessing (text is encoded as before);
    :meth:`encode_video_rows` stores each video's :meth:`MergeConfig.frames_out` merged clip features
    instead of one row per frame (one row for TempMe's 12 frames at 2-2-3), and :meth:`identity`
    includes the schedule, so caches and ``vtr extract`` folders keep merged and plain embeddings apart.
    ``vtr extract`` uses it when ``extract.merge`` is on (:func:`vtr.extract.api.make_encoder`).
    """

    def __init__(self, encoder: Encoder, merge: MergeConfig) -> None:
        _check_visual(encoder.model.visual)
        self.__dict__.update(encoder.__dict__)
        self.merge = merge
        self.stats = MergeStats()  # token counts of every merged forward pass, for cost accounting

    def identity(self) -> dict[str, Any]:
        schedule = {"frames": list(self.merge.merge_frames), "layers": list(self.merge.merge_layers),
                    "intra": self.merge.intra, "inter": self.merge.inter}  # fmt: skip
        return {**super().identity(), "merge": schedule}

    def rows_per_video(self, n_frames: int) -> int:
        return self.merge.frames_out(n_frames)

    @torch.inference_mode()
    def encode_video_rows(self, videos: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Per video, its (T', D) L2-normalised merged clip features; videos of equal length share a pass."""
        rows: list[np.ndarray | None] = [None] * len(videos)
        by_length: dict[int, list[int]] = {}
        for i, frames in enumerate(videos):
            by_length.setdefault(len(frames), []).append(i)
        for length, members in by_length.items():
            self.merge.frames_out(length)  # a clear error before any work when groups do not divide
            per_pass = max(1, self.batch_size // max(1, length))
            for start in range(0, len(members), per_pass):
                part = members[start : start + per_pass]
                pixels = torch.stack([self.preprocess(np.asarray(videos[i])) for i in part])
                with self._autocast():
                    features = merged_clip_features(self.model.visual, pixels, self.merge, self.stats)
                features = F.normalize(features.float(), dim=-1).cpu().numpy()
                for i, feature in zip(part, features, strict=True):
                    rows[i] = feature
        return [r for r in rows if r is not None]
