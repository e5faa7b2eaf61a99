"""The QVHighlights / Charades-STA evaluator: the official numbers on the real sample, and each piece
against an independent computation (brute force, sklearn, hand-checked cases)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, precision_recall_curve

from vtr.data.moments import MomentPrediction, MomentQuery
from vtr.moments.evaluate import (
    PredictionError,
    check_predictions,
    detection_ap,
    evaluate_charades,
    evaluate_files,
    evaluate_qvhighlights,
    highlight_scores,
    recall_at_k,
    saliency_ap,
    temporal_consistency,
    temporal_iou,
)

# --------------------------------------------------------------------------- conformance


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, float]:
    out: dict[str, float] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}/"))
        else:
            out[f"{prefix}{key}"] = value
    return out


@pytest.fixture(scope="module")
def qvh_files(shared_data: Path) -> tuple[Path, Path, Path]:
    folder = shared_data / "qvhighlights"
    return (
        folder / "sample_val_preds.jsonl",
        folder / "highlight_val_release.jsonl",
        folder / "sample_val_preds_metrics_raw.json",
    )


def test_reproduces_every_number_of_the_official_evaluator(qvh_files: tuple[Path, Path, Path]) -> None:
    preds, gt, raw = qvh_files
    expected = json.loads(raw.read_text())
    metrics = evaluate_files(preds, gt, allow_overrun=True)
    got, want = _flatten(metrics.official), _flatten(expected)
    assert set(got) == set(want) and len(want) == 104
    off = {k: (got[k], want[k]) for k in want if abs(got[k] - want[k]) > 0.01}
    assert not off, off
    # same layout and key order as the official file
    assert list(metrics.official) == list(expected)
    assert list(metrics.official["brief"]) == list(expected["brief"])
    assert metrics.counts == {"full": 1550, "short": 429, "middle": 957, "long": 574}


def test_the_sample_windows_past_the_video_are_named_unless_allowed(
    qvh_files: tuple[Path, Path, Path],
) -> None:
    preds, gt, _ = qvh_files
    with pytest.raises(PredictionError, match=r"sample_val_preds.jsonl:98: qid 7527: window \[70.0, 130.0\]"):
        evaluate_files(preds, gt)


# --------------------------------------------------------------------------- pieces


def _brute_iou(a: tuple[float, float], b: tuple[float, float]) -> float:
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    union = (a[1] - a[0]) + (b[1] - b[0]) - inter
    return inter / union if union > 0 else 0.0


def test_temporal_iou_matches_brute_force() -> None:
    rng = np.random.default_rng(0)
    a = np.sort(rng.uniform(0, 30, size=(20, 2)), axis=1)
    b = np.sort(rng.uniform(0, 30, size=(7, 2)), axis=1)
    b[0] = a[0]  # identical windows
    b[1] = [a[1, 1], a[1, 1] + 3]  # touching windows
    want = np.array([[_brute_iou(x, y) for y in b] for x in a])
    np.testing.assert_allclose(temporal_iou(a, b), want, atol=1e-12)
    assert temporal_iou([[5, 5]], [[5, 5]])[0, 0] == 0.0


def _brute_detection_ap(
    gt: list[tuple[float, float]], pred: list[tuple[float, float, float]], t: float
) -> float:
    """Greedy matching, then AP = (1/M) * sum over true positives of the best precision at or after them."""
    ranked = sorted(range(len(pred)), key=lambda i: -pred[i][2])  # stable: ties keep order
    used: set[int] = set()
    hits = []
    for i in ranked:
        ious = [_brute_iou(pred[i][:2], g) for g in gt]
        # unmatched windows by decreasing IoU, later window first among equals
        for j in sorted(range(len(gt)), key=lambda j: (-ious[j], -j)):
            if ious[j] < t:
                hits.append(False)
                break
            if j not in used:
                used.add(j)
                hits.append(True)
                break
        else:
            hits.append(False)
    precision = [sum(hits[: k + 1]) / (k + 1) for k in range(len(hits))]
    return sum(max(precision[k:]) for k in range(len(hits)) if hits[k]) / len(gt)


def test_detection_ap_hand_checked_cases() -> None:
    assert detection_ap([[0, 10]], [[0, 10, 0.9]], [0.5]).tolist() == [1.0]
    assert detection_ap([[0, 10], [20, 30]], [[0, 10, 0.9]], [0.5]).tolist() == [0.5]
    # the hit is ranked second: precision 1/2 at recall 1
    assert detection_ap([[0, 10]], [[40, 50, 0.9], [0, 10, 0.5]], [0.5]).tolist() == [0.5]
    # a duplicate of a matched window is a false positive, not a second hit
    assert detection_ap([[0, 10]], [[0, 10, 0.9], [0, 10, 0.8]], [0.5]).tolist() == [1.0]
    # IoU 0.6 counts at 0.5, not at 0.7
    assert detection_ap([[0, 10]], [[0, 6, 0.9]], [0.5, 0.7]).tolist() == [1.0, 0.0]
    assert detection_ap([[0, 10]], np.zeros((0, 3)), [0.5]).tolist() == [0.0]


def test_detection_ap_matches_brute_force_on_random_queries() -> None:
    rng = np.random.default_rng(1)
    thresholds = (0.3, 0.5, 0.7, 0.9)
    for _ in range(200):
        gt = [
            tuple(sorted(rng.choice(np.arange(0, 40, 2.0), 2, replace=False)))
            for _ in range(rng.integers(1, 4))
        ]
        pred = []
        for _ in range(rng.integers(1, 10)):
            s, e = sorted(rng.choice(np.arange(0, 40, 2.0), 2, replace=False))
            pred.append((s, e, float(rng.choice([0.1, 0.5, 0.9]))))  # repeated scores: ties
        got = detection_ap(gt, pred, thresholds)
        want = [_brute_detection_ap(gt, pred, t) for t in thresholds]
        np.testing.assert_allclose(got, want, atol=1e-12)


def _sklearn_saliency_ap(y: np.ndarray, s: np.ndarray) -> float:
    """The definition through sklearn's precision-recall curve: mean over distinct recall levels of the
    best precision at that recall or above."""
    precision, recall, _ = precision_recall_curve(y, s)
    levels = sorted(set(recall[recall > 0]))
    return float(np.mean([precision[recall >= r].max() for r in levels]))


def test_saliency_ap_matches_sklearn_on_random_curves() -> None:
    rng = np.random.default_rng(2)
    compared_plain = 0
    for _ in range(300):
        n = int(rng.integers(2, 40))
        y = (rng.random(n) < rng.uniform(0.1, 0.6)).astype(float)
        if y.min() == y.max():
            continue
        s = rng.integers(0, 6, size=n).astype(float) if rng.random() < 0.5 else rng.normal(size=n)
        assert saliency_ap(y, s) == pytest.approx(_sklearn_saliency_ap(y, s), abs=1e-12)
        # Without ties, and when the precision at successive hits never rises, interpolation does
        # nothing and the definition is sklearn's average_precision_score.
        order = np.argsort(-s)
        hit_precision = (np.cumsum(y[order]) / np.arange(1, n + 1))[y[order] == 1]
        if len(set(s)) == n and np.all(np.diff(hit_precision) <= 0):
            assert saliency_ap(y, s) == pytest.approx(average_precision_score(y, s), abs=1e-12)
            compared_plain += 1
    assert compared_plain > 10


def test_saliency_ap_edge_cases() -> None:
    assert saliency_ap([1, 1, 1], [0.1, 0.5, 0.2]) == 1.0
    assert saliency_ap([0, 0, 0], [0.1, 0.5, 0.2]) == 0.0
    assert saliency_ap([1, 0, 0, 1], [4, 3, 2, 1]) == pytest.approx((1 + 0.5) / 2)
    with pytest.raises(ValueError, match="one score per clip"):
        saliency_ap([1, 0], [0.3])


def _query(
    qid: Any = 1, vid: str = "v", duration: float = 20.0, windows=((4.0, 8.0),), **kw: Any
) -> MomentQuery:
    return MomentQuery(qid=qid, query="a query", vid=vid, duration=duration, windows=list(windows), **kw)


def _pred(qid: Any = 1, vid: str = "v", windows=((4.0, 8.0, 0.9),), saliency=None) -> MomentPrediction:
    return MomentPrediction(qid=qid, vid=vid, windows=list(windows), saliency=saliency)


def test_highlight_scores_pad_truncate_and_hit() -> None:
    # 10 clips; clips 2 and 3 relevant, scores per annotator
    q = _query(clip_ids=[2, 3], saliency=[[4, 1, 2], [3, 0, 2]])
    ap, hit = highlight_scores(q, [0, 0, 5, 4], min_score=3)  # padded with zeros to 10 clips
    # annotator 0: both positives ranked 1-2 -> 1; annotator 1: no positive -> 0; annotator 2: none >= 3 -> 0
    assert ap == pytest.approx(1 / 3) and hit == 1.0
    _, hit_past_end = highlight_scores(q, [0] * 10 + [9], min_score=2)  # argmax beyond the video's clips
    assert hit_past_end == 0.0


def test_recall_at_k_and_temporal_consistency() -> None:
    q = _query(windows=[(10.0, 20.0)], duration=30.0)
    p = _pred(windows=[(0.0, 5.0, 0.9), (10.0, 19.0, 0.8)])
    assert recall_at_k(q, p, 1, 0.5) == 0.0 and recall_at_k(q, p, 2, 0.5) == 1.0
    assert temporal_consistency([3.0, 3.0, 3.0]) == 1.0
    assert temporal_consistency([0.0, 1.0, 0.0, 1.0]) == 0.0
    assert temporal_consistency([0.0, 0.0, 1.0, 1.0, 1.0]) == pytest.approx(1 - 1 / 4)


def test_charades_hand_checked() -> None:
    gt = [_query(1, "a", 30.0, [(0.0, 10.0)]), _query(2, "b", 30.0, [(10.0, 20.0)])]
    preds = [_pred(1, "a", [(0.0, 8.0, 1.0)]), _pred(2, "b", [(15.0, 25.0, 1.0), (10.0, 20.0, 0.5)])]
    # IoUs of the first windows: 0.8 and 5/15
    brief = evaluate_charades(preds, gt).official["brief"]
    assert brief == {
        "R1@0.3": 100.0,
        "R1@0.5": 50.0,
        "R1@0.7": 50.0,
        "mIoU": round(100 * (0.8 + 1 / 3) / 2, 2),
    }


def test_length_splits_keep_only_the_windows_in_range() -> None:
    gt = [_query(1, "a", 100.0, [(0.0, 5.0), (50.0, 90.0)]), _query(2, "b", 100.0, [(0.0, 20.0)])]
    preds = [_pred(1, "a", [(50.0, 90.0, 0.9)]), _pred(2, "b", [(0.0, 20.0, 0.9)])]
    m = evaluate_qvhighlights(preds, gt)
    assert m.counts == {"full": 2, "short": 1, "middle": 1, "long": 1}
    assert m.official["short"]["MR-R1"]["0.5"] == 0.0  # its top window is the long one
    assert m.official["long"]["MR-R1"]["0.5"] == 100.0
    assert m.official["full"]["MR-mAP"]["0.5"] == 75.0  # query 1 finds 1 of 2 windows: AP 0.5
    assert "HL-min-Fair" not in m.official  # no saliency predicted


# --------------------------------------------------------------------------- checks


def test_check_names_qid_and_line() -> None:
    gt = [_query(1), _query(2)]
    where = ["p.jsonl:1", "p.jsonl:2"]
    with pytest.raises(PredictionError, match=r"qid 2 \(query 1\) has no prediction"):
        check_predictions([_pred(1)], gt)
    with pytest.raises(PredictionError, match="p.jsonl:2: qid 3 is not in the ground truth"):
        check_predictions([_pred(1), _pred(3)], gt, pred_locations=where)
    with pytest.raises(PredictionError, match=r"p.jsonl:2: qid 1 appears twice \(first at p.jsonl:1\)"):
        check_predictions([_pred(1), _pred(1)], gt, pred_locations=where)
    with pytest.raises(
        PredictionError, match=r"p.jsonl:2: qid 2: window \[15.0, 25.0\] is outside the video"
    ):
        check_predictions([_pred(1), _pred(2, windows=[(15.0, 25.0, 1.0)])], gt, pred_locations=where)
    with pytest.raises(PredictionError, match="outside the video"):
        check_predictions([_pred(1), _pred(2, windows=[(-1.0, 5.0, 1.0)])], gt, allow_overrun=True)
    with pytest.raises(PredictionError, match="qid 2 has no predicted window"):
        check_predictions([_pred(1), _pred(2, windows=[])], gt)
    with pytest.raises(PredictionError, match="qid 1 has saliency but its ground truth has none"):
        check_predictions([_pred(1, saliency=[0.1]), _pred(2, saliency=[0.1])], gt)
    gt_hl = [_query(1, clip_ids=[2], saliency=[[1, 2, 3]]), _query(2, clip_ids=[2], saliency=[[1, 2, 3]])]
    with pytest.raises(PredictionError, match="qid 2 lacks pred_saliency_scores"):
        check_predictions([_pred(1, saliency=[0.1]), _pred(2)], gt_hl)
    with pytest.raises(PredictionError, match="qid 1: relevant clip 12 is past the last 2-second clip"):
        check_predictions(
            [_pred(1, saliency=[0.1]), _pred(2, saliency=[0.1])],
            [_query(1, clip_ids=[12], saliency=[[1, 2, 3]]), gt_hl[1]],
        )
    check_predictions([_pred(1), _pred(2, windows=[(15.0, 25.0, 1.0)])], gt, allow_overrun=True)


# --------------------------------------------------------------------------- intervals


def test_intervals_resample_videos_not_queries() -> None:
    rng = np.random.default_rng(3)
    n = 60
    hits = rng.random(n) < 0.5
    windows = [[(0.0, 10.0, 1.0)] if h else [(20.0, 30.0, 1.0)] for h in hits]
    gt = [_query(i, f"v{i}", 40.0, [(0.0, 10.0)]) for i in range(n)]
    preds = [_pred(i, f"v{i}", w) for i, w in enumerate(windows)]
    single = evaluate_qvhighlights(preds, gt, n_boot=1000)
    low, high = single.intervals["brief"]["MR-full-R1@0.5"]
    assert low < single.official["brief"]["MR-full-R1@0.5"] < high
    # four copies of every query in the same video: no new information, so about the same width
    gt4 = [_query(f"{i}-{c}", f"v{i}", 40.0, [(0.0, 10.0)]) for i in range(n) for c in range(4)]
    preds4 = [_pred(f"{i}-{c}", f"v{i}", windows[i]) for i in range(n) for c in range(4)]
    copies = evaluate_qvhighlights(preds4, gt4, n_boot=1000)
    low4, high4 = copies.intervals["brief"]["MR-full-R1@0.5"]
    assert (high4 - low4) == pytest.approx(high - low, rel=0.2)
    # the same copies as independent videos would look twice as certain
    gt_ind = [_query(f"{i}-{c}", f"v{i}-{c}", 40.0, [(0.0, 10.0)]) for i in range(n) for c in range(4)]
    preds_ind = [_pred(f"{i}-{c}", f"v{i}-{c}", windows[i]) for i in range(n) for c in range(4)]
    ind = evaluate_qvhighlights(preds_ind, gt_ind, n_boot=1000)
    low_i, high_i = ind.intervals["brief"]["MR-full-R1@0.5"]
    assert (high_i - low_i) < 0.7 * (high4 - low4)
    assert set(copies.table().columns) == {"value", "low", "high"}


def test_charades_real_file_with_oracle_and_shifted_predictions(shared_data: Path) -> None:
    """The real Charades-STA test file: exact windows score 100; windows shifted by half their length
    (IoU exactly 1/3, brute-force checked) pass R1@0.3 only."""
    from vtr.data.moments import load_moments

    gt = load_moments(shared_data / "charades_sta" / "charades_test_release.jsonl")
    assert len(gt) == 3720
    oracle = [_pred(q.qid, q.vid, [(*q.windows[0], 1.0)]) for q in gt]
    assert evaluate_charades(oracle, gt).official["brief"] == {
        "R1@0.3": 100.0, "R1@0.5": 100.0, "R1@0.7": 100.0, "mIoU": 100.0
    }  # fmt: skip
    kept, shifted = [], []
    for q in gt:
        (s, e), half = q.windows[0], (q.windows[0][1] - q.windows[0][0]) / 2
        window = (s + half, e + half) if e + half <= q.duration else (s - half, e - half)
        if window[0] < 0 or len(q.windows) > 1:
            continue
        kept.append(q)
        shifted.append(_pred(q.qid, q.vid, [(*window, 1.0)]))
    assert len(kept) > 3000
    ious = [_brute_iou(p.windows[0][:2], q.windows[0]) for p, q in zip(shifted, kept, strict=True)]
    brief = evaluate_charades(shifted, kept).official["brief"]
    assert brief["R1@0.3"] == 100.0 and brief["R1@0.5"] == 0.0
    assert brief["mIoU"] == pytest.approx(100 * float(np.mean(ious)), abs=0.005)
    assert brief["mIoU"] == pytest.approx(100 / 3, abs=0.01)
