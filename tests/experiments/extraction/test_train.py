"""STOP prompts trained with vtr.train.fit on the world's training clips, kept and reloaded."""

from __future__ import annotations

import numpy as np
import torch

from vtr.config import Profile
from vtr.embeddings import embed_texts
from vtr.experiments.extraction import data as xdata
from vtr.experiments.extraction import model as xmodel
from vtr.experiments.extraction import train as xtrain
from vtr.losses import contrastive_loss


def _train_loss(model, encoder, clips: xdata.SplitClips) -> float:
    """InfoNCE of every training clip against its first caption."""
    first = [int(np.flatnonzero(clips.caption_to_video == i)[0]) for i in range(len(clips.records))]
    text = torch.from_numpy(embed_texts(encoder, [clips.captions[i] for i in first], progress=False))
    videos = torch.from_numpy(xtrain.clip_features(model, xtrain.clip_tokens(model, encoder, clips)))
    return float(contrastive_loss(text, videos))


def test_prompts_train_through_fit_lower_the_loss_and_reload(small_cfg: Profile) -> None:
    encoder = xmodel.vit_encoder(small_cfg)
    assert "random weights" in xmodel.weights_label(small_cfg)  # the fixture turns pretraining off
    tower = {k: v.clone() for k, v in encoder.model.visual.state_dict().items()}
    frames = small_cfg.extract.prompt_frames
    train, val = (xdata.load_split(small_cfg, s, n_frames=frames) for s in ("train", "val"))
    untrained = xtrain.prompted_vit(encoder, xtrain.prompt_config(small_cfg), small_cfg.seed)
    before = _train_loss(untrained, encoder, train)

    run = xtrain.train_prompts(small_cfg, encoder, train, val, progress=False)
    assert run.train_seconds > 0 and len(run.history) == small_cfg.extract.prompt_epochs
    assert {"train_loss", "val_R@1"} <= set(run.history.columns)
    assert (run.out_dir / "metrics.csv").is_file() and (run.out_dir / "best.pt").is_file()  # vtr.train.fit's
    assert _train_loss(run.model, encoder, train) < before - 0.05
    assert 0 < run.trainable < run.frozen
    # the encoder's own tower is untouched: the prompts and LoRA live on a copy
    assert encoder.model.visual.state_dict().keys() == tower.keys()
    assert all(torch.equal(v, tower[k]) for k, v in encoder.model.visual.state_dict().items())

    again = xtrain.train_prompts(small_cfg, encoder, train, val, progress=False)
    assert again.train_seconds == 0 and again.out_dir == run.out_dir
    tokens = xtrain.clip_tokens(run.model, encoder, val)
    np.testing.assert_allclose(xtrain.clip_features(again.model, tokens), xtrain.clip_features(run.model, tokens),
                               atol=1e-6)  # fmt: skip
