"""vtr.metrics against hand-worked cases, brute-force loop references, torch, and statistical properties."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from vtr import metrics as M

# --------------------------------------------------------------------------- brute-force references
# Written differently from the library on purpose: one query at a time, by sorting candidate lists in which
# a wrong item sorts before the positive on equal score (pessimistic ties).


def ref_t2v_ranks(sim: np.ndarray, c2v: np.ndarray) -> list[int]:
    ranks = []
    for i, row in enumerate(sim):
        order = sorted(range(len(row)), key=lambda j, i=i, row=row: (-row[j], j == c2v[i]))
        ranks.append(order.index(c2v[i]) + 1)
    return ranks


def ref_v2t_ranks_clip4clip(sim: np.ndarray, c2v: np.ndarray) -> list[int]:
    """Per candidate video the max over its captions; the query's own video is ranked among the videos."""
    ranks = []
    for v in range(sim.shape[1]):
        score = {u: max(sim[c, v] for c in range(len(c2v)) if c2v[c] == u) for u in range(sim.shape[1])}
        order = sorted(score, key=lambda u, v=v: (-score[u], u == v))
        ranks.append(order.index(v) + 1)
    return ranks


def ref_v2t_ranks(sim: np.ndarray, c2v: np.ndarray) -> list[int]:
    """The VSE++ rule: the best own caption's rank among all captions."""
    ranks = []
    for v in range(sim.shape[1]):
        order = sorted(range(sim.shape[0]), key=lambda c, v=v: (-sim[c, v], c2v[c] == v))
        wrong_before_first_own = 0
        for c in order:
            if c2v[c] == v:
                break
            wrong_before_first_own += 1
        ranks.append(wrong_before_first_own + 1)
    return ranks


def ref_cosine_gap(sim: np.ndarray, c2v: np.ndarray) -> tuple[float, float]:
    t2v = [
        sim[i, c2v[i]] - max(sim[i, j] for j in range(sim.shape[1]) if j != c2v[i]) for i in range(len(c2v))
    ]
    v2t = []
    for v in range(sim.shape[1]):
        own = [sim[c, v] for c in range(len(c2v)) if c2v[c] == v]
        other = [sim[c, v] for c in range(len(c2v)) if c2v[c] != v]
        v2t.append(max(own) - max(other))
    return float(np.mean(t2v)), float(np.mean(v2t))


def random_case(seed: int, n_videos: int, captions_per_video: int | None, quantize: bool):
    """A random sim and caption_to_video; ``captions_per_video=None`` draws 1-4 captions per video, shuffled."""
    rng = np.random.default_rng(seed)
    if captions_per_video is None:
        c2v = np.repeat(np.arange(n_videos), rng.integers(1, 5, n_videos))
        rng.shuffle(c2v)
    else:
        c2v = np.repeat(np.arange(n_videos), captions_per_video)
    sim = rng.standard_normal((len(c2v), n_videos))
    if quantize:  # a handful of distinct values: many ties, including ties with the positive
        sim = np.round(sim)
    return sim, c2v


CASES = [
    (0, 7, 1, False),  # 1:1
    (1, 1, 1, False),  # a single pair
    (2, 9, 1, True),  # 1:1 with ties
    (3, 6, 3, False),  # MSR-VTT-like, several captions each
    (4, 10, None, False),  # uneven captions per video, shuffled order
    (5, 8, None, True),  # uneven and tied
    (6, 25, 4, True),
]


@pytest.mark.parametrize("case", CASES)
def test_ranks_match_brute_force(case: tuple) -> None:
    sim, c2v = random_case(*case)
    assert M.t2v_ranks(sim, c2v).tolist() == ref_t2v_ranks(sim, c2v)
    assert M.v2t_ranks(sim, c2v).tolist() == ref_v2t_ranks_clip4clip(sim, c2v)
    assert M.v2t_ranks(sim, c2v, rule="vsepp").tolist() == ref_v2t_ranks(sim, c2v)


def test_ranks_use_row_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """The chunked loops give the same answer as one pass (tiny chunks force many blocks)."""
    sim, c2v = random_case(7, 6, None, True)
    monkeypatch.setattr(M, "_CHUNK_ELEMENTS", 7)
    assert M.t2v_ranks(sim, c2v).tolist() == ref_t2v_ranks(sim, c2v)
    assert M.v2t_ranks(sim, c2v).tolist() == ref_v2t_ranks_clip4clip(sim, c2v)
    assert M.v2t_ranks(sim, c2v, rule="vsepp").tolist() == ref_v2t_ranks(sim, c2v)
    assert M.cosine_gap(sim, c2v, "both") == pytest.approx(np.mean(ref_cosine_gap(sim, c2v)))


# --------------------------------------------------------------------------- hand-worked cases

# Rows are captions, columns videos; caption i describes video i.
HAND_3X3 = np.array(
    [
        [0.9, 0.1, 0.3],  # t2v: 0.9 beats 0.1, 0.3               -> rank 1
        [0.8, 0.7, 0.2],  # t2v: 0.7 loses to 0.8                  -> rank 2
        [0.5, 0.6, 0.4],  # t2v: 0.4 loses to 0.5 and 0.6          -> rank 3
    ]
)
# v2t, column by column: video 0: 0.9 vs other captions 0.8, 0.5 -> 1; video 1: 0.7 vs 0.1, 0.6 -> 1;
# video 2: 0.4 vs 0.3, 0.2 -> 1.


def test_hand_worked_3x3() -> None:
    assert M.t2v_ranks(HAND_3X3).tolist() == [1, 2, 3]
    assert M.v2t_ranks(HAND_3X3).tolist() == [1, 1, 1]
    m = M.retrieval_metrics(HAND_3X3, ks=(1, 2, 5))
    assert m["t2v_R@1"] == pytest.approx(100 / 3)
    assert m["t2v_R@2"] == pytest.approx(200 / 3)
    assert m["t2v_R@5"] == 100.0
    assert (m["t2v_MedR"], m["t2v_MeanR"]) == (2.0, 2.0)
    assert (m["v2t_R@1"], m["v2t_MedR"], m["v2t_MeanR"]) == (100.0, 1.0, 1.0)
    assert list(m) == [f"{d}_{k}" for d in ("t2v", "v2t") for k in ("R@1", "R@2", "R@5", "MedR", "MeanR")]


def test_multi_caption_v2t_uses_best_caption() -> None:
    c2v = np.array([0, 0, 1, 1])
    sim = np.array(
        [
            [0.20, 0.5],  # caption 0 of video 0
            [0.90, 0.1],  # caption 1 of video 0
            [0.30, 0.4],  # caption 2 of video 1
            [0.95, 0.3],  # caption 3 of video 1
        ]
    )
    # Video 0: caption 0 alone would rank 3 (wrong captions 0.3 and 0.95 >= 0.2), caption 1 ranks 2
    # (only 0.95 >= 0.9) -> best 2. Caption 1 (0.9 >= 0.2) is its own and never counts against it.
    # Video 1: best own caption 0.4; wrong captions 0.5 >= 0.4, 0.1 < 0.4 -> 2.
    assert M.v2t_ranks(sim, c2v).tolist() == [2, 2]
    # t2v: 0.2 < 0.5 -> 2; 0.9 > 0.1 -> 1; 0.4 > 0.3 -> 1; 0.3 < 0.95 -> 2.
    assert M.t2v_ranks(sim, c2v).tolist() == [2, 1, 1, 2]


def test_v2t_rules_on_the_issue_example() -> None:
    """One wrong video (1) with two high captions counts twice under VSE++, once under CLIP4Clip."""
    sim = np.zeros((6, 3))
    sim[:, 0] = [0.5, 0.1, 0.6, 0.7, 0, 0]
    sim[2:4, 1] = 1
    sim[4:6, 2] = 1
    c2v = np.array([0, 0, 1, 1, 2, 2])
    assert M.v2t_ranks(sim, c2v).tolist() == [2, 1, 1]
    assert M.v2t_ranks(sim, c2v, rule="clip4clip").tolist() == [2, 1, 1]
    assert M.v2t_ranks(sim, c2v, rule="vsepp").tolist() == [3, 1, 1]
    default = M.retrieval_metrics(sim, c2v, ks=(1, 2))
    vsepp = M.retrieval_metrics(sim, c2v, ks=(1, 2), v2t_rule="vsepp")
    assert default["v2t_R@1"] == vsepp["v2t_R@1"] == pytest.approx(200 / 3)  # R@1 agrees
    assert (default["v2t_R@2"], vsepp["v2t_R@2"]) == (100.0, pytest.approx(200 / 3))
    assert M.v2t_label(c2v) == "v2t (clip4clip rule)" and M.v2t_label([0, 1, 2]) == "v2t"
    with pytest.raises(ValueError, match="v2t rule"):
        M.v2t_ranks(sim, c2v, rule="best")


def test_all_equal_scores_rank_last() -> None:
    """A constant model must not get R@1 = 100: every query gets the worst rank."""
    c2v = np.array([0, 0, 1, 2, 2, 2])
    sim = np.full((6, 3), 0.3)
    assert M.t2v_ranks(sim, c2v).tolist() == [3] * 6
    # v2t worst rank: among videos (default rule) 1 + 2 other videos; under the VSE++ rule 1 + number
    # of other videos' captions: 1 + (6 - 2), 1 + (6 - 1), 1 + (6 - 3).
    assert M.v2t_ranks(sim, c2v).tolist() == [3, 3, 3]
    assert M.v2t_ranks(sim, c2v, rule="vsepp").tolist() == [5, 6, 4]
    m = M.retrieval_metrics(sim, c2v, ks=(1,))
    assert m["t2v_R@1"] == 0.0 and m["v2t_R@1"] == 0.0


def test_partial_ties() -> None:
    sim = np.array([[0.5, 0.5, 0.1], [0.2, 0.9, 0.9], [0.3, 0.3, 0.3]])
    # Row 0: positive 0.5 ties with video 1 -> 2. Row 1: 0.9 ties video 2 -> 2. Row 2: 0.3 ties both -> 3.
    assert M.t2v_ranks(sim).tolist() == [2, 2, 3]
    # Column 0: 0.5 vs 0.2, 0.3 -> 1. Column 1: 0.9 vs 0.5, 0.3 -> 1. Column 2: 0.3 vs 0.1, 0.9 -> 2.
    assert M.v2t_ranks(sim).tolist() == [1, 1, 2]


def test_recall_metrics_by_hand() -> None:
    m = M.recall_metrics([1, 3, 7, 12, 60, 2], ks=(1, 5, 10, 50))
    assert m == pytest.approx(
        {"R@1": 100 / 6, "R@5": 50.0, "R@10": 400 / 6, "R@50": 500 / 6, "MedR": 5.0, "MeanR": 85 / 6}
    )


def test_accepts_torch_tensors() -> None:
    sim, c2v = random_case(3, 6, 3, False)
    tensor = torch.tensor(sim, dtype=torch.bfloat16, requires_grad=True)
    assert M.t2v_ranks(tensor, torch.tensor(c2v)).tolist() == ref_t2v_ranks(
        tensor.detach().float().numpy(), c2v
    )
    assert M.retrieval_metrics(torch.tensor(sim), torch.tensor(c2v)) == M.retrieval_metrics(sim, c2v)


@pytest.mark.parametrize(
    ("sim", "c2v", "message"),
    [
        (np.ones((3, 2)), None, "caption_to_video is required"),
        (np.ones((3, 2)), np.array([0, 1]), r"shape \(3,\)"),
        (np.ones((3, 2)), np.array([0, 1, 2]), r"caption_to_video\[2\] = 2"),
        (np.ones((3, 2)), np.array([0.0, 1.0, 1.0]), "integer"),
        (np.array([[1.0, np.nan], [0.0, 1.0]]), None, "row 0, column 1"),
        (np.ones(4), None, "2-D"),
    ],
)
def test_bad_input_is_named(sim: np.ndarray, c2v: np.ndarray | None, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        M.t2v_ranks(sim, c2v)


def test_v2t_needs_a_caption_per_video() -> None:
    with pytest.raises(ValueError, match=r"videos \[1\] have none"):
        M.v2t_ranks(np.ones((2, 3)), np.array([0, 2]))


# --------------------------------------------------------------------------- dual softmax


def test_dual_softmax_matches_torch_reference() -> None:
    sim, _ = random_case(11, 5, 2, False)
    t = torch.tensor(sim)
    expected_t2v = (t * torch.softmax(t / 0.05, dim=0)).numpy()  # prior over captions of each video
    expected_v2t = (t * torch.softmax(t / 0.05, dim=1)).numpy()  # prior over videos of each caption
    np.testing.assert_allclose(M.dual_softmax(sim, 0.05, "t2v"), expected_t2v, rtol=1e-12)
    np.testing.assert_allclose(M.dual_softmax(sim, 0.05, "v2t"), expected_v2t, rtol=1e-12)


@pytest.mark.parametrize("direction", ["t2v", "v2t"])
def test_dual_softmax_is_permutation_equivariant(direction: str) -> None:
    sim, _ = random_case(12, 6, 3, False)
    rng = np.random.default_rng(0)
    videos, captions = rng.permutation(sim.shape[1]), rng.permutation(sim.shape[0])
    out = M.dual_softmax(sim, 0.1, direction)
    assert out.shape == sim.shape
    np.testing.assert_allclose(M.dual_softmax(sim[:, videos], 0.1, direction), out[:, videos])
    np.testing.assert_allclose(M.dual_softmax(sim[captions], 0.1, direction), out[captions])


def test_dual_softmax_keeps_a_perfect_diagonal_perfect() -> None:
    rng = np.random.default_rng(13)
    sim = rng.uniform(0.0, 0.5, (30, 30))
    np.fill_diagonal(sim, 1.0)
    dsl = M.dsl_retrieval_metrics(sim, temperature=0.01, ks=(1,))
    assert dsl["dsl_t2v_R@1"] == 100.0 and dsl["dsl_v2t_R@1"] == 100.0
    assert set(dsl) == {f"dsl_{d}_{k}" for d in ("t2v", "v2t") for k in ("R@1", "MedR", "MeanR")}


def test_dual_softmax_demotes_a_hub_video() -> None:
    """Video 0 scores highest for every caption (a hub); DSL's prior over captions removes its advantage."""
    rng = np.random.default_rng(14)
    n = 20
    sim = rng.uniform(0.0, 0.3, (n, n))
    np.fill_diagonal(sim, 0.6)
    sim[:, 0] = 0.7  # the hub beats every caption's own video
    sim[0, 0] = 0.8
    assert M.retrieval_metrics(sim, ks=(1,))["t2v_R@1"] == pytest.approx(100 / n)
    assert M.dsl_retrieval_metrics(sim, temperature=0.01, ks=(1,))["dsl_t2v_R@1"] == 100.0


def test_dual_softmax_with_flat_prior_keeps_ranks() -> None:
    sim, c2v = random_case(15, 8, 3, False)
    flat = M.dual_softmax(sim, temperature=1e9)
    assert M.t2v_ranks(flat, c2v).tolist() == M.t2v_ranks(sim, c2v).tolist()


# --------------------------------------------------------------------------- breakdowns


def test_breakdown_matches_per_group_metrics() -> None:
    ranks = np.array([1, 4, 2, 30, 1, 6, 1])
    labels = ["music", "sports", "music", "news", "sports", "music", "sports"]
    table = M.breakdown(ranks, labels, ks=(1, 5))
    assert table.index.tolist() == ["music", "news", "sports"]
    assert table["n"].tolist() == [3, 1, 3]
    music = M.recall_metrics(ranks[[0, 2, 5]], ks=(1, 5))
    assert table.loc["music", ["R@1", "R@5", "MedR", "MeanR"]].tolist() == pytest.approx(list(music.values()))
    assert table.loc["news", "MedR"] == 30.0


def test_query_length_buckets_and_their_order() -> None:
    captions = [" ".join(["w"] * n) for n in (1, 10, 11, 20, 21, 40, 3)]
    buckets = M.query_length_bucket(captions)
    assert list(buckets) == ["1–10", "1–10", "11–20", "11–20", "21+", "21+", "1–10"]
    assert list(buckets.categories) == ["1–10", "11–20", "21+"]
    table = M.breakdown(np.array([1, 2, 3, 4, 5, 6, 7]), buckets, ks=(1,))
    # Category order, not string order (which would put "11–20" before "1–10").
    assert table.index.tolist() == ["1–10", "11–20", "21+"]
    assert table["n"].tolist() == [3, 2, 2]
    assert table.loc["1–10", "MeanR"] == pytest.approx((1 + 2 + 7) / 3)
    assert list(M.query_length_bucket(["a b c"], edges=(2,))) == ["3+"]


def test_query_length_rejects_empty_caption() -> None:
    with pytest.raises(ValueError, match="caption 1 is empty"):
        M.query_length_bucket(["a dog runs", "   "])


# --------------------------------------------------------------------------- bootstrap


def test_bootstrap_ci_contains_estimate_and_matches_binomial_width() -> None:
    rng = np.random.default_rng(20)
    ranks = rng.geometric(0.3, size=4000)
    p = np.mean(ranks <= 1)
    low, high = M.bootstrap_ci(ranks, "R@1", n_boot=1000, seed=0)
    assert low <= 100 * p <= high
    normal_width = 2 * 1.96 * 100 * math.sqrt(p * (1 - p) / len(ranks))
    assert high - low == pytest.approx(normal_width, rel=0.15)
    # Same seed, same interval; a callable metric gives the same as its name.
    assert M.bootstrap_ci(ranks, M.metric_function("R@1"), n_boot=1000, seed=0) == (low, high)


def test_bootstrap_ci_narrows_with_more_queries() -> None:
    rng = np.random.default_rng(21)
    ranks = rng.geometric(0.2, size=8000)
    small = M.bootstrap_ci(ranks[:250], "MeanR", n_boot=500)
    large = M.bootstrap_ci(ranks, "MeanR", n_boot=500)
    assert large[1] - large[0] < (small[1] - small[0]) / 3  # ~sqrt(32) = 5.7 times narrower


def test_bootstrap_rejects_non_vectorised_metric() -> None:
    with pytest.raises(TypeError, match="last axis"):
        M.bootstrap_ci(np.array([1, 2, 3]), lambda r: float(np.mean(r)), n_boot=10)


def test_paired_diff_of_identical_systems_is_exactly_zero() -> None:
    ranks = np.random.default_rng(22).geometric(0.3, size=500)
    assert tuple(M.paired_bootstrap_diff(ranks, ranks.copy(), "R@5")) == (0.0, 0.0, 0.0, 1.0)
    assert not M.paired_bootstrap_diff(ranks, ranks, "MedR").significant


def test_paired_diff_detects_a_real_gain_and_beats_unpaired_width() -> None:
    rng = np.random.default_rng(23)
    a = rng.geometric(0.3, size=2000)
    b = np.where(rng.random(2000) < 0.1, 1, a)  # system b fixes 10% of the queries
    result = M.paired_bootstrap_diff(a, b, "R@1", n_boot=1000)
    assert result.diff == pytest.approx(100 * (np.mean(b == 1) - np.mean(a == 1)))
    assert result.significant and result.low > 0
    assert result.low <= result.diff <= result.high
    # Pairing removes shared variance: narrower than an interval on one system alone.
    low_a, high_a = M.bootstrap_ci(a, "R@1", n_boot=1000)
    assert result.high - result.low < high_a - low_a


def test_retrieval_cis_keys_and_table() -> None:
    sim, c2v = random_case(24, 12, 2, False)
    metrics = M.retrieval_metrics(sim, c2v)
    cis = M.retrieval_cis(sim, c2v, names=("R@1", "MedR"), n_boot=200)
    assert set(cis) == {"t2v_R@1", "t2v_MedR", "v2t_R@1", "v2t_MedR"}
    for key, (low, high) in cis.items():
        assert low <= metrics[key] <= high
    table = M.metrics_table(metrics, cis)
    assert table.index.tolist() == ["t2v", "v2t"]
    assert table.columns.tolist() == ["R@1", "R@1 [lo, hi]", "R@5", "R@10", "MedR", "MedR [lo, hi]", "MeanR"]
    assert table.loc["t2v", "R@1"] == round(metrics["t2v_R@1"], 1)
    low, high = cis["v2t_R@1"]
    assert table.loc["v2t", "R@1 [lo, hi]"] == f"[{low:.1f}, {high:.1f}]"


def test_metrics_table_selects_dsl_prefix() -> None:
    sim, c2v = random_case(25, 6, 2, False)
    table = M.metrics_table(M.dsl_retrieval_metrics(sim, c2v), prefix="dsl_")
    assert table.shape == (2, 5) and not table.isna().any().any()
    assert isinstance(table, pd.DataFrame)


# --------------------------------------------------------------------------- alignment scores


def test_info_nce_matches_torch_cross_entropy() -> None:
    sim = np.random.default_rng(30).uniform(-1, 1, (9, 9))
    logits = torch.tensor(sim) / 0.07
    target = torch.arange(9)
    expected = (
        torch.nn.functional.cross_entropy(logits, target)
        + torch.nn.functional.cross_entropy(logits.T, target)
    ) / 2
    assert M.info_nce_loss(sim, temperature=0.07) == pytest.approx(expected.item(), rel=1e-10)


def test_info_nce_is_stable_and_bounded_by_log_n_for_constant_scores() -> None:
    assert M.info_nce_loss(np.full((5, 5), 0.3), temperature=0.07) == pytest.approx(math.log(5))
    perfect = np.eye(4)
    assert 0.0 <= M.info_nce_loss(perfect, temperature=1e-4) < 1e-12  # logits of 1e4: no overflow
    with pytest.raises(ValueError, match="square"):
        M.info_nce_loss(np.ones((2, 3)))


def test_cosine_top1_accuracy() -> None:
    assert M.cosine_top1_accuracy(HAND_3X3) == 1.0
    sim = np.array([[0.5, 0.5, 0.1], [0.2, 0.9, 0.9], [0.3, 0.3, 0.3]])
    assert M.cosine_top1_accuracy(sim) == pytest.approx(2 / 3)  # video 2 ties for its top spot -> wrong
    assert M.cosine_top1_accuracy(np.full((4, 4), 0.2)) == 0.0


def test_cosine_gap_by_hand() -> None:
    # t2v rows: 0.9 - 0.3 = 0.6, 0.7 - 0.8 = -0.1, 0.4 - 0.6 = -0.2 -> mean 0.1.
    # v2t columns: 0.9 - 0.8, 0.7 - 0.6, 0.4 - 0.3 -> each 0.1.
    assert M.cosine_gap(HAND_3X3, direction="t2v") == pytest.approx(0.1)
    assert M.cosine_gap(HAND_3X3, direction="v2t") == pytest.approx(0.1)
    assert M.cosine_gap(HAND_3X3) == pytest.approx(0.1)


@pytest.mark.parametrize("case", [c for c in CASES if c[1] > 1])
def test_cosine_gap_matches_brute_force(case: tuple) -> None:
    sim, c2v = random_case(*case)
    t2v, v2t = ref_cosine_gap(sim, c2v)
    assert M.cosine_gap(sim, c2v, "t2v") == pytest.approx(t2v)
    assert M.cosine_gap(sim, c2v, "v2t") == pytest.approx(v2t)
    assert M.cosine_gap(sim, c2v) == pytest.approx((t2v + v2t) / 2)


# --------------------------------------------------------------------------- clustered, seeded bootstrap


def _null_runs(rng: np.random.Generator, n_clips: int, caps: int, seeds: int) -> tuple[np.ndarray, ...]:
    """Two systems with no true difference: shared clip difficulty and caption effects, and for each
    system its own per-seed offsets (run noise) and per-(seed, clip) noise (clip-level run noise)."""
    codes = np.repeat(np.arange(n_clips), caps)
    difficulty = rng.normal(0, 1.0, n_clips)[codes] + rng.normal(0, 0.7, len(codes))

    def system() -> np.ndarray:
        seed_noise = rng.normal(0, 0.15, (seeds, 1))
        clip_noise = rng.normal(0, 0.5, (seeds, n_clips))[:, codes]
        latent = difficulty + seed_noise + clip_noise + rng.logistic(0, 1, (seeds, len(codes)))
        return np.where(latent > 0, 1, 2 + (latent < -1.5)).astype(np.int64)

    return system(), system(), codes


def test_null_comparisons_with_run_noise_keep_the_false_positive_rate() -> None:
    """600 null comparisons (60 clips x 5 captions, 3 seeds, run noise at seed and clip level) through
    paired_bootstrap_diff: at most 6% called significant at the nominal 5%. The old resampling of
    seed x caption ranks as independent items, run on the first 150 of the same data, calls far more."""
    rng = np.random.default_rng(2024)
    data = [_null_runs(rng, 60, 5, 3) for _ in range(600)]
    results = [
        M.paired_bootstrap_diff(a, b, "R@1", n_boot=400, seed=i, clusters=c)
        for i, (a, b, c) in enumerate(data)
    ]
    assert np.mean([r.significant for r in results]) <= 0.06  # the interval excludes 0
    assert np.mean([r.p_value < 0.05 for r in results]) <= 0.06  # the p-value Holm is fed with
    naive = [M.paired_bootstrap_diff(a.ravel(), b.ravel(), "R@1", n_boot=200, seed=i).significant
             for i, (a, b, _) in enumerate(data[:150])]  # fmt: skip
    assert np.mean(naive) > 0.10


def test_clustered_bootstrap_equals_expanding_the_resample() -> None:
    """Weights over clusters give exactly the metric of the expanded resample, MedR included."""
    rng = np.random.default_rng(40)
    codes = np.repeat(np.arange(7), rng.integers(1, 4, 7))
    ranks = rng.integers(1, 9, size=len(codes))
    weights = rng.integers(0, 3, size=(50, 7))
    weights[:, 0] += 1  # never an empty resample
    for name in ("R@1", "R@5", "MeanR", "MedR"):
        got = M._weighted_metric(name, ranks[None], codes, weights)[:, 0]
        expanded = [
            np.concatenate([ranks[codes == g] for g, w in enumerate(row) for _ in range(w)])
            for row in weights
        ]
        want = [float(M.metric_function(name)(e[None])[0]) for e in expanded]
        np.testing.assert_allclose(got, want, rtol=1e-12)


def test_cluster_resampling_widens_the_interval_of_correlated_captions() -> None:
    """Five identical-outcome captions per clip are one observation, not five."""
    rng = np.random.default_rng(41)
    per_clip = rng.geometric(0.4, size=80)
    ranks, codes = np.repeat(per_clip, 5), np.repeat(np.arange(80), 5)
    naive = M.bootstrap_ci(ranks, "R@1", n_boot=1000)
    clustered = M.bootstrap_ci(ranks, "R@1", n_boot=1000, clusters=codes)
    assert clustered[1] - clustered[0] > 1.8 * (naive[1] - naive[0])  # ~sqrt(5) = 2.2
    # Per-clip ranks (one query per clip) are what the clustered interval matches.
    single = M.bootstrap_ci(per_clip, "R@1", n_boot=1000)
    assert clustered[1] - clustered[0] == pytest.approx(single[1] - single[0], rel=0.15)
    with pytest.raises(ValueError, match="callable"):
        M.bootstrap_ci(ranks, M.metric_function("R@1"), clusters=codes)


def test_seed_level_resampling_covers_run_to_run_spread() -> None:
    """Three runs that disagree widen the interval beyond what one run's queries give."""
    rng = np.random.default_rng(42)
    base = rng.random(300)
    runs = np.stack([np.where(base < p, 1, 3) for p in (0.2, 0.5, 0.8)])
    one_run = M.bootstrap_ci(runs[1], "R@1", n_boot=1000)
    three = M.bootstrap_ci(runs, "R@1", n_boot=1000)
    assert three[1] - three[0] > 2 * (one_run[1] - one_run[0])
    assert M.point_estimate(runs, "R@1") == pytest.approx(100 * np.mean(runs == 1))


def test_paired_diff_p_value_agrees_with_the_interval() -> None:
    rng = np.random.default_rng(43)
    a = rng.geometric(0.3, size=1000)
    b = np.where(rng.random(1000) < 0.15, 1, a)
    gain = M.paired_bootstrap_diff(a, b, "R@1", n_boot=2000)
    assert gain.significant and gain.p_value < 0.05
    # no floor at 2 / (n_boot + 1): a clear gain survives Holm over many comparisons
    assert gain.p_value < 1e-6 and M.holm([gain.p_value] * 100)[0] < 0.05
    from scipy.stats import norm

    deltas = M._bootstrap_stats([a, b], "R@1", 2000, 0)
    z = gain.diff / np.std(deltas[1] - deltas[0], ddof=1)
    assert gain.p_value == pytest.approx(2 * norm.sf(abs(z)))
    for shift in range(40):  # p < 0.05 and the 95% interval excluding 0 agree away from the border
        c = np.where(rng.random(1000) < shift / 400, 1, a)
        d = M.paired_bootstrap_diff(a, c, "R@1", n_boot=1000, seed=shift)
        if abs(d.p_value - 0.05) > 0.02:
            assert (d.p_value < 0.05) == d.significant, (shift, d)


def test_holm_by_hand() -> None:
    # sorted 0.01, 0.02, 0.03, 0.5 -> 4*0.01, 3*0.02, 2*0.03, 1*0.5 -> monotone: .04 .06 .06 .5
    adjusted = M.holm([0.03, 0.5, 0.01, 0.02])
    np.testing.assert_allclose(adjusted, [0.06, 0.5, 0.04, 0.06])
    np.testing.assert_allclose(M.holm([0.4, np.nan, 0.9]), [0.8, np.nan, 0.9])
    assert M.holm([]).size == 0


def test_pair_outcomes_and_accuracy_by_hand() -> None:
    # videos 0/1 a hard pair, video 2 alone; captions 0,1 -> video 0, 2 -> video 1, 3 -> video 2
    sim = np.array([[0.9, 0.2, 0.0], [0.5, 0.5, 0.9], [0.3, 0.4, 0.0], [0.1, 0.1, 0.2]])
    partner = np.array([1, 0, -1])
    hits = M.pair_outcomes(sim, [0, 0, 1, 2], partner)
    assert hits.tolist() == [True, False, True]  # caption 1 ties with the partner: wrong
    assert M.pair_outcomes(sim + np.array([0, 1e-8, 0]), [0, 0, 1, 2], partner).tolist() == [
        True,
        False,
        True,
    ]
    acc = M.pair_accuracy(hits)
    assert acc.n == 3 and acc.accuracy == pytest.approx(200 / 3)
    # Clopper-Pearson 2/3: beta quantiles, a textbook value
    from scipy.stats import beta

    assert acc.low == pytest.approx(100 * beta.ppf(0.025, 2, 2)) and acc.high == pytest.approx(
        100 * beta.ppf(0.975, 3, 1)
    )
    assert np.isnan(M.pair_accuracy([]).accuracy)


def test_mcnemar_exact_by_hand() -> None:
    a = np.array([1, 1, 1, 1, 1, 0, 0, 1], dtype=bool)
    b = np.array([0, 0, 0, 0, 1, 0, 1, 1], dtype=bool)
    test = M.mcnemar_exact(a, b)
    assert (test.only_a, test.only_b) == (4, 1)
    assert test.p_value == pytest.approx(2 * (1 + 5) / 32)  # two-sided binomial, 5 discordant
    assert M.mcnemar_exact(a, a).p_value == 1.0


# --------------------------------------------------------------------------- image quality


def _smooth_images(n: int, size: int, seed: int) -> np.ndarray:
    """(n, size, size, 3) images in [0, 1]: a sinusoid per image and channel plus a little noise."""
    rng = np.random.default_rng(seed)
    x = np.arange(size)[None, None, :, None] / size  # varies along the width
    freq = rng.uniform(0.5, 2.0, (n, 1, 1, 3))
    base = 0.5 + 0.4 * np.sin(2 * np.pi * freq * x) * np.ones((n, size, size, 3))
    return np.clip(base + rng.normal(0, 0.05, base.shape), 0, 1)


def test_psnr_and_ssim_match_scikit_image() -> None:
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    a = _smooth_images(3, 24, 0)
    b = np.clip(a + np.random.default_rng(1).normal(0, 0.08, a.shape), 0, 1)
    ta, tb = (torch.from_numpy(v).permute(0, 3, 1, 2).float() for v in (a, b))
    ours_psnr, ours_ssim = M.psnr(ta, tb).numpy(), M.ssim(ta, tb).numpy()
    for i in range(3):
        ref_psnr = peak_signal_noise_ratio(b[i], a[i], data_range=1.0)
        ref_ssim = structural_similarity(
            a[i].astype(np.float32),
            b[i].astype(np.float32),
            data_range=1.0,
            channel_axis=-1,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
        )
        assert ours_psnr[i] == pytest.approx(ref_psnr, abs=1e-3)
        assert ours_ssim[i] == pytest.approx(ref_ssim, abs=2e-4)


def test_ssim_window_shrinks_for_small_images_and_ssim_is_one_on_equal_images() -> None:
    x = torch.rand(2, 3, 8, 8)
    assert M.ssim_window(8, 8) == 7 and M.ssim_window(32, 16) == 11
    torch.testing.assert_close(M.ssim(x, x), torch.ones(2))
    with pytest.raises(ValueError, match="too small"):
        M.ssim(torch.rand(1, 3, 2, 2), torch.rand(1, 3, 2, 2))
    with pytest.raises(ValueError, match="one shape"):
        M.ssim(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 9))
