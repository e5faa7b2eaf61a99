"""MSR-VTT: the real annotation files, bad inputs, pre-extracted features and video preparation."""

from __future__ import annotations

import csv
import json
import os
import re
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest

from vtr.data.manifest import DataWarning, ManifestError
from vtr.data.msrvtt import (
    SPLITS,
    category_names,
    load_features,
    load_msrvtt,
    normalize_caption,
    prepare_msrvtt,
    read_videodatainfo,
)
from vtr.video import write_video

# --- the real release ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def splits(msrvtt_dir: Path, msrvtt_info) -> dict:
    return {split: load_msrvtt(msrvtt_dir, split, info=msrvtt_info) for split in SPLITS}


def test_release_counts(msrvtt_info) -> None:
    assert len(msrvtt_info.videos) == 10_000
    assert sum(len(c) for c in msrvtt_info.captions.values()) == 200_000
    assert {len(c) for c in msrvtt_info.captions.values()} == {20}
    assert len(msrvtt_info.categories) == 20 and len({v.category_id for v in msrvtt_info.videos.values()}) == 20


def test_official_splits_follow_the_readme_ranges(splits) -> None:
    # readme.txt: Train video0-6512 (6513), Val video6513-7009 (497), Test video7010-9999 (2990).
    ranges = {"train": range(0, 6513), "val": range(6513, 7010), "test": range(7010, 10_000)}
    for split, expected in ranges.items():
        assert sorted(int(r.id.removeprefix("video")) for r in splits[split]) == list(expected)
        assert {r.split for r in splits[split]} == {split}
        assert all(len(r.captions) == 20 for r in splits[split])


def test_category_names_match_category_txt(msrvtt_dir: Path, splits) -> None:
    names = category_names(msrvtt_dir)
    assert names[0] == "music" and names[6] == "tv shows" and names[3] == "sports/actions"
    assert names[19] == "advertisement" and sorted(names) == list(range(20))
    for rec in splits["train"][:200]:
        assert rec.category == names[rec.meta["category_id"]]


def test_test_1k_is_the_jsfusion_csv(msrvtt_dir: Path, splits, msrvtt_info) -> None:
    with open(msrvtt_dir / "MSRVTT_JSFUSION_test.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    records = splits["test_1k"]
    assert len(records) == 1000 and len({r.id for r in records}) == 1000
    assert [r.id for r in records] == [row["video_id"] for row in rows]  # csv order is the query order
    assert all(
        r.captions == [normalize_caption(row["sentence"])] for r, row in zip(records, rows, strict=True)
    )
    assert {r.split for r in records} == {"test"} and {r.meta["msrvtt_split"] for r in records} == {"test"}

    # Each 1k-A sentence is one of the video's 20 release captions (JSFusion dropped punctuation).
    def words(text: str) -> str:
        return " ".join(re.sub(r"[^a-z0-9]+", " ", text.lower()).split())

    assert all(words(r.captions[0]) in {words(c) for c in msrvtt_info.captions[r.id]} for r in records)
    assert sum(r.captions[0] in msrvtt_info.captions[r.id] for r in records) == 988  # the rest differ in punctuation
    assert records[0].meta["query_keys"] == ["ret0"]


def test_train_9k_and_7k(splits) -> None:
    nine, seven, test_1k = splits["train_9k"], splits["train_7k"], splits["test_1k"]
    assert len(nine) == 9000 and all(len(r.captions) == 20 for r in nine)
    ids_9k, ids_1k = {r.id for r in nine}, {r.id for r in test_1k}
    assert not ids_9k & ids_1k and len(ids_9k | ids_1k) == 10_000
    assert {r.id for r in seven} == {r.id for r in splits["train"]} | {r.id for r in splits["val"]}
    assert len(seven) == 7010 and not {r.id for r in seven} & ids_1k


def test_meta_keeps_the_youtube_source(splits) -> None:
    rec = splits["train"][0]  # video0 in train_val_videodatainfo.json
    assert rec.id == "video0" and rec.video == "video0.mp4" and rec.start is None and rec.end is None
    assert rec.meta["url"] == "https://www.youtube.com/watch?v=9lZi22qLlEo"
    assert (rec.meta["source_start"], rec.meta["source_end"]) == (137.72, 149.44)
    assert rec.category == "vehicles/autos"


def test_unknown_split_is_rejected(msrvtt_dir: Path, msrvtt_info) -> None:
    with pytest.raises(ValueError, match="test_2k"):
        load_msrvtt(msrvtt_dir, "test_2k", info=msrvtt_info)


# --- a tiny release in MSR-VTT format ----------------------------------------------------------

CATEGORIES = "music\t0\npeople\t1\ntv shows\t2\n"
TINY = {  # video_id: (split in the release, category, number of captions)
    "video0": ("train", 0, 3),
    "video1": ("train", 1, 3),
    "video2": ("validate", 2, 2),
    "video3": ("test", 0, 2),
    "video4": ("test", 1, 2),
}


def write_tiny_release(folder: Path, videos: dict = TINY, drop_field: str | None = None) -> Path:
    """The five annotation files for ``videos`` (captions ``"<id> caption <k>"``)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "category.txt").write_text(CATEGORIES)
    sen_id = 0
    for name, in_file in (("train_val", ("train", "validate")), ("test", ("test",))):
        data: dict = {"info": {}, "videos": [], "sentences": []}
        for vid, (split, category, n_caps) in videos.items():
            if split not in in_file:
                continue
            video = {"video_id": vid, "category": category, "url": f"https://youtu.be/{vid}",
                     "start time": 1.5, "end time": 11.5, "split": split, "id": int(vid[5:])}  # fmt: skip
            video.pop(drop_field or "", None)
            data["videos"].append(video)
            for k in range(n_caps):
                data["sentences"].append(
                    {"sen_id": sen_id, "video_id": vid, "caption": f"{vid}  caption {k} "}
                )
                sen_id += 1
        (folder / f"{name}_videodatainfo.json").write_text(json.dumps(data))
    (folder / "MSRVTT_JSFUSION_test.csv").write_text(
        "key,vid_key,video_id,sentence\nret0,msr3,video3,video3 caption 1\nret1,msr4,video4,video4 caption 0\n"
    )
    (folder / "MSRVTT_train.9k.csv").write_text("video_id\nvideo0\nvideo1\nvideo2\n")
    return folder


def test_tiny_release_splits(tmp_path: Path) -> None:
    ann = write_tiny_release(tmp_path / "ann")
    assert [r.id for r in load_msrvtt(ann, "train")] == ["video0", "video1"]
    val = load_msrvtt(ann, "val", videos_dir="videos")
    assert val[0].split == "val" and val[0].video == os.path.join("videos", "video2.mp4")
    assert val[0].category == "tv shows" and val[0].captions == ["video2 caption 0", "video2 caption 1"]
    assert [r.captions for r in load_msrvtt(ann, "test_1k")] == [["video3 caption 1"], ["video4 caption 0"]]
    assert [r.id for r in load_msrvtt(ann, "train_9k")] == ["video0", "video1", "video2"]


def test_missing_file_and_field_are_named(tmp_path: Path) -> None:
    ann = write_tiny_release(tmp_path / "a")
    (ann / "MSRVTT_train.9k.csv").unlink()
    with pytest.raises(ManifestError, match=r"MSRVTT_train\.9k\.csv.*not found"):
        load_msrvtt(ann, "train_9k")
    ann = write_tiny_release(tmp_path / "b", drop_field="url")
    with pytest.raises(ManifestError, match=r"train_val_videodatainfo\.json: videos\[0\].*'url'"):
        read_videodatainfo(ann)
    ann = write_tiny_release(tmp_path / "c", videos={**TINY, "video5": ("test", 7, 1)})
    with pytest.raises(ManifestError, match=r"test_videodatainfo\.json: videos\[2\].*'category' is 7"):
        read_videodatainfo(ann)


def test_captionless_video_is_skipped_with_a_warning(tmp_path: Path) -> None:
    ann = write_tiny_release(tmp_path / "ann", videos={**TINY, "video1": ("train", 1, 0)})
    with pytest.warns(DataWarning, match="video1"):
        records = load_msrvtt(ann, "train")
    assert [r.id for r in records] == ["video0"] and records.report["videos_without_captions"] == ["video1"]


# --- pre-extracted features --------------------------------------------------------------------


def test_load_features_reorders_rows_to_the_records(tmp_path: Path) -> None:
    ann = write_tiny_release(tmp_path / "ann")
    records = load_msrvtt(ann, "train_9k")  # video0, video1, video2
    ids = ["video4", "video2", "video0", "video1", "video3"]
    feats = np.stack([np.full(3, int(v[5:]), dtype=np.float32) for v in ids])
    np.save(tmp_path / "f.npy", feats)
    (tmp_path / "ids.txt").write_text("\n".join(ids) + "\n")
    (tmp_path / "ids.json").write_text(json.dumps(ids))
    np.save(tmp_path / "ids.npy", np.array(ids))
    for ids_file in ("ids.txt", "ids.json", "ids.npy"):
        out = load_features(tmp_path / "f.npy", tmp_path / ids_file, records)
        assert out.shape == (3, 3) and out[:, 0].tolist() == [0.0, 1.0, 2.0]


def test_load_features_errors(tmp_path: Path) -> None:
    np.save(tmp_path / "f.npy", np.zeros((3, 2)))
    (tmp_path / "short.txt").write_text("video0\nvideo1\n")
    with pytest.raises(ManifestError, match=r"3 rows but .*short\.txt lists 2"):
        load_features(tmp_path / "f.npy", tmp_path / "short.txt", ["video0"])
    (tmp_path / "dup.txt").write_text("video0\nvideo1\nvideo0\n")
    with pytest.raises(ManifestError, match=r"duplicate.*video0"):
        load_features(tmp_path / "f.npy", tmp_path / "dup.txt", ["video0"])
    (tmp_path / "ids.txt").write_text("video0\nvideo1\nvideo2\n")
    with pytest.raises(ManifestError, match=r"2 of 3 annotation id\(s\) have no features: video7, video9"):
        load_features(tmp_path / "f.npy", tmp_path / "ids.txt", ["video1", "video7", "video9"])


# --- preparing videos from an archive or a folder ----------------------------------------------


@pytest.fixture(scope="module")
def tiny_mp4(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("mp4") / "clip.mp4"
    frames = np.random.default_rng(0).integers(0, 255, (4, 16, 16, 3), dtype=np.uint8)
    write_video(path, frames, fps=4)
    return path.read_bytes()


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def test_prepare_from_zip_extracts_and_reports_missing(tmp_path: Path, tiny_mp4: bytes) -> None:
    ann = write_tiny_release(tmp_path / "ann")
    # video4 is absent; a README and an mp4 with another name must be ignored.
    members = {f"MSRVTT/videos/all/video{i}.mp4": tiny_mp4 for i in range(4)}
    archive = _zip(tmp_path / "MSRVTT.zip", {**members, "MSRVTT/README": b"x", "MSRVTT/other.mp4": tiny_mp4})
    with pytest.warns(DataWarning) as caught:
        out = prepare_msrvtt(archive, ann, tmp_path / "out")
    assert {m for w in caught for m in re.findall(r"split '(\w+)' not found", str(w.message))} == {
        "test",
        "test_1k",
    }
    assert sorted(p.name for p in (out / "videos").iterdir()) == [f"video{i}.mp4" for i in range(4)]
    assert (out / "videos" / "video3.mp4").read_bytes() == tiny_mp4
    # the msrvtt source reads the extracted folder (data.root) with the annotations: video3 is test_1k's
    test_1k = load_msrvtt(ann, "test_1k", videos_dir=out / "videos")
    assert {r.id: Path(r.video).is_file() for r in test_1k} == {"video3": True, "video4": False}
    report = json.loads((out / "prepare_report.json").read_text())
    assert report["splits"]["test_1k"]["protocol"].startswith("1k-A")
    assert (report["splits"]["test_1k"]["annotated"], report["splits"]["test_1k"]["found"]) == (2, 1)
    assert report["splits"]["test_1k"]["missing_videos"] == ["video4"]
    assert report["splits"]["train_9k"]["missing_videos"] == [] and report["problems"] == []
    assert set(report["splits"]) == set(SPLITS)
    assert not any(p.suffix == ".jsonl" for p in out.iterdir())  # no manifests that nothing reads


def test_prepare_resumes_without_rewriting(tmp_path: Path, tiny_mp4: bytes) -> None:
    ann = write_tiny_release(tmp_path / "ann")
    archive = _zip(tmp_path / "v.zip", {f"video{i}.mp4": tiny_mp4 for i in range(5)})
    out = tmp_path / "out"
    (out / "videos").mkdir(parents=True)
    (out / "videos" / "video0.mp4").write_bytes(tiny_mp4)  # left by an interrupted run
    (out / "videos" / "video1.mp4").write_bytes(tiny_mp4[:10])  # half-written: must be redone
    os.utime(out / "videos" / "video0.mp4", ns=(1, 1))
    prepare_msrvtt(archive, ann, out, splits=["train"])
    assert (out / "videos" / "video0.mp4").stat().st_mtime_ns == 1
    assert (out / "videos" / "video1.mp4").read_bytes() == tiny_mp4
    assert not (out / "videos" / "video3.mp4").exists()  # only the requested splits' videos
    assert not [p for p in (out / "videos").iterdir() if p.name.startswith(".")]  # no temp files left


def test_prepare_from_tar_gz_and_folder(tmp_path: Path, tiny_mp4: bytes) -> None:
    ann = write_tiny_release(tmp_path / "ann")
    src = tmp_path / "src" / "nested"
    src.mkdir(parents=True)
    for i in (0, 2):
        (src / f"video{i}.mp4").write_bytes(tiny_mp4)
    with tarfile.open(tmp_path / "v.tar.gz", "w:gz") as tf:
        tf.add(src, arcname="MSRVTT")
    with pytest.warns(DataWarning, match="video1"):
        from_tar = prepare_msrvtt(tmp_path / "v.tar.gz", ann, tmp_path / "t", splits=["train_9k"])
    assert sorted(p.name for p in (from_tar / "videos").iterdir()) == ["video0.mp4", "video2.mp4"]
    assert json.loads((from_tar / "prepare_report.json").read_text())["splits"]["train_9k"]["found"] == 2
    with pytest.warns(DataWarning, match="video1"):
        from_dir = prepare_msrvtt(tmp_path / "src", ann, tmp_path / "d", splits=["train_9k"])
    report = json.loads((from_dir / "prepare_report.json").read_text())["splits"]["train_9k"]
    assert report["found"] == 2 and report["missing_videos"] == ["video1"]
    assert not (from_dir / "videos").exists()  # a folder source is used in place


def test_prepare_reports_damaged_archives(tmp_path: Path, tiny_mp4: bytes) -> None:
    ann = write_tiny_release(tmp_path / "ann")
    archive = _zip(tmp_path / "v.zip", {"video0.mp4": tiny_mp4, "video1.mp4": tiny_mp4[::-1]})
    data = bytearray(archive.read_bytes())
    at = data.find(tiny_mp4[::-1][100:200])
    data[at] ^= 0xFF  # video1's bytes no longer match its CRC
    archive.write_bytes(bytes(data))
    with pytest.warns(DataWarning):
        out = prepare_msrvtt(archive, ann, tmp_path / "out", splits=["train"])
    report = json.loads((out / "prepare_report.json").read_text())
    assert len(report["problems"]) == 1 and "video1.mp4" in report["problems"][0]
    assert report["splits"]["train"]["missing_videos"] == ["video1"]
    assert not (out / "videos" / "video1.mp4").exists()

    with tarfile.open(tmp_path / "v.tar.gz", "w:gz") as tf:
        for i in range(3):
            (tmp_path / f"video{i}.mp4").write_bytes(np.random.default_rng(i).bytes(200_000))
            tf.add(tmp_path / f"video{i}.mp4", arcname=f"video{i}.mp4")
    truncated = tmp_path / "v.tar.gz"
    truncated.write_bytes(truncated.read_bytes()[:300_000])
    with pytest.warns(DataWarning):
        out = prepare_msrvtt(truncated, ann, tmp_path / "out2", splits=["train_9k"])
    report = json.loads((out / "prepare_report.json").read_text())
    assert report["problems"] and report["splits"]["train_9k"]["found"] >= 1
    assert "video2" in report["splits"]["train_9k"]["missing_videos"]


def test_prepare_rejects_a_source_that_is_neither(tmp_path: Path) -> None:
    ann = write_tiny_release(tmp_path / "ann")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ManifestError, match=r"notes\.txt is neither a folder nor a zip / tar archive"):
        prepare_msrvtt(tmp_path / "notes.txt", ann, tmp_path / "out")
