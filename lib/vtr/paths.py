"""Where things live: the project root, the data folder and the reports folder.

The project root is found from ``$VTR_ROOT``, else by walking up from the current directory to a
``pyproject.toml`` that declares ``name = "vtr"``, else from this package's location (an editable
install). A notebook's working directory depends on who runs it (run_all.py uses the project root,
Jupyter the notebook's folder), so every relative path goes through here.
"""

from __future__ import annotations

import os
from pathlib import Path

_PACKAGE_ROOT = Path(__file__).resolve().parents[2]


def _is_vtr_root(path: Path) -> bool:
    pyproject = path / "pyproject.toml"
    return pyproject.is_file() and 'name = "vtr"' in pyproject.read_text(encoding="utf-8")


def project_root() -> Path:
    """The vtr checkout this process works in."""
    if env := os.environ.get("VTR_ROOT"):
        return Path(env).resolve()
    here = Path.cwd().resolve()
    for candidate in (here, *here.parents):
        if _is_vtr_root(candidate):
            return candidate
    return _PACKAGE_ROOT


def resolve(path: str | os.PathLike[str]) -> Path:
    """A path from a config: absolute paths stay, relative ones are relative to the project root."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else project_root() / p


def reports_dir() -> Path:
    """``$VTR_REPORTS_DIR`` (set by run_all.py) or ``<root>/reports``."""
    return Path(os.environ.get("VTR_REPORTS_DIR") or project_root() / "reports")


def shared_data_dir() -> Path:
    """``../shared/data`` beside the checkout: real third-party files for tests and checks (may be absent)."""
    return Path(os.environ.get("VTR_SHARED_DATA") or project_root().parent / "shared" / "data")
