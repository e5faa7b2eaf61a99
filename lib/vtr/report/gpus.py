"""Training the fine-tuning grids on several GPUs before the notebooks (``--gpus``).

The notebooks train on one device each. When the profile trains on CUDA and torch sees more than one
GPU (or ``--gpus N`` with N > 1), the runner first runs ``vtr train --nproc N`` (:mod:`vtr.experiments.finetune_grids`: the
grids of the selected notebooks 02 and 03 under torchrun, DDP); the notebooks then reload those
finished runs instead of training. If that step fails the notebooks still run.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vtr.config import Profile
from vtr.report.notebooks import Notebook, UsageError


def training_processes(profile: Profile, gpus: str) -> int:
    """How many processes train the fine-tuning grids before the notebooks; 1 means no separate step.

    ``auto``: every GPU torch sees, when the profile trains on CUDA (device ``auto`` or ``cuda``) and
    there are at least two; otherwise 1. A number is taken as given (> 1 on a CPU: gloo processes).
    """
    if gpus != "auto":
        if not gpus.isdigit() or int(gpus) < 1:
            raise UsageError(f"--gpus {gpus!r}: expected auto or a number of processes >= 1")
        return int(gpus)
    if not (profile.device == "auto" or profile.device.startswith("cuda")):
        return 1
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return count if count > 1 else 1


def training_command(
    profile: str, overrides: dict[str, Any], notebooks: Sequence[Notebook], nproc: int, progress: bool = True
) -> list[str] | None:
    """The ``vtr train`` command line (run from the project root) for the grids of ``notebooks``; None
    when none of them trains a grid or ``nproc`` is 1. Overrides are passed as JSON, which the YAML
    override parser reads back unchanged."""
    from vtr.cli import train_argv
    from vtr.experiments.finetune_grids import GRIDS

    numbers = [nb.number for nb in notebooks if nb.number in GRIDS]
    if nproc <= 1 or not numbers:
        return None
    sets = [f"{key}={json.dumps(value)}" for key, value in overrides.items()]
    argv = train_argv(profile, sets, numbers, nproc=nproc, progress=progress)
    return [sys.executable, "-m", "vtr.cli", *argv]


def train_first(command: list[str], root: Path, run_record: dict[str, Any]) -> bool:
    """Run ``vtr train`` under torchrun; returns whether it succeeded (the notebooks run either way)."""
    print(f"vtr: training the fine-tuning grids first: {shlex.join(command)}", flush=True)
    started = time.perf_counter()
    returncode = subprocess.run(command, cwd=root).returncode
    run_record["distributed_training"] = {
        "command": shlex.join(command),
        "returncode": returncode,
        "duration_s": round(time.perf_counter() - started, 2),
    }
    if returncode:
        print(
            f"vtr: the multi-GPU training step failed (exit {returncode}); the notebooks train what is "
            "missing on one device",
            file=sys.stderr,
        )
    return returncode == 0

