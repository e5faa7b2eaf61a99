"""Stage 5 of notebook 01: what was found, in sentences built from the numbers, and the headline keys.

Nothing here is typed by hand: every figure in a sentence is read from a run's metrics or from the
Holm-corrected sweep differences, and a difference is called real only when its adjusted p-value is
below ``alpha``.
"""

from __future__ import annotations

from vtr.experiments.baselines.evaluate import Sweep, ZeroShotRun, partner_confusion

#: The keys the reports index shows first for notebook 01, in this order (those absent are skipped there).
HEADLINE = (
    "tiny_test_attr_mean", "test_t2v_R@1", "test_t2v_R@1_lo", "test_t2v_R@1_hi", "test_t2v_R@5",
    "test_t2v_MedR", "test_v2t_R@1", "test_pair_acc", "test_pair_acc_lo", "test_pair_acc_hi",
    "test_partner_confusion", "sweep_n_real_R@1_differences", "msrvtt_1k_t2v_R@1", "msrvtt_1k_t2v_MedR",
)  # fmt: skip


def describe_run(run: ZeroShotRun) -> str:
    """Recall with its interval, and with hard pairs the pair accuracy against the order-blind 50%."""
    m = run.metrics
    sentences = [
        f"On {run.clips.name} {run.clips.split} ({m['n_queries']:.0f} queries, {m['n_videos']:.0f} videos), "
        f"zero-shot text→video R@1 is {m['t2v_R@1']:.1f}% (95% CI [{m['t2v_R@1_lo']:.1f}, {m['t2v_R@1_hi']:.1f}]), "
        f"R@5 {m['t2v_R@5']:.1f}%, median rank {m['t2v_MedR']:.0f}."
    ]
    if run.errors:
        sentences.append(f"{len(run.errors)} videos failed to decode and are left out with their captions.")
    if "pair_acc" in m:
        low, high = m["pair_acc_lo"], m["pair_acc_hi"]
        if low > 50:
            verdict = "its interval lies above 50%, so the embedding reads some temporal order"
        elif high < 50:
            verdict = "its interval lies below 50%: worse than an order-blind model"
        else:
            verdict = "its interval includes 50%: no better than an order-blind model"
        sentences.append(f"Pair accuracy on the {m['pair_n']:.0f} hard-pair captions is {m['pair_acc']:.1f}% "
                         f"(exact 95% CI [{low:.1f}, {high:.1f}]); {verdict}.")  # fmt: skip
    outcomes = run.outcomes()
    if outcomes["top1_is_partner"].any():
        sentences.append(f"{100 * partner_confusion(outcomes):.0f}% of the missed queries rank their clip's "
                         "hard-pair partner first: the same objects with the opposite motion or order.")  # fmt: skip
    return " ".join(sentences)


def describe_sweep(sweep: Sweep, alpha: float = 0.05) -> str:
    """How many settings differ from the reference after the Holm correction, each real difference with
    its interval, and the same for pair accuracy."""
    strategy, n_frames = sweep.reference
    base = sweep.runs[sweep.reference].metrics["t2v_R@1"]
    diffs = sweep.differences
    sentences = [f"Against the profile's setting {strategy}/{n_frames} (t2v R@1 {base:.1f}%), {sweep.n_real} of "
                 f"{len(diffs)} settings differ in R@1 after Holm–Bonferroni correction "
                 f"(family-wise error {alpha:.0%})."]  # fmt: skip
    real = diffs[diffs["real"]] if len(diffs) else diffs
    for _, row in real.iterrows():
        kind = "a real gain" if row["dR@1"] > 0 else "a real loss"
        sentences.append(f"{row['strategy']}/{row['n_frames']}: R@1 {row['dR@1']:+.1f} points, 95% CI "
                         f"[{row['low']:+.1f}, {row['high']:+.1f}], Holm-adjusted p = {row['p_holm']:.3g}, {kind}.")  # fmt: skip
    if len(diffs) and "pair_real" in diffs:
        n_pair = int(diffs["pair_real"].sum())
        sentences.append(f"{n_pair} of {len(diffs)} pair-accuracy differences are real (exact McNemar, Holm).")
        for row in diffs[diffs["pair_real"]].itertuples():
            sentences.append(f"{row.strategy}/{row.n_frames}: pair accuracy {row.d_pair_acc:+.1f} points, "
                             f"Holm-adjusted p = {row.pair_p_holm:.3g}.")  # fmt: skip
    return " ".join(sentences)
