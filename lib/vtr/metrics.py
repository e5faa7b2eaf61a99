"""Retrieval metrics for video-language models: ranks, R@K / MedR / MeanR, breakdowns, confidence intervals.

Conventions used throughout:

* ``sim`` has shape ``(n_captions, n_videos)``: rows are captions, columns are videos, larger is more similar.
* ``caption_to_video`` (``(n_captions,)`` ints) names the video each caption describes. MSR-VTT's full
  protocol has 20 captions per video; the 1k-A protocol is 1:1 (``caption_to_video = arange(n)``), which is
  also the default wherever the argument is optional.
* Text-to-video (t2v): every caption is a query and its video is the single correct item.
  Video-to-text (v2t): every video is a query and any of its captions is correct. With several captions per
  video two rules exist (:data:`V2T_RULES`); they agree on R@1 but not on R@5/10, MedR or MeanR:

  - ``"clip4clip"`` (default; CLIP4Clip, X-CLIP, TS2-Net): each candidate video scores the maximum over its
    captions, and the query video's own video is ranked among the videos;
  - ``"vsepp"`` (VSE++): the video's best caption is ranked among all captions, so one wrong video with
    several high captions counts several times.

  Label every multi-caption v2t table with its rule (:func:`v2t_label`).
* Ranks start at 1 and ties are broken **pessimistically**: ``rank = 1 + number of wrong items scored >= the
  positive``. For v2t the wrong items are the other videos (``"clip4clip"``) or their captions (``"vsepp"``). Optimistic tie-breaking (or
  ``argsort`` order, which depends on memory layout) would let a degenerate model that outputs a constant
  score get R@1 = 100; with the pessimistic rule it gets the worst possible rank, as it should.

Statistics (:func:`bootstrap_ci`, :func:`paired_bootstrap_diff`, :func:`holm`, :func:`pair_accuracy`,
:func:`mcnemar_exact`): the captions of one clip (or of one hard pair of clips) are not independent, and
neither are the queries of one training run. The bootstrap therefore resamples **clusters** (the clip or
hard-pair group, with all its captions) and treats **seeds as a level of their own**: ranks of several runs
come as a ``(n_seeds, n_queries)`` array, and each resample draws the clusters (shared by both systems of a
paired comparison) and, independently, the seeds with replacement (a two-level, "pigeonhole" bootstrap,
Owen 2007); a system's value is the mean over the drawn seeds of its per-seed metric. Families of
comparisons are corrected with Holm–Bonferroni (:func:`holm`).

Limits, measured by simulating null comparisons (60 clips x 5 captions; intervals excluding 0): with 3 seeds and modest run
noise (per-seed offsets of sd 0.15 and per-(seed, clip) noise of sd 0.5 on the logit scale) 2% are
called significant at the nominal 5% (resampling seed x caption ranks as independent items: 22%);
with large per-seed offsets (sd 0.4) and only 3 seeds the seed level is under-sampled and 12% are;
with one seed per system training noise is not covered at all (17%). More seeds are the remedy.

Inputs may be numpy arrays, lists or torch tensors (detached and moved to the CPU here; torch is not imported).

Image quality (:func:`psnr`, :func:`ssim`) works on torch tensors and stays differentiable, so a loss can
use it (notebook 04's HNeRV study); torch and ``pytorch_msssim`` are imported when they are first called.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import pandas as pd
from scipy.special import log_softmax, softmax
from scipy.stats import binomtest, norm

if TYPE_CHECKING:
    import torch

DEFAULT_KS: tuple[int, ...] = (1, 5, 10, 50)
DIRECTIONS: tuple[str, ...] = ("t2v", "v2t")
V2T_RULES: dict[str, str] = {
    "clip4clip": "per candidate video the max over its captions, ranked among videos",
    "vsepp": "the video's best caption ranked among all captions",
}
DEFAULT_V2T_RULE = "clip4clip"

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


def _check_v2t_rule(rule: str) -> None:
    if rule not in V2T_RULES:
        raise ValueError(f"v2t rule must be one of {sorted(V2T_RULES)}, got {rule!r}")


def v2t_ranks(sim: Any, caption_to_video: Any = None, rule: str = DEFAULT_V2T_RULE) -> np.ndarray:
    """Rank (1 = best) of each video query's own captions; shape ``(n_videos,)``. Every video needs a caption.

    * ``rule="clip4clip"`` (default): every candidate video u scores ``max_c sim[c, v]`` over its captions c;
      ``rank = 1 + #{other videos u whose score >= the own video's}``, so the rank is among videos.
    * ``rule="vsepp"``: ``rank = 1 + #{captions of other videos scored >= the best own caption}``, a rank
      among captions. Captions of the same video never count against each other.

    With one caption per video the two rules coincide; R@1 is the same under both in any case.
    """
    _check_v2t_rule(rule)
    sim = _check_sim(sim)
    c2v = _check_caption_to_video(caption_to_video, sim)
    n_captions, n_videos = sim.shape
    counts = np.bincount(c2v, minlength=n_videos)
    captionless = np.flatnonzero(counts == 0)
    if captionless.size:
        raise ValueError(
            f"v2t ranks need a caption for every video; videos {captionless[:10].tolist()} have none "
            f"({captionless.size} in all)"
        )
    best_positive = np.full(n_videos, -np.inf, dtype=sim.dtype)
    np.maximum.at(best_positive, c2v, sim[np.arange(n_captions), c2v])
    wrong_at_least_as_good = np.zeros(n_videos, dtype=np.int64)
    if rule == "clip4clip":
        order = np.argsort(c2v, kind="stable")
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        step = _chunk_rows(n_captions)  # columns per step
        for start in range(0, n_videos, step):
            cols = slice(start, start + step)
            # (candidate video, query video): the best caption of each candidate for each query column
            per_video = np.maximum.reduceat(sim[order, cols], starts, axis=0)
            block = per_video >= best_positive[None, cols]
            block[np.arange(start, start + block.shape[1]), np.arange(block.shape[1])] = False
            wrong_at_least_as_good[cols] = block.sum(axis=0)
        return 1 + wrong_at_least_as_good
    step = _chunk_rows(n_videos)
    for start in range(0, n_captions, step):
        block = sim[start : start + step] >= best_positive[None, :]
        own = c2v[start : start + step]
        block[np.arange(len(own)), own] = False  # a video's own captions are not wrong items
        wrong_at_least_as_good += block.sum(axis=0)
    return 1 + wrong_at_least_as_good


def v2t_label(caption_to_video: Any, rule: str = DEFAULT_V2T_RULE) -> str:
    """``"v2t"`` for one caption per video (the rules coincide), else ``"v2t (clip4clip rule)"`` etc."""
    _check_v2t_rule(rule)
    owners = _to_numpy(caption_to_video)
    one_each = len(owners) == len(np.unique(owners))
    return "v2t" if one_each else f"v2t ({rule} rule)"


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
    sim: Any, caption_to_video: Any = None, ks: Sequence[int] = DEFAULT_KS, v2t_rule: str = DEFAULT_V2T_RULE
) -> dict[str, float]:
    """t2v and v2t metrics with prefixed keys: ``t2v_R@1``, ..., ``t2v_MeanR``, ``v2t_R@1``, ..., ``v2t_MeanR``."""
    sim = _check_sim(sim)
    ranks = {"t2v": t2v_ranks(sim, caption_to_video), "v2t": v2t_ranks(sim, caption_to_video, v2t_rule)}
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
    sim: Any,
    caption_to_video: Any = None,
    temperature: float = 0.01,
    ks: Sequence[int] = DEFAULT_KS,
    v2t_rule: str = DEFAULT_V2T_RULE,
) -> dict[str, float]:
    """Like :func:`retrieval_metrics` after :func:`dual_softmax` re-scoring, keys prefixed ``dsl_``."""
    sim = _check_sim(sim)
    t2v = t2v_ranks(dual_softmax(sim, temperature, "t2v"), caption_to_video)
    v2t = v2t_ranks(dual_softmax(sim, temperature, "v2t"), caption_to_video, v2t_rule)
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


def _runs(ranks: Any, name: str = "ranks") -> np.ndarray:
    """Ranks as ``(n_seeds, n_queries)``: a 1-D array is one run."""
    runs = _to_numpy(ranks)
    if runs.ndim == 1:
        runs = runs[None, :]
    if runs.ndim != 2 or runs.shape[1] == 0:
        raise ValueError(
            f"{name} must be (n_queries,) or (n_seeds, n_queries) and non-empty, got {runs.shape}"
        )
    return runs


def _cluster_codes(clusters: Any, n_queries: int) -> np.ndarray:
    """Cluster labels (any hashable values) of every query as codes 0..G-1; None: each query alone."""
    if clusters is None:
        return np.arange(n_queries)
    labels = _to_numpy(clusters)
    if labels.shape != (n_queries,):
        raise ValueError(f"clusters must give one label per query ({n_queries},), got shape {labels.shape}")
    return np.unique(labels, return_inverse=True)[1].reshape(-1)


def _weighted_metric(name: str, runs: np.ndarray, codes: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Metric ``name`` of every run on every resample: ``(n_resamples, n_seeds)``.

    ``weights[b, g]`` is how often resample b drew cluster g; a query counts as often as its cluster.
    """
    metric_function(name)  # validates the name
    if name == "MedR":
        return np.stack([_weighted_median(r, weights[:, codes]) for r in runs], axis=1)
    values = runs <= int(name[2:]) if name.startswith("R@") else runs
    n_clusters = weights.shape[1]
    sums = np.stack([np.bincount(codes, weights=v.astype(np.float64), minlength=n_clusters) for v in values])
    sizes = np.bincount(codes, minlength=n_clusters).astype(np.float64)
    out = (weights @ sums.T) / (weights @ sizes)[:, None]
    return 100.0 * out if name.startswith("R@") else out


def _weighted_median(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``np.median`` of each resample, with query q repeated ``weights[b, q]`` times (integer weights)."""
    order = np.argsort(values, kind="stable")
    ordered = values[order].astype(np.float64)
    cumulative = np.cumsum(weights[:, order], axis=1)
    total = cumulative[:, -1]
    # 0-based positions of the two middle elements of the expanded sorted array
    low = (cumulative > ((total - 1) // 2)[:, None]).argmax(axis=1)
    high = (cumulative > (total // 2)[:, None]).argmax(axis=1)
    return (ordered[low] + ordered[high]) / 2


def _bootstrap_stats(
    rank_arrays: Sequence[Any],
    metric_fn: MetricFn | str,
    n_boot: int,
    seed: int,
    clusters: Any = None,
) -> list[np.ndarray]:
    """``metric_fn`` on ``n_boot`` resamples, the same resamples for every array in ``rank_arrays`` (so
    differences are paired). Each array is ``(n_queries,)`` or ``(n_seeds, n_queries)``; a resample draws
    the clusters with replacement and, for several seeds, the seeds with replacement, and a system's value
    is the mean over the drawn seeds of its per-seed metric. Resamples are drawn in blocks to bound memory.

    Named metrics are computed from cluster weights (exactly what expanding the resample would give);
    a callable (reducing the last axis of a ``(n_boot, n_queries)`` array) needs single-run, unclustered
    ranks.
    """
    runs = [_runs(r) for r in rank_arrays]
    n_seeds, n = runs[0].shape
    if any(r.shape != runs[0].shape for r in runs):
        raise ValueError(f"paired ranks must have the same shape, got {[r.shape for r in runs]}")
    if n_boot < 1:
        raise ValueError(f"n_boot must be at least 1, got {n_boot}")
    codes = _cluster_codes(clusters, n)
    n_clusters = int(codes.max()) + 1
    named = isinstance(metric_fn, str)
    if not named and (clusters is not None or n_seeds > 1):
        raise ValueError("a callable metric needs single-run ranks without clusters; pass a metric name")
    fn = metric_function(metric_fn) if named else metric_fn
    rng = np.random.default_rng(seed)
    block = max(1, _CHUNK_ELEMENTS // 4 // max(n, n_clusters))
    stats: list[list[np.ndarray]] = [[] for _ in runs]
    for start in range(0, n_boot, block):
        size = min(block, n_boot - start)
        idx = rng.integers(0, n_clusters, size=(size, n_clusters))
        seeds = rng.integers(0, n_seeds, size=(size, n_seeds)) if n_seeds > 1 else None
        if named:
            rows = np.arange(size)[:, None] * n_clusters
            weights = np.bincount((idx + rows).ravel(), minlength=size * n_clusters).reshape(size, n_clusters)
        for out, r in zip(stats, runs, strict=True):
            if named:
                per_seed = _weighted_metric(metric_fn, r, codes, weights)
                value = per_seed[:, 0] if seeds is None else np.take_along_axis(per_seed, seeds, 1).mean(1)
            else:
                value = np.asarray(fn(r[0][idx]), dtype=np.float64)
                if value.shape != (size,):
                    raise TypeError(
                        "metric_fn must reduce the last axis of a (n_boot, n_queries) array to shape "
                        f"(n_boot,); got shape {value.shape}. Use metric_function('R@1') or write it with "
                        "axis=-1."
                    )
            out.append(value)
    return [np.concatenate(s) for s in stats]


def point_estimate(ranks: Any, metric_fn: MetricFn | str) -> float:
    """The metric of single-run ranks, or the mean over seeds of the per-seed metric for ``(n_seeds, Q)``."""
    fn = metric_function(metric_fn) if isinstance(metric_fn, str) else metric_fn
    return float(np.mean(np.asarray(fn(_runs(ranks)), dtype=np.float64)))


def bootstrap_ci(
    ranks: Any,
    metric_fn: MetricFn | str,
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
    clusters: Any = None,
) -> tuple[float, float]:
    """Percentile bootstrap ``(low, high)`` interval (``1 - alpha`` coverage) of a metric.

    ``ranks`` is ``(n_queries,)`` or ``(n_seeds, n_queries)`` (see :func:`_bootstrap_stats`); ``clusters``
    gives each query's independent unit (e.g. its clip, or its hard-pair group): whole clusters are
    resampled. Without ``clusters`` every query is its own unit, which is only right when queries are
    independent (one caption per clip, no pairs). ``metric_fn`` is a metric name (see
    :func:`metric_function`) or, for single-run unclustered ranks, a function reducing the last axis.
    """
    (stats,) = _bootstrap_stats([ranks], metric_fn, n_boot, seed, clusters)
    low, high = np.quantile(stats, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)


class PairedDiff(NamedTuple):
    """``metric(b) - metric(a)`` on the same queries, with its bootstrap interval and two-sided p-value."""

    diff: float
    low: float
    high: float
    p_value: float = 1.0

    @property
    def significant(self) -> bool:
        """True when the (unadjusted) interval excludes 0; families of comparisons use :func:`holm`."""
        return self.low > 0 or self.high < 0


def paired_bootstrap_diff(
    ranks_a: Any,
    ranks_b: Any,
    metric_fn: MetricFn | str = "R@1",
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
    clusters: Any = None,
) -> PairedDiff:
    """Paired bootstrap of ``metric(ranks_b) - metric(ranks_a)``: both systems see the same resampled
    clusters (and, for ``(n_seeds, n_queries)`` ranks, the same drawn seed positions: runs are paired by
    seed), which cancels the between-query variance the two systems share.

    The two-sided p-value is the bootstrap z-test's, ``2 * (1 - Phi(|diff| / sd*))`` with ``sd*`` the
    standard deviation of the resampled differences: unlike counting resamples beyond 0, it has no floor
    at ``2 / (n_boot + 1)``, which would make a clear difference unable to survive a Holm correction over
    more than ``alpha * (n_boot + 1) / 2`` comparisons. A difference whose resamples are all equal gets 1
    when it is 0 and 0 otherwise.
    """
    a, b = _runs(ranks_a, "ranks_a"), _runs(ranks_b, "ranks_b")
    if a.shape != b.shape:
        raise ValueError(f"paired ranks must have the same shape (same queries), got {a.shape} and {b.shape}")
    stats_a, stats_b = _bootstrap_stats([a, b], metric_fn, n_boot, seed, clusters)
    deltas = stats_b - stats_a
    low, high = np.quantile(deltas, [alpha / 2, 1 - alpha / 2])
    diff = point_estimate(b, metric_fn) - point_estimate(a, metric_fn)
    spread = float(np.std(deltas, ddof=1)) if len(deltas) > 1 else 0.0
    if spread > 0:
        p = float(2 * norm.sf(abs(diff) / spread))
    else:
        p = 1.0 if diff == 0 else 0.0
    return PairedDiff(diff, float(low), float(high), p)


def holm(p_values: Any) -> np.ndarray:
    """Holm–Bonferroni adjusted p-values (same order as given): reject where ``adjusted < alpha`` to keep
    the family-wise error rate at ``alpha``. NaN p-values are left out of the family and stay NaN."""
    p = np.asarray(p_values, dtype=np.float64).reshape(-1)
    out = np.full_like(p, np.nan)
    valid = np.flatnonzero(~np.isnan(p))
    if valid.size == 0:
        return out
    order = valid[np.argsort(p[valid], kind="stable")]
    m = len(order)
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    out[order] = np.maximum.accumulate(scaled)
    return out


def holm_verdicts(table: pd.DataFrame, alpha: float, verdicts: dict[str, str]) -> pd.DataFrame:
    """Holm-adjust each p-value column of ``table`` as its own family, in place.

    ``verdicts`` maps a p-value column to the name of its verdict column: for each one present,
    ``<column>_holm`` holds the adjusted p-values and the verdict column ``<column>_holm < alpha``.
    """
    for column, verdict in verdicts.items():
        if column in table:
            table[f"{column}_holm"] = holm(table[column])
            table[verdict] = table[f"{column}_holm"] < alpha
    return table


def retrieval_cis(
    sim: Any,
    caption_to_video: Any = None,
    names: Sequence[str] = ("R@1", "R@5", "R@10"),
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
    video_clusters: Any = None,
    v2t_rule: str = DEFAULT_V2T_RULE,
) -> dict[str, tuple[float, float]]:
    """Bootstrap intervals keyed like :func:`retrieval_metrics` (``{"t2v_R@1": (low, high), ...}``).

    The resampled unit is the video with all its captions, or the group of ``video_clusters`` (one label
    per video, e.g. the hard-pair group) when given.
    """
    sim = _check_sim(sim)
    c2v = _check_caption_to_video(caption_to_video, sim)
    groups = np.arange(sim.shape[1]) if video_clusters is None else _to_numpy(video_clusters)
    if groups.shape != (sim.shape[1],):
        raise ValueError(f"video_clusters needs one label per video ({sim.shape[1]},), got {groups.shape}")
    ranks = {"t2v": t2v_ranks(sim, c2v), "v2t": v2t_ranks(sim, c2v, v2t_rule)}
    clusters = {"t2v": groups[c2v], "v2t": groups}
    return {
        f"{d}_{name}": bootstrap_ci(r, name, n_boot=n_boot, seed=seed, alpha=alpha, clusters=clusters[d])
        for d, r in ranks.items()
        for name in names
    }


# --------------------------------------------------------------------------- hard pairs


def pair_outcomes(sim: Any, caption_to_video: Any, partner: Any, tie_tolerance: float = 1e-6) -> np.ndarray:
    """For every caption whose clip has a hard-pair partner (``partner[v]`` = the partner's video index,
    -1 for none), whether it scores its own clip above the partner: a bool array over those captions, in
    caption order. Ties count as wrong, and so do differences within ``tie_tolerance`` (float summation
    order alone moves cosine similarities by ~1e-7, which must not pass for temporal understanding).

    Why it matters: the two clips of a hard pair share their look and differ only in the direction or
    order of motion, so any order-blind model has no signal and scores 50% at best (a coin flip on noise).
    Note that with ``uniform`` sampling the frame indices are symmetric in time, so mean pooling gives the
    two clips of a *reversal* pair the same embedding: those captions tie exactly and count as wrong.
    """
    sim = _check_sim(sim)
    c2v = _check_caption_to_video(caption_to_video, sim)
    partner = _to_numpy(partner).astype(np.int64)
    if partner.shape != (sim.shape[1],):
        raise ValueError(f"partner needs one entry per video ({sim.shape[1]},), got {partner.shape}")
    if ((partner < -1) | (partner >= sim.shape[1])).any():
        raise ValueError("partner entries must be video indices or -1 (no partner)")
    queries = np.flatnonzero(partner[c2v] >= 0)
    own = sim[queries, c2v[queries]].astype(np.float64)
    other = sim[queries, partner[c2v[queries]]].astype(np.float64)
    return own - other > tie_tolerance


class PairAccuracy(NamedTuple):
    """Share (percent) of hard-pair captions that rank their own clip above the partner, exact interval."""

    accuracy: float
    low: float
    high: float
    n: int


def pair_accuracy(outcomes: Any, alpha: float = 0.05) -> PairAccuracy:
    """Pair accuracy of :func:`pair_outcomes` (pooled over seeds when given ``(n_seeds, n)``), with the exact
    Clopper–Pearson interval of a binomial proportion. The interval treats captions as independent trials;
    captions of one clip are not, so read it as a lower bound on the uncertainty. NaN without pairs."""
    hits = np.asarray(outcomes, dtype=bool).reshape(-1)
    if hits.size == 0:
        return PairAccuracy(np.nan, np.nan, np.nan, 0)
    k = int(hits.sum())
    ci = binomtest(k, hits.size).proportion_ci(confidence_level=1 - alpha, method="exact")
    return PairAccuracy(100.0 * k / hits.size, 100.0 * ci.low, 100.0 * ci.high, int(hits.size))


class McNemar(NamedTuple):
    """Exact McNemar test of two systems on the same binary outcomes."""

    only_a: int  # right for a, wrong for b
    only_b: int
    p_value: float


def mcnemar_exact(outcomes_a: Any, outcomes_b: Any) -> McNemar:
    """Exact (binomial) McNemar test: under "no difference" the discordant pairs split 50/50. Outcomes are
    paired element by element (e.g. the same caption in the same seed); p = 1 without discordant pairs."""
    a = np.asarray(outcomes_a, dtype=bool).reshape(-1)
    b = np.asarray(outcomes_b, dtype=bool).reshape(-1)
    if a.shape != b.shape:
        raise ValueError(f"paired outcomes must have the same shape, got {a.shape} and {b.shape}")
    only_a, only_b = int(np.sum(a & ~b)), int(np.sum(b & ~a))
    p = binomtest(only_a, only_a + only_b, 0.5).pvalue if only_a + only_b else 1.0
    return McNemar(only_a, only_b, float(p))


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
    v2t_label: str = "v2t",
) -> pd.DataFrame:
    """Tidy table from a :func:`retrieval_metrics`-style dict: rows t2v / v2t, columns R@1 R@5 R@10 MedR MeanR.

    With ``cis`` (e.g. from :func:`retrieval_cis`), each metric that has an interval gets a text column
    ``"R@1 [lo, hi]"`` right after it. ``prefix`` selects e.g. the ``"dsl_"`` keys. Directions missing from
    ``metrics`` are left out; a missing metric is NaN. ``v2t_label`` names the v2t row: pass
    :func:`v2t_label` so a multi-caption table says which v2t rule made it.
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
        records[v2t_label if d == "v2t" else d] = row
    table = pd.DataFrame.from_dict(records, orient="index")
    table.index.name = "direction"
    return table


# --------------------------------------------------------------------------- image quality

SSIM_WINDOW = 11  # pytorch_msssim's default (and scikit-image's with gaussian_weights)


def ssim_window(h: int, w: int) -> int:
    """The SSIM window for an ``h x w`` image: 11, or the largest odd size that fits a smaller image."""
    side = min(SSIM_WINDOW, h, w)
    return side if side % 2 else side - 1


def psnr(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR in dB of (N, ...) images in [0, 1]: ``10·log10(1 / MSE)``; inf when equal."""
    import torch

    mse = (pred.float() - target.float()).pow(2).flatten(1).mean(1)
    return -10.0 * torch.log10(mse)


def ssim(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image SSIM of (N, C, H, W) images in [0, 1]: (N,). Differentiable.

    ``pytorch_msssim.ssim`` (the package HNeRV uses): Gaussian window of :func:`ssim_window`, σ = 1.5,
    as scikit-image's ``structural_similarity(gaussian_weights=True, use_sample_covariance=False)``.
    """
    from pytorch_msssim import ssim as _ssim

    if pred.shape != target.shape or pred.ndim != 4:
        raise ValueError(
            f"ssim needs two (N, C, H, W) tensors of one shape, got {tuple(pred.shape)}, {tuple(target.shape)}"
        )
    win = ssim_window(*pred.shape[-2:])
    if win < 3:
        raise ValueError(f"images of {tuple(pred.shape[-2:])} are too small for SSIM (need at least 3x3)")
    return _ssim(pred.float(), target.float(), data_range=1.0, size_average=False, win_size=win)
