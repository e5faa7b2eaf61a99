"""Notebook 06's figures: search results with thumbnails, and comparisons with their intervals."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from vtr import video
from vtr.index import VideoIndex


def thumbnail(path: str | Path, time_s: float, size: int = 96) -> np.ndarray:
    """The frame of ``path`` shown at ``time_s`` (the first frame when ``time_s`` is NaN), uint8 (H, W, 3)."""
    info = video.probe(path)
    start = 0.0 if math.isnan(time_s) else float(time_s)
    end = start + 1.0 / (info.fps if info.fps > 0 else 1.0)
    return video.sample_frames(path, 1, "uniform", size, start=start, end=end)[0]


def search_examples(index: VideoIndex, queries: Sequence[str], k: int = 3) -> dict[str, pd.DataFrame]:
    """The top ``k`` videos per text query (:meth:`VideoIndex.search`)."""
    return {query: index.search(query, k=k) for query in queries}


def search_figure(results: dict[str, pd.DataFrame], truth: dict[str, str] | None = None) -> plt.Figure:
    """One row per query: its ranked videos as the best-matching frame, with id, score and frame time;
    a green title marks the clip the query was written for (``truth``: query -> video id)."""
    k = max(len(hits) for hits in results.values())
    fig = plt.figure(figsize=(2.2 * k, 2.7 * len(results)), layout="constrained")
    rows = fig.subfigures(len(results), 1, squeeze=False)[:, 0]
    for subfig, (query, hits) in zip(rows, results.items(), strict=True):
        subfig.suptitle(f"“{query}”", fontsize=9)
        axes = subfig.subplots(1, k, squeeze=False)[0]
        for col, ax in enumerate(axes):
            ax.axis("off")
            if col >= len(hits):
                continue
            hit = hits.iloc[col]
            ax.imshow(thumbnail(hit["video_path"], hit["best_time_s"]))
            at = "" if math.isnan(hit["best_time_s"]) else f" @ {hit['best_time_s']:.2f} s"
            correct = truth is not None and truth.get(query) == hit["video_id"]
            ax.set_title(f"{hit['rank']}. {hit['video_id']}{at}\nscore {hit['score']:.3f}", fontsize=8,
                         color="green" if correct else "black")  # fmt: skip
    return fig


def comparison_figure(tables: dict[str, pd.DataFrame]) -> plt.Figure:
    """Test t2v R@1 with its 95% interval for every row of every comparison table (one panel each)."""
    fig, axes = plt.subplots(1, len(tables), figsize=(4.2 * len(tables), 3.2), squeeze=False)
    for ax, (title, table) in zip(axes[0], tables.items(), strict=True):
        values = table["t2v_R@1"].to_numpy()
        low = values - table["R@1_lo"].to_numpy()
        high = table["R@1_hi"].to_numpy() - values
        ax.bar(
            range(len(table)), values, yerr=[low, high], capsize=4, color=["#999999", "#3b75af"][: len(table)]
        )
        ax.set_xticks(range(len(table)), list(table.index), fontsize=9)
        ax.set_ylabel("test t2v R@1 (%)")
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig
