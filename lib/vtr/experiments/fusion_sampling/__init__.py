"""Notebook 03, fusion transformer x frame sampling x loss: which differences are real?

Seed 003's second grid: the fusion scorer over every sampling strategy (uniform, mean, keyframes,
weighted, dropout, ...) under InfoNCE and H-NAC, over seeds, trained a fixed number of epochs on
frozen features (:mod:`vtr.finetune`) and scored on held-out clips. The stages, each importable
alone, in the order the notebook runs them:

* :mod:`~vtr.experiments.fusion_sampling.data`: features per strategy (captions shared) and the planned runs;
* :mod:`~vtr.experiments.fusion_sampling.train`: the grid, trained or reloaded through :func:`vtr.train.fit`;
* :mod:`~vtr.experiments.fusion_sampling.evaluate`: seed 003's table, held-out tables, comparisons, interaction;
* :mod:`~vtr.experiments.fusion_sampling.figures`: the heatmaps;
* :mod:`~vtr.experiments.fusion_sampling.report`: the findings as sentences built from the numbers, the headline.

    from vtr.experiments.fusion_sampling import data, evaluate, report, train

    plan = data.plan(cfg, encoder)
    grid = train.run_grid(cfg, plan, encoder)
    table = evaluate.with_loss_at_epoch(grid, plan.epochs)
    evaluate.seed003_table(table, cfg.finetune.strategies)
"""
