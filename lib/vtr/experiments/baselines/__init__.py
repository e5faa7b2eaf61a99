"""Notebook 01, zero-shot baselines: a frozen CLIP with mean-pooled frames on held-out clips.

The stages, each importable alone, in the order the notebook runs them:

* :mod:`~vtr.experiments.baselines.data`: the test sets (the profile's test split, MSR-VTT 1k-A when configured);
* :mod:`~vtr.experiments.baselines.model`: the frozen encoder and what vtr-tiny learnt in pretraining;
* :mod:`~vtr.experiments.baselines.evaluate`: zero-shot runs scored by :mod:`vtr.evaluation`, the
  strategy x frame-count sweep and its Holm-corrected differences, the metrics the notebook saves;
* :mod:`~vtr.experiments.baselines.figures`: its figures;
* :mod:`~vtr.experiments.baselines.report`: the findings as sentences built from the numbers, the headline.

    from vtr.experiments.baselines import data, evaluate, report

    clips = data.load_test_sets(cfg)["test"]
    run = evaluate.zero_shot_run(encoder, clips, n_frames=8, strategy="uniform", size=64)
    run.metrics["t2v_R@1"], run.outcomes().head()
    sweep = evaluate.profile_sweep(encoder, clips, ["uniform", "mean"], [4, 8], ("uniform", 8), 64)
    report.describe_sweep(sweep)      # every setting vs the reference, Holm-corrected, in sentences
"""
