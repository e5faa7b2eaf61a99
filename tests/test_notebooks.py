"""The committed notebooks: clean (one parameters cell, no outputs) and all running ok end to end."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from vtr.paths import project_root
from vtr.report import read_strict_json
from vtr.runner import Notebook, discover_notebooks, parameters_cells

ROOT = project_root()
NOTEBOOKS = discover_notebooks(ROOT / "notebooks") if (ROOT / "notebooks").is_dir() else []
NO_NOTEBOOKS = "notebooks/ holds no NN_name.ipynb notebooks yet"


@pytest.mark.skipif(not NOTEBOOKS, reason=NO_NOTEBOOKS)
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda nb: nb.stem)
def test_notebook_is_committed_clean_with_one_parameters_cell(notebook: Notebook) -> None:
    nb = nbformat.read(notebook.path, as_version=4)
    tagged = parameters_cells(nb)
    assert len(tagged) == 1, f"{notebook.path}: {len(tagged)} cells tagged 'parameters', expected 1"
    cell = nb.cells[tagged[0]]
    assert cell.cell_type == "code", f"{notebook.path}: the parameters cell must be a code cell"
    assigned = {
        target.id
        for node in ast.parse(cell.source).body
        if isinstance(node, ast.Assign | ast.AnnAssign)
        for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(target, ast.Name)
    }
    assert {"profile", "overrides"} <= assigned, (
        f"{notebook.path}: parameters cell must define profile and overrides"
    )
    for index, code in enumerate(nb.cells):
        if code.cell_type == "code":
            assert not code.outputs, f"{notebook.path}: cell {index} is committed with outputs"
            assert code.execution_count is None, f"{notebook.path}: cell {index} has an execution count"


@pytest.mark.slow
@pytest.mark.skipif(not NOTEBOOKS, reason=NO_NOTEBOOKS)
def test_all_notebooks_run_ok_on_the_sample_profile(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    command = [sys.executable, str(ROOT / "run_all.py"), "--profile", "sample", "--reports", str(reports)]
    result = subprocess.run(
        [*command, "--no-progress"], cwd=ROOT, capture_output=True, text=True, timeout=1500
    )
    assert result.returncode == 0, f"run_all.py failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    rows = {row["stem"]: row for row in json.loads((reports / "run.json").read_text())["notebooks"]}
    assert set(rows) == {nb.stem for nb in NOTEBOOKS}
    for nb in NOTEBOOKS:
        assert rows[nb.stem]["status"] == "ok", f"{nb.stem}: {rows[nb.stem]['error']}"
        metrics_file = reports / "metrics" / f"{nb.stem}.json"
        assert metrics_file.is_file(), f"{nb.stem} saved no metrics ({metrics_file})"
        assert read_strict_json(metrics_file), f"{metrics_file} is empty"  # strict: no NaN/Infinity
    assert result.stdout.strip().splitlines()[-1] == str((reports / "index.html").resolve())
