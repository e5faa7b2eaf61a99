"""The committed notebooks: clean (one parameters cell, no outputs) and all running ok end to end."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from vtr.paths import project_root
from vtr.report import read_strict_json
from vtr.report.notebooks import Notebook, discover_notebooks, parameters_cells
from vtr.report.outputs import scalar_metrics

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


# The profile of the full run below: configs/smoke.yaml (the sample profile at toy sizes, ~3 minutes on
# 2 cores) keeps CI within its budget; VTR_NOTEBOOK_PROFILE=sample runs the real `make reports` (~10 minutes).
NOTEBOOK_PROFILE = os.environ.get("VTR_NOTEBOOK_PROFILE", "smoke")


@pytest.mark.slow
@pytest.mark.skipif(not NOTEBOOKS, reason=NO_NOTEBOOKS)
def test_all_notebooks_run_ok_end_to_end(tmp_path: Path) -> None:
    """Every notebook, in order, from nothing cached (own data_dir): ok, strict metrics, no progress bars."""
    reports = tmp_path / "reports"
    command = [sys.executable, str(ROOT / "run_all.py"), "--profile", NOTEBOOK_PROFILE, "--reports", str(reports)]
    command += ["--set", f"data_dir={tmp_path / 'data'}"]
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
        executed = nbformat.read(reports / f"{nb.stem}.ipynb", as_version=4)
        assert not progress_outputs(executed), (
            f"{nb.stem}: progress bars in the report: {progress_outputs(executed)}"
        )
    assert result.stdout.strip().splitlines()[-1] == str((reports / "index.html").resolve())


_TEXT_BAR = re.compile(r"\d+%\|")


def progress_outputs(nb: nbformat.NotebookNode) -> list[str]:
    """Outputs that are progress bars: tqdm widgets, or tqdm's text bars on a stream.

    ``run_all.py`` sets ``VTR_PROGRESS=0`` in its kernels, so a report should have none (vtr.progress).
    """
    found = []
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if "application/vnd.jupyter.widget-view+json" in output.get("data", {}):
                found.append(f"cell {index}: widget {output['data'].get('text/plain', '')!r}")
            elif output.get("output_type") == "stream" and _TEXT_BAR.search(output.get("text", "")):
                found.append(f"cell {index}: {output['text'].strip()[:80]!r}")
    return found


def test_progress_outputs_finds_widget_and_text_bars() -> None:
    nb = nbformat.v4.new_notebook()
    widget = nbformat.v4.new_output(
        "display_data",
        data={"application/vnd.jupyter.widget-view+json": {"model_id": "x"}, "text/plain": "bar"},
    )
    text_bar = nbformat.v4.new_output("stream", name="stderr", text="decode:  50%|#####     | 5/10\n")
    plain = nbformat.v4.new_output("stream", name="stdout", text="recall 50% at k=5\n")
    nb.cells = [
        nbformat.v4.new_code_cell("", outputs=[widget, plain]),
        nbformat.v4.new_code_cell("", outputs=[text_bar]),
    ]
    assert [entry.split(":")[0] for entry in progress_outputs(nb)] == ["cell 0", "cell 1"]
    nb.cells[0].outputs, nb.cells[1].outputs = [plain], []
    assert progress_outputs(nb) == []


# A small world and short training: the set still builds the world, pretrains vtr-tiny, embeds the
# clips and trains two scorers with bootstrap statistics, so every stage of a report run is covered.
SMALL_RUN = [
    "world.n_clips=40",
    "world.n_long_videos=1",
    "world.events_per_long_video=2",
    "world.n_stills=240",
    "world.clip_frames=16",
    "tiny.max_epochs=2",
    "tiny.pool_stills=120",
    "tiny.pool_clips=60",
    "finetune.scorers=[dual,crossattn]",
    "finetune.losses=[infonce]",
    "finetune.seeds=[0,1]",
    "finetune.n_boot=200",
    "train.epochs=2",
]


@pytest.mark.slow
@pytest.mark.skipif(
    not {"00", "02"} <= {f"{nb.number:02d}" for nb in NOTEBOOKS}, reason="needs notebooks 00, 02"
)
def test_two_fresh_runs_write_byte_identical_metrics(tmp_path: Path) -> None:
    """Two runs of 00 and 02 at once, each from nothing cached (its own data_dir and reports), write the very
    same metrics files, byte for byte; every metrics file is strict JSON."""
    runs = {}
    for name in ("a", "b"):
        command = [sys.executable, str(ROOT / "run_all.py"), "--profile", "sample", "--only", "00,02"]
        command += ["--reports", str(tmp_path / name / "reports"), "--no-progress"]
        for override in [f"data_dir={tmp_path / name / 'data'}", *SMALL_RUN]:
            command += ["--set", override]
        runs[name] = subprocess.Popen(
            command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
    for name, process in runs.items():
        out, _ = process.communicate(timeout=1500)
        assert process.returncode == 0, f"run {name} failed:\n{out[-4000:]}"
    files = {name: sorted((tmp_path / name / "reports" / "metrics").glob("*.json")) for name in runs}
    assert (
        [p.name for p in files["a"]]
        == [p.name for p in files["b"]]
        == ["00_data.json", "02_cross_attention_hnac.json"]
    )
    for path_a, path_b in zip(files["a"], files["b"], strict=True):
        a, b = read_strict_json(path_a), read_strict_json(path_b)
        differing = sorted(k for k in scalar_metrics(a) if scalar_metrics(a)[k] != scalar_metrics(b).get(k))
        assert path_a.read_bytes() == path_b.read_bytes(), (
            f"{path_a.name}: {len(differing)} values differ: {differing[:8]}"
        )
