"""vtr's tiny CLIP: a small open_clip architecture pretrained on the sample world's still frames.

The embedded default needs a CLIP that knows the sample world's vocabulary (shapes, colours,
sizes, counts, backgrounds) without downloading anything. ``vtr-tiny`` (``model_configs/vtr-tiny.json``)
is open_clip's ModifiedResNet image tower (one bottleneck per stage, width 16, attention pooling)
on 64-pixel frames and a 4-layer, 128-wide text transformer with open_clip's own tokenizer at
context length 32. A ViT with 8-pixel patches was tried first: with the same 2-core budget it
learnt colours and backgrounds but stayed near chance on shape, count and size, where the
convolutional tower's inductive bias pays off on 2,400 training stills. It is trained here with
the CLIP objective on the stills and their appearance-only captions, in about 90 s on 2 CPU
cores, deterministically, and cached:

    path = ensure_tiny_checkpoint(profile)   # <data_dir>/models/vtr-tiny-<hash>.pt (+ .json)
    metrics = tiny_metrics(profile)          # held-out zero-shot accuracy, per attribute too

The checkpoint is a plain open_clip state dict, so ``load_encoder(profile)`` loads it exactly as
it loads any local checkpoint. The hash covers the architecture, the pretraining and world
configs, the seed and :data:`TRAINING_VERSION`, so changing any of them retrains.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import io
import json
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import open_clip
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from vtr.atomic import write_bytes, write_json
from vtr.models.encoders import TINY_TAG, Encoder, create_encoder, register_model_configs
from vtr.paths import resolve
from vtr.progress import show_progress
from vtr.runtime import seed_everything, torch_generator

if TYPE_CHECKING:
    from vtr.config import Profile, TinyConfig

TINY_ARCH = TINY_TAG  # the architecture and the pretrained tag share the name
# Bump when the training procedure changes, so that cached checkpoints are rebuilt.
TRAINING_VERSION = 1
# Held-out accuracy must improve by more than this to count as progress for early stopping.
MIN_IMPROVEMENT = 0.005
MAX_SHIFT_PX = 4
# What early stopping watches on the held-out stills (see zero_shot_metrics).
STOPPING_METRIC = "appearance_top1"
# Training images whose batch-norm statistics the evaluated model uses (see _recalibrate_batch_norm).
BN_CALIBRATION_IMAGES = 1024  # augmentation: random translation of up to this many pixels


@dataclass
class StillSet:
    """Images with captions and per-image attributes: what pretraining and its evaluation read.

    Built from the sample world's ``Stills`` (:func:`as_still_set`) or directly in tests.
    """

    images: np.ndarray  # (N, H, W, 3) uint8
    captions: list[str]
    attributes: list[dict[str, Any]]

    def __post_init__(self) -> None:
        if not (len(self.images) == len(self.captions) == len(self.attributes)):
            raise ValueError(
                f"images ({len(self.images)}), captions ({len(self.captions)}) and attributes "
                f"({len(self.attributes)}) must have the same length"
            )


@dataclass
class PretrainResult:
    state_dict: dict[str, torch.Tensor]
    curve: list[dict[str, float]]  # one row per epoch: loss, held-out accuracy, seconds
    metrics: dict[str, float]  # final held-out zero-shot metrics (val_* and test_*)


def as_still_set(stills: Any) -> StillSet:
    """Adapt ``vtr.data.synthetic`` Stills (attributes as a list of dicts, a dict of columns or a DataFrame)."""
    attrs = stills.attributes
    if hasattr(attrs, "to_dict"):  # pandas DataFrame
        rows = attrs.to_dict("records")
    elif isinstance(attrs, Mapping):
        keys = list(attrs)
        rows = [
            dict(zip(keys, values, strict=True)) for values in zip(*(attrs[k] for k in keys), strict=True)
        ]
    else:
        rows = [dict(a) for a in attrs]
    rows = [{k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()} for row in rows]
    return StillSet(np.asarray(stills.images), list(stills.captions), rows)


# --------------------------------------------------------------------------------- evaluation


def caption_catalog(*sets: StillSet) -> dict[str, dict[str, Any]]:
    """Every distinct caption of ``sets`` with the attributes it names (sorted, so indices are stable)."""
    catalog: dict[str, dict[str, Any]] = {}
    for still_set in sets:
        for caption, attrs in zip(still_set.captions, still_set.attributes, strict=True):
            catalog.setdefault(caption, attrs)
    return dict(sorted(catalog.items()))


def zero_shot_metrics(
    encoder: Encoder,
    stills: StillSet,
    catalog: Mapping[str, Mapping[str, Any]] | None = None,
    prefix: str = "",
    candidate_embeddings: np.ndarray | None = None,
) -> dict[str, float]:
    """Image-level zero-shot classification of ``stills`` among the captions of ``catalog``.

    ``catalog`` maps each candidate caption to the attributes it names (:func:`caption_catalog`;
    by default the distinct captions of ``stills``). Each image is assigned the candidate whose
    embedding is closest. ``caption_top1`` / ``caption_top5`` count the image's own caption;
    ``appearance_top1`` counts any caption naming the image's attributes (captions are paraphrased,
    so several candidates describe one appearance); ``attr_<name>`` counts whether the chosen
    caption has the image's value of that attribute (shape, colour, ...), with the majority-value
    baseline as ``chance_attr_<name>``; ``attr_mean`` averages them. ``candidate_embeddings``
    (the encoded catalog captions, in catalog order) saves encoding them again.
    """
    catalog = dict(catalog) if catalog is not None else caption_catalog(stills)
    candidates = list(catalog)
    index = {c: i for i, c in enumerate(candidates)}
    missing = [c for c in stills.captions if c not in index]
    if missing:
        raise ValueError(f"{len(missing)} captions are not among the candidates, e.g. {missing[0]!r}")
    if candidate_embeddings is None:
        candidate_embeddings = encoder.encode_text(candidates)
    scores = encoder.encode_frames(stills.images) @ candidate_embeddings.T
    truth = np.array([index[c] for c in stills.captions])
    ranked = np.argsort(-scores, axis=1, kind="stable")[:, :5]
    pred = ranked[:, 0]
    out = {
        "caption_top1": float(np.mean(pred == truth)),
        "caption_top5": float(np.mean((ranked == truth[:, None]).any(axis=1))),
        "chance_caption": 1.0 / len(candidates),
        "n_images": float(len(truth)),
        "n_candidates": float(len(candidates)),
    }
    names = sorted({k for a in stills.attributes for k in a})
    correct = []
    for name in names:
        truth_values = [a.get(name) for a in stills.attributes]
        got = [catalog[candidates[p]].get(name) == truth_values[i] for i, p in enumerate(pred)]
        out[f"attr_{name}"] = float(np.mean(got))
        _, counts = np.unique(np.array([str(v) for v in truth_values]), return_counts=True)
        out[f"chance_attr_{name}"] = float(counts.max() / counts.sum())
        correct.append(got)
    if names:
        out["attr_mean"] = float(np.mean([out[f"attr_{n}"] for n in names]))
    out["appearance_top1"] = float(np.mean(np.all(correct, axis=0))) if names else out["caption_top1"]
    return {f"{prefix}{k}": v for k, v in out.items()}


# ----------------------------------------------------------------------------------- training


def contrastive_loss(
    image_features: torch.Tensor,
    text_features: torch.Tensor,
    caption_ids: torch.Tensor,
    logit_scale: torch.Tensor,
) -> torch.Tensor:
    """The CLIP loss with repeated captions merged instead of treated as negatives.

    ``text_features`` (U, D) holds each distinct caption of the batch once and ``caption_ids``
    (B,) maps each image to its row. Image-to-text is a U-way softmax with one positive; text-to-image
    spreads the target evenly over the images of that caption. With all captions distinct (U = B,
    ids = 0..B-1) this is exactly open_clip's ``ClipLoss``.
    """
    logits = logit_scale * image_features @ text_features.T  # (B, U)
    image_to_text = F.cross_entropy(logits, caption_ids)
    positives = F.one_hot(caption_ids, num_classes=text_features.shape[0]).T.float()  # (U, B)
    text_to_image = F.cross_entropy(logits.T, positives / positives.sum(dim=1, keepdim=True))
    return (image_to_text + text_to_image) / 2


def _parameter_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """No weight decay on gains, biases, embeddings' scale and the temperature, as in open_clip's training."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        exclude = param.ndim < 2 or "bn" in name or "ln" in name or "bias" in name or "logit_scale" in name
        (no_decay if exclude else decay).append(param)
    return [{"params": no_decay, "weight_decay": 0.0}, {"params": decay, "weight_decay": weight_decay}]


def _lr_at(step: int, total: int, cfg: TinyConfig) -> float:
    """Linear warm-up, then cosine decay to zero at ``total`` steps."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, total - cfg.warmup_steps)
    return 0.5 * cfg.lr * (1 + math.cos(math.pi * min(1.0, progress)))


def _shift(images: torch.Tensor, generator: torch.Generator, max_shift: int) -> torch.Tensor:
    """Translate each uint8 (B, H, W, 3) image by a random offset, padding with its edge pixels."""
    if max_shift <= 0:
        return images
    b, h, w, _ = images.shape
    padded = F.pad(images.permute(0, 3, 1, 2).float(), [max_shift] * 4, mode="replicate")
    offsets = torch.randint(0, 2 * max_shift + 1, (b, 2), generator=generator)
    crops = [padded[i, :, dy : dy + h, dx : dx + w] for i, (dy, dx) in enumerate(offsets.tolist())]
    return torch.stack(crops).permute(0, 2, 3, 1).round().to(torch.uint8)


@torch.no_grad()
def _recalibrate_batch_norm(model: torch.nn.Module, encoder: Encoder, images: torch.Tensor) -> None:
    """Recompute batch-norm statistics as the exact mean over ``images`` with the current weights.

    The running averages (momentum 0.1) lag behind weights that change quickly, so after a short
    training run the eval-mode model disagrees with the train-mode one it was optimised as
    (measured on a 96-image toy set: colour accuracy 0.30 with the running averages, 1.0 after
    recalibration). The same fix as ``torch.optim.swa_utils.update_bn``.
    """
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    momenta = {m: m.momentum for m in norms}
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the batches below
    model.train()
    for start in range(0, len(images), 256):
        model.encode_image(encoder.preprocess(images[start : start + 256]))
    for m, momentum in momenta.items():
        m.momentum = momentum


def pretrain(
    train: StillSet,
    heldout: StillSet,
    cfg: TinyConfig,
    *,
    seed: int = 0,
    arch: str = TINY_ARCH,
    test: StillSet | None = None,
    device: str = "cpu",
    max_steps: int | None = None,
    progress: bool = True,
) -> PretrainResult:
    """Train ``arch`` from random weights with the CLIP objective; stop when held-out accuracy saturates.

    After each epoch the model classifies the ``heldout`` stills among their distinct captions
    (:func:`zero_shot_metrics`, ``appearance_top1``); training stops at ``cfg.target_accuracy`` or
    after ``cfg.patience`` epochs without improvement, and the best epoch's weights are returned.
    The final ``val_*`` / ``test_*`` metrics rank among every distinct caption of all splits.
    Deterministic for a given seed and thread count: seeded initialisation, shuffling and
    augmentation.
    """
    seed_everything(seed)
    encoder = create_encoder(arch, "", device=device, batch_size=256)
    model = encoder.model
    catalog = caption_catalog(train, heldout, *([test] if test is not None else []))
    captions, caption_ids = np.unique(np.asarray(train.captions, dtype=object), return_inverse=True)
    tokens = encoder.tokenizer(list(captions))
    images = torch.from_numpy(np.ascontiguousarray(train.images))
    ids = torch.from_numpy(caption_ids.astype(np.int64))
    optimizer = torch.optim.AdamW(
        _parameter_groups(model, cfg.weight_decay), lr=cfg.lr, betas=(0.9, 0.98), eps=1e-6
    )
    generator = torch_generator(seed)
    steps_per_epoch = math.ceil(len(images) / cfg.batch_size)
    total_steps = steps_per_epoch * cfg.max_epochs if max_steps is None else max_steps
    calibration = torch.randperm(len(images), generator=torch_generator(seed + 1))[:BN_CALIBRATION_IMAGES]
    curve: list[dict[str, float]] = []
    best_acc, best_state, since_best, step = -1.0, copy.deepcopy(model.state_dict()), 0, 0
    started = time.perf_counter()
    bar = tqdm(total=total_steps, desc="pretrain vtr-tiny", disable=not show_progress(progress))
    for epoch in range(cfg.max_epochs):
        model.train()
        order = torch.randperm(len(images), generator=generator)
        losses = []
        for start in range(0, len(order), cfg.batch_size):
            if step >= total_steps:
                break
            batch = order[start : start + cfg.batch_size]
            frames = images[batch]
            if cfg.augment:
                frames = _shift(frames, generator, MAX_SHIFT_PX)
            unique_ids, local_ids = torch.unique(ids[batch], return_inverse=True)
            for group in optimizer.param_groups:
                group["lr"] = _lr_at(step, total_steps, cfg)
            image_features = model.encode_image(encoder.preprocess(frames), normalize=True)
            text_features = model.encode_text(tokens[unique_ids].to(encoder.device), normalize=True)
            loss = contrastive_loss(
                image_features, text_features, local_ids.to(encoder.device), model.logit_scale.exp()
            )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                model.logit_scale.clamp_(0, math.log(100))  # CLIP's cap on the temperature
            losses.append(float(loss.detach()))
            step += 1
            bar.update(1)
            bar.set_postfix(loss=f"{losses[-1]:.3f}", best=f"{max(best_acc, 0):.3f}")
        _recalibrate_batch_norm(model, encoder, images[calibration])
        model.eval()
        # Early stopping ranks the held-out stills among their own captions only: 6x fewer to encode.
        heldout_metrics = zero_shot_metrics(encoder, heldout)
        accuracy = heldout_metrics[STOPPING_METRIC]
        curve.append(
            {
                "epoch": epoch + 1,
                "step": step,
                "train_loss": float(np.mean(losses)) if losses else float("nan"),
                **{f"val_{k}": heldout_metrics[k] for k in ("caption_top1", "appearance_top1", "attr_mean")},
                "seconds": time.perf_counter() - started,
            }
        )
        if accuracy > best_acc + MIN_IMPROVEMENT or best_acc < 0:
            best_acc, best_state, since_best = accuracy, copy.deepcopy(model.state_dict()), 0
        else:
            since_best += 1
        if accuracy >= cfg.target_accuracy or since_best >= cfg.patience or step >= total_steps:
            break
    bar.close()
    model.load_state_dict(best_state)
    model.eval()
    catalog_embeddings = encoder.encode_text(list(catalog))
    metrics = zero_shot_metrics(encoder, heldout, catalog, "val_", catalog_embeddings)
    if test is not None:
        metrics |= zero_shot_metrics(encoder, test, catalog, "test_", catalog_embeddings)
    metrics |= {
        "epochs": float(len(curve)),
        "steps": float(step),
        "train_seconds": time.perf_counter() - started,
    }
    return PretrainResult(
        state_dict={k: v.detach().cpu() for k, v in best_state.items()}, curve=curve, metrics=metrics
    )


# ------------------------------------------------------------------------------- checkpointing


def arch_config(arch: str = TINY_ARCH) -> dict[str, Any]:
    register_model_configs()
    cfg = open_clip.get_model_config(arch)
    if cfg is None:
        raise ValueError(f"unknown architecture {arch!r}")
    return cfg


def checkpoint_key(profile: Profile) -> str:
    """A short hash of everything the checkpoint depends on."""
    payload = {
        "version": TRAINING_VERSION,
        "arch": arch_config(TINY_ARCH),
        "tiny": dataclasses.asdict(profile.tiny),
        "world": dataclasses.asdict(profile.world),
        "seed": profile.seed,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def tiny_checkpoint_path(profile: Profile) -> Path:
    return resolve(profile.data_dir) / "models" / f"{TINY_TAG}-{checkpoint_key(profile)}.pt"


def ensure_tiny_checkpoint(profile: Profile, *, progress: bool = True) -> Path:
    """The profile's tiny checkpoint, pretraining it first if it is not cached yet."""
    path = tiny_checkpoint_path(profile)
    if path.is_file() and path.with_suffix(".json").is_file():
        return path
    from vtr.data.synthetic import sample_world

    world = sample_world(profile)
    train, val, test = (as_still_set(world.stills(split)) for split in ("train", "val", "test"))
    # Training always runs on the CPU: the checkpoint must not depend on which machine built it first.
    result = pretrain(train, val, profile.tiny, seed=profile.seed, test=test, device="cpu", progress=progress)
    # Serialised in memory: a file target would name the zip's root folder after the random temp
    # file, so identical weights would give different bytes (and a different sha256 identity).
    buffer = io.BytesIO()
    torch.save(result.state_dict, buffer)
    write_bytes(path, buffer.getvalue())
    write_json(
        path.with_suffix(".json"),
        {
            "checkpoint": path.name,
            "arch": TINY_ARCH,
            "arch_config": arch_config(TINY_ARCH),
            "tiny": dataclasses.asdict(profile.tiny),
            "world": dataclasses.asdict(profile.world),
            "seed": profile.seed,
            "training_version": TRAINING_VERSION,
            "n_train": len(train.captions),
            "n_val": len(val.captions),
            "n_test": len(test.captions),
            "curve": result.curve,
            "metrics": result.metrics,
        },
    )
    return path


def tiny_metrics(profile: Profile) -> dict[str, Any]:
    """Held-out zero-shot metrics and the training curve of the profile's tiny model (builds it if needed)."""
    path = ensure_tiny_checkpoint(profile)
    info = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
    return {"checkpoint": str(path), "curve": info["curve"], **info["metrics"]}
