"""vtr.experiments.hnerv.data: patches, coordinates, video preparation, its cache and key."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from vtr.config import load_profile
from vtr.experiments.hnerv.data import PatchData, data_key, from_patches, prepare_video, to_patches


def test_patches_are_the_grid_cells_in_row_major_order_and_round_trip() -> None:
    frames = np.arange(2 * 4 * 6 * 3, dtype=np.int64).reshape(2, 4, 6, 3)
    patches = to_patches(frames, (2, 3))
    assert patches.shape == (2, 6, 2, 2, 3)
    np.testing.assert_array_equal(patches[1, 4], frames[1, 2:4, 2:4])  # row 1, column 1
    np.testing.assert_array_equal(from_patches(patches, (2, 3)), frames)
    np.testing.assert_array_equal(from_patches(torch.from_numpy(patches), (2, 3)).numpy(), frames)


def test_patch_coordinates_are_normalised_frame_index_and_patch_centre() -> None:
    data = PatchData(np.zeros((4, 4, 8, 3), np.uint8), np.zeros((4, 4, 2), np.float32), (2, 2), "x", "k")
    coords = data.coords()
    np.testing.assert_allclose(coords[2, 3], [2 / 4, 0.75, 0.75])
    np.testing.assert_allclose(coords[0, 1], [0.0, 0.75, 0.25])
    with pytest.raises(ValueError, match="targets"):
        PatchData(np.zeros((4, 4, 8, 3), np.uint8), np.zeros((4, 3, 2), np.float32), (2, 2), "x", "k")


def test_prepare_video_decodes_crops_embeds_and_caches(tmp_path: Path, fake_encoder) -> None:
    cfg = load_profile(
        "sample",
        {"data_dir": str(tmp_path), "hnerv.max_frames": 3, "hnerv.resize": [16, 32], "hnerv.grid": [1, 2]},
    )
    data = prepare_video(cfg.hnerv, fake_encoder, data_dir=cfg.data_dir)
    assert data.frames.shape == (3, 16, 32, 3) and data.targets.shape == (3, 2, 6)
    cached = list((tmp_path / "cache" / "hnerv").glob("data-*.npz"))
    assert len(cached) == 1 and cached[0].name == f"data-{data.key}.npz"
    again = prepare_video(cfg.hnerv, fake_encoder, data_dir=cfg.data_dir)
    np.testing.assert_array_equal(again.frames, data.frames)
    np.testing.assert_array_equal(again.targets, data.targets)


def test_data_key_follows_the_preparation_fields_only(fake_encoder) -> None:
    h = load_profile("sample").hnerv
    key = data_key(h, fake_encoder)
    assert len(key) == 16
    assert (
        data_key(load_profile("sample", {"hnerv.epochs": 99, "hnerv.queries": ["x"]}).hnerv, fake_encoder)
        == key
    )
    assert data_key(load_profile("sample", {"hnerv.resize": [32, 64]}).hnerv, fake_encoder) != key


def test_prepare_video_names_a_missing_video(tmp_path: Path, fake_encoder) -> None:
    cfg = load_profile("sample", {"data_dir": str(tmp_path), "hnerv.video": "no/such/video.mp4"})
    with pytest.raises(FileNotFoundError, match="hnerv.video"):
        prepare_video(cfg.hnerv, fake_encoder, data_dir=cfg.data_dir)
