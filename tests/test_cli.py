"""The ``vtr`` command line: help, errors, and ``vtr download internvid`` end to end on 127.0.0.1."""

from __future__ import annotations

import functools
import http.server
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from vtr.cli import build_parser, main
from vtr.data.manifest import read_manifest
from vtr.video import probe, write_video


def test_download_internvid_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["download", "internvid", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for flag in [
        "--metadata",
        "--count",
        "--min-aesthetic",
        "--workers",
        "--out",
        "--retry-failed",
        "--profile",
    ]:
        assert flag in text


def test_installed_console_script_runs() -> None:
    script = Path(sys.executable).with_name("vtr")
    if not script.exists():
        pytest.skip("the vtr console script is not installed in this environment")
    result = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "download" in result.stdout


def test_a_missing_subcommand_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["download"])
    assert exit_info.value.code == 2
    assert "DATASET" in capsys.readouterr().err


def test_flags_override_the_profile() -> None:
    args = build_parser().parse_args(["download", "internvid", "--count", "7", "--profile", "full"])
    assert args.count == 7 and args.profile == "full" and args.min_aesthetic is None


def test_bad_input_is_a_clear_error_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope.jsonl"
    assert main(["download", "internvid", "--metadata", str(missing), "--out", str(tmp_path)]) == 2
    assert "nope.jsonl" in capsys.readouterr().err
    rows = tmp_path / "rows.jsonl"
    rows.write_text("")
    code = main(["download", "internvid", "--metadata", str(rows), "--url-template", "http://127.0.0.1/x"])
    assert code == 2 and "{youtube_id}" in capsys.readouterr().err


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def loopback(tmp_path: Path):
    """A folder served on 127.0.0.1 holding one 4 s video, ``v/cliclip0001.mp4``."""
    (tmp_path / "site" / "v").mkdir(parents=True)
    frames = np.zeros((40, 32, 48, 3), np.uint8)
    frames[:] = np.arange(40, dtype=np.uint8)[:, None, None, None] * 5
    write_video(tmp_path / "site" / "v" / "cliclip0001.mp4", frames, fps=10)
    handler = functools.partial(_QuietHandler, directory=str(tmp_path / "site"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v/{{youtube_id}}.mp4"
    server.shutdown()
    server.server_close()


def test_download_internvid_end_to_end(
    loopback: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [
        {"YoutubeID": "cliclip0001", "Start_timestamp": "00:00:00.500", "End_timestamp": "00:00:03.500",
         "Caption": "a fading square", "Aesthetic_Score": 5.5, "UMT_Score": 0.5},
        {"YoutubeID": "cliclip0404", "Start_timestamp": "00:00:00.500", "End_timestamp": "00:00:03.500",
         "Caption": "gone", "Aesthetic_Score": 5.5, "UMT_Score": 0.5},
        {"YoutubeID": "cliclip0002", "Start_timestamp": "00:00:00.500", "End_timestamp": "00:00:03.500",
         "Caption": "ugly", "Aesthetic_Score": 1.0, "UMT_Score": 0.5},
    ]  # fmt: skip
    metadata = tmp_path / "rows.jsonl"
    metadata.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out"
    argv = [
        "download",
        "internvid",
        "--metadata",
        str(metadata),
        "--out",
        str(out),
        "--url-template",
        loopback,
    ]
    argv += [
        "--count",
        "5",
        "--min-aesthetic",
        "4",
        "--workers",
        "2",
        "--no-progress",
        "--set",
        "internvid.retries=0",
    ]
    assert main(argv) == 0
    summary = capsys.readouterr().out
    assert "done 1 (1 new), failed 1 [http_404 1]" in summary
    (record,) = read_manifest(out / "manifest.jsonl")
    assert record.id == "cliclip0001_00000500_00003500" and record.captions == ["a fading square"]
    assert abs(probe(out / record.video).duration - 3.0) < 0.15
    # The rerun resumes: nothing new to fetch.
    assert main(argv) == 0
    assert "done 1 (0 new)" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------- vtr train


def test_train_relaunches_itself_under_torchrun(monkeypatch: pytest.MonkeyPatch) -> None:
    import vtr.cli as cli

    launched: list[list[str]] = []
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    monkeypatch.setattr(
        cli.subprocess,
        "run",
        lambda command: launched.append(command) or subprocess.CompletedProcess(command, 0),
    )
    assert main(["train", "--nproc", "3", "--set", "seed=2", "--only", "2", "--no-progress"]) == 0
    (command,) = launched
    assert command[:6] == [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "3",
    ]
    assert command[6:] == ["-m", "vtr.cli", "train", "--profile", "sample", "--set", "seed=2", "--only", "02",
                           "--no-progress"]  # fmt: skip
    # each process parses the same profile and trains in place (no --nproc: it would match torchrun's)
    inner = build_parser().parse_args(command[8:])
    assert (inner.nproc, inner.overrides, inner.only) == (1, ["seed=2"], ["02"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--nproc", "0"], "--nproc must be >= 1"),
        (["--only", "05"], "only notebooks 02, 03 train"),
        (["--only", "x"], "expected notebook numbers"),
        (["--set", "train.epochz=2"], "train.epochz"),
    ],
)
def test_train_rejects_bad_arguments_before_starting(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert main(["train", *args]) == 2
    assert message in capsys.readouterr().err


def test_no_progress_turns_off_every_bar_of_the_command_and_is_restored(monkeypatch) -> None:
    """--no-progress reaches bars the command does not pass ``progress`` to (the sample world, vtr-tiny's
    pretraining): the command runs with VTR_PROGRESS=0, and the caller's setting comes back after."""
    import vtr.experiments.moments.pipeline as pipeline
    from vtr.progress import PROGRESS_ENV, show_progress

    seen = []

    def fake_run(cfg, **kwargs):
        seen.append(show_progress(True))
        raise ValueError("stop here")

    monkeypatch.setattr(pipeline, "run_moments", fake_run)
    monkeypatch.delenv(PROGRESS_ENV, raising=False)
    assert main(["moments", "train", "--no-progress"]) == 2
    assert main(["moments", "train"]) == 2
    assert seen == [False, True] and PROGRESS_ENV not in os.environ
