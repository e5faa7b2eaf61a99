"""Scoring a retrieval system: every number the notebooks report, in one call.

``evaluate_retrieval`` turns L2-normalised text and video embeddings into the standard metrics
(:mod:`vtr.metrics`): R@K / MedR / MeanR in both directions with bootstrap intervals, the
dual-softmax variant reported separately, seed 003's scores (alignment loss, cosine top-1,
cosine gap) and, where clips come in hard pairs, the pair accuracy, so that every notebook
computes them the same way. ``metrics_from_ranks`` builds the same dict from ranks computed elsewhere
(:func:`vtr.finetune.evaluate`: pair scorers re-rank each query's shortlist, so no one similarity
matrix gives the ranks).

Intervals resample the independent unit: the clip with all its captions, or the hard-pair group
(both clips of a pair and all their captions) when the clips' records name one
(:func:`hard_pairs` reads ``meta["pair_group"]`` / ``meta["pair_partner"]``, as the sample world's
manifest records them). v2t uses the CLIP4Clip rule unless told otherwise (:data:`vtr.metrics.V2T_RULES`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from vtr import metrics as M


class HardPairs(NamedTuple):
    """Per video: its cluster label (the hard-pair group, else the video itself) and its partner's
    index (-1 for none)."""

    clusters: np.ndarray
    partner: np.ndarray

    @property
    def any(self) -> bool:
        return bool((self.partner >= 0).any())


def hard_pairs(ids: Sequence[str], metas: Sequence[Mapping[str, Any]]) -> HardPairs:
    """The hard pairs among videos ``ids`` from their records' ``meta`` (``pair_group``, ``pair_partner``).

    A partner that is not among ``ids`` (e.g. it failed to decode) leaves its clip unpaired; the clip keeps
    its group label, so the cluster structure does not depend on what decoded.
    """
    index = {vid: i for i, vid in enumerate(ids)}
    clusters = np.array(
        [str(m.get("pair_group") or f"clip:{vid}") for vid, m in zip(ids, metas, strict=True)]
    )
    partner = np.array([index.get(m.get("pair_partner") or "", -1) for m in metas], dtype=np.int64)
    return HardPairs(clusters, partner)


def pair_metrics(outcomes: np.ndarray, prefix: str = "") -> dict[str, float]:
    """``pair_acc``, ``pair_acc_lo``, ``pair_acc_hi`` (percent, exact interval) and ``pair_n``."""
    acc = M.pair_accuracy(outcomes)
    return {f"{prefix}pair_acc": acc.accuracy, f"{prefix}pair_acc_lo": acc.low,
            f"{prefix}pair_acc_hi": acc.high, f"{prefix}pair_n": float(acc.n)}  # fmt: skip


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
    pairs: HardPairs | None = None,
    v2t_rule: str = M.DEFAULT_V2T_RULE,
    ci_metrics: Sequence[str] = ("R@1", "R@5", "R@10"),
) -> dict[str, float]:
    """All retrieval metrics for captions ``text_emb`` (Q, D) against videos ``video_emb`` (N, D).

    Keys: ``t2v_R@1`` … ``v2t_MeanR`` and the ``_lo`` / ``_hi`` 95% bootstrap bounds of the metrics in
    ``ci_metrics`` (R@1/5/10 unless told, e.g. ``("R@1", "R@5", "R@10", "MedR", "MeanR")``; resampling
    videos with their captions, or the groups of ``pairs``); ``dsl_*`` (dual softmax, only
    when ``dsl``); ``alignment_loss`` (symmetric InfoNCE at ``temperature`` on each video's first
    caption); ``cosine_top1``; ``cosine_gap``; with hard pairs, ``pair_acc`` (+ ``_lo``/``_hi``/``pair_n``,
    see :func:`vtr.metrics.pair_outcomes`).
    """
    owners = np.asarray(caption_to_video)
    sim = np.asarray(text_emb, dtype=np.float32) @ np.asarray(video_emb, dtype=np.float32).T
    out: dict[str, float] = dict(M.retrieval_metrics(sim, owners, v2t_rule=v2t_rule))
    clusters = pairs.clusters if pairs is not None else None
    cis = M.retrieval_cis(sim, owners, ci_metrics, n_boot=n_boot, seed=seed, video_clusters=clusters,
                          v2t_rule=v2t_rule)  # fmt: skip
    for key, (low, high) in cis.items():
        out[f"{key}_lo"], out[f"{key}_hi"] = low, high
    if dsl:
        out.update(M.dsl_retrieval_metrics(sim, owners, v2t_rule=v2t_rule))
    out["alignment_loss"] = M.info_nce_loss(sim[first_caption_index(owners)], temperature)
    out["cosine_top1"] = M.cosine_top1_accuracy(sim, owners)
    out["cosine_gap"] = M.cosine_gap(sim, owners)
    if pairs is not None and pairs.any:
        out.update(pair_metrics(M.pair_outcomes(sim, owners, pairs.partner)))
    return out


def metrics_from_ranks(
    t2v_ranks: np.ndarray,
    v2t_ranks: np.ndarray,
    *,
    t2v_clusters: np.ndarray | None = None,
    v2t_clusters: np.ndarray | None = None,
    square: np.ndarray | None = None,
    temperature: float = 0.07,
    pair_outcomes: np.ndarray | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    ks: Sequence[int] = (1, 5, 10),
    ci_metrics: Sequence[str] = ("R@1", "R@5", "R@10"),
) -> dict[str, float]:
    """The metrics of a system whose ranks were computed elsewhere (a re-ranking pair scorer, where no
    single embedding similarity gives them): the same keys as :func:`evaluate_retrieval` without DSL.

    ``t2v_*`` / ``v2t_*`` R@K / MedR / MeanR of the ranks, with the ``_lo`` / ``_hi`` bootstrap bounds of
    ``ci_metrics`` resampling ``t2v_clusters`` (the unit of each caption) and ``v2t_clusters`` (of each
    video); with ``square`` (each video's first caption scored against every video) ``alignment_loss``
    (symmetric InfoNCE at ``temperature``) and ``cosine_gap``; with non-empty ``pair_outcomes`` the pair
    accuracy (:func:`pair_metrics`).
    """
    out: dict[str, float] = {}
    for direction, ranks, clusters in (("t2v", t2v_ranks, t2v_clusters), ("v2t", v2t_ranks, v2t_clusters)):
        for name, value in M.recall_metrics(ranks, ks).items():
            out[f"{direction}_{name}"] = value
        for name in ci_metrics:
            low, high = M.bootstrap_ci(ranks, name, n_boot=n_boot, seed=seed, clusters=clusters)
            out[f"{direction}_{name}_lo"], out[f"{direction}_{name}_hi"] = low, high
    if square is not None:
        out["alignment_loss"] = M.info_nce_loss(square, temperature)
        out["cosine_gap"] = M.cosine_gap(square)
    if pair_outcomes is not None and pair_outcomes.size:
        out.update(pair_metrics(pair_outcomes))
    return out
