"""Stage 6 of notebook 02: what was found, in sentences built from the numbers, and the headline keys.

The comparison verdicts are :func:`vtr.finetune.describe_differences` (a difference is a gain or a
loss only when its Holm-adjusted p is below 0.05) and the calibration sentences
:func:`vtr.finetune.describe_effects` (whether each interval excludes zero); :func:`describe_findings`
adds which configuration came first, against the starting points.
"""

from __future__ import annotations

from typing import Any

from vtr.calibration import Effect
from vtr.experiments.crossattn_hnac.evaluate import Differences, mean_r1
from vtr.experiments.crossattn_hnac.model import StartingPoints
from vtr.finetune import GridResult, describe_differences, describe_effects


def verdicts(diffs: Differences) -> dict[str, str]:
    """``verdict`` (t2v R@1) and ``pair_verdict`` (pair accuracy, empty without hard pairs)."""
    return {"verdict": describe_differences(diffs.table),
            "pair_verdict": describe_differences(diffs.table, "pair_acc") if diffs.has_pairs else ""}  # fmt: skip


def describe_calibration(effects: dict[str, Effect]) -> str:
    """One sentence per calibration effect, saying whether its interval excludes zero."""
    return describe_effects(effects)


def describe_findings(grid: GridResult, start: StartingPoints, effects: dict[str, Effect]) -> str:
    """The configuration with the highest mean test R@1 against both starting points, the one with the
    lowest training loss (seed 003's measure), and the best one's pair-accuracy gain over mean pooling."""
    r1 = mean_r1(grid)
    best, n_seeds = r1.idxmax(), grid.table["seed"].nunique()
    train = grid.table.groupby(["scorer", "loss"])["train_loss"].mean()
    sentences = [
        f"Highest mean held-out t2v R@1 over {n_seeds} seed{'s' * (n_seeds != 1)}: {'/'.join(best)}, {r1.max():.1f}% "
        f"(frozen mean pooling {start.baseline.metrics['t2v_R@1']:.1f}%, untrained dual "
        f"{start.untrained.metrics['t2v_R@1']:.1f}%).",
        f"Lowest training loss (seed 003's measure): {'/'.join(train.idxmin())} ({train.min():.4f})"
        + (", the same configuration." if train.idxmin() == best else f"; it reaches {r1[train.idxmin()]:.1f}% R@1."),
    ]
    name = f"{best[0]}/{best[1]} vs frozen mean pooling, pair accuracy"
    if name in effects:
        e = effects[name]
        verdict = "its interval excludes zero" if e.excludes_zero else "its interval includes zero"
        sentences.append(f"Its pair accuracy over frozen mean pooling: {e.diff:+.1f} points, 95% CI "
                         f"[{e.low:+.1f}, {e.high:+.1f}]; {verdict}.")  # fmt: skip
    return " ".join(sentences)


def headline(metrics: dict[str, Any]) -> list[str]:
    """The keys the reports index shows first for notebook 02, in order."""
    return ["baseline.t2v_R@1", *(f"mean_t2v_R@1.{k}" for k in metrics["mean_t2v_R@1"]), "n_real_differences_R@1",
            "baseline.pair_acc", "untrained.pair_acc", *(f"calibration.{name}.diff" for name in metrics["calibration"]),
            "verdict"]  # fmt: skip
