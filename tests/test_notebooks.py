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


# The profile of the runs below: configs/smoke.yaml (the sample profile at toy sizes: every notebook in
# about 7 minutes on 2 idle cores, measured) keeps CI within its budget; VTR_NOTEBOOK_PROFILE=sample runs
# the real `make reports` instead (19 min 38 s there from nothing cached, measured on 2 idle cores).
NOTEBOOK_PROFILE = os.environ.get("VTR_NOTEBOOK_PROFILE", "smoke")


DETERMINISM_NOTEBOOKS = ("00", "02")  # data and a training grid with bootstrap statistics


def _run_all(tmp: Path, *extra: str) -> subprocess.CompletedProcess:
    command = [
        sys.executable,
        str(ROOT / "run_all.py"),
        "--profile",
        NOTEBOOK_PROFILE,
        "--reports",
        str(tmp / "reports"),
    ]
    command += ["--set", f"data_dir={tmp / 'data'}", "--no-progress", *extra]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=1800)


@pytest.fixture(scope="module")
def fresh_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, subprocess.CompletedProcess]]:
    """Two runs, each from nothing cached in its own data_dir and reports: every notebook ("all"), then 00
    and 02 again ("again") for the byte-identity check. One after the other: two torch processes on CI's
    two cores slow each other far more than they overlap (vtr-tiny's pretraining test: 16 s alone, 93 s
    beside a notebook run)."""
    done = {}
    for name, extra in (("all", ()), ("again", ("--only", ",".join(DETERMINISM_NOTEBOOKS)))):
        folder = tmp_path_factory.mktemp(name)
        done[name] = (folder / "reports", _run_all(folder, *extra))
    return done


@pytest.mark.slow
@pytest.mark.skipif(not NOTEBOOKS, reason=NO_NOTEBOOKS)
def test_all_notebooks_run_ok_end_to_end(fresh_runs) -> None:
    """Every notebook, in order, from nothing cached (own data_dir): ok, strict metrics, no progress bars."""
    reports, result = fresh_runs["all"]
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
    extraction = read_strict_json(reports / "metrics" / "06_extraction_search.json")
    assert_extraction_metrics(extraction, reports / "metrics")
    assert_ray_matches_local(extraction["ray"])


def assert_extraction_metrics(metrics: dict, figures: Path) -> None:
    """Notebook 06's headline: the world's clips all extracted, TempMe merged tokens, STOP's prompts trained
    for the profile's epochs, and its figures saved."""
    from vtr.config import load_profile

    cfg = load_profile(NOTEBOOK_PROFILE)
    world = metrics["extraction"]["world"]
    assert world["processed"] + world.get("failed", 0) == world["total"] == cfg.world.n_clips, world
    assert metrics["tempme"]["tokens_on"] < metrics["tempme"]["tokens_off"]
    assert 1 <= metrics["stop"]["epochs"] <= cfg.extract.prompt_epochs
    for figure in ("06_extraction_search_examples", "06_extraction_search_comparisons"):
        assert (figures / f"{figure}.png").is_file(), figure


@pytest.mark.slow
@pytest.mark.skipif(
    not set(DETERMINISM_NOTEBOOKS) <= {f"{nb.number:02d}" for nb in NOTEBOOKS},
    reason="needs notebooks 00, 02",
)
def test_two_fresh_runs_write_byte_identical_metrics(fresh_runs) -> None:
    """00 and 02 of the two runs, each from nothing cached, write the very same metrics files, byte for
    byte (the runs share no cache)."""
    (reports_a, _), (reports_b, run_b) = fresh_runs["all"], fresh_runs["again"]
    assert run_b.returncode == 0, f"the second run failed:\n{run_b.stdout[-4000:]}\n{run_b.stderr[-4000:]}"
    files_b = sorted((reports_b / "metrics").glob("*.json"))
    assert [p.name[:2] for p in files_b] == list(DETERMINISM_NOTEBOOKS)
    for path_b in files_b:
        path_a = reports_a / "metrics" / path_b.name
        assert path_a.is_file(), f"the run of every notebook wrote no {path_a.name}"
        a, b = read_strict_json(path_a), read_strict_json(path_b)
        differing = sorted(k for k in scalar_metrics(a) if scalar_metrics(a)[k] != scalar_metrics(b).get(k))
        assert path_a.read_bytes() == path_b.read_bytes(), (
            f"{path_a.name}: {len(differing)} values differ: {differing[:8]}"
        )


def assert_ray_matches_local(ray: dict) -> None:
    """Notebook 06's Ray check: ``--engine ray`` (local cluster, two actors) stored the local engine's rows
    and embeddings. This is CI's one end-to-end run of the Ray engine; Ray is in the dev extra, so under
    CI it must have run."""
    if ray["status"] != "ok" and not os.environ.get("CI"):
        pytest.skip(f"notebook 06's Ray check: {ray.get('message')}")
    assert ray["status"] == "ok", ray.get("message")
    assert ray["same_rows"] and ray["videos"] >= 1
    assert ray["max_abs_diff"] <= 1e-5, ray


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
