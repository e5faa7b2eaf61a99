"""Stage 3 of notebook 01: zero-shot retrieval scored by :mod:`vtr.evaluation`, the sweep and its tests.

A frozen CLIP, frames mean-pooled into a video embedding. With a video encoder
(``model.arch: viclip-l14``) the video embedding is ViCLIP's one joint pass over the clip instead;
the protocol is in :mod:`vtr.models.viclip`.

    encoder = load_encoder(cfg)
    clips = load_clips(cfg, "test")
    run = zero_shot_run(encoder, clips, n_frames=8, strategy="uniform", size=64)
    run.metrics["t2v_R@1"], run.outcomes().head()
    table = zero_shot_sweep(encoder, clips, ["uniform", "mean"], [4, 8], size=64)
    runs = sweep_runs(encoder, clips, ["uniform", "mean"], [4, 8], size=64)
    sweep_differences(runs, ("uniform", 8))                 # every setting vs the reference, Holm-corrected

Intervals resample clips (with all their captions), or hard-pair groups where the manifest names
them; where clips come in hard pairs the pair accuracy is reported beside R@K
(:func:`vtr.metrics.pair_outcomes`: with ``uniform`` sampling and mean pooling the two clips of a
reversal pair get the same embedding, so those captions tie and count as wrong).

Videos that fail to decode are left out of the gallery together with their captions, and named
in ``run.errors``; the query count in the metrics says how many remained.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from vtr import metrics as M
from vtr.data.sources import ClipSet
from vtr.embeddings import VideoEmbeddings, embed_texts, embed_videos
from vtr.evaluation import HardPairs, evaluate_retrieval, hard_pairs
from vtr.models.encoders import Encoder
from vtr.progress import show_progress


@dataclass
class ZeroShotRun:
    """One zero-shot evaluation: the queries of the clips that decoded, their similarities and scores."""

    clips: ClipSet
    embedded: VideoEmbeddings  # aligned with the clips that decoded
    captions: list[str]  # every caption of those clips (one query each)
    caption_to_video: np.ndarray  # (Q,) index into embedded.ids
    sim: np.ndarray  # (Q, N) caption x video cosine similarity
    metrics: dict[str, float]

    @property
    def errors(self) -> dict[str, str]:
        return self.embedded.errors

    @cached_property
    def query_categories(self) -> list[str]:
        by_id = {r.id: r.category or "(none)" for r in self.clips.records}
        return [by_id[self.embedded.ids[v]] for v in self.caption_to_video]

    @cached_property
    def t2v_ranks(self) -> np.ndarray:
        return M.t2v_ranks(self.sim, self.caption_to_video)

    @cached_property
    def pairs(self) -> HardPairs:
        by_id = {r.id: r.meta for r in self.clips.records}
        return hard_pairs(self.embedded.ids, [by_id[i] for i in self.embedded.ids])

    @cached_property
    def caption_clusters(self) -> np.ndarray:
        """The resampling unit of every query (its clip, or its hard-pair group)."""
        return self.pairs.clusters[self.caption_to_video]

    @cached_property
    def pair_outcomes(self) -> np.ndarray:
        """Per hard-pair caption: own clip scored above the partner (empty without pairs)."""
        return M.pair_outcomes(self.sim, self.caption_to_video, self.pairs.partner)

    @property
    def v2t_label(self) -> str:
        return M.v2t_label(self.caption_to_video)

    def outcomes(self) -> pd.DataFrame:
        """One row per query: caption, clip, category, rank, similarity margin, and the clip ranked first."""
        top1 = self.sim.argmax(axis=1)
        rows = np.arange(len(self.captions))
        own = self.sim[rows, self.caption_to_video]
        others = self.sim.copy()
        others[rows, self.caption_to_video] = -np.inf
        partner = {r.id: r.meta.get("pair_partner") for r in self.clips.records}
        clip_ids = [self.embedded.ids[v] for v in self.caption_to_video]
        top1_ids = [self.embedded.ids[v] for v in top1]
        return pd.DataFrame(
            {
                "caption": self.captions,
                "clip": clip_ids,
                "category": self.query_categories,
                "rank": self.t2v_ranks,
                "own_sim": own,
                # own similarity minus the best other clip's: > 0 exactly when the query ranks its clip first
                "margin": own - others.max(axis=1),
                "top1_clip": top1_ids,
                "top1_sim": self.sim[rows, top1],
                # the sample world's hard pairs: same look, opposite motion or order (None elsewhere)
                "top1_is_partner": [
                    partner[c] is not None and partner[c] == t
                    for c, t in zip(clip_ids, top1_ids, strict=True)
                ],
            }
        )

    def per_category(self) -> pd.DataFrame:
        """Text-to-video R@1/5/10 and query count per clip category."""
        table = M.breakdown(self.t2v_ranks, pd.Series(self.query_categories, name="category"))
        return table.reset_index()


def aligned_queries(clips: ClipSet, embedded: VideoEmbeddings) -> tuple[list[str], np.ndarray]:
    """Captions of the clips that decoded, with the index of their clip in ``embedded.ids``."""
    position = {clip_id: i for i, clip_id in enumerate(embedded.ids)}
    captions: list[str] = []
    owners: list[int] = []
    for record in clips.records:
        if record.id in position:
            captions.extend(record.captions)
            owners.extend([position[record.id]] * len(record.captions))
    if not captions:
        raise ValueError(f"{clips.name} {clips.split}: no clip decoded ({len(embedded.errors)} errors)")
    return captions, np.asarray(owners)


def zero_shot_run(
    encoder: Encoder,
    clips: ClipSet,
    n_frames: int,
    strategy: str = "uniform",
    size: int | None = None,
    *,
    seed: int = 0,
    cache_dir: str | os.PathLike[str] | None = None,
    n_boot: int = 1000,
    workers: int = 2,
    progress: bool = True,
) -> ZeroShotRun:
    """Embed the clips (``n_frames`` by ``strategy``) and their captions, and score retrieval."""
    embedded = embed_videos(
        encoder, clips.records, clips.base_dir, n_frames, strategy, size, seed, cache_dir, workers, progress
    )
    captions, owners = aligned_queries(clips, embedded)
    text = embed_texts(encoder, captions, cache_dir, progress=progress)
    sim = text @ embedded.embeddings.T
    by_id = {r.id: r.meta for r in clips.records}
    pairs = hard_pairs(embedded.ids, [by_id[i] for i in embedded.ids])
    metrics = evaluate_retrieval(text, embedded.embeddings, owners, n_boot=n_boot, seed=seed, pairs=pairs)
    metrics.update(n_videos=float(len(embedded)), n_queries=float(len(captions)))
    return ZeroShotRun(clips, embedded, captions, owners, sim, metrics)


def sweep_runs(
    encoder: Encoder,
    clips: ClipSet,
    strategies: Sequence[str],
    frame_counts: Sequence[int],
    size: int | None = None,
    *,
    seed: int = 0,
    cache_dir: str | os.PathLike[str] | None = None,
    n_boot: int = 1000,
    progress: bool = True,
) -> dict[tuple[str, int], ZeroShotRun]:
    """One :class:`ZeroShotRun` per (strategy, frame count), in sweep order."""
    grid = [(s, n) for s in strategies for n in frame_counts]
    runs = {}
    with encoder.frame_memo():  # the runs draw the same frames of each clip again and again
        for strategy, n_frames in tqdm(grid, desc="zero-shot sweep", disable=not show_progress(progress)):
            runs[strategy, n_frames] = zero_shot_run(
                encoder, clips, n_frames, strategy, size, seed=seed, cache_dir=cache_dir, n_boot=n_boot,
                progress=False,
            )  # fmt: skip
    return runs


def sweep_table(runs: dict[tuple[str, int], ZeroShotRun]) -> pd.DataFrame:
    """One row of metrics per (strategy, frame count), plus the number of clips that failed."""
    return pd.DataFrame(
        [
            {"strategy": s, "n_frames": n, **run.metrics, "n_errors": len(run.errors)}
            for (s, n), run in runs.items()
        ]
    )


def zero_shot_sweep(
    encoder: Encoder,
    clips: ClipSet,
    strategies: Sequence[str],
    frame_counts: Sequence[int],
    size: int | None = None,
    *,
    seed: int = 0,
    cache_dir: str | os.PathLike[str] | None = None,
    n_boot: int = 1000,
    progress: bool = True,
) -> pd.DataFrame:
    """:func:`sweep_table` of :func:`sweep_runs`."""
    return sweep_table(
        sweep_runs(
            encoder,
            clips,
            strategies,
            frame_counts,
            size,
            seed=seed,
            cache_dir=cache_dir,
            n_boot=n_boot,
            progress=progress,
        )  # fmt: skip
    )


def sweep_differences(
    runs: dict[tuple[str, int], ZeroShotRun],
    reference: tuple[str, int],
    *,
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Every other setting minus ``reference``: t2v R@1 (paired clustered bootstrap) and, with hard pairs,
    pair accuracy (exact McNemar). Each column of p-values is one family, Holm-corrected:
    ``real`` (R@1) and ``pair_real`` are the adjusted verdicts at ``alpha``."""
    if reference not in runs:
        raise KeyError(f"reference setting {reference} is not in the sweep ({list(runs)})")
    base = runs[reference]
    lines = []
    for key, run in runs.items():
        if key == reference:
            continue
        if run.embedded.ids != base.embedded.ids:
            raise ValueError(f"{key} and {reference} decoded different clips; they cannot be paired")
        d = M.paired_bootstrap_diff(base.t2v_ranks, run.t2v_ranks, "R@1", n_boot=n_boot, seed=seed,
                                    clusters=base.caption_clusters)  # fmt: skip
        line = {"strategy": key[0], "n_frames": key[1], "dR@1": d.diff, "low": d.low, "high": d.high,
                "p": d.p_value}  # fmt: skip
        if base.pairs.any:
            test = M.mcnemar_exact(base.pair_outcomes, run.pair_outcomes)
            line.update(pair_acc=M.pair_accuracy(run.pair_outcomes).accuracy,
                        d_pair_acc=100.0 * (run.pair_outcomes.mean() - base.pair_outcomes.mean()),
                        pair_p=test.p_value)  # fmt: skip
        lines.append(line)
    table = pd.DataFrame(lines)
    if table.empty:
        return table
    return M.holm_verdicts(table, alpha, {"p": "real", "pair_p": "pair_real"})


def partner_confusion(outcomes: pd.DataFrame) -> float:
    """Fraction of missed queries (rank > 1) whose first-ranked clip is their clip's hard-pair partner."""
    missed = outcomes[outcomes["rank"] > 1]
    return float(missed["top1_is_partner"].mean()) if len(missed) else 0.0


def best_and_worst(outcomes: pd.DataFrame, k: int = 3) -> pd.DataFrame:
    """The ``k`` clearest hits and the ``k`` worst misses by ``margin``, one query per clip each.

    Labelled in a ``kind`` column; ties are broken by query order, so the choice is deterministic.
    """
    ordered = outcomes.sort_values("margin", ascending=False, kind="stable")
    best = ordered.drop_duplicates("clip").head(k)
    worst = ordered[::-1].drop_duplicates("clip").head(k)
    return pd.concat([best.assign(kind="best"), worst.assign(kind="worst")])


# ------------------------------------------------------------------------------ what notebook 01 keeps

#: The metrics of each test set's run that notebook 01 saves (as ``<test set>_<key>``).
RUN_KEYS = (
    "t2v_R@1", "t2v_R@1_lo", "t2v_R@1_hi", "t2v_R@5", "t2v_R@10", "t2v_MedR", "t2v_MeanR",
    "v2t_R@1", "v2t_R@5", "v2t_R@10", "v2t_MedR", "v2t_MeanR", "dsl_t2v_R@1", "dsl_v2t_R@1",
    "alignment_loss", "cosine_top1", "cosine_gap", "n_queries", "n_videos",
)  # fmt: skip
#: With hard pairs, the pair accuracy keys saved beside :data:`RUN_KEYS`.
PAIR_KEYS = ("pair_acc", "pair_acc_lo", "pair_acc_hi", "pair_n")


def run_metrics(name: str, run: ZeroShotRun) -> dict[str, float]:
    """The saved metrics of one test set's run: :data:`PAIR_KEYS` (with hard pairs), :data:`RUN_KEYS`,
    and ``partner_confusion`` where some query ranks its hard-pair partner first."""
    m = run.metrics
    out = {f"{name}_{key}": m[key] for key in PAIR_KEYS if "pair_acc" in m}
    out |= {f"{name}_{key}": m[key] for key in RUN_KEYS}
    outcomes = run.outcomes()
    if outcomes["top1_is_partner"].any():
        out[f"{name}_partner_confusion"] = partner_confusion(outcomes)
    return out


def metric_tables(run: ZeroShotRun) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The plain metrics with their intervals, and the dual-softmax (DSL) ones, as display tables."""
    m = run.metrics
    cis = {k: (m[f"{k}_lo"], m[f"{k}_hi"]) for k in m if f"{k}_lo" in m}
    plain = M.metrics_table(m, cis, v2t_label=run.v2t_label)
    dsl = M.metrics_table(m, prefix="dsl_", v2t_label=run.v2t_label).rename(index=lambda r: f"{r} (DSL)")
    return plain, dsl


def published_comparison(run: ZeroShotRun, system: str, keys: Sequence[str] = ("t2v_R@1", "t2v_R@5", "t2v_R@10",
                         "t2v_MedR")) -> pd.DataFrame:  # fmt: skip
    """The published zero-shot CLIP B/32 MSR-VTT 1k-A figure (:mod:`vtr.anchors`, with its source) above
    ``run``'s, labelled ``system``."""
    from vtr.anchors import anchor

    published = anchor("msrvtt-1ka-clip-b32-zero-shot")
    return pd.DataFrame(
        [{k: published.metrics[k] for k in keys}, {k: run.metrics[k] for k in keys}],
        index=[f"{published.system} ({published.source})", system],
    ).round(1)


@dataclass
class Sweep:
    """Notebook 01's strategy x frame-count sweep on one test set, and every setting against the reference."""

    runs: dict[tuple[str, int], ZeroShotRun]
    table: pd.DataFrame  # sweep_table rows of the frame counts shown
    differences: pd.DataFrame  # sweep_differences against `reference`, Holm-corrected
    reference: tuple[str, int]

    @property
    def n_real(self) -> int:
        """How many t2v R@1 differences from the reference are real after the Holm correction."""
        return int(self.differences["real"].sum()) if len(self.differences) else 0

    def shown(self) -> pd.DataFrame:
        """The columns of the sweep the notebook displays."""
        columns = ["strategy", "n_frames", "t2v_R@1", "t2v_R@5", "t2v_MedR", "v2t_R@1", "alignment_loss",
                   "cosine_gap", *(c for c in ("pair_acc", "pair_acc_lo", "pair_acc_hi") if c in self.table)]  # fmt: skip
        return self.table[columns]

    def saved_metrics(self) -> dict[str, float | int | str]:
        """Each setting's t2v R@1 (and pair accuracy), the reference and the counts of real differences."""
        out: dict[str, float | int | str] = {}
        for _, row in self.table.iterrows():
            out[f"sweep_{row['strategy']}_{row['n_frames']}_t2v_R@1"] = row["t2v_R@1"]
            if "pair_acc" in row:
                out[f"sweep_{row['strategy']}_{row['n_frames']}_pair_acc"] = row["pair_acc"]
        out["sweep_reference"] = f"{self.reference[0]}/{self.reference[1]}"
        out["sweep_n_real_R@1_differences"] = self.n_real
        out["sweep_n_comparisons"] = len(self.differences)
        if "pair_real" in self.differences:
            out["sweep_n_real_pair_acc_differences"] = int(self.differences["pair_real"].sum())
        return out


def profile_sweep(
    encoder: Encoder,
    clips: ClipSet,
    strategies: Sequence[str],
    frame_counts: Sequence[int],
    reference: tuple[str, int],
    size: int | None = None,
    *,
    seed: int = 0,
    cache_dir: str | os.PathLike[str] | None = None,
    n_boot: int = 1000,
    progress: bool = True,
) -> Sweep:
    """:func:`sweep_runs` over ``frame_counts`` and the reference's frame count (which the differences
    need even when it is not shown), the table of the shown ``frame_counts``, and :func:`sweep_differences`."""
    counts = sorted(set(frame_counts) | {reference[1]})
    runs = sweep_runs(encoder, clips, strategies, counts, size, seed=seed, cache_dir=cache_dir, n_boot=n_boot,
                      progress=progress)  # fmt: skip
    table = sweep_table(runs)
    table = table[table["n_frames"].isin(list(frame_counts))].reset_index(drop=True)
    return Sweep(runs, table, sweep_differences(runs, reference, n_boot=n_boot, seed=seed), reference)


def category_metrics(per_category: pd.DataFrame, prefix: str = "test") -> dict[str, float]:
    """``<prefix>_category_<category>_R@1`` for every row of :meth:`ZeroShotRun.per_category`."""
    return {f"{prefix}_category_{c}_R@1": float(r) for c, r in zip(per_category["category"], per_category["R@1"],
                                                                   strict=True)}  # fmt: skip
