"""All stages in one call, as ``vtr moments train`` runs them: data, training, predictions and metrics.

Everything lands under ``<data_dir>/runs/moments/``: one folder per trained model (``model.pt``,
the trainer's checkpoints and history) and ``<split>/<model>_preds.jsonl`` + ``_metrics.json``.
A rerun reloads finished models and cached features, so it only predicts and scores again.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from vtr.config import Profile
from vtr.experiments.moments.data import MomentData, load_moment_data
from vtr.experiments.moments.evaluate import ModelRun, evaluate_models, write_runs
from vtr.experiments.moments.train import runs_dir, train_models
from vtr.models.encoders import Encoder, load_encoder
from vtr.moments.predictor import MomentPredictor
from vtr.runtime import resolve_device, seed_everything

REPORT_SPLIT = "test"  # never trained or selected on (QVHighlights: the official val set)


@dataclass
class MomentExperiment:
    """What the stages produced: data, predictors and the scored runs on the report split."""

    data: MomentData
    predictors: dict[str, MomentPredictor]
    runs: dict[str, ModelRun]
    written: dict[str, Path]  # model -> metrics file


def run_moments(
    cfg: Profile, *, encoder: Encoder | None = None, device: str | torch.device | None = None,
    progress: bool = True, n_boot: int | None = None,
) -> MomentExperiment:  # fmt: skip
    """Load the data, train (or reload) the profile's models, predict and score the report split.

    Seeds everything with the profile's seed first, so a rerun finds the same run keys."""
    seed_everything(cfg.seed)  # a random-weights encoder and the models' initialisation repeat exactly
    dev = torch.device(device) if device is not None else resolve_device(cfg.device)
    encoder = encoder or load_encoder(cfg, device=str(dev))
    data = load_moment_data(cfg, encoder, progress=progress)
    predictors = train_models(cfg, encoder, data, device=dev, progress=progress)
    queries = data.queries[REPORT_SPLIT]
    if not queries:
        raise ValueError(f"no {REPORT_SPLIT} queries with readable videos in {data.source}")
    runs = evaluate_models(
        predictors, data.samples[REPORT_SPLIT], queries, top_k=cfg.moments.top_k,
        n_boot=cfg.moments.n_boot if n_boot is None else n_boot, seed=cfg.seed,
    )  # fmt: skip
    written = write_runs(runs_dir(cfg), runs, REPORT_SPLIT)
    return MomentExperiment(data, predictors, runs, written)
