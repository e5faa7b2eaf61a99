from pathlib import Path

import pytest

from vtr.config import ConfigError, load_profile
from vtr.data.manifest import ClipRecord, write_manifest
from vtr.data.sources import ClipSet, clip_table, load_clips
from vtr.video import write_video


def _tiny_world_profile(tmp_path: Path):
    return load_profile(
        "sample",
        {"data_dir": str(tmp_path), "world.n_clips": 24, "world.n_stills": 40, "world.n_long_videos": 3},
    )


def test_sample_source_builds_the_world_and_splits_it(tmp_path: Path) -> None:
    profile = _tiny_world_profile(tmp_path)
    splits = {s: load_clips(profile, s) for s in ("train", "val", "test")}
    assert sum(len(c) for c in splits.values()) == 24
    test = splits["test"]
    assert all(r.split == "test" for r in test.records)
    assert all(p.is_file() for p in test.video_paths())
    captions, owner = test.queries()
    assert len(captions) == sum(len(r.captions) for r in test.records)
    assert [test.records[i].captions.count(c) > 0 for c, i in zip(captions, owner, strict=True)] == [
        True
    ] * len(captions)


def test_internvid_source_reads_the_download_manifest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    profile = load_profile("sample", {"data.source": "internvid", "internvid.out_dir": str(tmp_path / "iv")})
    with pytest.raises(FileNotFoundError, match="vtr download internvid"):
        load_clips(profile, "test")
    records = [
        ClipRecord("a", "clips/a.mp4", ["x"], split="test"),
        ClipRecord("b", "clips/b.mp4", ["y"], split="train"),
    ]
    write_manifest(tmp_path / "iv" / "manifest.jsonl", records)
    clips = load_clips(profile, "test")
    assert [r.id for r in clips.records] == ["a"]
    assert clips.video_paths() == [tmp_path / "iv" / "clips" / "a.mp4"]


def test_unknown_source_and_missing_folders_are_clear_errors(tmp_path: Path) -> None:
    # a wrong name fails when the profile is loaded, before anything runs ...
    with pytest.raises(ConfigError, match=r"'data.source' must be one of .*'msrvtt'.*got 'nope'"):
        load_profile("sample", {"data.source": "nope"})
    # ... and a profile built in Python without validation fails at the loader
    unchecked = load_profile("sample")
    unchecked.data.source = "nope"
    with pytest.raises(ConfigError, match="data.source is 'nope'"):
        load_clips(unchecked, "test")
    with pytest.raises(ConfigError, match="data.msrvtt_annotations is empty"):
        load_clips(load_profile("sample", {"data.source": "msrvtt"}), "test")
    with pytest.raises(FileNotFoundError, match="data.root"):
        load_clips(
            load_profile("sample", {"data.source": "folder", "data.root": str(tmp_path / "none")}), "test"
        )


def test_clip_table_probes_durations_and_records_bad_files(tmp_path: Path) -> None:
    import numpy as np

    write_video(tmp_path / "good.mp4", np.zeros((16, 32, 32, 3), np.uint8), fps=8)
    (tmp_path / "bad.mp4").write_text("not a video")
    records = [
        ClipRecord("good", "good.mp4", ["one two three"], "test", category="c"),
        ClipRecord("bad", "bad.mp4", ["a b", "c d e f"], "test"),
        ClipRecord("window", "good.mp4", ["x"], "test", start=0.5, end=1.5),
    ]
    table = clip_table(ClipSet("t", "test", records, tmp_path)).set_index("id")
    assert table.loc["good", "duration_s"] == pytest.approx(2.0, abs=0.13)
    assert np.isnan(table.loc["bad", "duration_s"])
    assert table.loc["window", "duration_s"] == pytest.approx(1.0)
    assert table.loc["bad", "caption_words"] == 3.0  # mean of 2 and 4 words
    assert table.loc["bad", "category"] == "none"
