"""Reports: what notebooks write, the runner that executes them, the index page and the README table.

Notebooks call :func:`save_metrics` and :func:`save_figure` (re-exported here from
:mod:`vtr.report.outputs`, the one way a notebook reports) and draw with :mod:`vtr.report.plots`.
``vtr reports`` (:mod:`vtr.report.command`, with ``run_all.py`` its shim) runs the notebooks:

* :mod:`vtr.report.notebooks` finds and selects ``notebooks/NN_name.ipynb``;
* :mod:`vtr.report.resume` decides what ``--resume`` may skip;
* :mod:`vtr.report.gpus` trains the fine-tuning grids first on several GPUs;
* :mod:`vtr.report.engine` executes one notebook with papermill, :mod:`vtr.report.errors` says how
  it failed, :mod:`vtr.report.render` turns it into an HTML page;
* :mod:`vtr.report.records` and :mod:`vtr.report.index` write ``run.json`` and ``index.html`` (from
  the jinja2 template ``templates/index.html.j2``);
* :mod:`vtr.report.runner` ties them together, and :mod:`vtr.report.readme` writes the README's
  results table from ``run.json`` (``python -m vtr.report.readme``).
"""

from vtr.report.outputs import read_strict_json, save_figure, save_metrics

__all__ = ["read_strict_json", "save_figure", "save_metrics"]
