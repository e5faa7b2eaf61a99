"""What went wrong in a notebook, as the index and the summary show it: the cell, its line, the error.

A failing cell is reported by papermill with its index in the source notebook; a timeout or a dead
kernel is not, so the cell is read back from the executed copy (the last cell papermill started).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nbformat import NotebookNode

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def first_line(source: str) -> str:
    """The first non-blank line of ``source``, stripped (a cell's or a message's headline)."""
    return next((line.strip() for line in source.splitlines() if line.strip()), "")


def clean_text(text: str, limit: int | None = None) -> str:
    """``text`` without terminal colour codes, cut to ``limit`` characters (with an ellipsis)."""
    text = _ANSI.sub("", text)
    return text if limit is None or len(text) <= limit else text[: limit - 1] + "…"


def error_record(
    ename: str, evalue: str, cell_index: int | None = None, exec_count: int | None = None, source: str = ""
) -> dict[str, Any]:
    """The error as ``run.json`` records it: where (cell index, execution count, source) and what."""
    return {
        "cell_index": cell_index,
        "exec_count": exec_count,
        "source": source,
        "ename": ename,
        "evalue": clean_text(str(evalue)).strip(),
    }


def failed_cell_index(executed: Path) -> int | None:
    """Index, in the saved executed notebook, of the last cell papermill started: execution stops at the
    cell that raised, timed out or killed the kernel (papermill marks a timed-out cell "completed")."""
    nb = _read(executed)
    started = [
        i
        for i, cell in enumerate(nb.cells)
        if cell.get("metadata", {}).get("papermill", {}).get("start_time")
    ]
    return started[-1] if started else None


def error_in_notebook(executed: Path, exc: BaseException) -> dict[str, Any]:
    """For failures outside a cell's own code (timeout, dead kernel): the cell that was running."""
    error = error_record(type(exc).__name__, str(exc))
    if executed.stat().st_size and (index := failed_cell_index(executed)) is not None:
        cell = _read(executed).cells[index]
        error.update(cell_index=index, exec_count=cell.get("execution_count"), source=cell.source)
    return error



def _read(executed: Path) -> NotebookNode:
    # Imported here: nbformat's validator pulls in jsonschema's format checkers, ~3 s of import that
    # every notebook kernel would pay through `from vtr.report import save_metrics`.
    import nbformat

    return nbformat.read(executed, as_version=4)
