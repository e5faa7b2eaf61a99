"""Setting vtr up from the first cell of a notebook opened in Google Colab.

Every numbered notebook starts with the same cell, :data:`BOOTSTRAP_SOURCE`. Outside Colab it does
nothing (JupyterLab and ``run_all.py`` run on a checkout whose vtr is installed already). On Colab:

1. The first run clones the repository into ``$VTR_HOME`` (default ``/content/vtr``). vtr is not
   installed yet at that point, so the cell cannot read the URL from vtr's package metadata. It takes
   it from the one documented variable ``VTR_REPO_URL``: a Colab secret (the key icon in Colab's left
   bar, shared by every notebook of the user; Colab asks once per notebook for access), or an
   environment variable of that name (``%env VTR_REPO_URL=...`` before the cell). A private repository
   can be cloned with a token in the URL: ``https://<token>@github.com/<owner>/<repo>.git``.
2. The cell then imports this module from the clone and calls :func:`setup`, which installs the clone
   with ``pip install -e`` unless vtr is already installed from it, and asks for one restart of the
   session (Runtime → Restart session) when pip replaced a package the running Python has already
   imported. It raises :class:`RestartRequired` so that "Run all" stops there instead of running the
   rest on stale modules. After the restart the same cell finds the clone and the install and returns
   at once.

The clone is the project root of the session (``vtr.paths`` falls back to the editable install's
location), so ``data/`` and ``reports/`` live under ``$VTR_HOME``.

The cell's text lives here and nowhere else: ``python -m vtr.colab notebooks/*.ipynb`` writes it into
the notebooks (as their first cell) and ``tests/test_colab.py`` fails when a notebook's copy differs.
"""

from __future__ import annotations

import argparse
import collections
import importlib
import importlib.metadata
import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlparse

# Only the standard library at import time: setup() runs before pip has installed vtr's dependencies.
from vtr.atomic import write_text

if TYPE_CHECKING:
    import nbformat

DEFAULT_HOME = "/content/vtr"  # the cell's default for $VTR_HOME
CELL_ID = "colab-setup"
# hide-input: the cell has no output outside Colab, and its code is no part of a report.
CELL_TAGS = ["colab-setup", "hide-input"]

BOOTSTRAP_SOURCE = """\
# Colab only (elsewhere this cell does nothing): the first run clones vtr from the URL in the Colab secret
# or environment variable VTR_REPO_URL into /content/vtr, installs it and may ask for one restart.
import os
import sys

if "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ:
    VTR_HOME = os.environ.get("VTR_HOME", "/content/vtr")
    if not os.path.isdir(VTR_HOME):
        from google.colab import userdata

        VTR_REPO_URL = os.environ.get("VTR_REPO_URL") or userdata.get("VTR_REPO_URL")
        !git clone --depth 1 {VTR_REPO_URL} {VTR_HOME}
        assert os.path.isdir(VTR_HOME), "git clone of VTR_REPO_URL failed (see its message above)"
    sys.path.insert(0, os.path.join(VTR_HOME, "lib"))
    from vtr.colab import setup

    setup(VTR_HOME)"""


class RestartRequired(RuntimeError):
    """pip replaced packages the session had already imported: restart it once, then run again."""

    def _render_traceback_(self) -> list[str]:
        # IPython shows these lines instead of a traceback: the message is the whole story.
        return str(self).splitlines()


def in_colab(environ: Mapping[str, str] | None = None) -> bool:
    """Whether this Python runs in a Colab runtime (its kernel imports ``google.colab`` at start)."""
    environ = os.environ if environ is None else environ
    return "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in environ


def installed_checkout() -> Path | None:
    """The folder vtr is installed from in editable mode (PEP 610 ``direct_url.json``), else ``None``."""
    importlib.invalidate_caches()
    try:
        text = importlib.metadata.distribution("vtr").read_text("direct_url.json")
    except importlib.metadata.PackageNotFoundError:
        return None
    try:
        info = json.loads(text or "{}")
    except ValueError:
        return None
    url = urlparse(str(info.get("url", "")))
    if url.scheme != "file" or not info.get("dir_info", {}).get("editable"):
        return None
    return Path(unquote(url.path)).resolve()


def installed_versions() -> dict[str, str]:
    """``{distribution name: version}`` of everything importable now."""
    importlib.invalidate_caches()  # pip just changed site-packages; re-scan it
    versions = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            versions[_normalise(name)] = dist.version
    return versions


def _normalise(name: str) -> str:
    """A distribution name as pip compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def stale_distributions(
    before: Mapping[str, str],
    after: Mapping[str, str],
    loaded_modules: Iterable[str],
    modules_of: Mapping[str, Sequence[str]],
) -> list[str]:
    """Distributions pip changed or removed whose top-level modules are already imported.

    ``modules_of`` maps a top-level module to its distributions (``packages_distributions()``). Newly
    installed distributions are not stale: nothing can have imported them yet.
    """
    changed = {name for name, version in before.items() if after.get(name) != version}
    loaded = {module.split(".", 1)[0] for module in loaded_modules}
    stale = {
        _normalise(dist)
        for module in loaded
        for dist in modules_of.get(module, ())
        if _normalise(dist) in changed
    }
    return sorted(stale - {"vtr"})  # vtr itself is imported from the clone's lib/ already


def pip_install(checkout: Path) -> None:
    """``pip install -e checkout``, its output streamed into the cell (Colab does not show a child's)."""
    command = [sys.executable, "-m", "pip", "install", "--progress-bar", "off", "-e", str(checkout)]
    print("$", shlex.join(command), flush=True)
    tail: collections.deque[str] = collections.deque(maxlen=40)
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            tail.append(line)
            if not line.startswith("Requirement already satisfied"):
                print(line, end="", flush=True)
    if proc.returncode:
        raise RuntimeError(f"pip install -e {checkout} failed (exit {proc.returncode}):\n{''.join(tail)}")


def setup(checkout: str | os.PathLike[str] = DEFAULT_HOME) -> None:
    """On Colab, make the clone at ``checkout`` the installed vtr; elsewhere do nothing.

    Raises :class:`RestartRequired` when the session must restart before vtr can be used.
    """
    if not in_colab():
        return
    checkout = Path(checkout).resolve()
    if not (checkout / "pyproject.toml").is_file():
        raise FileNotFoundError(f"{checkout}: not a vtr checkout (no pyproject.toml); remove it and rerun")
    if installed_checkout() == checkout:
        print(f"vtr is installed from {checkout}")
        return
    before = installed_versions()
    pip_install(checkout)
    stale = stale_distributions(
        before, installed_versions(), list(sys.modules), importlib.metadata.packages_distributions()
    )
    if stale:
        raise RestartRequired(
            f"vtr is installed from {checkout}, but pip replaced packages this session had already "
            f"imported ({', '.join(stale)}).\nRestart the session once (Runtime → Restart session), "
            "then run the notebook again: this cell will find the install and go on."
        )
    print(f"vtr is installed from {checkout}; no restart needed")


# --------------------------------------------------------------------------------------------------
# Keeping the notebooks' first cell in step with BOOTSTRAP_SOURCE


def bootstrap_cell() -> nbformat.NotebookNode:
    """The first cell of every notebook."""
    import nbformat

    cell = nbformat.v4.new_code_cell(BOOTSTRAP_SOURCE, metadata={"tags": list(CELL_TAGS)})
    cell.id = CELL_ID
    return cell


def has_current_bootstrap(nb: nbformat.NotebookNode) -> bool:
    """Whether the notebook's first cell is exactly :func:`bootstrap_cell`'s source and tags."""
    if not nb.cells:
        return False
    first = nb.cells[0]
    return (
        first.cell_type == "code"
        and first.source == BOOTSTRAP_SOURCE
        and first.get("metadata", {}).get("tags") == CELL_TAGS
    )


def write_bootstrap(path: str | os.PathLike[str]) -> bool:
    """Make the notebook at ``path`` start with the bootstrap cell (replacing an older one); True if it
    changed. Everything else in the notebook is left as it is."""
    import nbformat

    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    if has_current_bootstrap(nb):
        return False
    if nb.cells and CELL_ID in (nb.cells[0].get("id"), *nb.cells[0].get("metadata", {}).get("tags", [])):
        nb.cells[0] = bootstrap_cell()
    else:
        nb.cells.insert(0, bootstrap_cell())
    nbformat.validate(nb)
    write_text(path, nbformat.writes(nb) + "\n")
    return True


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m vtr.colab",
        description="Write the Colab set-up cell into notebooks as their first cell.",
    )
    parser.add_argument("notebooks", nargs="+", type=Path)
    args = parser.parse_args(argv)
    for path in args.notebooks:
        print(f"{path}: {'updated' if write_bootstrap(path) else 'up to date'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
