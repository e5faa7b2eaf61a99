"""What to extract: folders and jsonl manifests, and the errors that name the file and line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vtr.data.manifest import ManifestError
from vtr.extract.inputs import InputError, list_videos


def test_a_folder_is_listed_recursively_with_folder_ids(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    for name in ("b.mp4", "sub/a.webm", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    records = list_videos(tmp_path)
    assert [(r.id, Path(r.video).name) for r in records] == [("b", "b.mp4"), ("sub/a", "a.webm")]
    assert all(Path(r.video).is_absolute() for r in records)


def test_a_manifest_resolves_paths_and_windows(tmp_path: Path) -> None:
    manifest = tmp_path / "clips.jsonl"
    lines = [
        {"video": "v/a.mp4"},
        {"video_path": "/abs/b.mp4", "start": 1, "end": 2.5},
        {"video": "c.mp4", "id": "C"},
    ]
    manifest.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    records = list_videos(manifest)
    assert [r.id for r in records] == ["v/a", "/abs/b@1-2.5", "C"]
    assert records[0].video == str(tmp_path / "v" / "a.mp4")
    assert (records[1].start, records[1].end) == (1.0, 2.5)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"id": "x"}', "clips.jsonl:1: no video"),
        ('{"video": "a.mp4", "start": "soon"}', "clips.jsonl:1: field 'start'"),
        ("not json", "clips.jsonl:1: not valid JSON"),
    ],
)
def test_bad_manifest_lines_name_the_file_line_and_field(tmp_path: Path, line: str, message: str) -> None:
    manifest = tmp_path / "clips.jsonl"
    manifest.write_text(line + "\n")
    with pytest.raises(ManifestError, match=message):
        list_videos(manifest)


def test_nothing_to_extract_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no video files"):
        list_videos(tmp_path)
    with pytest.raises(InputError, match="no such folder"):
        list_videos(tmp_path / "missing")
    (tmp_path / "list.csv").write_text("video\n")
    with pytest.raises(InputError, match="expected a folder of videos or a .jsonl manifest"):
        list_videos(tmp_path / "list.csv")
