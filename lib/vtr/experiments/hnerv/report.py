"""Stage 8 of the HNeRV study: what the numbers say, and the notebook's metrics file.

Every sentence is computed from the study's numbers (nothing hard-coded); :func:`report_metrics`
builds the JSON the report index and the README table read.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from vtr.experiments.hnerv.evaluate import RELEVANT_FRACTION, SearchResult
from vtr.experiments.hnerv.study import RunResult

if TYPE_CHECKING:
    from vtr.anchors import Anchor
    from vtr.experiments.hnerv.study import Study


def _content_verdict(better_pixels: bool, better_embeddings: bool) -> str:
    return {
        (True, True): "better pixels and better CLIP embeddings on unseen frames",
        (True, False): "better pixels but worse CLIP embeddings on unseen frames",
        (False, True): "worse pixels but better CLIP embeddings on unseen frames",
        (False, False): "worse pixels and worse CLIP embeddings on unseen frames",
    }[(better_pixels, better_embeddings)]


def conclusions(table: pd.DataFrame, checks: dict[str, float | bool], main: str) -> list[str]:
    """Sentences computed from the study table and the main run's checks; nothing hard-coded.

    ``table`` is :func:`study_table`; ``main`` the name of the main run.
    """
    lines = []
    coords = table[table.kind == "coords"]
    main_row = table.set_index("run").loc[main]
    lines.append(
        f"Memorisation: {main} reaches {main_row.train_psnr:.1f} dB on training frames and "
        f"{main_row.heldout_psnr:.1f} dB on held-out frames, a gap of {main_row.gap_psnr:.1f} dB "
        f"(seed 000 reported about 15 dB)."
    )
    sizes = coords[coords.split == main_row.split].sort_values("stored")
    if len(sizes) > 1:
        first, last = sizes.iloc[0], sizes.iloc[-1]
        d_train, d_held = last.train_psnr - first.train_psnr, last.heldout_psnr - first.heldout_psnr
        widen = d_train - d_held
        if widen <= 0:
            verdict = "held-out frames gain at least as much as training frames from extra capacity"
        elif d_held >= 0.5 * d_train:
            verdict = (
                f"most of the gain carries over to held-out frames, but the gap widens by {widen:.1f} dB"
            )
        else:
            verdict = (
                f"extra capacity mostly memorises the training frames (the gap widens by {widen:.1f} dB)"
            )
        lines.append(
            f"Capacity: from {first['size']} ({first.stored:,} parameters) to {last['size']} ({last.stored:,}), "
            f"train PSNR changes by {d_train:+.1f} dB and held-out PSNR by {d_held:+.1f} dB: {verdict}."
        )
    splits = coords[coords["size"] == main_row["size"]].sort_values("split")
    if len(splits) > 1:
        parts = ", ".join(
            f"{s.split}: {s.train_psnr:.1f} / {s.heldout_psnr:.1f} dB" for s in splits.itertuples()
        )
        lines.append(f"Splits (train / held-out PSNR at {main_row['size']}): {parts}.")
    content = table[
        (table.kind == "content") & (table.split == main_row.split) & (table["size"] == main_row["size"])
    ]
    if len(content):
        c = content.iloc[0]
        better = c.heldout_psnr - main_row.heldout_psnr
        ratio = c.stored / main_row.stored
        line = (
            f"Content embeddings (HNeRV) vs coordinates at {main_row['size']}: the content model stores "
            f"{c.stored:,} values ({c.weights:,} weights + {c.embeddings:,} embedding values of its training "
            f"frames), {ratio:.1f}x the coordinate model's {main_row.stored:,}. With held-out frames' embeddings "
            f"interpolated from the neighbouring training frames (it never reads their pixels), held-out PSNR is "
            f"{c.heldout_psnr:.1f} vs {main_row.heldout_psnr:.1f} dB ({better:+.1f} dB), held-out cosine "
            f"{c.heldout_cosine:.3f} vs {main_row.heldout_cosine:.3f}: interpolated content embeddings give "
            + _content_verdict(better > 0, c.heldout_cosine > main_row.heldout_cosine)
            + f" than interpolated coordinates, storing {ratio:.1f}x as many values."
        )
        if "heldout_psnr_own_pixels" in c and not pd.isna(c.heldout_psnr_own_pixels):
            line += (
                f" Reading the held-out frames' own pixels, as an autoencoder, it reaches "
                f"{c.heldout_psnr_own_pixels:.1f} dB: that measures the encoder, not memory of unseen frames."
            )
        lines.append(line)
    passed = [k.removeprefix("pass_") for k, v in checks.items() if k.startswith("pass_") and v]
    failed = [k.removeprefix("pass_") for k, v in checks.items() if k.startswith("pass_") and not v]
    lines.append(
        f"Embeddings: matched cosine {checks['matched_cosine']:.3f} vs {checks['mismatched_cosine']:.3f} for "
        f"mismatched patches; variance ratio {checks['variance_ratio']:.2f}; checks passed: "
        f"{', '.join(passed) or 'none'}; failed: {', '.join(failed) or 'none'}."
    )
    return lines


def report_metrics(
    results: Sequence[RunResult], checks: dict[str, float | bool], search: SearchResult | None = None
) -> dict[str, Any]:
    """The notebook's metrics file: per run its summary and size, the main run's checks, search
    agreement. Missing values (no held-out frames) become None, so the JSON stays valid."""

    def clean(value: Any) -> Any:
        if isinstance(value, float | np.floating) and not math.isfinite(value):
            return None
        return value.item() if isinstance(value, np.generic) else value

    out: dict[str, Any] = {
        "runs": {r.spec.name: {k: clean(v) for k, v in r.row().items() if k != "run"} for r in results},
        "checks": {k: clean(v) for k, v in checks.items()},
    }
    if search is not None:
        out["search"] = {
            row["query"]: {k: clean(v) for k, v in row.items() if k != "query"}
            for row in search.summary.to_dict(orient="records")
        }
    return out


def search_conclusion(search: SearchResult, k: int) -> str:
    """One sentence on text search: the share of the predicted top ``k`` among the ground truth's top
    :data:`RELEVANT_FRACTION`, the best query, and the exact top ``k`` recovered."""
    summary = search.summary
    precision, overlap = summary[f"precision@{k}"], summary[f"overlap@{k}"]
    best = summary.loc[precision.idxmax()]
    return (
        f"Text search: over {len(summary)} queries, {precision.mean():.0%} of the predicted top {k} "
        f"patches are among the ground truth's top {RELEVANT_FRACTION:.0%} (best: '{best['query']}', "
        f"{precision.max():.0%}); the exact ground-truth top {k} is recovered at {overlap.mean():.0%}."
    )


def published_comparison(study: Study, published: Anchor, epochs: int) -> list[str]:
    """The HNeRV paper's bunny figure with its source, and ours beside it: the
    :meth:`~vtr.experiments.hnerv.study.Study.paper_reference` run's PSNR on its training frames."""
    reference = study.paper_reference()
    ours = reference.evaluation.summary()["train_psnr"]
    stored = reference.stored
    height, width = study.data.frames.shape[1:3]
    return [
        f"HNeRV paper, bunny, {published.system}: {published.metrics['psnr']:.2f} dB",
        f"  source: {published.source}",
        f"vtr {reference.spec.name} ({stored['weights']:,} weights + {stored['embeddings']:,} embedding values "
        f"= {stored['stored']:,} stored, {epochs} epochs, {height}x{width}): {ours:.2f} dB on its training frames",
    ]


def headline(results: Sequence[RunResult]) -> list[str]:
    """The metrics the report index shows for notebook 04: the main run, the paper's figure, and
    each run's train and held-out PSNR."""
    keys = ["main_run", "published_bunny_psnr"]
    return keys + [f"runs.{r.spec.name}.{k}" for r in results for k in ("train_psnr", "heldout_psnr")]
