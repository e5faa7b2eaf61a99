"""One rank of tests/test_train_distributed.py, launched by torchrun (2 CPU processes, gloo).

    python -m torch.distributed.run --nproc_per_node 2 ... tests/distributed_worker.py OUT_DIR

Writes ``OUT_DIR/rank<r>.pt`` with what this rank saw: its loss and (DDP-averaged) gradients of one
step through vtr.train's DDP wrapper, and the number of checkpoint writes it made during a fit()
that is interrupted in its second epoch (so the test can resume it in one process).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import torch
from torch import nn

import vtr.train as T
from vtr.config import TrainConfig
from vtr.losses import contrastive_loss

CFG = TrainConfig(
    epochs=2, batch_size=4, lr_head=1e-2, warmup_fraction=0.0, grad_clip=0.0, patience=0, tensorboard=False
)


class TwoTowers(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.text = nn.Linear(8, 6, dtype=torch.float64)
        self.video = nn.Linear(10, 6, dtype=torch.float64)
        # a learnt temperature, CLIP's log(1 / T): its gradient must sync across ranks too
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.1), dtype=torch.float64))

    def embed(self, text: torch.Tensor, video: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return (
            nn.functional.normalize(self.text(text), dim=-1),
            nn.functional.normalize(self.video(video), dim=-1),
        )


def make_model() -> TwoTowers:
    torch.manual_seed(0)
    return TwoTowers()


def make_data(n: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    return torch.randn(n, 8, generator=gen, dtype=torch.float64), torch.randn(
        n, 10, generator=gen, dtype=torch.float64
    )


def loss_of(name: str):
    def batch_loss(model: TwoTowers, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        text, video = model.embed(*batch)
        return contrastive_loss(text, video, name, 1.0 / model.logit_scale.exp(), decay=5.0, margin=0.1)

    return batch_loss


def fit_batches(
    text: torch.Tensor, video: torch.Tensor, rows: int = 4
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(text[i : i + rows], video[i : i + rows]) for i in range(0, len(text), rows)]


def one_step(name: str, rows: slice, ranks: T.Ranks) -> dict[str, object]:
    """Loss and gradients of one DDP step of this rank's rows, as fit() computes them."""
    model = make_model()
    text, video = make_data(8)
    compute_loss, _ = T._loss_step(model, loss_of(name), ranks, torch.device("cpu"))
    loss = compute_loss((text[rows], video[rows]))
    loss.backward()
    return {"loss": float(loss.detach()), "grads": {k: p.grad.clone() for k, p in model.named_parameters()}}


def main(out: Path) -> None:
    ranks = T.init_distributed()
    report: dict[str, object] = {"rank": ranks.rank, "world": ranks.world}
    # equal halves (infonce) and unequal shares (hnac: 3 and 5 rows) of 8 pairs
    report["infonce"] = one_step("infonce", slice(4 * ranks.rank, 4 * ranks.rank + 4), ranks)
    report["hnac"] = one_step("hnac", slice(0, 3) if ranks.rank == 0 else slice(3, 8), ranks)

    saves: list[str] = []
    original_save = T._save
    T._save = lambda obj, path: (saves.append(Path(path).name), original_save(obj, path))[1]
    calls = {"n": 0}
    hnac_loss = loss_of("hnac")

    def interrupted(model: TwoTowers, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        calls["n"] += 1
        if calls["n"] > 2:  # each rank has 2 batches per epoch: stop in epoch 2, as a killed job would
            raise KeyboardInterrupt
        return hnac_loss(model, batch)

    try:
        T.fit(make_model(), interrupted, fit_batches(*make_data()), CFG, out_dir=out / "run", progress=False)
    except KeyboardInterrupt:
        report["interrupted"] = True
    report["saves"] = saves
    torch.save(report, out / f"rank{ranks.rank}.pt")
    torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
