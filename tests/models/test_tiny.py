"""The tiny CLIP: its loss, its zero-shot metrics, deterministic pretraining, the cached checkpoint."""

from __future__ import annotations

import io
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import open_clip
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from vtr.config import TinyConfig, load_profile
from vtr.models import tiny
from vtr.models.encoders import create_encoder, load_encoder
from vtr.models.tiny import StillSet, as_still_set, contrastive_loss, pretrain, zero_shot_metrics
from vtr.runtime import seed_everything

COLOURS = {"red": (220, 40, 40), "green": (40, 200, 60), "blue": (40, 60, 220)}
SHAPES = ("square", "bar")


def _stills(n: int, seed: int) -> StillSet:
    """A stand-in for the sample world's stills: a red/green/blue square or bar on grey, 64 x 64."""
    rng = np.random.default_rng(seed)
    images, captions, attributes = [], [], []
    for _ in range(n):
        colour, shape = str(rng.choice(list(COLOURS))), str(rng.choice(SHAPES))
        image = np.full((64, 64, 3), 128, dtype=np.uint8)
        y, x = rng.integers(4, 36, size=2)
        h, w = (24, 24) if shape == "square" else (8, 28)
        image[y : y + h, x : x + w] = COLOURS[colour]
        images.append(image)
        captions.append(f"a {colour} {shape} on a grey background")
        attributes.append({"colour": colour, "shape": shape})
    return StillSet(np.stack(images), captions, attributes)


# Stills-only (no motion pool), few epochs: the pool has its own tests (tests/data/test_synthetic.py).
FAST = TinyConfig(
    max_epochs=3, batch_size=16, lr=1e-3, warmup_steps=2, patience=3, target_accuracy=1.01, pool_stills=0, pool_clips=0
)


def test_loss_equals_open_clips_clip_loss_when_captions_are_distinct() -> None:
    gen = torch.Generator().manual_seed(0)
    image = F.normalize(torch.randn(6, 16, generator=gen), dim=-1)
    text = F.normalize(torch.randn(6, 16, generator=gen), dim=-1)
    scale = torch.tensor(10.0)
    expected = open_clip.ClipLoss()(image, text, scale)
    torch.testing.assert_close(contrastive_loss(image, text, torch.arange(6), scale), expected)


def test_loss_merges_repeated_captions() -> None:
    """Two images of one caption: image->text has a single candidate (loss 0); text->image is a
    cross-entropy against the target (1/2, 1/2), i.e. -(log p1 + log p2) / 2."""
    image = F.normalize(torch.tensor([[1.0, 0.0], [0.6, 0.8]]), dim=-1)
    text = torch.tensor([[1.0, 0.0]])
    scale = torch.tensor(5.0)
    logits = np.array([5.0 * 1.0, 5.0 * 0.6])
    log_p = logits - np.log(np.exp(logits).sum())
    expected = (0.0 + -(log_p[0] + log_p[1]) / 2) / 2
    got = contrastive_loss(image, text, torch.tensor([0, 0]), scale)
    assert float(got) == pytest.approx(expected, rel=1e-6)


class _FixedEncoder:
    """Embeddings chosen by hand: images and captions live on the unit vectors of their colour."""

    axis = {"red": 0, "green": 1, "blue": 2}

    def encode_frames(self, images: np.ndarray) -> np.ndarray:
        return np.eye(3, dtype=np.float32)[[int(img[0, 0, 0]) for img in images]]

    def encode_text(self, texts: list[str]) -> np.ndarray:
        return np.eye(3, dtype=np.float32)[[self.axis[t.split()[1]] for t in texts]]


def test_zero_shot_metrics_by_hand() -> None:
    # Four images whose first pixel names the colour axis their embedding points to.
    pixel = [0, 1, 2, 0]  # red, green, blue, red
    images = np.stack([np.full((2, 2, 3), p, dtype=np.uint8) for p in pixel])
    captions = ["a red square", "a green square", "a blue bar", "a blue square"]  # last one is mislabelled
    attributes = [
        {"colour": "red", "shape": "square"},
        {"colour": "green", "shape": "square"},
        {"colour": "blue", "shape": "bar"},
        {"colour": "blue", "shape": "square"},
    ]
    metrics = zero_shot_metrics(_FixedEncoder(), StillSet(images, captions, attributes), prefix="x_")  # type: ignore[arg-type]
    # Image 4 is red, so it picks "a red square": wrong caption and colour, right shape.
    assert metrics["x_caption_top1"] == 0.75
    assert metrics["x_attr_colour"] == 0.75 and metrics["x_attr_shape"] == 1.0
    assert metrics["x_appearance_top1"] == 0.75
    assert metrics["x_attr_mean"] == pytest.approx(0.875)
    assert metrics["x_chance_attr_shape"] == 0.75 and metrics["x_chance_caption"] == 0.25
    assert metrics["x_n_candidates"] == 4


def test_as_still_set_reads_a_dataframe_of_attributes() -> None:
    raw = SimpleNamespace(
        images=np.zeros((2, 4, 4, 3), np.uint8),
        captions=["a", "b"],
        attributes=pd.DataFrame({"shape": ["circle", "star"], "count": np.array([1, 3])}),
    )
    converted = as_still_set(raw)
    assert converted.attributes == [{"shape": "circle", "count": 1}, {"shape": "star", "count": 3}]
    with pytest.raises(ValueError, match="same length"):
        StillSet(np.zeros((1, 4, 4, 3), np.uint8), ["a", "b"], [{}])


@pytest.fixture(scope="module")
def stand_in() -> tuple[StillSet, StillSet]:
    return _stills(96, seed=0), _stills(24, seed=1)


def _full_batch_loss(model: torch.nn.Module, encoder, stills: StillSet) -> float:
    captions, ids = np.unique(np.asarray(stills.captions, dtype=object), return_inverse=True)
    with torch.no_grad():
        image = model.encode_image(encoder.preprocess(stills.images), normalize=True)
        text = model.encode_text(encoder.tokenizer(list(captions)), normalize=True)
        return float(contrastive_loss(image, text, torch.from_numpy(ids), model.logit_scale.exp()))


def test_pretraining_is_deterministic_and_lowers_the_loss(stand_in) -> None:
    train, val = stand_in
    first = pretrain(train, val, FAST, seed=3, progress=False)
    second = pretrain(train, val, FAST, seed=3, progress=False)
    assert first.state_dict.keys() == second.state_dict.keys()
    for name, tensor in first.state_dict.items():
        assert torch.equal(tensor, second.state_dict[name]), name
    assert first.curve == [
        {**row, "seconds": first.curve[i]["seconds"]} for i, row in enumerate(second.curve)
    ]

    seed_everything(3)
    untrained = create_encoder("vtr-tiny", "", device="cpu")  # the same initialisation pretrain starts from
    before = _full_batch_loss(untrained.model.train(), untrained, train)
    untrained.model.load_state_dict(first.state_dict)
    after = _full_batch_loss(untrained.model.train(), untrained, train)
    assert after < before
    assert {"val_caption_top1", "val_attr_shape", "val_appearance_top1", "epochs"} <= first.metrics.keys()
    assert first.metrics["val_attr_colour"] >= 0.8  # held-out colour, chance 1/3: it learnt something real


def test_early_stopping_at_target_accuracy(stand_in) -> None:
    train, val = stand_in
    result = pretrain(train, val, TinyConfig(**{**vars(FAST), "target_accuracy": 0.0}), progress=False)
    assert len(result.curve) == 1  # any accuracy reaches a target of 0


def test_checkpoint_is_built_once_and_loaded_like_any_checkpoint(
    stand_in, tmp_path: Path, monkeypatch
) -> None:
    train, val = stand_in

    def frame(s: StillSet) -> SimpleNamespace:  # the world's Stills carry a DataFrame of attributes
        return SimpleNamespace(images=s.images, captions=s.captions, attributes=pd.DataFrame(s.attributes))

    world = SimpleNamespace(stills=lambda split: frame({"train": train, "val": val, "test": val}[split]))
    monkeypatch.setattr("vtr.data.synthetic.sample_world", lambda profile: world)
    overrides = {"data_dir": str(tmp_path), "tiny": vars(FAST), "device": "cpu"}
    profile = load_profile("sample", overrides=overrides)

    path = tiny.ensure_tiny_checkpoint(profile, progress=False)
    assert path.parent == tmp_path / "models" and path.name.startswith("vtr-tiny-") and path.suffix == ".pt"
    buffer = io.BytesIO()  # deterministic bytes: identical weights give an identical file (and sha256)
    torch.save(torch.load(path), buffer)
    assert buffer.getvalue() == path.read_bytes()
    info = json.loads(path.with_suffix(".json").read_text())
    assert info["n_train"] == 96 and len(info["curve"]) >= 1 and "test_attr_colour" in info["metrics"]

    def no_training(*args, **kwargs):
        raise AssertionError("the cached checkpoint should have been reused")

    monkeypatch.setattr(tiny, "pretrain", no_training)
    encoder = load_encoder(profile)
    assert encoder.weights.checkpoint == str(path)
    assert tiny.tiny_metrics(profile)["test_attr_colour"] == info["metrics"]["test_attr_colour"]

    # Another seed, world or pretraining setting is another checkpoint.
    keys = {
        tiny.checkpoint_key(load_profile("sample", overrides={**overrides, **change}))
        for change in ({}, {"seed": 1}, {"world.n_stills": 100}, {"tiny.lr": 5e-3})
    }
    assert len(keys) == 4


def test_world_fields_pretraining_never_reads_keep_the_checkpoint(tmp_path: Path) -> None:
    small = {"data_dir": str(tmp_path), "world.n_stills": 30, "tiny.pool_stills": 8, "tiny.pool_clips": 4}
    unread = {"world.n_clips": 9, "world.static_fraction": 0.5, "world.n_long_videos": 1,
              "world.events_per_long_video": 2}  # fmt: skip
    assert {key.split(".")[1] for key in unread} == set(tiny.WORLD_FIELDS_UNREAD)
    a = load_profile("sample", overrides={**small, "world.n_clips": 20, "world.n_long_videos": 0})
    b = load_profile("sample", overrides={**small, **unread})
    assert tiny.checkpoint_key(a) == tiny.checkpoint_key(b)
    # The claim behind the shared key: both worlds give pretraining the very same images and captions.
    for set_a, set_b in zip(tiny._training_sets(a), tiny._training_sets(b), strict=True):
        images = "frames" if isinstance(set_a, tiny.ClipSet) else "images"
        assert np.array_equal(getattr(set_a, images), getattr(set_b, images))
        assert set_a.captions == set_b.captions
    assert tiny.checkpoint_key(a) != tiny.checkpoint_key(load_profile("sample", overrides={**small, "world.size": 48}))
