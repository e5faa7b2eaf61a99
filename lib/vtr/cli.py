"""The ``vtr`` command line: ``vtr <command> [<subcommand>] [options]``.

    vtr download internvid --profile full --count 200 --workers 8
    vtr download internvid --metadata internvid_rows.jsonl --out data/internvid --retry-failed
    vtr train --profile full --nproc 4      # notebooks 02-03's grids on 4 GPUs (torchrun, DDP)
    vtr config diff full                    # what the full profile changes relative to sample

Each command registers itself in :data:`COMMANDS` (a function that adds its sub-parser and sets
``handler``); a handler takes the parsed arguments and returns the exit status. Options default
to the profile (``--profile``, ``--set section.key=value``); flags given explicitly win.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from vtr import config_command, search_cli
from vtr.config import ConfigError, load_profile, parse_override
from vtr.extract.cli import add_parser as _add_extract
from vtr.moments import cli as moments_cli
from vtr.moments import demo as moments_demo
from vtr.report import command as reports_command

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


def _overrides(args: argparse.Namespace, flags: dict[str, Any]) -> dict[str, Any]:
    """The ``--set`` overrides, then the explicit flags (those not None) on top."""
    overrides = dict(parse_override(text) for text in args.overrides)
    overrides.update({key: value for key, value in flags.items() if value is not None})
    return overrides


def _load(args: argparse.Namespace, flags: dict[str, Any]):
    """The profile with ``--set`` overrides, then the explicit flags (those not None) on top."""
    return load_profile(args.profile, overrides=_overrides(args, flags))


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
# vtr train
# --------------------------------------------------------------------------------------------


def _add_train(commands: Subparsers) -> None:
    train = commands.add_parser(
        "train",
        parents=[_profile_options()],
        help="train the notebooks' fine-tuning grids, on several GPUs with --nproc",
        description=(
            "Train the fine-tuning grids of notebooks 02 and 03 exactly as the notebooks would (same runs "
            "folders and run keys, see vtr.experiments.finetune_grids), so the notebooks afterwards reload the finished runs "
            "instead of training. With --nproc N > 1 the command re-runs itself under torchrun "
            "(python -m torch.distributed.run --standalone --nproc_per_node N): one process per GPU, DDP."
        ),
    )
    opt = train.add_argument
    opt(
        "--nproc",
        type=int,
        default=1,
        help="processes (GPUs) to train with; > 1 launches torchrun (default 1)",
    )
    opt(
        "--only",
        action="append",
        metavar="NN[,NN]",
        help="only these notebooks' grids, e.g. 02 (default: all)",
    )
    opt("--no-progress", action="store_true", help="no progress bar")
    train.set_defaults(handler=_train)


def torchrun_command(argv: Sequence[str], nproc: int) -> list[str]:
    """``vtr <argv>`` as torchrun runs it with ``nproc`` processes on this machine; ``argv`` must not
    hold ``--nproc`` again (each process would launch its own torchrun)."""
    return [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc),
        "-m", "vtr.cli", *argv,
    ]  # fmt: skip


def train_argv(
    profile: str, sets: Sequence[str], only: Sequence[int], *, nproc: int = 1, progress: bool = True
) -> list[str]:
    """``vtr train`` arguments: a profile, ``--set`` texts (``key=value``) and notebook numbers. Without
    ``--nproc`` when it is 1: torchrun's own parser would take ``--nproc`` for its ``--nproc-per-node``."""
    argv = ["train", "--profile", profile, *(arg for text in sets for arg in ("--set", text))]
    argv += [arg for number in only for arg in ("--only", f"{number:02d}")]
    argv += [] if progress else ["--no-progress"]
    return argv + (["--nproc", str(nproc)] if nproc != 1 else [])


def _train(args: argparse.Namespace) -> int:
    from vtr.experiments.finetune_grids import GRIDS

    if args.nproc < 1:
        raise ConfigError(f"--nproc must be >= 1, got {args.nproc}")
    cfg = _load(args, {})  # a bad profile fails here, before any process starts
    tokens = [t.strip() for item in args.only or [] for t in item.split(",") if t.strip()]
    if any(not t.split("_", 1)[0].isdigit() for t in tokens):
        raise ConfigError(f"--only {','.join(tokens)}: expected notebook numbers such as 02")
    numbers = sorted({int(t.split("_", 1)[0]) for t in tokens}) if tokens else sorted(GRIDS)
    if set(numbers) - set(GRIDS):
        known = ", ".join(f"{n:02d}" for n in sorted(GRIDS))
        raise ConfigError(f"--only {','.join(tokens)}: only notebooks {known} train a fine-tuning grid")
    if args.nproc > 1 and "LOCAL_RANK" not in os.environ:  # LOCAL_RANK: already one of torchrun's processes
        argv = train_argv(args.profile, args.overrides, numbers, progress=not args.no_progress)
        return subprocess.run(torchrun_command(argv, args.nproc)).returncode
    from vtr.experiments.finetune_grids import train_grids

    results = train_grids(cfg, numbers, progress=not args.no_progress)
    if int(os.environ.get("RANK", "0")) == 0:
        for number, grid in results.items():
            print(f"notebook {number:02d}: {len(grid.table)} runs finished")
    return 0


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------

COMMANDS: list[Callable[[Subparsers], None]] = [
    _add_download,
    _add_train,
    config_command.add_parser,
    reports_command.add_parser,
    _add_extract,
    search_cli.add_parser,
    moments_cli.add_parser,
    moments_demo.add_parser,
]


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
        if getattr(args, "no_progress", False):
            # --no-progress reaches every bar the command's stages draw (the sample world, vtr-tiny's
            # pretraining), not only those it passes ``progress`` to; restored for in-process callers.
            from vtr.progress import PROGRESS_ENV
            from vtr.report.engine import environment

            with environment(**{PROGRESS_ENV: "0"}):
                return args.handler(args)
        return args.handler(args)
    except (ConfigError, MetadataError) as err:
        print(f"vtr: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
