"""vtr.train under torchrun: two gloo CPU processes against one process on the concatenated batch.

One torchrun launch (tests/distributed_worker.py) does everything on the DDP side; this process
computes the single-process reference and resumes the interrupted DDP run.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from vtr.losses import contrastive_loss, hnac, info_nce
from vtr.train import fit

WORKER = Path(__file__).with_name("distributed_worker.py")
_spec = importlib.util.spec_from_file_location("distributed_worker", WORKER)
W = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(W)  # the rank's code, for the single-process references


def _free_loopback_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict]]:
    out = tmp_path_factory.mktemp("ddp")
    env = {
        **os.environ,
        "GLOO_SOCKET_IFNAME": "lo",  # stay on the loopback interface
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join(
            [str(Path(__file__).parents[1] / "lib"), os.environ.get("PYTHONPATH", "")]
        ),
    }
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", "2",
        "--master_addr", "127.0.0.1", "--master_port", str(_free_loopback_port()),
        str(WORKER), str(out),
    ]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    reports = [torch.load(out / f"rank{r}.pt", weights_only=False) for r in range(2)]
    return out, reports


def _single_step(name: str) -> tuple[float, dict[str, torch.Tensor]]:
    model = W.make_model()
    text, video = W.make_data(8)
    loss = W.loss_of(name)(model, (text, video))
    loss.backward()
    return float(loss.detach()), {k: p.grad for k, p in model.named_parameters()}


@pytest.mark.parametrize("name", ["infonce", "hnac"])
def test_one_ddp_step_equals_one_process_on_the_concatenated_batch(ddp_run, name: str) -> None:
    _, reports = ddp_run
    loss, grads = _single_step(name)
    ranks = [r[name] for r in reports]
    # the mean of the ranks' losses (what DDP optimises) is the loss of all 8 pairs (hnac: 3 + 5 rows)
    assert sum(r["loss"] for r in ranks) / 2 == pytest.approx(loss, rel=1e-10)
    # weights and biases of both towers and the temperature: the gather's backward reaches every one
    assert len(grads) == 5 and all(bool(g.abs().sum() > 0) for g in grads.values())
    for report in ranks:  # after DDP's all-reduce, every rank holds the full-batch gradient
        for key, grad in grads.items():
            torch.testing.assert_close(report["grads"][key], grad, rtol=1e-9, atol=1e-12)


def test_ddp_checkpoint_resumes_in_one_process(ddp_run) -> None:
    out, reports = ddp_run
    assert all(r["interrupted"] for r in reports) and all(r["world"] == 2 for r in reports)
    assert reports[0]["saves"] == ["best.pt", "last.pt"] and reports[1]["saves"] == []  # only rank 0 writes
    run = out / "run"
    ddp_history = pd.read_csv(run / "metrics.csv")
    assert ddp_history["epoch"].tolist() == [1]

    # one process, the same global batches (each the two ranks' batches of a step, concatenated)
    text, video = W.make_data()
    batches = W.fit_batches(text, video, rows=8)
    calls = {"n": 0}

    def counted(model, batch):
        calls["n"] += 1
        return W.loss_of("hnac")(model, batch)

    resumed_model = W.make_model()
    resumed = fit(resumed_model, counted, batches, W.CFG, out_dir=run, progress=False)
    assert calls["n"] == 2  # only epoch 2 ran
    assert resumed.history["epoch"].tolist() == [1, 2]
    assert resumed.history["train_loss"][0] == pytest.approx(ddp_history["train_loss"][0], rel=1e-12)

    reference_model = W.make_model()  # the uninterrupted single-process run
    reference = fit(
        reference_model, W.loss_of("hnac"), batches, W.CFG, out_dir=out / "reference", progress=False
    )
    # epoch 1 under DDP equals epoch 1 on one process, so the resumed run ends where the reference does
    assert resumed.history["train_loss"].tolist() == pytest.approx(
        reference.history["train_loss"].tolist(), rel=1e-9
    )
    for key, value in reference_model.state_dict().items():
        torch.testing.assert_close(resumed_model.state_dict()[key], value, rtol=1e-9, atol=1e-12)


def test_contrastive_loss_on_one_process_is_the_matrix_loss() -> None:
    text, video = (torch.nn.functional.normalize(x, dim=-1) for x in W.make_data(6))
    text, video = text[:, :6], video[:, :6]
    sim = text @ video.T
    assert float(contrastive_loss(text, video, "infonce", 0.1)) == pytest.approx(float(info_nce(sim, 0.1)))
    assert float(contrastive_loss(text, video, "H-NAC", 0.1, decay=3.0, margin=0.2)) == pytest.approx(
        float(hnac(sim, 0.1, decay=3.0, margin=0.2))
    )
    with pytest.raises(ValueError, match="equal shapes"):
        contrastive_loss(text, video[:3])


def test_batches_drawn_per_epoch_are_split_afresh_every_epoch() -> None:
    from vtr.train import Ranks, _seed_epoch, _shard

    class Drawn:  # as vtr.experiments.msrvtt_recall.train.PairBatches: each epoch's batches come from a generator
        def __init__(self) -> None:
            self.generator = torch.Generator()

        def __len__(self) -> int:
            return 5

        def __iter__(self):
            return iter(torch.randperm(10, generator=self.generator).view(5, 2))

    source = Drawn()

    def epoch_batches(rank: int, world: int, epoch: int) -> list[list[int]]:
        share = _shard(source, Ranks(rank, world), seed=7)
        _seed_epoch(7, epoch, share, rank)
        return [batch.tolist() for batch in share]

    single = epoch_batches(0, 1, 1)
    first, second = epoch_batches(0, 2, 1), epoch_batches(1, 2, 1)
    # the ranks split the very batches one process draws (3 steps each: 5 batches, wrapped around)
    assert first == single[0::2] and second == [*single[1::2], single[0]]
    assert epoch_batches(0, 2, 2) == epoch_batches(0, 1, 2)[0::2] != first  # a fresh draw each epoch
