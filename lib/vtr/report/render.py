"""Rendering an executed notebook as a standalone HTML page (nbconvert); cells tagged ``hide-input``
show only their output."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import nbformat

from vtr.atomic import write_text

HIDE_INPUT_TAG = "hide-input"


@functools.cache
def _html_exporter() -> Any:
    """One nbconvert exporter for the whole run (building its templates is the slow part)."""
    from nbconvert import HTMLExporter
    from traitlets.config import Config

    config = Config()
    config.TagRemovePreprocessor.enabled = True
    config.TagRemovePreprocessor.remove_input_tags = {HIDE_INPUT_TAG}
    config.HTMLExporter.preprocessors = ["nbconvert.preprocessors.TagRemovePreprocessor"]
    return HTMLExporter(config=config)


def render_html(executed: Path, html_page: Path) -> None:
    """Render an executed notebook to a standalone HTML page; ``hide-input`` cells show only output."""
    nb = nbformat.read(executed, as_version=4)
    body, _ = _html_exporter().from_notebook_node(nb, resources={"metadata": {"name": executed.stem}})
    write_text(html_page, body)

