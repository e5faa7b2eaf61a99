"""vtr.train: resume is exact, NaN stops, early stopping, atomic checkpoints, metrics.csv, groups."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pandas as pd
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from vtr.config import TrainConfig
from vtr.runtime import torch_generator
from vtr.train import NonFiniteLossError, fit, param_groups, warmup_cosine

CFG = TrainConfig(epochs=4, batch_size=8, lr_head=1e-2, warmup_fraction=0.25, patience=0, tensorboard=False)


def _data(n: int = 32, seed: int = 0) -> TensorDataset:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 5, generator=gen)
    y = x @ torch.randn(5, 1, generator=gen) + 0.1 * torch.randn(n, 1, generator=gen)
    return TensorDataset(x, y)


def _model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    # dropout makes the run depend on the RNG, so an inexact resume would show
    return nn.Sequential(nn.Linear(5, 16), nn.LayerNorm(16), nn.Dropout(0.2), nn.ReLU(), nn.Linear(16, 1))


def _loader(batch_size: int = 8, shuffle: bool = True) -> DataLoader:
    return DataLoader(_data(), batch_size=batch_size, shuffle=shuffle, generator=torch_generator(0))


def mse(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    x, y = batch
    return nn.functional.mse_loss(model(x), y)


def _weights(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_resume_reaches_the_same_weights(tmp_path: Path) -> None:
    full = _model()
    fit(full, mse, _loader(), CFG, out_dir=tmp_path / "a", progress=False)

    calls = {"n": 0}

    def crashing(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        calls["n"] += 1
        if calls["n"] == 2 * len(_loader()) + 2:  # during epoch 3
            raise KeyboardInterrupt
        return mse(model, batch)

    interrupted = _model()
    with pytest.raises(KeyboardInterrupt):
        fit(interrupted, crashing, _loader(), CFG, out_dir=tmp_path / "b", progress=False)
    assert torch.load(tmp_path / "b" / "last.pt", weights_only=True)["state"]["epoch"] == 2

    resumed = _model(seed=123)  # different initial weights: everything must come from last.pt
    result = fit(resumed, mse, _loader(), CFG, out_dir=tmp_path / "b", progress=False)
    for key, value in _weights(full).items():
        assert torch.equal(value, resumed.state_dict()[key]), key
    assert list(result.history["epoch"]) == [1, 2, 3, 4]


def test_finished_run_is_not_retrained(tmp_path: Path) -> None:
    fit(_model(), mse, _loader(), dataclasses.replace(CFG, epochs=1), out_dir=tmp_path, progress=False)

    def never(model: nn.Module, batch: object) -> torch.Tensor:
        raise AssertionError("a finished run must not train again")

    result = fit(
        _model(), never, _loader(), dataclasses.replace(CFG, epochs=1), out_dir=tmp_path, progress=False
    )
    assert len(result.history) == 1


def test_changed_config_refuses_to_resume(tmp_path: Path) -> None:
    fit(_model(), mse, _loader(), dataclasses.replace(CFG, epochs=1), out_dir=tmp_path, progress=False)
    with pytest.raises(ValueError, match="lr_head"):
        fit(_model(), mse, _loader(), dataclasses.replace(CFG, epochs=1, lr_head=0.5), out_dir=tmp_path)


def _val_loss(model: nn.Module) -> dict[str, float]:
    x, y = _data(16, seed=1).tensors
    return {"val_loss": float(nn.functional.mse_loss(model(x), y))}


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"seed": 1}, "seed: 0 -> 1"),
        ({"monitor": "val_other"}, "monitor: 'val_loss' -> 'val_other'"),
        ({"mode": "max"}, "mode: 'min' -> 'max'"),
        ({"batch_size": 16}, "n_batches: 4 -> 2"),
        (
            {"cfg": dataclasses.replace(CFG, epochs=1, lr_head=0.5, weight_decay=0.3)},
            "config.lr_head: 0.01 -> 0.5",
        ),
    ],
)
def test_resume_refuses_other_settings_naming_them(tmp_path: Path, change: dict, named: str) -> None:
    """A checkpoint stores the seed and settings it was trained with; resuming under others would mix two
    runs, so it is refused with every differing field named."""
    base = {"seed": 0, "monitor": "val_loss", "mode": "min", "cfg": dataclasses.replace(CFG, epochs=1)}

    def run(seed: int, monitor: str, mode: str, cfg: TrainConfig, batch_size: int = 8) -> None:
        def validate(model: nn.Module) -> dict[str, float]:
            return {monitor: _val_loss(model)["val_loss"]}

        fit(
            _model(),
            mse,
            _loader(batch_size),
            cfg,
            out_dir=tmp_path,
            validate=validate,
            monitor=monitor,
            mode=mode,
            seed=seed,
            progress=False,
        )

    run(**base)
    run(**base)  # the same settings resume (here: find the run finished)
    with pytest.raises(ValueError, match="cannot resume") as info:
        run(**{**base, **change})
    assert named in str(info.value) and str(tmp_path / "last.pt") in str(info.value)
    if "cfg" in change:
        assert "config.weight_decay: 0.02 -> 0.3" in str(info.value)  # every field, not just the first


def test_nan_loss_raises_with_epoch_and_step(tmp_path: Path) -> None:
    def nan_at_step_3(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        loss = mse(model, batch)
        nan_at_step_3.calls += 1
        return loss * float("nan") if nan_at_step_3.calls == 3 else loss

    nan_at_step_3.calls = 0
    with pytest.raises(NonFiniteLossError, match=r"nan at epoch 1, step 3") as info:
        fit(_model(), nan_at_step_3, _loader(), CFG, out_dir=tmp_path, progress=False)
    assert (info.value.epoch, info.value.step) == (1, 3) and math.isnan(info.value.value)


def test_early_stopping_and_best_weights(tmp_path: Path) -> None:
    scores = iter([0.1, 0.5, 0.4, 0.3, 0.2, 0.9, 0.9, 0.9])
    snapshots: list[dict[str, torch.Tensor]] = []

    def validate(model: nn.Module) -> dict[str, float]:
        assert not model.training and not torch.is_grad_enabled()
        snapshots.append(_weights(model))
        return {"val_R@1": next(scores), "val_loss": 1.0}

    model = _model()
    cfg = dataclasses.replace(CFG, epochs=8, patience=3)
    result = fit(model, mse, _loader(), cfg, out_dir=tmp_path, validate=validate, progress=False)
    assert result.stopped_early and len(result.history) == 5  # epoch 2 best, then 3 epochs without gain
    assert (result.best_epoch, result.best_value) == (2, 0.5)
    for key, value in snapshots[1].items():
        assert torch.equal(model.state_dict()[key], value), key

    table = pd.read_csv(tmp_path / "metrics.csv")
    assert list(table["epoch"]) == [1, 2, 3, 4, 5]
    assert {"train_loss", "lr", "seconds", "val_R@1", "val_loss"} <= set(table.columns)
    assert table["val_R@1"].tolist() == [0.1, 0.5, 0.4, 0.3, 0.2]


def test_monitor_min_and_missing_key(tmp_path: Path) -> None:
    losses = iter([3.0, 2.0, 2.5, 1.0])
    result = fit(
        _model(), mse, _loader(), CFG, out_dir=tmp_path / "a", progress=False,
        validate=lambda m: {"val_loss": next(losses)}, monitor="val_loss", mode="min",
    )  # fmt: skip
    assert (result.best_epoch, result.best_value) == (4, 1.0)
    with pytest.raises(KeyError, match="val_R@1"):
        fit(
            _model(),
            mse,
            _loader(),
            CFG,
            out_dir=tmp_path / "b",
            validate=lambda m: {"x": 1.0},
            progress=False,
        )


def test_checkpoint_writes_are_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = dataclasses.replace(CFG, epochs=2)
    fit(_model(), mse, _loader(), dataclasses.replace(cfg, epochs=1), out_dir=tmp_path, progress=False)
    before = (tmp_path / "last.pt").read_bytes()
    real_save = torch.save

    def crash_mid_write(obj: object, path: Path) -> None:
        Path(path).write_bytes(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash_mid_write)
    with pytest.raises(OSError, match="disk full"):
        fit(_model(), mse, _loader(), cfg, out_dir=tmp_path, resume=False, progress=False)
    monkeypatch.setattr(torch, "save", real_save)
    assert (tmp_path / "last.pt").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pt", "last.pt", "metrics.csv"]


def test_grad_accumulation_equals_a_bigger_batch(tmp_path: Path) -> None:
    cfg = dataclasses.replace(CFG, epochs=2, grad_clip=0.0)
    model_small = nn.Linear(5, 1)
    model_big = nn.Linear(5, 1)
    model_big.load_state_dict(model_small.state_dict())
    fit(model_small, mse, _loader(4, False), dataclasses.replace(cfg, grad_accum=2), out_dir=tmp_path / "a",
        progress=False)  # fmt: skip
    fit(model_big, mse, _loader(8, False), cfg, out_dir=tmp_path / "b", progress=False)
    for key, value in model_big.state_dict().items():
        torch.testing.assert_close(model_small.state_dict()[key], value, rtol=1e-5, atol=1e-6)


def test_param_groups() -> None:
    encoder = nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4))
    encoder[0].weight.requires_grad_(False)  # a frozen block is left out
    head = nn.Linear(4, 2)
    head.logit_scale = nn.Parameter(torch.tensor(1.0))
    groups = {g["name"]: g for g in param_groups(encoder.named_parameters(), head.named_parameters(), CFG)}
    assert set(groups) == {"encoder_no_decay", "head", "head_no_decay"}
    assert groups["encoder_no_decay"]["lr"] == CFG.lr_encoder
    assert groups["head"]["params"] == [head.weight] and groups["head"]["weight_decay"] == CFG.weight_decay
    assert {id(p) for p in groups["head_no_decay"]["params"]} == {id(head.bias), id(head.logit_scale)}
    assert groups["head_no_decay"]["weight_decay"] == 0.0
    assert len(groups["encoder_no_decay"]["params"]) == 3  # linear bias, norm weight and bias


def test_warmup_cosine_schedule() -> None:
    factor = warmup_cosine(total_steps=10, warmup_fraction=0.2)
    assert [factor(s) for s in (0, 1)] == [0.5, 1.0]
    assert factor(2) == pytest.approx(1.0)
    assert factor(6) == pytest.approx(0.5)  # half-way through the 8 cosine steps
    assert factor(10) == pytest.approx(0.0, abs=1e-12)


def test_tensorboard_logs(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    cfg = dataclasses.replace(CFG, epochs=1, tensorboard=True)
    fit(_model(), mse, _loader(), cfg, out_dir=tmp_path, progress=False)
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))


@pytest.mark.parametrize("sampler", ["random", "pairs"])
def test_a_batch_sampler_is_dealt_out_whole_across_ranks(sampler: str) -> None:
    """Under DDP each rank keeps every world-th batch of one shared draw (pairs stay in one batch)."""
    from vtr.data.samplers import create_batch_sampler
    from vtr.train import Ranks, _distributed_loader, _seed_epoch

    clusters = [f"pair{i // 2}" for i in range(20)] + [f"solo{i}" for i in range(5)]
    shares = []
    for rank in range(2):
        generator = torch.Generator()
        batches = create_batch_sampler(sampler, clusters, 4, generator, drop_last=False)
        loader = torch.utils.data.DataLoader(
            torch.arange(len(clusters)), batch_sampler=batches, generator=generator
        )
        split = _distributed_loader(loader, Ranks(rank=rank, world=2), seed=0)
        _seed_epoch(0, 1, split, rank)
        shares.append([b.tolist() for b in split])
    assert len(shares[0]) == len(shares[1])  # equal step counts, or the ranks would deadlock
    seen = sorted(i for share in shares for batch in share for i in batch)
    assert set(seen) == set(range(len(clusters)))  # one draw split between the ranks (padded by wrapping)
    if sampler == "pairs":
        for share in shares:
            for batch in share:
                assert all((i ^ 1) in batch for i in batch if i < 20)  # a partner is never on another rank
