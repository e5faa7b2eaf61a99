"""Run the numbered notebooks with papermill and publish them as HTML reports with an index.

``run_all.py`` is a thin command line over :func:`main`. For each selected ``notebooks/NN_name.ipynb``
(in ``NN`` order) the runner

1. injects ``profile`` and ``overrides`` into the cell tagged ``parameters`` (papermill),
2. executes it in a fresh kernel whose working directory is the project root, with ``VTR_ROOT`` and
   ``VTR_REPORTS_DIR`` set, so notebooks share nothing but files on disk,
3. writes the executed copy ``reports/NN_name.ipynb`` and ``reports/NN_name.html`` (cells tagged
   ``hide-input`` show only their output), even when the notebook fails, and
4. rewrites ``reports/run.json`` and ``reports/index.html`` after every notebook, so an interrupted run
   still leaves a complete index and ``--resume`` knows what finished.

A failing notebook does not stop the run; the process exits 1 at the end and lists the failures.

Several GPUs (``--gpus``, default ``auto``): the notebooks train on one device each, so when the
profile trains on CUDA and torch sees more than one GPU (or ``--gpus N`` with N > 1) the runner first
runs ``vtr train --nproc N`` (:mod:`vtr.grids`: the fine-tuning grids of the selected notebooks 02 and
03 under torchrun, DDP) and then the notebooks, which reload those finished runs instead of training.
If that step fails the notebooks still run (training what is missing on one device) and the exit
status is 1. ``--gpus 1`` turns the step off.
A profile or override that does not validate stops everything before the first kernel starts (exit 2).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import html
import json
import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import nbformat

from vtr.atomic import atomic_path, write_json, write_text
from vtr.config import ConfigError, Profile, load_profile, parse_override, profile_path
from vtr.paths import project_root
from vtr.report import HEADLINE_KEY

PARAMETERS_TAG = "parameters"
HIDE_INPUT_TAG = "hide-input"
STATUS_OK, STATUS_FAILED, STATUS_SKIPPED, STATUS_NOT_RUN = "ok", "failed", "skipped", "not run"
# A resumed notebook's outputs were produced by a run that ended "ok" (or was itself resumed).
_GOOD_STATUSES = {STATUS_OK, STATUS_SKIPPED}
MAX_INDEX_METRICS = 12
KERNEL_HASH_SEED = "0"  # PYTHONHASHSEED of every notebook kernel
_NOTEBOOK_NAME = re.compile(r"^(\d+)_[^.]+\.ipynb$")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class UsageError(ValueError):
    """A bad command line (unknown notebook prefix, duplicate prefixes): exit code 2, nothing has run."""


@dataclass(frozen=True)
class Notebook:
    """One ``NN_name.ipynb`` in the notebooks folder."""

    path: Path

    @property
    def stem(self) -> str:
        return self.path.stem

    @property
    def number(self) -> int:
        return int(self.stem.split("_", 1)[0])


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


# --------------------------------------------------------------------------------------------------
# Finding and selecting notebooks


def discover_notebooks(folder: Path) -> list[Notebook]:
    """``NN_name.ipynb`` files in ``folder``, ordered by ``NN``; two notebooks may not share a number."""
    notebooks = sorted(
        (Notebook(p) for p in folder.glob("*.ipynb") if _NOTEBOOK_NAME.match(p.name)),
        key=lambda nb: (nb.number, nb.stem),
    )
    seen: dict[int, str] = {}
    for nb in notebooks:
        if nb.number in seen:
            # --only/--from and the metrics file names select by number, so it must be unique.
            raise UsageError(f"{folder}: notebooks {seen[nb.number]!r} and {nb.stem!r} share the number")
        seen[nb.number] = nb.stem
    return notebooks


def _number_of(token: str, notebooks: Sequence[Notebook], option: str) -> int:
    text = token.strip()
    head = text.split("_", 1)[0]
    if not head.isdigit():
        raise UsageError(f"{option} {token!r}: expected a notebook number such as 01")
    number = int(head)
    if not any(nb.number == number for nb in notebooks):
        known = ", ".join(nb.stem for nb in notebooks) or "none"
        raise UsageError(f"{option} {token!r}: no notebook with that number; notebooks: {known}")
    return number


def select_notebooks(
    notebooks: Sequence[Notebook], only: Sequence[str] | None = None, start_from: str | None = None
) -> list[Notebook]:
    """Apply ``--only 01,03`` (by number) and ``--from 02`` (that one and all after it)."""
    selected = list(notebooks)
    if only:
        tokens = [t for item in only for t in item.split(",") if t.strip()]
        wanted = {_number_of(t, notebooks, "--only") for t in tokens}
        selected = [nb for nb in selected if nb.number in wanted]
    if start_from is not None:
        first = _number_of(start_from, notebooks, "--from")
        selected = [nb for nb in selected if nb.number >= first]
    return selected


def parameters_cells(nb: nbformat.NotebookNode) -> list[int]:
    """Indices of the cells tagged ``parameters``."""
    return [
        i for i, cell in enumerate(nb.cells) if PARAMETERS_TAG in cell.get("metadata", {}).get("tags", [])
    ]


# --------------------------------------------------------------------------------------------------
# Resume


def newest_mtime(paths: Sequence[Path]) -> float:
    """The most recent modification time among ``paths`` (0 for none)."""
    return max((p.stat().st_mtime for p in paths if p.exists()), default=0.0)


def package_files() -> list[Path]:
    """Every source file of the installed vtr package: a change to any of them invalidates every report."""
    import vtr

    root = Path(vtr.__file__).resolve().parent
    return [p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts]


def is_up_to_date(
    executed: Path,
    inputs: Sequence[Path],
    previous: dict[str, Any] | None,
    parameters: dict[str, Any],
) -> bool:
    """May ``--resume`` skip this notebook?

    Only if its executed copy and HTML exist and are newer than every input (the notebook, the profile
    file, the vtr package), and the previous run of it ended ok with the same injected parameters.
    """
    html_page = executed.with_suffix(".html")
    if not (executed.is_file() and html_page.is_file()) or previous is None:
        return False
    if previous.get("status") not in _GOOD_STATUSES or previous.get("parameters") != parameters:
        return False
    produced = min(executed.stat().st_mtime, html_page.stat().st_mtime)
    return produced > newest_mtime(inputs)


# --------------------------------------------------------------------------------------------------
# Training the fine-tuning grids on several GPUs first


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
    from vtr.grids import GRIDS

    numbers = [nb.number for nb in notebooks if nb.number in GRIDS]
    if nproc <= 1 or not numbers:
        return None
    sets = [f"{key}={json.dumps(value)}" for key, value in overrides.items()]
    argv = train_argv(profile, sets, numbers, nproc=nproc, progress=progress)
    return [sys.executable, "-m", "vtr.cli", *argv]


def _train_first(command: list[str], root: Path, run_record: dict[str, Any]) -> bool:
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


# --------------------------------------------------------------------------------------------------
# Executing one notebook


@contextlib.contextmanager
def _environment(**values: str) -> Iterator[None]:
    """Set environment variables for the kernels started inside the block, then restore them."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def _first_line(source: str) -> str:
    return next((line.strip() for line in source.splitlines() if line.strip()), "")


def _clean_text(text: str, limit: int | None = None) -> str:
    text = _ANSI.sub("", text)
    return text if limit is None or len(text) <= limit else text[: limit - 1] + "…"


@functools.cache
def _progress_engine() -> str:
    """Register (once) a papermill engine whose progress bar names the cell being executed."""
    from papermill.engines import NBClientEngine, papermill_engines

    class ProgressEngine(NBClientEngine):
        @classmethod
        def execute_managed_notebook(cls, nb_man: Any, kernel_name: str, **kwargs: Any) -> Any:
            start = nb_man.cell_start

            def cell_start(cell: Any, cell_index: int | None = None, **kw: Any) -> Any:
                result = start(cell, cell_index, **kw)
                if nb_man.pbar is not None:
                    nb_man.pbar.set_postfix_str(f"cell {cell_index}: {_first_line(cell.source)[:50]}")
                return result

            nb_man.cell_start = cell_start
            return super().execute_managed_notebook(nb_man, kernel_name, **kwargs)

    papermill_engines.register("vtr-progress", ProgressEngine)
    return "vtr-progress"


@functools.cache
def _kernel_config() -> Any:
    """Ask jupyter_client for CurveZMQ-encrypted kernel sockets where pyzmq supports it: safer on shared
    machines, and it silences ipykernel's plain-TCP warning on every notebook."""
    import zmq
    from traitlets.config import Config

    config = Config()
    if zmq.has("curve"):
        config.KernelManager.transport_encryption = "auto"
    return config


class _NoOutput(Exception):
    """papermill failed before writing the executed notebook: nothing to publish."""


def execute_notebook(
    notebook: Notebook,
    executed: Path,
    parameters: dict[str, Any],
    *,
    root: Path,
    kernel: str,
    timeout: int,
    progress: bool | dict[str, Any],
) -> dict[str, Any] | None:
    """Execute ``notebook`` into ``executed`` (atomically); returns ``None`` or the error's description.

    The executed copy is written even when a cell fails, so the reader sees the traceback in the report.
    """
    source = nbformat.read(notebook.path, as_version=4)
    tagged = parameters_cells(source)
    if len(tagged) != 1:
        # Without exactly one tagged cell papermill would inject at the top, and the notebook's own
        # defaults would then silently override the profile asked for.
        return _error(
            "ParametersCellError",
            f"{notebook.path}: expected exactly one cell tagged {PARAMETERS_TAG!r}, found {len(tagged)}",
        )
    import papermill
    from papermill.exceptions import PapermillExecutionError

    error: dict[str, Any] | None = None
    try:
        with atomic_path(executed) as tmp:
            try:
                papermill.execute_notebook(
                    notebook.path,
                    tmp,
                    parameters=parameters,
                    engine_name=_progress_engine(),
                    kernel_name=kernel,
                    language="python",
                    progress_bar=progress,
                    cwd=root,
                    execution_timeout=timeout,
                    config=_kernel_config(),
                )
            except PapermillExecutionError as exc:
                error = _error(exc.ename, exc.evalue, exc.cell_index, exc.exec_count, exc.source)
                # papermill then adds two marker cells to the saved copy: point at the cell the reader sees.
                error["cell_index"] = _failed_cell_index(tmp) if tmp.stat().st_size else exc.cell_index
            except Exception as exc:  # a dead kernel or a timeout is reported like a failing cell
                error = _error_in_notebook(tmp, exc)
            if not tmp.stat().st_size:
                raise _NoOutput
    except _NoOutput:
        pass
    return error


def _error(
    ename: str, evalue: str, cell_index: int | None = None, exec_count: int | None = None, source: str = ""
) -> dict[str, Any]:
    return {
        "cell_index": cell_index,
        "exec_count": exec_count,
        "source": source,
        "ename": ename,
        "evalue": _clean_text(str(evalue)).strip(),
    }


def _failed_cell_index(executed: Path) -> int | None:
    """Index, in the saved executed notebook, of the last cell papermill started: execution stops at the
    cell that raised, timed out or killed the kernel (papermill marks a timed-out cell "completed")."""
    nb = nbformat.read(executed, as_version=4)
    started = [
        i
        for i, cell in enumerate(nb.cells)
        if cell.get("metadata", {}).get("papermill", {}).get("start_time")
    ]
    return started[-1] if started else None


def _error_in_notebook(executed: Path, exc: BaseException) -> dict[str, Any]:
    """For failures outside a cell's own code (timeout, dead kernel): the cell that was running."""
    error = _error(type(exc).__name__, str(exc))
    if executed.stat().st_size and (index := _failed_cell_index(executed)) is not None:
        cell = nbformat.read(executed, as_version=4).cells[index]
        error.update(cell_index=index, exec_count=cell.get("execution_count"), source=cell.source)
    return error


@functools.cache
def _html_exporter() -> Any:
    """One nbconvert exporter for the whole run (building its templates is the slow part)."""
    from nbconvert import HTMLExporter
    from traitlets.config import Config

    config = Config()
    config.TagRemovePreprocessor.enabled = True
    config.TagRemovePreprocessor.remove_input_tags = {HIDE_INPUT_TAG}
    config.HTMLExporter.preprocessors = ["nbconvert.preprocessors.TagRemovePreprocessor"]
    return HTMLExporter(config=config)


def render_html(executed: Path, html_page: Path) -> None:
    """Render an executed notebook to a standalone HTML page; ``hide-input`` cells show only output."""
    nb = nbformat.read(executed, as_version=4)
    body, _ = _html_exporter().from_notebook_node(nb, resources={"metadata": {"name": executed.stem}})
    write_text(html_page, body)


# --------------------------------------------------------------------------------------------------
# Metrics, figures and the index


def metrics_of(reports: Path, stem: str) -> dict[str, Any]:
    """``reports/metrics/<stem>.json`` (empty when the notebook saved none or it does not parse)."""
    path = reports / "metrics" / f"{stem}.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def figures_of(reports: Path, stem: str) -> list[str]:
    """Figures ``metrics/<stem>.png`` and ``metrics/<stem>_*.png``, relative to ``reports``."""
    folder = reports / "metrics"
    found = [*folder.glob(f"{stem}.png"), *folder.glob(f"{stem}_*.png")]
    return sorted(p.relative_to(reports).as_posix() for p in found)


def _clear_outputs_of(reports: Path, stem: str) -> None:
    """Drop a notebook's previous outputs before it runs, so that what is left afterwards is exactly what
    this run produced: ``save_metrics`` merges into an existing file (stale keys would pass for new ones),
    and an interrupted run must not leave an old executed copy that ``--resume`` would trust."""
    stale = [reports / f"{stem}.ipynb", reports / f"{stem}.html", reports / "metrics" / f"{stem}.json"]
    for path in [*stale, *(reports / f for f in figures_of(reports, stem))]:
        path.unlink(missing_ok=True)


def scalar_metrics(metrics: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Scalars of a (possibly nested) metrics dict, nested keys joined with dots; lists are left out."""
    flat: dict[str, Any] = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(scalar_metrics(value, prefix=f"{name}."))
        elif value is None or isinstance(value, bool | int | float | str):
            flat[name] = value
    return flat


def format_value(value: Any) -> str:
    """Compact display of a metric: 4 significant digits for floats, thousands separators for ints."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.4g}"
    return _clean_text(str(value), 40)


def _previous_run(reports: Path) -> dict[str, dict[str, Any]]:
    """Rows of the previous ``run.json`` by notebook stem (empty when there is none or it is unreadable)."""
    try:
        data = json.loads((reports / "run.json").read_text(encoding="utf-8"))
        return {
            row["stem"]: row for row in data.get("notebooks", []) if isinstance(row, dict) and "stem" in row
        }
    except (OSError, ValueError, AttributeError, TypeError):
        return {}


def _row(nb: Notebook, /, **fields: Any) -> dict[str, Any]:
    row = {
        "stem": nb.stem,
        "notebook": nb.path.name,
        "status": STATUS_NOT_RUN,
        "this_run": False,
        "duration_s": None,
        "finished_at": None,
        "parameters": None,
        "error": None,
    }
    row.update(fields)
    return row


def _now() -> str:
    return datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds")


def _with_outputs(row: dict[str, Any], reports: Path) -> dict[str, Any]:
    stem = row["stem"]
    return {
        **row,
        "html": f"{stem}.html" if (reports / f"{stem}.html").is_file() else None,
        "ipynb": f"{stem}.ipynb" if (reports / f"{stem}.ipynb").is_file() else None,
        "metrics": metrics_of(reports, stem),
        "figures": figures_of(reports, stem),
    }


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    minutes, secs = divmod(seconds, 60)
    return f"{int(minutes)} min {secs:.0f} s" if minutes else f"{secs:.1f} s"


def ordered_metrics(metrics: dict[str, Any]) -> tuple[list[tuple[str, Any]], int]:
    """A notebook's scalar metrics in display order, and how many of them are headline keys.

    The headline keys (``vtr.report.save_metrics(..., headline=...)``) come first, in their order,
    then the other scalars; the index and the README's results table both show them this way.
    """
    flat = scalar_metrics(metrics)
    first = [k for k in metrics.get(HEADLINE_KEY, []) if k in flat]
    ordered = first + [k for k in flat if k not in first]
    return [(k, flat[k]) for k in ordered], len(first)


def _shown_metrics(metrics: dict[str, Any]) -> tuple[list[tuple[str, str]], int]:
    """The (key, formatted value) pairs the index shows, and how many scalars it leaves out."""
    ordered, n_headline = ordered_metrics(metrics)
    shown = [(k, format_value(v)) for k, v in ordered[: max(MAX_INDEX_METRICS, n_headline)]]
    return shown, len(ordered) - len(shown)


def _error_view(error: dict[str, Any]) -> dict[str, str]:
    where = "before the first cell" if error.get("cell_index") is None else f"cell {error['cell_index']}"
    if error.get("exec_count") is not None:
        where += f" (In [{error['exec_count']}])"
    return {
        "where": where,
        "line": _first_line(error.get("source") or "")[:80],
        "ename": error["ename"],
        "evalue": _clean_text(error.get("evalue") or "", 400),
    }


def _row_view(row: dict[str, Any], parameters: dict[str, Any]) -> dict[str, Any]:
    """What the template shows for one notebook; the template itself only lays it out."""
    status = row["status"]
    metrics, more = _shown_metrics(row["metrics"])
    ran_with = row.get("parameters") and row["parameters"] != parameters
    return {
        "stem": row["stem"],
        "old": not row["this_run"],
        "links": [(k, row[k]) for k in ("html", "ipynb") if row.get(k)],
        "ran_with": json.dumps(row["parameters"], sort_keys=True) if ran_with else None,
        "error": _error_view(row["error"]) if row.get("error") else None,
        "status_label": "skipped (resumed)" if status == STATUS_SKIPPED else status,
        "status_css": status.replace(" ", "-"),
        "previous": not row["this_run"] and status != STATUS_NOT_RUN,
        "finished_at": row.get("finished_at") or "",
        "duration": _duration(row["duration_s"]),
        "metrics": metrics,
        "more_metrics": more,
        "figures": [(f, Path(f).stem) for f in row["figures"]],
    }


@functools.cache
def _index_template() -> Any:
    """The package's ``templates/index.html.j2``, loaded once."""
    import jinja2
    from markupsafe import Markup

    def escape(value: Any) -> Markup:
        # html.escape (quote=True) rather than markupsafe's spelling of quotes, so the page's escaping
        # is what it was before the template (tests look for ``&#x27;``).
        return value if isinstance(value, Markup) else Markup(html.escape(str(value), quote=True))

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("vtr", "templates"),
        autoescape=True,
        finalize=escape,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    return env.get_template("index.html.j2")


def render_index(run: dict[str, Any]) -> str:
    """``index.html``: one row per notebook, then the run's environment. Static and self-contained.

    The layout is the package's jinja2 template ``vtr/templates/index.html.j2``; this function and
    :func:`_row_view` decide what it shows.
    """
    environment = {
        "command": run["command"],
        "profile": f"{run['profile']['name']} ({run['profile']['file']})",
        "overrides": json.dumps(run["overrides"], sort_keys=True) if run["overrides"] else "none",
        **run["environment"],
        "started": run["started_at"],
        "finished": run.get("finished_at") or "running…",
    }
    return _index_template().render(
        profile=run["profile"]["name"],
        n_ok=sum(r["status"] == STATUS_OK for r in run["notebooks"]),
        n_failed=sum(r["status"] == STATUS_FAILED for r in run["notebooks"]),
        rows=[_row_view(row, run["parameters"]) for row in run["notebooks"]],
        environment=list(environment.items()),
    )


def write_index(run: dict[str, Any], reports: Path) -> Path:
    """Write ``run.json`` and ``index.html`` (both atomically); returns the index path."""
    write_json(reports / "run.json", run)
    return write_text(reports / "index.html", render_index(run))


# --------------------------------------------------------------------------------------------------
# The run


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
            note = f"{error['ename']}: {_clean_text(_first_line(error.get('evalue') or ''), 70)}"
        lines.append(f"{row['stem']:<{width}}  {status:<17}  {_duration(row['duration_s']):>10}  {note}")
    return "\n".join(lines)


def run(options: RunOptions, argv: Sequence[str] = ()) -> int:
    """Run the selected notebooks; returns the exit code (0 all ok, 1 a notebook failed, 2 bad input)."""
    root = project_root()
    overrides = dict(options.overrides or {})
    try:
        profile = load_profile(options.profile, overrides)
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
    previous = _previous_run(reports)
    inputs_of_all = [Path(profile.source_file), *package_files()] if options.resume else []
    reports.mkdir(parents=True, exist_ok=True)

    # Notebooks not run this time keep their last known row, so the index always lists every notebook.
    rows = {nb.stem: _row(nb, **{**previous.get(nb.stem, {}), "this_run": False}) for nb in notebooks}
    run_record: dict[str, Any] = {
        "started_at": _now(),
        "finished_at": None,
        "command": shlex.join(["run_all.py", *argv]),
        "profile": {"name": profile.name, "argument": options.profile, "file": profile.source_file},
        "overrides": overrides,
        "parameters": parameters,
        "environment": _environment_info(profile),
        "notebooks_dir": str(notebooks_dir),
        "failures": [],
        "notebooks": [],
    }

    def publish() -> Path:
        run_record["notebooks"] = [_with_outputs(rows[nb.stem], reports) for nb in notebooks]
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
            trained = _train_first(command, root, run_record)
        for k, notebook in enumerate(selected, start=1):
            label = f"[{k}/{len(selected)}] {notebook.stem}"
            prior = previous.get(notebook.stem)
            if up_to_date(notebook):
                print(f"{label}: up to date, skipped (--resume)")
                rows[notebook.stem] = _row(
                    notebook, **{**(prior or {}), "status": STATUS_SKIPPED, "this_run": True}
                )
            else:
                if not options.progress:
                    print(label)
                # Its old outputs are about to be deleted: until it finishes it has no known status.
                rows[notebook.stem] = _row(notebook, this_run=True)
                rows[notebook.stem] = _run_one(notebook, reports, parameters, options, root, label)
                if error := rows[notebook.stem]["error"]:
                    run_record["failures"].append(notebook.stem)
                    print(
                        f"{label} FAILED: {error['ename']}: {_clean_text(_first_line(error['evalue']), 200)}"
                    )
            publish()
    finally:
        run_record["finished_at"] = _now()
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
    _clear_outputs_of(reports, notebook.stem)
    started = time.perf_counter()
    # No progress bars inside the kernels: they would clutter the reports (see vtr.progress). A fixed
    # hash seed makes str hashing, and so set iteration order, the same in every run; Python reads it
    # only at start-up, which is why it is set here and not by vtr.runtime.seed_everything.
    with _environment(
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
    return _row(
        notebook,
        status=STATUS_FAILED if error else STATUS_OK,
        this_run=True,
        duration_s=round(time.perf_counter() - started, 2),
        finished_at=_now(),
        parameters=parameters,
        error=error,
    )


# --------------------------------------------------------------------------------------------------
# Command line


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="run_all.py",
        description="Run notebooks/NN_*.ipynb in order with papermill into reports/ (HTML and an index).",
    )
    parser.add_argument("--profile", default="sample", help="profile name (configs/NAME.yaml) or a YAML path")
    parser.add_argument(
        "--only", action="append", metavar="NN[,NN]", help="run only these notebooks, e.g. 01,03"
    )
    parser.add_argument("--from", dest="start_from", metavar="NN", help="run this notebook and all after it")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a profile key",
    )
    parser.add_argument(
        "--resume", action="store_true", help="skip notebooks whose reports are up to date and ok"
    )
    parser.add_argument("--timeout", type=int, default=1800, help="seconds allowed per cell (default 1800)")
    parser.add_argument("--notebooks", type=Path, help="notebooks folder (default <root>/notebooks)")
    parser.add_argument("--reports", type=Path, help="reports folder (default <root>/reports)")
    parser.add_argument("--kernel", default="python3", help="Jupyter kernel name (default python3)")
    parser.add_argument("--no-progress", action="store_true", help="no per-cell progress bar")
    parser.add_argument(
        "--gpus",
        default="auto",
        metavar="auto|N",
        help="train notebooks 02-03's grids first with `vtr train --nproc N` (torchrun); auto: every GPU "
        "when the profile trains on CUDA and there are several (default); 1: no separate step",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``run_all.py``; returns the process exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    try:
        overrides = dict(parse_override(text) for text in args.overrides)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    options = RunOptions(
        profile=args.profile,
        overrides=overrides,
        only=args.only,
        start_from=args.start_from,
        resume=args.resume,
        timeout=args.timeout,
        notebooks_dir=args.notebooks,
        reports_dir=args.reports,
        kernel=args.kernel,
        progress=not args.no_progress,
        gpus=args.gpus,
    )
    try:
        return run(options, argv)
    except KeyboardInterrupt:
        print(
            "\ninterrupted; reports/index.html shows what finished (use --resume to continue)",
            file=sys.stderr,
        )
        return 130
