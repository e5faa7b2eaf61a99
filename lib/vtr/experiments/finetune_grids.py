"""The fine-tuning grids of notebooks 02 and 03 outside Jupyter, so that they can train on several GPUs.

Each grid is planned by its notebook's package (:func:`vtr.experiments.crossattn_hnac.data.plan`,
:func:`vtr.experiments.fusion_sampling.data.plan`); this module holds what they share: the
:class:`Grid` plan, and :func:`train_grids`, which ``vtr train`` calls.

    vtr train --profile full --nproc 4     # = python -m torch.distributed.run --nproc_per_node 4 -m vtr.cli train
    python run_all.py --profile full       # --gpus auto (default): runs the line above first when the
                                           # profile trains on CUDA and torch sees several GPUs

A notebook runs in one Jupyter kernel, so it trains on one device. Notebooks 02 and 03 plan their runs
with their package's ``data.plan`` (features, :class:`~vtr.finetune.RunSpec` lists, ``epochs``);
:func:`train_grids` takes the same plans to the same :func:`vtr.finetune.run_grid` call. Checkpoint folders are named by
:func:`vtr.finetune.run_key`, which hashes every setting, so the notebooks find the finished runs
afterwards and :func:`vtr.train.fit` reloads them instead of training (the test grid of
``tests/experiments/test_finetune_grids.py`` executes the notebooks' own cells to check that).

Under torchrun each process trains with DDP (:mod:`vtr.train`): ``train.batch_size`` is per process,
so N processes train on a global batch N times larger than a single-process run of the same profile
would, and the run key does not record N. The dual scorer's loss gathers all ranks' features (every
caption meets the global batch's videos); the pair scorers (``crossattn``, ``fusion``) score the pairs
of their own rank's batch only (:func:`vtr.finetune.train_one`).
"""

from __future__ import annotations

import contextlib
import importlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.distributed as dist

from vtr.finetune import FeatureSplit, GridResult, RunSpec, default_runs_dir, run_grid
from vtr.runtime import resolve_device, seed_everything
from vtr.train import Ranks, init_distributed

if TYPE_CHECKING:
    from vtr.config import Profile
    from vtr.models.encoders import Encoder

Splits = dict[str, tuple[FeatureSplit, FeatureSplit | None, FeatureSplit]]


@dataclass
class Grid:
    """The arguments of one notebook's ``run_grid`` call."""

    notebook: str  # the notebook's stem, which names its runs folder
    specs: list[RunSpec]
    splits: Splits
    epochs: int | None


# notebook number -> the package whose ``data.plan(cfg, encoder)`` plans its grid
GRIDS: dict[int, str] = {2: "vtr.experiments.crossattn_hnac", 3: "vtr.experiments.fusion_sampling"}


def plan_grid(number: int, cfg: Profile, encoder: Encoder) -> Grid:
    """The grid notebook ``number`` trains (its package's ``data.plan``), imported when asked for."""
    if number not in GRIDS:
        raise ValueError(f"notebooks [{number}] train no grid; those with one: {sorted(GRIDS)}")
    return importlib.import_module(f"{GRIDS[number]}.data").plan(cfg, encoder)


def train_grids(
    cfg: Profile, notebooks: Sequence[int] = tuple(GRIDS), *, progress: bool = True
) -> dict[int, GridResult]:
    """Train the grids of ``notebooks`` (numbers, a subset of :data:`GRIDS`) as the notebooks would.

    Under torchrun, rank 0 loads the encoder and builds the features first (building the sample world,
    the tiny model and the embedding cache once), then the other ranks read them from the caches.
    """
    from vtr.models.encoders import load_encoder  # open_clip: imported when needed

    unknown = sorted(set(notebooks) - set(GRIDS))
    if unknown:
        raise ValueError(f"notebooks {unknown} train no grid; those with one: {sorted(GRIDS)}")
    device = _local_device(cfg)
    ranks = init_distributed("nccl" if device.startswith("cuda") else "gloo")
    results = {}
    for number in notebooks:
        with _main_rank_first(ranks):
            seed_everything(cfg.seed)  # as the notebook does before loading: random weights match too
            encoder = load_encoder(cfg, device=device)
            grid = plan_grid(number, cfg, encoder)
        results[number] = train_grid(cfg, grid, encoder, progress=progress and ranks.main)
    return results


def train_grid(cfg: Profile, grid: Grid, encoder: Encoder | None = None, *, progress: bool = True) -> GridResult:
    """Train (or reload) every run of ``grid`` under ``<data_dir>/runs/<notebook>`` and test it
    (:func:`vtr.finetune.run_grid`): the call notebooks 02 and 03 make, and ``vtr train`` too."""
    return run_grid(cfg, grid.specs, grid.splits, out_root=default_runs_dir(cfg, grid.notebook), encoder=encoder,
                    epochs=grid.epochs, progress=progress)  # fmt: skip


@contextlib.contextmanager
def _main_rank_first(ranks: Ranks) -> Iterator[None]:
    """Rank 0 runs the block, then the other ranks do (one barrier); a plain block on one process.
    An error on rank 0 skips its barrier: torchrun then stops the waiting ranks."""
    if ranks.distributed and not ranks.main:
        dist.barrier()
    yield
    if ranks.distributed and ranks.main:
        dist.barrier()


def _local_device(cfg: Profile) -> str:
    """This process's GPU under torchrun (``cuda:LOCAL_RANK``), else the profile's device."""
    device = resolve_device(cfg.device)
    if device.type == "cuda" and device.index is None and "LOCAL_RANK" in os.environ:
        device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
        torch.cuda.set_device(device)
    return str(device)
