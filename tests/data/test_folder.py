"""A folder of videos with a captions csv / jsonl."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from vtr.data.folder import load_folder
from vtr.data.manifest import DataWarning, ManifestError, hash_split, read_manifest, write_manifest


def make_folder(root: Path, names: list[str]) -> Path:
    """Placeholder video files: the loader matches names and never decodes."""
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"\x00")
    return root


CSV = """video,caption,split,category,start,end
a.mp4,a red ball rolls,,sports,,
a,  a red   ball bounces ,,,,
sub/b.mp4,a blue cube,test,,,
b,a blue cube spins,test,,,
long.mp4,a dog sits,,,0,4.5
long.mp4,a dog jumps,,,4.5,9
long.mp4,the dog sits down,,,0,4.5
missing.mp4,a ghost,,,,
a.mp4,,,,,
a.mp4,a red ball,holdout,,,
long.mp4,backwards,,,9,3
"""


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    return make_folder(tmp_path / "videos", ["a.mp4", "sub/b.mp4", "long.mp4", "unused.mkv", "notes.txt"])


def test_load_folder_groups_captions_and_reports_problems(folder: Path, tmp_path: Path) -> None:
    captions = tmp_path / "captions.csv"
    captions.write_text(CSV)
    with pytest.warns(DataWarning) as caught:
        records = load_folder(folder, captions)
    by_id = {r.id: r for r in records}
    assert list(by_id) == ["a", "long@0-4.5", "long@4.5-9", "sub/b"]  # sorted by id
    assert (
        by_id["a"].captions == ["a red ball rolls", "a red ball bounces"] and by_id["a"].category == "sports"
    )
    assert by_id["sub/b"].captions == ["a blue cube", "a blue cube spins"] and by_id["sub/b"].split == "test"
    assert by_id["long@0-4.5"].captions == ["a dog sits", "the dog sits down"]
    assert (by_id["long@4.5-9"].start, by_id["long@4.5-9"].end) == (4.5, 9.0)
    assert by_id["a"].video == str((folder / "a.mp4").resolve())
    assert records.report["videos_without_captions"] == ["unused.mkv"]
    assert records.report["captions_without_videos"] == [f"{captions}:9: missing.mp4"]
    skipped = records.report["skipped_rows"]
    assert [s.split(": ")[0] for s in skipped] == [f"{captions}:10", f"{captions}:11", f"{captions}:12"]
    assert "'caption'" in skipped[0] and "'split'" in skipped[1] and "'end'" in skipped[2]
    assert len(caught) == 3
    # Clips cut from one video share its split, whatever the hash of the clip id would say.
    assert by_id["long@0-4.5"].split == by_id["long@4.5-9"].split == hash_split("long", 0, (0.8, 0.1, 0.1))
    assert read_manifest(write_manifest(tmp_path / "m.jsonl", records)) == list(records)


def test_jsonl_gives_the_same_records(folder: Path, tmp_path: Path) -> None:
    rows = [
        {"video_id": "a", "sentence": "a red ball rolls", "category": "sports"},
        {"video_id": "sub/b", "sentence": "a blue cube", "split": "test"},
        {"video_id": "long.mp4", "sentence": "a dog jumps", "start": 4.5, "end": 9},
    ]
    jsonl, csv = tmp_path / "c.jsonl", tmp_path / "c.csv"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in rows))
    csv.write_text("video_id,sentence,category,split,start,end\na,a red ball rolls,sports,,,\n"
                   "sub/b,a blue cube,,test,,\nlong.mp4,a dog jumps,,,4.5,9\n")  # fmt: skip
    with pytest.warns(DataWarning):
        from_jsonl = load_folder(folder, jsonl)
    with pytest.warns(DataWarning):
        from_csv = load_folder(folder, csv)
    strip = [(r.id, r.video, r.captions, r.split, r.start, r.end, r.category) for r in from_jsonl]
    assert strip == [(r.id, r.video, r.captions, r.split, r.start, r.end, r.category) for r in from_csv]


def test_ambiguous_names_are_reported_not_guessed(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "v", ["x.mp4", "x.webm", "p/y.mp4", "q/y.mp4"])
    captions = tmp_path / "c.csv"
    captions.write_text("video,caption\nx,one\nx.webm,two\ny.mp4,three\nq/y,four\n")
    with pytest.warns(DataWarning):
        records = load_folder(root, captions)
    assert [(r.id, r.captions) for r in records] == [("q/y", ["four"]), ("x.webm", ["two"])]
    assert [c.split(": ")[1] for c in records.report["captions_without_videos"]] == ["x", "y.mp4"]


def test_hash_split_is_stable_and_follows_the_fractions() -> None:
    keys = [f"video{i}" for i in range(3000)]
    splits = [hash_split(k, 0, (0.8, 0.1, 0.1)) for k in keys]
    assert splits == [hash_split(k, 0, (0.8, 0.1, 0.1)) for k in reversed(keys)][::-1]  # order-free
    counts = Counter(splits)
    # Binomial standard deviation for n=3000: sqrt(3000*0.1*0.9) ~ 16; allow 4 sigma.
    assert (
        abs(counts["train"] - 2400) < 90 and abs(counts["val"] - 300) < 66 and abs(counts["test"] - 300) < 66
    )
    other_seed = [hash_split(k, 1, (0.8, 0.1, 0.1)) for k in keys]
    assert 0.2 < sum(a != b for a, b in zip(splits, other_seed, strict=True)) / len(keys) < 0.5
    assert {hash_split(k, 0, (0.0, 0.0, 1.0)) for k in keys} == {"test"}
    with pytest.raises(ValueError, match="split_fractions"):
        hash_split("a", 0, (0.5, 0.5, 0.5))


def test_bad_captions_files_raise_naming_the_file(folder: Path, tmp_path: Path) -> None:
    no_caption = tmp_path / "nocap.csv"
    no_caption.write_text("video,label\na.mp4,x\n")
    with pytest.raises(ManifestError, match=r"nocap\.csv: no caption column; expected one of \['caption'"):
        load_folder(folder, no_caption)
    with pytest.raises(ManifestError, match=r"absent\.csv does not exist"):
        load_folder(folder, tmp_path / "absent.csv")
    with pytest.raises(ManifestError, match=r"videos folder .*nope does not exist"):
        load_folder(tmp_path / "nope", no_caption)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"video": "a.mp4", "caption": "fine"}\n{oops\n[1, 2]\n')
    with pytest.warns(DataWarning) as caught:
        records = load_folder(folder, bad)
    assert any("2 bad row(s) skipped" in str(w.message) for w in caught)
    assert [r.id for r in records] == ["a"]
    assert [s.split(": ")[0] for s in records.report["skipped_rows"]] == [f"{bad}:2", f"{bad}:3"]


def test_conflicting_split_for_one_clip_skips_the_row(folder: Path, tmp_path: Path) -> None:
    captions = tmp_path / "c.csv"
    captions.write_text("video,caption,split\na.mp4,one,train\na.mp4,two,test\n")
    with pytest.warns(DataWarning):
        records = load_folder(folder, captions)
    assert records[0].captions == ["one"] and records[0].split == "train"
    assert "'split' is 'test' but line 2 gave 'train'" in records.report["skipped_rows"][0]
