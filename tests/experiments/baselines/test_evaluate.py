"""Zero-shot retrieval: scores match a hand-built reference, failed videos drop out with their captions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from vtr import video
from vtr.config import load_profile
from vtr.data.manifest import ClipRecord
from vtr.data.sources import ClipSet
from vtr.embeddings import VideoEmbeddings
from vtr.experiments.baselines.evaluate import (
    ZeroShotRun,
    aligned_queries,
    best_and_worst,
    partner_confusion,
    zero_shot_run,
    zero_shot_sweep,
)
from vtr.models.encoders import Encoder


@pytest.fixture(scope="module")
def encoder(random_tiny_encoder: Encoder) -> Encoder:
    return random_tiny_encoder


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> ClipSet:
    root = tmp_path_factory.mktemp("zero_shot")
    rng = np.random.default_rng(0)
    records = []
    for i in range(4):
        frames = rng.integers(0, 255, size=(10, 32, 32, 3), dtype=np.uint8)
        video.write_video(root / f"v{i}.mp4", frames, fps=5)
        captions = [f"clip {i} first", f"clip {i} second"][: 1 + i % 2]
        records.append(
            ClipRecord(id=f"v{i}", video=f"v{i}.mp4", captions=captions, split="test", category=f"cat{i % 2}")
        )
    (root / "empty.mp4").write_bytes(b"")
    records.insert(
        2, ClipRecord(id="bad", video="empty.mp4", captions=["never seen"], split="test", category="cat0")
    )
    return ClipSet("toy", "test", records, root)


def test_run_matches_a_reference_built_from_the_encoder(encoder: Encoder, clips: ClipSet) -> None:
    run = zero_shot_run(encoder, clips, 4, "uniform", 32, n_boot=50, progress=False)
    assert run.embedded.ids == ["v0", "v1", "v2", "v3"]
    assert set(run.errors) == {"bad"} and "empty.mp4" in run.errors["bad"]
    # reference: encode each decodable clip's frames, mean-pool, compare with every caption
    good = [r for r in clips.records if r.id != "bad"]
    videos = np.stack(
        [
            encoder.encode_video(video.sample_frames(r.video_path(clips.base_dir), 4, "uniform", 32))
            for r in good
        ]
    )
    captions = [c for r in good for c in r.captions]
    owners = np.array([i for i, r in enumerate(good) for _ in r.captions])
    sim = encoder.encode_text(captions) @ videos.T
    np.testing.assert_allclose(run.sim, sim, atol=1e-5)
    assert run.captions == captions and run.caption_to_video.tolist() == owners.tolist()
    own = sim[np.arange(len(captions)), owners]
    expected_r1 = 100 * np.mean([(sim[q] >= own[q]).sum() == 1 for q in range(len(captions))])
    assert run.metrics["t2v_R@1"] == pytest.approx(expected_r1)
    assert run.metrics["n_queries"] == len(captions) and run.metrics["n_videos"] == 4


def test_sweep_has_one_row_per_setting(encoder: Encoder, clips: ClipSet) -> None:
    table = zero_shot_sweep(encoder, clips, ["uniform", "mean"], [2, 4], 32, n_boot=20, progress=False)
    assert list(zip(table["strategy"], table["n_frames"], strict=True)) == [
        ("uniform", 2),
        ("uniform", 4),
        ("mean", 2),
        ("mean", 4),
    ]
    assert (table["n_errors"] == 1).all()
    # "mean" encodes one averaged image whatever the count: identical rows
    mean_rows = table[table["strategy"] == "mean"].drop(columns=["strategy", "n_frames"]).to_numpy()
    np.testing.assert_allclose(mean_rows[0].astype(float), mean_rows[1].astype(float), rtol=1e-5, atol=1e-6)


def test_sweep_runs_equal_single_runs(encoder: Encoder, clips: ClipSet) -> None:
    """The sweep's frame memo changes how much is encoded, not the embeddings."""
    from vtr.experiments.baselines.evaluate import sweep_runs

    runs = sweep_runs(encoder, clips, ["uniform", "keyframes"], [2, 4], 32, n_boot=20, progress=False)
    for (strategy, n_frames), run in runs.items():
        alone = zero_shot_run(encoder, clips, n_frames, strategy, 32, n_boot=20, progress=False)
        np.testing.assert_allclose(run.sim, alone.sim, atol=1e-5)


def _hand_run(sim: np.ndarray, owners: list[int], partners: dict[str, str | None]) -> ZeroShotRun:
    ids = list(partners)
    records = [
        ClipRecord(id=i, video=f"{i}.mp4", captions=["x"], split="test", meta={"pair_partner": p})
        for i, p in partners.items()
    ]
    embedded = VideoEmbeddings(ids, np.zeros((len(ids), 1, 2), np.float32), {}, ids)
    return ZeroShotRun(
        ClipSet("hand", "test", records, Path(".")), embedded, ["q"] * len(owners), np.array(owners), sim, {}
    )


def test_outcomes_margin_partner_and_confusion_by_hand() -> None:
    # 3 clips; a and b are a hard pair. q0 (a) wins; q1 (b) loses to a; q2 (c) loses to a; q3 (a) loses to b.
    sim = np.array([[0.9, 0.5, 0.1], [0.8, 0.6, 0.2], [0.7, 0.1, 0.3], [0.2, 0.4, 0.1]])
    run = _hand_run(sim, [0, 1, 2, 0], {"a": "b", "b": "a", "c": None})
    out = run.outcomes()
    assert out["rank"].tolist() == [1, 2, 2, 2]
    np.testing.assert_allclose(out["margin"], [0.4, -0.2, -0.4, -0.2])
    assert out["top1_clip"].tolist() == ["a", "a", "a", "b"]
    assert out["top1_is_partner"].tolist() == [False, True, False, True]
    assert (out["margin"] > 0).tolist() == (out["rank"] == 1).tolist()
    assert partner_confusion(out) == pytest.approx(2 / 3)


def test_pair_outcomes_and_sweep_differences_by_hand() -> None:
    from vtr.experiments.baselines.evaluate import sweep_differences

    sim = np.array([[0.9, 0.5, 0.1], [0.8, 0.6, 0.2], [0.7, 0.1, 0.3], [0.2, 0.4, 0.1]])
    run = _hand_run(sim, [0, 1, 2, 0], {"a": "b", "b": "a", "c": None})
    # a-captions q0 (0.9 > 0.5), q3 (0.2 < 0.4); b-caption q1 (0.6 < 0.8); c has no partner
    assert run.pair_outcomes.tolist() == [True, False, False]
    assert run.caption_clusters.tolist() == ["clip:a", "clip:b", "clip:c", "clip:a"]
    better = _hand_run(np.where(np.eye(4, 3, dtype=bool)[[0, 1, 2, 0]], 1.0, 0.0), [0, 1, 2, 0],
                       {"a": "b", "b": "a", "c": None})  # fmt: skip
    table = sweep_differences({("uniform", 8): run, ("mean", 8): better}, ("uniform", 8), n_boot=200)
    line = table.iloc[0]
    assert (line["strategy"], line["n_frames"]) == ("mean", 8)
    assert line["dR@1"] == pytest.approx(100 * (1 - 1 / 4))
    assert line["d_pair_acc"] == pytest.approx(100 * (1 - 1 / 3))
    assert line["pair_p"] == pytest.approx(0.5)  # 2 discordant, both for "better": 2 * 0.5 ** 2
    assert line["p_holm"] == line["p"] and bool(line["real"]) == (line["p_holm"] < 0.05)
    with pytest.raises(KeyError, match="reference"):
        sweep_differences({("mean", 8): better}, ("uniform", 8))


def test_best_and_worst_take_distinct_clips() -> None:
    outcomes = pd.DataFrame(
        {"clip": ["a", "a", "b", "c", "c", "d"], "margin": [0.9, 0.8, 0.5, -0.1, -0.9, -0.5]}
    )
    picked = best_and_worst(outcomes, k=2)
    assert picked[picked["kind"] == "best"]["clip"].tolist() == ["a", "b"]
    assert picked[picked["kind"] == "worst"]["clip"].tolist() == ["c", "d"]


def test_aligned_queries_raise_when_nothing_decoded(clips: ClipSet) -> None:
    nothing = VideoEmbeddings([], np.zeros((0, 1, 2), np.float32), {"v0": "bad"}, ["v0"])
    with pytest.raises(ValueError, match="no clip decoded"):
        aligned_queries(clips, nothing)


def test_viclip_with_random_weights_runs_notebook_01s_zero_shot_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A small ViCLIP (same architecture, tiny widths) through load_encoder, zero_shot_run and the sweep."""
    import torch

    from vtr.models import viclip
    from vtr.models.encoders import load_encoder

    monkeypatch.setitem(
        viclip.ARCHS,
        "viclip-tiny",
        viclip.ViCLIPConfig(
            patch_size=4, vision_width=32, vision_layers=2, vision_heads=2, embed_dim=16,
            text_width=16, text_layers=1, text_heads=2, image_size=16,
        ),
    )  # fmt: skip
    rng = np.random.default_rng(1)
    records = []
    for i in range(4):  # non-square frames: ViCLIP sees them whole, squashed
        video.write_video(
            tmp_path / f"v{i}.mp4", rng.integers(0, 255, (17, 24, 40, 3), dtype=np.uint8), fps=5
        )
        records.append(ClipRecord(id=f"v{i}", video=f"v{i}.mp4", captions=[f"clip {i}"], category="c", split="test"))
    clips = ClipSet("toy", "test", records, tmp_path)
    torch.manual_seed(0)
    cfg = load_profile("sample", overrides={"model.arch": "viclip-tiny", "model.pretrained": ""})
    encoder = load_encoder(cfg, device="cpu")

    run = zero_shot_run(
        encoder, clips, 8, "stride", 64, cache_dir=tmp_path / "cache", n_boot=20, progress=False
    )
    assert run.embedded.frames.shape == (4, 1, 16)  # one row per video: its clip embedding
    reference = np.stack(  # every 17 // 8 = 2nd frame from the first, native size, one joint pass
        [encoder.encode_video(video.sample_frames(tmp_path / r.video, 8, "stride", None)) for r in records]
    )
    np.testing.assert_allclose(run.embedded.embeddings, reference, atol=1e-5)
    np.testing.assert_allclose(run.sim, encoder.encode_text(run.captions) @ reference.T, atol=1e-5)
    assert {"t2v_R@1", "v2t_R@1"} <= set(run.metrics) and len(run.outcomes()) == 4
    again = zero_shot_run(
        encoder, clips, 8, "stride", 64, cache_dir=tmp_path / "cache", n_boot=20, progress=False
    )
    assert again.embedded.cache_hits == 4
    np.testing.assert_allclose(again.sim, run.sim, atol=1e-6)

    table = zero_shot_sweep(encoder, clips, ["stride", "uniform"], [4, 8, 12], n_boot=20, progress=False)
    assert len(table) == 6 and (table["n_errors"] == 0).all()
