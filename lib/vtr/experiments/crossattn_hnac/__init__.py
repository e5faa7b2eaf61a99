"""Notebook 02, cross-modal attention and H-NAC: do seed 003's gains survive held-out tests?

{dual encoder, cross-attention} x {InfoNCE, H-NAC} x seeds, heads trained on frozen features
(:mod:`vtr.finetune`, the reusable library both 02 and 03 train with), scored on held-out clips.
The stages, each importable alone, in the order the notebook runs them:

* :mod:`~vtr.experiments.crossattn_hnac.data`: the features of each split and the planned runs;
* :mod:`~vtr.experiments.crossattn_hnac.model`: the starting points (frozen mean pooling, the untrained dual scorer);
* :mod:`~vtr.experiments.crossattn_hnac.train`: the grid, trained or reloaded through :func:`vtr.train.fit`;
* :mod:`~vtr.experiments.crossattn_hnac.evaluate`: tables, comparisons (Holm-corrected), calibration effects;
* :mod:`~vtr.experiments.crossattn_hnac.figures`: the training curves;
* :mod:`~vtr.experiments.crossattn_hnac.report`: the findings as sentences built from the numbers, the headline.

    from vtr.experiments.crossattn_hnac import data, evaluate, model, report, train

    plan = data.plan(cfg, encoder)
    _, _, test = plan.splits[cfg.video.strategy]
    start = model.starting_points(cfg, encoder, test)
    grid = train.run_grid(cfg, plan, encoder)
    diffs = evaluate.differences(grid, evaluate.comparisons(cfg.finetune), cfg.finetune, cfg.seed)
    report.verdicts(diffs)["verdict"]
"""
