"""The comparisons the sample world is built to make visible (issue 13), as library calls.

Each returns a :class:`Effect` (difference, 95% interval, p-value, sizes), computed with the
clip-level statistics of :mod:`vtr.metrics`: queries are resampled by cluster (a hard-pair group
with all its captions, or a clip on its own) and, for several seeds, seeds are resampled too and
paired, so the interval covers test clips and training noise.

    effect = pair_accuracy_gain(baseline_outcomes, model_outcomes, clusters)   # temporal head vs mean
    effect = category_interaction(ranks_uniform, ranks_mean, categories, motion, clusters)

* :func:`pair_accuracy_gain`: pair accuracy (share of hard-pair captions that score their own clip
  above its partner) of ``b`` minus ``a``. An order-blind model sits near 50%, so a temporal model
  that reads motion must beat mean pooling here first.
* :func:`category_interaction`: how much more ``b`` loses (or gains) against ``a`` on one group of
  categories than on the rest, e.g. mean-frame sampling against uniform sampling on the motion
  categories versus the static clips: blurring the frames hurts appearance everywhere, but only order
  blindness hurts the motion categories more, so the interaction separates the two.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple

import numpy as np
from scipy.stats import norm

from vtr import metrics as M


class Effect(NamedTuple):
    """A difference (percentage points), its 95% bootstrap interval and two-sided p-value."""

    diff: float
    low: float
    high: float
    p_value: float
    n_queries: int
    n_seeds: int

    @property
    def excludes_zero(self) -> bool:
        return bool(self.low > 0 or self.high < 0)

    def describe(self, what: str) -> str:
        """``"what: +12.3 points, 95% CI [+8.1, +16.0], p = 1e-05 (n = 324 captions x 2 seeds)"``."""
        return (
            f"{what}: {self.diff:+.1f} points, 95% CI [{self.low:+.1f}, {self.high:+.1f}], "
            f"p = {self.p_value:.2g} ({self.n_queries} queries x {self.n_seeds} seed{'s' * (self.n_seeds != 1)})"
        )


def _as_runs(values: Any, name: str) -> np.ndarray:
    runs = np.asarray(values)
    runs = runs[None, :] if runs.ndim == 1 else runs
    if runs.ndim != 2 or runs.shape[1] == 0:
        raise ValueError(f"{name} must be (n_queries,) or (n_seeds, n_queries), got shape {runs.shape}")
    return runs


def pair_accuracy_gain(
    outcomes_a: Any, outcomes_b: Any, clusters: Any = None, *, n_boot: int = 1000, seed: int = 0
) -> Effect:
    """Pair accuracy of ``b`` minus ``a`` (points) on the same hard-pair captions.

    ``outcomes_*`` are :func:`vtr.metrics.pair_outcomes` (bool per caption), one row per seed; a single
    row (e.g. a frozen baseline) is repeated to the other side's seeds. ``clusters`` labels each caption
    with its hard-pair group. A correct caption is a rank-1 retrieval between the two clips of its pair,
    so this is :func:`vtr.metrics.paired_bootstrap_diff` of R@1 on those two-candidate ranks.
    """
    a, b = _as_runs(outcomes_a, "outcomes_a"), _as_runs(outcomes_b, "outcomes_b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"both sides must score the same captions, got {a.shape[1]} and {b.shape[1]}")
    seeds = max(len(a), len(b))
    a, b = (np.repeat(x, seeds, axis=0) if len(x) == 1 else x for x in (a, b))
    if a.shape != b.shape:
        raise ValueError(f"the two sides ran with different numbers of seeds: {a.shape[0]} and {b.shape[0]}")
    ranks_a, ranks_b = 2 - a.astype(np.int64), 2 - b.astype(np.int64)  # correct: rank 1, wrong: rank 2
    d = M.paired_bootstrap_diff(ranks_a, ranks_b, "R@1", n_boot=n_boot, seed=seed, clusters=clusters)
    return Effect(d.diff, d.low, d.high, d.p_value, a.shape[1], seeds)


def _cluster_sums(values: np.ndarray, codes: np.ndarray, n_clusters: int) -> np.ndarray:
    """(n_seeds, n_clusters) sums of ``values`` (n_seeds, n_queries) per cluster."""
    return np.stack([np.bincount(codes, weights=v, minlength=n_clusters) for v in values])


def category_interaction(
    ranks_a: Any,
    ranks_b: Any,
    categories: Iterable[str],
    group: Iterable[str],
    clusters: Any = None,
    *,
    metric: str = "R@1",
    n_boot: int = 1000,
    seed: int = 0,
) -> tuple[Effect, dict[str, float]]:
    """``(b - a) on the categories in group`` minus ``(b - a) on the other categories``, for a recall metric.

    ``ranks_*`` are (n_seeds, n_queries) t2v ranks paired by seed and query; ``categories`` gives each
    query's category. Clusters (and seeds) are resampled once per replicate and both contrasts are
    computed on the same resample, so the interval is that of the difference of differences. Also
    returns the two simple contrasts (``in_group``, ``rest``) as points.
    """
    if not metric.startswith("R@"):
        raise ValueError(f"the interaction is defined for recall metrics R@K, got {metric!r}")
    k = int(metric[2:])
    a, b = _as_runs(ranks_a, "ranks_a"), _as_runs(ranks_b, "ranks_b")
    if a.shape != b.shape:
        raise ValueError(f"paired ranks must have the same shape, got {a.shape} and {b.shape}")
    cats = np.asarray(list(categories))
    inside = np.isin(cats, list(group))
    if cats.shape != (a.shape[1],) or not inside.any() or inside.all():
        raise ValueError("categories must label every query, with queries both inside and outside the group")
    codes = (np.arange(a.shape[1]) if clusters is None
             else np.unique(np.asarray(clusters), return_inverse=True)[1].reshape(-1))  # fmt: skip
    n_clusters = int(codes.max()) + 1
    delta = 100.0 * ((b <= k).astype(float) - (a <= k).astype(float))  # (seeds, queries)
    sums = {name: _cluster_sums(delta * mask, codes, n_clusters) for name, mask in (("in", inside), ("out", ~inside))}
    sizes = {name: np.bincount(codes, weights=mask.astype(float), minlength=n_clusters)
             for name, mask in (("in", inside), ("out", ~inside))}  # fmt: skip

    def contrast(weights: np.ndarray, seed_draw: np.ndarray | None, name: str) -> np.ndarray:
        per_seed = (weights @ sums[name].T) / np.maximum(weights @ sizes[name], 1e-12)[:, None]
        if seed_draw is None:
            return per_seed.mean(axis=1)
        return np.take_along_axis(per_seed, seed_draw, axis=1).mean(axis=1)

    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_clusters, size=(n_boot, n_clusters))
    weights = np.stack([np.bincount(row, minlength=n_clusters) for row in draws]).astype(float)
    seed_draw = rng.integers(0, len(a), size=(n_boot, len(a))) if len(a) > 1 else None
    replicates = contrast(weights, seed_draw, "in") - contrast(weights, seed_draw, "out")
    ones = np.ones((1, n_clusters))
    point_in, point_out = float(contrast(ones, None, "in")[0]), float(contrast(ones, None, "out")[0])
    diff = point_in - point_out
    low, high = np.quantile(replicates, [0.025, 0.975])
    spread = float(np.std(replicates, ddof=1))
    p = float(2 * norm.sf(abs(diff) / spread)) if spread > 0 else (1.0 if diff == 0 else 0.0)
    return Effect(diff, float(low), float(high), p, a.shape[1], len(a)), {"in_group": point_in, "rest": point_out}
