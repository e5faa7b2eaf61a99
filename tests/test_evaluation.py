import numpy as np
import pytest

from vtr import metrics as M
from vtr.evaluation import evaluate_retrieval, first_caption_index, metrics_from_ranks


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_first_caption_index() -> None:
    assert first_caption_index([0, 0, 1, 2, 2, 1]).tolist() == [0, 2, 3]
    with pytest.raises(ValueError, match="without a caption"):
        first_caption_index([0, 2])


def test_evaluate_retrieval_matches_the_metric_functions() -> None:
    rng = np.random.default_rng(0)
    videos = _unit(rng.normal(size=(30, 16)))
    owners = np.repeat(np.arange(30), 2)
    texts = _unit(videos[owners] + 0.8 * rng.normal(size=(60, 16)))
    out = evaluate_retrieval(texts, videos, owners, n_boot=200)
    sim = texts @ videos.T
    assert out["t2v_R@1"] == M.recall_metrics(M.t2v_ranks(sim, owners))["R@1"]
    assert out["v2t_MedR"] == M.recall_metrics(M.v2t_ranks(sim, owners))["MedR"]
    assert out["t2v_R@1_lo"] <= out["t2v_R@1"] <= out["t2v_R@1_hi"]
    square = sim[::2]  # the first caption of each video
    assert out["alignment_loss"] == pytest.approx(M.info_nce_loss(square, 0.07))
    assert out["cosine_top1"] == pytest.approx(out["v2t_R@1"] / 100)
    assert "dsl_t2v_R@1" in out


def test_perfect_embeddings_score_perfectly() -> None:
    videos = np.eye(8)
    out = evaluate_retrieval(videos, videos, np.arange(8), n_boot=50, dsl=False)
    assert out["t2v_R@1"] == 100.0 and out["v2t_MedR"] == 1.0
    assert out["cosine_gap"] == pytest.approx(1.0)
    assert not any(k.startswith("dsl_") for k in out)


def test_hard_pairs_from_records_and_pair_metrics() -> None:
    from vtr.evaluation import hard_pairs

    metas = [{"pair_group": "p0", "pair_partner": "b"}, {"pair_group": "p0", "pair_partner": "a"},
             {"pair_group": None, "pair_partner": None}, {"pair_group": "p1", "pair_partner": "gone"}]  # fmt: skip
    pairs = hard_pairs(["a", "b", "c", "d"], metas)
    assert pairs.partner.tolist() == [1, 0, -1, -1]
    assert pairs.clusters[0] == pairs.clusters[1] != pairs.clusters[2] and pairs.any
    videos = np.eye(4)
    texts = videos[[0, 0, 1, 2, 3]] + np.array([0, 0.3, 0, 0])  # every caption leans a little to video 1
    out = evaluate_retrieval(texts, videos, [0, 0, 1, 2, 3], n_boot=50, dsl=False, pairs=pairs)
    assert out["pair_n"] == 3 and out["pair_acc"] == 100.0
    assert out["pair_acc_lo"] < 100.0 == out["pair_acc_hi"]


def test_metrics_from_ranks_matches_evaluate_retrieval_on_a_plain_similarity():
    """Ranks taken from the similarity give evaluate_retrieval's numbers; by hand on the ranks too."""
    rng = np.random.default_rng(3)
    text, video = rng.normal(size=(12, 8)), rng.normal(size=(6, 8))
    text /= np.linalg.norm(text, axis=1, keepdims=True)
    video /= np.linalg.norm(video, axis=1, keepdims=True)
    owners = np.repeat(np.arange(6), 2)
    sim = (text @ video.T).astype(np.float32)
    t2v, v2t = M.t2v_ranks(sim, owners), M.v2t_ranks(sim, owners)
    ranked = metrics_from_ranks(t2v, v2t, t2v_clusters=owners, v2t_clusters=np.arange(6),
                                square=sim[first_caption_index(owners)], n_boot=50)  # fmt: skip
    full = evaluate_retrieval(text, video, owners, n_boot=50, dsl=False)
    for key in ("t2v_R@1", "t2v_R@5", "t2v_MedR", "t2v_MeanR", "v2t_R@1", "v2t_MedR", "alignment_loss"):
        assert ranked[key] == pytest.approx(full[key], rel=1e-5), key
    assert ranked["t2v_R@1"] == pytest.approx(100 * np.mean(t2v == 1))
    assert ranked["t2v_R@1_lo"] <= ranked["t2v_R@1"] <= ranked["t2v_R@1_hi"]
    assert "pair_acc" not in ranked
    with_pairs = metrics_from_ranks(t2v, v2t, pair_outcomes=np.array([True, False, True, True]), n_boot=10)
    assert with_pairs["pair_acc"] == 75.0 and with_pairs["pair_n"] == 4.0
    assert "alignment_loss" not in with_pairs  # no square matrix given
