"""The documentation site's structure: one reference page per module, every page in the nav.

The build itself (`mkdocs build --strict`) runs in `make test`; these checks name the missing or stale
file directly, which the build would report only as a missing object or an unlisted page.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def _public_modules() -> set[str]:
    lib = ROOT / "lib"
    found = set()
    for path in (lib / "vtr").rglob("*.py"):
        parts = path.relative_to(lib).with_suffix("").parts
        if path.name == "__init__.py" or any(p.startswith("_") for p in parts):
            continue
        found.add(".".join(parts))
    return found


def _nav_pages(node: Any) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, list):
        return [page for item in node for page in _nav_pages(item)]
    if isinstance(node, dict):
        return [page for value in node.values() for page in _nav_pages(value)]
    return []


def test_every_public_module_has_a_reference_page_and_no_page_is_stale() -> None:
    pages = {p.stem: p for p in (DOCS / "reference").glob("*.md")}
    modules = _public_modules()
    assert not modules - set(pages), f"add docs/reference/<module>.md for {sorted(modules - set(pages))}"
    assert not set(pages) - modules, f"modules gone, remove their pages: {sorted(set(pages) - modules)}"
    for module, page in pages.items():
        assert page.read_text(encoding="utf-8").strip() == f"::: {module}", page


def test_every_page_is_in_the_nav_once() -> None:
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    listed = _nav_pages(config["nav"])
    on_disk = sorted(p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md"))
    assert sorted(listed) == on_disk, set(listed) ^ set(on_disk)
