"""vtr.hnerv: splits, patches, PSNR/SSIM against scikit-image, loss warmup, checks, search, the study."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from vtr import hnerv
from vtr.config import load_profile
from vtr.hnerv import (
    HELD_OUT,
    TRAIN,
    HnervLoss,
    PatchData,
    RunSpec,
    Trainee,
    embedding_checks,
    from_patches,
    split_frames,
    to_patches,
)
from vtr.models.hnerv import DualHeadHNeRV, spec_for_patch

# ----------------------------------------------------------------------------------- splits


def _hnerv_reference_split(n: int, a: int, b: int, c: int) -> tuple[list[int], list[int]]:
    """HNeRV's data_split (hnerv_utils.py), restated: position < a trains, position >= b validates."""
    train, val = [], []
    for i in range(n):
        if i % c < a:
            train.append(i)
        elif i % c >= b:
            val.append(i)
    return train, val


@pytest.mark.parametrize("split", ["9_10_10", "6_6_10", "8_8_10", "18_19_20", "1_1_1"])
def test_split_frames_matches_hnervs_rule_and_partitions_the_frames(split: str) -> None:
    a, b, c = map(int, split.split("_"))
    s = split_frames(132, split)
    train, val = _hnerv_reference_split(132, a, b, c)
    assert s.train.tolist() == train and s.val.tolist() == val
    together = np.sort(np.concatenate([s.train, s.skipped, s.val]))
    assert together.tolist() == list(range(132))
    assert set(s.held_out) == set(range(132)) - set(train)


def test_split_9_10_10_has_no_validation_but_holds_out_every_tenth_frame() -> None:
    s = split_frames(30, "9_10_10")
    assert s.val.size == 0
    assert s.held_out.tolist() == [9, 19, 29]
    groups = s.group_of(30)
    assert groups[9] == HELD_OUT and groups[8] == TRAIN


@pytest.mark.parametrize("bad", ["6_10", "a_b_c", "7_6_10", "0_5_10"])
def test_split_frames_rejects_malformed_splits(bad: str) -> None:
    with pytest.raises(ValueError, match="split"):
        split_frames(20, bad)


# ----------------------------------------------------------------------------------- patches


def test_patches_are_the_grid_cells_in_row_major_order_and_round_trip() -> None:
    frames = np.arange(2 * 4 * 6 * 3, dtype=np.int64).reshape(2, 4, 6, 3)
    patches = to_patches(frames, (2, 3))
    assert patches.shape == (2, 6, 2, 2, 3)
    np.testing.assert_array_equal(patches[1, 4], frames[1, 2:4, 2:4])  # row 1, column 1
    np.testing.assert_array_equal(from_patches(patches, (2, 3)), frames)
    np.testing.assert_array_equal(from_patches(torch.from_numpy(patches), (2, 3)).numpy(), frames)


def test_patch_coordinates_are_normalised_frame_index_and_patch_centre() -> None:
    data = PatchData(np.zeros((4, 4, 8, 3), np.uint8), np.zeros((4, 4, 2), np.float32), (2, 2), "x", "k")
    coords = data.coords()
    np.testing.assert_allclose(coords[2, 3], [2 / 4, 0.75, 0.75])
    np.testing.assert_allclose(coords[0, 1], [0.0, 0.75, 0.25])
    with pytest.raises(ValueError, match="targets"):
        PatchData(np.zeros((4, 4, 8, 3), np.uint8), np.zeros((4, 3, 2), np.float32), (2, 2), "x", "k")


# ----------------------------------------------------------------------------------- metrics


def _smooth_images(n: int, size: int, seed: int) -> np.ndarray:
    """(n, size, size, 3) images in [0, 1]: a sinusoid per image and channel plus a little noise."""
    rng = np.random.default_rng(seed)
    x = np.arange(size)[None, None, :, None] / size  # varies along the width
    freq = rng.uniform(0.5, 2.0, (n, 1, 1, 3))
    base = 0.5 + 0.4 * np.sin(2 * np.pi * freq * x) * np.ones((n, size, size, 3))
    return np.clip(base + rng.normal(0, 0.05, base.shape), 0, 1)


def test_psnr_and_ssim_match_scikit_image() -> None:
    a = _smooth_images(3, 24, 0)
    b = np.clip(a + np.random.default_rng(1).normal(0, 0.08, a.shape), 0, 1)
    ta, tb = (torch.from_numpy(v).permute(0, 3, 1, 2).float() for v in (a, b))
    ours_psnr, ours_ssim = hnerv.psnr(ta, tb).numpy(), hnerv.ssim(ta, tb).numpy()
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


def test_ssim_window_shrinks_for_small_patches_and_pixel_loss_is_zero_on_equal_images() -> None:
    x = torch.rand(2, 3, 8, 8)
    assert hnerv._window(8, 8) == 7 and hnerv._window(32, 16) == 11
    torch.testing.assert_close(hnerv.ssim(x, x), torch.ones(2))
    assert float(hnerv.pixel_loss(x, x)) == pytest.approx(0.0, abs=1e-6)
    y = (x + 0.1).clamp(0, 1)
    expected = 0.7 * (y - x).abs().mean() + 0.3 * (1 - hnerv.ssim(y, x).mean())
    assert float(hnerv.pixel_loss(y, x)) == pytest.approx(float(expected), rel=1e-6)


def test_embedding_term_switches_on_after_the_warmup_and_counts_batches() -> None:
    torch.manual_seed(0)
    model = Trainee(DualHeadHNeRV(spec_for_patch((8, 8), 8, (2, 2)), clip_dim=4, pe_levels=4)).train()
    loss = HnervLoss(clip_weight=0.5, warmup_epochs=2, batches_per_epoch=3)
    assert [loss.weight(b) for b in (0, 5, 6, 9)] == [0.0, 0.0, 0.5, 0.5]
    batch = (torch.rand(2, 3), torch.randint(0, 256, (2, 3, 8, 8), dtype=torch.uint8), torch.randn(2, 4))
    before = loss(model, batch)
    model.batches_seen.fill_(6)
    with torch.no_grad():
        out = model(batch[0])
        pixels = hnerv.pixel_loss(out.rgb, batch[1].float() / 255)
        emb = hnerv.embedding_loss(out.embedding, batch[2])
    after = loss(model, batch)
    assert float(after.detach()) == pytest.approx(float(pixels + 0.5 * emb), rel=1e-5)
    assert float(before.detach()) == pytest.approx(float(pixels), rel=1e-5)
    assert int(model.batches_seen) == 7


# ----------------------------------------------------------------------------------- checks, search


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def test_embedding_checks_on_perfect_and_on_collapsed_predictions() -> None:
    rng = np.random.default_rng(0)
    targets = _unit(rng.normal(size=(10, 4, 16)))
    split = split_frames(10, "6_6_10")
    perfect = embedding_checks(targets, targets, split)
    assert perfect["matched_cosine"] == pytest.approx(1.0)
    assert perfect["variance_ratio"] == pytest.approx(1.0)
    assert perfect["position_R@1"] == pytest.approx(100.0)
    assert perfect["cosine_gap"] == pytest.approx(0.0, abs=1e-6)
    assert all(v for k, v in perfect.items() if k.startswith("pass_"))
    collapsed = np.broadcast_to(_unit(targets.mean(axis=(0, 1))), targets.shape)
    bad = embedding_checks(collapsed, targets, split)
    assert bad["variance_ratio"] == pytest.approx(0.0, abs=1e-9)
    assert bad["matched_cosine"] == pytest.approx(bad["mismatched_cosine"], abs=0.02)
    assert not bad["pass_diversity"] and not bad["pass_similarity"]


class _FakeEncoder:
    """encode_text: query i is the unit vector e_i; image side of 8; mean-colour image features."""

    image_size = (8, 8)

    def encode_text(self, texts: list[str]) -> np.ndarray:
        return np.eye(6, dtype=np.float32)[: len(texts)]

    def encode_frames(self, frames: np.ndarray) -> np.ndarray:
        mean = np.asarray(frames, np.float32).mean(axis=(1, 2)) / 255
        return _unit(np.concatenate([mean, 1 - mean], axis=1) + 1e-3)

    def identity(self) -> dict:
        return {"fake": 1}


def test_text_search_with_perfect_predictions_finds_the_ground_truth_top_k() -> None:
    rng = np.random.default_rng(1)
    targets = _unit(rng.normal(size=(6, 2, 6)))
    split = split_frames(6, "1_1_2")
    result = hnerv.text_search(_FakeEncoder(), ["q0", "q1"], targets, targets, split, k=3)
    assert (result.summary["overlap@3"] == 1.0).all()
    # 12 patches: the ground truth's top 5% is its single best patch, one of the three found
    assert result.summary["precision@3"].tolist() == pytest.approx([1 / 3, 1 / 3])
    top = result.hits[(result.hits["query"] == "q1") & (result.hits.source == "predicted")]
    flat = targets.reshape(-1, 6)[:, 1].argsort()[::-1][:3]
    assert (top.frame * 2 + top.patch).tolist() == flat.tolist()
    shuffled = hnerv.text_search(_FakeEncoder(), ["q0"], -targets, targets, split, k=3)
    assert shuffled.summary["precision@3"].iloc[0] == 0.0


def test_projection_returns_two_sources_per_patch() -> None:
    rng = np.random.default_rng(2)
    targets = _unit(rng.normal(size=(8, 2, 5)))
    points = hnerv.project_embeddings(targets, targets, split_frames(8, "6_6_10"), n_points=10, seed=0)
    assert len(points) == 20 and set(points.source) == {"predicted", "ground truth"}
    assert np.isfinite(points[["x", "y"]].to_numpy()).all()


# ----------------------------------------------------------------------------------- the study


@pytest.fixture(scope="module")
def tiny_study(tmp_path_factory: pytest.TempPathFactory) -> tuple:
    """Three runs on a synthetic 10-frame video with the shared trainer (a few seconds)."""
    root = tmp_path_factory.mktemp("hnerv")
    cfg = load_profile(
        "sample",
        {
            "data_dir": str(root),
            "hnerv.widths": {"small": 8, "large": 16},
            "hnerv.strides": [2, 2],
            "hnerv.splits": ["6_6_10", "1_1_1"],
            "hnerv.main_size": "small",
            "hnerv.reference_splits": ["6_6_10"],
            "hnerv.epochs": 3,
            "hnerv.clip_warmup_epochs": 1,
            "hnerv.pe_levels": 8,
            "hnerv.curve_patches": 8,
            "train.tensorboard": False,
        },
    )
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (10, 16, 32, 3), dtype=np.uint8)
    data = PatchData(frames, _unit(rng.normal(size=(10, 2, 6))), (1, 2), "synthetic", "test")
    runs = hnerv.run_study(cfg, data, device="cpu", progress=False)
    return cfg, data, runs


def test_study_plan_runs_sizes_splits_and_the_reference(tiny_study: tuple) -> None:
    cfg, data, runs = tiny_study
    names = [r.spec.name for r in runs]
    assert names == [
        "coords-small-6_6_10",
        "coords-large-6_6_10",
        "coords-small-1_1_1",
        "content-small-6_6_10",
    ]
    for r in runs:
        assert list(r.history.epoch) == [1, 2, 3]
        assert {"train_loss", "train_psnr", "train_cosine"} <= set(r.history.columns)
        assert (hnerv.run_dir(cfg, data, r.spec) / "last.pt").is_file()


def test_evaluation_scores_every_patch_and_frame(tiny_study: tuple) -> None:
    _, data, runs = tiny_study
    ev = runs[0].evaluation
    assert len(ev.patches) == 20 and len(ev.frames) == 10
    assert ev.reconstructions.shape == data.frames.shape and ev.reconstructions.dtype == np.uint8
    assert (ev.frames.group == HELD_OUT).sum() == 4  # frames 6..9
    # a frame's PSNR follows from its reconstruction (to uint8 rounding)
    truth = torch.from_numpy(data.frames[:1]).permute(0, 3, 1, 2).float() / 255
    recon = torch.from_numpy(ev.reconstructions[:1]).permute(0, 3, 1, 2).float() / 255
    assert float(hnerv.psnr(recon, truth)[0]) == pytest.approx(ev.frames.psnr.iloc[0], abs=0.05)
    np.testing.assert_allclose(np.linalg.norm(ev.embeddings, axis=-1), 1.0, rtol=1e-5)
    summary = ev.summary()
    assert summary["gap_psnr"] == pytest.approx(summary["train_psnr"] - summary["heldout_psnr"])
    no_heldout = runs[2].evaluation.summary()
    assert np.isnan(no_heldout["heldout_psnr"])


def test_a_finished_run_is_reloaded_with_identical_results(tiny_study: tuple) -> None:
    cfg, data, runs = tiny_study
    net, result = hnerv.train_run(cfg, data, runs[0].spec, device="cpu")
    pd.testing.assert_frame_equal(
        result.history.drop(columns="seconds"), runs[0].history.drop(columns="seconds")
    )
    again = hnerv.evaluate(net, data, runs[0].spec.split)
    pd.testing.assert_frame_equal(again.frames, runs[0].evaluation.frames)


def test_a_run_starts_from_the_same_weights_whatever_ran_before(tiny_study: tuple, tmp_path: Path) -> None:
    cfg, data, runs = tiny_study
    torch.manual_seed(12345)  # as if something else had drawn random numbers first
    net, result = hnerv.train_run(cfg, data, runs[0].spec, device="cpu", out_dir=tmp_path / "again")
    pd.testing.assert_frame_equal(
        result.history.drop(columns="seconds"), runs[0].history.drop(columns="seconds")
    )


def test_tables_conclusions_and_report_metrics(tiny_study: tuple) -> None:
    _, data, runs = tiny_study
    table = hnerv.study_table(runs)
    split = split_frames(data.n_frames, "6_6_10")
    checks = embedding_checks(runs[0].evaluation.embeddings, data.targets, split)
    lines = hnerv.conclusions(table, checks, "coords-small-6_6_10")
    assert any("Capacity" in line for line in lines) and any("Content embeddings" in line for line in lines)
    assert f"{table.train_psnr.iloc[0]:.1f} dB" in lines[0]
    metrics = hnerv.report_metrics(runs, checks)
    assert metrics["runs"]["coords-small-1_1_1"]["heldout_psnr"] is None
    long = hnerv.long_table(runs)
    assert len(long) == 2 * len(runs)
    sizes = hnerv.size_table(load_profile("sample").hnerv, data)
    assert list(sizes["size"][:4]) == ["small", "medium", "large", "xl"]
    assert (sizes.total == sizes.weights + sizes.encoder).all()
    assert (sizes.stored == sizes.weights + sizes.embeddings).all()
    content = sizes[sizes.kind == "content"]
    per_patch = 16 * 2 * 2  # embed_dim x fc_h x fc_w of a 16 x 16 patch with strides 2, 2, 2
    assert (content.embeddings == data.n_frames * data.n_patches * per_patch).all()
    assert (sizes[sizes.kind == "coords"].embeddings == 0).all()


def test_sample_profile_content_model_stores_its_270k_embedding_values() -> None:
    """The sample profile (132 bunny frames, 2 x 4 patches of 32 x 32, strides 2, 2, 2, embed_dim 16):
    132 x 8 x 16 x 4 x 4 = 270,336 embedding values beside about 12.8k weights."""
    h = load_profile("sample").hnerv
    frames = np.zeros((132, *h.resize, 3), dtype=np.uint8)
    data = PatchData(frames, np.zeros((132, 8, 4), dtype=np.float32), tuple(h.grid), "zeros", "k")
    row = hnerv.size_table(h, data).set_index(["kind", "size"]).loc[("content", h.main_size)]
    assert row.embeddings == 270_336 and row.stored == row.weights + 270_336 and row.weights < 20_000


def test_content_runs_store_their_training_embeddings(tiny_study: tuple) -> None:
    _, data, runs = tiny_study
    table = hnerv.study_table(runs).set_index("run")
    content, coords = table.loc["content-small-6_6_10"], table.loc["coords-small-6_6_10"]
    n_train = len(split_frames(data.n_frames, "6_6_10").train)
    net = runs[3].model
    assert content.embeddings == n_train * data.n_patches * net.embedding_numel > 0
    assert content.stored == content.weights + content.embeddings
    assert coords.embeddings == 0 and coords.stored == coords.weights == runs[0].params["total"]


def test_interpolation_plan_mixes_the_nearest_training_frames() -> None:
    split = split_frames(25, "6_6_10")  # train 0-5, 10-15, 20-24
    lo, hi, w = hnerv.interpolation_plan(split, 25)
    assert (lo[:6] == np.arange(6)).all() and (hi[:6] == np.arange(6)).all() and (w[:6] == 0).all()
    assert (lo[6], hi[6], w[6]) == (5, 10, pytest.approx(0.2))
    assert (lo[9], hi[9], w[9]) == (5, 10, pytest.approx(0.8))
    tail = hnerv.interpolation_plan(split_frames(10, "6_6_10"), 10)  # 6-9 come after the last training frame
    assert (tail[0][6:] == 5).all() and (tail[1][6:] == 5).all() and (tail[2][6:] == 0).all()


def test_held_out_frames_are_decoded_without_reading_their_pixels(tiny_study: tuple) -> None:
    """Scrambling the held-out frames' pixels changes nothing for the content model's evaluation
    (their embeddings come from the training frames) and everything for the autoencoder reading."""
    _, data, runs = tiny_study
    content = runs[3]
    held = split_frames(data.n_frames, content.spec.split).held_out
    frames = data.frames.copy()
    frames[held] = 255 - frames[held]
    scrambled = PatchData(frames, data.targets, data.grid, "scrambled", "scrambled")
    fair = hnerv.evaluate(content.model, scrambled, content.spec.split)
    np.testing.assert_array_equal(fair.reconstructions, content.evaluation.reconstructions)
    np.testing.assert_allclose(fair.embeddings, content.evaluation.embeddings, atol=1e-6)
    own = hnerv.evaluate(content.model, scrambled, content.spec.split, held_out="own pixels")
    assert not np.array_equal(own.reconstructions[held], content.evaluation.reconstructions[held])
    np.testing.assert_array_equal(own.reconstructions[:6], content.evaluation.reconstructions[:6])
    row = content.row()
    assert row["heldout_psnr_own_pixels"] == pytest.approx(content.own_pixels.summary()["heldout_psnr"])
    assert "heldout_psnr_own_pixels" not in runs[0].row()


def test_figures_build(tiny_study: tuple) -> None:
    import matplotlib.pyplot as plt

    _, data, runs = tiny_study
    split = split_frames(data.n_frames, "6_6_10")
    search = hnerv.text_search(
        _FakeEncoder(), ["q0", "q1"], runs[0].evaluation.embeddings, data.targets, split, k=2
    )
    figs = [
        hnerv.reconstruction_figure(data, runs[:2], [0, 6]),
        hnerv.search_figure(data, search),
        hnerv.per_frame_figure(runs),
        hnerv.curves_figure(runs),
        hnerv.projection_figure(
            hnerv.project_embeddings(runs[0].evaluation.embeddings, data.targets, split, 8)
        ),
    ]
    assert all(f.axes for f in figs)
    plt.close("all")


def test_prepare_video_decodes_crops_embeds_and_caches(tmp_path: Path) -> None:
    cfg = load_profile(
        "sample",
        {"data_dir": str(tmp_path), "hnerv.max_frames": 3, "hnerv.resize": [16, 32], "hnerv.grid": [1, 2]},
    )
    data = hnerv.prepare_video(cfg, _FakeEncoder())
    assert data.frames.shape == (3, 16, 32, 3) and data.targets.shape == (3, 2, 6)
    cached = list((tmp_path / "cache" / "hnerv").glob("data-*.npz"))
    assert len(cached) == 1
    again = hnerv.prepare_video(cfg, _FakeEncoder())
    np.testing.assert_array_equal(again.frames, data.frames)
    np.testing.assert_array_equal(again.targets, data.targets)


def test_prepare_video_names_a_missing_video(tmp_path: Path) -> None:
    cfg = load_profile("sample", {"data_dir": str(tmp_path), "hnerv.video": "no/such/video.mp4"})
    with pytest.raises(FileNotFoundError, match="hnerv.video"):
        hnerv.prepare_video(cfg, _FakeEncoder())


def test_study_plan_rejects_unknown_main_size() -> None:
    with pytest.raises(ValueError, match="main_size"):  # load_profile refuses it (ConfigError) ...
        load_profile("sample", {"hnerv.main_size": "huge"})
    unchecked = dataclasses.replace(load_profile("sample").hnerv, main_size="huge")
    # ... and so does the plan of a section built in Python
    with pytest.raises(ValueError, match="main_size"):
        hnerv.study_plan(unchecked)
    assert RunSpec("coords", "small", "6_6_10").name == "coords-small-6_6_10"
