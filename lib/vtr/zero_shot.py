"""Zero-shot video-text retrieval: a frozen CLIP, frames mean-pooled into a video embedding.

With a video encoder (``model.arch: viclip-l14``) the video embedding is ViCLIP's one joint pass
over the clip instead; the protocol is in :mod:`vtr.models.viclip`.

The code behind notebook ``01_baselines``; every number it reports comes from here.

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
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from vtr import metrics as M
from vtr.config import Profile
from vtr.data.manifest import DataWarning
from vtr.data.msrvtt import load_msrvtt
from vtr.data.sources import ClipSet
from vtr.embeddings import VideoEmbeddings, embed_texts, embed_videos
from vtr.evaluation import HardPairs, evaluate_retrieval, hard_pairs
from vtr.models.encoders import Encoder
from vtr.paths import resolve
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


def msrvtt_test_clips(profile: Profile) -> ClipSet | None:
    """MSR-VTT 1k-A as a second test set, when the profile names its annotations and videos.

    None when ``data.msrvtt_annotations`` is unset, when MSR-VTT already is the profile's own
    source, or when the folders do not exist yet (a warning names them).
    """
    data = profile.data
    if not data.msrvtt_annotations or data.source == "msrvtt":
        return None
    annotations, videos = resolve(data.msrvtt_annotations), resolve(data.root)
    if not annotations.is_dir() or not videos.is_dir():
        warnings.warn(
            f"MSR-VTT not found (data.msrvtt_annotations={annotations}, data.root={videos}); "
            "see data/README.md to prepare it",
            DataWarning,
            stacklevel=2,
        )
        return None
    return ClipSet("MSR-VTT 1k-A", "test", list(load_msrvtt(annotations, "test_1k", videos)), videos)


def clip_path(clips: ClipSet, clip_id: str) -> Path:
    """The video file of ``clip_id`` in ``clips``."""
    for record in clips.records:
        if record.id == clip_id:
            return record.video_path(clips.base_dir)
    raise KeyError(f"{clips.name} {clips.split}: no clip {clip_id!r}")
