"""``reports/index.html`` and ``reports/run.json``: one row per notebook, then the run's environment.

The page is static and self-contained, laid out by the package's jinja2 template
``vtr/report/templates/index.html.j2``; :func:`render_index` and the view it builds per row decide what
it shows (statuses, links, errors, the first metrics, figures), the template only lays it out.
"""

from __future__ import annotations

import functools
import html
import json
from pathlib import Path
from typing import Any

from vtr.atomic import write_json, write_text
from vtr.report.errors import clean_text, first_line
from vtr.report.outputs import format_value, ordered_metrics
from vtr.report.records import STATUS_FAILED, STATUS_NOT_RUN, STATUS_OK, STATUS_SKIPPED

MAX_INDEX_METRICS = 12


def duration_text(seconds: float | None) -> str:
    if seconds is None:
        return ""
    minutes, secs = divmod(seconds, 60)
    return f"{int(minutes)} min {secs:.0f} s" if minutes else f"{secs:.1f} s"



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
        "line": first_line(error.get("source") or "")[:80],
        "ename": error["ename"],
        "evalue": clean_text(error.get("evalue") or "", 400),
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
        "duration": duration_text(row["duration_s"]),
        "metrics": metrics,
        "more_metrics": more,
        "figures": [(f, Path(f).stem) for f in row["figures"]],
    }


@functools.cache
def _index_template() -> Any:
    """The package's ``vtr/report/templates/index.html.j2``, loaded once."""
    import jinja2
    from markupsafe import Markup

    def escape(value: Any) -> Markup:
        # html.escape (quote=True) rather than markupsafe's spelling of quotes, so the page's escaping
        # is what it was before the template (tests look for ``&#x27;``).
        return value if isinstance(value, Markup) else Markup(html.escape(str(value), quote=True))

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("vtr.report", "templates"),
        autoescape=True,
        finalize=escape,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    return env.get_template("index.html.j2")


def render_index(run: dict[str, Any]) -> str:
    """``index.html``: one row per notebook, then the run's environment. Static and self-contained.

    The layout is the package's jinja2 template ``vtr/report/templates/index.html.j2``; this function and
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

