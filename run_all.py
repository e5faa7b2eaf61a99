#!/usr/bin/env python
"""Run every notebook in notebooks/ with papermill into reports/: a shim for ``vtr reports``.

    python run_all.py --profile sample             # all notebooks, offline CPU profile
    python run_all.py --only 03 --set seed=1       # one notebook, one override
    python run_all.py --resume                     # skip notebooks whose reports are up to date

All the logic lives in :mod:`vtr.report` (see ``vtr reports --help``).
"""

import sys

from vtr.report.command import main

if __name__ == "__main__":
    sys.exit(main())
