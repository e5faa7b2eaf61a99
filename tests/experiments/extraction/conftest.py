"""A small sample world shared by notebook 06's stage tests (built once per session, random weights)."""

from __future__ import annotations

from pathlib import Path

import pytest

from vtr.config import Profile, load_profile

SMALL = {
    "world.n_clips": 30, "world.n_long_videos": 1, "world.n_stills": 16, "model.pretrained": "",
    "extract.n_boot": 100, "extract.prompt_epochs": 3, "extract.prompt_frames": 2, "train.batch_size": 6,
    "train.lr_head": 0.003, "train.patience": 0,
}  # fmt: skip


@pytest.fixture(scope="session")
def small_cfg(tmp_path_factory: pytest.TempPathFactory) -> Profile:
    data_dir: Path = tmp_path_factory.mktemp("extraction") / "data"
    return load_profile("sample", {**SMALL, "data_dir": str(data_dir)})
