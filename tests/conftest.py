"""Shared fixtures. Tests that read the real third-party files in ../shared/data skip when it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Keep the suite within the CI machine's 2 cores and away from any network.
os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (real annotation files and videos); skips the test when absent."""
    from vtr.paths import shared_data_dir

    path = shared_data_dir()
    if not path.is_dir():
        pytest.skip(f"real test data not found at {path}")
    return path


@pytest.fixture()
def reports_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private reports/ folder for tests that write metrics or figures."""
    out = tmp_path / "reports"
    monkeypatch.setenv("VTR_REPORTS_DIR", str(out))
    return out


@pytest.fixture(scope="session")
def random_tiny_encoder():  # -> vtr.models.encoders.Encoder (imported lazily: torch is slow to import)
    """vtr-tiny with seeded random weights: the encoder code path without the pretraining minutes."""
    import torch

    from vtr.models.encoders import create_encoder

    torch.manual_seed(0)
    return create_encoder("vtr-tiny", "", device="cpu", batch_size=6)


@pytest.fixture(scope="session")
def msrvtt_dir(shared_data: Path) -> Path:
    """The real MSR-VTT annotation files (``../shared/data/msrvtt``)."""
    return shared_data / "msrvtt"


@pytest.fixture(scope="session")
def msrvtt_info(msrvtt_dir: Path):  # -> vtr.data.msrvtt.VideoDataInfo (parsed once: ~2 s)
    from vtr.data.msrvtt import read_videodatainfo

    return read_videodatainfo(msrvtt_dir)


# ------------------------------------------------------------------ the browser tests' shared helpers
# (tests/test_browser.py drives JupyterLab, tests/test_demo_browser.py the Streamlit demo; both use
# Debian's chromium through Playwright's executable_path, since `playwright install` cannot download.)

CHROMIUM = Path(os.environ.get("VTR_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",  # containers often have a tiny /dev/shm
]
IN_CI = os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def require(available: bool, what: str) -> None:
    """Skip without ``what``, except in CI, where the browser tests must run."""
    if available:
        return
    if IN_CI:
        pytest.fail(f"{what} is missing, and CI=true requires the browser tests (.ci/run installs it)")
    pytest.skip(f"{what} is missing (outside CI the browser tests are optional)")


def artifacts_dir() -> Path:
    """``$VTR_ARTIFACTS_DIR/browser`` or ``tmp/artifacts/browser``: screenshots and logs of a run."""
    from vtr.paths import project_root

    folder = Path(os.environ.get("VTR_ARTIFACTS_DIR") or project_root() / "tmp" / "artifacts") / "browser"
    folder.mkdir(parents=True, exist_ok=True)
    return folder
