"""One switch for every progress bar in vtr.

Long work shows a tqdm bar unless the caller passes ``progress=False`` or the environment sets
``VTR_PROGRESS=0``. ``run_all.py`` sets it for notebook kernels: bars written into executed
notebooks would only clutter the HTML reports, while the terminal shows notebook and cell progress.

Bars come from ``tqdm.auto``: ipywidgets progress bars in JupyterLab and Colab (tests/test_browser.py
checks that they render as widgets), text bars in a terminal.
"""

from __future__ import annotations

import os

PROGRESS_ENV = "VTR_PROGRESS"


def show_progress(progress: bool = True) -> bool:
    """Whether to draw a bar: ``progress`` unless ``VTR_PROGRESS`` is ``0``, ``false`` or ``no``."""
    return progress and os.environ.get(PROGRESS_ENV, "1").strip().lower() not in {"0", "false", "no"}
