"""Inputs of moment retrieval: per-clip video features and per-token query features.

A video is cut into clips of ``clip_len`` seconds (2 s for QVHighlights, 1 s for Charades-STA, the
profile's setting for the sample world); each clip is represented by the mean CLIP feature of
``frames_per_clip`` frames at the centres of equal parts of the clip, decoded in one pass with
:func:`vtr.video.sample_frames` (frame-exact). Features are cached under
``<data_dir>/cache/moments`` keyed by the video's content, the encoder and these settings.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vtr import video
from vtr.atomic import atomic_path
from vtr.keys import run_key
from vtr.models.encoders import Encoder, l2_normalize


class VideoTooShortError(ValueError):
    """A video shorter than one clip: it has nothing to retrieve from."""


@dataclass
class VideoFeatures:
    """Per-clip features of one video: clip ``i`` covers ``[i * clip_len, (i + 1) * clip_len)``."""

    path: str
    clips: np.ndarray  # float32 [n_clips, D], L2-normalised
    clip_len: float
    duration: float

    @property
    def n_clips(self) -> int:
        return int(self.clips.shape[0])

    def clip_windows(self) -> np.ndarray:
        """[n_clips, 2] start and end seconds of each clip (the last one ends at the duration)."""
        starts = np.arange(self.n_clips) * self.clip_len
        return np.stack([starts, np.minimum(starts + self.clip_len, self.duration)], axis=1)


@dataclass
class QueryFeatures:
    """A query's token features [L, D] (``mask`` marks real tokens) and its pooled feature [D]."""

    text: str
    tokens: torch.Tensor
    mask: torch.Tensor
    pooled: torch.Tensor
    truncated: bool = False


def n_clips_for(duration: float, clip_len: float) -> int:
    """Clips of ``clip_len`` seconds in ``duration`` seconds; a last partial clip counts when it is at
    least half a clip long (so a 150 s video has 75 two-second clips, as QVHighlights has)."""
    if clip_len <= 0:
        raise ValueError(f"clip_len must be > 0, got {clip_len}")
    full, rest = divmod(duration, clip_len)
    return int(full) + (1 if rest >= clip_len / 2 else 0)


def video_clip_features(
    encoder: Encoder,
    path: str | Path,
    clip_len: float,
    *,
    frames_per_clip: int = 1,
    size: int | None = None,
    cache_dir: Path | None = None,
) -> VideoFeatures:
    """Per-clip features of ``path`` (see the module docstring); raises :class:`VideoTooShortError`."""
    path = Path(path)
    info = video.probe(path)
    n_clips = n_clips_for(info.duration, clip_len)
    if n_clips < 1:
        raise VideoTooShortError(f"{path}: {info.duration:.2f} s is shorter than one {clip_len:g} s clip")
    size = size or max(encoder.image_size)
    target = None
    if cache_dir is not None:
        key = run_key(video.content_fingerprint(path), encoder.identity(), clip_len, frames_per_clip, size)
        target = Path(cache_dir) / f"{key}.npy"
        if target.is_file():
            return VideoFeatures(str(path), np.load(target), clip_len, info.duration)
    # Uniform sampling of n_clips * k frames over the clips' span takes k frames per clip, centred.
    frames = video.sample_frames(
        path, n_clips * frames_per_clip, "uniform", size=size, start=0.0, end=n_clips * clip_len
    )
    per_frame = encoder.encode_frames(frames)
    clips = l2_normalize(per_frame.reshape(n_clips, frames_per_clip, -1).mean(axis=1)).astype(np.float32)
    if target is not None:
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(target) as tmp, tmp.open("wb") as f:
            np.save(f, clips)
    return VideoFeatures(str(path), clips, clip_len, info.duration)


def query_features(encoder: Encoder, text: str) -> QueryFeatures:
    """Token features of ``text`` from the encoder's text tower (projected to the joint space) and its
    pooled, L2-normalised feature. A query longer than the tokenizer's context is truncated with a
    warning, as the tokenizer would silently do."""
    if not text.strip():
        raise ValueError("the query is empty")
    model = encoder.model
    tokens = encoder.tokenizer([text]).to(encoder.device)
    context = tokens.shape[1]
    truncated = _token_count(encoder, text) > context
    if truncated:
        warnings.warn(
            f"query of {_token_count(encoder, text)} tokens truncated to the text tower's {context}: {text[:60]!r}",
            stacklevel=2,
        )
    with torch.no_grad():
        per_token = _text_tokens(model, tokens)[0]
        pooled = torch.as_tensor(encoder.encode_text([text]), device=per_token.device)[0]
    mask = tokens[0] != 0
    return QueryFeatures(text, per_token[mask].float(), mask[mask], pooled.float(), truncated)


def _token_count(encoder: Encoder, text: str) -> int:
    """Tokens of ``text`` including start and end, without the context's truncation."""
    tokenizer = encoder.tokenizer
    inner = getattr(tokenizer, "encode", None)
    if inner is None:
        return 0  # a tokenizer that cannot say; no warning rather than a wrong one
    return len(inner(text)) + 2


def _text_tokens(model: torch.nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    """Per-token outputs of an open_clip CLIP text tower, projected like its pooled output: [B, L, D]."""
    cast = model.transformer.get_cast_dtype()
    x = model.token_embedding(tokens).to(cast) + model.positional_embedding.to(cast)
    x = model.transformer(x, attn_mask=model.attn_mask)
    x = model.ln_final(x)
    projection = model.text_projection
    if projection is None:
        return x
    return projection(x) if isinstance(projection, torch.nn.Module) else x @ projection


def clip_labels(windows: list[tuple[float, float]], n_clips: int, clip_len: float) -> np.ndarray:
    """1.0 for clips whose centre lies inside any window, else 0.0 ([n_clips] float32)."""
    centres = (np.arange(n_clips) + 0.5) * clip_len
    labels = np.zeros(n_clips, dtype=np.float32)
    for start, end in windows:
        labels[(centres >= start) & (centres < end)] = 1.0
    return labels
