"""Published figures that the notebooks print beside vtr's own: one table, each entry with its source.

An anchor is a number somebody else measured under a stated protocol. The notebooks show it next to
the full profile's figure for the same protocol, so a reader can see how far a reproduction lands from
the literature. Nothing here is computed; every value is copied from the source it names.

    from vtr.anchors import anchor, anchors_table

    zs = anchor("msrvtt-1ka-clip-b32-zero-shot")
    zs.metrics["t2v_R@1"], zs.source                        # 31.2, "Portillo-Quintero et al. ..."
    anchors_table(["msrvtt-1ka-clip-b32-zero-shot", "msrvtt-1ka-clip4clip-seqtransf"], direction="t2v")

Metric names follow :mod:`vtr.metrics` (``t2v_R@1``, ``t2v_MedR``, ...), so an anchor and a row of
``vtr.evaluation.evaluate_retrieval`` share keys; other measures use plain names (``psnr``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class Anchor:
    """One published result: what was measured, under which protocol, where it was published."""

    key: str
    system: str
    metrics: Mapping[str, float]
    protocol: str
    source: str
    notebooks: tuple[str, ...] = field(default=())

    @property
    def label(self) -> str:
        """``system`` with the short citation, for a table index."""
        return f"{self.system} [{self.source.split(',')[0]}]"


_ANCHORS: tuple[Anchor, ...] = (
    Anchor(
        key="msrvtt-1ka-clip-b32-zero-shot",
        system="zero-shot CLIP ViT-B/32, 12 mean-pooled frames",
        metrics={"t2v_R@1": 31.2, "t2v_R@5": 53.7, "t2v_R@10": 64.2, "t2v_MedR": 4.0},
        protocol="MSR-VTT 1k-A test (JSFusion split), text to video, one caption per video",
        source="Portillo-Quintero et al., A Straightforward Framework For Video Retrieval Using CLIP, "
        "MCPR 2021 (arXiv:2102.12443); the same figure is CLIP4Clip's zero-shot row",
        notebooks=("01_baselines", "05_msrvtt_recall"),
    ),
    Anchor(
        key="msrvtt-1ka-clip4clip-seqtransf",
        system="CLIP4Clip seqTransf, fine-tuned on Training-9K (ViT-B/32)",
        metrics={"t2v_R@1": 44.5},
        protocol="MSR-VTT 1k-A test (JSFusion split), text to video, trained on the 9k split",
        source="Luo et al., CLIP4Clip: An Empirical Study of CLIP for End to End Video Clip Retrieval, "
        "Neurocomputing 2022 (arXiv:2104.08860)",
        notebooks=("05_msrvtt_recall",),
    ),
    Anchor(
        key="seed-002-baseline",
        system="seed 002 baseline (frozen CLIP)",
        metrics={"t2v_R@1": 15.3, "t2v_R@5": 38.2, "t2v_R@10": 52.1, "t2v_MedR": 12.0, "t2v_MeanR": 45.3},
        protocol="MSR-VTT text to video as seed 002 ran it: pre-extracted ViT-H-14 video features; "
        "its test split and caption protocol are not stated",
        source="seed 002, Video-Text Retrieval with CLIP on MSR-VTT, Results table (a claim, not a paper)",
        notebooks=("05_msrvtt_recall",),
    ),
    Anchor(
        key="seed-002-fine-tuned",
        system="seed 002 fine-tuned (+ projection, InfoNCE, hard negatives)",
        metrics={"t2v_R@1": 22.7, "t2v_R@5": 47.9, "t2v_R@10": 61.5, "t2v_MedR": 8.0, "t2v_MeanR": 32.1},
        protocol="as seed-002-baseline",
        source="seed 002, Video-Text Retrieval with CLIP on MSR-VTT, Results table (a claim, not a paper)",
        notebooks=("05_msrvtt_recall",),
    ),
    Anchor(
        key="hnerv-bunny-1.5m",
        system="HNeRV, 1.5M parameters, 300 epochs",
        metrics={"psnr": 35.57},
        protocol="video regression on Big Buck Bunny (132 frames, 640 x 1280 crop), every frame "
        "trained on (split 1_1_1), PSNR in dB on the training frames; NeRV: 30.87 dB",
        source="Chen et al., HNeRV: A Hybrid Neural Representation for Videos, CVPR 2023 "
        "(arXiv:2304.02633), Table 2",
        notebooks=("04_hnerv",),
    ),
    Anchor(
        key="qvhighlights-val-moment-detr-release",
        system="Moment-DETR, released val predictions (SlowFast + CLIP features)",
        metrics={
            "MR-full-R1@0.5": 53.94,
            "MR-full-R1@0.7": 34.84,
            "HL-min-VeryGood-mAP": 35.65,
            "HL-min-VeryGood-Hit1": 55.55,
        },
        protocol="QVHighlights val (1,550 queries), official evaluator; SlowFast + CLIP features of 2 s clips",
        source="Lei et al., QVHighlights: Detecting Moments and Highlights in Videos via Natural Language Queries, NeurIPS 2021 (arXiv:2107.09609); the release's standalone_eval/sample_val_preds_metrics_raw.json (MR-full-mAP 32.2), re-scored by tests/moments/test_evaluate.py",
        notebooks=("07_moment_retrieval",),
    ),
    Anchor(
        key="qvhighlights-val-moment-detr-clip",
        system="Moment-DETR (CLIP features), lighthouse reproduction",
        metrics={
            "MR-full-R1@0.5": 53.5,
            "MR-full-R1@0.7": 34.1,
            "HL-min-VeryGood-mAP": 35.3,
            "HL-min-VeryGood-Hit1": 54.0,
        },
        protocol="QVHighlights val (1,550 queries), official evaluator; CLIP ViT-B/32 features of 2 s clips",
        source="Nishimura et al., Lighthouse: A User-Friendly Library for Reproducible Video Moment Retrieval and "
        "Highlight Detection, EMNLP 2024 demo; github.com/line/lighthouse markdown/reproduced_results.md "
        "(commit 4d43193), QVHighlights val, CLIP features",
        notebooks=("07_moment_retrieval",),
    ),
    Anchor(
        key="qvhighlights-val-qd-detr-clip",
        system="QD-DETR (CLIP features), lighthouse reproduction",
        metrics={
            "MR-full-R1@0.5": 59.7,
            "MR-full-R1@0.7": 42.3,
            "HL-min-VeryGood-mAP": 38.0,
            "HL-min-VeryGood-Hit1": 59.2,
        },
        protocol="QVHighlights val (1,550 queries), official evaluator; CLIP ViT-B/32 features of 2 s clips",
        source="Nishimura et al., Lighthouse: A User-Friendly Library for Reproducible Video Moment Retrieval and "
        "Highlight Detection, EMNLP 2024 demo; github.com/line/lighthouse markdown/reproduced_results.md "
        "(commit 4d43193), QVHighlights val, CLIP features",
        notebooks=("07_moment_retrieval",),
    ),
    Anchor(
        key="qvhighlights-val-cg-detr-clip",
        system="CG-DETR (CLIP features), lighthouse reproduction",
        metrics={
            "MR-full-R1@0.5": 66.6,
            "MR-full-R1@0.7": 49.9,
            "HL-min-VeryGood-mAP": 39.9,
            "HL-min-VeryGood-Hit1": 64.3,
        },
        protocol="QVHighlights val (1,550 queries), official evaluator; CLIP ViT-B/32 features of 2 s clips",
        source="Nishimura et al., Lighthouse: A User-Friendly Library for Reproducible Video Moment Retrieval and "
        "Highlight Detection, EMNLP 2024 demo; github.com/line/lighthouse markdown/reproduced_results.md "
        "(commit 4d43193), QVHighlights val, CLIP features",
        notebooks=("07_moment_retrieval",),
    ),
)

ANCHORS: Mapping[str, Anchor] = MappingProxyType({a.key: a for a in _ANCHORS})
"""Every anchor by key, read-only."""


def anchor(key: str) -> Anchor:
    """The anchor called ``key``; a ``KeyError`` lists the known keys."""
    try:
        return ANCHORS[key]
    except KeyError:
        raise KeyError(f"no published anchor {key!r}; known: {', '.join(ANCHORS)}") from None


def anchors_table(keys: Sequence[str], direction: str | None = None) -> pd.DataFrame:
    """One row per anchor (index: :attr:`Anchor.label`), one column per metric.

    With ``direction="t2v"`` only that direction's metrics are kept and the prefix is dropped
    (``t2v_R@1`` becomes ``R@1``), to sit beside a table of one direction.
    """
    import pandas as pd

    rows = {}
    for key in keys:
        found = anchor(key)
        values = dict(found.metrics)
        if direction is not None:
            prefix = f"{direction}_"
            values = {k.removeprefix(prefix): v for k, v in values.items() if k.startswith(prefix)}
        rows[found.label] = values
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "published"
    return table
