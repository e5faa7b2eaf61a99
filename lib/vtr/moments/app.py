"""The moment-retrieval demo: a Streamlit app over :class:`~vtr.moments.predictor.MomentPredictor`.

    vtr demo                                   # the sample profile, zero-shot, the world's long videos
    vtr demo --checkpoint data/runs/moments/span-<key>/model.pt --port 8502
    streamlit run lib/vtr/moments/app.py -- --profile sample --videos my_videos/

Pick one of the sample videos or upload one, type a query, set the most clips to read and the number
of moments; the app shows the per-clip score curve and the top moments with a thumbnail and their
times. Options after ``--`` (or in the ``VTR_DEMO_ARGS`` environment variable, which wins when set):
``--profile``, ``--set KEY=VALUE``, ``--checkpoint`` (default: the zero-shot baseline) and
``--videos`` (a folder of videos to offer; default: the profile's sample world's long videos) and
``--index`` (a ``vtr index build`` folder over a ``vtr extract`` output): with it, the query also
searches the indexed videos (text-to-video, :mod:`vtr.index`); without it the app says so.

The functions above :func:`main` hold the logic and are tested without a browser; :func:`main` only
lays out widgets.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vtr import video as vtr_video
from vtr.moments.features import VideoFeatures
from vtr.moments.predictor import MomentPredictor, MomentResult, _slice

VIDEO_SUFFIXES = (".mp4", ".mkv", ".webm", ".mov", ".avi")
ARGS_ENV = "VTR_DEMO_ARGS"


class NotAVideoError(ValueError):
    """An upload (or file) that PyAV cannot read as a video."""


@dataclass
class Moment:
    """One found moment: its rank, times, score and a thumbnail (its middle frame)."""

    rank: int
    start: float
    end: float
    score: float
    thumbnail: np.ndarray | None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The app's options (see the module docstring): ``VTR_DEMO_ARGS`` when set, else ``argv``."""
    if os.environ.get(ARGS_ENV, "").strip():
        argv = shlex.split(os.environ[ARGS_ENV])
    parser = argparse.ArgumentParser(prog="vtr demo", description="The moment-retrieval demo.")
    parser.add_argument("--profile", default="sample")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--checkpoint", help="a trained moment model; default: zero-shot")
    parser.add_argument("--videos", help="folder of videos to offer; default: the sample world's")
    parser.add_argument("--index", help="a `vtr index build` folder for text-to-video search; default: none")
    return parser.parse_args(argv)


def load_profile_from(args: argparse.Namespace) -> Any:
    from vtr.config import load_profile, parse_override

    return load_profile(args.profile, overrides=dict(parse_override(t) for t in args.overrides))


def build_predictor(args: argparse.Namespace) -> MomentPredictor:
    """The checkpoint's predictor, or the profile's zero-shot baseline."""
    from vtr.experiments.moments.train import zero_shot_predictor
    from vtr.models.encoders import load_encoder

    cfg = load_profile_from(args)
    if args.checkpoint:
        return MomentPredictor.from_checkpoint(args.checkpoint, device=cfg.device)
    return zero_shot_predictor(cfg, load_encoder(cfg, device=cfg.device))


def sample_videos(args: argparse.Namespace) -> dict[str, Path]:
    """Name -> file of the videos to offer: ``--videos`` or the sample world's long videos."""
    if args.videos:
        folder = Path(args.videos)
    else:
        from vtr.data.synthetic.world import sample_world

        folder = sample_world(load_profile_from(args)).long_videos_dir
    return {p.name: p for p in sorted(folder.iterdir()) if p.suffix.lower() in VIDEO_SUFFIXES}


def check_video(path: Path, name: str | None = None) -> vtr_video.VideoInfo:
    """The video's stream info, or :class:`NotAVideoError` naming the file when it is not one."""
    try:
        return vtr_video.probe(path)
    except Exception as err:  # noqa: BLE001 - PyAV raises many kinds; the user needs one message
        raise NotAVideoError(f"{name or path.name} is not a video this app can read ({err})") from None


def save_upload(data: bytes, name: str, folder: Path | None = None) -> Path:
    """Write an uploaded file to a temporary file (keeping its suffix) and check it is a video."""
    suffix = Path(name).suffix or ".bin"
    folder = folder or Path(tempfile.gettempdir()) / "vtr-demo"
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=folder, suffix=suffix, delete=False) as f:
        f.write(data)
    path = Path(f.name)
    try:
        check_video(path, name)
    except NotAVideoError:
        path.unlink(missing_ok=True)
        raise
    return path


def limit_clips(features: VideoFeatures, max_clips: int) -> VideoFeatures:
    """The first ``max_clips`` clips of a video (all of them when it has fewer)."""
    if max_clips < 1:
        raise ValueError(f"max clips must be >= 1, got {max_clips}")
    return features if features.n_clips <= max_clips else _slice(features, 0, max_clips)


def find_moments(
    predictor: MomentPredictor, features: VideoFeatures, query: str, top_k: int, max_clips: int
) -> MomentResult:
    """The ``top_k`` moments of ``query`` in the first ``max_clips`` clips of the video."""
    return predictor.predict(query, limit_clips(features, max_clips), top_k=top_k)


def score_curve(result: MomentResult) -> pd.DataFrame:
    """Per-clip scores indexed by the clip's start time (seconds), for a line chart."""
    times = np.arange(len(result.saliency)) * result.clip_len
    return pd.DataFrame({"score": result.saliency}, index=pd.Index(times, name="seconds"))


def moments_with_thumbnails(path: Path, result: MomentResult, size: int = 128) -> list[Moment]:
    """The result's windows with the frame at each window's middle (``None`` when it cannot be decoded)."""
    found = []
    for rank, (start, end, score) in enumerate(result.windows, 1):
        middle = (start + end) / 2
        try:
            frame = vtr_video.sample_frames(path, 1, "uniform", size=size, start=middle, end=middle + 0.5)[0]
        except Exception:  # noqa: BLE001 - a missing thumbnail must not hide the moment
            frame = None
        found.append(Moment(rank, start, end, score, frame))
    return found


def search_index(cfg: Any, index_dir: str | None, query: str, k: int = 5) -> pd.DataFrame | None:
    """Text-to-video search over the ``vtr index build`` folder ``index_dir`` (None: no index given),
    with the profile's encoder (:func:`vtr.extract.api.make_encoder`, the one the extraction used).
    Raises :class:`vtr.index.SearchIndexError` naming the index when it is missing or mismatched."""
    if not index_dir:
        return None
    from vtr.extract.api import make_encoder
    from vtr.index import VideoIndex

    index = VideoIndex.load(index_dir)
    index.check_model(cfg.model.arch, where=f"profile {cfg.name!r} (model.arch)")
    index.encoder = make_encoder(cfg)
    return index.search(query, k)


def _cached_features(st: Any, predictor: MomentPredictor, path: str) -> VideoFeatures:
    """The video's clip features, computed once per (model, file) in this server."""

    @st.cache_data(show_spinner="reading the video")
    def features(_predictor: MomentPredictor, model: str, path: str, mtime: float) -> VideoFeatures:
        return _predictor.encode_video(path)

    return features(
        predictor, repr(predictor.encoder) + predictor.model_name, path, Path(path).stat().st_mtime
    )


def main() -> None:  # pragma: no cover - layout only; the logic above is tested
    import streamlit as st

    args = parse_args(sys.argv[1:])
    st.set_page_config(page_title="vtr moments", layout="wide")
    st.title("Moment retrieval")
    # Streamlit caches by hashable arguments: the options as a tuple of strings stand for the Namespace.
    options = tuple(sorted((k, str(v)) for k, v in vars(args).items()))
    predictor = st.cache_resource(lambda _: build_predictor(args), show_spinner="loading the model")(options)
    videos = st.cache_data(lambda _: sample_videos(args))(options)
    st.caption(f"model: {predictor.model_name}, clips of {predictor.clip_len:g} s")

    with st.sidebar:
        max_clips = st.number_input("max clips", min_value=1, max_value=2000, value=150, key="max_clips")
        top_k = st.slider("top-k moments", min_value=1, max_value=10, value=3, key="top_k")
    choice = st.selectbox("sample video", list(videos), key="sample_video")
    upload = st.file_uploader("or upload a video", key="upload")
    path = videos.get(choice) if choice else None
    if upload is not None:
        try:
            path = save_upload(upload.getvalue(), upload.name)
        except NotAVideoError as err:
            st.error(str(err))
            st.stop()
    query = st.text_input("query", key="query")
    if path is None:
        st.info("pick a sample video or upload one")
        st.stop()
    st.columns([1, 1])[0].video(str(path))
    if not query.strip():
        st.info("type a query to find its moments")
        st.stop()
    try:
        features = st.cache_data(lambda p: predictor.encode_video(p), show_spinner="reading the video")(
            str(path)
        )
        result = find_moments(predictor, features, query, int(top_k), int(max_clips))
    except ValueError as err:  # a video shorter than one clip, an empty query
        st.error(str(err))
        st.stop()
    if features.n_clips > max_clips:
        st.warning(f"read the first {int(max_clips)} of {features.n_clips} clips")
    st.subheader("per-clip score")
    st.line_chart(score_curve(result))
    st.subheader("top moments")
    for moment in moments_with_thumbnails(path, result):
        left, right = st.columns([1, 4])
        if moment.thumbnail is not None:
            left.image(moment.thumbnail, width=128)
        right.markdown(
            f"**{moment.rank}. {moment.start:.1f} s – {moment.end:.1f} s** · score {moment.score:.3f}"
        )
    st.subheader("text-to-video search")
    from vtr.index import SearchIndexError

    try:
        hits = search_index(load_profile_from(args), args.index, query)
    except SearchIndexError as err:
        st.error(str(err))
        return
    if hits is None:
        st.caption("no search index given (vtr extract, vtr index build, then vtr demo --index DIR)")
    else:
        st.dataframe(hits)


if __name__ == "__main__":
    main()
