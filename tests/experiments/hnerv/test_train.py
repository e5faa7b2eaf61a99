"""vtr.experiments.hnerv.train: the loss and its warmup, runs through vtr.train.fit, run keys."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
import torch

from vtr.experiments.hnerv.evaluate import evaluate
from vtr.experiments.hnerv.train import HnervLoss, Trainee, embedding_loss, pixel_loss, run_dir, train_run
from vtr.metrics import ssim
from vtr.models.hnerv import DualHeadHNeRV, spec_for_patch


def test_pixel_loss_is_zero_on_equal_images_and_seeds_mix_otherwise() -> None:
    x = torch.rand(2, 3, 8, 8)
    assert float(pixel_loss(x, x)) == pytest.approx(0.0, abs=1e-6)
    y = (x + 0.1).clamp(0, 1)
    expected = 0.7 * (y - x).abs().mean() + 0.3 * (1 - ssim(y, x).mean())
    assert float(pixel_loss(y, x)) == pytest.approx(float(expected), rel=1e-6)


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
        pixels = pixel_loss(out.rgb, batch[1].float() / 255)
        emb = embedding_loss(out.embedding, batch[2])
    after = loss(model, batch)
    assert float(after.detach()) == pytest.approx(float(pixels + 0.5 * emb), rel=1e-5)
    assert float(before.detach()) == pytest.approx(float(pixels), rel=1e-5)
    assert int(model.batches_seen) == 7


def test_runs_are_checkpointed_under_the_cache_root(tiny_study: tuple) -> None:
    cfg, data, runs = tiny_study
    for r in runs:
        folder = run_dir(cfg, data, r.spec, "cpu")
        assert folder.parent == Path(cfg.data_dir) / "cache" / "hnerv" / "runs"
        assert folder.name.startswith(f"{r.spec.name}-") and (folder / "last.pt").is_file()


def test_run_keys_follow_what_shapes_the_weights(tiny_study: tuple, tmp_path: Path) -> None:
    cfg, data, runs = tiny_study
    spec = runs[0].spec
    key = run_dir(cfg, data, spec, "cpu").name
    shown = replace(cfg.hnerv, queries=["a dog"], top_k=2, tsne_points=5)
    moved = replace(cfg, hnerv=shown, data_dir=str(tmp_path))
    assert run_dir(moved, data, spec, "cpu").name == key  # presentation and location stay out
    assert run_dir(moved, data, spec, "cpu").parent == tmp_path / "cache" / "hnerv" / "runs"
    for changed in (
        replace(cfg, hnerv=replace(cfg.hnerv, lr=0.5)),
        replace(cfg, seed=cfg.seed + 1),
        replace(cfg, train=replace(cfg.train, warmup_fraction=0.3)),
    ):
        assert run_dir(changed, data, spec, "cpu").name != key
    assert run_dir(cfg, data, spec, "cuda").name != key  # CPU and CUDA kernels differ numerically


def test_a_finished_run_is_reloaded_with_identical_results(tiny_study: tuple) -> None:
    cfg, data, runs = tiny_study
    net, result = train_run(cfg, data, runs[0].spec, device="cpu")
    pd.testing.assert_frame_equal(
        result.history.drop(columns="seconds"), runs[0].history.drop(columns="seconds")
    )
    again = evaluate(net, data, runs[0].spec.split)
    pd.testing.assert_frame_equal(again.frames, runs[0].evaluation.frames)


def test_a_run_starts_from_the_same_weights_whatever_ran_before(tiny_study: tuple, tmp_path: Path) -> None:
    cfg, data, runs = tiny_study
    torch.manual_seed(12345)  # as if something else had drawn random numbers first
    net, result = train_run(cfg, data, runs[0].spec, device="cpu", out_dir=tmp_path / "again")
    pd.testing.assert_frame_equal(
        result.history.drop(columns="seconds"), runs[0].history.drop(columns="seconds")
    )
