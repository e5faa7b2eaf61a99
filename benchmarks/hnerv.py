"""HNeRV speed per model size: training throughput and decoding speed, in frames per second.

    .venv/bin/python benchmarks/hnerv.py [--profile sample] [--epochs 2] [--repeats 3] [--device cpu]

For each size of the profile's ``hnerv.widths`` (dual-head coordinate model, and the content HNeRV
at the main size) on the profile's patch size and grid, with random CLIP targets (512-d on the
full profile, 128-d on the sample one; speed does not depend on their values):

* *training*: epochs of :func:`vtr.train.fit` (the trainer the notebook uses, with its per-epoch
  checkpoint) on seed 000's loss (pixels + embedding) over all of the video's patches in batches of
  ``hnerv.batch_size``, the first epoch discarded as warm-up; frames/s = frames per epoch / median
  epoch time (the trainer's ``seconds`` column).
* *decoding*: a forward pass (no grad) producing every patch of every frame, batches of 8 frames;
  frames/s = frames / median time (the content model's encoder is included, as HNeRV decodes from
  stored embeddings it would be slightly faster).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import tempfile

import numpy as np
import torch

from vtr.config import load_profile
from vtr.experiments.hnerv import HnervLoss, PatchData, RunSpec, Trainee, build_model
from vtr.experiments.hnerv.model import model_inputs, patch_pixels
from vtr.experiments.hnerv.train import patch_batches, train_config
from vtr.models.hnerv import stored_values
from vtr.runtime import median_seconds, resolve_device
from vtr.train import fit

N_FRAMES = 132  # Big Buck Bunny


def synthetic_data(cfg, clip_dim: int) -> PatchData:
    h = cfg.hnerv
    height, width = h.resize or h.crop
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (N_FRAMES, height, width, 3), dtype=np.uint8)
    targets = rng.normal(size=(N_FRAMES, h.grid[0] * h.grid[1], clip_dim)).astype(np.float32)
    targets /= np.linalg.norm(targets, axis=-1, keepdims=True)
    return PatchData(frames, targets, (h.grid[0], h.grid[1]), "synthetic", "bench")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def bench(cfg, data: PatchData, spec: RunSpec, device: torch.device, epochs: int, repeats: int) -> dict:
    h = cfg.hnerv
    model = Trainee(build_model(h, spec, data))
    inputs, pixels = model_inputs(spec.kind, data), patch_pixels(data)
    targets = torch.from_numpy(data.targets.reshape(-1, data.targets.shape[-1]))
    loader = patch_batches(inputs, pixels, targets, h.batch_size, cfg.seed)
    train_cfg = dataclasses.replace(train_config(cfg), epochs=1 + epochs, tensorboard=False)
    with tempfile.TemporaryDirectory() as out:
        result = fit(
            model,
            HnervLoss(h.clip_weight, 0, 1),
            loader,
            train_cfg,
            out_dir=out,
            device=device,
            progress=False,
        )
    train_s = float(np.median(result.history.seconds.iloc[1:]))  # the first epoch is the warm-up
    inputs = inputs.to(device)
    n = len(inputs)

    @torch.no_grad()
    def decode() -> None:
        model.eval()
        step = 8 * data.n_patches
        for start in range(0, n, step):
            out = model(inputs[start : start + step])
            out.rgb.float().mul(255).round().to(torch.uint8).cpu()
        _sync(device)

    decode_s = median_seconds(decode, repeats)
    return {
        "model": f"{spec.kind} {spec.size}",
        # weights plus, for the content model, the embeddings of every patch it decodes
        "stored": stored_values(model.net, n)["stored"],
        "train_fps": N_FRAMES / train_s,
        "decode_fps": N_FRAMES / decode_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="sample")
    parser.add_argument("--epochs", type=int, default=2, help="timed training epochs (after one warm-up)")
    parser.add_argument("--repeats", type=int, default=3, help="timed decoding passes (after one warm-up)")
    parser.add_argument("--device", default=None, help="default: the profile's device")
    parser.add_argument("--sizes", nargs="*", default=None, help="default: every size of hnerv.widths")
    args = parser.parse_args()
    cfg = load_profile(args.profile)
    device = resolve_device(args.device or cfg.device)
    torch.manual_seed(0)
    data = synthetic_data(cfg, 512 if cfg.name == "full" else 128)
    sizes = args.sizes or list(cfg.hnerv.widths)
    specs = [RunSpec("coords", s, cfg.hnerv.main_split) for s in sizes]
    specs.append(RunSpec("content", cfg.hnerv.main_size, cfg.hnerv.main_split))
    ph, pw = data.patch_hw
    print(
        f"profile {cfg.name}: {N_FRAMES} frames of {data.frames.shape[1]}x{data.frames.shape[2]}, "
        f"{data.grid[0]}x{data.grid[1]} patches of {ph}x{pw}, batch {cfg.hnerv.batch_size} patches; "
        f"{device} ({platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"torch threads {torch.get_num_threads()})\n"
    )
    print("| model | stored values (weights + embeddings) | training (frames/s) | decoding (frames/s) |")
    print("|---|---:|---:|---:|")
    for spec in specs:
        row = bench(cfg, data, spec, device, args.epochs, args.repeats)
        print(
            f"| {row['model']} | {row['stored']:,} | {row['train_fps']:.1f} | {row['decode_fps']:.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
