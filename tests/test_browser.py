"""JupyterLab in a real browser: what the README asks a user to do, done by headless Chromium.

JupyterLab starts on a free loopback port without a token, on a copy of the project (pyproject.toml,
configs/ and notebooks/00_data.ipynb in a temporary folder) so that the sample world it builds, its
reports and the saved notebook stay out of the checkout. The browser opens notebooks/00_data.ipynb,
runs Run → Run All Cells from the menu, waits for every cell to finish and the kernel to go idle, and
checks that no cell failed, the figures rendered and the progress bars are widgets. Screenshots and the
server's log go to ``$VTR_ARTIFACTS_DIR/browser/`` (default ``tmp/artifacts/browser/``).

Needs Debian's chromium (``apt-get install chromium``; ``.ci/run`` installs it) and the dev extra's
playwright and jupyterlab. Without them the test is skipped, except under ``CI=true``, where it fails.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest

from vtr.paths import project_root

from .conftest import CHROMIUM, CHROMIUM_FLAGS, artifacts_dir, require

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = project_root()
NOTEBOOK = "notebooks/00_data.ipynb"
SERVER_START_S = 90
RUN_ALL_S = 170  # the whole notebook; about 80 s measured on a busy 2-core machine
# A fresh user's JupyterLab, minus what would get in the way of a script: the "news" question, the
# update check, and virtual rendering of cells outside the viewport (every output must be in the page).
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
}
KERNEL_IDLE_JS = """() =>
  document.querySelector('.jp-Notebook-ExecutionIndicator')?.dataset.status === 'idle'
  && (document.querySelector('#jp-main-statusbar')?.textContent || '').includes('| Idle')"""
ALL_DONE_JS = """() => {
  const prompts = [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')].map(e => e.textContent.trim());
  const status = document.querySelector('.jp-Notebook-ExecutionIndicator')?.dataset.status;
  return prompts.some(t => /^\\[\\d+\\]:$/.test(t)) && !prompts.includes('[*]:') && status === 'idle';
}"""


@pytest.fixture()
def chromium() -> Path:
    """The browser and its driver, checked before anything starts."""
    require(importlib.util.find_spec("playwright") is not None, "the playwright package (dev extra)")
    require(importlib.util.find_spec("jupyterlab") is not None, "the jupyterlab package (lab extra)")
    require(CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK), f"{CHROMIUM} (Debian's chromium package)")
    return CHROMIUM


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    """The parts of the checkout that notebook 00 reads; vtr itself is imported from the environment."""
    copy = tmp_path / "project"
    (copy / "notebooks").mkdir(parents=True)
    shutil.copy2(ROOT / "pyproject.toml", copy)  # vtr.paths finds the project root by it
    shutil.copytree(ROOT / "configs", copy / "configs")
    shutil.copy2(ROOT / NOTEBOOK, copy / NOTEBOOK)
    return copy


def _server_env(home: Path) -> dict[str, str]:
    """The test's environment for JupyterLab and its kernels, with Jupyter's state in ``home``."""
    env = {
        key: value
        for key, value in os.environ.items()
        # run as a user would: no runner switches (VTR_PROGRESS=0 would hide the bars), no Agg backend
        if not key.startswith(("VTR_", "JUPYTER", "JPY_")) and key != "MPLBACKEND"
    }
    settings = home / "lab" / "user-settings"
    for plugin, values in LAB_SETTINGS.items():
        path = settings / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values), encoding="utf-8")
    env.update(
        JUPYTER_CONFIG_DIR=str(home / "config"),
        JUPYTER_DATA_DIR=str(home / "data"),
        JUPYTER_RUNTIME_DIR=str(home / "runtime"),
        JUPYTERLAB_SETTINGS_DIR=str(settings),
        JUPYTERLAB_WORKSPACES_DIR=str(home / "lab" / "workspaces"),
        JUPYTER_PREFER_ENV_PATH="1",  # the python3 kernel is this environment's Python, as in `make lab`
        IPYTHONDIR=str(home / "ipython"),
    )
    return env


def _wait_for_server(proc: subprocess.Popen[bytes], runtime: Path, log: Path) -> str:
    """The server's URL once it answers; its port (0 asked for any free one) is in its runtime file."""
    info_file = runtime / f"jpserver-{proc.pid}.json"
    deadline = time.monotonic() + SERVER_START_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"jupyter lab exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        if info_file.is_file():
            try:
                url = json.loads(info_file.read_text())["url"].rstrip("/")
                with urllib.request.urlopen(f"{url}/api/status", timeout=5) as response:
                    if response.status == 200:
                        return url
            except (OSError, ValueError, KeyError):
                pass  # the file is being written or the server is still starting
        time.sleep(0.5)
    pytest.fail(f"jupyter lab did not answer within {SERVER_START_S} s:\n{log.read_text()[-3000:]}")


@pytest.fixture()
def lab(chromium: Path, project: Path, tmp_path: Path) -> Iterator[str]:
    """JupyterLab on 127.0.0.1, any free port, no token, serving ``project``; yields its URL."""
    home = tmp_path / "jupyter"
    log = tmp_path / "jupyter-lab.log"
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--allow-root",  # CI runs as root
        "--ServerApp.ip=127.0.0.1",
        "--ServerApp.port=0",
        "--ServerApp.port_retries=0",
        "--IdentityProvider.token=",
        f"--ServerApp.root_dir={project}",
        "--LabApp.extension_manager=readonly",  # nothing to fetch from PyPI
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command,
            env=_server_env(home),
            cwd=project,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield _wait_for_server(proc, home / "runtime", log)
    finally:
        proc.send_signal(signal.SIGTERM)  # the server shuts its kernels down on the way out
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        shutil.copy2(log, artifacts_dir() / log.name)  # beside the screenshots, for a failed CI run


def _page_state(page: Any) -> dict[str, Any]:
    """What the notebook shows: prompts, output texts, images and progress widgets."""
    return page.evaluate(
        """() => ({
      prompts: [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')].map(e => e.textContent.trim()),
      texts: [...document.querySelectorAll('.jp-OutputArea-output')].map(e => e.textContent),
      images: [...document.querySelectorAll('.jp-OutputArea-output img')].map(e => e.naturalWidth),
      bars: [...document.querySelectorAll('.jp-OutputArea-output .widget-hprogress')].map(
        e => e.closest('.widget-hbox').textContent.replace(/\u2007/g, ' ')),  // tqdm pads with figure spaces
    })"""
    )


def _saved_outputs(path: Path, timeout_s: float = 30) -> list[Any]:
    """The outputs of the notebook at ``path`` once a save has written them (the server writes atomically)."""
    deadline = time.monotonic() + timeout_s
    while True:
        outputs = [out for cell in nbformat.read(path, as_version=4).cells for out in cell.get("outputs", [])]
        if outputs or time.monotonic() > deadline:
            return outputs
        time.sleep(0.5)


def _screenshot(page: Any, selector: str, path: Path) -> None:
    """A screenshot with the first element matching ``selector`` in view (if there is one)."""
    target = page.locator(selector)
    if target.count():
        target.first.scroll_into_view_if_needed()
    page.screenshot(path=str(path))


def test_notebook_00_runs_cell_by_cell_in_jupyterlab(chromium: Path, lab: str, project: Path) -> None:
    from playwright.sync_api import sync_playwright

    saved = project / NOTEBOOK
    source = nbformat.read(saved, as_version=4)
    code_cells = sum(cell.cell_type == "code" for cell in source.cells)
    figures = sum("plt.show()" in cell.source for cell in source.cells)
    shots = artifacts_dir()
    started = time.monotonic()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(chromium), args=CHROMIUM_FLAGS, headless=True
        )
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(SERVER_START_S * 1000)
        try:
            page.goto(f"{lab}/lab/tree/{NOTEBOOK}")
            page.wait_for_function(KERNEL_IDLE_JS, polling=500)  # the kernel has started
            page.get_by_role("menuitem", name="Run", exact=True).click()
            page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
            page.wait_for_function(ALL_DONE_JS, timeout=RUN_ALL_S * 1000, polling=1000)
            run_s = time.monotonic() - started
            state = _page_state(page)
            page.keyboard.press("Control+s")  # File → Save: the outputs as nbformat sees them, below
            outputs = _saved_outputs(saved)
            _screenshot(page, ".jp-OutputArea-output .widget-hprogress", shots / "00_data_progress.png")
            _screenshot(page, ".jp-OutputArea-output img", shots / "00_data_figures.png")
        except Exception:
            page.screenshot(path=str(shots / "00_data_failure.png"))
            raise
        finally:
            browser.close()

    print(f"Run All Cells finished {run_s:.0f} s after opening the page; screenshots in {shots}")
    errors = [text[:1000] for text in state["texts"] if "Traceback (most recent call last)" in text]
    assert not errors, f"cells failed in the browser: {errors}"
    unfinished = [p for p in state["prompts"] if not re.fullmatch(r"\[\d+\]:", p)]
    assert len(state["prompts"]) == code_cells and not unfinished, (
        f"cells that did not run: {state['prompts']}"
    )
    assert not [t for t in state["texts"] if "Error displaying widget" in t], "a widget did not render"
    assert len([w for w in state["images"] if w > 100]) >= figures > 0, f"figures rendered: {state['images']}"
    assert any("sample world" in bar and "100%" in bar for bar in state["bars"]), (
        f"the sample world's progress bar is not a finished widget: {state['bars']}"
    )

    assert not [out for out in outputs if out.output_type == "error"], "the saved notebook holds an error"
    assert sum("image/png" in out.get("data", {}) for out in outputs) >= figures
    assert any("application/vnd.jupyter.widget-view+json" in out.get("data", {}) for out in outputs)
    assert (project / "data" / "sample_world").is_dir(), "the sample world was not built in the copy"
    assert (project / "reports" / "metrics" / "00_data.json").is_file()
