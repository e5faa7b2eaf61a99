import numpy as np
import pytest

from vtr.moments.models import create_moment_model
from vtr.moments.predictor import MomentPredictor, nms
from vtr.video import write_video


def _video(path, seconds: float, fps: int = 8):
    rng = np.random.default_rng(1)
    write_video(path, rng.integers(0, 255, size=(int(seconds * fps), 32, 32, 3), dtype=np.uint8), fps)
    return path


def test_nms_drops_overlapping_worse_windows():
    kept = nms([(0, 10, 0.9), (1, 10, 0.8), (20, 30, 0.5)], iou=0.7)
    assert kept == [(0, 10, 0.9), (20, 30, 0.5)]


def test_checkpoint_round_trip_and_sliding_windows(random_tiny_encoder, tmp_path):
    dim = random_tiny_encoder.output_dim
    model = create_moment_model("temporal", dim=dim, hidden=16, layers=1, max_clips=4)
    predictor = MomentPredictor(
        random_tiny_encoder, model, model_name="temporal",
        model_kwargs={"dim": dim, "hidden": 16, "layers": 1, "max_clips": 4}, clip_len=1.0,
    )  # fmt: skip
    path = _video(tmp_path / "long.mp4", 11.0)
    video = predictor.encode_video(path)
    assert video.n_clips == 11  # longer than the model's window of 4 clips: scored in slides
    result = predictor.predict("a red square moves left", video, top_k=5)
    assert result.saliency.shape == (11,) and 1 <= len(result.windows) <= 5
    assert all(0 <= s < e <= 11.0 for s, e, _ in result.windows)
    assert [w[2] for w in result.windows] == sorted((w[2] for w in result.windows), reverse=True)

    saved = predictor.save(tmp_path / "ckpt" / "model.pt")
    again = MomentPredictor.from_checkpoint(saved, encoder=random_tiny_encoder)
    twin = again.predict("a red square moves left", video, top_k=5)
    np.testing.assert_allclose(twin.saliency, result.saliency, rtol=1e-5, atol=1e-6)
    assert twin.windows == result.windows


def test_zero_shot_predictor_on_a_path(random_tiny_encoder, tmp_path):
    predictor = MomentPredictor(
        random_tiny_encoder, create_moment_model("zero_shot"), model_name="zero_shot", clip_len=2.0
    )
    result = predictor.predict("a blue circle", _video(tmp_path / "v.mp4", 9.0))
    assert result.saliency.shape == (5,) and result.windows


def test_not_a_checkpoint(tmp_path):
    import torch

    torch.save({"weights": 1}, tmp_path / "x.pt")
    with pytest.raises(ValueError, match="not a vtr moment checkpoint"):
        MomentPredictor.from_checkpoint(tmp_path / "x.pt")
