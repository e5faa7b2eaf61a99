"""Seed 001's Python API and the resume rules for files that are missing rather than corrupt."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vtr.extract import extract_directory_embeddings


def _overrides(tmp_path: Path) -> dict:
    return {"model.pretrained": "", "data_dir": str(tmp_path / "data"), "video.n_frames": 2}


def test_seed_api_both_formats_and_consolidated(videos_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "embeddings"
    results = extract_directory_embeddings(
        videos_dir, out, save_format="both", consolidated=True, overrides=_overrides(tmp_path), progress=False
    )
    assert results["processed"] == 2 and results["failed"] == 1
    assert sorted(p.name for p in out.glob("*_embedding.*")) == [
        "bikes_embedding.json", "bikes_embedding.npy", "carphone_distorted_embedding.json",
        "carphone_distorted_embedding.npy",
    ]  # fmt: skip
    assert json.loads((out / "consolidated_embeddings.json").read_text())["metadata"]["successful"] == 2
    with pytest.raises(ValueError, match="unknown engine"):
        extract_directory_embeddings(videos_dir, out, engine="spark", overrides=_overrides(tmp_path))


def test_a_missing_file_is_a_failure_that_is_tried_again(videos_dir: Path, tmp_path: Path) -> None:
    manifest = tmp_path / "clips.jsonl"
    manifest.write_text('{"video": "videos/bikes.mp4"}\n{"video": "videos/later.mp4"}\n')
    out = tmp_path / "out"
    from vtr.config import load_profile
    from vtr.extract import extract

    cfg = load_profile("sample", _overrides(tmp_path))
    first = extract(cfg, manifest, out, progress=False)
    assert first["counts"]["processed"] == 1 and "cannot read file" in first["failures"][0]["reason"]
    (videos_dir / "corrupt.mp4").rename(videos_dir / "later.mp4")  # the file appears (and is corrupt)
    second = extract(cfg, manifest, out, progress=False)
    assert second["counts"]["resumed"] == 1 and second["counts"]["failed_now"] == 1
    assert "not a readable video" in second["failures"][0]["reason"]
