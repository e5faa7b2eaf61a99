"""The moment-retrieval demo in a real browser: ``streamlit run`` driven by headless Chromium.

The app (lib/vtr/moments/app.py) starts on a free loopback port with a random-weights vtr-tiny (no
pretraining) and a folder holding one generated video. The browser uploads a file that is not a video
(the app must say so, not show a traceback), then a real video, types a query and waits for the top
moments with their times; the screenshot and the server's log go to ``$VTR_ARTIFACTS_DIR/browser/``
(default ``tmp/artifacts/browser/``).

Needs Debian's chromium (``.ci/run`` installs it), playwright (dev extra) and streamlit (demo extra).
Without them the test is skipped, except under ``CI=true``, where it fails.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from vtr.moments import app
from vtr.paths import project_root
from vtr.video import write_video

from .conftest import CHROMIUM, CHROMIUM_FLAGS, artifacts_dir, require

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = project_root()
# The same flags as tests/test_browser.py: root in CI, no GPU, no network chatter, tiny /dev/shm.
SERVER_START_S = 90
ANSWER_S = 240  # loading the encoder and decoding the video on a busy 2-core machine


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture()
def videos(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    folder = tmp_path / "videos"
    folder.mkdir()
    write_video(folder / "sample.mp4", rng.integers(0, 255, size=(48, 32, 32, 3), dtype=np.uint8), 4)
    return folder


@pytest.fixture()
def demo(videos: Path, tmp_path: Path) -> Iterator[str]:
    """``streamlit run`` of the app on 127.0.0.1 and a free port; yields its URL."""
    require(importlib.util.find_spec("playwright") is not None, "the playwright package (dev extra)")
    require(importlib.util.find_spec("streamlit") is not None, "the streamlit package (demo extra)")
    require(CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK), f"{CHROMIUM} (Debian's chromium package)")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != app.ARGS_ENV}
    env[app.ARGS_ENV] = (
        f"--set 'model.pretrained=\"\"' --set device=cpu --set data_dir={tmp_path / 'data'} --videos {videos}"
    )
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "lib"), env.get("PYTHONPATH", "")]))
    command = [
        sys.executable, "-m", "streamlit", "run", str(Path(app.__file__)), "--server.port", str(port),
        "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false",
    ]  # fmt: skip
    log = tmp_path / "streamlit.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command, env=env, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"streamlit exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"streamlit did not answer within {SERVER_START_S} s:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        (artifacts_dir() / "demo-streamlit.log").write_bytes(log.read_bytes())


def test_upload_a_video_query_it_and_see_the_moments(demo: str, videos: Path, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    not_a_video = tmp_path / "notes.txt"
    not_a_video.write_text("this is not a video\n")
    upload = tmp_path / "upload.mp4"
    upload.write_bytes((videos / "sample.mp4").read_bytes())
    shots = artifacts_dir()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS, headless=True
        )
        page = browser.new_page(viewport={"width": 1280, "height": 1600})
        try:
            page.goto(demo)
            expect(page.get_by_text("Moment retrieval")).to_be_visible(timeout=ANSWER_S * 1000)
            page.locator('input[type="file"]').set_input_files(str(not_a_video))
            expect(page.get_by_text("is not a video this app can read")).to_be_visible(
                timeout=ANSWER_S * 1000
            )
            assert page.get_by_text("Traceback").count() == 0
            page.locator('input[type="file"]').set_input_files(str(upload))
            query = page.get_by_label("query")
            expect(query).to_be_visible(timeout=ANSWER_S * 1000)
            query.fill("a shape moves")
            query.press("Enter")
            first = page.get_by_text("1.", exact=False).filter(has_text=" s – ")
            expect(first.first).to_be_visible(timeout=ANSWER_S * 1000)
            expect(page.get_by_text("per-clip score")).to_be_visible()
            # the score chart and the moments' thumbnails render, not just their placeholders
            expect(page.locator('[data-testid="stImage"] img').first).to_be_visible(timeout=60_000)
            expect(page.locator("canvas.marks, svg.marks").first).to_be_visible(timeout=60_000)
            text = page.locator("body").inner_text()
            assert "top moments" in text and "score" in text, text[-2000:]
            page.screenshot(path=str(shots / "demo_moments.png"), full_page=True)
        except Exception:
            page.screenshot(path=str(shots / "demo_failure.png"), full_page=True)
            raise
        finally:
            browser.close()
