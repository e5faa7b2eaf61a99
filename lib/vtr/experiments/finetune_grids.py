"""The fine-tuning grids of notebooks 02 and 03 outside Jupyter, so that they can train on several GPUs.

    vtr train --profile full --nproc 4     # = python -m torch.distributed.run --nproc_per_node 4 -m vtr.cli train
    python run_all.py --profile full       # --gpus auto (default): runs the line above first when the
                                           # profile trains on CUDA and torch sees several GPUs

A notebook runs in one Jupyter kernel, so it trains on one device. Notebooks 02 and 03 plan their runs
with :func:`cross_attention_grid` and :func:`fusion_grid` (features, :class:`~vtr.finetune.RunSpec`
lists, ``epochs``); :func:`train_grids` takes the same plans to the same :func:`vtr.finetune.run_grid`
call. Checkpoint folders are named by
:func:`vtr.finetune.run_key`, which hashes every setting, so the notebooks find the finished runs
afterwards and :func:`vtr.train.fit` reloads them instead of training (the test grid of
``tests/test_grids.py`` executes the notebooks' own cells to check that).

Under torchrun each process trains with DDP (:mod:`vtr.train`): ``train.batch_size`` is per process,
so N processes train on a global batch N times larger than a single-process run of the same profile
would, and the run key does not record N. The dual scorer's loss gathers all ranks' features (every
caption meets the global batch's videos); the pair scorers (``crossattn``, ``fusion``) score the pairs
of their own rank's batch only (:func:`vtr.finetune.train_one`).
"""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.distributed as dist

from vtr.finetune import FeatureSplit, GridResult, RunSpec, build_features, default_runs_dir, run_grid
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


def cross_attention_grid(cfg: Profile, encoder: Encoder) -> Grid:
    """Notebook 02: every scorer x loss x seed on ``video.strategy``, validated on the val split."""
    ft, strategy = cfg.finetune, cfg.video.strategy
    train, val, test = (build_features(cfg, encoder, name, strategy) for name in ("train", "val", "test"))
    specs = [
        RunSpec(s, loss, strategy, seed)
        for s, loss, seed in itertools.product(ft.scorers, ft.losses, ft.seeds)
    ]
    return Grid("02_cross_attention_hnac", specs, {strategy: (train, val, test)}, None)


def fusion_grid(cfg: Profile, encoder: Encoder) -> Grid:
    """Notebook 03: the fusion scorer, every sampling strategy x loss x seed, ``min(10, epochs)`` epochs."""
    ft = cfg.finetune
    splits: Splits = {}
    text = {}
    for strategy in ft.strategies:
        parts = []
        for name in ("train", "test"):
            split = build_features(cfg, encoder, name, strategy, text=text.get(name))
            if split.text is not None:
                text.setdefault(name, split.text)  # caption features do not depend on the strategy
            parts.append(split)
        splits[strategy] = (parts[0], None, parts[1])
    specs = [
        RunSpec("fusion", loss, strategy, seed)
        for strategy, loss, seed in itertools.product(ft.strategies, ft.losses, ft.seeds)
    ]
    return Grid("03_fusion_sampling", specs, splits, min(10, cfg.train.epochs))


# notebook number -> the grid it trains
GRIDS = {2: cross_attention_grid, 3: fusion_grid}


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
            grid = GRIDS[number](cfg, encoder)
        results[number] = run_grid(
            cfg, grid.specs, grid.splits, out_root=default_runs_dir(cfg, grid.notebook), encoder=encoder,
            epochs=grid.epochs, progress=progress and ranks.main,
        )  # fmt: skip
    return results


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
