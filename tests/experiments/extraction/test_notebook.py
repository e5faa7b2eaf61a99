"""Notebook 06 end to end through ``run_all.py --only 06``, on a small world with random weights."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from vtr.paths import project_root
from vtr.report import read_strict_json

from .conftest import SMALL

ROOT = project_root()
# Ray is covered by tests/extract/test_engines.py; here its cell must report itself skipped.
RUN = {**SMALL, "extract.ray": False, "extract.prompt_epochs": 1}


@pytest.mark.slow  # ~2-3 min on 2 busy cores: a world, two extractions, the comparisons, one epoch of prompts
def test_notebook_06_runs_and_saves_its_headline_metrics(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    command = [sys.executable, str(ROOT / "run_all.py"), "--profile", "sample", "--only", "06",
               "--reports", str(reports), "--no-progress", "--set", f"data_dir={tmp_path / 'data'}"]  # fmt: skip
    for key, value in RUN.items():
        command += ["--set", f"{key}={json.dumps(value)}"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    row = next(
        r for r in json.loads((reports / "run.json").read_text())["notebooks"] if r["stem"].startswith("06_")
    )
    assert row["status"] == "ok", row.get("error")
    metrics = read_strict_json(reports / "metrics" / "06_extraction_search.json")
    assert metrics["extraction"]["world"]["processed"] == SMALL["world.n_clips"]
    assert metrics["tempme"]["tokens_on"] < metrics["tempme"]["tokens_off"]
    assert metrics["stop"]["epochs"] == 1 and metrics["ray"]["status"] == "skipped"
    assert "random weights" in metrics["vit"]
    for figure in ("06_extraction_search_examples", "06_extraction_search_comparisons"):
        assert (reports / "metrics" / f"{figure}.png").is_file()
