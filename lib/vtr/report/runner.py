"""Run the numbered notebooks with papermill and publish them as HTML reports with an index.

``vtr reports`` (and its shim ``run_all.py``) call :func:`run`. For each selected
``notebooks/NN_name.ipynb`` (in ``NN`` order, :mod:`vtr.report.notebooks`) the runner

1. injects ``profile`` and ``overrides`` into the cell tagged ``parameters`` (papermill),
2. executes it in a fresh kernel whose working directory is the project root, with ``VTR_ROOT`` and
   ``VTR_REPORTS_DIR`` set, so notebooks share nothing but files on disk (:mod:`vtr.report.engine`),
3. writes the executed copy ``reports/NN_name.ipynb`` and ``reports/NN_name.html`` (cells tagged
   ``hide-input`` show only their output, :mod:`vtr.report.render`), even when the notebook fails, and
4. rewrites ``reports/run.json`` and ``reports/index.html`` after every notebook
   (:mod:`vtr.report.index`), so an interrupted run still leaves a complete index and ``--resume``
   (:mod:`vtr.report.resume`) knows what finished.

A failing notebook does not stop the run; the exit status is 1 at the end and the failures are listed.
With several GPUs the fine-tuning grids are trained first (:mod:`vtr.report.gpus`). A profile or
override that does not validate stops everything before the first kernel starts (exit 2).
"""

from __future__ import annotations

import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vtr.config import ConfigError, Profile, load_profile, profile_path
from vtr.paths import project_root
from vtr.report.engine import KERNEL_HASH_SEED, environment, execute_notebook
from vtr.report.errors import clean_text, first_line
from vtr.report.gpus import train_first, training_command, training_processes
from vtr.report.index import duration_text, write_index
from vtr.report.notebooks import Notebook, UsageError, discover_notebooks, select_notebooks
from vtr.report.outputs import clear_outputs_of
from vtr.report.records import (
    STATUS_FAILED,
    STATUS_NOT_RUN,
    STATUS_OK,
    STATUS_SKIPPED,
    notebook_row,
    now,
    previous_run,
    with_outputs,
)
from vtr.report.render import render_html
from vtr.report.resume import is_up_to_date, package_files


@dataclass
class RunOptions:
    """Everything one invocation of the runner needs; the command line maps onto it one to one."""

    profile: str = "sample"
    overrides: dict[str, Any] | None = None
    only: list[str] | None = None
    start_from: str | None = None
    resume: bool = False
    timeout: int = 1800
    notebooks_dir: Path | None = None
    reports_dir: Path | None = None
    kernel: str = "python3"
    progress: bool = True
    gpus: str = "auto"  # processes for the fine-tuning grids: "auto" or a number (module docstring)



def _environment_info(profile: Profile) -> dict[str, Any]:
    from vtr.runtime import environment_info

    try:
        return environment_info(profile.device)
    except RuntimeError as exc:  # e.g. the full profile asks for CUDA on a CPU machine
        info = environment_info("cpu")
        info["device"] = f"unavailable: {exc}"
        return info


def _injected_profile(profile: str, root: Path) -> str:
    """The profile as the kernel should see it: a bare name as given; a path resolved for the kernel's
    working directory (the project root), relative to it when inside it."""
    path = profile_path(profile)
    if path == root / "configs" / f"{profile}.yaml":
        return profile
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def _summary(run: dict[str, Any]) -> str:
    width = max((len(r["stem"]) for r in run["notebooks"]), default=8)
    lines = [f"{'notebook':<{width}}  {'status':<17}  {'duration':>10}  note"]
    for row in run["notebooks"]:
        status = "skipped (resumed)" if row["status"] == STATUS_SKIPPED else row["status"]
        note = "" if row["this_run"] else "(previous run)" if row["status"] != STATUS_NOT_RUN else ""
        if row["this_run"] and (error := row.get("error")):
            note = f"{error['ename']}: {clean_text(first_line(error.get('evalue') or ''), 70)}"
        lines.append(f"{row['stem']:<{width}}  {status:<17}  {duration_text(row['duration_s']):>10}  {note}")
    return "\n".join(lines)


def run(options: RunOptions, argv: Sequence[str] = (), profile: Profile | None = None) -> int:
    """Run the selected notebooks; returns the exit code (0 all ok, 1 a notebook failed, 2 bad input).

    ``profile`` is ``options.profile`` with ``options.overrides`` already loaded (``vtr reports`` loads
    it while parsing the command line); without it the profile is loaded here. ``argv`` (the whole
    command line, program first) is recorded in ``run.json`` as the command that made the reports.
    """
    root = project_root()
    overrides = dict(options.overrides or {})
    try:
        profile = profile or load_profile(options.profile, overrides)
        notebooks_dir = (options.notebooks_dir or root / "notebooks").resolve()
        reports = (options.reports_dir or root / "reports").resolve()
        if not notebooks_dir.is_dir():
            raise UsageError(f"notebooks folder {notebooks_dir} does not exist")
        notebooks = discover_notebooks(notebooks_dir)
        selected = select_notebooks(notebooks, options.only, options.start_from)
        nproc = training_processes(profile, options.gpus)
    except (ConfigError, UsageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    parameters = {"profile": _injected_profile(options.profile, root), "overrides": overrides}
    previous = previous_run(reports)
    inputs_of_all = [Path(profile.source_file), *package_files()] if options.resume else []
    reports.mkdir(parents=True, exist_ok=True)

    # Notebooks not run this time keep their last known row, so the index always lists every notebook.
    rows = {nb.stem: notebook_row(nb, **{**previous.get(nb.stem, {}), "this_run": False}) for nb in notebooks}
    run_record: dict[str, Any] = {
        "started_at": now(),
        "finished_at": None,
        "command": shlex.join(argv) if argv else "vtr reports",
        "profile": {"name": profile.name, "argument": options.profile, "file": profile.source_file},
        "overrides": overrides,
        "parameters": parameters,
        "environment": _environment_info(profile),
        "notebooks_dir": str(notebooks_dir),
        "failures": [],
        "notebooks": [],
    }

    def publish() -> Path:
        run_record["notebooks"] = [with_outputs(rows[nb.stem], reports) for nb in notebooks]
        return write_index(run_record, reports)

    print(f"vtr: running {len(selected)} of {len(notebooks)} notebooks from {notebooks_dir}")
    print(f"vtr: profile {profile.name} ({profile.source_file}), overrides {overrides or 'none'}")
    publish()

    def up_to_date(notebook: Notebook) -> bool:
        executed, prior = reports / f"{notebook.stem}.ipynb", previous.get(notebook.stem)
        return options.resume and is_up_to_date(executed, [notebook.path, *inputs_of_all], prior, parameters)

    pending = [nb for nb in selected if not up_to_date(nb)]
    command = training_command(parameters["profile"], overrides, pending, nproc, options.progress)
    trained = True
    try:
        if command:
            trained = train_first(command, root, run_record)
        for k, notebook in enumerate(selected, start=1):
            label = f"[{k}/{len(selected)}] {notebook.stem}"
            prior = previous.get(notebook.stem)
            if up_to_date(notebook):
                print(f"{label}: up to date, skipped (--resume)")
                rows[notebook.stem] = notebook_row(
                    notebook, **{**(prior or {}), "status": STATUS_SKIPPED, "this_run": True}
                )
            else:
                if not options.progress:
                    print(label)
                # Its old outputs are about to be deleted: until it finishes it has no known status.
                rows[notebook.stem] = notebook_row(notebook, this_run=True)
                rows[notebook.stem] = _run_one(notebook, reports, parameters, options, root, label)
                if error := rows[notebook.stem]["error"]:
                    run_record["failures"].append(notebook.stem)
                    print(
                        f"{label} FAILED: {error['ename']}: {clean_text(first_line(error['evalue']), 200)}"
                    )
            publish()
    finally:
        run_record["finished_at"] = now()
        index = publish()
    print()
    print(_summary(run_record))
    if run_record["failures"]:
        print(f"\n{len(run_record['failures'])} notebook(s) failed: {', '.join(run_record['failures'])}")
    print(index.resolve())
    return 1 if run_record["failures"] or not trained else 0


def _run_one(
    notebook: Notebook, reports: Path, parameters: dict[str, Any], options: RunOptions, root: Path, label: str
) -> dict[str, Any]:
    """Execute and render one notebook in a fresh kernel; returns its row for the index."""
    executed = reports / f"{notebook.stem}.ipynb"
    clear_outputs_of(reports, notebook.stem)
    started = time.perf_counter()
    # No progress bars inside the kernels: they would clutter the reports (see vtr.progress). A fixed
    # hash seed makes str hashing, and so set iteration order, the same in every run; Python reads it
    # only at start-up, which is why it is set here and not by vtr.runtime.seed_everything.
    with environment(
        VTR_ROOT=str(root), VTR_REPORTS_DIR=str(reports), VTR_PROGRESS="0", PYTHONHASHSEED=KERNEL_HASH_SEED
    ):
        error = execute_notebook(
            notebook,
            executed,
            parameters,
            root=root,
            kernel=options.kernel,
            timeout=options.timeout,
            progress={"desc": label} if options.progress else False,
        )
    if executed.is_file():
        render_html(executed, executed.with_suffix(".html"))
    return notebook_row(
        notebook,
        status=STATUS_FAILED if error else STATUS_OK,
        this_run=True,
        duration_s=round(time.perf_counter() - started, 2),
        finished_at=now(),
        parameters=parameters,
        error=error,
    )

