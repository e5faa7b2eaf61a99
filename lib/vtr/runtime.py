"""Reproducibility and environment: one seed for every source of randomness, the device, versions."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from vtr.paths import project_root


def seed_everything(seed: int, *, deterministic: bool = True) -> None:
    """Seed Python, numpy and torch (CPU and CUDA); make torch pick deterministic kernels.

    Not the hash seed: Python reads ``PYTHONHASHSEED`` once, at interpreter start-up, so setting it
    here would change nothing in this process. ``run_all.py`` starts every notebook kernel with a fixed
    one (:data:`vtr.report.engine.KERNEL_HASH_SEED`), so set iteration order is the same in every run.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)
    if deterministic:
        # warn_only: a few CUDA ops have no deterministic kernel; warn rather than fail on them.
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


def torch_generator(seed: int) -> torch.Generator:
    """A generator for DataLoader shuffling, so the order depends on the profile's seed only."""
    gen = torch.Generator()
    gen.manual_seed(seed)
    return gen


def resolve_device(preference: str = "auto") -> torch.device:
    """``auto`` picks CUDA, then Apple MPS, then CPU; an explicit choice that is unavailable is an error."""
    if preference == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(preference)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {preference!r} requested but CUDA is not available")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise RuntimeError(f"device {preference!r} requested but MPS is not available")
    return device


def git_commit() -> str:
    """The checkout's commit (with ``-dirty`` when there are uncommitted changes), or ``unknown``."""
    root = project_root()
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=root, capture_output=True, text=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("-dirty" if dirty else "")


def environment_info(device: str = "auto") -> dict[str, Any]:
    """What a reader needs to reproduce a report: commit, versions, device."""
    try:  # the distribution's metadata, not an import: importing open_clip costs seconds
        open_clip_version = importlib.metadata.version("open_clip_torch")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - open_clip is a dependency
        open_clip_version = "not installed"
    dev = resolve_device(device)
    name = (
        torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor() or platform.machine()
    )
    return {
        "git_commit": git_commit(),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "open_clip": open_clip_version,
        "numpy": np.__version__,
        "device": f"{dev.type} ({name}, {os.cpu_count()} CPUs)",
        "platform": platform.platform(),
    }


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``repeats`` calls after one warm-up call (file cache, lazy imports, kernels).

    The timing helper of ``benchmarks/``: the median resists the odd slow call on a shared machine.
    """
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def median_cpu_and_wall(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Median CPU seconds (``time.process_time``: this process, all threads) and median wall seconds of
    ``repeats`` calls after one warm-up call. CPU time is the figure to trust on a shared machine."""
    fn()
    cpu, wall = [], []
    for _ in range(repeats):
        c0, w0 = time.process_time(), time.perf_counter()
        fn()
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
    return statistics.median(cpu), statistics.median(wall)
