"""Notebook 07 (moment retrieval) in stages; ``vtr moments train`` runs the same stages.

* :mod:`~vtr.experiments.moments.data` — the profile's moment queries (the sample world's long videos,
  or QVHighlights) as :class:`~vtr.moments.training.MomentSample` per split, features cached;
* :mod:`~vtr.experiments.moments.train` — the profile's models (``moments.models``), trained with
  :func:`vtr.train.fit` and saved as :class:`~vtr.moments.predictor.MomentPredictor` checkpoints;
* :mod:`~vtr.experiments.moments.evaluate` — predictions of every model with the official metrics,
  bootstrap intervals over videos and Holm-corrected paired differences against zero-shot;
* :mod:`~vtr.experiments.moments.figures` — timelines of ground truth against predicted windows with
  the saliency curves, and failure cases.
"""
