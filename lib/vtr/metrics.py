"""Retrieval metrics for video-language models: ranks, R@K / MedR / MeanR, breakdowns, confidence intervals.

Conventions used throughout:

* ``sim`` has shape ``(n_captions, n_videos)``: rows are captions, columns are videos, larger is more similar.
* ``caption_to_video`` (``(n_captions,)`` ints) names the video each caption describes. MSR-VTT's full
  protocol has 20 captions per video; the 1k-A protocol is 1:1 (``caption_to_video = arange(n)``), which is
  also the default wherever the argument is optional.
* Text-to-video (t2v): every caption is a query and its video is the single correct item.
  Video-to-text (v2t): every video is a query and any of its captions is correct; the video's rank is the
  best rank among its captions (the standard multi-caption rule).
* Ranks start at 1 and ties are broken **pessimistically**: ``rank = 1 + number of wrong items scored >= the
  positive``. For v2t the wrong items are the captions of the other videos. Optimistic tie-breaking (or
  ``argsort`` order, which depends on memory layout) would let a degenerate model that outputs a constant
  score get R@1 = 100; with the pessimistic rule it gets the worst possible rank, as it should.

Inputs may be numpy arrays, lists or torch tensors (detached and moved to the CPU here; torch is not imported).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from scipy.special import log_softmax, softmax

DEFAULT_KS: tuple[int, ...] = (1, 5, 10, 50)
DIRECTIONS: tuple[str, ...] = ("t2v", "v2t")

# Rows of ``sim`` handled per step when counting; bounds the temporary boolean matrix to ~32 MB.
_CHUNK_ELEMENTS = 1 << 25

MetricFn = Callable[[np.ndarray], np.ndarray]


# --------------------------------------------------------------------------- input checking


def _to_numpy(array: Any) -> np.ndarray:
    """``np.asarray`` that also accepts torch tensors on any device, with gradients, in half precision."""
    if hasattr(array, "detach"):
        array = array.detach().cpu()
        if array.is_floating_point() and array.element_size() < 4:
            array = array.float()  # numpy has no bfloat16
        array = array.numpy()
    return np.asarray(array)


def _check_sim(sim: Any) -> np.ndarray:
    sim = _to_numpy(sim)
    if sim.ndim != 2 or 0 in sim.shape:
        raise ValueError(f"sim must be a non-empty 2-D (n_captions, n_videos) matrix, got shape {sim.shape}")
    if not np.issubdtype(sim.dtype, np.floating):
        sim = sim.astype(np.float64)
    elif sim.dtype.itemsize < 4:
        sim = sim.astype(np.float32)
    if not np.isfinite(sim).all():
        bad = np.argwhere(~np.isfinite(sim))[0]
        raise ValueError(f"sim has a non-finite value (first at row {bad[0]}, column {bad[1]})")
    return sim


def _check_caption_to_video(caption_to_video: Any, sim: np.ndarray) -> np.ndarray:
    n_captions, n_videos = sim.shape
    if caption_to_video is None:
        if n_captions != n_videos:
            raise ValueError(f"caption_to_video is required when sim is not square (shape {sim.shape})")
        return np.arange(n_captions)
    c2v = _to_numpy(caption_to_video)
    if c2v.shape != (n_captions,):
        raise ValueError(f"caption_to_video must have shape ({n_captions},) to match sim, got {c2v.shape}")
    if not np.issubdtype(c2v.dtype, np.integer):
        raise ValueError(f"caption_to_video must hold integer video indices, got dtype {c2v.dtype}")
    out_of_range = (c2v < 0) | (c2v >= n_videos)
    if out_of_range.any():
        i = int(np.flatnonzero(out_of_range)[0])
        raise ValueError(f"caption_to_video[{i}] = {c2v[i]} is not a video index in [0, {n_videos})")
    return c2v.astype(np.intp)


def _chunk_rows(n_cols: int) -> int:
    """Rows per step so that a temporary (rows, n_cols) array stays near ``_CHUNK_ELEMENTS`` elements."""
    return max(1, _CHUNK_ELEMENTS // max(n_cols, 1))


# --------------------------------------------------------------------------- ranks


def t2v_ranks(sim: Any, caption_to_video: Any = None) -> np.ndarray:
    """Rank (1 = best) of each caption's own video among all videos; shape ``(n_captions,)``.

    ``rank = 1 + #{other videos scored >= the own video}`` (pessimistic ties: an all-equal row ranks last).
    """
    sim = _check_sim(sim)
    c2v = _check_caption_to_video(caption_to_video, sim)
    positive = sim[np.arange(len(c2v)), c2v]
    ranks = np.empty(len(c2v), dtype=np.int64)
    step = _chunk_rows(sim.shape[1])
    for start in range(0, len(c2v), step):
        rows = slice(start, start + step)
        # Counting ">=" includes the positive itself, which supplies the "1 +".
        ranks[rows] = (sim[rows] >= positive[rows, None]).sum(axis=1)
    return ranks


def v2t_ranks(sim: Any, caption_to_video: Any = None) -> np.ndarray:
    """Rank (1 = best) of each video's best caption among all captions; shape ``(n_videos,)``.

    For one caption c of video v the rank is ``1 + #{captions of other videos scored >= sim[c, v]}``; the
    video's rank is the minimum over its captions, i.e. the count taken at its best caption's score.
    Captions of the same video never count against each other. Every video needs at least one caption.
    """
    sim = _check_sim(sim)
    c2v = _check_caption_to_video(caption_to_video, sim)
    n_captions, n_videos = sim.shape
    captionless = np.flatnonzero(np.bincount(c2v, minlength=n_videos) == 0)
    if captionless.size:
        raise ValueError(
            f"v2t ranks need a caption for every video; videos {captionless[:10].tolist()} have none "
            f"({captionless.size} in all)"
        )
    best_positive = np.full(n_videos, -np.inf, dtype=sim.dtype)
    np.maximum.at(best_positive, c2v, sim[np.arange(n_captions), c2v])
    wrong_at_least_as_good = np.zeros(n_videos, dtype=np.int64)
    step = _chunk_rows(n_videos)
    for start in range(0, n_captions, step):
        block = sim[start : start + step] >= best_positive[None, :]
        own = c2v[start : start + step]
        block[np.arange(len(own)), own] = False  # a video's own captions are not wrong items
        wrong_at_least_as_good += block.sum(axis=0)
    return 1 + wrong_at_least_as_good


# --------------------------------------------------------------------------- summary metrics


def recall_metrics(ranks: Any, ks: Sequence[int] = DEFAULT_KS) -> dict[str, float]:
    """``{"R@K": percent of queries with rank <= K, ..., "MedR": median rank, "MeanR": mean rank}``."""
    ranks = _to_numpy(ranks)
    if ranks.ndim != 1 or ranks.size == 0:
        raise ValueError(f"ranks must be a non-empty 1-D array, got shape {ranks.shape}")
    if (ranks < 1).any():
        raise ValueError(f"ranks start at 1; got a minimum of {ranks.min()}")
    metrics = {f"R@{k}": float(100.0 * np.mean(ranks <= k)) for k in ks}
    metrics["MedR"] = float(np.median(ranks))
    metrics["MeanR"] = float(np.mean(ranks))
    return metrics


def retrieval_metrics(
    sim: Any, caption_to_video: Any = None, ks: Sequence[int] = DEFAULT_KS
) -> dict[str, float]:
    """t2v and v2t metrics with prefixed keys: ``t2v_R@1``, ..., ``t2v_MeanR``, ``v2t_R@1``, ..., ``v2t_MeanR``."""
    sim = _check_sim(sim)
    ranks = {"t2v": t2v_ranks(sim, caption_to_video), "v2t": v2t_ranks(sim, caption_to_video)}
    return {f"{d}_{name}": value for d, r in ranks.items() for name, value in recall_metrics(r, ks).items()}


# --------------------------------------------------------------------------- dual softmax (DSL) re-scoring


def dual_softmax(sim: Any, temperature: float = 0.01, direction: str = "t2v") -> np.ndarray:
    """Dual-softmax re-scoring (Cheng et al. 2021, CAMoE/DSL, arXiv:2109.04290): ``sim * softmax(sim / T)``
    taken over the *other* axis than the one being ranked.

    For t2v (each caption ranks the videos along its row) the prior is a softmax over the captions of each
    video column (``axis=0``); for v2t it is a softmax over the videos of each caption row (``axis=1``).
    The prior shrinks "hub" videos (or captions) that score well against many queries, so a pair wins when it
    is a good match in both directions. ``temperature`` applies to the raw ``sim``: with cosine similarities,
    0.01 equals CLIP's logit scale of 100. The CAMoE reference code applies it to already logit-scaled
    similarities, so its ``temp`` is not on the same scale.

    DSL uses every query in the test set at once (transductive), so report it separately from the main numbers.
    """
    sim = _check_sim(sim)
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    prior_axis = 0 if direction == "t2v" else 1
    # float64: in float32 the prior underflows to exactly 0 once scores differ by ~100 / temperature units,
    # which would turn many candidates into ties (and pessimistic ties would then punish the positive).
    return sim * softmax(sim.astype(np.float64) / temperature, axis=prior_axis)


def dsl_retrieval_metrics(
    sim: Any, caption_to_video: Any = None, temperature: float = 0.01, ks: Sequence[int] = DEFAULT_KS
) -> dict[str, float]:
    """Like :func:`retrieval_metrics` after :func:`dual_softmax` re-scoring, keys prefixed ``dsl_``."""
    sim = _check_sim(sim)
    t2v = t2v_ranks(dual_softmax(sim, temperature, "t2v"), caption_to_video)
    v2t = v2t_ranks(dual_softmax(sim, temperature, "v2t"), caption_to_video)
    return {
        f"dsl_{d}_{name}": value
        for d, r in (("t2v", t2v), ("v2t", v2t))
        for name, value in recall_metrics(r, ks).items()
    }


# --------------------------------------------------------------------------- breakdowns


def breakdown(ranks: Any, labels: Any, ks: Sequence[int] = (1, 5, 10)) -> pd.DataFrame:
    """Metrics per group of queries (category, query-length bucket, ...): one row per label, with ``n``.

    Rows follow the label order: category order for a ``pd.Categorical`` (as returned by
    :func:`query_length_bucket`), sorted order otherwise. Empty categories are left out.
    """
    ranks = _to_numpy(ranks)
    labels_series = pd.Series(labels)
    if len(labels_series) != len(ranks):
        raise ValueError(f"labels has {len(labels_series)} entries but ranks has {len(ranks)}")
    rows = {
        group: {"n": len(idx), **recall_metrics(ranks[np.asarray(idx)], ks)}
        for group, idx in labels_series.groupby(labels_series, observed=True, sort=True).indices.items()
    }
    order = (
        [c for c in labels_series.cat.categories if c in rows]
        if isinstance(labels_series.dtype, pd.CategoricalDtype)
        else sorted(rows)
    )
    table = pd.DataFrame.from_dict({g: rows[g] for g in order}, orient="index")
    table.index.name = labels_series.name or "group"
    table["n"] = table["n"].astype(int)
    return table


def query_length_bucket(captions: Sequence[str], edges: Sequence[int] = (10, 20)) -> pd.Categorical:
    """Bucket captions by word count: with ``edges=(10, 20)`` → "1–10", "11–20", "21+" (ordered categorical).

    Words are whitespace-separated tokens. An empty caption is an error (it names the index), since it
    cannot be a query.
    """
    if list(edges) != sorted(set(edges)) or not edges or edges[0] < 1:
        raise ValueError(f"edges must be strictly increasing positive word counts, got {edges}")
    lows = [1, *(e + 1 for e in edges)]
    names = [f"{lo}–{hi}" for lo, hi in zip(lows, edges, strict=False)] + [f"{lows[-1]}+"]
    counts = np.array([len(str(c).split()) for c in captions], dtype=np.int64)
    if (counts == 0).any():
        raise ValueError(f"caption {int(np.flatnonzero(counts == 0)[0])} is empty; cannot bucket its length")
    codes = np.searchsorted(np.asarray(edges), counts, side="left")
    return pd.Categorical.from_codes(codes, categories=names, ordered=True)


# --------------------------------------------------------------------------- bootstrap


def metric_function(name: str) -> MetricFn:
    """A vectorised metric over the last axis of a rank array: ``"R@K"`` (percent), ``"MedR"`` or ``"MeanR"``."""
    if name == "MedR":
        return lambda r: np.median(r, axis=-1)
    if name == "MeanR":
        return lambda r: np.mean(r, axis=-1)
    if name.startswith("R@") and name[2:].isdigit():
        k = int(name[2:])
        return lambda r: 100.0 * np.mean(r <= k, axis=-1)
    raise ValueError(f"unknown metric {name!r}; use 'R@K', 'MedR' or 'MeanR'")


def _bootstrap_stats(
    rank_arrays: Sequence[np.ndarray], metric_fn: MetricFn | str, n_boot: int, seed: int
) -> list[np.ndarray]:
    """``metric_fn`` on ``n_boot`` resamples (with replacement) of the queries, the same resamples for every
    array in ``rank_arrays`` (so differences are paired). Resamples are drawn in blocks to bound memory."""
    fn = metric_function(metric_fn) if isinstance(metric_fn, str) else metric_fn
    n = len(rank_arrays[0])
    if n == 0:
        raise ValueError("cannot bootstrap an empty set of queries")
    if n_boot < 1:
        raise ValueError(f"n_boot must be at least 1, got {n_boot}")
    rng = np.random.default_rng(seed)
    block = max(1, _CHUNK_ELEMENTS // 4 // n)
    stats: list[list[np.ndarray]] = [[] for _ in rank_arrays]
    for start in range(0, n_boot, block):
        size = min(block, n_boot - start)
        idx = rng.integers(0, n, size=(size, n))
        for out, ranks in zip(stats, rank_arrays, strict=True):
            value = np.asarray(fn(ranks[idx]), dtype=np.float64)
            if value.shape != (size,):
                raise TypeError(
                    "metric_fn must reduce the last axis of a (n_boot, n_queries) array to shape (n_boot,); "
                    f"got shape {value.shape}. Use metric_function('R@1') or write it with axis=-1."
                )
            out.append(value)
    return [np.concatenate(s) for s in stats]


def bootstrap_ci(
    ranks: Any, metric_fn: MetricFn | str, n_boot: int = 1000, seed: int = 0, alpha: float = 0.05
) -> tuple[float, float]:
    """Percentile bootstrap ``(low, high)`` interval (``1 - alpha`` coverage) of a metric, resampling queries.

    ``metric_fn`` is a metric name (see :func:`metric_function`) or a function reducing the last axis.
    """
    (stats,) = _bootstrap_stats([_to_numpy(ranks)], metric_fn, n_boot, seed)
    low, high = np.quantile(stats, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)


class PairedDiff(NamedTuple):
    """``metric(b) - metric(a)`` on the same queries, with its bootstrap interval."""

    diff: float
    low: float
    high: float

    @property
    def significant(self) -> bool:
        """True when the interval excludes 0 (the only case later notebooks call a gain or a loss)."""
        return self.low > 0 or self.high < 0


def paired_bootstrap_diff(
    ranks_a: Any,
    ranks_b: Any,
    metric_fn: MetricFn | str = "R@1",
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> PairedDiff:
    """Paired bootstrap of ``metric(ranks_b) - metric(ranks_a)``: both systems see the same resampled queries,
    which cancels the between-query variance the two systems share."""
    a, b = _to_numpy(ranks_a), _to_numpy(ranks_b)
    if a.shape != b.shape:
        raise ValueError(f"paired ranks must have the same shape (same queries), got {a.shape} and {b.shape}")
    fn = metric_function(metric_fn) if isinstance(metric_fn, str) else metric_fn
    stats_a, stats_b = _bootstrap_stats([a, b], fn, n_boot, seed)
    low, high = np.quantile(stats_b - stats_a, [alpha / 2, 1 - alpha / 2])
    diff = float(np.asarray(fn(b[None, :]))[0] - np.asarray(fn(a[None, :]))[0])
    return PairedDiff(diff, float(low), float(high))


def retrieval_cis(
    sim: Any,
    caption_to_video: Any = None,
    names: Sequence[str] = ("R@1", "R@5", "R@10"),
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> dict[str, tuple[float, float]]:
    """Bootstrap intervals keyed like :func:`retrieval_metrics` (``{"t2v_R@1": (low, high), ...}``)."""
    sim = _check_sim(sim)
    ranks = {"t2v": t2v_ranks(sim, caption_to_video), "v2t": v2t_ranks(sim, caption_to_video)}
    return {
        f"{d}_{name}": bootstrap_ci(r, name, n_boot=n_boot, seed=seed, alpha=alpha)
        for d, r in ranks.items()
        for name in names
    }


# --------------------------------------------------------------------------- alignment scores (seed 003)


def _check_square(sim: Any) -> np.ndarray:
    sim = _check_sim(sim)
    if sim.shape[0] != sim.shape[1]:
        raise ValueError(f"a paired (square) similarity matrix is required, got shape {sim.shape}")
    return sim


def info_nce_loss(sim: Any, temperature: float = 0.07) -> float:
    """Symmetric InfoNCE on a paired square ``sim`` (caption i ↔ video i): the mean of the text→video and
    video→text cross-entropies of ``sim / temperature`` with the diagonal as targets (stable log-softmax).

    Its value depends on the pool size (it is at most log(n) for an uninformative model) and on the
    temperature, so compare it only between runs with the same pool and temperature.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    logits = _check_square(sim).astype(np.float64) / temperature
    t2v = -np.diagonal(log_softmax(logits, axis=1)).mean()
    v2t = -np.diagonal(log_softmax(logits, axis=0)).mean()
    return float((t2v + v2t) / 2)


def cosine_top1_accuracy(sim: Any, caption_to_video: Any = None) -> float:
    """Fraction (0–1) of videos whose most similar caption in the pool is one of their own.

    This is v2t R@1 / 100 with the same pessimistic ties: a video whose own caption only ties with another
    video's caption does not count. See the README for how this relates to seed 003's "Cosine Similarity
    Top-1".
    """
    return float(np.mean(v2t_ranks(sim, caption_to_video) == 1))


def cosine_gap(sim: Any, caption_to_video: Any = None, direction: str = "both") -> float:
    """Mean positive similarity minus mean hardest-negative similarity, over queries.

    * ``"t2v"``: one term per caption (row): its own video's score minus the best score among other videos.
    * ``"v2t"``: one term per video (column): its best own caption's score minus the best score among the
      captions of other videos (the same best-caption rule as :func:`v2t_ranks`).
    * ``"both"`` (default): the mean of the two.

    A query's term is > 0 exactly when its pessimistic rank is 1, so the gap is the margin behind R@1.
    Use cosine similarities (L2-normalised embeddings) for it to be a *cosine* gap.
    """
    sim = _check_sim(sim)
    c2v = _check_caption_to_video(caption_to_video, sim)
    if direction not in (*DIRECTIONS, "both"):
        raise ValueError(f"direction must be 't2v', 'v2t' or 'both', got {direction!r}")
    if sim.shape[1] < 2:
        raise ValueError("the cosine gap needs at least two videos (a negative must exist)")
    positive = sim[np.arange(len(c2v)), c2v]
    row_hardest, column_hardest = _hardest_negatives(sim, c2v)
    gaps = {"t2v": float(np.mean(positive - row_hardest))}
    if direction != "t2v":
        best_positive = np.full(sim.shape[1], -np.inf)
        np.maximum.at(best_positive, c2v, positive)
        if not (np.isfinite(best_positive).all() and np.isfinite(column_hardest).all()):
            raise ValueError(
                "the v2t cosine gap needs every video to have an own caption and another's caption"
            )
        gaps["v2t"] = float(np.mean(best_positive - column_hardest))
    if direction == "both":
        return (gaps["t2v"] + gaps["v2t"]) / 2
    return gaps[direction]


def _hardest_negatives(sim: np.ndarray, c2v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per caption, the best score among other videos; per video, the best score among other videos'
    captions. Computed in row blocks so a 60k x 1k matrix needs no full-size copy."""
    row_hardest = np.empty(sim.shape[0], dtype=np.float64)
    column_hardest = np.full(sim.shape[1], -np.inf)
    step = _chunk_rows(sim.shape[1])
    for start in range(0, sim.shape[0], step):
        block = sim[start : start + step].astype(np.float64)
        own = c2v[start : start + step]
        block[np.arange(len(own)), own] = -np.inf
        row_hardest[start : start + len(own)] = block.max(axis=1)
        np.maximum(column_hardest, block.max(axis=0), out=column_hardest)
    return row_hardest, column_hardest


# --------------------------------------------------------------------------- presentation


def metrics_table(
    metrics: dict[str, float],
    cis: dict[str, tuple[float, float]] | None = None,
    columns: Sequence[str] = ("R@1", "R@5", "R@10", "MedR", "MeanR"),
    prefix: str = "",
    digits: int = 1,
) -> pd.DataFrame:
    """Tidy table from a :func:`retrieval_metrics`-style dict: rows t2v / v2t, columns R@1 R@5 R@10 MedR MeanR.

    With ``cis`` (e.g. from :func:`retrieval_cis`), each metric that has an interval gets a text column
    ``"R@1 [lo, hi]"`` right after it. ``prefix`` selects e.g. the ``"dsl_"`` keys. Directions missing from
    ``metrics`` are left out; a missing metric is NaN.
    """
    records: dict[str, dict[str, Any]] = {}
    for d in DIRECTIONS:
        if not any(key.startswith(f"{prefix}{d}_") for key in metrics):
            continue
        row: dict[str, Any] = {}
        for name in columns:
            key = f"{prefix}{d}_{name}"
            row[name] = round(float(metrics.get(key, np.nan)), digits)
            if cis is not None and key in cis:
                low, high = cis[key]
                row[f"{name} [lo, hi]"] = f"[{low:.{digits}f}, {high:.{digits}f}]"
        records[d] = row
    table = pd.DataFrame.from_dict(records, orient="index")
    table.index.name = "direction"
    return table
