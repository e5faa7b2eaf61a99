from dataclasses import dataclass, field
from pathlib import Path

import pytest

from vtr.keys import NOT_IN_KEYS, array_digest, cache_root, canonical, hub_offline, run_key, unit_hash


@dataclass
class Inner:
    size: int = 64
    data_dir: str = "data"


@dataclass
class Outer:
    seed: int = 0
    inner: Inner = field(default_factory=Inner)
    progress: bool = True


def test_run_key_ignores_excluded_fields_at_every_depth():
    a = run_key(Outer())
    assert a == run_key(Outer(progress=False, inner=Inner(data_dir="/elsewhere")))
    assert a != run_key(Outer(seed=1))
    assert a != run_key(Outer(inner=Inner(size=32)))
    assert len(a) == 16 and len(run_key(Outer(), size=4)) == 8


def test_run_key_is_order_independent_for_mappings_and_distinguishes_parts():
    assert run_key({"a": 1, "b": 2}) == run_key({"b": 2, "a": 1})
    assert run_key({"a": 1}, "v2") != run_key({"a": 1}, "v3")
    assert run_key({"a": [1, 2]}) != run_key({"a": [2, 1]})


def test_canonical_plain_json():
    assert canonical({"p": Path("x/y"), "t": (1, 2), "s": {3, 1}}) == {"p": "x/y", "t": [1, 2], "s": [1, 3]}
    assert "data_dir" in NOT_IN_KEYS and "device" not in NOT_IN_KEYS


def test_unit_hash_is_stable_and_uniformish():
    assert unit_hash("video_1", 0) == unit_hash("video_1", 0)
    assert unit_hash("video_1", 0) != unit_hash("video_1", 1)
    values = [unit_hash(f"k{i}") for i in range(2000)]
    assert all(0 <= v < 1 for v in values)
    assert abs(sum(v < 0.5 for v in values) / len(values) - 0.5) < 0.05


def test_cache_root_honours_data_dir(tmp_path):
    assert cache_root(tmp_path, "frames") == tmp_path / "cache" / "frames"


@pytest.mark.parametrize(("value", "expected"), [("1", True), ("true", True), ("0", False), ("", False)])
def test_hub_offline(monkeypatch, value, expected):
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", value)
    assert hub_offline() is expected


def test_array_digest_is_the_content_in_order():
    import hashlib

    import numpy as np

    a, b = np.arange(6, dtype=np.float32).reshape(2, 3), np.array([1, 2], dtype=np.int64)
    by_hand = hashlib.blake2b(a.tobytes() + b.tobytes(), digest_size=8).hexdigest()
    assert array_digest(a, b) == by_hand and len(array_digest(a)) == 16
    assert array_digest(a.T.copy().T) == array_digest(a)  # memory layout does not matter, content does
    assert array_digest(b, a) != by_hand and array_digest(a, size=4) != array_digest(a)[:8]
