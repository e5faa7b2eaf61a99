"""Executing one notebook with papermill in a fresh kernel, and recording how it failed if it did.

The executed copy is written (atomically) even when a cell fails, so the reader sees the traceback in
the report. The engine is papermill's nbclient engine with a progress bar that names the running cell;
kernel sockets are CurveZMQ-encrypted where pyzmq supports it.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat

from vtr.atomic import atomic_path
from vtr.report.errors import error_in_notebook, error_record, failed_cell_index, first_line
from vtr.report.notebooks import PARAMETERS_TAG, Notebook, parameters_cells

KERNEL_HASH_SEED = "0"  # PYTHONHASHSEED of every notebook kernel


@contextlib.contextmanager
def environment(**values: str) -> Iterator[None]:
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
                    nb_man.pbar.set_postfix_str(f"cell {cell_index}: {first_line(cell.source)[:50]}")
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
        return error_record(
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
                error = error_record(exc.ename, exc.evalue, exc.cell_index, exc.exec_count, exc.source)
                # papermill then adds two marker cells to the saved copy: point at the cell the reader sees.
                error["cell_index"] = failed_cell_index(tmp) if tmp.stat().st_size else exc.cell_index
            except Exception as exc:  # a dead kernel or a timeout is reported like a failing cell
                error = error_in_notebook(tmp, exc)
            if not tmp.stat().st_size:
                raise _NoOutput
    except _NoOutput:
        pass
    return error

