"""``vtr reports``: run the notebooks into ``reports/`` (HTML pages, ``run.json``, ``index.html``).

    vtr reports --profile sample                 # every notebook, offline CPU profile
    vtr reports --only 03 --set seed=1           # one notebook, one override
    vtr reports --resume                         # skip notebooks whose reports are up to date

``run_all.py`` is a thin shim over :func:`main`. ``--profile`` / ``--set`` are the options every
``vtr`` command shares (:func:`vtr.cli._profile_options`), parsed and validated by
:func:`vtr.cli._load` before any kernel starts; the run itself is :func:`vtr.report.runner.run`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vtr.report.runner import RunOptions, run


def add_parser(commands: Any) -> None:
    """Add ``vtr reports`` to the ``vtr`` sub-commands (registered in :data:`vtr.cli.COMMANDS`)."""
    from vtr.cli import _profile_options

    reports = commands.add_parser(
        "reports",
        parents=[_profile_options()],
        help="run the notebooks with papermill into reports/ (HTML and an index)",
        description="Run notebooks/NN_*.ipynb in order with papermill into reports/ (HTML and an index).",
    )
    opt = reports.add_argument
    opt("--only", action="append", metavar="NN[,NN]", help="run only these notebooks, e.g. 01,03")
    opt("--from", dest="start_from", metavar="NN", help="run this notebook and all after it")
    opt("--resume", action="store_true", help="skip notebooks whose reports are up to date and ok")
    opt("--timeout", type=int, default=1800, help="seconds allowed per cell (default 1800)")
    opt("--notebooks", type=Path, help="notebooks folder (default <root>/notebooks)")
    opt("--reports", type=Path, help="reports folder (default <root>/reports)")
    opt("--kernel", default="python3", help="Jupyter kernel name (default python3)")
    opt("--no-progress", action="store_true", help="no per-cell progress bar")
    opt(
        "--gpus",
        default="auto",
        metavar="auto|N",
        help="train notebooks 02-03's grids first with `vtr train --nproc N` (torchrun); auto: every GPU "
        "when the profile trains on CUDA and there are several (default); 1: no separate step",
    )
    opt(
        "--jobs",
        default="1",
        metavar="auto|N",
        help="run the notebooks after 00-01 (which build the world and vtr-tiny) N at a time, each kernel "
        "with its share of the cores (default 1; auto: 2 on a CPU profile with at least 2 cores). Fewer "
        "threads per kernel change float rounding, so numbers can differ from a --jobs 1 run",
    )
    reports.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    """Run ``vtr reports``: 0 all ok, 1 a notebook (or the training step) failed, 2 bad input, 130 on ^C."""
    from vtr.cli import _load, _overrides

    profile = _load(args, {})  # a bad profile or --set fails here (exit 2), before any kernel starts
    options = RunOptions(
        profile=args.profile,
        overrides=_overrides(args, {}),
        only=args.only,
        start_from=args.start_from,
        resume=args.resume,
        timeout=args.timeout,
        notebooks_dir=args.notebooks,
        reports_dir=args.reports,
        kernel=args.kernel,
        progress=not args.no_progress,
        gpus=args.gpus,
        jobs=args.jobs,
    )
    try:
        return run(options, _command_line(), profile=profile)
    except KeyboardInterrupt:
        print("\ninterrupted; reports/index.html shows what finished (use --resume to continue)", file=sys.stderr)
        return 130


def _command_line() -> list[str]:
    """This process's command line for ``run.json``: ``run_all.py ...`` through the shim, else ``vtr ...``
    (also for ``python -m vtr.cli``)."""
    program = Path(sys.argv[0]).name
    return [program if program == "run_all.py" else "vtr", *sys.argv[1:]]


def main(argv: Sequence[str] | None = None) -> int:
    """``run_all.py`` and ``vtr reports``: the same command; returns the exit status."""
    from vtr.cli import main as vtr_main

    return vtr_main(["reports", *(sys.argv[1:] if argv is None else argv)])
