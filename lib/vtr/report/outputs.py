"""What notebooks report: metrics as JSON and figures as PNG under ``reports/metrics/``, and how the
runner reads them back.

The runner (``vtr reports``) reads these files to build ``reports/index.html`` and ``run.json``. Names start with the notebook's
``NN_name`` stem so the index can find them:

    save_metrics("01_baselines", {"t2v_R@1": 12.5})            # reports/metrics/01_baselines.json
    save_figure(fig, "01_baselines_heatmap")                   # reports/metrics/01_baselines_heatmap.png

Calling ``save_metrics`` twice for one notebook merges the dicts (later keys win). The files are
strict JSON (RFC 8259): NaN and infinities, which plain ``json.dumps`` writes as the non-standard
tokens ``NaN``/``Infinity`` that strict parsers (JavaScript, jq, Go, ...) reject, become ``null``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vtr.atomic import atomic_path, write_json
from vtr.paths import reports_dir
from vtr.report.errors import clean_text


def metrics_dir() -> Path:
    """``<reports>/metrics``: where notebooks write (``VTR_REPORTS_DIR`` or ``reports/``)."""
    return reports_dir() / "metrics"


def _clean(value: Any) -> Any:
    """Round floats to 6 significant digits (metrics files compare equal across identical runs) and make
    NaN and infinities ``None`` (strict JSON has no token for them)."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, float):
        return float(f"{value:.6g}") if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


HEADLINE_KEY = "_headline"


def save_metrics(name: str, metrics: dict[str, Any], *, headline: Sequence[str] = ()) -> Path:
    """Write (or merge into) ``reports/metrics/<name>.json``; returns its path.

    ``headline`` names the (dotted) keys the index shows first for this notebook, in that order.
    """
    path = metrics_dir() / f"{name}.json"
    merged = read_strict_json(path) if path.exists() else {}
    merged.update(metrics)
    if headline:
        merged[HEADLINE_KEY] = list(headline)
    return write_json(path, _clean(merged), allow_nan=False)


def read_strict_json(path: Path) -> Any:
    """Parse ``path`` as strict JSON: ``NaN``, ``Infinity`` and ``-Infinity`` raise ``ValueError``
    naming the file (Python's ``json`` accepts them by default; other parsers do not)."""

    def reject(token: str) -> Any:
        raise ValueError(f"{path}: {token} is not valid JSON (write null for a missing number)")

    return json.loads(path.read_text(encoding="utf-8"), parse_constant=reject)


def save_figure(fig: Any, name: str, *, dpi: int = 110) -> Path:
    """Save a matplotlib figure as ``reports/metrics/<name>.png`` (the notebook still shows it inline)."""
    path = metrics_dir() / f"{name}.png"
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format="png")
    return path


# Reading them back (the runner, the index, the README table)


def metrics_of(reports: Path, stem: str) -> dict[str, Any]:
    """``reports/metrics/<stem>.json`` read by :func:`read_strict_json` (empty when the notebook saved none
    or it is not strict JSON: the index must not fail on one bad file)."""
    path = reports / "metrics" / f"{stem}.json"
    try:
        data = read_strict_json(path)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def figures_of(reports: Path, stem: str) -> list[str]:
    """Figures ``metrics/<stem>.png`` and ``metrics/<stem>_*.png``, relative to ``reports``."""
    folder = reports / "metrics"
    found = [*folder.glob(f"{stem}.png"), *folder.glob(f"{stem}_*.png")]
    return sorted(p.relative_to(reports).as_posix() for p in found)


def clear_outputs_of(reports: Path, stem: str) -> None:
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
    return clean_text(str(value), 40)



def ordered_metrics(metrics: dict[str, Any]) -> tuple[list[tuple[str, Any]], int]:
    """A notebook's scalar metrics in display order, and how many of them are headline keys.

    The headline keys (``vtr.report.save_metrics(..., headline=...)``) come first, in their order,
    then the other scalars; the index and the README's results table both show them this way.
    """
    flat = scalar_metrics(metrics)
    first = [k for k in metrics.get(HEADLINE_KEY, []) if k in flat]
    ordered = first + [k for k in flat if k not in first]
    return [(k, flat[k]) for k in ordered], len(first)

