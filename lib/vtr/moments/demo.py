"""The ``vtr demo`` command: starts the moment-retrieval app (:mod:`vtr.moments.app`) with Streamlit.

    vtr demo                                  # http://localhost:8501
    vtr demo --port 8600 --checkpoint data/runs/moments/temporal-<key>/model.pt --videos clips/

It runs ``python -m streamlit run lib/vtr/moments/app.py`` with the app's options after ``--``;
Streamlit comes with the ``demo`` extra (``pip install 'vtr[demo]'``).
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
from pathlib import Path
from typing import Any

APP = Path(__file__).with_name("app.py")


def streamlit_command(args: argparse.Namespace) -> list[str]:
    """The ``streamlit run`` command line for the parsed ``vtr demo`` options."""
    command = [sys.executable, "-m", "streamlit", "run", str(APP), "--server.port", str(args.port)]
    command += ["--server.address", args.address, "--server.headless", "true" if args.headless else "false"]
    command += ["--browser.gatherUsageStats", "false", "--", "--profile", args.profile]
    for override in args.overrides:
        command += ["--set", override]
    if args.checkpoint:
        command += ["--checkpoint", str(Path(args.checkpoint).resolve())]
    if args.videos:
        command += ["--videos", str(Path(args.videos).resolve())]
    if args.index:
        command += ["--index", str(Path(args.index).resolve())]
    return command


def add_parser(commands: Any) -> None:
    """Add ``vtr demo`` to the ``vtr`` command line."""
    from vtr.cli import _profile_options  # here: vtr.cli imports this module

    parser = commands.add_parser(
        "demo",
        parents=[_profile_options()],
        help="the moment-retrieval demo in the browser (Streamlit)",
        description="Start the Streamlit moment-retrieval app (vtr.moments.app).",
    )
    opt = parser.add_argument
    opt("--port", type=int, default=8501, help="port to serve on (default 8501)")
    opt("--address", default="localhost", help="address to serve on (default localhost)")
    opt("--checkpoint", help="a trained moment model (default: zero-shot)")
    opt("--videos", help="folder of videos to offer (default: the sample world's long videos)")
    opt("--index", help="a `vtr index build` folder: adds text-to-video search (default: none)")
    opt("--headless", action="store_true", help="do not open a browser")
    parser.set_defaults(handler=_demo)


def _demo(args: argparse.Namespace) -> int:
    if importlib.util.find_spec("streamlit") is None:
        print("vtr demo: error: streamlit is not installed (pip install 'vtr[demo]')", file=sys.stderr)
        return 2
    if args.videos and not Path(args.videos).is_dir():
        print(f"vtr demo: error: --videos {args.videos}: not a folder", file=sys.stderr)
        return 2
    if args.index and not (Path(args.index) / "index.json").is_file():
        print(f"vtr demo: error: --index {args.index}: not a `vtr index build` folder", file=sys.stderr)
        return 2
    try:
        return subprocess.call(streamlit_command(args))
    except KeyboardInterrupt:
        return 0
