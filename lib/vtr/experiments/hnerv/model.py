"""Stage 3 of the HNeRV study: which models it trains, their sizes, and how a model is read out.

A :class:`RunSpec` names one trained model (kind, size, split); :func:`study_plan` lists the study's
runs; :func:`build_model` makes the model of a run from the registered HNeRV kinds
(:func:`vtr.models.hnerv.create_hnerv`).

Fair held-out frames and honest sizes. The coordinate model reaches a held-out frame from its index
alone. The content model (HNeRV) decodes stored embeddings; encoding a held-out frame's own pixels
would make it an autoencoder of that frame, not a representation that never saw it. So a held-out
frame's content embeddings are *interpolated* in time from the nearest training frames before and
after it (:func:`interpolation_plan`), patch by patch, and the stored size of a content run is its
decoder-side weights plus the embeddings of its training frames (:func:`vtr.models.hnerv.stored_values`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch
from torch import nn

from vtr.experiments.hnerv.data import PatchData
from vtr.experiments.hnerv.splits import FrameSplit
from vtr.models.hnerv import (
    ContentHNeRV,
    HNeRVOutput,
    create_hnerv,
    hnerv_options,
    list_hnervs,
    parameter_counts,
    spec_for_patch,
    stored_values,
)

if TYPE_CHECKING:
    from vtr.config import HnervConfig


@dataclass(frozen=True)
class RunSpec:
    """One trained model of the study."""

    kind: str  # a registered HNeRV kind: "coords" (dual-head, seed 000) or "content" (HNeRV reference)
    size: str
    split: str

    @property
    def name(self) -> str:
        return f"{self.kind}-{self.size}-{self.split}"


def study_plan(h: HnervConfig) -> list[RunSpec]:
    """Every size on ``main_split``, every split at ``main_size``, and the content reference on
    each of ``reference_splits`` at ``main_size``."""
    if h.main_size not in h.widths:
        raise ValueError(f"hnerv.main_size={h.main_size!r} is not one of hnerv.widths {sorted(h.widths)}")
    if h.main_split not in h.splits:
        raise ValueError(f"hnerv.main_split={h.main_split!r} is not one of hnerv.splits {h.splits}")
    plan = [RunSpec("coords", size, h.main_split) for size in h.widths]
    plan += [RunSpec("coords", h.main_size, split) for split in h.splits if split != h.main_split]
    plan += [RunSpec("content", h.main_size, split) for split in h.reference_splits]
    return plan


def build_model(h: HnervConfig, spec: RunSpec, data: PatchData) -> nn.Module:
    """The model of ``spec`` for ``data``'s patch size and CLIP width (its kind's options from ``h``)."""
    if spec.size not in h.widths:
        raise ValueError(f"unknown model size {spec.size!r}; hnerv.widths has {sorted(h.widths)}")
    decoder = spec_for_patch(
        data.patch_hw,
        h.widths[spec.size],
        h.strides,
        reduce=h.reduce,
        lower_width=h.lower_width,
        kernel_max=h.kernel_max,
    )
    return create_hnerv(spec.kind, decoder, data.targets.shape[-1], **hnerv_options(spec.kind, h))


def size_table(h: HnervConfig, data: PatchData) -> pd.DataFrame:
    """Parameter counts of every registered kind at every model size, and what
    a decoder stores to reproduce every frame of ``data``: ``weights`` (all but the content encoder)
    + ``embeddings`` (the content model's, one per patch of every frame) = ``stored``."""
    rows = []
    for kind in list_hnervs():
        for size in h.widths:
            model = build_model(h, RunSpec(kind, size, h.main_split), data)
            counts = parameter_counts(model)
            stored = stored_values(model, data.n_frames * data.n_patches)
            rows.append({"kind": kind, "size": size, "fc_dim": h.widths[size], **counts, **stored})
    table = pd.DataFrame(rows).fillna(0)
    counts = [c for c in table.columns if c not in ("kind", "size")]
    return table.astype({c: int for c in counts})


def model_inputs(kind: str, data: PatchData) -> torch.Tensor:
    """(F·P, 3) coordinates, or (F·P, 3, ph, pw) uint8 pixels for the content model."""
    if kind == "coords":
        return torch.from_numpy(data.coords().reshape(-1, 3))
    return patch_pixels(data)


def patch_pixels(data: PatchData) -> torch.Tensor:
    """(F·P, 3, ph, pw) uint8: every patch of every frame, flat in (frame, patch) order."""
    patches = data.patches()
    return torch.from_numpy(np.ascontiguousarray(patches.reshape(-1, *patches.shape[2:]))).permute(0, 3, 1, 2)


def interpolation_plan(split: FrameSplit, n_frames: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per frame ``(lo, hi, w)``: its content embedding is ``(1 − w)·e[lo] + w·e[hi]``, where
    ``lo`` and ``hi`` are the nearest training frames at or before and at or after it (a training
    frame is its own, ``w = 0``; before the first or after the last training frame the nearest one)."""
    train = np.asarray(split.train)
    if not len(train):
        raise ValueError(f"split {split.name!r} has no training frames to interpolate from")
    frames = np.arange(n_frames)
    after = np.clip(np.searchsorted(train, frames, side="left"), 0, len(train) - 1)
    before = np.clip(np.searchsorted(train, frames, side="right") - 1, 0, len(train) - 1)
    lo, hi = train[before], train[after]
    lo = np.where(lo > frames, hi, lo)  # before the first training frame
    hi = np.where(hi < frames, lo, hi)  # after the last one
    span = (hi - lo).astype(np.float32)
    weight = np.divide(frames - lo, span, out=np.zeros(n_frames, dtype=np.float32), where=span > 0)
    return lo, hi, weight.astype(np.float32)


def own_pixels_plan(n_frames: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every frame encoded from its own pixels: what HNeRV does for frames it stores (an
    autoencoder when applied to frames that were not trained on)."""
    frames = np.arange(n_frames)
    return frames, frames, np.zeros(n_frames, dtype=np.float32)


def predict(
    net: nn.Module,
    inputs: torch.Tensor,
    pixels: torch.Tensor,
    flat: torch.Tensor,
    n_patches: int,
    plan: tuple[np.ndarray, np.ndarray, np.ndarray],
    device: torch.device,
) -> HNeRVOutput:
    """The model's output for the flat patch indices ``flat``: from the coordinates, or (content
    model) from content embeddings of the ``plan``'s frames, mixed by its weights."""
    if not isinstance(net, ContentHNeRV):
        return net(inputs[flat].to(device))
    lo, hi, weight = (torch.from_numpy(a) for a in plan)
    frame, patch = flat // n_patches, flat % n_patches

    def embed(source: torch.Tensor) -> torch.Tensor:
        return net.encode(pixels[source * n_patches + patch].to(device).float().div_(255.0))

    w = weight[frame].to(device).view(-1, 1, 1, 1)
    return net.decode((1 - w) * embed(lo[frame]) + w * embed(hi[frame]))
