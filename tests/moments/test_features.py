import numpy as np
import pytest
import torch

from vtr.moments.features import (
    VideoTooShortError,
    clip_labels,
    n_clips_for,
    query_features,
    video_clip_features,
)
from vtr.video import write_video


def _video(path, seconds: float, fps: int = 10):
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, size=(int(seconds * fps), 32, 32, 3), dtype=np.uint8)
    write_video(path, frames, fps)
    return path


def test_n_clips_counts_a_last_half_clip():
    assert n_clips_for(150.0, 2.0) == 75
    assert n_clips_for(5.0, 2.0) == 3 and n_clips_for(4.9, 2.0) == 2
    assert n_clips_for(0.5, 2.0) == 0
    with pytest.raises(ValueError):
        n_clips_for(10, 0)


def test_clip_features_shape_norm_and_cache(random_tiny_encoder, tmp_path):
    path = _video(tmp_path / "v.mp4", 6.0)
    cache = tmp_path / "cache"
    first = video_clip_features(random_tiny_encoder, path, 1.0, frames_per_clip=2, cache_dir=cache)
    assert first.clips.shape == (6, random_tiny_encoder.output_dim) and first.clips.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(first.clips, axis=1), 1.0, rtol=1e-5)
    assert len(list(cache.glob("*.npy"))) == 1
    again = video_clip_features(random_tiny_encoder, path, 1.0, frames_per_clip=2, cache_dir=cache)
    np.testing.assert_array_equal(again.clips, first.clips)
    np.testing.assert_allclose(first.clip_windows()[-1], [5.0, 6.0])


def test_video_shorter_than_a_clip_is_a_clear_error(random_tiny_encoder, tmp_path):
    path = _video(tmp_path / "short.mp4", 0.6)
    with pytest.raises(VideoTooShortError, match=r"short\.mp4.*shorter than one 2 s clip"):
        video_clip_features(random_tiny_encoder, path, 2.0)


def test_query_tokens_agree_with_the_pooled_text_feature(random_tiny_encoder):
    # The end-of-text token's projected output, normalised, is open_clip's pooled text feature:
    # this checks the per-token path against encode_text, an independent code path.
    q = query_features(random_tiny_encoder, "a red square moves left")
    assert q.tokens.shape[0] == int(q.mask.sum()) and q.tokens.shape[1] == random_tiny_encoder.output_dim
    eot = torch.nn.functional.normalize(q.tokens[-1], dim=0)
    torch.testing.assert_close(eot, torch.nn.functional.normalize(q.pooled, dim=0), atol=1e-4, rtol=1e-4)
    assert not q.truncated


def test_long_query_is_truncated_with_a_warning(random_tiny_encoder):
    with pytest.warns(UserWarning, match="truncated"):
        q = query_features(random_tiny_encoder, " ".join(["square"] * 200))
    assert q.truncated
    with pytest.raises(ValueError, match="empty"):
        query_features(random_tiny_encoder, "  ")


def test_clip_labels_by_clip_centre():
    labels = clip_labels([(2.0, 5.0)], 4, 2.0)  # centres 1, 3, 5, 7
    assert labels.tolist() == [0.0, 1.0, 0.0, 0.0]
