"""Scoring a retrieval system from its embeddings: every number the notebooks report, in one call.

``evaluate_retrieval`` turns L2-normalised text and video embeddings into the standard metrics
(:mod:`vtr.metrics`): R@K / MedR / MeanR in both directions with bootstrap intervals, the
dual-softmax variant reported separately, and seed 003's scores (alignment loss, cosine top-1,
cosine gap), so that every notebook computes them the same way.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from vtr import metrics as M


def first_caption_index(caption_to_video: Sequence[int]) -> np.ndarray:
    """Index of each video's first caption: the square, one-caption-per-video view seed 003 scores."""
    owners = np.asarray(caption_to_video)
    n_videos = int(owners.max()) + 1
    first = np.full(n_videos, -1)
    for i in range(len(owners) - 1, -1, -1):
        first[owners[i]] = i
    if (first < 0).any():
        raise ValueError(f"videos without a caption: {np.flatnonzero(first < 0)[:5].tolist()}")
    return first


def evaluate_retrieval(
    text_emb: np.ndarray,
    video_emb: np.ndarray,
    caption_to_video: Sequence[int],
    *,
    temperature: float = 0.07,
    n_boot: int = 1000,
    seed: int = 0,
    dsl: bool = True,
) -> dict[str, float]:
    """All retrieval metrics for captions ``text_emb`` (Q, D) against videos ``video_emb`` (N, D).

    Keys: ``t2v_R@1`` … ``v2t_MeanR`` and their ``_lo`` / ``_hi`` 95% bootstrap bounds for R@1/5/10;
    ``dsl_*`` (dual softmax, only when ``dsl``); ``alignment_loss`` (symmetric InfoNCE at
    ``temperature`` on each video's first caption); ``cosine_top1``; ``cosine_gap``.
    """
    owners = np.asarray(caption_to_video)
    sim = np.asarray(text_emb, dtype=np.float32) @ np.asarray(video_emb, dtype=np.float32).T
    out: dict[str, float] = dict(M.retrieval_metrics(sim, owners))
    for key, (low, high) in M.retrieval_cis(sim, owners, n_boot=n_boot, seed=seed).items():
        out[f"{key}_lo"], out[f"{key}_hi"] = low, high
    if dsl:
        out.update(M.dsl_retrieval_metrics(sim, owners))
    out["alignment_loss"] = M.info_nce_loss(sim[first_caption_index(owners)], temperature)
    out["cosine_top1"] = M.cosine_top1_accuracy(sim, owners)
    out["cosine_gap"] = M.cosine_gap(sim, owners)
    return out
