"""Stage 4 of the HNeRV study: seed 000's loss and one run trained by the shared trainer.

Loss. Seed 000's: ``0.7·L1 + 0.3·(1 − SSIM)`` on pixels (NeRV's "Fusion6") plus ``λ·(1 − cos)``
between predicted and CLIP embeddings, with λ = 0 for the first ``clip_warmup_epochs`` epochs.
SSIM is :func:`vtr.metrics.ssim` (``pytorch_msssim``, the package HNeRV itself uses).

Training goes through :func:`vtr.train.fit`, the one trainer (AdamW with its one parameter-group
rule, warmup + cosine, atomic checkpoints, resume); HNeRV's models have no BatchNorm, so nothing
needs recalibrating. A finished run is cached under ``<data_dir>/cache/hnerv/runs/<run>-<key>/``
(:func:`run_dir`): rerunning the notebook reloads it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vtr.experiments.hnerv.data import CACHE_KIND, STUDY_VERSION, PatchData
from vtr.experiments.hnerv.model import (
    RunSpec,
    build_model,
    interpolation_plan,
    model_inputs,
    patch_pixels,
    predict,
)
from vtr.experiments.hnerv.splits import HELD_OUT, TRAIN, FrameSplit, split_frames
from vtr.keys import NOT_IN_KEYS, cache_root, run_key
from vtr.metrics import psnr, ssim
from vtr.runtime import resolve_device, torch_generator

if TYPE_CHECKING:
    from vtr.config import Profile, TrainConfig
    from vtr.train import TrainResult

# Seed 000's pixel loss ("Fusion6"): 0.7 L1 + 0.3 (1 - SSIM).
L1_WEIGHT, SSIM_WEIGHT = 0.7, 0.3
# hnerv fields that only choose what the notebook shows: they never enter a run key.
PRESENTATION_FIELDS = frozenset({"queries", "top_k", "tsne_points"})


def pixel_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Seed 000's pixel loss: ``0.7·L1 + 0.3·(1 − SSIM)``, means over the batch."""
    return L1_WEIGHT * F.l1_loss(pred.float(), target.float()) + SSIM_WEIGHT * (1 - ssim(pred, target).mean())


def embedding_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``1 − cos(pred, target)``, mean over the batch."""
    return (1 - F.cosine_similarity(pred.float(), target.float(), dim=-1)).mean()


# --------------------------------------------------------------------------------------- training


class Trainee(nn.Module):
    """A model as the trainer sees it: turns uint8 pixel inputs into [0, 1] floats for the content
    model, and counts optimizer batches in a buffer, so the embedding warmup survives resuming."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("batches_seen", torch.zeros((), dtype=torch.long))

    def forward(self, inputs: torch.Tensor) -> Any:
        if inputs.dtype == torch.uint8:
            inputs = inputs.float().div_(255.0)
        return self.net(inputs)


@dataclass
class HnervLoss:
    """``batch_loss`` for :func:`vtr.train.fit`: pixel loss + λ·embedding loss after the warmup."""

    clip_weight: float
    warmup_epochs: int
    batches_per_epoch: int

    def epoch_of(self, batches_seen: int) -> int:
        """The 0-based epoch that the ``batches_seen``-th batch belongs to."""
        return batches_seen // max(1, self.batches_per_epoch)

    def weight(self, batches_seen: int) -> float:
        return self.clip_weight if self.epoch_of(batches_seen) >= self.warmup_epochs else 0.0

    def __call__(self, model: Trainee, batch: Sequence[torch.Tensor]) -> torch.Tensor:
        inputs, pixels, targets = batch
        out = model(inputs)
        loss = pixel_loss(out.rgb, pixels.float() / 255.0)
        lam = self.weight(int(model.batches_seen))
        if model.training:
            model.batches_seen += 1
        if lam > 0:
            loss = loss + lam * embedding_loss(out.embedding, targets)
        return loss


def train_config(cfg: Profile) -> TrainConfig:
    h = cfg.hnerv
    # HNeRV: Adam without weight decay or clipping; the trainer's warmup + cosine as HNeRV's schedule.
    return dataclasses.replace(
        cfg.train,
        epochs=h.epochs,
        batch_size=h.batch_size,
        lr_head=h.lr,
        weight_decay=0.0,
        grad_clip=0.0,
        patience=0,
    )


def run_dir(cfg: Profile, data: PatchData, spec: RunSpec, device: torch.device | str | None = None) -> Path:
    """``<data_dir>/cache/hnerv/runs/<run>-<key>``: the :func:`vtr.keys.run_key` of everything that
    shapes the weights (the data's key, the hnerv section but its :data:`PRESENTATION_FIELDS`, the
    trainer's settings, the seed, the run and the device type, as :data:`vtr.keys.NOT_IN_KEYS` says)."""
    dev = torch.device(device) if device is not None else resolve_device(cfg.device)
    key = run_key(
        STUDY_VERSION,
        data.key,
        cfg.hnerv,
        train_config(cfg),
        cfg.seed,
        spec,
        dev.type,
        exclude=NOT_IN_KEYS | PRESENTATION_FIELDS,
    )
    return cache_root(cfg.data_dir, CACHE_KIND) / "runs" / f"{spec.name}-{key}"


def curve_subset(split: FrameSplit, n_patches: int, limit: int, seed: int) -> dict[str, np.ndarray]:
    """Flat patch indices (at most ``limit`` per group) scored after each epoch for the curves."""
    rng = np.random.default_rng(seed)
    out = {}
    for group, frames in ((TRAIN, split.train), (HELD_OUT, split.held_out)):
        flat = (frames[:, None] * n_patches + np.arange(n_patches)).ravel()
        out[group] = (
            np.sort(rng.choice(flat, size=min(limit, len(flat)), replace=False)) if len(flat) else flat
        )
    return out


def patch_batches(
    inputs: torch.Tensor, pixels: torch.Tensor, targets: torch.Tensor, batch_size: int, seed: int
) -> torch.utils.data.DataLoader:
    """Shuffled ``(inputs, pixels, targets)`` batches of ``batch_size`` patches for :func:`vtr.train.fit`.

    Whole batches are taken by index (no per-item collation, which would cost more than the step
    on the small models); the trainer reseeds the generator every epoch, so a resumed run sees the
    batches an uninterrupted one would.
    """
    dataset = torch.utils.data.TensorDataset(inputs, pixels, targets)
    generator = torch_generator(seed)
    sampler = torch.utils.data.BatchSampler(
        torch.utils.data.RandomSampler(dataset, generator=generator), batch_size, drop_last=False
    )
    return torch.utils.data.DataLoader(dataset, sampler=sampler, batch_size=None, generator=generator)


def train_run(
    cfg: Profile,
    data: PatchData,
    spec: RunSpec,
    *,
    device: torch.device | str | None = None,
    progress: bool = False,
    out_dir: Path | None = None,
) -> tuple[nn.Module, TrainResult]:
    """Train one model of the study on the training frames of ``spec.split`` with the shared trainer.

    After every epoch the trainer records ``train_psnr``, ``heldout_psnr`` and ``heldout_cosine`` on
    a fixed subset of patches (the training curves; held-out patches of the content model from
    interpolated embeddings, as in :func:`vtr.experiments.hnerv.evaluate.evaluate`). The final weights are returned, as HNeRV
    reports its last epoch; nothing is selected on held-out frames.
    """
    from vtr.train import fit

    h = cfg.hnerv
    dev = torch.device(device) if device is not None else resolve_device(cfg.device)
    split = split_frames(data.n_frames, spec.split)
    # The initial weights come from the run's seed alone, not from whatever drew random numbers
    # earlier in the process (pretraining the tiny encoder in the same kernel, say).
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        net = build_model(h, spec, data)
    model = Trainee(net)
    inputs, pixels = model_inputs(spec.kind, data), patch_pixels(data)
    targets = torch.from_numpy(data.targets.reshape(-1, data.targets.shape[-1]))
    train_idx = torch.from_numpy((split.train[:, None] * data.n_patches + np.arange(data.n_patches)).ravel())
    loader = patch_batches(inputs[train_idx], pixels[train_idx], targets[train_idx], h.batch_size, cfg.seed)
    loss = HnervLoss(h.clip_weight, h.clip_warmup_epochs, len(loader))
    subset = curve_subset(split, data.n_patches, h.curve_patches, cfg.seed)
    plan = interpolation_plan(split, data.n_frames)

    def validate(m: nn.Module) -> dict[str, float]:
        scores: dict[str, float] = {}
        for group, idx in subset.items():
            if not len(idx):
                continue
            sel = torch.from_numpy(idx)
            out = predict(m.net, inputs, pixels, sel, data.n_patches, plan, dev)
            tag = "train" if group == TRAIN else "heldout"
            scores[f"{tag}_psnr"] = float(psnr(out.rgb.clamp(0, 1), pixels[sel].to(dev).float() / 255).mean())
            scores[f"{tag}_cosine"] = float((out.embedding.float() * targets[sel].to(dev)).sum(-1).mean())
        return scores

    result = fit(
        model,
        loss,
        loader,
        train_config(cfg),
        out_dir=out_dir or run_dir(cfg, data, spec, dev),
        validate=validate,
        monitor="train_psnr",
        mode="max",
        seed=cfg.seed,
        device=dev,
        progress=progress,
        restore_best=False,
    )
    return net.eval(), result
