"""The ``vtr moments`` command group: moment retrieval from the command line.

    vtr moments eval --preds preds.jsonl --gt highlight_val_release.jsonl --json metrics.json
    vtr moments eval --preds preds.jsonl --gt charades_test_release.jsonl --bootstrap 1000
    vtr moments predict --video long0003.mp4 --query "a red square moves left" --top-k 5
    vtr moments predict --video v.mp4 --query "..." --checkpoint data/runs/moments/span-<key>/model.pt --json out.json
    vtr moments train --profile sample            # or --profile full: QVHighlights

``predict`` prints the best windows of each query (start, end, score) and a summary of the per-clip
saliency; ``--model zero_shot`` (the default without ``--checkpoint``) needs no training and takes
its encoder and clip length from the profile. ``train`` trains the profile's ``moments.models`` on
its moment data (the sample world's long videos, or QVHighlights on the full profile), then writes
predictions and official metrics under ``<data_dir>/runs/moments/``; finished models are reloaded,
an interrupted one resumes.

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


def _add_predict(group: Subparsers) -> None:
    from vtr.cli import _profile_options  # here: vtr.cli imports this module

    parser = group.add_parser(
        "predict",
        parents=[_profile_options()],
        help="find the moments of a video that match a text query",
        description="Print the best windows of each query in a video and a summary of the per-clip saliency.",
    )
    opt = parser.add_argument
    opt("--video", required=True, help="video file")
    opt("--query", required=True, action="append", help="text query (repeatable)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--checkpoint", help="a trained model (model.pt from vtr moments train)")
    source.add_argument("--model", choices=["zero_shot"], help="the untrained baseline (default)")
    opt("--top-k", type=int, help="windows per query (default: the profile's moments.top_k)")
    opt("--json", dest="json_out", help="also write windows and saliency to this file")
    opt("--device", help="auto | cpu | cuda | mps (default: the profile's)")
    parser.set_defaults(handler=_predict)


def _predictor(args: argparse.Namespace, cfg: Any) -> Any:
    from vtr.experiments.moments.train import zero_shot_predictor
    from vtr.models.encoders import load_encoder
    from vtr.moments.predictor import MomentPredictor

    device = args.device or cfg.device
    if args.checkpoint:
        return MomentPredictor.from_checkpoint(args.checkpoint, device=device)
    return zero_shot_predictor(cfg, load_encoder(cfg, device=device))


def describe(result: Any) -> list[str]:
    """Printable lines of a :class:`~vtr.moments.predictor.MomentResult`: windows, then saliency."""
    lines = [f"query: {result.query}"]
    for rank, (start, end, score) in enumerate(result.windows, 1):
        lines.append(f"  {rank:2d}. {start:7.2f} - {end:7.2f} s   score {score:.4f}")
    sal = result.saliency
    peak = int(sal.argmax())
    lines.append(
        f"  saliency: {len(sal)} clips of {result.clip_len:g} s, peak {sal[peak]:.4f} at "
        f"{peak * result.clip_len:g}-{(peak + 1) * result.clip_len:g} s, mean {sal.mean():.4f}"
    )
    return lines


def _predict(args: argparse.Namespace) -> int:
    from pathlib import Path

    from vtr.config import ConfigError
    from vtr.moments.features import VideoTooShortError

    if not Path(args.video).is_file():
        print(f"vtr moments predict: error: {args.video}: no such video file", file=sys.stderr)
        return 2
    try:
        from vtr.cli import _load

        cfg = _load(args, {})
        top_k = args.top_k or cfg.moments.top_k
        predictor = _predictor(args, cfg)
        video = predictor.encode_video(args.video)
        results = [predictor.predict(query, video, top_k=top_k) for query in args.query]
    except (ConfigError, VideoTooShortError, ValueError, FileNotFoundError) as err:
        print(f"vtr moments predict: error: {err}", file=sys.stderr)
        return 2
    print(f"video: {args.video} ({video.duration:.2f} s, model {predictor.model_name})")
    for result in results:
        print("\n".join(describe(result)))
    if args.json_out:
        payload = [
            {"query": r.query, "pred_relevant_windows": [list(w) for w in r.windows],
             "saliency": [float(v) for v in r.saliency], "clip_len": r.clip_len}
            for r in results
        ]  # fmt: skip
        print(f"wrote {write_text(args.json_out, json.dumps(payload, indent=2) + chr(10))}")
    return 0


def _add_train(group: Subparsers) -> None:
    from vtr.cli import _profile_options

    parser = group.add_parser(
        "train",
        parents=[_profile_options()],
        help="train the profile's moment models, then predict and score its test queries",
        description=(
            "Train moments.models on the profile's moment data (sample: the world's long videos; "
            "full: QVHighlights), then write <data_dir>/runs/moments/test/<model>_preds.jsonl and "
            "_metrics.json (official key names). Finished models are reloaded; an interrupted one resumes."
        ),
    )
    parser.add_argument("--device", help="auto | cpu | cuda | mps (default: the profile's)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(handler=_train)


def _train(args: argparse.Namespace) -> int:
    from vtr.cli import _load
    from vtr.config import ConfigError
    from vtr.experiments.moments.evaluate import comparison_table
    from vtr.experiments.moments.pipeline import run_moments

    try:
        cfg = _load(args, {})
        experiment = run_moments(cfg, device=args.device, progress=not args.no_progress)
    except (ConfigError, FileNotFoundError, ValueError) as err:
        print(f"vtr moments train: error: {err}", file=sys.stderr)
        return 2
    for vid, why in experiment.data.skipped.items():
        print(f"skipped video {vid}: {why}", file=sys.stderr)
    print(f"data: {experiment.data.source}: {experiment.data.summary()}")
    print(comparison_table(experiment.runs).to_string(float_format=lambda v: f"{v:.2f}"))
    for name, path in experiment.written.items():
        print(f"{name}: wrote {path} and {path.with_name(f'{name}_preds.jsonl')}")
    return 0


SUBCOMMANDS: list[Callable[[Subparsers], None]] = [_add_eval, _add_predict, _add_train]


def add_parser(commands: Subparsers) -> None:
    """Add ``vtr moments`` and its subcommands (:data:`SUBCOMMANDS`) to the ``vtr`` command line."""
    moments = commands.add_parser(
        "moments", help="moment retrieval: predict, train, evaluate", description="Moment retrieval."
    )
    group = moments.add_subparsers(dest="moments_command", metavar="SUBCOMMAND", required=True)
    for add in SUBCOMMANDS:
        add(group)
