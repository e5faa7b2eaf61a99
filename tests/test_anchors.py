from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from vtr.anchors import ANCHORS, anchor, anchors_table

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def _code_of(stem: str) -> str:
    nb = json.loads((NOTEBOOKS / f"{stem}.ipynb").read_text(encoding="utf-8"))
    return "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")


def test_every_anchor_names_its_source_and_protocol() -> None:
    for key, found in ANCHORS.items():
        assert found.key == key
        assert found.source.strip() and found.protocol.strip() and found.metrics, key
        assert all(isinstance(v, float) for v in found.metrics.values()), key


def _code_with_experiment(stem: str) -> str:
    """A notebook's code and the sources of the ``vtr.experiments`` packages it imports (where its
    analysis lives)."""
    code = _code_of(stem)
    experiments = NOTEBOOKS.parent / "lib" / "vtr" / "experiments"
    packages = set(re.findall(r"vtr\.experiments\.(\w+)", code))
    sources = [f.read_text(encoding="utf-8") for pkg in sorted(packages) for f in (experiments / pkg).glob("*.py")]
    return "\n".join([code, *sources])


def test_the_notebooks_an_anchor_lists_are_the_ones_that_print_it() -> None:
    for found in ANCHORS.values():
        for stem in found.notebooks:
            assert f'"{found.key}"' in _code_with_experiment(stem), (found.key, stem)


def test_zero_shot_clip_anchor_is_the_papers_figure() -> None:
    # Portillo-Quintero et al. 2021 report 31.2 / 53.7 / 64.2, MedR 4 (not the rounded 31 / 54 / 64).
    metrics = anchor("msrvtt-1ka-clip-b32-zero-shot").metrics
    assert (metrics["t2v_R@1"], metrics["t2v_R@5"], metrics["t2v_R@10"]) == (31.2, 53.7, 64.2)


def test_unknown_key_lists_the_known_ones() -> None:
    with pytest.raises(KeyError, match="hnerv-bunny-1.5m"):
        anchor("no-such-anchor")


def test_table_of_one_direction_drops_the_prefix() -> None:
    table = anchors_table(["msrvtt-1ka-clip-b32-zero-shot", "msrvtt-1ka-clip4clip-seqtransf"], "t2v")
    assert list(table.columns) == ["R@1", "R@5", "R@10", "MedR"]
    assert table["R@1"].tolist() == [31.2, 44.5]
    assert table["R@5"].isna().tolist() == [False, True]
    assert table.index[0].startswith("zero-shot CLIP ViT-B/32") and "Portillo-Quintero" in table.index[0]
