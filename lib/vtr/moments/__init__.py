"""Moment retrieval: find the windows of a video that match a text query (QVHighlights, Charades-STA).

:mod:`vtr.moments.features` cuts a video into clips and embeds them (and a query's tokens);
:mod:`vtr.moments.models` holds the zero-shot baseline, seed 004's temporal-attention model and a
Moment-DETR-style span predictor; :mod:`vtr.moments.training` trains them with :func:`vtr.train.fit`;
:mod:`vtr.moments.predictor` is the one predictor API (``encode_video`` / ``predict``);
:mod:`vtr.moments.evaluate` scores predictions exactly as the official QVHighlights evaluator does
(plus Charades-STA's R1 and mIoU, and bootstrap intervals over videos); :mod:`vtr.moments.cli` is the
``vtr moments`` command group. The annotation and prediction files are read by :mod:`vtr.data.moments`.
"""
