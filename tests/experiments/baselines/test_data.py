"""Notebook 01's test sets: MSR-VTT 1k-A joins the profile's test split only when it is configured and present."""

from __future__ import annotations

from pathlib import Path

import pytest

from vtr.config import load_profile
from vtr.data.manifest import DataWarning
from vtr.experiments.baselines.data import clip_path, describe_test_sets, msrvtt_test_clips


def test_msrvtt_second_test_set_only_when_configured(tmp_path: Path, shared_data: Path) -> None:
    assert msrvtt_test_clips(load_profile("sample")) is None
    missing = load_profile(
        "sample", {"data.msrvtt_annotations": str(tmp_path / "nope"), "data.root": str(tmp_path)}
    )
    with pytest.warns(DataWarning, match="MSR-VTT not found"):
        assert msrvtt_test_clips(missing) is None
    real = load_profile(
        "sample", {"data.msrvtt_annotations": str(shared_data / "msrvtt"), "data.root": str(tmp_path)}
    )
    test_1k = msrvtt_test_clips(real)
    assert test_1k is not None and len(test_1k) == 1000


def test_test_sets_name_the_profile_split_and_clip_path_finds_a_clip(tmp_path: Path) -> None:
    from vtr.data.manifest import ClipRecord
    from vtr.data.sources import ClipSet

    clips = ClipSet("toy", "test", [ClipRecord(id="a", video="a.mp4", captions=["x", "y"], split="test")], tmp_path)
    assert describe_test_sets({"test": clips}) == ["test: toy, 1 clips, 2 captions"]
    assert clip_path(clips, "a") == tmp_path / "a.mp4"
    with pytest.raises(KeyError, match="no clip 'b'"):
        clip_path(clips, "b")
