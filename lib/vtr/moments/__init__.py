"""Moment retrieval: find the windows of a video that match a text query (QVHighlights, Charades-STA).

:mod:`vtr.moments.evaluate` scores predictions exactly as the official QVHighlights evaluator does
(plus Charades-STA's R1 and mIoU, and bootstrap intervals over videos); :mod:`vtr.moments.cli` is the
``vtr moments`` command group. The annotation and prediction files are read by
:mod:`vtr.data.moments`.
"""
