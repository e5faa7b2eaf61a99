import pytest
import torch
from open_clip.transformer import VisionTransformer

from vtr.models.stop import PromptConfig, PromptedViT


def _vit() -> VisionTransformer:
    torch.manual_seed(0)
    return VisionTransformer(
        image_size=32, patch_size=8, width=32, layers=3, heads=4, mlp_ratio=2.0, output_dim=16
    ).eval()


def test_shapes_and_only_prompts_train():
    model = PromptedViT(_vit(), PromptConfig(n_spatial=2, temporal_layers=(0, 2)))
    frames = torch.randn(2, 4, 3, 32, 32)
    out = model(frames)
    assert out.shape == (2, 4, 16) and model.encode_clip(frames).shape == (2, 16)
    out.sum().backward()
    frozen = [p for p in model.visual.parameters()]
    assert all(p.grad is None for p in frozen)
    trainable = model.trainable_parameters()
    assert trainable and all(p.grad is not None for p in trainable)
    assert sum(p.numel() for p in trainable) < sum(p.numel() for p in frozen)


def test_temporal_prompts_make_the_clip_feature_order_aware():
    frames = torch.randn(1, 4, 3, 32, 32)
    reversed_frames = frames.flip(1)
    plain = PromptedViT(_vit(), PromptConfig(n_spatial=0, temporal_layers=()))
    prompted = PromptedViT(_vit(), PromptConfig(n_spatial=0, temporal_layers=(0, 1)))
    with torch.no_grad():
        torch.nn.init.normal_(prompted.temporal["0"].weight)  # an asymmetric kernel over time
        # Mean pooling of independent frames cannot see the order ...
        torch.testing.assert_close(plain.encode_clip(frames), plain.encode_clip(reversed_frames))
        # ... prompts that carry neighbouring frames can.
        gap = (prompted.encode_clip(frames) - prompted.encode_clip(reversed_frames)).abs().max()
    assert gap > 1e-3


def test_without_prompts_equals_the_frozen_tower():
    vit = _vit()
    model = PromptedViT(vit, PromptConfig(n_spatial=0, temporal_layers=()))
    frames = torch.randn(2, 3, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(frames), vit(frames.flatten(0, 1)).reshape(2, 3, -1))


def test_lora_adds_trainable_adapters_only():
    model = PromptedViT(_vit(), PromptConfig(n_spatial=1, temporal_layers=(0,), lora_rank=4))
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    assert any("lora_" in n for n in names)
    assert all("lora_" in n or not n.startswith("visual.") for n in names)


def test_bad_configs():
    with pytest.raises(ValueError, match="exceed"):
        PromptedViT(_vit(), PromptConfig(temporal_layers=(5,)))
    with pytest.raises(ValueError, match="odd"):
        PromptConfig(temporal_kernel=2)


def test_deep_prompts_train_on_cached_prefix_tokens():
    frames = torch.randn(2, 3, 3, 32, 32)
    vit = _vit()
    plain = PromptedViT(vit, PromptConfig(n_spatial=0, temporal_layers=(), prompt_layer=2))
    with torch.no_grad():  # no prompts: still the frozen tower, whatever block they would enter at
        torch.testing.assert_close(plain(frames), vit(frames.flatten(0, 1)).reshape(2, 3, -1))
    model = PromptedViT(_vit(), PromptConfig(n_spatial=2, temporal_layers=(2,), lora_rank=2, prompt_layer=2))
    tokens = model.prefix_tokens(frames)
    assert tokens.shape == (2, 3, 17, 32) and not tokens.requires_grad  # 16 patches + the class token
    torch.testing.assert_close(model.encode_tokens(tokens), model.encode_clip(frames))
    lora = [n for n, p in model.named_parameters() if p.requires_grad and "lora_" in n]
    assert lora and all(".resblocks.2." in n for n in lora)  # adapters only where prompts reach
    model.encode_tokens(tokens).sum().backward()
    assert all(p.grad is not None for p in model.trainable_parameters())
    with pytest.raises(ValueError, match="prompt_layer"):
        PromptConfig(temporal_layers=(0,), prompt_layer=1)
