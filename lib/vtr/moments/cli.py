"""The ``vtr moments`` command group: moment retrieval from the command line.

    vtr moments eval --preds preds.jsonl --gt highlight_val_release.jsonl --json metrics.json
    vtr moments eval --preds preds.jsonl --gt charades_test_release.jsonl --bootstrap 1000

``eval`` prints the metrics table and, with ``--json``, writes the official evaluator's nested
metrics (``brief`` with ``MR-full-R1@0.5``, ``MR-full-mAP``, ``HL-min-VeryGood-Hit1``, ...; then
``HL-min-*``, ``full``, ``long``, ``middle``, ``short``) plus ``extra`` (and ``intervals`` with
``--bootstrap``) atomically. A predictions file that cannot be scored (a missing or repeated qid, a
window outside its video, a malformed line) is a one-line error naming the qid and line, exit
status 2.

A subcommand is a function that adds its sub-parser to the group and sets ``handler``; adding one
is one line in :data:`SUBCOMMANDS`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from vtr.atomic import write_text
from vtr.data.manifest import ManifestError

Subparsers = Any  # argparse's _SubParsersAction is private


def _add_eval(group: Subparsers) -> None:
    parser = group.add_parser(
        "eval",
        help="score moment predictions with the official QVHighlights / Charades-STA metrics",
        description=(
            "Score a predictions file (QVHighlights submission format: qid, vid, pred_relevant_windows, "
            "optional pred_saliency_scores) against a ground-truth jsonl, as the official QVHighlights "
            "evaluator does; Charades-STA files get R1@0.3/0.5/0.7 and mIoU."
        ),
    )
    opt = parser.add_argument
    opt("--preds", required=True, help="predictions jsonl")
    opt(
        "--gt",
        required=True,
        help="ground-truth jsonl (highlight_val_release.jsonl, charades_test_release.jsonl)",
    )
    opt("--json", dest="json_out", help="write the metrics (official key names) to this file")
    opt(
        "--dataset",
        default="auto",
        choices=["auto", "qvhighlights", "charades-sta"],
        help="metric set; auto: QVHighlights when the ground truth has saliency scores (default)",
    )
    opt("--bootstrap", type=int, default=0, metavar="N", help="add intervals from N resamples of videos")
    opt("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    opt("--alpha", type=float, default=0.05, help="intervals cover 1 - alpha (default 0.05)")
    opt(
        "--allow-overrun",
        action="store_true",
        help="score windows that end after their video as they are (the official evaluator does)",
    )
    parser.set_defaults(handler=_eval)


def _eval(args: argparse.Namespace) -> int:
    from vtr.moments.evaluate import evaluate_files

    if args.bootstrap < 0 or not 0 < args.alpha < 1:
        print("vtr moments eval: error: --bootstrap must be >= 0 and --alpha in (0, 1)", file=sys.stderr)
        return 2
    try:
        metrics = evaluate_files(
            args.preds,
            args.gt,
            dataset=args.dataset,
            n_boot=args.bootstrap,
            seed=args.seed,
            alpha=args.alpha,
            allow_overrun=args.allow_overrun,
        )
    except ManifestError as err:
        print(f"vtr moments eval: error: {err}", file=sys.stderr)
        return 2
    counts = ", ".join(f"{name} {n}" for name, n in metrics.counts.items())
    print(f"queries: {counts}")
    print(metrics.table().to_string(float_format=lambda v: f"{v:.2f}"))
    if args.json_out:
        path = write_text(args.json_out, json.dumps(metrics.to_json(), indent=4) + "\n")
        print(f"wrote {path}")
    return 0


SUBCOMMANDS: list[Callable[[Subparsers], None]] = [_add_eval]


def add_parser(commands: Subparsers) -> None:
    """Add ``vtr moments`` and its subcommands (:data:`SUBCOMMANDS`) to the ``vtr`` command line."""
    moments = commands.add_parser(
        "moments", help="moment retrieval: evaluate predictions", description="Moment retrieval."
    )
    group = moments.add_subparsers(dest="moments_command", metavar="SUBCOMMAND", required=True)
    for add in SUBCOMMANDS:
        add(group)
