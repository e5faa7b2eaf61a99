"""``--resume``: may a notebook's last report be kept instead of running it again?"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vtr.report.records import GOOD_STATUSES


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
    if previous.get("status") not in GOOD_STATUSES or previous.get("parameters") != parameters:
        return False
    produced = min(executed.stat().st_mtime, html_page.stat().st_mtime)
    return produced > newest_mtime(inputs)

