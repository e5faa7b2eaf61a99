"""vtr.experiments.finetune_grids / ``vtr train``: the notebooks' grids trained under torchrun, then reused by the notebooks.

One ``vtr train --nproc 2`` (two gloo processes on the CPU) trains notebook 02's grid shrunk to two
tiny runs (the dual scorer, whose loss gathers across ranks, and cross-attention, whose negatives are
local) and notebook 03's to one fusion run; then each notebook's own cells, up to its ``run_grid``
call, execute in this process with the trainer's epoch loop replaced by a failure: they must find
every run finished and train nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import nbformat
import pandas as pd
import pytest

from vtr import train as T
from vtr.experiments.finetune_grids import GRIDS, train_grids
from vtr.paths import project_root

ROOT = project_root()


def _overrides(data_dir: Path) -> dict[str, Any]:
    """The sample profile shrunk: a 30-clip world, random vtr-tiny weights, runs of one epoch."""
    return {
        "data_dir": str(data_dir), "world.n_clips": 30, "world.n_long_videos": 1, "world.n_stills": 16,
        "model.pretrained": "", "finetune.scorers": ["dual", "crossattn"], "finetune.losses": ["infonce"],
        "finetune.strategies": ["uniform"], "finetune.seeds": [0], "finetune.n_boot": 50, "train.epochs": 1,
    }  # fmt: skip


def _notebook_until_grid(stem: str) -> list[str]:
    """The code cells of ``notebooks/<stem>.ipynb`` up to the one calling ``run_grid``, parameters cell
    left out (this test sets ``profile`` and ``overrides`` itself, as papermill would), and the Colab set-up
    cell too (IPython syntax, and a no-op outside Colab)."""
    nb = nbformat.read(ROOT / "notebooks" / f"{stem}.ipynb", as_version=4)
    cells = []
    for cell in nb.cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if cell.cell_type != "code" or "parameters" in tags or "colab-setup" in tags:
            continue
        cells.append(cell.source)
        if "run_grid(" in cell.source:
            return cells
    raise AssertionError(f"{stem}: no cell calls run_grid")


def _no_training(*args: Any, **kwargs: Any) -> float:
    raise AssertionError("the notebook trained an epoch although vtr train had finished the run")


@pytest.mark.slow  # ~30 s of CPU, ~100 s wall on the shared 2-core machine (torch imports, a world)
def test_vtr_train_under_torchrun_leaves_finished_runs_the_notebook_reuses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    overrides = _overrides(tmp_path / "data")
    sets = [a for key, value in overrides.items() for a in ("--set", f"{key}={json.dumps(value)}")]
    env = {
        **os.environ,
        "GLOO_SOCKET_IFNAME": "lo",  # stay on the loopback interface
        "OMP_NUM_THREADS": "1",
        "VTR_PROGRESS": "0",
        "PYTHONPATH": os.pathsep.join([str(ROOT / "lib"), os.environ.get("PYTHONPATH", "")]),
    }
    command = [sys.executable, "-m", "vtr.cli", "train", "--profile", "sample", *sets, "--only", "02,03",
               "--nproc", "2", "--no-progress"]  # fmt: skip
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "notebook 02: 2 runs finished" in done.stdout and "notebook 03: 1 runs finished" in done.stdout
    expected = {"02_cross_attention_hnac": ["crossattn", "dual"], "03_fusion_sampling": ["fusion"]}
    runs = {nb: sorted((tmp_path / "data" / "runs" / nb).iterdir()) for nb in expected}
    assert {nb: [r.name.split("-")[0] for r in found] for nb, found in runs.items()} == expected
    every = [r for found in runs.values() for r in found]
    written = {r: (r / "last.pt").stat().st_mtime_ns for r in every}
    histories = {r: pd.read_csv(r / "metrics.csv") for r in every}
    assert all(h["epoch"].tolist() == [1] for h in histories.values())

    monkeypatch.setattr(T, "_train_epoch", _no_training)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    for notebook, found in runs.items():
        namespace: dict[str, Any] = {"profile": "sample", "overrides": overrides}
        for source in _notebook_until_grid(notebook):
            exec(compile(source, f"{notebook}.ipynb", "exec"), namespace)  # noqa: S102
        grid = namespace["grid"]
        assert sorted(grid.table["scorer"]) == expected[notebook]
        assert sorted((tmp_path / "data" / "runs" / notebook).iterdir()) == found  # no new run key
        for spec, history in grid.histories.items():
            run = next(r for r in found if r.name.startswith(f"{spec.scorer}-"))
            assert history["train_loss"].tolist() == histories[run]["train_loss"].tolist()
    assert {r: (r / "last.pt").stat().st_mtime_ns for r in every} == written  # nothing rewritten


def test_train_grids_rejects_a_notebook_without_a_grid() -> None:
    assert sorted(GRIDS) == [2, 3]
    with pytest.raises(ValueError, match=r"\[5\] train no grid"):
        train_grids(None, [5])  # type: ignore[arg-type]  # checked before the profile is read
