"""The ``vtr`` command line: ``vtr <command> [<subcommand>] [options]``.

    vtr download internvid --profile full --count 200 --workers 8
    vtr download internvid --metadata internvid_rows.jsonl --out data/internvid --retry-failed

Each command registers itself in :data:`COMMANDS` (a function that adds its sub-parser and sets
``handler``); a handler takes the parsed arguments and returns the exit status. Options default
to the profile (``--profile``, ``--set section.key=value``); flags given explicitly win.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from vtr.config import ConfigError, load_profile, parse_override

Subparsers = Any  # argparse's _SubParsersAction is private


def _profile_options() -> argparse.ArgumentParser:
    """Options shared by every command that reads a profile."""
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("profile")
    group.add_argument(
        "--profile", default="sample", help="profile name (configs/<name>.yaml) or path (default: sample)"
    )
    group.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override any profile key, e.g. --set internvid.timeout=30 (repeatable)",
    )
    return parent


def _load(args: argparse.Namespace, flags: dict[str, Any]):
    """The profile with ``--set`` overrides, then the explicit flags (those not None) on top."""
    overrides = dict(parse_override(text) for text in args.overrides)
    overrides.update({key: value for key, value in flags.items() if value is not None})
    return load_profile(args.profile, overrides=overrides)


# --------------------------------------------------------------------------------------------
# vtr download internvid
# --------------------------------------------------------------------------------------------


def _add_download(commands: Subparsers) -> None:
    download = commands.add_parser("download", help="fetch a data set", description="Fetch a data set.")
    datasets = download.add_subparsers(dest="dataset", metavar="DATASET", required=True)
    internvid = datasets.add_parser(
        "internvid",
        parents=[_profile_options()],
        help="InternVid clips from YouTube",
        description=(
            "Select InternVid rows (aesthetic score, duration), download and cut the clips, and write "
            "<out>/manifest.jsonl. Reruns resume: done clips and clips that failed for good are skipped; "
            "transient failures (timeouts, network, busy servers, a full disk) are retried."
        ),
    )
    opt = internvid.add_argument
    opt("--metadata", help="local jsonl/parquet/csv file or hub dataset id (default: profile)")
    opt("--subset", help="hub configuration, e.g. InternVid-10M or InternVid-18M")
    opt("--split", help="hub split, e.g. FLT or AES")
    opt("--count", type=int, help="number of clips to select after filtering")
    opt("--min-aesthetic", type=float, help="keep rows with Aesthetic_Score >= this")
    opt("--min-duration", type=float, help="shortest clip, seconds")
    opt("--max-duration", type=float, help="longest clip, seconds")
    opt("--workers", type=int, help="parallel downloads")
    opt("--timeout", type=float, help="network and ffmpeg timeout, seconds")
    opt("--out", help="output folder (clips/, status.jsonl, manifest.jsonl)")
    opt("--url-template", help="video URL with {youtube_id}, e.g. a mirror")
    opt("--retry-failed", action="store_true", help="retry clips that failed in an earlier run")
    opt("--no-progress", action="store_true", help="no progress bar")
    internvid.set_defaults(handler=_download_internvid)


def _download_internvid(args: argparse.Namespace) -> int:
    from vtr.download import download_internvid

    metadata = args.metadata
    if metadata is not None and Path(metadata).exists():
        metadata = str(Path(metadata).resolve())  # a path typed on the command line is relative to cwd
    flags = {
        "metadata": metadata,
        "subset": args.subset,
        "split": args.split,
        "count": args.count,
        "min_aesthetic": args.min_aesthetic,
        "min_duration": args.min_duration,
        "max_duration": args.max_duration,
        "workers": args.workers,
        "timeout": args.timeout,
        "out_dir": str(Path(args.out).resolve()) if args.out else None,
        "url_template": args.url_template,
    }
    cfg = _load(args, {f"internvid.{key}": value for key, value in flags.items()}).internvid
    report = download_internvid(cfg, retry_failed=args.retry_failed, progress=not args.no_progress)
    print(report.summary())
    # Dead videos are normal; a run that yields no clip at all is not.
    return 1 if report.selected and not report.done else 0


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------

COMMANDS: list[Callable[[Subparsers], None]] = [_add_download]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vtr", description="vtr: a reproducible research workbench for video-language retrieval."
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in COMMANDS:
        add(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (``vtr`` exits with it)."""
    from vtr.data.internvid import MetadataError

    parser = build_parser()
    args = parser.parse_args(argv)  # a missing subcommand exits with argparse's usage message
    try:
        return args.handler(args)
    except (ConfigError, MetadataError) as err:
        print(f"vtr: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
