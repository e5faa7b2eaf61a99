"""The one trainer every model in vtr uses.

    result = fit(model, batch_loss, loader, cfg.train, out_dir="runs/x", validate=val_fn, monitor="val_R@1")
    result.history          # one row per epoch: epoch, train_loss, lr, seconds, + validate's keys
    result.best_epoch       # the model now holds best.pt's weights (``restore_best``)

What it does, and why:

* AdamW with two learning rates (:func:`param_groups`): ``lr_encoder`` (seed 003's 2e-5) for
  unfrozen pretrained blocks, ``lr_head`` for new heads; no weight decay on biases, norms or the
  logit scale (decaying those only shrinks scales the model needs).
* Linear warmup over ``warmup_fraction`` of all optimizer steps, then cosine decay to 0.
* Gradient accumulation (``grad_accum``), global-norm clipping (``grad_clip``), AMP (fp16 with a
  gradient scaler) on CUDA only.
* Validation after every epoch (``validate``, model in eval mode, no grad), early stopping after
  ``patience`` epochs without a better ``monitor`` value; ``best.pt`` holds the best weights.
* ``last.pt`` (model, optimizer, scheduler, scaler, history, early-stopping state) is written
  atomically after every epoch and ``resume`` continues from it, but only when the checkpoint's
  seed, training config, monitor, mode and batches per epoch match this run's (a mismatch is a
  ``ValueError`` naming each differing field). Every epoch's randomness
  (dropout, shuffling through the loader's ``generator``, numpy, random) is seeded from
  ``(seed, epoch)`` at the start of the epoch, so a resumed run ends with exactly the weights of
  an uninterrupted one.
* ``metrics.csv`` (rewritten atomically each epoch) and TensorBoard under ``<out_dir>/tensorboard``.
* A non-finite loss stops the run with :class:`NonFiniteLossError` naming the epoch, step and value.

Several GPUs (DDP). The same ``fit`` runs under ``torchrun``; nothing changes in the caller::

    torchrun --nproc_per_node 4 my_training_script.py      # calls fit() as usual

Each process joins the process group torchrun describes (nccl on CUDA, gloo on CPU), trains on
``cuda:LOCAL_RANK``, and sees its own share of the data: a DataLoader is rebuilt with a
``DistributedSampler`` (shuffled as the original was, reshuffled per epoch from ``seed``), other
batches are dealt out round-robin each epoch (padded by wrapping around, as ``DistributedSampler``
pads; batches drawn from a ``generator`` are drawn alike on every rank, so the ranks split one draw).
``train.batch_size`` is per process, so the global batch is N times larger. Gradients are averaged
by ``DistributedDataParallel``; contrastive losses see the whole global batch through
:func:`vtr.losses.contrastive_loss`, which gathers features across ranks with gradients. Only rank
0 validates (its metrics are broadcast, so every rank stops at the same epoch), writes checkpoints,
``metrics.csv`` and TensorBoard, and shows progress; the logged ``train_loss`` is the mean over
ranks. Checkpoints hold the bare model's ``state_dict`` (no ``module.`` prefix), so a run written
under DDP resumes in one process and vice versa; only a resume with the same number of processes
repeats the uninterrupted run exactly (the batches per step and the schedule's length differ).

The full profile on a machine with several GPUs: the notebooks run in one Jupyter kernel each, so
they train on one GPU. ``vtr train --profile full --nproc N`` (:mod:`vtr.experiments.finetune_grids`) trains notebooks
02 and 03's grids under torchrun with the notebooks' run keys, and ``python run_all.py --profile
full`` (``--gpus auto``, the default) runs it first whenever the profile trains on CUDA and torch
sees several GPUs; the notebooks then find each run's finished ``last.pt`` and do not train again.
In ``vtr.finetune`` the dual scorer's loss goes through :func:`vtr.losses.contrastive_loss` (the
global batch's negatives); the pair scorers (cross-attention, fusion) score their rank's pairs only.
Notebook 05's heads are not in ``vtr train``: they train on frozen features in seconds.
"""

from __future__ import annotations

import dataclasses
import math
import os
import random
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import BatchSampler, DataLoader, DistributedSampler, RandomSampler, SequentialSampler
from tqdm.auto import tqdm

from vtr.atomic import atomic_path
from vtr.losses import distributed_world
from vtr.progress import show_progress

if TYPE_CHECKING:
    from vtr.config import TrainConfig

CHECKPOINT_VERSION = 1
# Fields of TrainConfig that do not change the weights a run ends with: a resumed run may differ in them.
_RESUME_FREE_FIELDS = {"num_workers", "tensorboard"}


class NonFiniteLossError(RuntimeError):
    """A NaN or infinite loss (or gradient norm): names the epoch, the step within it and the value."""

    def __init__(self, epoch: int, step: int, value: float, what: str = "loss") -> None:
        self.epoch, self.step, self.value = epoch, step, value
        super().__init__(
            f"non-finite {what} {value} at epoch {epoch}, step {step}: stopping instead of training on garbage "
            "(lower the learning rate, check the inputs for NaN, or turn AMP off)"
        )


@dataclass
class TrainResult:
    history: (
        pd.DataFrame
    )  # one row per epoch: epoch, train_loss, lr, seconds, + every key `validate` returned
    best_epoch: int  # epoch (1-based) with the best monitored value (last epoch when no validate)
    best_value: float | None
    checkpoint_dir: Path  # holds last.pt, best.pt, metrics.csv, tensorboard/
    stopped_early: bool


# ----------------------------------------------------------------------------- parameter groups

ParamsLike = Iterable[nn.Parameter] | Iterable[tuple[str, nn.Parameter]]


def _named(params: ParamsLike) -> list[tuple[str, nn.Parameter]]:
    named = []
    for i, item in enumerate(params):
        named.append(item if isinstance(item, tuple) else (f"param{i}", item))
    return named


def _no_decay(name: str, param: nn.Parameter) -> bool:
    """Biases, norm scales and scalars (logit scale, temperature) are 0-d or 1-d; the names catch the rest."""
    lowered = name.lower()
    return param.ndim < 2 or "logit_scale" in lowered or lowered.endswith(".bias") or "norm" in lowered


def param_groups(encoder_params: ParamsLike, head_params: ParamsLike, cfg: TrainConfig) -> list[dict]:
    """AdamW groups: ``lr_encoder`` for the (unfrozen) encoder, ``lr_head`` for new heads, each split
    into a weight-decayed and a decay-free group. Accepts parameters or ``named_parameters()``;
    frozen parameters (``requires_grad=False``) and empty groups are left out."""
    groups = []
    for role, params, lr in (("encoder", encoder_params, cfg.lr_encoder), ("head", head_params, cfg.lr_head)):
        trainable = [(n, p) for n, p in _named(params) if p.requires_grad]
        decay = [p for n, p in trainable if not _no_decay(n, p)]
        no_decay = [p for n, p in trainable if _no_decay(n, p)]
        for suffix, ps, wd in (("", decay, cfg.weight_decay), ("_no_decay", no_decay, 0.0)):
            if ps:
                groups.append({"name": f"{role}{suffix}", "params": ps, "lr": lr, "weight_decay": wd})
    seen: set[int] = set()
    for group in groups:
        for p in group["params"]:
            if id(p) in seen:
                raise ValueError(f"a parameter appears in more than one group ({group['name']})")
            seen.add(id(p))
    return groups


def warmup_cosine(total_steps: int, warmup_fraction: float) -> Callable[[int], float]:
    """LR multiplier: linear from 1/warmup to 1 over the warmup steps, then cosine from 1 to 0."""
    warmup = min(total_steps, max(0, round(warmup_fraction * total_steps)))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total_steps - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor


# ----------------------------------------------------------------------------- helpers


def to_device(batch: Any, device: torch.device) -> Any:
    """Move the tensors of a batch (nested tuples, lists, dicts) to ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):  # namedtuple
        return type(batch)(*(to_device(v, device) for v in batch))
    if isinstance(batch, list | tuple):
        return type(batch)(to_device(v, device) for v in batch)
    return batch


def _seed_epoch(seed: int, epoch: int, batches: Any, rank: int = 0) -> None:
    """Make an epoch's randomness a function of (seed, epoch) only, so that resuming is exact.

    Under DDP each rank draws its own dropout masks (rank 0 exactly as a single process would), while
    the batches' ``generator`` gets the same seed on every rank, so all ranks draw the same batches and
    each keeps its share (:class:`_RankShare`)."""
    data_seed = (seed * 1_000_003 + epoch) % 2**63
    epoch_seed = (data_seed + rank * 0x9E3779B97F4A7C15) % 2**63
    random.seed(epoch_seed)
    np.random.seed(epoch_seed % 2**32)
    torch.manual_seed(epoch_seed)
    generator = getattr(batches, "generator", None)
    if isinstance(generator, torch.Generator):
        generator.manual_seed(data_seed)
    sampler = getattr(batches, "sampler", None)
    if hasattr(sampler, "set_epoch"):
        sampler.set_epoch(epoch)


def _tensorboard(out_dir: Path, enabled: bool) -> Any:
    if not enabled:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        warnings.warn(
            "TensorBoard logging is on (train.tensorboard: true) but the tensorboard package is not "
            "installed: `pip install tensorboard`, or set train.tensorboard: false. Metrics still go to "
            "metrics.csv.",
            stacklevel=3,
        )
        return None
    return SummaryWriter(log_dir=str(out_dir / "tensorboard"))


def _save(obj: dict[str, Any], path: Path) -> None:
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def _load(path: Path, device: torch.device) -> dict[str, Any]:
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except Exception as err:  # a truncated or foreign file: say which one
        raise RuntimeError(f"cannot read checkpoint {path}: {type(err).__name__}: {err}") from err


def _comparable(cfg: TrainConfig) -> dict[str, Any]:
    return {k: v for k, v in dataclasses.asdict(cfg).items() if k not in _RESUME_FREE_FIELDS}


def _is_better(value: float, best: float | None, mode: str) -> bool:
    if best is None:
        return True
    return value > best if mode == "max" else value < best


# ----------------------------------------------------------------------------- distributed (DDP)


@dataclass(frozen=True)
class Ranks:
    """This process's place in a torch.distributed run: (0, 1) on a single process."""

    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1


def init_distributed(backend: str | None = None) -> Ranks:
    """Join the process group that ``torchrun`` describes in the environment (``WORLD_SIZE`` > 1,
    ``RANK``, ``MASTER_ADDR``...), once; by default nccl when CUDA is there, gloo otherwise (fit()
    picks by its device). Without torchrun: (0, 1)."""
    if dist.is_available() and not dist.is_initialized() and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        dist.init_process_group(backend or ("nccl" if torch.cuda.is_available() else "gloo"))
    return Ranks(*distributed_world())


def _rank_device(device: torch.device, ranks: Ranks) -> torch.device:
    """Under DDP a bare ``cuda`` means this process's GPU, ``cuda:LOCAL_RANK``."""
    if ranks.distributed and device.type == "cuda" and device.index is None:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", ranks.rank)))
        torch.cuda.set_device(device)
    return device


def _distributed_loader(loader: DataLoader, ranks: Ranks, seed: int) -> DataLoader:
    """``loader`` split across ranks: a DistributedSampler for one built with ``batch_size`` and
    ``shuffle`` (each rank gets 1/world of the samples, in equal counts); a custom ``batch_sampler``
    (e.g. :class:`vtr.data.samplers.PairBatchSampler`, whose batches must stay whole) is dealt out
    batch by batch (:class:`_RankShare`: every rank draws the same batches from the loader's
    generator, reseeded alike per epoch, and keeps its share)."""
    if isinstance(loader.sampler, DistributedSampler):
        return loader  # the caller split it already
    common = dict(
        num_workers=loader.num_workers, collate_fn=loader.collate_fn, pin_memory=loader.pin_memory,
        timeout=loader.timeout, worker_init_fn=loader.worker_init_fn, generator=loader.generator,
        persistent_workers=loader.persistent_workers,
        prefetch_factor=loader.prefetch_factor if loader.num_workers else None,
    )  # fmt: skip
    if loader.batch_size is None:  # batches come from a batch_sampler the caller built
        return DataLoader(loader.dataset, batch_sampler=_RankShare(loader.batch_sampler, ranks), **common)
    plain = type(loader.batch_sampler) is BatchSampler and type(loader.sampler) in (
        RandomSampler,
        SequentialSampler,
    )
    if not plain:
        raise ValueError(
            "under torch.distributed, fit() splits DataLoaders built with batch_size and shuffle, or with a "
            "batch_sampler; for a custom sampler pass a DataLoader whose sampler is a DistributedSampler"
        )
    sampler = DistributedSampler(
        loader.dataset, ranks.world, ranks.rank, shuffle=isinstance(loader.sampler, RandomSampler), seed=seed
    )
    return DataLoader(
        loader.dataset, batch_size=loader.batch_size, sampler=sampler, drop_last=loader.drop_last, **common
    )


class _RankShare:
    """Every ``world``-th batch of ``batches``, from this rank's index on, padded by wrapping around so
    that every rank takes the same number of steps (or they deadlock). ``batches`` is iterated afresh
    each epoch, so batches drawn per epoch from a ``generator`` (vtr.experiments.msrvtt_recall.train.PairBatches) stay
    fresh: :func:`_seed_epoch` seeds that generator alike on every rank, so the ranks split one draw."""

    def __init__(self, batches: Sequence[Any], ranks: Ranks) -> None:
        self.batches, self.ranks = batches, ranks

    @property
    def generator(self) -> Any:
        return getattr(self.batches, "generator", None)

    def __len__(self) -> int:
        return math.ceil(len(self.batches) / self.ranks.world)

    def __iter__(self) -> Iterator[Any]:
        items = list(self.batches)
        padded = (items * self.ranks.world)[: math.ceil(len(items) / self.ranks.world) * self.ranks.world]
        return iter(padded[self.ranks.rank :: self.ranks.world])


def _shard(batches: Sequence[Any] | DataLoader, ranks: Ranks, seed: int) -> Sequence[Any] | DataLoader:
    """This rank's share of the training batches (all of them on a single process)."""
    if not ranks.distributed:
        return batches
    if isinstance(batches, DataLoader):
        return _distributed_loader(batches, ranks, seed)
    return _RankShare(batches, ranks)


class _LossModule(nn.Module):
    """``batch_loss(model, batch)`` as a module's forward, so DDP sees every step: it arms its gradient
    all-reduce in ``forward``, whatever methods of the model ``batch_loss`` calls."""

    def __init__(self, model: nn.Module, batch_loss: Callable[[nn.Module, Any], torch.Tensor]) -> None:
        super().__init__()
        self.model = model
        self.batch_loss = batch_loss

    def forward(self, batch: Any) -> torch.Tensor:
        return self.batch_loss(self.model, batch)


def _loss_step(
    model: nn.Module, batch_loss: Callable[[nn.Module, Any], torch.Tensor], ranks: Ranks, device: torch.device
) -> tuple[Callable[[Any], torch.Tensor], Callable[[], Any]]:
    """The per-batch loss call and a context that skips the gradient all-reduce (gradient accumulation)."""
    if not ranks.distributed:
        return (lambda batch: batch_loss(model, batch)), nullcontext
    from torch.nn.parallel import DistributedDataParallel

    ddp = DistributedDataParallel(
        _LossModule(model, batch_loss),
        device_ids=[device.index] if device.type == "cuda" else None,
        find_unused_parameters=True,  # a head unused in some step must not hang the all-reduce
    )
    return ddp, ddp.no_sync


def _mean_over_ranks(value: float, ranks: Ranks, device: torch.device) -> float:
    if not ranks.distributed:
        return value
    total = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(total)
    return float(total) / ranks.world


def _on_main(fn: Callable[[], Any], ranks: Ranks) -> Any:
    """``fn()`` on rank 0, its result (or its exception) broadcast to every rank."""
    if not ranks.distributed:
        return fn()
    box: list[Any] = [None]
    if ranks.main:
        try:
            box[0] = fn()
        except Exception as err:  # every rank must raise, or the others wait forever
            box[0] = err
    dist.broadcast_object_list(box, src=0)
    if isinstance(box[0], Exception):
        raise box[0]
    return box[0]


def _barrier(ranks: Ranks) -> None:
    if ranks.distributed:
        dist.barrier()


# ----------------------------------------------------------------------------- the trainer


@dataclass
class _State:
    epoch: int = 0  # last completed epoch
    history: list[dict[str, float]] = dataclasses.field(default_factory=list)
    best_epoch: int = 0
    best_value: float | None = None
    bad_epochs: int = 0
    stopped_early: bool = False


def fit(
    model: nn.Module,
    batch_loss: Callable[[nn.Module, Any], torch.Tensor],
    train_batches: Iterable[Any],
    cfg: TrainConfig,
    *,
    out_dir: str | Path,
    groups: list[dict] | None = None,
    validate: Callable[[nn.Module], dict[str, float]] | None = None,
    monitor: str = "val_R@1",
    mode: str = "max",
    seed: int = 0,
    device: str | torch.device = "cpu",
    resume: bool = True,
    progress: bool = True,
    restore_best: bool = True,
    stop_when: Callable[[dict[str, float]], bool] | None = None,
) -> TrainResult:
    """Train ``model`` for ``cfg.epochs`` epochs of ``train_batches``; see the module docstring.

    ``stop_when(row)`` (optional) ends training after an epoch whose history row it accepts, e.g.
    a target accuracy reached (recorded as an early stop, like running out of patience).

    ``batch_loss(model, batch)`` returns the scalar loss of one batch (already on ``device``).
    ``train_batches`` is iterated once per epoch and needs a length (a list or a DataLoader;
    anything else is materialised into a list once). ``groups`` are AdamW parameter groups (see
    :func:`param_groups`); by default every trainable parameter trains at ``cfg.lr_head``.
    Under ``torchrun`` it trains with DDP (module docstring): ``validate`` then runs on rank 0 only.
    """
    if mode not in ("max", "min"):
        raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
    if cfg.epochs < 1 or cfg.grad_accum < 1:
        raise ValueError(
            f"train.epochs and train.grad_accum must be >= 1, got {cfg.epochs}, {cfg.grad_accum}"
        )
    batches: Sequence[Any] | Any = train_batches if hasattr(train_batches, "__len__") else list(train_batches)
    if len(batches) == 0:
        raise ValueError("train_batches is empty: nothing to train on")
    ranks = init_distributed("nccl" if torch.device(device).type == "cuda" else "gloo")
    batches = _shard(batches, ranks, seed)
    # per process: the optimizer steps of an epoch, what a resume in one process must match
    n_batches = len(batches)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    dev = _rank_device(torch.device(device), ranks)
    model.to(dev)

    groups = groups if groups is not None else param_groups([], model.named_parameters(), cfg)
    params = [p for g in groups for p in g["params"]]
    if not params:
        raise ValueError("no trainable parameters: every parameter is frozen")
    optimizer = _adamw(groups, params, cfg, dev)
    steps_per_epoch = math.ceil(n_batches / cfg.grad_accum)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, warmup_cosine(cfg.epochs * steps_per_epoch, cfg.warmup_fraction)
    )
    use_amp = cfg.amp and dev.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)

    state = _State()
    last_path, best_path = out / "last.pt", out / "best.pt"
    if resume and last_path.is_file():
        settings = _settings(cfg, seed, monitor, mode, n_batches)
        state = _restore(last_path, dev, settings, model, optimizer, scheduler, scaler)
    # after restoring, so DDP's initial broadcast from rank 0 sends the resumed weights
    compute_loss, no_sync = _loss_step(model, batch_loss, ranks, dev)

    writer = (
        _tensorboard(out, cfg.tensorboard)
        if ranks.main and state.epoch < cfg.epochs and not state.stopped_early
        else None
    )
    try:
        while state.epoch < cfg.epochs and not state.stopped_early:
            epoch = state.epoch + 1
            _seed_epoch(seed, epoch, batches, ranks.rank)
            started = time.perf_counter()
            model.train()
            train_loss = _train_epoch(
                compute_loss,
                no_sync,
                ranks,
                batches,
                optimizer,
                scheduler,
                scaler,
                cfg,
                params,
                epoch,
                dev,
                use_amp,
                progress and ranks.main,
            )
            row: dict[str, float] = {
                "epoch": epoch,
                "train_loss": train_loss,
                "lr": max(g["lr"] for g in optimizer.param_groups),
            }
            if validate is not None:
                row.update(_on_main(lambda: _validate(model, validate, monitor), ranks))
            row["seconds"] = time.perf_counter() - started
            _update_best(state, row, epoch, validate is not None, monitor, mode, cfg.patience)
            if stop_when is not None and stop_when(row):
                state.stopped_early = True
            state.history.append(row)
            state.epoch = epoch
            if not ranks.main:
                continue
            if state.best_epoch == epoch:
                _save({"epoch": epoch, "value": state.best_value, "model": model.state_dict()}, best_path)
            _save(
                _checkpoint(state, cfg, seed, monitor, mode, n_batches, model, optimizer, scheduler, scaler),
                last_path,
            )
            _write_csv(state.history, out / "metrics.csv")
            if writer is not None:
                for key, value in row.items():
                    if key != "epoch":
                        writer.add_scalar(key, value, epoch)
                writer.flush()
    finally:
        if writer is not None:
            writer.close()

    _barrier(ranks)  # rank 0's best.pt is complete before anyone reads it
    if restore_best and best_path.is_file():
        model.load_state_dict(_load(best_path, dev)["model"])
    return TrainResult(
        history=pd.DataFrame(state.history),
        best_epoch=state.best_epoch,
        best_value=state.best_value,
        checkpoint_dir=out,
        stopped_early=state.stopped_early,
    )


def _adamw(
    groups: list[dict[str, Any]], params: list[torch.Tensor], cfg: TrainConfig, dev: torch.device
) -> torch.optim.AdamW:
    """AdamW over ``groups``, fused into one kernel per step where torch has one for the device.

    Why fused: the sample's tuned text tower carries its 49408-row token table, and the unfused
    per-tensor AdamW spent ~95 ms a step on it on one CPU core (fused: ~16 ms, same update)."""
    fused = dev.type in ("cpu", "cuda") and all(p.is_floating_point() for p in params)
    return torch.optim.AdamW(groups, lr=cfg.lr_head, weight_decay=cfg.weight_decay, fused=fused or None)


def _train_epoch(
    compute_loss: Callable[[Any], torch.Tensor],
    no_sync: Callable[[], Any],
    ranks: Ranks,
    batches: Sequence[Any],
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    scaler: torch.amp.GradScaler,
    cfg: TrainConfig,
    params: list[nn.Parameter],
    epoch: int,
    device: torch.device,
    use_amp: bool,
    progress: bool,
) -> float:
    """One pass over the batches; returns the mean batch loss (averaged over ranks under DDP)."""
    optimizer.zero_grad(set_to_none=True)
    autocast = torch.autocast("cuda", dtype=torch.float16) if use_amp else nullcontext()
    total, count, pending = 0.0, 0, 0
    bar = tqdm(batches, desc=f"epoch {epoch}/{cfg.epochs}", leave=False, disable=not show_progress(progress))
    for step, batch in enumerate(bar, start=1):
        # Only the last micro-batch of an accumulation window all-reduces the summed gradients.
        syncs = pending + 1 == cfg.grad_accum or step == len(batches)
        with nullcontext() if syncs else no_sync():
            with autocast:
                loss = compute_loss(to_device(batch, device))
            # the same value on every rank, so a NaN on one stops them all instead of deadlocking
            value = _mean_over_ranks(float(loss.detach()), ranks, device)
            if not math.isfinite(value):
                raise NonFiniteLossError(epoch, step, value)
            scaler.scale(loss / cfg.grad_accum).backward()
        total, count, pending = total + value, count + 1, pending + 1
        if pending == cfg.grad_accum:
            _optimizer_step(optimizer, scheduler, scaler, cfg, params, epoch, step, use_amp)
            pending = 0
        bar.set_postfix(loss=f"{value:.4f}")
    if pending:  # the last, partial accumulation window
        _optimizer_step(optimizer, scheduler, scaler, cfg, params, epoch, count, use_amp)
    return total / max(count, 1)


def _optimizer_step(
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    scaler: torch.amp.GradScaler,
    cfg: TrainConfig,
    params: list[nn.Parameter],
    epoch: int,
    step: int,
    use_amp: bool,
) -> None:
    scaler.unscale_(optimizer)
    if cfg.grad_clip > 0:
        norm = float(torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip))
        # Under AMP an inf norm means "skip this step and lower the scale": the scaler handles it.
        if not use_amp and not math.isfinite(norm):
            raise NonFiniteLossError(epoch, step, norm, what="gradient norm")
    scaler.step(optimizer)
    scaler.update()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)


def _validate(
    model: nn.Module, validate: Callable[[nn.Module], dict[str, float]], monitor: str
) -> dict[str, float]:
    was_training = model.training
    model.eval()
    with torch.no_grad():
        metrics = {k: float(v) for k, v in validate(model).items()}
    model.train(was_training)
    if monitor not in metrics:
        raise KeyError(f"validate() returned no {monitor!r} to monitor; it returned {sorted(metrics)}")
    reserved = {"epoch", "train_loss", "lr", "seconds"} & set(metrics)
    if reserved:
        raise ValueError(f"validate() must not return the trainer's own columns {sorted(reserved)}")
    return metrics


def _update_best(
    state: _State, row: dict[str, float], epoch: int, validated: bool, monitor: str, mode: str, patience: int
) -> None:
    if not validated:  # without validation the last epoch is the best one
        state.best_epoch, state.best_value = epoch, None
        return
    value = row[monitor]
    if _is_better(value, state.best_value, mode):
        state.best_epoch, state.best_value, state.bad_epochs = epoch, value, 0
    else:
        state.bad_epochs += 1
        if patience > 0 and state.bad_epochs >= patience:
            state.stopped_early = True


def _checkpoint(
    state: _State,
    cfg: TrainConfig,
    seed: int,
    monitor: str,
    mode: str,
    n_batches: int,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    scaler: torch.amp.GradScaler,
) -> dict[str, Any]:
    return {
        "version": CHECKPOINT_VERSION,
        **_settings(cfg, seed, monitor, mode, n_batches),
        "state": dataclasses.asdict(state),
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict(),
    }


def _settings(cfg: TrainConfig, seed: int, monitor: str, mode: str, n_batches: int) -> dict[str, Any]:
    """What decides the weights a run ends with: a checkpoint stores it and resumes only when it matches."""
    return {
        "config": _comparable(cfg),
        "seed": seed,
        "monitor": monitor,
        "mode": mode,
        "n_batches": n_batches,
    }


def _settings_changes(stored: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """``"field: stored -> current"`` for every setting that differs (config fields as ``config.<name>``).

    A field the checkpoint lacks (written before that field was stored) is not held against it.
    """
    changes = []
    for key, value in current.items():
        if key not in stored:
            continue
        if key == "config":
            old = stored[key]
            for name in sorted(set(old) | set(value)):
                if old.get(name) != value.get(name):
                    changes.append(f"config.{name}: {old.get(name)!r} -> {value.get(name)!r}")
        elif stored[key] != value:
            changes.append(f"{key}: {stored[key]!r} -> {value!r}")
    return changes


def _restore(
    path: Path,
    device: torch.device,
    settings: dict[str, Any],
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    scaler: torch.amp.GradScaler,
) -> _State:
    ckpt = _load(path, device)
    if ckpt.get("version") != CHECKPOINT_VERSION:
        raise RuntimeError(f"{path}: checkpoint version {ckpt.get('version')}, expected {CHECKPOINT_VERSION}")
    # Resuming with another seed, monitor or schedule would give weights no uninterrupted run gives.
    if changes := _settings_changes(ckpt, settings):
        raise ValueError(
            f"cannot resume from {path}: its settings differ from this run's ({'; '.join(changes)}); "
            "pass resume=False to start over, or use another out_dir"
        )
    model.load_state_dict(ckpt["model"])
    optimizer.load_state_dict(ckpt["optimizer"])
    scheduler.load_state_dict(ckpt["scheduler"])
    scaler.load_state_dict(ckpt["scaler"])
    return _State(**ckpt["state"])


def _write_csv(history: list[dict[str, float]], path: Path) -> None:
    with atomic_path(path) as tmp:
        pd.DataFrame(history).to_csv(tmp, index=False)
