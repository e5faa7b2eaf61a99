"""The dual-head HNeRV overfitting study (notebook 04): data, splits, loss, training, evaluation.

Seed 000 fits one video with a patch-coordinate network that predicts each patch's pixels *and*
its CLIP embedding, and reports strong train PSNR, a ~15 dB drop on held-out frames, and text
search that barely works. This module makes that a measured study:

    data = prepare_video(cfg, encoder)           # Big Buck Bunny, cropped, patches, CLIP targets
    runs = run_study(cfg, data)                  # sizes x splits (+ the content-HNeRV reference)
    runs[0].evaluation.summary()                 # PSNR / SSIM / cosine, train vs held-out
    embedding_checks(...), text_search(...), project_embeddings(...)

Splits. HNeRV's ``--data_split a_b_c`` (``data_split`` in its ``hnerv_utils.py``): frame ``i`` is at
position ``p = i mod c`` of its block of ``c`` frames; ``p < a`` trains, ``p >= b`` is HNeRV's
validation set, and ``a <= p < b`` is used for neither. So ``6_6_10`` trains on 60% and validates
on 40%, ``8_8_10`` trains on 80% and validates on 20%, and ``9_10_10`` trains on 90% and has *no*
validation frames (every 10th frame is skipped; seed 000's table shows "-" there). HNeRV's own
evaluation counts the skipped frames as "seen"; here every frame that was not trained on is
*held out*, so ``9_10_10`` reports its skipped 10% as held-out.

Loss. Seed 000's: ``0.7·L1 + 0.3·(1 − SSIM)`` on pixels (NeRV's "Fusion6") plus
``λ·(1 − cos)`` between predicted and CLIP embeddings, with λ = 0 for the first
``clip_warmup_epochs`` epochs. SSIM is ``pytorch_msssim.ssim`` (the package HNeRV itself uses:
differentiable, batched on the GPU, Gaussian 11 x 11 window, σ = 1.5, as scikit-image's
``structural_similarity(gaussian_weights=True, use_sample_covariance=False)``).

Training goes through the shared trainer :func:`vtr.train.fit` (AdamW, warmup + cosine, atomic
checkpoints, resume). A finished run is therefore cached: rerunning the notebook reloads it.

Fair held-out frames and honest sizes. The coordinate model reaches a held-out frame from its
index alone. The content model (HNeRV) decodes stored embeddings; encoding a held-out frame's own
pixels would make it an autoencoder of that frame, not a representation that never saw it. So a
held-out frame's content embeddings are *interpolated* in time from the nearest training frames
before and after it (the nearest one at the ends), patch by patch, and the stored size of a
content run is its decoder-side weights plus the embeddings of its training frames
(:func:`vtr.models.hnerv.stored_values`). What the content model does when it reads the held-out
pixels is still measured, under its own name (``heldout_*_own_pixels``: an autoencoder).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from pytorch_msssim import ssim as _ssim
from torch import nn
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as TF
from tqdm.auto import tqdm

from vtr.atomic import atomic_path
from vtr.metrics import t2v_ranks
from vtr.models.hnerv import (
    ContentHNeRV,
    DualHeadHNeRV,
    HNeRVOutput,
    create_hnerv,
    parameter_counts,
    spec_for_patch,
    stored_values,
)
from vtr.paths import resolve
from vtr.progress import show_progress
from vtr.runtime import resolve_device, torch_generator

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from vtr.config import HnervConfig, Profile
    from vtr.models.encoders import Encoder
    from vtr.train import TrainResult

# Bump when data preparation or training changes, so cached data and runs are rebuilt.
STUDY_VERSION = 3  # 2: held-out curves of content runs from interpolated embeddings; 3: seeded init
# Seed 000's pixel loss ("Fusion6"): 0.7 L1 + 0.3 (1 - SSIM).
L1_WEIGHT, SSIM_WEIGHT = 0.7, 0.3
SSIM_WINDOW = 11  # pytorch_msssim's default (and scikit-image's with gaussian_weights)
TRAIN, HELD_OUT = "train", "held-out"
# Pass criteria of the seed's four embedding checks (documented in :func:`embedding_checks`).
SPECIFICITY_MARGIN = 0.05  # matched cosine must beat mismatched pairs by this much
MIN_VARIANCE_RATIO = 0.5  # predicted embeddings keep at least half of the targets' variance
TEMPORAL_TOLERANCE = 0.05  # frame-to-frame similarity within this of the targets'
MAX_COSINE_GAP = 0.02  # train minus held-out cosine at most this
RELEVANT_FRACTION = 0.05  # text search: a patch in the ground truth's top 5% for a query is relevant


# --------------------------------------------------------------------------------------- splits


@dataclass(frozen=True)
class FrameSplit:
    """Frame indices of HNeRV's ``a_b_c`` split; ``held_out`` is every frame not trained on."""

    name: str
    train: np.ndarray
    skipped: np.ndarray  # HNeRV uses these for neither training nor validation
    val: np.ndarray

    @property
    def held_out(self) -> np.ndarray:
        return np.sort(np.concatenate([self.skipped, self.val]))

    def group_of(self, n_frames: int) -> np.ndarray:
        """Per frame: ``"train"`` or ``"held-out"``."""
        groups = np.full(n_frames, HELD_OUT, dtype=object)
        groups[self.train] = TRAIN
        return groups


def split_frames(n_frames: int, split: str) -> FrameSplit:
    """HNeRV's ``--data_split a_b_c`` over ``n_frames`` frames (see the module docstring)."""
    try:
        a, b, c = (int(v) for v in split.split("_"))
    except ValueError:
        raise ValueError(f"split {split!r} must be HNeRV's 'a_b_c' with integers, e.g. '6_6_10'") from None
    if not 0 < a <= b <= c:
        raise ValueError(f"split {split!r} needs 0 < a <= b <= c")
    if n_frames < 1:
        raise ValueError(f"n_frames must be >= 1, got {n_frames}")
    position = np.arange(n_frames) % c
    idx = np.arange(n_frames)
    return FrameSplit(split, idx[position < a], idx[(position >= a) & (position < b)], idx[position >= b])


def split_table(n_frames: int, splits: Sequence[str]) -> pd.DataFrame:
    """Frame counts per split: trained, skipped (HNeRV's unused), validated, held out (= not trained)."""
    rows = []
    for name in splits:
        s = split_frames(n_frames, name)
        rows.append(
            {
                "split": name,
                "train": len(s.train),
                "skipped": len(s.skipped),
                "val": len(s.val),
                "held-out": len(s.held_out),
                "first held-out frames": ", ".join(map(str, s.held_out[:6])),
            }
        )
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------- data


@dataclass
class PatchData:
    """One video cut into a grid of patches, with a CLIP embedding per patch.

    ``frames`` are the training-resolution frames (after crop and resize); ``targets[f, p]`` is the
    unit-length CLIP embedding of patch ``p`` (row-major in the grid) of frame ``f``, computed from
    the *cropped full-resolution* frame, so the target does not depend on the training resolution.
    """

    frames: np.ndarray  # (F, H, W, 3) uint8
    targets: np.ndarray  # (F, P, D) float32
    grid: tuple[int, int]
    source: str
    key: str  # identifies the video, the preparation and the encoder (cache keys build on it)

    def __post_init__(self) -> None:
        rows, cols = self.grid
        n, h, w, _ = self.frames.shape
        if h % rows or w % cols:
            raise ValueError(f"frames of {h}x{w} do not split into a {rows}x{cols} grid of equal patches")
        if self.targets.shape[:2] != (n, rows * cols):
            raise ValueError(f"targets {self.targets.shape} do not match {n} frames x {rows * cols} patches")

    @property
    def n_frames(self) -> int:
        return len(self.frames)

    @property
    def n_patches(self) -> int:
        return self.grid[0] * self.grid[1]

    @property
    def patch_hw(self) -> tuple[int, int]:
        return self.frames.shape[1] // self.grid[0], self.frames.shape[2] // self.grid[1]

    def patches(self) -> np.ndarray:
        """(F, P, ph, pw, 3) uint8, patches in row-major grid order."""
        return to_patches(self.frames, self.grid)

    def coords(self) -> np.ndarray:
        """(F, P, 3) float32 normalised (t, x, y): t = f / F (HNeRV's ``norm_idx``), x, y = patch centre."""
        rows, cols = self.grid
        t = np.arange(self.n_frames, dtype=np.float32) / self.n_frames
        r, c = np.divmod(np.arange(self.n_patches), cols)
        xy = np.stack([(c + 0.5) / cols, (r + 0.5) / rows], axis=1).astype(np.float32)
        out = np.empty((self.n_frames, self.n_patches, 3), dtype=np.float32)
        out[..., 0] = t[:, None]
        out[..., 1:] = xy[None]
        return out


def to_patches(frames: np.ndarray, grid: Sequence[int]) -> np.ndarray:
    """(F, H, W, C) → (F, rows·cols, H/rows, W/cols, C), row-major."""
    rows, cols = grid
    n, h, w, ch = frames.shape
    ph, pw = h // rows, w // cols
    return (
        frames.reshape(n, rows, ph, cols, pw, ch)
        .transpose(0, 1, 3, 2, 4, 5)
        .reshape(n, rows * cols, ph, pw, ch)
    )


def from_patches(patches: np.ndarray | torch.Tensor, grid: Sequence[int]) -> Any:
    """(F, rows·cols, ph, pw, C) → (F, rows·ph, cols·pw, C): the inverse of :func:`to_patches`."""
    rows, cols = grid
    n, _, ph, pw, ch = patches.shape
    out = patches.reshape(n, rows, cols, ph, pw, ch)
    out = out.transpose(0, 1, 3, 2, 4, 5) if isinstance(out, np.ndarray) else out.permute(0, 1, 3, 2, 4, 5)
    return out.reshape(n, rows * ph, cols * pw, ch)


def _video_path(name: str) -> Path:
    from vtr.data.real_videos import real_videos

    videos = real_videos()
    if name in videos:
        return videos[name]
    path = resolve(name)
    if not path.is_file():
        raise FileNotFoundError(
            f"hnerv.video={name!r} is neither a known real video {sorted(videos)} nor a file"
        )
    return path


def _crop_resize(
    frames: np.ndarray, crop: Sequence[int], resize: Sequence[int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 (F, H, W, 3) → (cropped, resized) uint8 tensors (F, 3, h, w); empty ``resize`` keeps the crop."""
    x = torch.from_numpy(frames).permute(0, 3, 1, 2)
    h, w = x.shape[-2:]
    if crop:
        ch, cw = (int(v) for v in crop)
        if ch > h or cw > w:
            raise ValueError(f"hnerv.crop {ch}x{cw} is larger than the {h}x{w} video")
        x = TF.center_crop(x, [ch, cw])
    small = x
    if resize:
        rh, rw = (int(v) for v in resize)
        small = TF.resize(x, [rh, rw], interpolation=InterpolationMode.BICUBIC, antialias=True)
    return x, small


def _patch_targets(cropped: torch.Tensor, grid: tuple[int, int], encoder: Encoder) -> np.ndarray:
    """(F, P, D) CLIP embeddings of the grid's patches of uint8 (F, 3, H, W) frames.

    When the patches are larger than the encoder's input, the frames are first resized so that a
    patch's shorter side matches it: one resize of whole frames instead of one per patch, and the
    encoder then sees the same pixels its own resize would give it (to rounding).
    """
    rows, cols = grid
    ph, pw = cropped.shape[-2] // rows, cropped.shape[-1] // cols
    side = min(encoder.image_size)
    scale = side / min(ph, pw)
    if scale < 1:
        size = [rows * max(1, round(ph * scale)), cols * max(1, round(pw * scale))]
        cropped = TF.resize(cropped, size, interpolation=InterpolationMode.BICUBIC, antialias=True)
    patches = to_patches(cropped.permute(0, 2, 3, 1).numpy(), grid)
    n, p = patches.shape[:2]
    return (
        encoder.encode_frames(patches.reshape(n * p, *patches.shape[2:])).reshape(n, p, -1).astype(np.float32)
    )


def data_key(cfg: Profile, encoder: Encoder) -> str:
    from vtr.video import content_fingerprint

    h = cfg.hnerv
    ident = {
        "version": STUDY_VERSION,
        "video": content_fingerprint(_video_path(h.video)),
        "max_frames": h.max_frames,
        "crop": list(h.crop),
        "resize": list(h.resize),
        "grid": list(h.grid),
        "encoder": encoder.identity(),
    }
    return hashlib.blake2b(json.dumps(ident, sort_keys=True).encode(), digest_size=8).hexdigest()


def prepare_video(cfg: Profile, encoder: Encoder, *, cache: bool = True) -> PatchData:
    """Decode ``hnerv.video``, centre-crop, resize, cut into the grid and embed every patch.

    Cached as ``<data_dir>/cache/hnerv/data-<key>.npz`` (atomic), keyed by the video's content, the
    preparation fields and the encoder's identity.
    """
    from vtr.video import probe, sample_frames

    h = cfg.hnerv
    key = data_key(cfg, encoder)
    target = resolve(cfg.data_dir) / "cache" / "hnerv" / f"data-{key}.npz"
    grid = (int(h.grid[0]), int(h.grid[1]))
    if cache and target.is_file():
        with np.load(target, allow_pickle=False) as stored:
            return PatchData(stored["frames"], stored["targets"], grid, h.video, key)
    path = _video_path(h.video)
    info = probe(path)
    n = min(info.frame_count, h.max_frames) if h.max_frames > 0 else info.frame_count
    # "uniform" with n samples of n frames takes every frame: index (2k + 1)·n // 2n = k
    full = sample_frames(path, n, "uniform", size=None, end=n / info.fps if n < info.frame_count else None)
    cropped, small = _crop_resize(full, h.crop, h.resize)
    del full
    if small.shape[-2] % grid[0] or small.shape[-1] % grid[1]:
        raise ValueError(f"frames of {tuple(small.shape[-2:])} do not split into a {grid[0]}x{grid[1]} grid")
    targets = _patch_targets(cropped, grid, encoder)
    data = PatchData(
        small.permute(0, 2, 3, 1).contiguous().numpy(),
        targets,
        grid,
        h.video,
        key,
    )
    if cache:
        with atomic_path(target) as tmp, tmp.open("wb") as f:
            np.savez(f, frames=data.frames, targets=data.targets)
    return data


# --------------------------------------------------------------------------------------- metrics


def _window(h: int, w: int) -> int:
    """The SSIM window: 11, or the largest odd size that fits a smaller image."""
    side = min(SSIM_WINDOW, h, w)
    return side if side % 2 else side - 1


def ssim(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image SSIM of (N, C, H, W) images in [0, 1]: (N,). Differentiable (pytorch_msssim)."""
    if pred.shape != target.shape or pred.ndim != 4:
        raise ValueError(
            f"ssim needs two (N, C, H, W) tensors of one shape, got {tuple(pred.shape)}, {tuple(target.shape)}"
        )
    win = _window(*pred.shape[-2:])
    if win < 3:
        raise ValueError(f"images of {tuple(pred.shape[-2:])} are too small for SSIM (need at least 3x3)")
    return _ssim(pred.float(), target.float(), data_range=1.0, size_average=False, win_size=win)


def psnr(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR in dB of (N, ...) images in [0, 1]: ``10·log10(1 / MSE)``; inf when equal."""
    mse = (pred.float() - target.float()).pow(2).flatten(1).mean(1)
    return -10.0 * torch.log10(mse)


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

    def __init__(self, net: DualHeadHNeRV | ContentHNeRV) -> None:
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


@dataclass(frozen=True)
class RunSpec:
    """One trained model of the study."""

    kind: str  # "coords" (dual-head, seed 000) or "content" (HNeRV reference)
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


def build_model(h: HnervConfig, spec: RunSpec, data: PatchData) -> DualHeadHNeRV | ContentHNeRV:
    """The model of ``spec`` for ``data``'s patch size and CLIP width."""
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
    return create_hnerv(
        spec.kind,
        decoder,
        data.targets.shape[-1],
        pe_base=h.pe_base,
        pe_levels=h.pe_levels,
        embed_dim=h.embed_dim,
    )


def size_table(h: HnervConfig, data: PatchData) -> pd.DataFrame:
    """Parameter counts of every model size (and of the content reference at each size), and what
    a decoder stores to reproduce every frame of ``data``: ``weights`` (all but the content encoder)
    + ``embeddings`` (the content model's, one per patch of every frame) = ``stored``."""
    rows = []
    for kind in ("coords", "content"):
        for size in h.widths:
            model = build_model(h, RunSpec(kind, size, h.main_split), data)
            counts = parameter_counts(model)
            stored = stored_values(model, data.n_frames * data.n_patches)
            rows.append({"kind": kind, "size": size, "fc_dim": h.widths[size], **counts, **stored})
    table = pd.DataFrame(rows).fillna(0)
    counts = [c for c in table.columns if c not in ("kind", "size")]
    return table.astype({c: int for c in counts})


def _inputs(kind: str, data: PatchData) -> torch.Tensor:
    """(F·P, 3) coordinates, or (F·P, 3, ph, pw) uint8 pixels for the content model."""
    if kind == "coords":
        return torch.from_numpy(data.coords().reshape(-1, 3))
    return _pixels(data)


def _pixels(data: PatchData) -> torch.Tensor:
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


def _predict(
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


def _train_config(cfg: Profile) -> Any:
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


def run_dir(cfg: Profile, data: PatchData, spec: RunSpec) -> Path:
    """``<data_dir>/cache/hnerv/runs/<run>-<hash>``: the hash covers everything that shapes the weights."""
    ident = {
        "version": STUDY_VERSION,
        "data": data.key,
        "hnerv": dataclasses.asdict(cfg.hnerv),
        "train": dataclasses.asdict(_train_config(cfg)),
        "seed": cfg.seed,
        "spec": dataclasses.asdict(spec),
    }
    for unused in ("queries", "top_k", "tsne_points"):  # presentation only
        ident["hnerv"].pop(unused)
    digest = hashlib.blake2b(json.dumps(ident, sort_keys=True).encode(), digest_size=6).hexdigest()
    return resolve(cfg.data_dir) / "cache" / "hnerv" / "runs" / f"{spec.name}-{digest}"


def _curve_subset(split: FrameSplit, n_patches: int, limit: int, seed: int) -> dict[str, np.ndarray]:
    """Flat patch indices (at most ``limit`` per group) scored after each epoch for the curves."""
    rng = np.random.default_rng(seed)
    out = {}
    for group, frames in ((TRAIN, split.train), (HELD_OUT, split.held_out)):
        flat = (frames[:, None] * n_patches + np.arange(n_patches)).ravel()
        out[group] = (
            np.sort(rng.choice(flat, size=min(limit, len(flat)), replace=False)) if len(flat) else flat
        )
    return out


def train_run(
    cfg: Profile,
    data: PatchData,
    spec: RunSpec,
    *,
    device: torch.device | str | None = None,
    progress: bool = False,
    out_dir: Path | None = None,
) -> tuple[DualHeadHNeRV | ContentHNeRV, TrainResult]:
    """Train one model of the study on the training frames of ``spec.split`` with the shared trainer.

    After every epoch the trainer records ``train_psnr``, ``heldout_psnr`` and ``heldout_cosine`` on
    a fixed subset of patches (the training curves; held-out patches of the content model from
    interpolated embeddings, as in :func:`evaluate`). The final weights are returned, as HNeRV
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
    inputs, pixels = _inputs(spec.kind, data), _pixels(data)
    targets = torch.from_numpy(data.targets.reshape(-1, data.targets.shape[-1]))
    train_idx = torch.from_numpy((split.train[:, None] * data.n_patches + np.arange(data.n_patches)).ravel())
    dataset = torch.utils.data.TensorDataset(inputs[train_idx], pixels[train_idx], targets[train_idx])
    # Whole batches by index (no per-item collation); the trainer reseeds the generator every epoch.
    generator = torch_generator(cfg.seed)
    sampler = torch.utils.data.BatchSampler(
        torch.utils.data.RandomSampler(dataset, generator=generator), h.batch_size, drop_last=False
    )
    loader = torch.utils.data.DataLoader(dataset, sampler=sampler, batch_size=None, generator=generator)
    loss = HnervLoss(h.clip_weight, h.clip_warmup_epochs, len(loader))
    subset = _curve_subset(split, data.n_patches, h.curve_patches, cfg.seed)
    plan = interpolation_plan(split, data.n_frames)

    def validate(m: nn.Module) -> dict[str, float]:
        scores: dict[str, float] = {}
        for group, idx in subset.items():
            if not len(idx):
                continue
            sel = torch.from_numpy(idx)
            out = _predict(m.net, inputs, pixels, sel, data.n_patches, plan, dev)
            tag = "train" if group == TRAIN else "heldout"
            scores[f"{tag}_psnr"] = float(psnr(out.rgb.clamp(0, 1), pixels[sel].to(dev).float() / 255).mean())
            scores[f"{tag}_cosine"] = float((out.embedding.float() * targets[sel].to(dev)).sum(-1).mean())
        return scores

    result = fit(
        model,
        loss,
        loader,
        _train_config(cfg),
        out_dir=out_dir or run_dir(cfg, data, spec),
        validate=validate,
        monitor="train_psnr",
        mode="max",
        seed=cfg.seed,
        device=dev,
        progress=progress,
        restore_best=False,
    )
    return net.eval(), result


# --------------------------------------------------------------------------------------- evaluation


@dataclass
class Evaluation:
    """Everything measured on one trained model, for every frame of the video."""

    patches: pd.DataFrame  # frame, patch, row, col, group, psnr, ssim, cosine
    frames: pd.DataFrame  # frame, group, psnr, ssim, cosine (mean over the frame's patches)
    embeddings: np.ndarray  # (F, P, D) predicted, unit length
    reconstructions: np.ndarray  # (F, H, W, 3) uint8

    def summary(self) -> dict[str, float]:
        """Means per group: ``{train,heldout}_{psnr,ssim,cosine}`` (per frame), ``..._patch_psnr``
        and ``..._patch_ssim`` (per patch), and the gaps (train minus held-out)."""
        out: dict[str, float] = {}
        for group, tag in ((TRAIN, "train"), (HELD_OUT, "heldout")):
            f = self.frames[self.frames.group == group]
            p = self.patches[self.patches.group == group]
            for metric in ("psnr", "ssim", "cosine"):
                out[f"{tag}_{metric}"] = float(f[metric].mean()) if len(f) else math.nan
            for metric in ("psnr", "ssim"):
                out[f"{tag}_patch_{metric}"] = float(p[metric].mean()) if len(p) else math.nan
        for metric in ("psnr", "ssim", "cosine"):
            out[f"gap_{metric}"] = out[f"train_{metric}"] - out[f"heldout_{metric}"]
        return out


@torch.no_grad()
def evaluate(
    net: nn.Module,
    data: PatchData,
    split: str | FrameSplit,
    *,
    device: torch.device | str = "cpu",
    frames_per_batch: int = 8,
    held_out: str = "interpolated",
) -> Evaluation:
    """Reconstruct every frame and score it: PSNR and SSIM per patch and per frame, cosine to the
    CLIP target per patch.

    The content model decodes the training frames from their own embeddings and, with
    ``held_out="interpolated"``, each held-out frame from embeddings interpolated between the
    nearest training frames (:func:`interpolation_plan`): it never reads a held-out frame's
    pixels. ``held_out="own pixels"`` encodes held-out frames from their own pixels instead (an
    autoencoder). The coordinate model ignores ``held_out``.
    """
    if held_out not in ("interpolated", "own pixels"):
        raise ValueError(f"held_out must be 'interpolated' or 'own pixels', got {held_out!r}")
    dev = torch.device(device)
    split = split if isinstance(split, FrameSplit) else split_frames(data.n_frames, split)
    groups = split.group_of(data.n_frames)
    net = net.to(dev).eval()
    kind = getattr(net, "kind", "coords")
    plan = (
        interpolation_plan(split, data.n_frames)
        if held_out == "interpolated"
        else own_pixels_plan(data.n_frames)
    )
    inputs = _inputs(kind, data)
    pixels = _pixels(data)
    targets = torch.from_numpy(data.targets)
    n_p, (ph, pw) = data.n_patches, data.patch_hw
    patch_rows, frame_rows, embeddings, recons = [], [], [], []
    for start in range(0, data.n_frames, frames_per_batch):
        frames = np.arange(start, min(start + frames_per_batch, data.n_frames))
        flat = torch.from_numpy((frames[:, None] * n_p + np.arange(n_p)).ravel())
        out = _predict(net, inputs, pixels, flat, n_p, plan, dev)
        rgb = out.rgb.float().clamp(0, 1)
        truth = pixels[flat].to(dev).float() / 255.0
        emb = out.embedding.float().cpu().view(len(frames), n_p, -1)
        cos = (emb * targets[frames]).sum(-1)
        p_psnr, p_ssim = (
            psnr(rgb, truth).cpu().view(len(frames), n_p),
            ssim(rgb, truth).cpu().view(len(frames), n_p),
        )
        as_frames = from_patches(rgb.permute(0, 2, 3, 1).reshape(len(frames), n_p, ph, pw, 3), data.grid)
        true_frames = from_patches(truth.permute(0, 2, 3, 1).reshape(len(frames), n_p, ph, pw, 3), data.grid)
        a, b = as_frames.permute(0, 3, 1, 2), true_frames.permute(0, 3, 1, 2)
        f_psnr, f_ssim = psnr(a, b).cpu(), ssim(a, b).cpu()
        for i, f in enumerate(frames.tolist()):
            frame_rows.append(
                {
                    "frame": f,
                    "group": groups[f],
                    "psnr": float(f_psnr[i]),
                    "ssim": float(f_ssim[i]),
                    "cosine": float(cos[i].mean()),
                }
            )
            for p in range(n_p):
                patch_rows.append(
                    {
                        "frame": f,
                        "patch": p,
                        "row": p // data.grid[1],
                        "col": p % data.grid[1],
                        "group": groups[f],
                        "psnr": float(p_psnr[i, p]),
                        "ssim": float(p_ssim[i, p]),
                        "cosine": float(cos[i, p]),
                    }
                )
        embeddings.append(emb.numpy())
        recons.append((as_frames * 255).round().to(torch.uint8).cpu().numpy())
    return Evaluation(
        pd.DataFrame(patch_rows), pd.DataFrame(frame_rows), np.concatenate(embeddings), np.concatenate(recons)
    )


# --------------------------------------------------------------------------------------- the study


@dataclass
class RunResult:
    spec: RunSpec
    params: dict[str, int]  # parameter_counts of the model
    stored: dict[str, int]  # stored_values for the training frames: what its decoder keeps
    history: pd.DataFrame
    evaluation: Evaluation  # held-out frames never read (content: interpolated embeddings)
    model: nn.Module
    own_pixels: Evaluation | None = None  # content only: held-out frames encoded from their pixels

    def row(self) -> dict[str, Any]:
        """One line of the study table: the run, what it stores and its summary; content runs add
        ``heldout_{psnr,ssim,cosine}_own_pixels`` (the autoencoder reading held-out pixels)."""
        row = {
            "run": self.spec.name,
            "kind": self.spec.kind,
            "size": self.spec.size,
            "split": self.spec.split,
            **self.stored,
            **self.evaluation.summary(),
        }
        if self.own_pixels is not None:
            own = self.own_pixels.summary()
            row.update({f"heldout_{m}_own_pixels": own[f"heldout_{m}"] for m in ("psnr", "ssim", "cosine")})
        return row


def run_study(
    cfg: Profile,
    data: PatchData,
    *,
    device: torch.device | str | None = None,
    progress: bool = True,
    plan: Sequence[RunSpec] | None = None,
) -> list[RunResult]:
    """Train (or reload from the run cache) and evaluate every run of :func:`study_plan`."""
    dev = torch.device(device) if device is not None else resolve_device(cfg.device)
    results = []
    specs = list(plan) if plan is not None else study_plan(cfg.hnerv)
    for spec in tqdm(specs, desc="hnerv runs", disable=not show_progress(progress)):
        net, trained = train_run(cfg, data, spec, device=dev)
        evaluation = evaluate(net, data, spec.split, device=dev)
        own = (
            evaluate(net, data, spec.split, device=dev, held_out="own pixels")
            if spec.kind == "content"
            else None
        )
        n_train = len(split_frames(data.n_frames, spec.split).train)
        stored = stored_values(net, n_train * data.n_patches)
        results.append(
            RunResult(spec, parameter_counts(net), stored, trained.history, evaluation, net.cpu(), own)
        )
    return results


def study_table(results: Sequence[RunResult]) -> pd.DataFrame:
    return pd.DataFrame([r.row() for r in results])


def long_table(results: Sequence[RunResult]) -> pd.DataFrame:
    """Per run and group: PSNR, SSIM, cosine (per-frame means), for grouped bar charts."""
    rows = []
    for r in results:
        s = r.evaluation.summary()
        for group, tag in ((TRAIN, "train"), (HELD_OUT, "heldout")):
            rows.append(
                {
                    "run": r.spec.name,
                    "kind": r.spec.kind,
                    "size": r.spec.size,
                    "split": r.spec.split,
                    "group": group,
                    **{m: s[f"{tag}_{m}"] for m in ("psnr", "ssim", "cosine")},
                }
            )
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------- the four checks


def embedding_checks(
    predicted: np.ndarray, targets: np.ndarray, split: FrameSplit
) -> dict[str, float | bool]:
    """Seed 000's four checks of predicted CLIP embeddings (``(F, P, D)`` each, unit length).

    1. *Similarity to ground truth*: mean cosine of each patch's prediction to its own target,
       against the mean cosine to other patches' targets (a model that ignores the input scores
       the same on both); and R@1 of finding the own target among the same frame's patches.
       Passes when matched exceeds mismatched by ``SPECIFICITY_MARGIN``.
    2. *Diversity*: total variance of the predictions over that of the targets (seed 000: 69%),
       and the mean pairwise cosine of each. Passes when the ratio is at least ``MIN_VARIANCE_RATIO``.
    3. *Temporal consistency*: mean cosine between the same patch in consecutive frames, predicted
       vs targets. Passes when they differ by at most ``TEMPORAL_TOLERANCE``.
    4. *Train / held-out gap*: mean matched cosine on training frames minus held-out frames.
       Passes when the gap is at most ``MAX_COSINE_GAP`` (or there are no held-out frames).
    """
    pred = predicted.reshape(-1, predicted.shape[-1]).astype(np.float64)
    gt = targets.reshape(-1, targets.shape[-1]).astype(np.float64)
    n = len(pred)
    sim = pred @ gt.T
    matched = float(np.mean(np.diag(sim)))
    mismatched = float((sim.sum() - np.trace(sim)) / (n * (n - 1))) if n > 1 else math.nan
    # Within each frame: is a patch's prediction closest to its own target among that frame's patches?
    # (Across frames neighbouring frames' targets are near-duplicates, so a global R@1 says little.)
    per_frame = np.einsum("fpd,fqd->fpq", predicted.astype(np.float64), targets.astype(np.float64))
    r1 = float(np.mean([np.mean(t2v_ranks(m.astype(np.float32)) == 1) for m in per_frame]))

    def mean_pairwise(x: np.ndarray) -> float:
        s = x @ x.T
        return float((s.sum() - np.trace(s)) / (n * (n - 1))) if n > 1 else math.nan

    variance_ratio = float(pred.var(axis=0).sum() / gt.var(axis=0).sum())
    temporal_pred = float(np.mean(np.sum(predicted[1:] * predicted[:-1], axis=-1)))
    temporal_gt = float(np.mean(np.sum(targets[1:] * targets[:-1], axis=-1)))
    own = np.sum(predicted * targets, axis=-1)  # (F, P)
    train_cos = float(own[split.train].mean())
    held = split.held_out
    held_cos = float(own[held].mean()) if len(held) else math.nan
    gap = train_cos - held_cos
    return {
        "matched_cosine": matched,
        "mismatched_cosine": mismatched,
        "position_R@1": 100.0 * r1,
        "variance_ratio": variance_ratio,
        "pairwise_cosine_pred": mean_pairwise(pred),
        "pairwise_cosine_gt": mean_pairwise(gt),
        "temporal_cosine_pred": temporal_pred,
        "temporal_cosine_gt": temporal_gt,
        "train_cosine": train_cos,
        "heldout_cosine": held_cos,
        "cosine_gap": gap,
        "pass_similarity": bool(matched - mismatched >= SPECIFICITY_MARGIN),
        "pass_diversity": bool(variance_ratio >= MIN_VARIANCE_RATIO),
        "pass_temporal": bool(abs(temporal_pred - temporal_gt) <= TEMPORAL_TOLERANCE),
        "pass_gap": bool(not len(held) or gap <= MAX_COSINE_GAP),
    }


# --------------------------------------------------------------------------------------- search


@dataclass
class SearchResult:
    hits: pd.DataFrame  # query, source ("predicted" | "ground truth"), rank, frame, patch, score, group
    summary: pd.DataFrame  # per query: best scores, overlap@k of predicted vs ground-truth top k


def text_search(
    encoder: Encoder,
    queries: Sequence[str],
    predicted: np.ndarray,
    targets: np.ndarray,
    split: FrameSplit,
    k: int = 6,
) -> SearchResult:
    """Rank every patch of the video for each text query by the cosine of its *predicted* embedding,
    and, as the ceiling, by its ground-truth CLIP embedding. ``overlap@k`` is the fraction of the
    ground-truth top ``k`` that the predicted embeddings also put in their top ``k`` (strict: the
    neighbouring frames of a video are near-duplicates); ``precision@k`` the fraction of the
    predicted top ``k`` that lies in the ground truth's top ``RELEVANT_FRACTION`` of all patches."""
    if not queries:
        raise ValueError("text_search needs at least one query")
    text = encoder.encode_text(list(queries)).astype(np.float64)
    n_p = predicted.shape[1]
    groups = split.group_of(predicted.shape[0])
    hits, summary = [], []
    for qi, query in enumerate(queries):
        tops = {}
        for source, emb in (("predicted", predicted), ("ground truth", targets)):
            scores = emb.reshape(-1, emb.shape[-1]).astype(np.float64) @ text[qi]
            top = np.argsort(-scores, kind="stable")[:k]
            tops[source] = (top, scores)
            for rank, flat in enumerate(top.tolist(), start=1):
                f, p = divmod(flat, n_p)
                hits.append(
                    {
                        "query": query,
                        "source": source,
                        "rank": rank,
                        "frame": f,
                        "patch": p,
                        "score": float(scores[flat]),
                        "group": groups[f],
                    }
                )
        (top_pred, pred_scores), (top_gt, gt_scores) = tops["predicted"], tops["ground truth"]
        n_relevant = max(1, math.ceil(RELEVANT_FRACTION * len(gt_scores)))
        relevant_threshold = np.sort(gt_scores)[-n_relevant]
        summary.append(
            {
                "query": query,
                "best_predicted": float(pred_scores[top_pred[0]]),
                "best_ground_truth": float(gt_scores[top_gt[0]]),
                f"overlap@{k}": len(set(top_pred.tolist()) & set(top_gt.tolist())) / k,
                f"precision@{k}": float(np.mean(gt_scores[top_pred] >= relevant_threshold)),
            }
        )
    return SearchResult(pd.DataFrame(hits), pd.DataFrame(summary))


# --------------------------------------------------------------------------------------- projection


def project_embeddings(
    predicted: np.ndarray, targets: np.ndarray, split: FrameSplit, n_points: int = 300, seed: int = 0
) -> pd.DataFrame:
    """t-SNE (scikit-learn) of the same ``n_points`` patches' predicted and ground-truth embeddings.

    Returns ``x, y, source, group, frame, patch`` per point. Cosine distance, PCA initialisation.
    """
    from sklearn.manifold import TSNE

    n_f, n_p, dim = predicted.shape
    rng = np.random.default_rng(seed)
    flat = np.sort(rng.choice(n_f * n_p, size=min(n_points, n_f * n_p), replace=False))
    x = np.concatenate([predicted.reshape(-1, dim)[flat], targets.reshape(-1, dim)[flat]]).astype(np.float64)
    perplexity = float(min(30, max(2, (len(x) - 1) // 3)))
    xy = TSNE(2, perplexity=perplexity, metric="cosine", init="pca", random_state=seed).fit_transform(x)
    frames, patches = np.divmod(flat, n_p)
    groups = split.group_of(n_f)[frames]
    return pd.DataFrame(
        {
            "x": xy[:, 0],
            "y": xy[:, 1],
            "source": ["predicted"] * len(flat) + ["ground truth"] * len(flat),
            "group": np.concatenate([groups, groups]),
            "frame": np.concatenate([frames, frames]),
            "patch": np.concatenate([patches, patches]),
        }
    )


# --------------------------------------------------------------------------------------- figures


def reconstruction_figure(
    data: PatchData, runs: Sequence[RunResult], frames: Sequence[int], title: str = ""
) -> Figure:
    """Originals in the first row, then one row of reconstructions per run, for the given frames."""
    from vtr.report.plots import frame_grid

    split = split_frames(data.n_frames, runs[0].spec.split)
    groups = split.group_of(data.n_frames)
    idx = list(frames)
    rows = [data.frames[idx]] + [r.evaluation.reconstructions[idx] for r in runs]
    labels = ["original"] + [r.spec.name for r in runs]
    cells = [[f"#{f} {groups[f]}" for f in idx]] + [
        [f"{r.evaluation.frames.psnr.iloc[f]:.1f} dB" for f in idx] for r in runs
    ]
    return frame_grid(rows, row_labels=labels, cell_labels=cells, title=title, cell_inches=1.6)


def search_figure(data: PatchData, result: SearchResult, source: str = "predicted") -> Figure:
    """The top patches (original pixels) of each query, as ranked by ``source``."""
    from vtr.report.plots import frame_grid

    patches = data.patches()
    hits = result.hits[result.hits.source == source]
    rows, labels, cells = [], [], []
    for query, group in hits.groupby("query", sort=False):
        rows.append(np.stack([patches[f, p] for f, p in zip(group.frame, group.patch, strict=True)]))
        labels.append(query)
        cells.append(
            [f"#{f}/{p} {s:.2f}" for f, p, s in zip(group.frame, group.patch, group.score, strict=True)]
        )
    return frame_grid(
        rows,
        row_labels=labels,
        cell_labels=cells,
        title=f"top patches per query, ranked by {source} embeddings",
    )


def projection_figure(points: pd.DataFrame, title: str = "") -> Figure:
    """Scatter of :func:`project_embeddings`: colour = source, marker = train / held-out."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    fig, ax = plt.subplots(figsize=(6.2, 5.0))
    sns.scatterplot(data=points, x="x", y="y", hue="source", style="group", s=18, alpha=0.75, ax=ax)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel("t-SNE 1")
    ax.set_ylabel("t-SNE 2")
    ax.set_title(title or "t-SNE of predicted vs ground-truth patch embeddings")
    fig.tight_layout()
    return fig


def per_frame_figure(results: Sequence[RunResult], metric: str = "psnr") -> Figure:
    """``metric`` of every frame along the video for each run; held-out frames marked with dots."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9.0, 3.6))
    for i, r in enumerate(results):
        f = r.evaluation.frames
        ax.plot(f.frame, f[metric], color=f"C{i}", linewidth=1, label=r.spec.name)
        held = f[f.group == HELD_OUT]
        ax.plot(held.frame, held[metric], ".", color=f"C{i}", markersize=4)
    ax.set_xlabel("frame")
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} per frame (dots: held-out frames)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def curves_figure(results: Sequence[RunResult], metric: str = "psnr") -> Figure:
    """Per-epoch ``train_<metric>`` (solid) and ``heldout_<metric>`` (dashed) of each run."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 3.8))
    for i, r in enumerate(results):
        colour = f"C{i}"
        for column, style in ((f"train_{metric}", "-"), (f"heldout_{metric}", "--")):
            if column in r.history:
                ax.plot(
                    r.history.epoch,
                    r.history[column],
                    style,
                    color=colour,
                    label=f"{r.spec.name} {column.split('_')[0]}",
                )
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric)
    ax.set_title(f"{metric}: training frames (solid) vs held-out frames (dashed)")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------- conclusions


def _content_verdict(better_pixels: bool, better_embeddings: bool) -> str:
    return {
        (True, True): "better pixels and better CLIP embeddings on unseen frames",
        (True, False): "better pixels but worse CLIP embeddings on unseen frames",
        (False, True): "worse pixels but better CLIP embeddings on unseen frames",
        (False, False): "worse pixels and worse CLIP embeddings on unseen frames",
    }[(better_pixels, better_embeddings)]


def conclusions(table: pd.DataFrame, checks: dict[str, float | bool], main: str) -> list[str]:
    """Sentences computed from the study table and the main run's checks; nothing hard-coded.

    ``table`` is :func:`study_table`; ``main`` the name of the main run.
    """
    lines = []
    coords = table[table.kind == "coords"]
    main_row = table.set_index("run").loc[main]
    lines.append(
        f"Memorisation: {main} reaches {main_row.train_psnr:.1f} dB on training frames and "
        f"{main_row.heldout_psnr:.1f} dB on held-out frames, a gap of {main_row.gap_psnr:.1f} dB "
        f"(seed 000 reported about 15 dB)."
    )
    sizes = coords[coords.split == main_row.split].sort_values("stored")
    if len(sizes) > 1:
        first, last = sizes.iloc[0], sizes.iloc[-1]
        d_train, d_held = last.train_psnr - first.train_psnr, last.heldout_psnr - first.heldout_psnr
        widen = d_train - d_held
        if widen <= 0:
            verdict = "held-out frames gain at least as much as training frames from extra capacity"
        elif d_held >= 0.5 * d_train:
            verdict = (
                f"most of the gain carries over to held-out frames, but the gap widens by {widen:.1f} dB"
            )
        else:
            verdict = (
                f"extra capacity mostly memorises the training frames (the gap widens by {widen:.1f} dB)"
            )
        lines.append(
            f"Capacity: from {first['size']} ({first.stored:,} parameters) to {last['size']} ({last.stored:,}), "
            f"train PSNR changes by {d_train:+.1f} dB and held-out PSNR by {d_held:+.1f} dB: {verdict}."
        )
    splits = coords[coords["size"] == main_row["size"]].sort_values("split")
    if len(splits) > 1:
        parts = ", ".join(
            f"{s.split}: {s.train_psnr:.1f} / {s.heldout_psnr:.1f} dB" for s in splits.itertuples()
        )
        lines.append(f"Splits (train / held-out PSNR at {main_row['size']}): {parts}.")
    content = table[
        (table.kind == "content") & (table.split == main_row.split) & (table["size"] == main_row["size"])
    ]
    if len(content):
        c = content.iloc[0]
        better = c.heldout_psnr - main_row.heldout_psnr
        ratio = c.stored / main_row.stored
        line = (
            f"Content embeddings (HNeRV) vs coordinates at {main_row['size']}: the content model stores "
            f"{c.stored:,} values ({c.weights:,} weights + {c.embeddings:,} embedding values of its training "
            f"frames), {ratio:.1f}x the coordinate model's {main_row.stored:,}. With held-out frames' embeddings "
            f"interpolated from the neighbouring training frames (it never reads their pixels), held-out PSNR is "
            f"{c.heldout_psnr:.1f} vs {main_row.heldout_psnr:.1f} dB ({better:+.1f} dB), held-out cosine "
            f"{c.heldout_cosine:.3f} vs {main_row.heldout_cosine:.3f}: interpolated content embeddings give "
            + _content_verdict(better > 0, c.heldout_cosine > main_row.heldout_cosine)
            + f" than interpolated coordinates, storing {ratio:.1f}x as many values."
        )
        if "heldout_psnr_own_pixels" in c and not pd.isna(c.heldout_psnr_own_pixels):
            line += (
                f" Reading the held-out frames' own pixels, as an autoencoder, it reaches "
                f"{c.heldout_psnr_own_pixels:.1f} dB: that measures the encoder, not memory of unseen frames."
            )
        lines.append(line)
    passed = [k.removeprefix("pass_") for k, v in checks.items() if k.startswith("pass_") and v]
    failed = [k.removeprefix("pass_") for k, v in checks.items() if k.startswith("pass_") and not v]
    lines.append(
        f"Embeddings: matched cosine {checks['matched_cosine']:.3f} vs {checks['mismatched_cosine']:.3f} for "
        f"mismatched patches; variance ratio {checks['variance_ratio']:.2f}; checks passed: "
        f"{', '.join(passed) or 'none'}; failed: {', '.join(failed) or 'none'}."
    )
    return lines


def report_metrics(
    results: Sequence[RunResult], checks: dict[str, float | bool], search: SearchResult | None = None
) -> dict[str, Any]:
    """The notebook's metrics file: per run its summary and size, the main run's checks, search
    agreement. Missing values (no held-out frames) become None, so the JSON stays valid."""

    def clean(value: Any) -> Any:
        if isinstance(value, float | np.floating) and not math.isfinite(value):
            return None
        return value.item() if isinstance(value, np.generic) else value

    out: dict[str, Any] = {
        "runs": {r.spec.name: {k: clean(v) for k, v in r.row().items() if k != "run"} for r in results},
        "checks": {k: clean(v) for k, v in checks.items()},
    }
    if search is not None:
        out["search"] = {
            row["query"]: {k: clean(v) for k, v in row.items() if k != "query"}
            for row in search.summary.to_dict(orient="records")
        }
    return out
