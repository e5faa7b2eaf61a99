from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from vtr.report.readme import BEGIN, END, ReadmeError, main, replace_section, results_section, update_readme


def _run() -> dict[str, Any]:
    return {
        "profile": {"name": "sample"},
        "environment": {"git_commit": "abc1234", "device": "cpu (x86_64, 2 CPUs)", "torch": "2.14.1"},
        "started_at": "2026-01-01T10:00:00+00:00",
        "finished_at": "2026-01-01T10:06:00+00:00",
        "notebooks": [
            {
                "stem": "01_baselines",
                "status": "ok",
                "this_run": True,
                "duration_s": 109.4,
                # headline keys first, in their order; nested keys dotted; lists left out
                "metrics": {
                    "_headline": ["test_t2v_R@1", "runs.small.psnr"],
                    "profile": "sample",
                    "runs": {"small": {"psnr": 21.81234}},
                    "test_t2v_R@1": 50.0,
                    "curve": [1, 2, 3],
                    "verdict": "a | b",
                },
            },
            {"stem": "02_fail", "status": "failed", "this_run": True, "duration_s": 3.2, "metrics": {}},
            {"stem": "03_old", "status": "ok", "this_run": False, "duration_s": None, "metrics": {}},
            {"stem": "04_now", "status": "not run", "this_run": True, "duration_s": None, "metrics": {}},
            {"stem": "05_later", "status": "not run", "this_run": False, "duration_s": None, "metrics": {}},
        ],
    }


def _readme(tmp_path: Path, body: str = "old table\n") -> Path:
    path = tmp_path / "README.md"
    path.write_text(f"# title\n\nbefore\n{BEGIN}\n{body}{END}\n\nafter\n", encoding="utf-8")
    return path


def test_section_has_one_row_per_notebook_with_headline_metrics_first() -> None:
    text = results_section(_run(), metrics=3)
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    stems = ["`01_baselines`", "`02_fail`", "`03_old`", "`04_now`", "`05_later`"]
    assert [r.split("|")[1].strip() for r in rows] == stems
    assert rows[0] == (
        "| `01_baselines` | ok | 1 min 49 s | `test_t2v_R@1` 50; `runs.small.psnr` 21.81; `profile` sample |"
    )
    assert "| `02_fail` | failed | 3 s | none |" in rows[1]
    assert "ok, previous run" in rows[2] and "| – |" in rows[2]
    assert "| running, or the run was interrupted |" in rows[3]  # interrupted while executing
    assert "| not run |" in rows[4]
    assert "commit `abc1234`" in text and "cpu (x86_64, 2 CPUs)" in text


def test_pipes_in_values_do_not_break_the_table() -> None:
    text = results_section(_run(), metrics=10)
    assert "`verdict` a \\| b" in text


def test_update_rewrites_only_between_the_markers(tmp_path: Path) -> None:
    run_json = tmp_path / "run.json"
    run_json.write_text(json.dumps(_run()), encoding="utf-8")
    readme = _readme(tmp_path)
    assert update_readme(run_json, readme) is True
    text = readme.read_text(encoding="utf-8")
    assert "old table" not in text and "`test_t2v_R@1` 50" in text
    assert text.startswith(f"# title\n\nbefore\n{BEGIN}\n") and text.endswith(f"{END}\n\nafter\n")
    assert update_readme(run_json, readme) is False  # a second run changes nothing
    assert readme.read_text(encoding="utf-8") == text


def test_missing_markers_are_an_error_naming_the_file() -> None:
    with pytest.raises(ReadmeError, match="README.md: expected one line"):
        replace_section("no markers here\n", "table", "README.md")
    with pytest.raises(ReadmeError, match="found 2 begin"):
        replace_section(f"{BEGIN}\n{BEGIN}\n{END}\n", "table")


def test_bad_run_json_names_the_file_and_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    readme = _readme(tmp_path)
    broken = _run()
    del broken["notebooks"][1]["status"]
    run_json = tmp_path / "run.json"
    run_json.write_text(json.dumps(broken), encoding="utf-8")
    assert main(["--run", str(run_json), "--readme", str(readme)]) == 2
    assert f"{run_json}: notebooks[1] has no field 'status'" in capsys.readouterr().err
    assert main(["--run", str(tmp_path / "absent.json"), "--readme", str(readme)]) == 2
    assert "absent.json: cannot read" in capsys.readouterr().err
    assert "old table" in readme.read_text(encoding="utf-8")  # untouched
