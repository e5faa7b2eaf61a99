"""The papermill runner on small notebooks built here: statuses, reports, failures, selection, resume.

Kernel start-up dominates (~2 s a notebook), so the notebooks execute 7 times in all: one run of a
three-notebook suite shared by most tests (module fixture), one ``--only``, one ``--from --resume``
and two runs of a seeded notebook.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import shutil
import time
from pathlib import Path
from typing import Any

import nbformat
import numpy as np
import pytest
import torch

from vtr.config import load_profile
from vtr.report import runner
from vtr.report.command import main
from vtr.report.engine import KERNEL_HASH_SEED
from vtr.report.gpus import training_processes
from vtr.report.notebooks import Notebook, UsageError, discover_notebooks, select_notebooks
from vtr.report.outputs import _clean, format_value, scalar_metrics
from vtr.report.records import STATUS_OK, notebook_row
from vtr.report.resume import is_up_to_date, package_files
from vtr.runtime import seed_everything

PARAMETERS = 'profile = "sample"\noverrides = {}'
HIDDEN_SOURCE = "hidden_source_marker = 'not in the html'"

PASSING = [
    ("# A passing notebook", None),
    (PARAMETERS, "parameters"),
    (
        "from vtr.config import load_profile\n"
        "from vtr.report import save_figure, save_metrics\n"
        "cfg = load_profile(profile, overrides)\n"
        "save_metrics('01_pass', {'seed_times_3': cfg.seed * 3, 'n_clips': cfg.world.n_clips,\n"
        "                         'profile_name': cfg.name, 'nested': {'third': 1 / 3}})",
        None,
    ),
    (
        "import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt\n"
        "fig, ax = plt.subplots(figsize=(2, 2))\nax.plot([0, 1], [1, 0])\nsave_figure(fig, '01_pass_curve')",
        None,
    ),
    (f"{HIDDEN_SOURCE}\nprint('visible output ' + 'marker')", "hide-input"),
]
FAILING = [
    (PARAMETERS, "parameters"),
    ("x = 40 + 2", None),
    ("raise ValueError(f'deliberate failure {x}')", None),
    ("print('never reached')", None),
]
AFTER = [
    (PARAMETERS, "parameters"),
    ("from vtr.report import save_metrics\nsave_metrics('03_after', {'ran': 1})", None),
]
SEEDED = [
    (PARAMETERS, "parameters"),
    (
        "import os\nimport random\nimport numpy as np\nimport torch\n"
        "from vtr.config import load_profile\nfrom vtr.report import save_metrics\n"
        "from vtr.runtime import seed_everything\n"
        "seed_everything(load_profile(profile, overrides).seed)\n"
        "save_metrics('01_seeded', {'torch': torch.randn(4).tolist(), 'numpy': np.random.rand(3).tolist(),\n"
        "                           'python': random.random(), 'linear': torch.nn.Linear(3, 2).weight.sum().item(),\n"
        "                           'hash_seed': os.environ.get('PYTHONHASHSEED'),\n"
        "                           'set_order': list({f'item{i}' for i in range(12)})})",
        None,
    ),
]


def make_notebook(path: Path, cells: list[tuple[str, str | None]]) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        nbformat.v4.new_markdown_cell(source)
        if source.startswith("#")
        else nbformat.v4.new_code_cell(source, metadata={"tags": [tag]} if tag else {})
        for source, tag in cells
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def run_main(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([*argv, "--no-progress"])
    return code, out.getvalue(), err.getvalue()


def load_run(reports: Path) -> dict[str, Any]:
    return json.loads((reports / "run.json").read_text())


def rows_by_stem(reports: Path) -> dict[str, dict[str, Any]]:
    return {row["stem"]: row for row in load_run(reports)["notebooks"]}


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One run of pass / fail / pass with two overrides; tests copy its reports to run more."""
    base = tmp_path_factory.mktemp("suite")
    notebooks = base / "notebooks"
    make_notebook(notebooks / "01_pass.ipynb", PASSING)
    make_notebook(notebooks / "02_fail.ipynb", FAILING)
    make_notebook(notebooks / "03_after.ipynb", AFTER)
    reports = base / "reports"
    code, out, err = run_main(
        "--notebooks",
        str(notebooks),
        "--reports",
        str(reports),
        "--set",
        "seed=5",
        "--set",
        "world.n_clips=12",
    )
    return {"notebooks": notebooks, "reports": reports, "code": code, "out": out, "err": err}


def copy_reports(suite: dict[str, Any], tmp_path: Path) -> Path:
    reports = tmp_path / "reports"
    shutil.copytree(suite["reports"], reports)  # copy2 keeps the modification times
    return reports


# ---------------------------------------------------------------------------------------------- a full run


def test_failure_does_not_stop_the_run_and_exit_code_is_nonzero(suite: dict[str, Any]) -> None:
    assert suite["code"] == 1
    statuses = {stem: row["status"] for stem, row in rows_by_stem(suite["reports"]).items()}
    assert statuses == {"01_pass": "ok", "02_fail": "failed", "03_after": "ok"}
    assert load_run(suite["reports"])["failures"] == ["02_fail"]
    assert "1 notebook(s) failed: 02_fail" in suite["out"]
    # The absolute path of the index is the last line on the terminal.
    assert suite["out"].strip().splitlines()[-1] == str((suite["reports"] / "index.html").resolve())


def test_overrides_reach_the_notebook(suite: dict[str, Any]) -> None:
    metrics = json.loads((suite["reports"] / "metrics" / "01_pass.json").read_text())
    assert metrics["seed_times_3"] == 15 and metrics["n_clips"] == 12 and metrics["profile_name"] == "sample"
    run = load_run(suite["reports"])
    assert run["overrides"] == {"seed": 5, "world.n_clips": 12}
    assert run["parameters"] == {"profile": "sample", "overrides": {"seed": 5, "world.n_clips": 12}}


def test_html_hides_tagged_input_but_keeps_its_output(suite: dict[str, Any]) -> None:
    page = (suite["reports"] / "01_pass.html").read_text()
    assert "visible output marker" in page
    assert "hidden_source_marker" not in page
    assert "save_metrics" in page  # untagged cells keep their input


def test_failing_notebook_is_published_with_its_traceback(suite: dict[str, Any]) -> None:
    reports = suite["reports"]
    error = rows_by_stem(reports)["02_fail"]["error"]
    assert (error["ename"], error["evalue"]) == ("ValueError", "deliberate failure 42")
    # In the published copy the failing cell (index 2 in the source) comes after papermill's injected
    # parameters cell and its two error markers (one at the top, one just before it): index 5. It is
    # the fourth cell executed, "In [4]".
    assert (error["cell_index"], error["exec_count"]) == (5, 4)
    assert error["source"].startswith("raise ValueError")
    executed = nbformat.read(reports / "02_fail.ipynb", as_version=4)
    assert executed.cells[error["cell_index"]].source == error["source"]
    assert "deliberate failure 42" in (reports / "02_fail.html").read_text()
    index = (reports / "index.html").read_text()
    assert "ValueError: deliberate failure 42" in index and "raise ValueError(f&#x27;deliberate" in index


def test_index_lists_metrics_figures_links_and_environment(suite: dict[str, Any]) -> None:
    reports = suite["reports"]
    row = rows_by_stem(reports)["01_pass"]
    assert row["figures"] == ["metrics/01_pass_curve.png"]
    assert (reports / row["figures"][0]).read_bytes()[:4] == b"\x89PNG"
    index = (reports / "index.html").read_text()
    assert '<img class="thumb" src="metrics/01_pass_curve.png"' in index
    assert '<a href="01_pass.html">' in index and '<a href="01_pass.ipynb">' in index
    assert "<dt>nested.third</dt><dd>0.3333</dd>" in index  # nested metric, 4 significant digits
    assert "<dt>seed_times_3</dt><dd>15</dd>" in index
    assert "http://" not in index and "https://" not in index  # no external assets
    env = load_run(reports)["environment"]
    assert {"git_commit", "python", "torch", "open_clip", "device"} <= set(env)
    assert env["torch"] in index
    assert rows_by_stem(reports)["03_after"]["metrics"] == {"ran": 1}


# ---------------------------------------------------------------------------------------------- selection


def test_only_runs_one_and_keeps_the_other_rows(suite: dict[str, Any], tmp_path: Path) -> None:
    reports = copy_reports(suite, tmp_path)
    before = (reports / "01_pass.ipynb").stat().st_mtime_ns
    code, out, _ = run_main("--notebooks", str(suite["notebooks"]), "--reports", str(reports), "--only", "03")
    assert code == 0
    rows = rows_by_stem(reports)
    assert rows["03_after"]["this_run"] and rows["03_after"]["status"] == "ok"
    assert not rows["01_pass"]["this_run"] and rows["01_pass"]["status"] == "ok"
    assert not rows["02_fail"]["this_run"] and rows["02_fail"]["status"] == "failed"
    assert (reports / "01_pass.ipynb").stat().st_mtime_ns == before
    assert rows["01_pass"]["metrics"]["seed_times_3"] == 15  # the earlier run's metrics stay listed
    assert load_run(reports)["failures"] == []
    assert "previous run" in (reports / "index.html").read_text()


def test_from_with_resume_reruns_only_what_is_stale_or_failed(suite: dict[str, Any], tmp_path: Path) -> None:
    reports = copy_reports(suite, tmp_path)
    # Reports "from the future" are newer than any source, even if lib/vtr is edited during the test.
    future = time.time() + 3600
    for name in ("02_fail.ipynb", "02_fail.html", "03_after.ipynb", "03_after.html"):
        os.utime(reports / name, (future, future))
    args = ["--notebooks", str(suite["notebooks"]), "--reports", str(reports), "--set", "seed=5"]
    code, out, _ = run_main(*args, "--set", "world.n_clips=12", "--from", "02", "--resume")
    assert code == 1
    rows = rows_by_stem(reports)
    assert rows["02_fail"]["status"] == "failed" and rows["02_fail"]["this_run"]  # failed before: rerun
    assert (reports / "02_fail.ipynb").stat().st_mtime < future
    assert rows["03_after"]["status"] == "skipped" and rows["03_after"]["this_run"]  # up to date: skipped
    assert (reports / "03_after.ipynb").stat().st_mtime == future
    assert rows["03_after"]["metrics"] == {"ran": 1}
    assert not rows["01_pass"]["this_run"]  # before --from
    assert "03_after: up to date, skipped (--resume)" in out
    assert "skipped (resumed)" in (reports / "index.html").read_text()


def test_select_notebooks_by_number(tmp_path: Path) -> None:
    for name in ("01_a", "02_b", "03_c", "10_d"):
        make_notebook(tmp_path / f"{name}.ipynb", AFTER)
    (tmp_path / "notes.ipynb").write_text("{}")  # not NN_name: ignored
    notebooks = discover_notebooks(tmp_path)
    stems = lambda nbs: [nb.stem for nb in nbs]  # noqa: E731
    assert stems(notebooks) == ["01_a", "02_b", "03_c", "10_d"]
    assert stems(select_notebooks(notebooks, only=["01,03"])) == ["01_a", "03_c"]
    assert stems(select_notebooks(notebooks, only=["3", "10"])) == ["03_c", "10_d"]
    assert stems(select_notebooks(notebooks, start_from="02")) == ["02_b", "03_c", "10_d"]
    assert stems(select_notebooks(notebooks, only=["01,10"], start_from="02")) == ["10_d"]
    with pytest.raises(UsageError, match="--only '04'.*01_a"):
        select_notebooks(notebooks, only=["04"])
    with pytest.raises(UsageError, match="--from 'x'"):
        select_notebooks(notebooks, start_from="x")
    make_notebook(tmp_path / "02_dup.ipynb", AFTER)
    with pytest.raises(UsageError, match="share the number"):
        discover_notebooks(tmp_path)


# ---------------------------------------------------------------------------------------------- resume rule


def test_is_up_to_date_requires_fresh_outputs_ok_status_and_same_parameters(tmp_path: Path) -> None:
    notebook, profile = tmp_path / "01_a.ipynb", tmp_path / "p.yaml"
    executed, html_page = tmp_path / "r" / "01_a.ipynb", tmp_path / "r" / "01_a.html"
    executed.parent.mkdir()
    for path in (notebook, profile, executed, html_page):
        path.write_text("x")
    params = {"profile": "sample", "overrides": {}}
    ok = {"status": "ok", "parameters": params}

    def at(path: Path, t: float) -> None:
        os.utime(path, (t, t))

    for path, t in ((notebook, 100), (profile, 100), (executed, 200), (html_page, 200)):
        at(path, t)
    inputs = [notebook, profile]
    assert is_up_to_date(executed, inputs, ok, params)
    assert is_up_to_date(executed, inputs, {**ok, "status": "skipped"}, params)
    assert not is_up_to_date(executed, inputs, {**ok, "status": "failed"}, params)
    assert not is_up_to_date(executed, inputs, None, params)
    assert not is_up_to_date(executed, inputs, ok, {"profile": "sample", "overrides": {"seed": 1}})
    at(profile, 300)  # the profile (or any package file) changed after the report
    assert not is_up_to_date(executed, inputs, ok, params)
    at(profile, 100)
    at(notebook, 300)
    assert not is_up_to_date(executed, inputs, ok, params)
    at(notebook, 100)
    at(html_page, 50)  # an HTML older than its inputs is not up to date either
    assert not is_up_to_date(executed, inputs, ok, params)
    html_page.unlink()
    assert not is_up_to_date(executed, inputs, ok, params)


def test_package_files_cover_the_vtr_sources() -> None:
    names = {p.name for p in package_files()}
    assert {"runner.py", "config.py", "outputs.py", "index.html.j2"} <= names
    assert not any(p.suffix == ".pyc" for p in package_files())


# ---------------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "world.n_clipz=3"], "world.n_clipz"),
        (["--set", "seed=abc"], "'seed' must be int"),
        (["--profile", "no_such_profile"], "no_such_profile"),
        (["--set", "seed"], "key=value"),
        (["--only", "07"], "--only '07'"),
    ],
)
def test_bad_config_or_selection_fails_before_any_run(tmp_path: Path, args: list[str], message: str) -> None:
    make_notebook(tmp_path / "notebooks" / "01_a.ipynb", AFTER)
    reports = tmp_path / "reports"
    code, out, err = run_main("--notebooks", str(tmp_path / "notebooks"), "--reports", str(reports), *args)
    assert code == 2
    assert message in err
    assert not reports.exists()  # nothing ran, nothing written


def test_notebook_without_parameters_cell_fails_clearly(tmp_path: Path) -> None:
    make_notebook(tmp_path / "notebooks" / "01_noparams.ipynb", [("x = 1", None)])
    reports = tmp_path / "reports"
    code, out, _ = run_main("--notebooks", str(tmp_path / "notebooks"), "--reports", str(reports))
    assert code == 1
    error = rows_by_stem(reports)["01_noparams"]["error"]
    assert error["ename"] == "ParametersCellError"
    assert "01_noparams.ipynb" in error["evalue"] and "'parameters'" in error["evalue"]


# ---------------------------------------------------------------------------------------------- formatting


def test_scalar_metrics_flattens_and_format_value_is_compact() -> None:
    metrics = {"a": 1, "b": {"c": 0.123456, "d": [1, 2]}, "e": "text", "f": True}
    assert scalar_metrics(metrics) == {"a": 1, "b.c": 0.123456, "e": "text", "f": True}
    assert [format_value(v) for v in (0.123456, 12345, 80.0, True, 1e-7)] == [
        "0.1235",
        "12,345",
        "80",
        "True",
        "1e-07",
    ]


# ---------------------------------------------------------------------------------------------- reproducibility


def test_seeded_notebook_writes_identical_metrics_twice(tmp_path: Path) -> None:
    make_notebook(tmp_path / "notebooks" / "01_seeded.ipynb", SEEDED)
    files = []
    for attempt in ("a", "b"):
        reports = tmp_path / attempt
        code, _, _ = run_main(
            "--notebooks", str(tmp_path / "notebooks"), "--reports", str(reports), "--set", "seed=11"
        )
        assert code == 0
        files.append((reports / "metrics" / "01_seeded.json").read_bytes())
    assert files[0] == files[1]
    # Independently: the same draws in this process, seeded with the injected override.
    seed_everything(11)
    expected = {
        "torch": torch.randn(4).tolist(),
        "numpy": np.random.rand(3).tolist(),
        "python": random.random(),
        "linear": torch.nn.Linear(3, 2).weight.sum().item(),
    }
    torch.use_deterministic_algorithms(False)  # seed_everything switched it on for this whole process
    stored = json.loads(files[0])
    # Set order follows the hash seed, which Python reads at start-up: the runner fixes it per kernel.
    assert stored.pop("hash_seed") == KERNEL_HASH_SEED
    assert sorted(stored.pop("set_order")) == sorted(f"item{i}" for i in range(12))
    assert stored == _clean(expected)


def test_cell_timeout_is_a_reported_failure(tmp_path: Path) -> None:
    cells = [
        (PARAMETERS, "parameters"),
        ("import time", None),
        ("time.sleep(60)", None),
        ("print('after')", None),
    ]
    make_notebook(tmp_path / "notebooks" / "01_slow.ipynb", cells)
    reports = tmp_path / "reports"
    code, out, _ = run_main(
        "--notebooks", str(tmp_path / "notebooks"), "--reports", str(reports), "--timeout", "1"
    )
    assert code == 1
    error = rows_by_stem(reports)["01_slow"]["error"]
    assert error["ename"] == "CellTimeoutError"
    # Cells: tagged parameters, injected parameters, import, sleep: the sleep (index 3) timed out.
    assert (error["cell_index"], error["source"]) == (3, "time.sleep(60)")
    assert (reports / "01_slow.html").is_file()


# ---------------------------------------------------------------------------------------------- several GPUs


def test_gpus_auto_uses_every_gpu_when_the_profile_trains_on_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    full, sample = load_profile("full"), load_profile("sample")  # devices: auto, cpu
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    assert training_processes(full, "auto") == 4
    assert training_processes(sample, "auto") == 1  # a CPU profile never launches torchrun
    assert training_processes(full, "1") == 1 and training_processes(sample, "2") == 2
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert training_processes(full, "auto") == 1
    for bad in ("0", "two", "-1"):
        with pytest.raises(UsageError, match="--gpus"):
            training_processes(full, bad)


@pytest.mark.parametrize(
    ("args", "returncode", "trains", "code", "ran"),
    [
        (["--only", "02,03"], 0, True, 0, ["02_b", "03_c"]),
        ([], 3, True, 1, ["01_a", "02_b", "03_c"]),  # the step failed: the notebooks run, exit 1 says so
        (["--only", "01"], 0, False, 0, ["01_a"]),  # no grid among the selected notebooks
        (["--gpus", "1"], 0, False, 0, ["01_a", "02_b", "03_c"]),
    ],
)
def test_the_runner_trains_the_grids_under_torchrun_before_the_notebooks(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    returncode: int,
    trains: bool,
    code: int,
    ran: list[str],
) -> None:
    import subprocess
    import sys
    from types import SimpleNamespace

    from vtr.cli import build_parser

    for stem in ("01_a", "02_b", "03_c"):
        make_notebook(tmp_path / "notebooks" / f"{stem}.ipynb", AFTER)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    monkeypatch.setattr(runner, "_environment_info", lambda profile: {})
    events: list[tuple[str, Any]] = []

    def fake_run(command: list[str], **kwargs: Any) -> SimpleNamespace:
        events.append(("train", command))
        return SimpleNamespace(returncode=returncode)

    def fake_notebook(notebook: Notebook, *rest: Any) -> dict[str, Any]:
        events.append(("notebook", notebook.stem))
        return notebook_row(notebook, status=STATUS_OK, this_run=True)

    monkeypatch.setattr(subprocess, "run", fake_run)
    monkeypatch.setattr(runner, "_run_one", fake_notebook)
    reports = tmp_path / "reports"
    dirs = ["--notebooks", str(tmp_path / "notebooks"), "--reports", str(reports)]
    got, _, err = run_main("--profile", "full", *dirs, "--set", "seed=3", "--set", "video.n_frames=4", *args)
    assert got == code, err
    notebooks = [e[1] for e in events if e[0] == "notebook"]
    assert notebooks == ran
    if not trains:
        assert [e for e in events if e[0] == "train"] == [] and "distributed_training" not in load_run(
            reports
        )
        return
    assert events[0][0] == "train"  # before the first notebook
    command = events[0][1]
    assert command[:4] == [sys.executable, "-m", "vtr.cli", "train"]
    parsed = build_parser().parse_args(command[3:])  # what vtr train will see
    assert (parsed.profile, parsed.overrides, parsed.only, parsed.nproc) == (
        "full",
        ["seed=3", "video.n_frames=4"],
        ["02", "03"],
        4,
    )
    assert load_run(reports)["distributed_training"]["returncode"] == returncode


# ---------------------------------------------------------------------------------------------- --jobs


def _waits_for(mine: str, other: str) -> list[tuple[str, str | None]]:
    """A notebook that announces itself, then waits (up to a minute) for ``other`` to have started: it can
    finish only when the two run at the same time."""
    return [
        (PARAMETERS, "parameters"),
        (
            "import os, time\nfrom pathlib import Path\nfrom vtr.report import save_metrics\n"
            f"flags = Path(os.environ['VTR_REPORTS_DIR'])\n(flags / '{mine}.started').touch()\n"
            f"deadline = time.time() + 60\nwhile not (flags / '{other}.started').exists():\n"
            "    assert time.time() < deadline, 'the other notebook never started alongside'\n"
            "    time.sleep(0.1)\n"
            f"save_metrics('{mine}', {{'omp': os.environ.get('OMP_NUM_THREADS')}})",
            None,
        ),
    ]


def test_jobs_run_the_notebooks_after_01_side_by_side_with_a_share_of_the_cores(tmp_path: Path) -> None:
    notebooks = tmp_path / "notebooks"
    make_notebook(notebooks / "01_first.ipynb", AFTER)
    make_notebook(notebooks / "02_b.ipynb", _waits_for("02_b", "03_c"))
    make_notebook(notebooks / "03_c.ipynb", _waits_for("03_c", "02_b"))
    reports = tmp_path / "reports"
    code, out, err = run_main("--notebooks", str(notebooks), "--reports", str(reports), "--jobs", "2")
    assert code == 0, out + err
    rows = rows_by_stem(reports)
    assert {stem: row["status"] for stem, row in rows.items()} == {"01_first": "ok", "02_b": "ok", "03_c": "ok"}
    share = str(max(1, (os.cpu_count() or 1) // 2))
    assert rows["02_b"]["metrics"] == rows["03_c"]["metrics"] == {"omp": share}
    assert "vtr: 2 notebooks, 2 at a time" in out


def test_split_preparing_and_parallel_jobs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from vtr.report.notebooks import split_preparing

    for stem in ("00_a", "01_b", "02_c", "05_d"):
        make_notebook(tmp_path / f"{stem}.ipynb", AFTER)
    found = discover_notebooks(tmp_path)
    head, rest = split_preparing(found)
    assert [nb.stem for nb in head] == ["00_a", "01_b"] and [nb.stem for nb in rest] == ["02_c", "05_d"]
    assert split_preparing(found[2:]) == ([], found[2:])  # --from 02: everything may run in parallel
    sample = load_profile("sample")  # device cpu
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    assert runner.parallel_jobs(sample, "auto") == 2 and runner.parallel_jobs(sample, "3") == 3
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    assert runner.parallel_jobs(sample, "auto") == 1
    for bad in ("0", "two"):
        with pytest.raises(UsageError, match="--jobs"):
            runner.parallel_jobs(sample, bad)
