"""Batch video/text embedding: results match the encoder, the cache is reused and invalidated, bad videos are recorded."""

from __future__ import annotations

import errno
from pathlib import Path

import av
import numpy as np
import pandas as pd
import pytest

from vtr import video
from vtr.config import load_profile
from vtr.data.manifest import ClipRecord
from vtr.embeddings import default_cache_dir, embed_texts, embed_videos
from vtr.models.encoders import Encoder

N_FRAMES = 4


@pytest.fixture(scope="module")
def encoder(random_tiny_encoder: Encoder) -> Encoder:
    return random_tiny_encoder


def _clip(colour: tuple[int, int, int], phase: int) -> np.ndarray:
    """12 frames of a square moving over a coloured background that darkens over time (64 x 64)."""
    frames = np.zeros((12, 64, 64, 3), dtype=np.uint8)
    for t in range(12):
        frames[t] = np.round(np.array(colour) * (1 - t / 16))
        x = (4 * t + phase) % 48
        frames[t, 20:36, x : x + 16] = 255
    return frames


@pytest.fixture()
def videos(tmp_path: Path) -> tuple[Path, list[ClipRecord]]:
    root = tmp_path / "videos"
    root.mkdir()
    records = []
    for i, colour in enumerate([(200, 30, 30), (30, 200, 30), (30, 30, 200)]):
        video.write_video(root / f"v{i}.mp4", _clip(colour, 5 * i), fps=8)
        records.append(ClipRecord(id=f"v{i}", video=f"v{i}.mp4", captions=[f"clip {i}"], split="test"))
    (root / "corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    records.insert(1, ClipRecord(id="bad", video="corrupt.mp4", captions=["broken"], split="test"))
    records.append(
        ClipRecord(id="window", video="v0.mp4", captions=["first half"], split="test", start=0.0, end=0.75)
    )
    return root, records


@pytest.fixture()
def decode_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    real = video.sample_frames

    def counting(path, *args, **kwargs):
        calls.append(Path(path).name)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(video, "sample_frames", counting)
    return calls


def test_embeddings_match_the_encoder_and_bad_videos_are_recorded(encoder: Encoder, videos) -> None:
    root, records = videos
    emb = embed_videos(encoder, records, root, N_FRAMES, "uniform", 64, workers=2, progress=False)
    assert emb.ids == ["v0", "v1", "v2", "window"]
    assert emb.requested == ["v0", "bad", "v1", "v2", "window"]
    assert emb.mask.tolist() == [True, False, True, True, True]
    assert list(emb.errors) == ["bad"] and "corrupt.mp4" in emb.errors["bad"]
    assert emb.frames.shape == (4, N_FRAMES, 128) and emb.embeddings.shape == (4, 128)
    for i, rec in enumerate(r for r in records if r.id != "bad"):
        frames = video.sample_frames(root / rec.video, N_FRAMES, "uniform", 64, start=rec.start, end=rec.end)
        np.testing.assert_allclose(emb.frames[i], encoder.encode_frames(frames), atol=1e-5)
        np.testing.assert_allclose(emb.embeddings[i], encoder.encode_video(frames), atol=1e-5)
    # The window samples other frames of the same file than the whole-file record.
    assert not np.allclose(emb.frames[0], emb.frames[3], atol=1e-3)


def test_sequential_and_overlapped_decoding_agree(encoder: Encoder, videos) -> None:
    root, records = videos
    a = embed_videos(encoder, records, root, N_FRAMES, "uniform", 64, workers=0, progress=False)
    b = embed_videos(encoder, records, root, N_FRAMES, "uniform", 64, workers=3, progress=False)
    assert a.ids == b.ids and a.errors == b.errors
    np.testing.assert_allclose(a.frames, b.frames, atol=1e-5)


def test_cache_is_reused_and_invalidated_by_content(encoder: Encoder, videos, tmp_path, decode_calls) -> None:
    root, records = videos
    cache = tmp_path / "cache"
    first = embed_videos(encoder, records, root, N_FRAMES, "uniform", 64, cache_dir=cache, progress=False)
    assert sorted(decode_calls) == sorted(["v0.mp4", "corrupt.mp4", "v1.mp4", "v2.mp4", "v0.mp4"])
    assert first.cache_hits == 0

    decode_calls.clear()
    second = embed_videos(encoder, records, root, N_FRAMES, "uniform", 64, cache_dir=cache, progress=False)
    assert decode_calls == []  # every entry, the corrupt file's error included, comes from the cache
    assert second.cache_hits == len(records)
    assert second.ids == first.ids and second.errors == first.errors
    np.testing.assert_array_equal(second.frames, first.frames)

    video.write_video(root / "v2.mp4", _clip((250, 250, 0), 9), fps=8)  # edit one video
    decode_calls.clear()
    third = embed_videos(encoder, records, root, N_FRAMES, "uniform", 64, cache_dir=cache, progress=False)
    assert decode_calls == ["v2.mp4"]
    changed = third.ids.index("v2")
    assert not np.allclose(third.frames[changed], first.frames[changed], atol=1e-3)
    np.testing.assert_array_equal(np.delete(third.frames, changed, 0), np.delete(first.frames, changed, 0))

    decode_calls.clear()  # other settings are other entries
    embed_videos(encoder, records[:1], root, N_FRAMES + 1, "uniform", 64, cache_dir=cache, progress=False)
    assert decode_calls == ["v0.mp4"]

    index = pd.read_parquet(cache / "videos" / "index.parquet")
    assert len(index) == len(records) + 2  # + the edited v2 and the 5-frame v0
    bad = index[index["id"] == "bad"].iloc[0]
    assert "corrupt.mp4" in bad["error"] and pd.isna(bad["npy"])


def _write_audio_only(path: Path) -> None:
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=16000)
        frame = av.AudioFrame.from_ndarray(
            np.zeros((1, 1024), dtype=np.float32), format="fltp", layout="mono"
        )
        frame.sample_rate = 16000
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)


def _write_truncated(path: Path) -> None:
    """A clip with its index at the front (as downloads are) cut off a third of the way from the end."""
    with av.open(str(path), "w", format="mp4", options={"movflags": "faststart"}) as container:
        stream = container.add_stream("libx264", rate=8)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        noise = np.random.default_rng(0).integers(0, 256, (24, 64, 64, 3), dtype=np.uint8)
        for frame in noise:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])


def test_content_errors_are_cached(encoder: Encoder, videos, tmp_path, decode_calls) -> None:
    root, records = videos
    _write_audio_only(root / "audio.mp4")
    _write_truncated(root / "truncated.mp4")
    bad = [
        records[1],  # corrupt.mp4: invalid data
        ClipRecord(id="audio", video="audio.mp4", captions=["only sound"], split="test"),
        ClipRecord(id="cut", video="truncated.mp4", captions=["cut off"], split="test"),
    ]
    cache = tmp_path / "cache"
    first = embed_videos(encoder, bad, root, N_FRAMES, "uniform", 64, cache_dir=cache, progress=False)
    assert (
        first.ids == [] and "no video stream" in first.errors["audio"] and "truncated" in first.errors["cut"]
    )
    decode_calls.clear()
    again = embed_videos(encoder, bad, root, N_FRAMES, "uniform", 64, cache_dir=cache, progress=False)
    assert decode_calls == [] and again.cache_hits == 3 and again.errors == first.errors


@pytest.mark.parametrize(
    "failure",
    [
        av.error.OSError(errno.EIO, "Input/output error"),
        av.error.OSError(errno.ENOSPC, "No space left on device"),
        av.error.PermissionError(errno.EACCES, "Permission denied"),
    ],
    ids=["EIO", "ENOSPC", "EACCES"],
)
def test_os_errors_are_reported_for_the_run_and_retried_on_the_next(
    encoder: Encoder, videos, tmp_path, decode_calls, monkeypatch, failure: OSError
) -> None:
    """PyAV raises errno failures as OSError subclasses when it opens or reads a file."""
    root, records = videos
    cache = tmp_path / "cache"
    real_open = av.open

    def failing_open(file, *args, **kwargs):
        if Path(file).name == "v1.mp4":
            raise failure
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(av, "open", failing_open)
    first = embed_videos(encoder, records, root, N_FRAMES, "uniform", 64, cache_dir=cache, progress=False)
    assert "v1" not in first.ids and "v1.mp4" in first.errors["v1"] and failure.strerror in first.errors["v1"]
    assert "retried on the next run" in first.errors["v1"]
    assert "corrupt.mp4" in first.errors["bad"] and "retried" not in first.errors["bad"]

    monkeypatch.setattr(av, "open", real_open)  # the disk is back
    decode_calls.clear()
    second = embed_videos(encoder, records, root, N_FRAMES, "uniform", 64, cache_dir=cache, progress=False)
    assert decode_calls == ["v1.mp4"]  # the corrupt file's error still comes from the cache
    assert second.ids == ["v0", "v1", "v2", "window"] and list(second.errors) == ["bad"]
    direct = embed_videos(encoder, records[2:3], root, N_FRAMES, "uniform", 64, progress=False)
    np.testing.assert_allclose(second.frames[1], direct.frames[0], atol=1e-5)


def test_an_unclassified_exception_from_the_decoder_is_not_cached(
    encoder: Encoder, videos, tmp_path, monkeypatch
) -> None:
    root, records = videos
    cache = tmp_path / "cache"
    real = video.sample_frames

    def raising(path, *args, **kwargs):
        if Path(path).name == "v2.mp4":
            raise OSError(errno.EIO, "Input/output error")
        return real(path, *args, **kwargs)

    monkeypatch.setattr(video, "sample_frames", raising)
    first = embed_videos(encoder, records, root, N_FRAMES, "uniform", 64, cache_dir=cache, progress=False)
    assert "Input/output error" in first.errors["v2"] and "v2.mp4" in first.errors["v2"]
    monkeypatch.setattr(video, "sample_frames", real)
    second = embed_videos(encoder, records, root, N_FRAMES, "uniform", 64, cache_dir=cache, progress=False)
    assert "v2" in second.ids and list(second.errors) == ["bad"]


def test_missing_file_is_an_error_not_a_crash(encoder: Encoder, videos, tmp_path) -> None:
    root, records = videos
    gone = [*records[:1], ClipRecord(id="gone", video="nowhere.mp4", captions=["x"], split="test")]
    for cache in (None, tmp_path / "cache"):
        emb = embed_videos(encoder, gone, root, N_FRAMES, "uniform", 64, cache_dir=cache, progress=False)
        assert emb.ids == ["v0"] and "nowhere.mp4" in emb.errors["gone"]


def test_subset_and_profile_cache_dir(encoder: Encoder, videos, tmp_path) -> None:
    root, records = videos
    emb = embed_videos(encoder, records, root, N_FRAMES, "uniform", 64, progress=False)
    sub = emb.subset(["v2", "v0"])
    np.testing.assert_array_equal(sub.embeddings, emb.embeddings[[2, 0]])
    with pytest.raises(KeyError, match="bad"):
        emb.subset(["bad"])
    cfg = load_profile("sample", overrides={"data_dir": str(tmp_path / "d")})
    assert default_cache_dir(cfg) == tmp_path / "d" / "cache" / "embeddings"
    assert default_cache_dir(load_profile("sample", overrides={"video.cache": False})) is None


def test_text_cache_encodes_each_caption_once(encoder: Encoder, tmp_path, monkeypatch) -> None:
    captions = ["a red circle", "two blue squares", "a red circle", "a green star"]
    direct = encoder.encode_text(captions)
    encoded: list[str] = []
    real = encoder.encode_text

    def counting(texts, *args, **kwargs):
        encoded.extend(texts)
        return real(texts, *args, **kwargs)

    monkeypatch.setattr(encoder, "encode_text", counting)
    first = embed_texts(encoder, captions, cache_dir=tmp_path, progress=False)
    assert sorted(encoded) == ["a green star", "a red circle", "two blue squares"]
    np.testing.assert_allclose(first, direct, atol=1e-6)

    encoded.clear()
    second = embed_texts(
        encoder, ["a green star", "a purple cross", "a red circle"], cache_dir=tmp_path, progress=False
    )
    assert encoded == ["a purple cross"]
    np.testing.assert_allclose(second[[0, 2]], direct[[3, 0]], atol=1e-6)

    encoded.clear()
    np.testing.assert_array_equal(embed_texts(encoder, captions, cache_dir=tmp_path, progress=False), first)
    assert encoded == []
    with pytest.raises(TypeError, match="caption 1"):
        embed_texts(encoder, ["ok", None], cache_dir=tmp_path)  # type: ignore[list-item]
