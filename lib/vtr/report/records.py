"""Rows of ``reports/run.json``: one per notebook, with its status, timing, parameters and error.

The runner rewrites ``run.json`` after every notebook, so an interrupted run still records what
finished; :func:`previous_run` reads it back for ``--resume`` and for the rows of notebooks not run.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from vtr.report.notebooks import Notebook
from vtr.report.outputs import figures_of, metrics_of

STATUS_OK, STATUS_FAILED, STATUS_SKIPPED, STATUS_NOT_RUN = "ok", "failed", "skipped", "not run"
# A resumed notebook's outputs were produced by a run that ended "ok" (or was itself resumed).
GOOD_STATUSES = {STATUS_OK, STATUS_SKIPPED}


def previous_run(reports: Path) -> dict[str, dict[str, Any]]:
    """Rows of the previous ``run.json`` by notebook stem (empty when there is none or it is unreadable)."""
    try:
        data = json.loads((reports / "run.json").read_text(encoding="utf-8"))
        return {
            row["stem"]: row for row in data.get("notebooks", []) if isinstance(row, dict) and "stem" in row
        }
    except (OSError, ValueError, AttributeError, TypeError):
        return {}


def notebook_row(nb: Notebook, /, **fields: Any) -> dict[str, Any]:
    """A notebook's row: "not run" and empty unless ``fields`` say otherwise."""
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


def now() -> str:
    """The local time with its UTC offset, to the second (ISO 8601)."""
    return datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds")


def with_outputs(row: dict[str, Any], reports: Path) -> dict[str, Any]:
    """``row`` with the outputs found in ``reports``: page links, metrics and figures."""
    stem = row["stem"]
    return {
        **row,
        "html": f"{stem}.html" if (reports / f"{stem}.html").is_file() else None,
        "ipynb": f"{stem}.ipynb" if (reports / f"{stem}.ipynb").is_file() else None,
        "metrics": metrics_of(reports, stem),
        "figures": figures_of(reports, stem),
    }
