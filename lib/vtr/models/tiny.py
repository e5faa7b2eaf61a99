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
it loads any local checkpoint. The hash covers the architecture, the pretraining config, the world
config except the fields pretraining never reads (:data:`WORLD_FIELDS_UNREAD`), the seed and
:data:`TRAINING_VERSION`, so changing any of them retrains.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import open_clip
import torch
import torch.nn.functional as F

from vtr.atomic import write_bytes, write_json
from vtr.keys import run_key
from vtr.models.encoders import TINY_TAG, Encoder, create_encoder, register_model_configs
from vtr.models.temporal import TrendHead
from vtr.paths import resolve
from vtr.runtime import seed_everything, torch_generator
from vtr.train import fit, param_groups

if TYPE_CHECKING:
    from vtr.config import Profile, TinyConfig, TrainConfig

TINY_ARCH = TINY_TAG  # the architecture and the pretrained tag share the name
#: Architectures vtr pretrains itself (``model.pretrained: vtr-tiny``): the ResNet tower and the tiny ViT
#: that token merging (:mod:`vtr.models.tome`) and prompts (:mod:`vtr.models.stop`) need.
SELF_PRETRAINED_ARCHS = (TINY_ARCH, "vtr-tiny-vit")
# Bump when the training procedure changes, so that cached checkpoints are rebuilt.
# 2: the motion pool, the trend head, training through vtr.train.fit.
TRAINING_VERSION = 2
#: World fields that only shape the retrieval clips and long videos: pretraining reads the world's
#: stills and its frame format, never these, so changing them keeps the cached checkpoint.
WORLD_FIELDS_UNREAD = ("n_clips", "static_fraction", "n_long_videos", "events_per_long_video")
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
    state_dict: dict[str, torch.Tensor]  # the open_clip model
    curve: list[dict[str, float]]  # one row per epoch: loss, held-out accuracy, seconds
    metrics: dict[str, float]  # final held-out zero-shot metrics (val_* and test_*)
    trend_state: dict[str, torch.Tensor] = dataclasses.field(default_factory=dict)  # the clip head


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


def _shift(images: torch.Tensor, generator: torch.Generator, max_shift: int) -> torch.Tensor:
    """Translate each uint8 (B, H, W, 3) image by a random offset, padding with its edge pixels."""
    if max_shift <= 0:
        return images
    b, h, w, _ = images.shape
    padded = F.pad(images.permute(0, 3, 1, 2).float(), [max_shift] * 4, mode="replicate")
    offsets = torch.randint(0, 2 * max_shift + 1, (b, 2), generator=generator)
    crops = [padded[i, :, dy : dy + h, dx : dx + w] for i, (dy, dx) in enumerate(offsets.tolist())]
    return torch.stack(crops).permute(0, 2, 3, 1).round().to(torch.uint8)


@dataclass
class ClipSet:
    """Short clips with one caption each: what teaches the text tower motion words."""

    frames: np.ndarray  # (N, T, H, W, 3) uint8
    captions: list[str]

    def __post_init__(self) -> None:
        if len(self.frames) != len(self.captions):
            raise ValueError(f"frames ({len(self.frames)}) and captions ({len(self.captions)}) differ in length")


class TinyVideoCLIP(torch.nn.Module):
    """The open_clip model plus the video head pretraining reads clips with (a :class:`TrendHead`).

    A clip's embedding is the trend head over its normalised frame embeddings (mean pooling plus
    maps of the time moments), so "moves left" and "moves right", whose frames are the same set in
    opposite orders, get different embeddings and the text tower has to tell the words apart.
    Stills are one-frame clips: the head returns their frame embedding.
    """

    def __init__(self, encoder: Encoder, degree: int) -> None:
        super().__init__()
        self.clip = encoder.model
        self.trend = TrendHead(self.clip.text_projection.shape[1], degree=degree, init_scale=1.0)
        self._preprocess = encoder.preprocess  # a function, not a submodule

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Frame embeddings of uint8 (N, H, W, 3) images (what ``update_bn`` calls)."""
        return self.clip.encode_image(self._preprocess(images))

    def encode_items(self, stills: torch.Tensor, clips: torch.Tensor) -> torch.Tensor:
        """Normalised embeddings of (S, H, W, 3) stills then (C, T, H, W, 3) clips, in one image pass."""
        c, t = clips.shape[:2]
        frames = torch.cat([stills, clips.reshape(c * t, *clips.shape[2:])]) if c else stills
        embedded = F.normalize(self(frames), dim=-1)
        parts = [embedded[: len(stills)]]
        if c:
            parts.append(self.trend(embedded[len(stills) :].view(c, t, -1)))
        return F.normalize(torch.cat(parts), dim=-1)


class _Batches:
    """Collate: shuffled item indices -> (still ids, clip ids); items ``>= n_stills`` are clips."""

    def __init__(self, n_stills: int) -> None:
        self.n_stills = n_stills

    def __call__(self, items: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        ids = torch.stack(items)
        return ids[ids < self.n_stills], ids[ids >= self.n_stills] - self.n_stills


def _train_config(cfg: TinyConfig, steps_per_epoch: int) -> TrainConfig:
    """The shared trainer's settings for pretraining: one learning rate, no clipping, no AMP."""
    from vtr.config import TrainConfig

    total = steps_per_epoch * cfg.max_epochs
    return TrainConfig(
        epochs=cfg.max_epochs, batch_size=cfg.batch_size, lr_encoder=cfg.lr, lr_head=cfg.lr,
        weight_decay=cfg.weight_decay, warmup_fraction=min(1.0, cfg.warmup_steps / max(1, total)),
        grad_clip=0.0, amp=False, patience=cfg.patience, tensorboard=False,
    )  # fmt: skip


def pretrain(
    train: StillSet,
    heldout: StillSet,
    cfg: TinyConfig,
    *,
    clips: ClipSet | None = None,
    seed: int = 0,
    arch: str = TINY_ARCH,
    test: StillSet | None = None,
    device: str = "cpu",
    out_dir: str | Path | None = None,
    progress: bool = True,
    catalog_stills: tuple[StillSet, ...] = (),
) -> PretrainResult:
    """Train ``arch`` from random weights with the CLIP objective on stills (and ``clips``), through
    :func:`vtr.train.fit`; stop when held-out accuracy saturates.

    Each batch mixes stills and clips (one shuffled order over both); a clip is embedded by
    :class:`TinyVideoCLIP`'s trend head. After each epoch the batch-norm statistics are recomputed
    over training images with the current weights (``torch.optim.swa_utils.update_bn``: the running
    averages lag behind quickly changing weights, so the eval-mode model would disagree with the one
    that was optimised), then the model classifies the ``heldout`` stills among their distinct
    captions (:func:`zero_shot_metrics`, ``appearance_top1``); training stops at
    ``cfg.target_accuracy`` or after ``cfg.patience`` epochs without improvement, and the best
    epoch's weights are returned. The final ``val_*`` / ``test_*`` metrics rank among every distinct
    caption of the still sets that carry attributes (``train`` unless it is the pool's, ``heldout``,
    ``test`` and ``catalog_stills``). Deterministic for a given seed and thread count.
    """
    seed_everything(seed)
    encoder = create_encoder(arch, "", device=device, batch_size=256)
    model = TinyVideoCLIP(encoder, cfg.trend_degree)
    clips = clips or ClipSet(np.zeros((0, 1, *train.images.shape[1:]), np.uint8), [])
    all_captions = list(train.captions) + list(clips.captions)
    captions, caption_ids = np.unique(np.asarray(all_captions, dtype=object), return_inverse=True)
    tokens = encoder.tokenizer(list(captions))
    images = torch.from_numpy(np.ascontiguousarray(train.images))
    clip_frames = torch.from_numpy(np.ascontiguousarray(clips.frames))
    ids = torch.from_numpy(caption_ids.astype(np.int64))
    n_items = len(images) + len(clip_frames)
    loader = torch.utils.data.DataLoader(
        torch.arange(n_items), batch_size=cfg.batch_size, shuffle=True, collate_fn=_Batches(len(images)),
        generator=torch_generator(seed),
    )  # fmt: skip
    augment = torch_generator(seed + 2)
    pool_images = torch.cat([images, clip_frames.flatten(0, 1)])
    calibration = pool_images[torch.randperm(len(pool_images), generator=torch_generator(seed + 1))]
    calibration_batches = list(calibration[:BN_CALIBRATION_IMAGES].split(256))

    def batch_loss(m: TinyVideoCLIP, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        still_ids, clip_ids = batch
        stills = images[still_ids]
        if cfg.augment:
            stills = _shift(stills, augment, MAX_SHIFT_PX)
        features = m.encode_items(stills.to(encoder.device), clip_frames[clip_ids].to(encoder.device))
        item_ids = torch.cat([ids[still_ids], ids[len(images) + clip_ids]])
        unique_ids, local_ids = torch.unique(item_ids, return_inverse=True)
        text = m.clip.encode_text(tokens[unique_ids].to(encoder.device), normalize=True)
        scale = m.clip.logit_scale.exp().clamp(max=100.0)  # CLIP's cap on the temperature
        return contrastive_loss(features, text, local_ids.to(encoder.device), scale)

    def validate(m: TinyVideoCLIP) -> dict[str, float]:
        torch.optim.swa_utils.update_bn(calibration_batches, m)
        m.eval()
        # Early stopping ranks the held-out stills among their own captions only: fewer to encode.
        found = zero_shot_metrics(encoder, heldout)
        return {f"val_{k}": found[k] for k in ("caption_top1", "appearance_top1", "attr_mean")}

    train_cfg = _train_config(cfg, len(loader))
    started = time.perf_counter()
    with contextlib.ExitStack() as stack:
        if out_dir is None:
            out_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="vtr-tiny-"))
        result = fit(
            model, batch_loss, loader, train_cfg, out_dir=out_dir,
            groups=param_groups([], model.named_parameters(), train_cfg), validate=validate,
            monitor=f"val_{STOPPING_METRIC}", mode="max", seed=seed, device=device, progress=progress,
            stop_when=lambda row: row[f"val_{STOPPING_METRIC}"] >= cfg.target_accuracy,
        )  # fmt: skip
    # fit restored the best epoch's weights; its batch-norm statistics were computed before saving.
    model.eval()
    # Pool stills carry no attributes: a caption of theirs could not be scored attribute by attribute.
    sets = [s for s in (train, heldout, test, *catalog_stills) if s is not None and all(s.attributes)]
    catalog = caption_catalog(*sets)
    catalog_embeddings = encoder.encode_text(list(catalog))
    metrics = zero_shot_metrics(encoder, heldout, catalog, "val_", catalog_embeddings)
    if test is not None:
        metrics |= zero_shot_metrics(encoder, test, catalog, "test_", catalog_embeddings)
    curve = [
        {k: float(v) for k, v in row.items() if k != "lr"} | {"step": float(row["epoch"] * len(loader))}
        for row in result.history.to_dict("records")
    ]
    metrics |= {
        "epochs": float(len(curve)),
        "steps": float(len(curve) * len(loader)),
        "train_seconds": time.perf_counter() - started,
        "n_pool_clips": float(len(clip_frames)),
    }
    state = {k: v.detach().cpu() for k, v in model.clip.state_dict().items()}
    trend = {k: v.detach().cpu() for k, v in model.trend.state_dict().items()}
    return PretrainResult(state_dict=state, curve=curve, metrics=metrics, trend_state=trend)


# ------------------------------------------------------------------------------- checkpointing


def arch_config(arch: str = TINY_ARCH) -> dict[str, Any]:
    register_model_configs()
    cfg = open_clip.get_model_config(arch)
    if cfg is None:
        raise ValueError(f"unknown architecture {arch!r}")
    return cfg


def checkpoint_key(profile: Profile, arch: str = TINY_ARCH) -> str:
    """A short hash (:func:`vtr.keys.run_key`) of everything the checkpoint depends on."""
    world = {k: v for k, v in dataclasses.asdict(profile.world).items() if k not in WORLD_FIELDS_UNREAD}
    return run_key(
        {"version": TRAINING_VERSION, "arch": arch_config(arch), "tiny": profile.tiny,
         "world": world, "seed": profile.seed}
    )  # fmt: skip


def _self_pretrained(arch: str) -> str:
    if arch not in SELF_PRETRAINED_ARCHS:
        raise ValueError(f"vtr pretrains only {list(SELF_PRETRAINED_ARCHS)} itself, not {arch!r}")
    return arch


def tiny_checkpoint_path(profile: Profile, arch: str = TINY_ARCH) -> Path:
    """``<data_dir>/models/<arch>-<checkpoint_key>.pt``."""
    return resolve(profile.data_dir) / "models" / f"{_self_pretrained(arch)}-{checkpoint_key(profile, arch)}.pt"


def trend_head_path(profile: Profile, arch: str = TINY_ARCH) -> Path:
    """The pretrained clip head beside the checkpoint (``<checkpoint>.trend.pt``)."""
    return tiny_checkpoint_path(profile, arch).with_suffix(".trend.pt")


def _training_sets(profile: Profile) -> tuple[StillSet, StillSet, StillSet, ClipSet | None, StillSet]:
    """Training stills (the pool's, or the world's training stills) and clips; held-out world stills."""
    from vtr.data.synthetic import sample_world
    from vtr.data.synthetic.pretraining import pretraining_pool

    world = sample_world(profile)
    train, val, test = (as_still_set(world.stills(split)) for split in ("train", "val", "test"))
    cfg = profile.tiny
    world_train = train
    if cfg.pool_stills <= 0 and cfg.pool_clips <= 0:
        return train, val, test, None, world_train
    pool = pretraining_pool(profile.world, cfg, profile.seed)
    if cfg.pool_stills > 0:
        # The pool's stills carry no attribute table: held-out metrics read the world's stills.
        train = StillSet(pool.still_images, pool.still_captions, [{} for _ in pool.still_captions])
    clips = ClipSet(pool.clip_frames, pool.clip_captions) if cfg.pool_clips > 0 else None
    return train, val, test, clips, world_train


def _save_state(path: Path, state: dict[str, torch.Tensor]) -> None:
    # Serialised in memory: a file target would name the zip's root folder after the random temp
    # file, so identical weights would give different bytes (and a different sha256 identity).
    buffer = io.BytesIO()
    torch.save(state, buffer)
    write_bytes(path, buffer.getvalue())


def ensure_tiny_checkpoint(profile: Profile, *, arch: str = TINY_ARCH, progress: bool = True) -> Path:
    """The profile's self-pretrained checkpoint of ``arch`` (one of :data:`SELF_PRETRAINED_ARCHS`),
    pretraining it first if it is not cached yet.

    Training runs through :func:`vtr.train.fit` in ``<checkpoint>.run/`` (so an interrupted run
    resumes), always on the CPU: the checkpoint must not depend on which machine built it first.
    """
    path = tiny_checkpoint_path(profile, arch)
    if path.is_file() and path.with_suffix(".json").is_file() and trend_head_path(profile, arch).is_file():
        return path
    train, val, test, clips, world_train = _training_sets(profile)
    result = pretrain(
        train, val, profile.tiny, clips=clips, seed=profile.seed, arch=arch, test=test, device="cpu",
        out_dir=path.with_suffix(".run"), progress=progress, catalog_stills=(world_train,),
    )  # fmt: skip
    _save_state(trend_head_path(profile, arch), result.trend_state)
    _save_state(path, result.state_dict)
    write_json(
        path.with_suffix(".json"),
        {
            "checkpoint": path.name,
            "arch": arch,
            "arch_config": arch_config(arch),
            "tiny": dataclasses.asdict(profile.tiny),
            "world": dataclasses.asdict(profile.world),
            "seed": profile.seed,
            "training_version": TRAINING_VERSION,
            "n_train": len(train.captions),
            "n_pool_clips": len(clips.captions) if clips is not None else 0,
            "n_val": len(val.captions),
            "n_test": len(test.captions),
            "curve": result.curve,
            "metrics": result.metrics,
        },
    )
    return path


def pretrained_trend_state(profile: Profile) -> dict[str, torch.Tensor] | None:
    """The clip head vtr-tiny was pretrained with (a :class:`~vtr.models.temporal.TrendHead` state),
    or None when the profile does not use vtr-tiny; builds the checkpoint if needed."""
    if profile.model.pretrained != TINY_TAG:
        return None
    ensure_tiny_checkpoint(profile, arch=profile.model.arch)
    return torch.load(trend_head_path(profile, profile.model.arch), map_location="cpu")


def tiny_metrics(profile: Profile) -> dict[str, Any]:
    """Held-out zero-shot metrics and the training curve of the profile's tiny model (builds it if needed)."""
    path = ensure_tiny_checkpoint(profile)
    info = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
    return {"checkpoint": str(path), "curve": info["curve"], **info["metrics"]}
