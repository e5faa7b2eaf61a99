"""What notebooks report: metrics as JSON and figures as PNG under ``reports/metrics/``.

``run_all.py`` reads these files to build ``reports/index.html``. Names start with the notebook's
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


def metrics_dir() -> Path:
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
    merged = load_metrics(name)
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


def load_metrics(name: str) -> dict[str, Any]:
    path = metrics_dir() / f"{name}.json"
    return read_strict_json(path) if path.exists() else {}


def save_figure(fig: Any, name: str, *, dpi: int = 110) -> Path:
    """Save a matplotlib figure as ``reports/metrics/<name>.png`` (the notebook still shows it inline)."""
    path = metrics_dir() / f"{name}.png"
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format="png")
    return path
