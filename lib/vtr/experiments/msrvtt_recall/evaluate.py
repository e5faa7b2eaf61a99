"""Stage 4 of notebook 05: every row of the table, scored on the test split by :mod:`vtr.evaluation`.

A :class:`Row` is one system's query and video embeddings with its metrics; :func:`compute_rows` trains
(:mod:`~vtr.experiments.msrvtt_recall.train`) and scores them all.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch

from vtr import metrics as M
from vtr.evaluation import HardPairs, evaluate_retrieval
from vtr.experiments.msrvtt_recall.data import SplitData, split_train_val
from vtr.experiments.msrvtt_recall.train import (
    SEED_002,
    encode_frames,
    history_of,
    note_of,
    pretrained_trend,
    train_projection,
    train_temporal_head,
)

if TYPE_CHECKING:
    from vtr.config import Profile

ZERO_SHOT = "zero-shot"
#: Every metric with a bootstrap interval in a row: R@K and the rank statistics.
CI_METRICS = ("R@1", "R@5", "R@10", "MedR", "MeanR")


@dataclass
class Row:
    """One system's scores on the test split."""

    name: str
    text: np.ndarray  # (Q, D) query embeddings
    videos: np.ndarray  # (N, D) video embeddings
    caption_to_video: np.ndarray
    metrics: dict[str, float]
    history: pd.DataFrame | None = None  # training history (None for untrained rows)
    note: str = ""
    pairs: HardPairs | None = None

    @cached_property
    def sim(self) -> np.ndarray:
        """(Q, N) query-by-video cosine similarities."""
        return self.text @ self.videos.T

    @cached_property
    def t2v_ranks(self) -> np.ndarray:
        """Each query's rank of its own video (1 = first)."""
        return M.t2v_ranks(self.sim, self.caption_to_video)

    @cached_property
    def v2t_ranks(self) -> np.ndarray:
        """Each video's rank of its captions (CLIP4Clip rule, :func:`vtr.metrics.v2t_ranks`)."""
        return M.v2t_ranks(self.sim, self.caption_to_video)

    @cached_property
    def pair_outcomes(self) -> np.ndarray:
        """Per hard-pair caption: own clip scored above the partner (empty without pairs)."""
        if self.pairs is None:
            return np.zeros(0, dtype=bool)
        return M.pair_outcomes(self.sim, self.caption_to_video, self.pairs.partner)

    @property
    def video_clusters(self) -> np.ndarray:
        """The bootstrap unit of each video: its hard-pair group, else the video itself."""
        return self.pairs.clusters if self.pairs is not None else np.arange(len(self.videos))

    @property
    def pair_clusters(self) -> np.ndarray:
        """The hard-pair group of every caption :attr:`pair_outcomes` scores, in its order."""
        if self.pairs is None:
            return np.zeros(0, dtype=str)
        return self.pairs.clusters[self.caption_to_video][self.pairs.partner[self.caption_to_video] >= 0]



def score_row(
    name: str,
    text: np.ndarray,
    videos: np.ndarray,
    caption_to_video: np.ndarray,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    temperature: float = 0.07,
    history: pd.DataFrame | None = None,
    note: str = "",
    pairs: HardPairs | None = None,
) -> Row:
    """A :class:`Row` with every retrieval number of :func:`vtr.evaluation.evaluate_retrieval`, intervals
    for R@1/5/10, MedR and MeanR included (:data:`CI_METRICS`)."""
    metrics = evaluate_retrieval(text, videos, caption_to_video, temperature=temperature, n_boot=n_boot,
                                 seed=seed, pairs=pairs, ci_metrics=CI_METRICS)  # fmt: skip
    return Row(name, np.asarray(text, np.float32), np.asarray(videos, np.float32),
               np.asarray(caption_to_video), metrics, history, note, pairs)  # fmt: skip


def compute_rows(
    cfg: Profile,
    train: SplitData,
    test: SplitData,
    *,
    device: str | torch.device = "cpu",
    progress: bool = True,
    out_root: Path | None = None,
) -> dict[str, Row]:
    """Every row of the table: zero-shot, seed 002's recipe and one per temporal head in ``heads`` (the
    ``trend`` head starts from vtr-tiny's pretrained time maps, :func:`~.train.pretrained_trend`).

    Rows that cannot apply are left out with a printed reason (zero-shot and the heads need text and
    video features of the same width; pre-extracted features may differ).
    """
    mr = cfg.msrvtt_recall
    fit_part, val = split_train_val(train, mr.val_fraction, cfg.seed)
    same_width = test.text.shape[1] == test.frames.shape[-1]
    score = dict(n_boot=mr.n_boot, seed=cfg.seed, temperature=mr.temperature, pairs=test.pairs)
    rows: dict[str, Row] = {}

    def where(name: str) -> Path | None:
        return out_root / name.replace(" ", "_") if out_root is not None else None

    if same_width:
        rows[ZERO_SHOT] = score_row(ZERO_SHOT, test.text, test.videos, test.caption_to_video, **score)
    else:
        print(f"zero-shot and temporal-head rows skipped: text width {test.text.shape[1]} "
              f"!= video feature width {test.frames.shape[-1]}")  # fmt: skip

    projection, result = train_projection(cfg, fit_part, val, device=device, out_dir=where(SEED_002),
                                          progress=progress)  # fmt: skip
    with torch.no_grad():
        text = projection(torch.from_numpy(test.text).to(device)).cpu().numpy()
    rows[SEED_002] = score_row(SEED_002, text, test.videos, test.caption_to_video, **score,
                               history=history_of(result), note=note_of(result, mr.monitor))  # fmt: skip
    trend_state = pretrained_trend(cfg) if same_width else None
    for kind in mr.heads if same_width else ():
        name = f"{kind} head"
        head, result = train_temporal_head(cfg, kind, fit_part, val, device=device, out_dir=where(name),
                                           progress=progress, trend_state=trend_state)  # fmt: skip
        videos = encode_frames(head, test.frames, device).cpu().numpy()
        note = note_of(result, mr.monitor) if result is not None else "no trainable parameters: mean pooling as is"
        rows[name] = score_row(name, test.text, videos, test.caption_to_video, **score,
                               history=history_of(result), note=note)  # fmt: skip
    return rows


def best_row(rows: dict[str, Row], metric: str = "t2v_R@1") -> str:
    """The name of the row with the highest ``metric`` (the first such row on a tie)."""
    return max(rows, key=lambda name: rows[name].metrics[metric])
