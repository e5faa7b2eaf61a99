import random

import numpy as np
import torch

from vtr.atomic import write_json
from vtr.runtime import environment_info, resolve_device, seed_everything


def _draw() -> tuple[float, float, float]:
    return random.random(), float(np.random.rand()), float(torch.rand(1))


def test_seed_everything_repeats_every_source() -> None:
    seed_everything(7)
    first = _draw()
    seed_everything(7)
    assert _draw() == first
    seed_everything(8)
    assert _draw() != first


def test_resolve_device_on_cpu_machine() -> None:
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type in {"cpu", "cuda", "mps"}


def test_environment_info_has_versions() -> None:
    info = environment_info("cpu")
    assert info["torch"] == torch.__version__
    assert {"git_commit", "python", "open_clip", "device"} <= set(info)


def test_write_json_is_deterministic(tmp_path) -> None:
    a = write_json(tmp_path / "a.json", {"b": 1, "a": np.float64(0.5)}).read_bytes()
    b = write_json(tmp_path / "b.json", {"a": 0.5, "b": 1}).read_bytes()
    assert a == b


def test_atomic_files_get_umask_permissions(tmp_path) -> None:
    import os

    mask = os.umask(0o022)
    try:
        path = write_json(tmp_path / "p.json", {})
    finally:
        os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o644


def test_median_seconds_warms_up_once_then_takes_the_median() -> None:
    import time

    from vtr.runtime import median_seconds

    delays = iter([0.2, 0.0, 0.03, 0.0])  # the warm-up call is the slow one and must not count
    calls = []

    def fn() -> None:
        calls.append(1)
        time.sleep(next(delays))

    seconds = median_seconds(fn, repeats=3)
    assert len(calls) == 4
    assert 0.0 <= seconds < 0.03  # median of (0, 0.03, 0): about 0, far below the warm-up
