"""``vtr moments eval`` through ``vtr.cli.main``: the table, the official keys in --json, one-line errors."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from vtr.cli import main

GT = [
    {"qid": 1, "query": "a dog runs", "duration": 20, "vid": "a", "relevant_clip_ids": [2, 3],
     "saliency_scores": [[4, 3, 2], [2, 2, 1]], "relevant_windows": [[4, 8]]},
    {"qid": 2, "query": "a cat sleeps", "duration": 20, "vid": "a", "relevant_clip_ids": [7],
     "saliency_scores": [[1, 4, 4]], "relevant_windows": [[14, 16]]},
]  # fmt: skip
PREDS = [
    {
        "qid": 1,
        "vid": "a",
        "pred_relevant_windows": [[4, 8, 0.9], [0, 2, 0.1]],
        "pred_saliency_scores": [0] * 10,
    },
    {"qid": 2, "vid": "a", "pred_relevant_windows": [[0, 10, 0.8]], "pred_saliency_scores": [1] * 10},
]


def _jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture()
def gt(tmp_path: Path) -> Path:
    return _jsonl(tmp_path / "gt.jsonl", GT)


def test_eval_prints_the_table_and_writes_the_official_keys(
    tmp_path: Path, gt: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    preds = _jsonl(tmp_path / "preds.jsonl", PREDS)
    out = tmp_path / "metrics.json"
    assert main(["moments", "eval", "--preds", str(preds), "--gt", str(gt), "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "MR-full-R1@0.5" in printed and "HL-min-VeryGood-Hit1" in printed
    metrics = json.loads(out.read_text())
    assert list(metrics)[:5] == ["brief", "HL-min-Fair", "HL-min-Good", "HL-min-VeryGood", "full"]
    assert metrics["brief"]["MR-full-R1@0.5"] == 50.0  # query 1's top window is exact, query 2's misses
    assert metrics["brief"]["MR-full-R1@0.5"] == metrics["full"]["MR-R1"]["0.5"]
    # qid 1's flat saliency: argmax is clip 0, not relevant; qid 2's too (clip 0): no hit
    assert metrics["brief"]["HL-min-Fair-Hit1"] == 0.0
    assert "intervals" not in metrics


def test_eval_bootstrap_adds_intervals(tmp_path: Path, gt: Path) -> None:
    preds = _jsonl(tmp_path / "preds.jsonl", PREDS)
    out = tmp_path / "metrics.json"
    argv = [
        "moments",
        "eval",
        "--preds",
        str(preds),
        "--gt",
        str(gt),
        "--json",
        str(out),
        "--bootstrap",
        "50",
    ]
    assert main(argv) == 0
    low, high = json.loads(out.read_text())["intervals"]["brief"]["MR-full-mAP"]
    assert low <= high


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (PREDS[:1], r"qid 2 \(.*gt.jsonl:2\) has no prediction"),
        ([PREDS[0], PREDS[0]], r"preds.jsonl:2: field 'qid' 1 already used at .*preds.jsonl:1"),
        (
            [PREDS[0], {**PREDS[1], "pred_relevant_windows": [[10, 24, 0.5]]}],
            r"preds.jsonl:2: qid 2: window \[10, 24\] is outside the video \[0, 20\]",
        ),
        ([*PREDS, {**PREDS[1], "qid": 9}], r"preds.jsonl:3: qid 9 is not in the ground truth"),
    ],
)
def test_eval_bad_predictions_exit_2_with_one_line(
    tmp_path: Path, gt: Path, capsys: pytest.CaptureFixture[str], rows: list[dict[str, Any]], message: str
) -> None:
    preds = _jsonl(tmp_path / "preds.jsonl", rows)
    out = tmp_path / "metrics.json"
    assert main(["moments", "eval", "--preds", str(preds), "--gt", str(gt), "--json", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("vtr moments eval: error:")
    assert re.search(message, err), err
    assert not out.exists()


def test_overrun_is_allowed_on_request(tmp_path: Path, gt: Path) -> None:
    rows = [PREDS[0], {**PREDS[1], "pred_relevant_windows": [[10, 24, 0.5]]}]
    preds = _jsonl(tmp_path / "preds.jsonl", rows)
    assert main(["moments", "eval", "--preds", str(preds), "--gt", str(gt), "--allow-overrun"]) == 0


def test_charades_ground_truth_gets_r1_and_miou(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gt = _jsonl(
        tmp_path / "gt.jsonl", [{k: v for k, v in GT[0].items() if "saliency" not in k and "clip" not in k}]
    )
    preds = _jsonl(tmp_path / "preds.jsonl", [{"qid": 1, "vid": "a", "pred_relevant_windows": [[4, 7, 1.0]]}])
    out = tmp_path / "m.json"
    assert main(["moments", "eval", "--preds", str(preds), "--gt", str(gt), "--json", str(out)]) == 0
    assert json.loads(out.read_text())["brief"] == {
        "R1@0.3": 100.0,
        "R1@0.5": 100.0,
        "R1@0.7": 100.0,
        "mIoU": 75.0,
    }


def test_missing_file_is_a_usage_error(tmp_path: Path, gt: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["moments", "eval", "--preds", str(tmp_path / "nope.jsonl"), "--gt", str(gt)]) == 2
    assert "nope.jsonl not found" in capsys.readouterr().err


# ----------------------------------------------------------------------------- predict and train


def _sets(values: list[str]) -> list[str]:
    return [arg for value in values for arg in ("--set", value)]


def test_predict_prints_windows_and_saliency_and_writes_json(
    mini_qvh: Path, fast_sets: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    video, out = mini_qvh / "videos" / "vT.mp4", tmp_path / "pred.json"
    argv = ["moments", "predict", "--video", str(video), "--query", "a shape", "--query", "a square moves"]
    assert main([*argv, "--top-k", "3", "--json", str(out), *_sets(fast_sets)]) == 0
    printed = capsys.readouterr().out
    assert printed.count("query: ") == 2 and "saliency: 6 clips of 2 s" in printed
    rows = json.loads(out.read_text())
    assert [r["query"] for r in rows] == ["a shape", "a square moves"]
    for row in rows:
        assert 1 <= len(row["pred_relevant_windows"]) <= 3 and len(row["saliency"]) == 6
        assert all(0 <= s < e <= 12 for s, e, _ in row["pred_relevant_windows"])


def test_predict_errors_are_one_line_with_status_2(
    tmp_path: Path, fast_sets: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["moments", "predict", "--video", str(tmp_path / "nope.mp4"), "--query", "x"]) == 2
    assert "no such video file" in capsys.readouterr().err
    import numpy as np

    from vtr.video import write_video

    short = tmp_path / "short.mp4"
    write_video(short, np.zeros((2, 32, 32, 3), dtype=np.uint8), 4)  # half a second: less than one clip
    assert main(["moments", "predict", "--video", str(short), "--query", "x", *_sets(fast_sets)]) == 2
    assert "shorter than one 2 s clip" in capsys.readouterr().err


def test_train_writes_checkpoints_predictions_and_official_metrics_then_resumes(
    qvh_sets: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["moments", "train", "--no-progress", *_sets(qvh_sets)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "MR-full-R1@0.5" in printed and "temporal" in printed and "span" in printed
    runs = tmp_path / "data" / "runs" / "moments"
    checkpoints = sorted(p.parent.name.split("-")[0] for p in runs.glob("*/model.pt"))
    assert checkpoints == ["span", "temporal"]
    first = {}
    for name in ("zero_shot", "temporal", "span"):
        metrics = json.loads((runs / "test" / f"{name}_metrics.json").read_text())
        assert {"MR-full-R1@0.5", "MR-full-mAP", "HL-min-VeryGood-Hit1"} <= set(metrics["brief"])
        assert "intervals" in metrics
        preds = (runs / "test" / f"{name}_preds.jsonl").read_text().splitlines()
        assert len(preds) == 2  # both test queries, validated by the writer
        first[name] = metrics["brief"]
    stamps = {p: p.stat().st_mtime_ns for p in runs.glob("*/model.pt")}
    # A rerun reloads the finished models (checkpoints untouched) and scores them the same.
    assert main(argv) == 0
    assert {p: p.stat().st_mtime_ns for p in runs.glob("*/model.pt")} == stamps
    for name, brief in first.items():
        assert json.loads((runs / "test" / f"{name}_metrics.json").read_text())["brief"] == brief


def test_train_on_missing_annotations_is_a_one_line_error(
    tmp_path: Path, fast_sets: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    sets = [
        f"data_dir={tmp_path}",
        "moments.dataset=qvhighlights",
        f"moments.annotations={tmp_path}",
        *fast_sets,
    ]
    assert main(["moments", "train", "--no-progress", *_sets(sets)]) == 2
    assert "highlight_train_release.jsonl not found" in capsys.readouterr().err
