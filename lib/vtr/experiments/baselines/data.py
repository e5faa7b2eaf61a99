"""Stage 1 of notebook 01: the test sets (the profile's own test split, and MSR-VTT 1k-A when configured)."""

from __future__ import annotations

import warnings
from pathlib import Path

from vtr.config import Profile
from vtr.data.manifest import DataWarning
from vtr.data.msrvtt import load_msrvtt
from vtr.data.sources import ClipSet, load_clips
from vtr.paths import resolve


def msrvtt_test_clips(profile: Profile) -> ClipSet | None:
    """MSR-VTT 1k-A as a second test set, when the profile names its annotations and videos.

    None when ``data.msrvtt_annotations`` is unset, when MSR-VTT already is the profile's own
    source, or when the folders do not exist yet (a warning names them).
    """
    data = profile.data
    if not data.msrvtt_annotations or data.source == "msrvtt":
        return None
    annotations, videos = resolve(data.msrvtt_annotations), resolve(data.root)
    if not annotations.is_dir() or not videos.is_dir():
        warnings.warn(
            f"MSR-VTT not found (data.msrvtt_annotations={annotations}, data.root={videos}); "
            "see data/README.md to prepare it",
            DataWarning,
            stacklevel=2,
        )
        return None
    return ClipSet("MSR-VTT 1k-A", "test", list(load_msrvtt(annotations, "test_1k", videos)), videos)


def load_test_sets(profile: Profile) -> dict[str, ClipSet]:
    """``{"test": the profile's test split}``, plus ``"msrvtt_1k"`` when :func:`msrvtt_test_clips` finds it."""
    sets = {"test": load_clips(profile, "test")}
    msrvtt = msrvtt_test_clips(profile)
    if msrvtt is not None:
        sets["msrvtt_1k"] = msrvtt
    return sets


def describe_test_sets(sets: dict[str, ClipSet]) -> list[str]:
    """One line per test set: its name, clip count and caption count."""
    return [f"{name}: {clips.name}, {len(clips)} clips, {len(clips.queries()[0])} captions"
            for name, clips in sets.items()]  # fmt: skip


def clip_path(clips: ClipSet, clip_id: str) -> Path:
    """The video file of ``clip_id`` in ``clips``."""
    for record in clips.records:
        if record.id == clip_id:
            return record.video_path(clips.base_dir)
    raise KeyError(f"{clips.name} {clips.split}: no clip {clip_id!r}")
