"""Notebook 05, MSR-VTT recall tables: zero-shot, seed 002's recipe and temporal heads, with breakdowns.

The stages, each importable alone, in the order the notebook runs them:

* :mod:`~vtr.experiments.msrvtt_recall.data`: the splits as frozen features (:class:`SplitData`);
* the models: :class:`vtr.models.projection.TextProjection` (seed 002) and the temporal heads of
  :mod:`vtr.models.temporal`, with the loss :func:`vtr.losses.hard_negative_info_nce`;
* :mod:`~vtr.experiments.msrvtt_recall.train`: training on frozen features through :func:`vtr.train.fit`;
* :mod:`~vtr.experiments.msrvtt_recall.evaluate`: every row scored by :mod:`vtr.evaluation`;
* :mod:`~vtr.experiments.msrvtt_recall.tables` and :mod:`~vtr.experiments.msrvtt_recall.figures`.

    from vtr.experiments.msrvtt_recall import data, evaluate, tables

    test = data.load_split(cfg, cfg.msrvtt_recall.test_split, encoder)    # 1k-A: 1,000 videos, 1,000 queries
    train = data.load_split(cfg, cfg.msrvtt_recall.train_split, encoder)  # 9k: 9,000 videos, 180,000 captions
    rows = evaluate.compute_rows(cfg, train, test)                        # {"zero-shot": Row, ...}
    tables.recall_table(rows)                                             # t2v / v2t R@1/5/10, MedR, MeanR, CIs, DSL

Data: the annotations are read by :func:`vtr.data.msrvtt.load_msrvtt` from the folders of
:func:`vtr.data.msrvtt.msrvtt_dirs` (real MSR-VTT, or the sample world's MSR-VTT-format folder), so both profiles
go through the same loader. Video features are the frozen encoder's per-frame embeddings from the
shared cache (:func:`vtr.embeddings.embed_profile_videos`), or pre-extracted features (an array plus
its video ids, as seed 002 used) validated against the annotation ids. Captions are embedded once
through the text cache; every trained row works on these frozen features, so training takes seconds.

Rows (each scored in both directions with bootstrap intervals, and with dual-softmax re-scoring in
separate ``dsl_*`` columns):

* ``zero-shot``: mean-pooled frame embeddings against the caption embeddings.
* ``seed 002``: seed 002's recipe, an MLP projection of the frozen text embeddings trained with
  InfoNCE at temperature 0.07 on the positive and the ``hard_negatives`` hardest in-batch negatives of
  each query (:func:`vtr.losses.hard_negative_info_nce`). When text and video widths agree the projection is
  residual and starts as the identity, so training starts from the zero-shot row.
* ``<kind> head``: a temporal head (:func:`vtr.models.temporal.create_temporal_head`) over the frame
  embeddings, trained with InfoNCE; ``mean`` (CLIP4Clip's meanP) vs ``seqtransf`` (seqTransf).

Model selection uses a held-out part of the training split (``val_fraction``), never the test set.

Statistics: intervals resample test videos with all their captions, or hard-pair groups where the
sample world records them (:func:`~vtr.experiments.msrvtt_recall.data.sample_world_pairs`); there the pair accuracy (share of captions
scoring their own clip above its partner, exact interval) sits beside R@K. :func:`~vtr.experiments.msrvtt_recall.tables.gains_table` tests
every row against zero-shot (paired clustered bootstrap for R@1, exact McNemar for pair accuracy),
Holm–Bonferroni corrected per family. v2t uses the CLIP4Clip rule; multi-caption tables say so.
"""
