"""Time of the QVHighlights evaluator (vtr.moments.evaluate) on the 1,550 val queries; prints a markdown table.

    .venv/bin/python benchmarks/moments_eval.py [--repeats 3] [--bootstrap 1000]

Input: ``../shared/data/qvhighlights`` (``$VTR_SHARED_DATA``): the Moment-DETR sample predictions
(``sample_val_preds.jsonl``, 10 windows and 75 saliency scores per query) against
``highlight_val_release.jsonl``. Stages, each the median of ``--repeats`` runs after a warm-up, in
CPU time of this process (``time.process_time``; wall time beside it, noisy on a shared machine):

* *read*: both files read and validated (``load_*_located``);
* *check*: :func:`vtr.moments.evaluate.check_predictions`;
* *metrics*: :func:`vtr.moments.evaluate.evaluate_qvhighlights` (check, MR on full/short/middle/long,
  HL at three levels, the extra metrics), the official numbers as point estimates;
* *metrics + intervals*: the same with ``--bootstrap`` resamples of videos.

The official script (Moment-DETR's ``standalone_eval/eval.py``) is not installed here and cannot be
fetched (no internet beyond package registries), so there is no side-by-side timing; the table says so.
It computes per-query AP in an 8-process pool, so a comparison would also need the same core count.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys

from vtr.data.moments import load_moments_located, load_predictions_located
from vtr.moments.evaluate import check_predictions, evaluate_qvhighlights
from vtr.paths import shared_data_dir
from vtr.runtime import median_cpu_and_wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per stage (after one warm-up)")
    parser.add_argument("--bootstrap", type=int, default=1000, help="resamples for the intervals stage")
    args = parser.parse_args()
    folder = shared_data_dir() / "qvhighlights"
    preds_path, gt_path = folder / "sample_val_preds.jsonl", folder / "highlight_val_release.jsonl"
    if not preds_path.is_file() or not gt_path.is_file():
        print(f"QVHighlights files not found in {folder} (set VTR_SHARED_DATA)", file=sys.stderr)
        return 2
    gt_located, preds_located = load_moments_located(gt_path), load_predictions_located(preds_path)
    gt, preds = [q for _, q in gt_located], [p for _, p in preds_located]

    def read() -> None:
        load_moments_located(gt_path)
        load_predictions_located(preds_path)

    stages = {
        "read": read,
        "check": lambda: check_predictions(preds, gt, allow_overrun=True),
        "metrics": lambda: evaluate_qvhighlights(preds, gt, allow_overrun=True),
        f"metrics + intervals ({args.bootstrap} resamples)": lambda: evaluate_qvhighlights(
            preds, gt, allow_overrun=True, n_boot=args.bootstrap
        ),
    }
    print(
        f"{len(gt)} queries, {sum(len(p.windows) for p in preds)} predicted windows; "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; "
        f"median of {args.repeats} after a warm-up\n"
    )
    print("| stage | CPU s | wall s | queries / CPU s |")
    print("|---|---|---|---|")
    for name, fn in stages.items():
        cpu, wall = median_cpu_and_wall(fn, args.repeats)
        print(f"| {name} | {cpu:.2f} | {wall:.2f} | {len(gt) / cpu:,.0f} |")
    print(
        "| official standalone_eval/eval.py | not measured | not measured | not available offline: "
        "the Moment-DETR script is not installed here and cannot be downloaded |"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
