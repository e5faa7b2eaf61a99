"""Train the profile's moment models (``moments.models``) and keep them as predictor checkpoints.

Each model trains with :func:`vtr.train.fit` on the ``train`` split, early-stopped on the ``val``
split's loss, under ``<data_dir>/runs/moments/<model>-<key>/`` where the key covers the settings, the
encoder and the training queries. A finished model leaves ``model.pt`` there and is loaded instead of
retrained; an interrupted one resumes from the trainer's ``last.pt``.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import torch

from vtr.atomic import write_text
from vtr.config import Profile, TrainConfig
from vtr.experiments.moments.data import MomentData, feature_cache_dir
from vtr.keys import run_key
from vtr.models.encoders import Encoder
from vtr.moments.models import create_moment_model, list_moment_models
from vtr.moments.predictor import MomentPredictor
from vtr.moments.training import train_moment_model, validation_loss
from vtr.paths import resolve

RUNS_VERSION = 2  # bump when training changes in a way the key cannot see


def model_kwargs(cfg: Profile, name: str, dim: int) -> dict[str, Any]:
    """Constructor arguments of moment model ``name`` from the profile's ``moments`` section."""
    m = cfg.moments
    if name == "zero_shot":
        return {"dim": dim}
    common = {"dim": dim, "hidden": m.hidden, "heads": m.heads, "layers": m.layers, "max_clips": m.max_clips}
    return {**common, "n_queries": m.n_queries} if name == "span" else common


def train_config(cfg: Profile) -> TrainConfig:
    """The shared trainer's settings with the ``moments`` section's epochs, batch size, lr and patience."""
    m = cfg.moments
    return dataclasses.replace(
        cfg.train, epochs=m.epochs, batch_size=m.batch_size, lr_head=m.lr, patience=m.patience,
        tensorboard=False,
    )  # fmt: skip


def runs_dir(cfg: Profile) -> Path:
    """``<data_dir>/runs/moments``: checkpoints, predictions and metrics of ``vtr moments train``."""
    return resolve(cfg.data_dir) / "runs" / "moments"


def run_dir(cfg: Profile, name: str, encoder: Encoder, data: MomentData) -> Path:
    """The folder of model ``name``'s run: keyed by everything that determines its weights."""
    train_qids = sorted(str(s.qid) for s in data.samples["train"])
    key = run_key(
        RUNS_VERSION, name, dataclasses.asdict(cfg.moments), dataclasses.asdict(train_config(cfg)),
        encoder.identity(), cfg.seed, train_qids,
    )  # fmt: skip
    return runs_dir(cfg) / f"{name}-{key}"


def zero_shot_predictor(cfg: Profile, encoder: Encoder) -> MomentPredictor:
    """The untrained baseline: clip-query cosine, windows from thresholded runs."""
    return MomentPredictor(
        encoder, create_moment_model("zero_shot"), model_name="zero_shot",
        model_kwargs={"dim": encoder.output_dim}, clip_len=cfg.moments.clip_len,
        frames_per_clip=cfg.moments.frames_per_clip, cache_dir=feature_cache_dir(cfg),
    )  # fmt: skip


def train_models(
    cfg: Profile,
    encoder: Encoder,
    data: MomentData,
    *,
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> dict[str, MomentPredictor]:
    """``zero_shot`` plus every model of ``moments.models``, trained (or reloaded when finished)."""
    unknown = [name for name in cfg.moments.models if name not in list_moment_models()]
    if unknown:
        raise ValueError(f"moments.models: unknown {unknown}; known: {list_moment_models()}")
    if not data.samples["train"]:
        raise ValueError(f"no training queries with readable videos in {data.source}")
    predictors = {"zero_shot": zero_shot_predictor(cfg, encoder)}
    for name in cfg.moments.models:
        if name != "zero_shot":
            predictors[name] = train_one(cfg, name, encoder, data, device=device, progress=progress)
    return predictors


def train_one(
    cfg: Profile, name: str, encoder: Encoder, data: MomentData, *, device: str | torch.device = "cpu",
    progress: bool = True,
) -> MomentPredictor:  # fmt: skip
    """Train (or reload) one model; its history is kept in ``history.csv`` beside ``model.pt``."""
    out = run_dir(cfg, name, encoder, data)
    checkpoint = out / "model.pt"
    if checkpoint.is_file():
        return MomentPredictor.from_checkpoint(checkpoint, encoder=encoder, cache_dir=feature_cache_dir(cfg))
    kwargs = model_kwargs(cfg, name, encoder.output_dim)
    torch.manual_seed(cfg.seed)
    model = create_moment_model(name, **kwargs)
    val = data.samples["val"] or data.samples["train"]
    result = train_moment_model(
        model, data.samples["train"], train_config(cfg), out_dir=out, validate=validation_loss(val),
        seed=cfg.seed, device=device, progress=progress,
    )  # fmt: skip
    predictor = MomentPredictor(
        encoder, model.cpu(), model_name=name, model_kwargs=kwargs, clip_len=cfg.moments.clip_len,
        frames_per_clip=cfg.moments.frames_per_clip, cache_dir=feature_cache_dir(cfg),
    )  # fmt: skip
    write_text(out / "history.csv", result.history.to_csv(index=False))
    summary = {
        "best_epoch": result.best_epoch,
        "best_val_loss": result.best_value,
        "stopped_early": result.stopped_early,
    }
    write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    predictor.save(checkpoint)  # last: its presence means "finished"
    return predictor


def training_history(cfg: Profile, name: str, encoder: Encoder, data: MomentData) -> Any:
    """The per-epoch history of a finished model (a DataFrame), or ``None`` when it never trained."""
    import pandas as pd

    path = run_dir(cfg, name, encoder, data) / "history.csv"
    return pd.read_csv(path) if path.is_file() else None
