"""``vtr extract VIDEOS --out DIR``: embed every video of a folder or manifest, resuming reruns.

    vtr extract videos/ --out out/                          # parquet shards + metadata.parquet
    vtr extract videos/ --out out/ --format both --consolidated --summary
    vtr extract clips.jsonl --out out/ --engine ray --workers 4 --set model.arch=ViT-B-32
    vtr extract videos/ --out out/ --frames 12 --device cuda
    vtr extract videos/ --out out/ --frames 12 --set model.arch=vtr-tiny-vit --set extract.merge=true  # TempMe

Exit status: 0 when at least one video is done (now or earlier; unreadable videos are listed in
``summary.json`` and on stderr), 1 when none is, 2 for a usage error (an empty folder, an unknown format or engine, an output
folder of another extraction) with a one-line message.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from vtr.extract import ENGINES, FORMAT_ALIASES, FORMATS


def add_parser(commands: Any) -> None:
    """Add ``vtr extract`` to the ``vtr`` command line (see :data:`vtr.cli.COMMANDS`)."""
    from vtr.cli import _profile_options

    parser = commands.add_parser(
        "extract",
        parents=[_profile_options()],
        help="embed every video of a folder or manifest (npy / json / parquet shards), resumable",
        description=(
            "Embed every video of VIDEOS (a folder, searched recursively, or a .jsonl manifest) with the "
            "profile's encoder into --out. Reruns resume: videos done or failed with the same content and "
            "settings are skipped, new videos are added. Unreadable videos are listed in summary.json."
        ),
    )
    opt = parser.add_argument
    opt(
        "videos",
        metavar="VIDEOS",
        help="a folder of videos or a .jsonl manifest ({video, id?, start?, end?})",
    )
    opt("--out", required=True, help="output folder (created; reruns resume there)")
    opt(
        "--format",
        default="parquet",
        help=f"output formats, comma-separated: {', '.join([*FORMATS, *FORMAT_ALIASES])} (default parquet)",
    )
    opt("--consolidated", action="store_true", help="also write consolidated_embeddings.json")
    opt("--summary", action="store_true", help="print the summary (summary.json is always written)")
    opt("--engine", default="local", help=f"{' or '.join(ENGINES)} (default local)")
    opt("--device", help="cpu, cuda, mps or auto (default: the profile's)")
    opt("--frames", type=int, help="frames per video (default: the profile's video.n_frames)")
    opt("--workers", type=int, default=2, help="decoding threads (local) or actors (ray), default 2")
    opt("--retry-failed", action="store_true", help="try videos that failed in an earlier run again")
    opt("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """The handler of ``vtr extract``: returns the exit status."""
    from vtr.cli import _load
    from vtr.data.manifest import ManifestError
    from vtr.extract.api import extract
    from vtr.extract.inputs import InputError
    from vtr.extract.store import ExtractionMismatchError, parse_formats

    try:
        formats = parse_formats(args.format)
        if args.engine not in ENGINES:
            raise ValueError(f"unknown engine {args.engine!r}; known engines: {', '.join(ENGINES)}")
        if args.frames is not None and args.frames < 1:
            raise ValueError(f"--frames must be >= 1, got {args.frames}")
        cfg = _load(args, {"device": args.device, "video.n_frames": args.frames})
        summary = extract(
            cfg,
            args.videos,
            args.out,
            formats=formats,
            consolidated=args.consolidated,
            engine=args.engine,
            workers=args.workers,
            retry_failed=args.retry_failed,
            progress=not args.no_progress,
        )
    except (InputError, ManifestError, ExtractionMismatchError, ValueError) as err:
        print(f"vtr extract: error: {err}", file=sys.stderr)
        return 2
    counts = summary["counts"]
    print(
        f"{counts['total']} videos: {counts['processed']} extracted, {counts['resumed']} done earlier, "
        f"{counts['failed']} failed -> {summary['out']}"
    )
    if args.summary:
        print(json.dumps(summary, indent=2))
    for failure in summary["failures"][:5]:
        print(f"  failed: {failure['reason']}", file=sys.stderr)
    done = counts["processed"] + counts["resumed"]
    return 1 if done == 0 else 0
