"""Stage 5 of notebook 05: the tables it shows and the metrics file it saves, from scored rows.

Recall per system and direction, published anchors beside it (only from :mod:`vtr.anchors`), pair
accuracy, gains over zero-shot with Holm–Bonferroni verdicts, the temporal heads' pair-accuracy gain over
mean pooling with its interval (:func:`temporal_pair_gains`), breakdowns per category and query length,
similarity statistics, success and failure cases, and :func:`summary_metrics` for ``save_metrics``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from vtr import metrics as M
from vtr.anchors import anchors_table
from vtr.calibration import Effect, pair_accuracy_gain
from vtr.experiments.msrvtt_recall.data import SplitData
from vtr.experiments.msrvtt_recall.evaluate import ZERO_SHOT, Row

#: The published text-to-video figures notebook 05 prints beside its own (keys of :mod:`vtr.anchors`).
ANCHOR_KEYS = (
    "msrvtt-1ka-clip-b32-zero-shot",
    "msrvtt-1ka-clip4clip-seqtransf",
    "seed-002-baseline",
    "seed-002-fine-tuned",
)


_STATS = ("R@1", "R@5", "R@10", "MedR", "MeanR")
#: The order-blind row every temporal head's pair accuracy is measured against.
MEAN_HEAD = "mean head"


def recall_table(rows: dict[str, Row], digits: int = 1) -> pd.DataFrame:
    """One line per (system, direction): R@1/5/10, MedR, MeanR with 95% bootstrap intervals, then the
    same five after dual-softmax re-scoring (``DSL ...``). With several captions per video the v2t
    lines name their rule (``v2t (clip4clip rule)``)."""
    lines = []
    for name, row in rows.items():
        m = row.metrics
        for d in M.DIRECTIONS:
            label = M.v2t_label(row.caption_to_video) if d == "v2t" else d
            line: dict[str, Any] = {"system": name, "direction": label}
            for stat in _STATS:
                line[stat] = round(m[f"{d}_{stat}"], digits)
                if f"{d}_{stat}_lo" in m:
                    line[f"{stat} 95% CI"] = (
                        f"[{m[f'{d}_{stat}_lo']:.{digits}f}, {m[f'{d}_{stat}_hi']:.{digits}f}]"
                    )
            for stat in _STATS:
                line[f"DSL {stat}"] = round(m[f"dsl_{d}_{stat}"], digits)
            lines.append(line)
    return pd.DataFrame(lines).set_index(["system", "direction"])


def pair_table(rows: dict[str, Row]) -> pd.DataFrame:
    """Pair accuracy per system (percent, exact Clopper–Pearson interval); empty without hard pairs."""
    lines = []
    for name, row in rows.items():
        if row.pair_outcomes.size:
            acc = M.pair_accuracy(row.pair_outcomes)
            lines.append({"system": name, "pair_acc": acc.accuracy, "low": acc.low, "high": acc.high,
                          "captions": acc.n})  # fmt: skip
    return pd.DataFrame(lines).set_index("system") if lines else pd.DataFrame()


def gains_table(
    rows: dict[str, Row], baseline: str = ZERO_SHOT, n_boot: int = 1000, seed: int = 0, alpha: float = 0.05
) -> pd.DataFrame:
    """R@1 of every other row minus ``baseline``'s, per direction, with paired bootstrap intervals over the
    test videos (or hard-pair groups) and p-values; ``significant`` after Holm–Bonferroni over the table's
    comparisons. With hard pairs, ``Δpair_acc`` and its exact McNemar p (one value per system, shown on
    the t2v line), Holm-corrected as a family of their own (``pair_significant``)."""
    if baseline not in rows:
        return pd.DataFrame()
    base = rows[baseline]
    clusters = {"t2v": base.video_clusters[base.caption_to_video], "v2t": base.video_clusters}
    lines = []
    for name, row in rows.items():
        if name == baseline:
            continue
        for d, a, b in (("t2v", base.t2v_ranks, row.t2v_ranks), ("v2t", base.v2t_ranks, row.v2t_ranks)):
            diff = M.paired_bootstrap_diff(a, b, "R@1", n_boot=n_boot, seed=seed, clusters=clusters[d])
            line = {"system": name, "direction": d, "ΔR@1": diff.diff, "low": diff.low, "high": diff.high,
                    "p": diff.p_value}  # fmt: skip
            if d == "t2v" and base.pair_outcomes.size:
                test = M.mcnemar_exact(base.pair_outcomes, row.pair_outcomes)
                line["Δpair_acc"] = 100.0 * (row.pair_outcomes.mean() - base.pair_outcomes.mean())
                line["pair_p"] = test.p_value
            lines.append(line)
    if not lines:
        return pd.DataFrame()
    table = pd.DataFrame(lines).set_index(["system", "direction"])
    return M.holm_verdicts(table, alpha, {"p": "significant", "pair_p": "pair_significant"})


def temporal_pair_gains(
    rows: dict[str, Row], baseline: str = MEAN_HEAD, n_boot: int = 1000, seed: int = 0
) -> dict[str, Effect]:
    """Pair accuracy of every other temporal-head row (``"<kind> head"``) minus ``baseline``'s (mean
    pooling), on the same hard-pair captions, with the bootstrap interval over hard-pair groups
    (:func:`vtr.calibration.pair_accuracy_gain`). Empty without hard pairs or without the baseline row.
    Mean pooling is order-blind, so a head that reads the order of the frames must beat it here."""
    base = rows.get(baseline)
    if base is None or not base.pair_outcomes.size:
        return {}
    return {
        f"{name} vs {baseline}, pair accuracy": pair_accuracy_gain(
            base.pair_outcomes, row.pair_outcomes, base.pair_clusters, n_boot=n_boot, seed=seed
        )
        for name, row in rows.items()
        if name.endswith(" head") and name != baseline
    }


def gains_verdict(gains: pd.DataFrame) -> str:
    """How many of the R@1 gains in :func:`gains_table` survive Holm–Bonferroni, as one sentence."""
    if gains.empty:
        return "no gains to test: the zero-shot row is missing or it is the only row"
    return f"{int(gains['significant'].sum())} of {len(gains)} R@1 gains over zero-shot are real (Holm–Bonferroni)"


def breakdown_table(rows: dict[str, Row], labels: Sequence[str] | pd.Categorical, by: str) -> pd.DataFrame:
    """Text-to-video metrics per group of queries (``by`` names the grouping), one line per (system, group)."""
    parts = []
    for name, row in rows.items():
        table = M.breakdown(row.t2v_ranks, pd.Series(labels, name=by))
        parts.append(table.reset_index().assign(system=name))
    out = pd.concat(parts, ignore_index=True)
    # Keep the groups in breakdown order (e.g. 1–10 before 11–20), also through a later pivot.
    out[by] = pd.Categorical(out[by], categories=list(dict.fromkeys(out[by])), ordered=True)
    return out[["system", by, "n", *[c for c in out.columns if c not in ("system", by, "n")]]]


def category_breakdown(rows: dict[str, Row], test: SplitData) -> pd.DataFrame:
    return breakdown_table(rows, test.query_categories, "category")


def length_breakdown(rows: dict[str, Row], test: SplitData) -> pd.DataFrame:
    """By query length in words: 1–10, 11–20, 21+ (:func:`vtr.metrics.query_length_bucket`)."""
    return breakdown_table(rows, M.query_length_bucket(test.captions), "query words")


def category_counts(data: SplitData) -> pd.DataFrame:
    """Videos and queries per category, most frequent first."""
    videos = pd.Series([r.category or "unknown" for r in data.records]).value_counts()
    queries = pd.Series(data.query_categories).value_counts()
    table = pd.DataFrame({"videos": videos, "queries": queries}).fillna(0).astype(int)
    table.index.name = "category"
    return table.sort_values(["videos", "queries"], ascending=False, kind="stable")


def similarity_split(row: Row) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(positives, negatives, hardest)``: each query's score with its own video, with every other
    video, and with the most similar other video (what decides R@1)."""
    sim = row.sim
    own = np.zeros(sim.shape, dtype=bool)
    own[np.arange(len(row.caption_to_video)), row.caption_to_video] = True
    hardest = np.where(own, -np.inf, sim).max(axis=1)
    return sim[own], sim[~own], hardest


def similarity_stats(rows: dict[str, Row]) -> pd.DataFrame:
    """Mean and spread of positive vs negative similarities per system, and their separation (d')."""
    lines = []
    for name, row in rows.items():
        pos, neg, hardest = similarity_split(row)
        pooled = math.sqrt((pos.var() + neg.var()) / 2) or 1.0
        lines.append({"system": name, "positive mean": float(pos.mean()), "positive std": float(pos.std()),
                      "negative mean": float(neg.mean()), "hardest negative mean": float(hardest.mean()), "negative std": float(neg.std()),
                      "d'": float((pos.mean() - neg.mean()) / pooled)})  # fmt: skip
    return pd.DataFrame(lines).set_index("system")


@dataclass(frozen=True)
class Case:
    """One text-to-video query: its rank and the video ranked first."""

    query: int
    caption: str
    target: str  # the correct video's id
    rank: int
    top: str  # the id of the video ranked first
    margin: float  # own-video score minus the best other video's score


def pick_cases(row: Row, test: SplitData, n: int, kind: str = "success") -> list[Case]:
    """The ``n`` most confident successes (rank 1, largest margin) or the ``n`` worst failures (largest
    rank, then smallest margin); ties go to the earlier query, so the choice repeats exactly."""
    if kind not in ("success", "failure"):
        raise ValueError(f"kind must be 'success' or 'failure', got {kind!r}")
    sim, owners = row.sim, row.caption_to_video
    positive = sim[np.arange(len(owners)), owners]
    others = sim.copy()
    others[np.arange(len(owners)), owners] = -np.inf
    margin = positive - others.max(axis=1)
    ranks = row.t2v_ranks
    if kind == "success":
        chosen = [q for q in np.lexsort((-margin,)) if ranks[q] == 1][:n]
    else:
        chosen = [q for q in np.lexsort((margin, -ranks)) if ranks[q] > 1][:n]
    top = sim.argmax(axis=1)
    return [Case(int(q), test.captions[q], test.ids[owners[q]], int(ranks[q]),
                 test.ids[top[q]], float(margin[q])) for q in chosen]  # fmt: skip


def published_comparison(table: pd.DataFrame, profile_name: str, keys: Sequence[str] = ANCHOR_KEYS) -> pd.DataFrame:
    """The published t2v anchors (:func:`vtr.anchors.anchors_table`) above this run's t2v rows of
    ``table`` (:func:`recall_table`), labelled ``vtr (<profile> profile): <system>``."""
    ours = table.xs("t2v", level="direction")[list(_STATS)]
    ours.index = [f"vtr ({profile_name} profile): {name}" for name in ours.index]
    return pd.concat([anchors_table(list(keys), direction="t2v"), ours])


def cases_table(successes: Sequence[Case], failures: Sequence[Case]) -> pd.DataFrame:
    """One line per case (its fields), successes first, with a ``kind`` column."""
    lines = [asdict(c) for c in [*successes, *failures]]
    kinds = ["success"] * len(successes) + ["failure"] * len(failures)
    return pd.DataFrame(lines).assign(kind=kinds)


def summary_metrics(
    rows: dict[str, Row],
    categories: pd.DataFrame,
    lengths: pd.DataFrame,
    gains: pd.DataFrame,
    train: SplitData,
    test: SplitData,
    *,
    profile_name: str,
    best: str,
    pairs: pd.DataFrame,
    successes: Sequence[Case],
    failures: Sequence[Case],
    temporal_gains: dict[str, Effect] | None = None,
) -> dict[str, Any]:
    """The notebook's metrics file: every row's numbers, the breakdowns' R@1, the gains, the data sizes,
    then the profile, the best row (``best``), the pair accuracies (:func:`pair_table`), the cases'
    query indices and the temporal heads' pair-accuracy gains (:func:`temporal_pair_gains`) with a
    sentence built from them."""
    out: dict[str, Any] = {
        "test": {"split": test.split, "videos": len(test), "queries": len(test.captions),
                 "dropped_videos": len(test.dropped)},
        "train": {"split": train.split, "videos": len(train), "captions": len(train.captions),
                  "dropped_videos": len(train.dropped)},
        "rows": {name: {k: v for k, v in row.metrics.items() if "@50" not in k} for name, row in rows.items()},
        "notes": {name: row.note for name, row in rows.items() if row.note},
    }  # fmt: skip
    for key, table, by in (
        ("by_category", categories, "category"),
        ("by_query_length", lengths, "query words"),
    ):
        out[key] = {name: dict(zip(part[by].astype(str), part["R@1"], strict=True))
                    for name, part in table.groupby("system", sort=False)}  # fmt: skip
    if not gains.empty:
        out["gain_vs_zero_shot"] = {
            f"{s} {d}": {"dR@1": r["ΔR@1"], "low": r["low"], "high": r["high"], "p_holm": r["p_holm"],
                         "significant": bool(r["significant"])}
            for (s, d), r in gains.iterrows()
        }  # fmt: skip
        out["n_real_gains_R@1"] = int(gains["significant"].sum())
    out.update(
        profile=profile_name,
        best_row=best,
        pair_accuracy=pairs.to_dict("index") if not pairs.empty else {},
        cases={"success": [c.query for c in successes], "failure": [c.query for c in failures]},
    )
    if temporal_gains:
        from vtr.finetune import describe_effects

        out["temporal_pair_gain"] = {name: e._asdict() | {"excludes_zero": e.excludes_zero}
                                     for name, e in temporal_gains.items()}  # fmt: skip
        out["temporal_pair_gain_text"] = describe_effects(temporal_gains)
    return out


def headline_keys(metrics: dict[str, Any]) -> list[str]:
    """The keys the index and the README show first for notebook 05: the best row, each row's t2v / v2t
    R@1 and pair accuracy, and the number of real gains."""
    per_row = [f"rows.{row}.{key}" for row in metrics["rows"] for key in ("t2v_R@1", "v2t_R@1", "pair_acc")]
    gains = [f"temporal_pair_gain.{name}.diff" for name in metrics.get("temporal_pair_gain", {})]
    return ["best_row", *per_row, "n_real_gains_R@1", *gains]
