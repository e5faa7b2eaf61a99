"""The canonical manifest: a record's split is never guessed."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from vtr.data.internvid import split_for
from vtr.data.manifest import ClipRecord, ManifestError, hash_split, read_manifest, write_manifest


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


# --------------------------------------------------------------------------------- the hash split


def _old_hash_split(key: str, seed: int, fractions: list[float]) -> str:
    """The formula hash_split used before vtr.keys.unit_hash (SHA-256 of seed:key, first 8 bytes)."""
    u = int.from_bytes(hashlib.sha256(f"{seed}:{key}".encode()).digest()[:8], "big") / 2**64
    cumulative = 0.0
    for split, fraction in zip(("train", "val", "test"), fractions, strict=True):
        cumulative += fraction
        if u < cumulative:
            return split
    return "test"


def _old_internvid_split(key: str, fractions: list[float]) -> str:
    """internvid.split_for before it used hash_split: SHA-256 of the bare key."""
    u = int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big") / 2**64
    train, val, _ = fractions
    return "train" if u < train else "val" if u < train + val else "test"


@pytest.mark.parametrize("fractions", [[0.6, 0.15, 0.25], [0.8, 0.1, 0.1], [0.5, 0.5, 0.0]])
def test_existing_splits_do_not_move(fractions: list[float]) -> None:
    keys = [f"video{i}" for i in range(3000)] + [f"{i:011d}" for i in range(3000)]
    for seed in (0, 7):
        assert [hash_split(k, seed, fractions) for k in keys] == [
            _old_hash_split(k, seed, fractions) for k in keys
        ]
    assert [split_for(k, fractions) for k in keys] == [_old_internvid_split(k, fractions) for k in keys]
    assert {hash_split(k, 0, fractions) for k in keys} == {
        s for s, f in zip(("train", "val", "test"), fractions) if f
    }
