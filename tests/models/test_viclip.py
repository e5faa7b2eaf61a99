"""ViCLIP: the official checkpoint layout loads strictly and gives the official forward pass.

The reference below is written from the official code's steps (InternVideo ``viclip_vision.py`` /
``viclip_text.py``: sequence-first ``nn.MultiheadAttention`` maths, the ``(b t) n -> b (n t)``
token order, QuickGELU, causal text mask, end-of-text pooling) with torch's functional ops on the
raw state dict, so it shares no code with ``vtr.models.viclip``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vtr import video
from vtr.config import load_profile
from vtr.models import viclip as V
from vtr.models.encoders import create_encoder, list_encoders, load_encoder, video_architectures

TINY = V.ViCLIPConfig(
    patch_size=4, vision_width=32, vision_layers=2, vision_heads=4, embed_dim=16,
    text_width=24, text_layers=2, text_heads=2, image_size=16, num_frames=8,
)  # fmt: skip


@pytest.fixture(autouse=True)
def tiny_arch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(V.ARCHS, "viclip-tiny", TINY)


# ------------------------------------------------------------------ the official layout, by hand


def _block_shapes(prefix: str, layers: int, width: int) -> dict[str, tuple[int, ...]]:
    out = {}
    for i in range(layers):
        p = f"{prefix}.resblocks.{i}."
        out |= {
            p + "attn.in_proj_weight": (3 * width, width),
            p + "attn.in_proj_bias": (3 * width,),
            p + "attn.out_proj.weight": (width, width),
            p + "attn.out_proj.bias": (width,),
            p + "ln_1.weight": (width,),
            p + "ln_1.bias": (width,),
            p + "mlp.c_fc.weight": (4 * width, width),
            p + "mlp.c_fc.bias": (4 * width,),
            p + "mlp.c_proj.weight": (width, 4 * width),
            p + "mlp.c_proj.bias": (width,),
            p + "ln_2.weight": (width,),
            p + "ln_2.bias": (width,),
        }
    return out


def official_shapes(c: V.ViCLIPConfig) -> dict[str, tuple[int, ...]]:
    """Every key of ``torch.load(ckpt)["model"]`` and its shape, as the official modules name them."""
    w, tw, grid = c.vision_width, c.text_width, c.image_size // c.patch_size
    v, t = "vision_encoder.", "text_encoder."
    return {
        "temp": (),
        v + "conv1.weight": (w, 3, 1, c.patch_size, c.patch_size),
        v + "class_embedding": (w,),
        v + "positional_embedding": (grid * grid + 1, w),
        v + "temporal_positional_embedding": (1, c.num_frames, w),
        v + "ln_pre.weight": (w,),
        v + "ln_pre.bias": (w,),
        v + "ln_post.weight": (w,),
        v + "ln_post.bias": (w,),
        v + "proj": (w, c.embed_dim),
        **_block_shapes(v + "transformer", c.vision_layers, w),
        t + "token_embedding.weight": (c.vocab_size, tw),
        t + "positional_embedding": (c.context_length, tw),
        t + "ln_final.weight": (tw,),
        t + "ln_final.bias": (tw,),
        t + "text_projection": (tw, c.embed_dim),
        **_block_shapes(t + "transformer", c.text_layers, tw),
    }


def random_official_state(c: V.ViCLIPConfig, seed: int = 0) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in official_shapes(c).items():
        noise = torch.randn(shape, generator=gen)
        state[key] = 1 + 0.1 * noise if ".ln_" in key and key.endswith("weight") else 0.2 * noise
    state["temp"] = torch.tensor(0.01)
    return state


def _ln(x: torch.Tensor, sd: dict, name: str) -> torch.Tensor:
    return F.layer_norm(x, x.shape[-1:], sd[name + ".weight"], sd[name + ".bias"])


def _blocks(x: torch.Tensor, sd: dict, prefix: str, layers: int, heads: int, mask=None) -> torch.Tensor:
    """x is (L, N, C), sequence first, as the official transformers run."""
    for i in range(layers):
        p = f"{prefix}.resblocks.{i}."
        h = _ln(x, sd, p + "ln_1")
        attn = F.multi_head_attention_forward(
            h, h, h, x.shape[-1], heads, sd[p + "attn.in_proj_weight"], sd[p + "attn.in_proj_bias"],
            None, None, False, 0.0, sd[p + "attn.out_proj.weight"], sd[p + "attn.out_proj.bias"],
            training=False, need_weights=False, attn_mask=mask,
        )[0]  # fmt: skip
        x = x + attn
        h = F.linear(_ln(x, sd, p + "ln_2"), sd[p + "mlp.c_fc.weight"], sd[p + "mlp.c_fc.bias"])
        h = h * torch.sigmoid(1.702 * h)  # QuickGELU
        x = x + F.linear(h, sd[p + "mlp.c_proj.weight"], sd[p + "mlp.c_proj.bias"])
    return x


def reference_video(sd: dict, c: V.ViCLIPConfig, pixels: torch.Tensor) -> torch.Tensor:
    """(B, T, 3, H, W) -> (B, D), the official ``encode_vision`` steps."""
    v = {k[len("vision_encoder.") :]: t for k, t in sd.items() if k.startswith("vision_encoder.")}
    x = F.conv3d(pixels.permute(0, 2, 1, 3, 4), v["conv1.weight"], stride=(1, c.patch_size, c.patch_size))
    b, ch, t, h, w = x.shape
    x = x.permute(0, 2, 3, 4, 1).reshape(b * t, h * w, ch)
    x = torch.cat([v["class_embedding"] + torch.zeros(b * t, 1, ch), x], dim=1) + v["positional_embedding"]
    cls_tokens, x = x[:b, :1], x[:, 1:]
    x = x.reshape(b, t, h * w, ch).transpose(1, 2).reshape(b * h * w, t, ch)  # (b t) n m -> (b n) t m
    temporal = v["temporal_positional_embedding"]
    if t == 1:
        x = x + temporal.mean(1)
    elif t > c.num_frames:  # the official interpolate_temporal_pos_embed
        x = x + F.interpolate(temporal.permute(0, 2, 1), t, mode="linear").permute(0, 2, 1)
    else:
        x = x + temporal[:, :t]
    x = x.reshape(b, h * w * t, ch)  # (b n) t m -> b (n t) m
    x = _ln(torch.cat([cls_tokens, x], dim=1), v, "ln_pre").permute(1, 0, 2)
    x = _blocks(x, v, "transformer", c.vision_layers, c.vision_heads)
    return _ln(x, v, "ln_post")[0] @ v["proj"]


def reference_text(sd: dict, c: V.ViCLIPConfig, tokens: torch.Tensor) -> torch.Tensor:
    s = {k[len("text_encoder.") :]: t for k, t in sd.items() if k.startswith("text_encoder.")}
    x = (s["token_embedding.weight"][tokens] + s["positional_embedding"]).permute(1, 0, 2)
    mask = torch.full((c.context_length, c.context_length), float("-inf")).triu_(1)
    x = _blocks(x, s, "transformer", c.text_layers, c.text_heads, mask).permute(1, 0, 2)
    x = _ln(x, s, "ln_final")
    return x[torch.arange(len(tokens)), tokens.argmax(dim=-1)] @ s["text_projection"]


@pytest.fixture()
def checkpoint(tmp_path: Path) -> tuple[Path, dict[str, torch.Tensor]]:
    state = random_official_state(TINY)
    path = tmp_path / "ViClip-tiny.pth"
    torch.save({"model": state, "epoch": 3}, path)  # the official file holds more than the weights
    return path, state


# ------------------------------------------------------------------------------------------ tests


@pytest.mark.parametrize("arch", ["viclip-l14", "viclip-b16"])
def test_real_sizes_have_the_official_keys_and_shapes(arch: str) -> None:
    with torch.device("meta"):  # no memory, no initialisation: the L/14 is 428M parameters
        model = V.ViCLIP(V.ARCHS[arch])
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert ours == official_shapes(V.ARCHS[arch])
    assert arch in list_encoders() and arch in video_architectures()


def test_l14_is_the_issue_architecture() -> None:
    c = V.ARCHS["viclip-l14"]
    shapes = official_shapes(c)
    assert shapes["vision_encoder.conv1.weight"][2:] == (1, 14, 14)
    assert shapes["vision_encoder.temporal_positional_embedding"] == (1, 8, 1024)
    assert shapes["vision_encoder.proj"] == (1024, 768)
    assert shapes["text_encoder.positional_embedding"] == (32, 768)
    assert 427e6 < V.parameter_count(c) < 428e6  # CLIP ViT-L/14 is 428M with 77 text positions


def test_checkpoint_loads_strictly_and_matches_the_reference(checkpoint) -> None:
    path, state = checkpoint
    enc = create_encoder("viclip-tiny", str(path), device="cpu")
    assert enc.weights.identity.startswith("sha256:")
    gen = torch.Generator().manual_seed(1)
    pixels = torch.randn(3, 8, 3, 16, 16, generator=gen)
    torch.testing.assert_close(
        enc.model.encode_video(pixels), reference_video(state, TINY, pixels), atol=1e-4, rtol=1e-4
    )
    one_frame = pixels[:, :1]
    torch.testing.assert_close(
        enc.model.encode_image(one_frame[:, 0]), reference_video(state, TINY, one_frame), atol=1e-4, rtol=1e-4
    )
    four = pixels[:, :4]  # fewer frames: the first temporal slots
    torch.testing.assert_close(
        enc.model.encode_video(four), reference_video(state, TINY, four), atol=1e-4, rtol=1e-4
    )
    twelve = torch.randn(2, 12, 3, 16, 16, generator=gen)  # more frames: interpolated slots
    torch.testing.assert_close(
        enc.model.encode_video(twelve), reference_video(state, TINY, twelve), atol=1e-4, rtol=1e-4
    )
    tokens = enc.tokenizer(["a dog runs on the beach", "two cats", "x " * 50])
    torch.testing.assert_close(
        enc.model.encode_text(tokens), reference_text(state, TINY, tokens), atol=1e-4, rtol=1e-4
    )


def test_strict_check_lists_missing_unexpected_and_misshapen_keys(checkpoint, tmp_path: Path) -> None:
    _, state = checkpoint
    broken = dict(state)
    del broken["vision_encoder.proj"], broken["text_encoder.ln_final.bias"]
    broken["vision_encoder.extra_head.weight"] = torch.zeros(2)
    broken["vision_encoder.class_embedding"] = torch.zeros(5)
    path = tmp_path / "broken.pth"
    torch.save({"model": broken}, path)
    with pytest.raises(V.CheckpointKeyError) as err:
        create_encoder("viclip-tiny", str(path), device="cpu")
    text = str(err.value)
    assert str(path) in text
    assert "missing keys (2): text_encoder.ln_final.bias, vision_encoder.proj" in text
    assert "unexpected keys (1): vision_encoder.extra_head.weight" in text
    assert "vision_encoder.class_embedding (5,) != (32,)" in text
    with pytest.raises(FileNotFoundError, match="OpenGVLab/ViCLIP"):
        create_encoder("viclip-tiny", str(tmp_path / "nope.pth"), device="cpu")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(RuntimeError, match="junk.pth"):
        create_encoder("viclip-tiny", str(tmp_path / "junk.pth"), device="cpu")


def test_tokenizer_is_clip_bpe_with_32_tokens() -> None:
    enc = create_encoder("viclip-tiny", "", device="cpu")
    tokens = enc.tokenizer(["A Dog", "word " * 60])
    assert tokens.shape == (2, 32)
    assert tokens[0, :4].tolist() == [49406, 320, 1929, 49407]  # <start> a dog <end>, lower-cased
    assert tokens[1, 0] == 49406 and tokens[1, -1] == 49407  # cut at 32, ended by <end>


def test_preprocessing_squashes_whole_frames_with_imagenet_statistics() -> None:
    enc = create_encoder("viclip-tiny", "", device="cpu")
    frames = np.random.default_rng(0).integers(0, 256, (2, 30, 50, 3), dtype=np.uint8)
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float()
    # the whole frame, bilinear, no antialiasing, no crop (OpenCV's INTER_LINEAR resize)
    resized = F.interpolate(x, size=(16, 16), mode="bilinear", align_corners=False).round() / 255
    mean = torch.tensor(V.IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(V.IMAGENET_STD).view(1, 3, 1, 1)
    torch.testing.assert_close(
        enc.preprocess(frames), (resized - mean) / std, atol=1.01 / 255 / 0.224, rtol=0
    )
    assert enc.identity()["antialias"] is False and enc.identity()["resize_mode"] == "squash"
    assert enc.decode_size(224) is None  # extraction decodes native frames for it


def test_stride_sampling_is_the_demo_rule() -> None:
    assert video.sample_indices(83, 8, "stride").tolist() == [0, 10, 20, 30, 40, 50, 60, 70]
    assert video.sample_indices(8, 8, "stride").tolist() == list(range(8))
    assert video.sample_indices(5, 8, "stride").tolist() == video.sample_indices(5, 8, "uniform").tolist()


def test_encoder_video_is_one_joint_pass(checkpoint) -> None:
    enc = create_encoder("viclip-tiny", str(checkpoint[0]), device="cpu", batch_size=16)
    clips = [np.random.default_rng(i).integers(0, 256, (8, 20 + i, 24, 3), dtype=np.uint8) for i in range(3)]
    one_by_one = np.stack([enc.encode_video(c) for c in clips])
    np.testing.assert_allclose(enc.encode_clips(clips), one_by_one, atol=1e-5)
    assert np.allclose(np.linalg.norm(one_by_one, axis=1), 1, atol=1e-5)
    # not the open_clip way (frames one by one, then averaged)
    frame_mean = enc.encode_frames(clips[0]).mean(0)
    assert not np.allclose(one_by_one[0], frame_mean / np.linalg.norm(frame_mean), atol=1e-3)


def test_selectable_in_a_profile(checkpoint) -> None:
    profile = load_profile(
        "sample", overrides={"model.arch": "viclip-tiny", "model.pretrained": str(checkpoint[0])}
    )
    enc = load_encoder(profile, device="cpu")
    assert isinstance(enc, V.ViCLIPEncoder) and enc.output_dim == TINY.embed_dim
    full = load_profile("full", overrides={"model.arch": "viclip-l14", "model.pretrained": "/x/ViCLIP.pth"})
    assert full.model.arch == "viclip-l14"
    with pytest.raises(FileNotFoundError, match="/x/ViCLIP.pth"):
        load_encoder(full, device="cpu")


def test_open_clip_shaped_code_finds_the_text_tower() -> None:
    from vtr.finetune import unfreeze_last_blocks
    from vtr.models.crossmodal import text_token_features

    enc = create_encoder("viclip-tiny", "", device="cpu")
    tokens = enc.tokenizer(["a dog runs", "a red car"])
    features = text_token_features(enc.model, tokens)
    torch.testing.assert_close(features.pooled, enc.model.encode_text(tokens, normalize=True))
    trainable = unfreeze_last_blocks(enc.model, 1)
    assert "vision_encoder.transformer.resblocks.1.attn.in_proj_weight" in trainable
    assert "text_encoder.transformer.resblocks.1.mlp.c_fc.weight" in trainable
    assert "vision_encoder.proj" in trainable and "text_encoder.text_projection" in trainable
    assert "vision_encoder.transformer.resblocks.0.ln_1.weight" not in trainable
    assert sorted(enc.model.state_dict()) == sorted(official_shapes(TINY))  # no duplicate keys
