"""Moment annotations and predictions: the real QVHighlights / Charades-STA files and bad lines."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from vtr.data.manifest import ManifestError
from vtr.data.moments import (
    MomentPrediction,
    MomentQuery,
    load_moments,
    load_predictions,
    write_moments,
    write_predictions,
)


@pytest.fixture(scope="module")
def qvh_path(shared_data: Path) -> Path:
    return shared_data / "qvhighlights" / "highlight_val_release.jsonl"


@pytest.fixture(scope="module")
def charades_path(shared_data: Path) -> Path:
    return shared_data / "charades_sta" / "charades_test_release.jsonl"


@pytest.fixture(scope="module")
def qvh(qvh_path: Path) -> list[MomentQuery]:
    return load_moments(qvh_path)


def test_qvhighlights_val(qvh: list[MomentQuery]) -> None:
    assert len(qvh) == 1550 and len({q.qid for q in qvh}) == 1550
    assert all(0 <= s < e <= q.duration for q in qvh for s, e in q.windows)
    for q in qvh:
        assert q.clip_ids is not None and q.saliency is not None and len(q.saliency) == len(q.clip_ids)
        assert all(len(scores) == 3 and all(0 <= x <= 4 for x in scores) for scores in q.saliency)
        # Relevant clips are the 2-second clips inside the relevant windows.
        assert all(any(s <= 2 * c and 2 * c + 2 <= e for s, e in q.windows) for c in q.clip_ids)
    first = qvh[0]  # the first line of the file
    assert (first.qid, first.vid, first.duration, first.windows) == (
        2579,
        "NUsG9BgSes0_210.0_360.0",
        150,
        [(82, 150)],
    )


def test_charades_sta_test(charades_path: Path) -> None:
    queries = load_moments(charades_path)
    assert len(queries) == 3720 and len({q.vid for q in queries}) == 1334
    assert all(len(q.windows) == 1 and 0 <= q.windows[0][0] < q.windows[0][1] <= q.duration for q in queries)
    assert all(q.clip_ids is None and q.saliency is None for q in queries)
    assert queries[0] == MomentQuery(12404, "person turn a light on.", "3MSZA", 30.96, [(24.3, 30.4)])


@pytest.mark.parametrize("name", ["qvh_path", "charades_path"])
def test_round_trip_gives_the_file_back(name: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    path = request.getfixturevalue(name)
    queries = load_moments(path)
    out = write_moments(tmp_path / "out.jsonl", queries)
    assert load_moments(out) == queries
    assert out.read_text().splitlines() == path.read_text().splitlines()


def test_predictions(shared_data: Path, qvh: list[MomentQuery], tmp_path: Path) -> None:
    path = shared_data / "qvhighlights" / "sample_val_preds.jsonl"
    preds = load_predictions(path)
    by_qid = {q.qid: q for q in qvh}
    assert len(preds) == 1550 and {p.qid for p in preds} == set(by_qid)
    assert all(p.vid == by_qid[p.qid].vid for p in preds)
    assert all(len(p.windows) == 10 and all(len(w) == 3 for w in p.windows) for p in preds)
    # One saliency score per 2-second clip of the video (13 videos' features end a clip short).
    n_clips = {p.qid: math.ceil(by_qid[p.qid].duration / 2) for p in preds}
    assert all(n_clips[p.qid] - 1 <= len(p.saliency) <= n_clips[p.qid] for p in preds)
    assert sum(len(p.saliency) == n_clips[p.qid] for p in preds) == 1537
    assert preds[0].windows[0] == (0.0, 70.0, 0.9986)
    out = write_predictions(tmp_path / "preds.jsonl", preds)
    assert load_predictions(out) == preds
    assert out.read_text().splitlines() == path.read_text().splitlines()


GOOD = {"qid": 1, "query": "a dog runs", "duration": 30, "vid": "v1", "relevant_windows": [[2, 10]]}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"relevant_windows": [[2, 31]]}, "relevant_windows"),  # past the end
        ({"relevant_windows": [[-1, 5]]}, "relevant_windows"),
        ({"relevant_windows": [[10, 10]]}, "relevant_windows"),  # start == end
        ({"relevant_windows": [[1, 2, 3]]}, "relevant_windows"),
        ({"relevant_windows": []}, "relevant_windows"),
        ({"duration": 0}, "duration"),
        ({"duration": "30"}, "duration"),
        ({"vid": ""}, "vid"),
        ({"query": None}, "query"),
        ({"qid": True}, "qid"),
        ({"relevant_clip_ids": [1, 2], "saliency_scores": [[1, 2, 3]]}, "saliency_scores"),
        ({"relevant_clip_ids": [1.5]}, "relevant_clip_ids"),
    ],
)
def test_a_bad_line_names_file_line_and_field(tmp_path: Path, change: dict, field: str) -> None:
    path = tmp_path / "bad.jsonl"
    lines = [GOOD, {**GOOD, "qid": 2}, {**GOOD, "qid": 3, **change}]
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    with pytest.raises(ManifestError, match=rf"bad\.jsonl:3: .*'{field}'"):
        load_moments(path)


def test_structural_errors(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    path.write_text(json.dumps(GOOD) + "\n\n" + "{not json\n")
    with pytest.raises(ManifestError, match=r"m\.jsonl:3: not valid JSON"):
        load_moments(path)
    path.write_text(
        json.dumps(GOOD) + "\n" + json.dumps({k: v for k, v in GOOD.items() if k != "vid"}) + "\n"
    )
    with pytest.raises(ManifestError, match=r"m\.jsonl:2: missing field\(s\) \['vid'\]"):
        load_moments(path)
    path.write_text(json.dumps(GOOD) + "\n" + json.dumps(GOOD) + "\n")
    with pytest.raises(ManifestError, match=r"m\.jsonl:2: field 'qid' 1 already used at .*m\.jsonl:1"):
        load_moments(path)
    with pytest.raises(ManifestError, match="not found"):
        load_moments(tmp_path / "absent.jsonl")


def test_write_validates_and_keeps_unknown_keys(tmp_path: Path) -> None:
    query = MomentQuery("q1", "a cat", "v", 12.5, [(0.0, 4.0), (6.0, 12.5)], extra={"source": "mine"})
    out = write_moments(tmp_path / "ok.jsonl", [query])
    assert json.loads(out.read_text())["source"] == "mine" and load_moments(out) == [query]
    with pytest.raises(ManifestError, match=r"bad\.jsonl: query 0 .*'relevant_windows'"):
        write_moments(tmp_path / "bad.jsonl", [MomentQuery("q1", "a cat", "v", 10, [(5.0, 11.0)])])
    assert not (tmp_path / "bad.jsonl").exists()
    with pytest.raises(ManifestError, match="'qid' 'q1' appears twice"):
        write_moments(tmp_path / "dup.jsonl", [query, query])


def test_bad_prediction_lines(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    good = {"qid": 1, "vid": "v", "pred_relevant_windows": [[0, 2, 0.5]], "pred_saliency_scores": [0.1]}
    path.write_text(
        json.dumps(good) + "\n" + json.dumps({**good, "qid": 2, "pred_relevant_windows": [[0, 2]]})
    )
    with pytest.raises(ManifestError, match=r"p\.jsonl:2: .*'pred_relevant_windows'"):
        load_predictions(path)
    path.write_text(json.dumps({**good, "pred_saliency_scores": ["high"]}))
    with pytest.raises(ManifestError, match=r"p\.jsonl:1: .*'pred_saliency_scores'"):
        load_predictions(path)
    pred = MomentPrediction(3, "v", [(1.0, 2.0, 0.9)])
    assert load_predictions(write_predictions(tmp_path / "w.jsonl", [pred])) == [pred]


def test_located_readers_give_each_item_its_line(tmp_path: Path) -> None:
    from vtr.data.moments import load_moments_located, load_predictions_located

    gt = tmp_path / "gt.jsonl"
    rows = [
        {"qid": 1, "query": "q one", "duration": 10, "vid": "a", "relevant_windows": [[0, 2]]},
        {"qid": 2, "query": "q two", "duration": 10, "vid": "a", "relevant_windows": [[2, 4]]},
    ]
    gt.write_text(json.dumps(rows[0]) + "\n\n" + json.dumps(rows[1]) + "\n")  # a blank line keeps numbering
    assert [(w, q.qid) for w, q in load_moments_located(gt)] == [(f"{gt}:1", 1), (f"{gt}:3", 2)]
    preds = tmp_path / "preds.jsonl"
    preds.write_text(json.dumps({"qid": 2, "vid": "a", "pred_relevant_windows": [[2, 4, 0.5]]}) + "\n")
    assert [(w, p.qid) for w, p in load_predictions_located(preds)] == [(f"{preds}:1", 2)]
