"""Finding the notebooks to run: ``notebooks/NN_name.ipynb``, selected by ``--only`` and ``--from``.

Notebooks are numbered; the number orders them, selects them on the command line and names their
outputs (``reports/metrics/NN_name.json``), so two notebooks may not share one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import nbformat

PARAMETERS_TAG = "parameters"
# Notebooks that build what every later one reads: 00 the sample world, 01 the pretrained vtr-tiny
# (cached under data/). They run alone and in order; the notebooks after them share nothing but those
# caches, so ``--jobs`` may run them side by side.
PREPARING = (0, 1)
_NOTEBOOK_NAME = re.compile(r"^(\d+)_[^.]+\.ipynb$")


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



def split_preparing(selected: Sequence[Notebook]) -> tuple[list[Notebook], list[Notebook]]:
    """``selected`` cut after the last notebook of :data:`PREPARING` in it: the head runs in order, the
    rest may run in parallel."""
    last = max((i for i, nb in enumerate(selected) if nb.number in PREPARING), default=-1)
    return list(selected[: last + 1]), list(selected[last + 1 :])
