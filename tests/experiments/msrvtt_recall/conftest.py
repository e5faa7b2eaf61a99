"""Shared stand-ins for notebook 05's stages: a synthetic split and one tiny end-to-end run (every row
trained and scored once per session)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from vtr.config import load_profile
from vtr.data.manifest import ClipRecord
from vtr.experiments.msrvtt_recall import evaluate
from vtr.experiments.msrvtt_recall.data import SplitData, assemble_split


def _unit(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length, float32."""
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def _synthetic_split(name: str, n_videos: int, rng: np.random.Generator, dim: int = 16) -> SplitData:
    """Videos whose frames scatter around a centre, two captions each lying near that centre."""
    centres = _unit(rng.normal(size=(n_videos, dim)))
    frames = _unit(centres[:, None, :] + 0.3 * rng.normal(size=(n_videos, 4, dim)))
    categories = ["music", "sports", "news"]
    records = [
        ClipRecord(
            id=f"video{i}",
            video=f"video{i}.mp4",
            captions=[f"clip {i} shows a thing", f"video {i}"],
            split="test",
            category=categories[i % 3],
        )  # fmt: skip
        for i in range(n_videos)
    ]
    text_of = {
        c: _unit(centres[i] + 0.6 * rng.normal(size=dim)) for i, r in enumerate(records) for c in r.captions
    }
    return assemble_split(
        name, records, dict(zip([r.id for r in records], frames, strict=True)),
        lambda caps: np.stack([text_of[c] for c in caps]),
    )  # fmt: skip


@pytest.fixture(scope="session")
def synthetic_split() -> Callable[..., SplitData]:
    return _synthetic_split


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory):
    """A 40-video training split and a 12-video test split, every row trained for 2 epochs and scored."""
    rng = np.random.default_rng(0)
    train, test = _synthetic_split("train_9k", 40, rng), _synthetic_split("test_1k", 12, rng)
    cfg = load_profile(
        "sample",
        {"msrvtt_recall.epochs": 2, "msrvtt_recall.batch_size": 8, "msrvtt_recall.head_layers": 1,
         "msrvtt_recall.projection_hidden": 32, "msrvtt_recall.n_boot": 50, "msrvtt_recall.hard_negatives": 3,
         "msrvtt_recall.trend_init": False, "train.tensorboard": False},
    )  # fmt: skip
    out = tmp_path_factory.mktemp("runs")
    rows = evaluate.compute_rows(cfg, train, test, progress=False, out_root=out)
    return cfg, train, test, rows, out
