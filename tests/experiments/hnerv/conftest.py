"""Shared fixtures of the HNeRV study's tests: a fake encoder, unit vectors, a tiny trained study."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from vtr.config import load_profile
from vtr.experiments import hnerv
from vtr.experiments.hnerv import PatchData


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


class FakeEncoder:
    """encode_text: query i is the unit vector e_i; image side of 8; mean-colour image features."""

    image_size = (8, 8)

    def encode_text(self, texts: list[str]) -> np.ndarray:
        return np.eye(6, dtype=np.float32)[: len(texts)]

    def encode_frames(self, frames: np.ndarray) -> np.ndarray:
        mean = np.asarray(frames, np.float32).mean(axis=(1, 2)) / 255
        return _unit(np.concatenate([mean, 1 - mean], axis=1) + 1e-3)

    def identity(self) -> dict:
        return {"fake": 1}


@pytest.fixture
def unit() -> Callable[[np.ndarray], np.ndarray]:
    """Rows scaled to unit length (float32)."""
    return _unit


@pytest.fixture
def fake_encoder() -> FakeEncoder:
    return FakeEncoder()


TINY_OVERRIDES = {
    "hnerv.widths": {"small": 8, "large": 16},
    "hnerv.strides": [2, 2],
    "hnerv.splits": ["6_6_10", "1_1_1"],
    "hnerv.main_size": "small",
    "hnerv.reference_splits": ["6_6_10"],
    "hnerv.epochs": 3,
    "hnerv.clip_warmup_epochs": 1,
    "hnerv.pe_levels": 8,
    "hnerv.curve_patches": 8,
    "train.tensorboard": False,
}


@pytest.fixture(scope="session")
def tiny_study(tmp_path_factory: pytest.TempPathFactory) -> tuple:
    """Four runs on a synthetic 10-frame video with the shared trainer (a few seconds)."""
    root = tmp_path_factory.mktemp("hnerv")
    cfg = load_profile("sample", {"data_dir": str(root), **TINY_OVERRIDES})
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (10, 16, 32, 3), dtype=np.uint8)
    data = PatchData(frames, _unit(rng.normal(size=(10, 2, 6))), (1, 2), "synthetic", "test")
    runs = hnerv.run_study(cfg, data, device="cpu", progress=False)
    return cfg, data, runs
