"""The canonical manifest: a record's split is never guessed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from vtr.data.manifest import ClipRecord, ManifestError, read_manifest, write_manifest


def test_a_line_without_split_is_an_error_naming_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "manifest.jsonl"
    good = {"id": "a", "video": "a.mp4", "captions": ["a red ball"], "split": "train"}
    no_split = {"id": "b", "video": "b.mp4", "captions": ["a blue cube"]}
    path.write_text(json.dumps(good) + "\n\n" + json.dumps(no_split) + "\n")
    with pytest.raises(ManifestError, match=rf"{path}:3: missing field\(s\) \['split'\]"):
        read_manifest(path)


def test_a_record_cannot_be_built_without_split() -> None:
    with pytest.raises(TypeError, match="split"):
        ClipRecord(id="a", video="a.mp4", captions=["x"])  # type: ignore[call-arg]


def test_written_manifests_carry_split_and_read_back(tmp_path: Path) -> None:
    records = [
        ClipRecord("a", "a.mp4", ["x"], "val"),
        ClipRecord("b", "b.mp4", ["y"], "test", start=0, end=1),
    ]
    path = write_manifest(tmp_path / "m.jsonl", records)
    assert [json.loads(line)["split"] for line in path.read_text().splitlines()] == ["val", "test"]
    assert read_manifest(path) == records
    assert read_manifest(path, split="val") == records[:1]
