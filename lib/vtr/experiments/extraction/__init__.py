"""Notebook 06 (batch extraction and search) in stages.

* :mod:`~vtr.experiments.extraction.data` — the sample world's clips and the real videos extracted with
  :func:`vtr.extract.extract` into every output format, a look at each format, and a split's clips as
  decoded frames and caption queries;
* :mod:`~vtr.experiments.extraction.model` — the ViT of the TempMe and STOP rows (``extract.vit_arch``,
  self-pretrained ``vtr-tiny-vit`` on the sample profile) and the label of its weights;
* :mod:`~vtr.experiments.extraction.train` — STOP-style prompts (and LoRA) on the frozen ViT, trained with
  :func:`vtr.train.fit` on the world's training clips, early-stopped on the validation clips' R@1;
* :mod:`~vtr.experiments.extraction.evaluate` — held-out text-to-video R@1 with clip-level bootstrap
  intervals and paired differences: TempMe merging on against off (with tokens and encode time), STOP
  prompts against the frozen ViT; the Ray engine against the local one;
* :mod:`~vtr.experiments.extraction.figures` — search results with the best frame's thumbnail, and the
  comparisons with their intervals.
"""
