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

00 and 01 run first, alone and in order (:data:`vtr.report.notebooks.PREPARING`: they build the world and
vtr-tiny that the others read); the notebooks after them run ``--jobs`` at a time (:func:`parallel_jobs`),
each kernel with its share of the cores (:func:`kernel_environment`). A failing notebook does not stop
the run; the exit status is 1 at the end and the failures are listed.
With several GPUs the fine-tuning grids are trained first (:mod:`vtr.report.gpus`). A profile or
override that does not validate stops everything before the first kernel starts (exit 2).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vtr.config import ConfigError, Profile, load_profile, profile_path
from vtr.paths import project_root
from vtr.report.engine import KERNEL_HASH_SEED, environment, execute_notebook
from vtr.report.errors import clean_text, first_line
from vtr.report.gpus import train_first, training_command, training_processes
from vtr.report.index import duration_text, write_index
from vtr.report.notebooks import Notebook, UsageError, discover_notebooks, select_notebooks, split_preparing
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
    jobs: str = "1"  # notebooks after 00-01 run this many at a time: "auto" or a number (parallel_jobs)



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
        jobs = parallel_jobs(profile, options.jobs)
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
    labels = {nb.stem: f"[{k}/{len(selected)}] {nb.stem}" for k, nb in enumerate(selected, start=1)}
    lock = threading.Lock()  # rows, failures and the index are shared by the parallel notebooks

    def step(notebook: Notebook, progress: bool) -> None:
        label = labels[notebook.stem]
        if up_to_date(notebook):
            print(f"{label}: up to date, skipped (--resume)")
            with lock:
                rows[notebook.stem] = notebook_row(
                    notebook, **{**(previous.get(notebook.stem) or {}), "status": STATUS_SKIPPED, "this_run": True}
                )
                publish()
            return
        if not progress:
            print(f"{label}: started", flush=True)
        with lock:  # its old outputs are about to be deleted: until it finishes it has no known status
            rows[notebook.stem] = notebook_row(notebook, this_run=True)
        row = _run_one(notebook, reports, parameters, options, root, label, progress)
        with lock:
            rows[notebook.stem] = row
            if error := row["error"]:
                run_record["failures"].append(notebook.stem)
                print(f"{label} FAILED: {error['ename']}: {clean_text(first_line(error['evalue']), 200)}")
            elif not progress:
                print(f"{label}: {row['status']} in {duration_text(row['duration_s'])}", flush=True)
            publish()

    head, rest = split_preparing(selected)
    try:
        if command:
            trained = train_first(command, root, run_record)
        # One at a time runs in this thread, so that ^C stops the running kernel at once.
        with kernel_environment(root, reports, 1):
            for notebook in head if jobs > 1 else selected:
                step(notebook, options.progress)
        if jobs > 1 and rest:
            print(f"vtr: {len(rest)} notebooks, {jobs} at a time")
            # Kernels share the cores: each gets its share of torch / OpenMP threads, not all of them.
            with kernel_environment(root, reports, jobs), ThreadPoolExecutor(max_workers=jobs) as pool:
                for _ in pool.map(lambda nb: step(nb, False), rest):
                    pass
    finally:
        run_record["finished_at"] = now()
        index = publish()
    print()
    print(_summary(run_record))
    if run_record["failures"]:
        print(f"\n{len(run_record['failures'])} notebook(s) failed: {', '.join(run_record['failures'])}")
    print(index.resolve())
    return 1 if run_record["failures"] or not trained else 0


def parallel_jobs(profile: Profile, jobs: str) -> int:
    """How many notebooks after 00-01 run at a time. ``auto``: 2 when the profile runs on the CPU and
    there are at least 2 cores (each kernel then gets half of them), else 1 (notebooks on one GPU would
    compete for its memory). A number is taken as given."""
    if jobs != "auto":
        if not jobs.isdigit() or int(jobs) < 1:
            raise UsageError(f"--jobs {jobs!r}: expected auto or a number of notebooks >= 1")
        return int(jobs)
    from vtr.runtime import resolve_device

    try:
        on_cpu = resolve_device(profile.device).type == "cpu"
    except RuntimeError:  # a CUDA profile on a machine without one fails in the notebooks, not here
        on_cpu = False
    return 2 if on_cpu and (os.cpu_count() or 1) >= 2 else 1


def kernel_environment(root: Path, reports: Path, jobs: int) -> contextlib.AbstractContextManager[None]:
    """The environment of every kernel started inside the block.

    No progress bars inside the kernels: they would clutter the reports (see vtr.progress). A fixed
    hash seed makes str hashing, and so set iteration order, the same in every run; Python reads it
    only at start-up, which is why it is set here and not by vtr.runtime.seed_everything. With ``jobs``
    kernels side by side each gets ``cores // jobs`` OpenMP threads (torch reads OMP_NUM_THREADS):
    more would oversubscribe the cores, which costs small matrices far more than it gains.
    """
    values = {
        "VTR_ROOT": str(root), "VTR_REPORTS_DIR": str(reports), "VTR_PROGRESS": "0",
        "PYTHONHASHSEED": KERNEL_HASH_SEED,
    }  # fmt: skip
    if jobs > 1:
        threads = str(max(1, (os.cpu_count() or 1) // jobs))
        values.update(OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads)
    return environment(**values)


def _run_one(
    notebook: Notebook, reports: Path, parameters: dict[str, Any], options: RunOptions, root: Path, label: str,
    progress: bool,
) -> dict[str, Any]:  # fmt: skip
    """Execute and render one notebook in a fresh kernel (inside :func:`kernel_environment`); returns
    its row for the index."""
    executed = reports / f"{notebook.stem}.ipynb"
    clear_outputs_of(reports, notebook.stem)
    started = time.perf_counter()
    error = execute_notebook(
        notebook,
        executed,
        parameters,
        root=root,
        kernel=options.kernel,
        timeout=options.timeout,
        progress={"desc": label} if progress else False,
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

