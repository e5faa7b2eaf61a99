"""STOP-style prompts on the frozen ViT, trained with the one trainer (:func:`vtr.train.fit`).

The ViT (:func:`~vtr.experiments.extraction.model.vit_encoder`) stays frozen; a copy of its vision tower
gets the prompts of :class:`vtr.models.stop.PromptedViT` (spatial prompts, temporal prompt tokens and,
with ``extract.prompt_lora_rank``, LoRA adapters on the prompted blocks' MLPs). They train on the sample
world's ``train`` clips against the frozen text tower's caption embeddings with symmetric InfoNCE
(:func:`vtr.losses.contrastive_loss`, one random caption per clip and step), ``extract.prompt_epochs``
epochs of ``train``'s schedule, early-stopped on the ``val`` clips' text-to-video R@1; the ``test``
clips are only scored (:mod:`~vtr.experiments.extraction.evaluate`).

A finished run is kept under ``<data_dir>/runs/extraction/stop-<key>/`` (``prompts.pt``: the trainable
parameters only, ``history.csv``), keyed by the settings, the encoder and the training clips, and is
loaded instead of trained again; an interrupted run resumes from the trainer's ``last.pt``.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from vtr import metrics as M
from vtr.atomic import atomic_path, write_text
from vtr.config import Profile, TrainConfig
from vtr.embeddings import default_cache_dir, embed_texts
from vtr.experiments.extraction.data import SplitClips, runs_dir
from vtr.keys import run_key
from vtr.losses import contrastive_loss
from vtr.models.encoders import Encoder
from vtr.models.stop import PromptConfig, PromptedViT
from vtr.train import fit

RUNS_VERSION = 1  # bump when training changes in a way the key cannot see
TOKEN_CHUNK = 32  # clips per forward pass when computing prefix tokens and scoring


def prompt_config(cfg: Profile) -> PromptConfig:
    """The prompts the profile's ``extract`` section asks for."""
    e = cfg.extract
    return PromptConfig(
        n_spatial=e.prompt_spatial, temporal_layers=tuple(e.prompt_temporal_layers),
        lora_rank=e.prompt_lora_rank, prompt_layer=e.prompt_layer,
    )  # fmt: skip


def train_config(cfg: Profile) -> TrainConfig:
    """``train``'s schedule with ``extract.prompt_epochs`` epochs (no TensorBoard)."""
    return dataclasses.replace(cfg.train, epochs=cfg.extract.prompt_epochs, tensorboard=False)


def prompted_vit(encoder: Encoder, prompts: PromptConfig, seed: int) -> PromptedViT:
    """A :class:`PromptedViT` on a copy of ``encoder``'s vision tower (the encoder itself stays untouched)."""
    torch.manual_seed(seed)
    return PromptedViT(copy.deepcopy(encoder.model.visual), prompts).to(encoder.device)


def clip_tokens(model: PromptedViT, encoder: Encoder, clips: SplitClips) -> torch.Tensor:
    """[N, T, tokens, width] prefix tokens of every clip (:meth:`PromptedViT.prefix_tokens`), computed once."""
    parts = []
    for start in range(0, len(clips.frames), TOKEN_CHUNK):
        pixels = torch.stack([encoder.preprocess(f) for f in clips.frames[start : start + TOKEN_CHUNK]])
        parts.append(model.prefix_tokens(pixels).cpu())
    return torch.cat(parts)


@torch.no_grad()
def clip_features(model: PromptedViT, tokens: torch.Tensor) -> np.ndarray:
    """(N, D) L2-normalised clip embeddings of prefix ``tokens``, in eval mode."""
    model.eval()
    device = next(model.parameters()).device
    parts = [
        model.encode_tokens(tokens[i : i + TOKEN_CHUNK].to(device)).cpu()
        for i in range(0, len(tokens), TOKEN_CHUNK)
    ]
    return torch.cat(parts).numpy()


class _CaptionedClips(torch.utils.data.Dataset):
    """Clip ``i``'s prefix tokens with one of its captions' embeddings, drawn anew at every visit
    (torch's generator, which :func:`vtr.train.fit` seeds per epoch)."""

    def __init__(self, tokens: torch.Tensor, text: torch.Tensor, caption_to_video: np.ndarray) -> None:
        self.tokens, self.text = tokens, text
        owners = np.asarray(caption_to_video)
        self.captions = [torch.from_numpy(np.flatnonzero(owners == i)) for i in range(len(tokens))]

    def __len__(self) -> int:
        return len(self.tokens)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        options = self.captions[i]
        pick = options[torch.randint(len(options), (1,))].item()
        return self.tokens[i], self.text[pick]


@dataclass
class PromptRun:
    """A trained (or reloaded) prompted ViT and how its training went."""

    model: PromptedViT
    history: pd.DataFrame  # one row per epoch: train_loss, val_R@1, seconds, ...
    out_dir: Path
    trainable: int  # trainable parameters (prompts and adapters)
    frozen: int  # frozen parameters of the vision tower
    train_seconds: float  # this call's training time (0 when reloaded)


def _val_r1(
    model: PromptedViT, tokens: torch.Tensor, text: np.ndarray, owners: np.ndarray
) -> dict[str, float]:
    sim = text @ clip_features(model, tokens).T
    return {"val_R@1": M.retrieval_metrics(sim, owners)["t2v_R@1"]}


def run_dir(cfg: Profile, encoder: Encoder, train: SplitClips) -> Path:
    key = run_key(
        RUNS_VERSION, dataclasses.asdict(prompt_config(cfg)), dataclasses.asdict(train_config(cfg)),
        encoder.identity(), cfg.seed, cfg.extract.prompt_frames, cfg.video.strategy, train.ids,
    )  # fmt: skip
    return runs_dir(cfg) / f"stop-{key}"


def train_prompts(
    cfg: Profile, encoder: Encoder, train: SplitClips, val: SplitClips, *, progress: bool = True
) -> PromptRun:
    """Train the profile's prompts on ``train`` (early stopping on ``val``'s R@1), or reload a finished run."""
    prompts = prompt_config(cfg)
    model = prompted_vit(encoder, prompts, cfg.seed)
    out = run_dir(cfg, encoder, train)
    trainable = sum(p.numel() for p in model.trainable_parameters())
    frozen = sum(p.numel() for p in model.visual.parameters() if not p.requires_grad)
    finished = out / "prompts.pt"
    if finished.is_file():
        model.load_state_dict(torch.load(finished, map_location=encoder.device), strict=False)
        return PromptRun(model.eval(), pd.read_csv(out / "history.csv"), out, trainable, frozen, 0.0)
    cache = default_cache_dir(cfg)
    train_text = torch.from_numpy(embed_texts(encoder, train.captions, cache_dir=cache, progress=False))
    val_text = embed_texts(encoder, val.captions, cache_dir=cache, progress=False)
    train_tokens, val_tokens = clip_tokens(model, encoder, train), clip_tokens(model, encoder, val)
    schedule = train_config(cfg)
    loader = torch.utils.data.DataLoader(
        _CaptionedClips(train_tokens, train_text, train.caption_to_video),
        batch_size=schedule.batch_size, shuffle=True, drop_last=len(train_tokens) > schedule.batch_size,
        generator=torch.Generator(),
    )  # fmt: skip

    def batch_loss(net: PromptedViT, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        tokens, text = batch
        return contrastive_loss(text, net.encode_tokens(tokens))

    started = time.perf_counter()
    result = fit(
        model, batch_loss, loader, schedule, out_dir=out, monitor="val_R@1", mode="max", seed=cfg.seed,
        validate=lambda net: _val_r1(net, val_tokens, val_text, val.caption_to_video),
        device=encoder.device, progress=progress,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    write_text(out / "history.csv", result.history.to_csv(index=False))
    state = {n: p.detach().cpu() for n, p in model.named_parameters() if p.requires_grad}
    with atomic_path(finished) as tmp:  # last: its presence means "finished"
        torch.save(state, tmp)
    return PromptRun(model.eval(), result.history, out, trainable, frozen, seconds)
