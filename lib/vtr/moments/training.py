"""Training samples and batches for moment retrieval, and training through :func:`vtr.train.fit`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from vtr.config import TrainConfig
from vtr.moments.features import QueryFeatures, VideoFeatures, clip_labels
from vtr.moments.models import MomentBatch
from vtr.runtime import torch_generator
from vtr.train import TrainResult, fit


@dataclass
class MomentSample:
    """One query on one video, with its ground-truth windows in seconds."""

    qid: int | str
    video: VideoFeatures
    query: QueryFeatures
    windows: list[tuple[float, float]]


def collate(samples: Sequence[MomentSample]) -> MomentBatch:
    """Pad clips and tokens into a :class:`MomentBatch`; labels and (centre, width) spans from the
    windows, the spans normalised by the span the clips cover."""
    n = max(s.video.n_clips for s in samples)
    length = max(int(s.query.tokens.shape[0]) for s in samples)
    dim = samples[0].video.clips.shape[1]
    clips = torch.zeros(len(samples), n, dim)
    clip_mask = torch.zeros(len(samples), n, dtype=torch.bool)
    tokens = torch.zeros(len(samples), length, dim)
    token_mask = torch.zeros(len(samples), length, dtype=torch.bool)
    labels = torch.zeros(len(samples), n)
    spans = []
    for i, s in enumerate(samples):
        k, t = s.video.n_clips, int(s.query.tokens.shape[0])
        clips[i, :k] = torch.from_numpy(s.video.clips)
        clip_mask[i, :k] = True
        tokens[i, :t] = s.query.tokens.cpu()
        token_mask[i, :t] = True
        labels[i, :k] = torch.from_numpy(clip_labels(s.windows, k, s.video.clip_len))
        covered = k * s.video.clip_len
        edges = np.clip(np.asarray(s.windows, dtype=np.float32).reshape(-1, 2) / covered, 0.0, 1.0)
        spans.append(torch.from_numpy(np.stack([edges.mean(axis=1), edges[:, 1] - edges[:, 0]], axis=1)))
    pooled = torch.stack([s.query.pooled.cpu() for s in samples])
    return MomentBatch(clips, clip_mask, tokens, token_mask, pooled, labels, spans)


def _loss(model: nn.Module, batch: MomentBatch) -> torch.Tensor:
    device = next(model.parameters()).device
    return model.loss(batch.to(device))


def train_moment_model(
    model: nn.Module,
    train: Sequence[MomentSample],
    cfg: TrainConfig,
    *,
    out_dir: str | Path,
    validate: Callable[[nn.Module], dict[str, float]] | None = None,
    monitor: str = "val_loss",
    mode: str = "min",
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> TrainResult:
    """Train ``model`` (its ``loss(batch)``) on ``train`` with the one trainer; resumable in ``out_dir``."""
    loader = DataLoader(
        list(train),
        batch_size=cfg.batch_size,
        shuffle=True,
        collate_fn=collate,
        generator=torch_generator(seed),
    )
    return fit(
        model, _loss, loader, cfg, out_dir=out_dir, validate=validate, monitor=monitor, mode=mode,
        seed=seed, device=device, progress=progress,
    )  # fmt: skip


def validation_loss(
    samples: Sequence[MomentSample], batch_size: int = 32
) -> Callable[[nn.Module], dict[str, float]]:
    """A ``validate`` callback: the mean loss over ``samples`` (``val_loss``)."""
    batches = [collate(samples[i : i + batch_size]) for i in range(0, len(samples), batch_size)]

    def run(model: nn.Module) -> dict[str, float]:
        model.eval()
        with torch.no_grad():
            losses = [float(_loss(model, b)) * b.clips.shape[0] for b in batches]
        model.train()
        return {"val_loss": sum(losses) / max(len(samples), 1)}

    return run
