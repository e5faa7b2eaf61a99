"""Event retrieval: the frames of a video ranked against a query, alone and as a resumable batch."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from vtr import video
from vtr.config import load_profile
from vtr.extract import batch_retrieve_events, make_encoder, retrieve_event

N_FRAMES = 6


@pytest.fixture(scope="module")
def encoder(tmp_path_factory: pytest.TempPathFactory):
    data = tmp_path_factory.mktemp("data")
    return make_encoder(load_profile("sample", {"model.pretrained": "", "data_dir": str(data)}))


def _overrides(tmp_path: Path) -> dict:
    return {"model.pretrained": "", "data_dir": str(tmp_path / "data")}


def test_frames_are_ranked_by_cosine_score(videos_dir: Path, tmp_path: Path, encoder) -> None:
    path = videos_dir / "bikes.mp4"
    hit = retrieve_event(path, "a bike on a road", top_k=3, n_frames=N_FRAMES, encoder=encoder,
                         overrides=_overrides(tmp_path))  # fmt: skip
    info = video.probe(path)
    index = video.sample_indices(info.frame_count, N_FRAMES, "uniform", 0)
    scores = (
        encoder.encode_frames(video.sample_frames(path, N_FRAMES, size=64))
        @ encoder.encode_text(["a bike on a road"])[0]
    )
    best = np.argsort(-scores)[:3]
    assert hit.frames == index[best].tolist()
    np.testing.assert_allclose(hit.scores, scores[best], atol=1e-5)
    np.testing.assert_allclose(hit.times, index[best] / info.fps, atol=1e-3)
    assert hit.scores == sorted(hit.scores, reverse=True)


def test_batch_records_failures_and_resumes(videos_dir: Path, tmp_path: Path, encoder, monkeypatch) -> None:
    queries = tmp_path / "queries.jsonl"
    items = [
        {"video_path": "videos/bikes.mp4", "query": "a bike"},
        {"video_path": "videos/corrupt.mp4", "query": "anything"},
        {"video_path": "videos/carphone_distorted.mp4", "query": "a man on the phone"},
    ]
    queries.write_text("".join(json.dumps(i) + "\n" for i in items))
    output = tmp_path / "results.jsonl"
    kwargs = {"top_k": 2, "n_frames": N_FRAMES, "encoder": encoder, "overrides": _overrides(tmp_path)}
    results = batch_retrieve_events(queries, output, **kwargs)
    assert [r["status"] for r in results] == ["success", "failed", "success"]
    assert "corrupt.mp4" in results[1]["error"] and results[1]["frames"] == []
    assert all(len(r["frames"]) == 2 and r["inference_time"] >= 0 for r in (results[0], results[2]))
    written = [json.loads(line) for line in output.read_text().splitlines()]
    assert written == results

    # a rerun reuses the successes and tries the failure again
    calls: list[list[str]] = []
    original = encoder.encode_text
    monkeypatch.setattr(
        encoder, "encode_text", lambda texts, *a, **k: calls.append(list(texts)) or original(texts)
    )
    again = batch_retrieve_events(queries, output, **kwargs)
    assert calls == []  # the corrupt video fails before its query is encoded
    assert [r["frames"] for r in again] == [r["frames"] for r in results]
    assert again[1]["status"] == "failed"
