"""``vtr config show`` and ``vtr config diff``: what they print, and a bad value as exit status 2."""

from __future__ import annotations

import pytest
import yaml

from vtr.cli import main
from vtr.config import differences, load_profile
from vtr.config_command import format_differences


def test_show_prints_every_key_of_the_loaded_profile(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "show", "--profile", "full", "--set", "seed=3"]) == 0
    shown = yaml.safe_load(capsys.readouterr().out)
    assert shown == load_profile("full", {"seed": 3}).to_dict()


def test_diff_prints_one_line_per_changed_key(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "diff", "full"]) == 0
    lines = capsys.readouterr().out.splitlines()
    changed = differences(load_profile("sample"), load_profile("full"))
    assert [line.split(":", 1)[0] for line in lines] == list(changed)
    assert (
        "data.source: sample -> internvid" in lines
        and "finetune.seeds: [0] -> [0, 1, 2, 3, 4]" in lines
    )
    assert main(["config", "diff", "sample"]) == 0 and capsys.readouterr().out == "no differences\n"
    assert format_differences({"a.b": ("", [])}) == "a.b: '' -> []\n"


def test_a_wrong_value_is_exit_status_2_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "show", "--set", "data.source=msrvt"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "'data.source'" in err and "'msrvt'" in err and "did you mean 'msrvtt'" in err
