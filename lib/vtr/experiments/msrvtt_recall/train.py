"""Stage 3 of notebook 05: training on frozen features, every model through :func:`vtr.train.fit`.

Seed 002's text projection learns with hard-negative InfoNCE, the temporal heads with plain InfoNCE,
both on batches of :class:`PairBatches` (with ``msrvtt_recall.sampler: pairs`` a clip's hard-pair partner
shares its batch, :class:`vtr.data.samplers.PairBatchSampler`). The ``trend`` head starts from the time
maps vtr-tiny was pretrained with (:func:`vtr.models.tiny.pretrained_trend_state`) when the profile uses
vtr-tiny and ``msrvtt_recall.trend_init`` is on. A held-out part of the training split picks the epoch
(``val_fraction``); the test split is never seen. Each trained row keeps its checkpoints under
:func:`run_dir`, keyed by :func:`vtr.keys.run_key` of its settings and the training features, so a
re-run resumes or reuses it and any change starts afresh.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from vtr import metrics as M
from vtr.data.samplers import PairBatchSampler
from vtr.experiments.msrvtt_recall.data import SplitData
from vtr.finetune import MONITORS, pair_monitor_values
from vtr.keys import array_digest, run_key
from vtr.losses import hard_negative_info_nce, info_nce
from vtr.models.projection import TextProjection, create_projection
from vtr.models.temporal import create_temporal_head, load_pretrained_trend
from vtr.paths import resolve
from vtr.train import fit

if TYPE_CHECKING:
    from vtr.config import Profile
    from vtr.train import TrainResult

# Bump when the trained models or their inputs change, so old checkpoints are not resumed.
# 2: the trend head from vtr-tiny's pretrained maps, the pairs sampler.
RUN_VERSION = 2
SEED_002 = "seed 002"


class PairBatches:
    """Batches of ``(video item, caption embedding)`` pairs for contrastive training on frozen features.

    Each pass (epoch) visits every video ``rounds`` times, each time with one of its captions drawn at
    random; within a round a batch never holds a video twice, so the in-batch negatives are true
    negatives. With ``clusters`` (one label per video, e.g. its hard-pair group) the round's batches
    come from a :class:`~vtr.data.samplers.PairBatchSampler`: videos sharing a label share a batch,
    so a clip's hard partner is always among its negatives. The draws come from ``self.generator``, which :func:`vtr.train.fit` re-seeds from
    ``(seed, epoch)`` at the start of every epoch, so a resumed run draws what an uninterrupted one
    would. Batches of fewer than two pairs (a lone last one) are skipped: they have no negative.
    """

    def __init__(
        self,
        videos: Tensor,
        text: Tensor,
        caption_to_video: np.ndarray,
        batch_size: int,
        seed: int = 0,
        rounds: int = 1,
        clusters: np.ndarray | None = None,
    ) -> None:
        owners = np.asarray(caption_to_video)
        counts = np.bincount(owners, minlength=len(videos))
        if (counts == 0).any():
            raise ValueError(f"video {int(np.flatnonzero(counts == 0)[0])} has no caption to train on")
        if len(counts) != len(videos):
            raise ValueError(f"caption_to_video names video {len(counts) - 1}, but there are {len(videos)}")
        if batch_size < 2:
            raise ValueError(f"batch_size must be at least 2 for in-batch negatives, got {batch_size}")
        self.videos, self.text = videos, text
        self.order = torch.from_numpy(np.argsort(owners, kind="stable"))  # captions grouped by video
        self.starts = torch.from_numpy(np.concatenate([[0], np.cumsum(counts)[:-1]]))
        self.counts = torch.from_numpy(counts)
        self.batch_size, self.rounds = batch_size, rounds
        self.generator = torch.Generator().manual_seed(seed)
        if clusters is not None and len(clusters) != len(videos):
            raise ValueError(f"clusters label {len(clusters)} videos, but there are {len(videos)}")
        self.sampler = (None if clusters is None
                        else PairBatchSampler(clusters, batch_size, generator=self.generator))  # fmt: skip

    def __len__(self) -> int:
        if self.sampler is not None:  # packing varies by a batch at most between rounds
            return self.rounds * len(self.sampler)
        full, rest = divmod(len(self.videos), self.batch_size)
        return self.rounds * (full + (rest >= 2))

    def _round(self) -> Iterator[Tensor]:
        """One round's batches of video indices."""
        if self.sampler is not None:
            for batch in self.sampler:
                yield torch.as_tensor(batch)
            return
        perm = torch.randperm(len(self.videos), generator=self.generator)
        yield from perm.split(self.batch_size)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        n = len(self.videos)
        for _ in range(self.rounds):
            offsets = (torch.rand(n, generator=self.generator, dtype=torch.float64) * self.counts).long()
            picks = self.order[self.starts + offsets]
            for chunk in self._round():
                if len(chunk) >= 2:
                    yield self.videos[chunk], self.text[picks[chunk]]



def features_digest(*arrays: np.ndarray) -> str:
    """A short hex digest of the arrays' bytes: the training features' content, for :func:`run_dir`."""
    return array_digest(*arrays)


def run_dir(cfg: Profile, train: SplitData, name: str, start: dict[str, Tensor] | None = None) -> Path:
    """Checkpoint folder of one trained row: ``<data_dir>/runs/05_msrvtt_recall/<row>-<key>``, the key
    (:func:`vtr.keys.run_key`) covering the row, the seed, the ``msrvtt_recall`` and ``train`` sections
    and the training features' content (and ``start``, a head's initial weights, e.g. the pretrained
    trend maps), so a re-run resumes or reuses it and any change starts afresh."""
    features = features_digest(train.frames, train.text, train.caption_to_video)
    if start is not None:
        features += features_digest(*(v.detach().cpu().numpy() for _, v in sorted(start.items())))
    key = run_key(RUN_VERSION, name, cfg.seed, cfg.msrvtt_recall, cfg.train, features)
    slug = name.replace(" ", "_")
    return resolve(cfg.data_dir) / "runs" / "05_msrvtt_recall" / f"{slug}-{key}"


def _train_config(cfg: Profile) -> Any:
    mr = cfg.msrvtt_recall
    return dataclasses.replace(
        cfg.train, epochs=mr.epochs, batch_size=mr.batch_size, lr_head=mr.lr, patience=mr.patience
    )


def _held_out(val: SplitData | None, score: Callable[[nn.Module, SplitData], tuple[Tensor, Tensor]]) -> Any:
    """A ``validate`` callback on the held-out videos (None without a held-out part): t2v R@1, MeanR,
    and, as notebook 02 watches them (:func:`vtr.finetune.validation_metrics`), the hard-pair accuracy
    and its mean with R@1 (R@1 alone where there are no hard pairs, as on MSR-VTT)."""
    if val is None:
        return None

    def validate(model: nn.Module) -> dict[str, float]:
        text, videos = score(model, val)
        sim = (text @ videos.T).float().cpu().numpy()
        ranks = M.t2v_ranks(sim, val.caption_to_video)
        out = {"val_R@1": float(100 * np.mean(ranks == 1)), "val_MeanR": float(ranks.mean())}
        pairs = val.pairs
        outcomes = M.pair_outcomes(sim, val.caption_to_video, pairs.partner) if pairs is not None else np.empty(0)
        return out | pair_monitor_values(out["val_R@1"], outcomes)

    return validate


def train_projection(
    cfg: Profile,
    train: SplitData,
    val: SplitData | None,
    *,
    device: str | torch.device = "cpu",
    out_dir: Path | None = None,
    progress: bool = True,
) -> tuple[TextProjection, TrainResult]:
    """Seed 002's recipe on frozen features: the text projection trained with hard-negative InfoNCE."""
    mr = cfg.msrvtt_recall
    torch.manual_seed(cfg.seed)
    model = create_projection("mlp", train.text.shape[1], train.videos.shape[1], mr.projection_hidden)
    model = model.to(device)
    videos = torch.from_numpy(train.videos)
    batches = PairBatches(videos, torch.from_numpy(train.text), train.caption_to_video, mr.batch_size,
                          cfg.seed, mr.rounds_per_epoch, batch_clusters(cfg, train))  # fmt: skip

    def batch_loss(m: nn.Module, batch: tuple[Tensor, Tensor]) -> Tensor:
        video, text = batch
        return hard_negative_info_nce(m(text) @ video.T, mr.temperature, mr.hard_negatives)

    def score(m: nn.Module, split: SplitData) -> tuple[Tensor, Tensor]:
        return m(torch.from_numpy(split.text).to(device)), torch.from_numpy(split.videos).to(device)

    result = fit(
        model,
        batch_loss,
        batches,
        _train_config(cfg),
        out_dir=out_dir or run_dir(cfg, train, SEED_002),
        validate=_held_out(val, score),
        monitor=MONITORS[cfg.msrvtt_recall.monitor],
        seed=cfg.seed,
        device=device,
        progress=progress,
    )
    return model.eval(), result


def batch_clusters(cfg: Profile, data: SplitData) -> np.ndarray | None:
    """What :class:`PairBatches` keeps together under ``msrvtt_recall.sampler``: the hard-pair group of
    every video for ``pairs`` (when the split has hard pairs), else None (random batches)."""
    if cfg.msrvtt_recall.sampler == "pairs" and data.pairs is not None:
        return data.pairs.clusters
    return None


def build_temporal_head(
    cfg: Profile, kind: str, dim: int, trend_state: dict[str, Tensor] | None = None
) -> nn.Module:
    """The head ``kind`` over ``dim``-wide frames with the profile's options: ``seqtransf`` with
    ``msrvtt_recall.head_layers`` layers, ``trend`` of degree ``tiny.trend_degree`` loaded from
    ``trend_state`` (vtr-tiny's pretrained time maps) when given."""
    kwargs: dict[str, Any] = {}
    if kind == "seqtransf":
        kwargs = {"layers": cfg.msrvtt_recall.head_layers}
    elif kind == "trend":
        kwargs = {"degree": cfg.tiny.trend_degree}
    head = create_temporal_head(kind, dim, **kwargs)
    if kind == "trend" and trend_state is not None:
        load_pretrained_trend(head, trend_state)
    return head


def pretrained_trend(cfg: Profile) -> dict[str, Tensor] | None:
    """vtr-tiny's pretrained trend head for the ``trend`` row (None when ``msrvtt_recall.trend_init`` is
    off, no row is ``trend`` or the profile does not use vtr-tiny); builds the checkpoint if needed."""
    if not cfg.msrvtt_recall.trend_init or "trend" not in cfg.msrvtt_recall.heads:
        return None
    from vtr.models.tiny import pretrained_trend_state

    return pretrained_trend_state(cfg)


def train_temporal_head(
    cfg: Profile,
    kind: str,
    train: SplitData,
    val: SplitData | None,
    *,
    device: str | torch.device = "cpu",
    out_dir: Path | None = None,
    progress: bool = True,
    trend_state: dict[str, Tensor] | None = None,
) -> tuple[nn.Module, TrainResult | None]:
    """A temporal head over the frozen frame embeddings trained with InfoNCE against the frozen captions
    (:func:`build_temporal_head`; ``trend_state`` starts a ``trend`` head from vtr-tiny's maps).

    A head without trainable parameters (plain mean pooling) is returned untrained, with ``None``.
    """
    mr = cfg.msrvtt_recall
    torch.manual_seed(cfg.seed)
    head = build_temporal_head(cfg, kind, train.frames.shape[-1], trend_state).to(device)
    if not any(p.requires_grad for p in head.parameters()):
        return head.eval(), None
    batches = PairBatches(torch.from_numpy(train.frames), torch.from_numpy(train.text), train.caption_to_video,
                          mr.batch_size, cfg.seed, mr.rounds_per_epoch, batch_clusters(cfg, train))  # fmt: skip

    def batch_loss(m: nn.Module, batch: tuple[Tensor, Tensor]) -> Tensor:
        frames, text = batch
        return info_nce(text @ m(frames).T, mr.temperature)

    def score(m: nn.Module, split: SplitData) -> tuple[Tensor, Tensor]:
        return torch.from_numpy(split.text).to(device), encode_frames(m, split.frames, device)

    result = fit(
        head,
        batch_loss,
        batches,
        _train_config(cfg),
        out_dir=out_dir or run_dir(cfg, train, f"{kind} head", trend_state),
        validate=_held_out(val, score),
        monitor=MONITORS[cfg.msrvtt_recall.monitor],
        seed=cfg.seed,
        device=device,
        progress=progress,
    )
    return head.eval(), result


@torch.no_grad()
def encode_frames(
    head: nn.Module, frames: np.ndarray, device: str | torch.device, batch: int = 512
) -> Tensor:
    """``head`` over ``(N, T, D)`` frame embeddings in batches, in eval mode: ``(N, D)`` on ``device``."""
    was_training = head.training
    head.eval()
    parts = [head(torch.from_numpy(frames[i : i + batch]).to(device)) for i in range(0, len(frames), batch)]
    head.train(was_training)
    return torch.cat(parts)


def history_of(result: TrainResult | None) -> pd.DataFrame | None:
    """The training history to keep with a row (None for an untrained one)."""
    if result is None:
        return None
    # Wall-clock seconds are printed by the trainer, never kept: the tables must repeat exactly.
    return result.history.drop(columns=["seconds"], errors="ignore")



def note_of(result: TrainResult | None, monitor: str = "R@1") -> str:
    """A one-line note on how training ended: best epoch, its held-out ``monitor`` value, early stop."""
    if result is None:
        return ""
    value = "" if result.best_value is None else f" (held-out {monitor} {result.best_value:.1f})"
    return f"best epoch {result.best_epoch}{value}" + (", stopped early" if result.stopped_early else "")
