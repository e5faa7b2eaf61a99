"""vtr.models.hnerv: positional encoding, HNeRV blocks, both models, parameter counts, the kind registry."""

from __future__ import annotations

import math

import pytest
import torch

from vtr.config import load_profile
from vtr.models.hnerv import (
    ContentHNeRV,
    DecoderSpec,
    DualHeadHNeRV,
    HNeRVBlock,
    NeRVDecoder,
    PositionalEncoding,
    create_hnerv,
    hnerv_options,
    list_hnervs,
    parameter_counts,
    spec_for_patch,
    stored_values,
)
from vtr.registry import UnknownNameError


def test_positional_encoding_matches_nerv_formula() -> None:
    pe = PositionalEncoding(base=1.25, levels=3)
    coords = torch.tensor([[0.5, 0.25]])
    out = pe(coords)
    assert out.shape == (1, pe.out_dim(2)) == (1, 12)
    expected = []
    for v in (0.5, 0.25):
        phases = [1.25**i * math.pi * v for i in range(3)]
        expected += [math.sin(p) for p in phases] + [math.cos(p) for p in phases]
    torch.testing.assert_close(out[0], torch.tensor(expected), atol=1e-6, rtol=0)


def test_positional_encoding_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="base > 1"):
        PositionalEncoding(base=1.0, levels=4)


def test_spec_for_patch_reaches_the_patch_size_and_rejects_indivisible_ones() -> None:
    spec = spec_for_patch((32, 64), 16, (2, 2, 2))
    assert spec.fc_hw == (4, 8) and spec.out_hw == (32, 64) and spec.upscale == 8
    with pytest.raises(ValueError, match="not divisible"):
        spec_for_patch((30, 30), 16, (2, 2, 2))


def test_decoder_kernels_grow_and_channels_shrink_to_the_floor() -> None:
    spec = DecoderSpec(fc_dim=40, fc_hw=(1, 1), strides=(2, 2, 2, 2), reduce=2.0, lower_width=12)
    decoder = NeRVDecoder(spec)
    kernels = [block.conv.kernel_size[0] for block in decoder.blocks]
    assert kernels == [1, 3, 5, 5]  # HNeRV's 0_1_5: min(1 + 2i, 5)
    widths = [block.conv.out_channels // 4 for block in decoder.blocks]  # before PixelShuffle by 2
    assert widths == [20, 12, 12, 12]  # 40 / 2 = 20, then 10 -> floor 12
    assert decoder.out_channels == 12


def test_hnerv_block_parameters_and_upsampling_by_hand() -> None:
    block = HNeRVBlock(c_in=6, c_out=4, stride=3, kernel=3)
    # conv weights c_in * (c_out * s^2) * k^2 plus one bias per output channel of the conv
    assert sum(p.numel() for p in block.parameters()) == 6 * 36 * 9 + 36
    assert block(torch.zeros(2, 6, 5, 7)).shape == (2, 4, 15, 21)


def test_dual_head_outputs_patch_in_unit_range_and_unit_embedding() -> None:
    torch.manual_seed(0)
    model = DualHeadHNeRV(spec_for_patch((16, 16), 8, (2, 2)), clip_dim=10, pe_levels=8)
    with torch.no_grad():
        out = model(torch.rand(5, 3))
    assert out.rgb.shape == (5, 3, 16, 16)
    assert float(out.rgb.min()) >= 0.0 and float(out.rgb.max()) <= 1.0
    torch.testing.assert_close(out.embedding.norm(dim=-1), torch.ones(5))
    with pytest.raises(ValueError, match=r"\(B, 3\)"):
        model(torch.rand(5, 2))


def test_content_hnerv_reads_pixels_and_shares_the_decoder_layout() -> None:
    spec = spec_for_patch((16, 16), 8, (2, 2))
    content = ContentHNeRV(spec, clip_dim=10, embed_dim=4)
    coords = DualHeadHNeRV(spec, clip_dim=10, pe_levels=8)
    out = content(torch.rand(3, 3, 16, 16))
    assert out.rgb.shape == (3, 3, 16, 16) and out.embedding.shape == (3, 10)
    assert content.embedding_numel == 4 * 4 * 4
    assert parameter_counts(content)["decoder"] == parameter_counts(coords)["decoder"]
    with pytest.raises(ValueError, match="pixels must be"):
        content(torch.rand(3, 3, 8, 8))


def test_parameter_counts_add_up_and_exclude_the_encoder_from_the_weights() -> None:
    model = create_hnerv("content", spec_for_patch((8, 8), 8, (2, 2)), 6, embed_dim=4)
    counts = parameter_counts(model)
    assert counts["total"] == sum(p.numel() for p in model.parameters())
    assert counts["total"] == sum(v for k, v in counts.items() if k not in ("total", "weights"))
    assert counts["weights"] == counts["total"] - counts["encoder"]
    assert "stored" not in counts  # the stored size needs the number of stored embeddings


def test_stored_values_count_the_content_embeddings_a_decoder_needs() -> None:
    spec = spec_for_patch((8, 8), 8, (2, 2))  # fc_hw 2 x 2
    content = create_hnerv("content", spec, 6, embed_dim=4)
    coords = create_hnerv("coords", spec, 6, pe_levels=4)
    stored = stored_values(content, n_patches=10)
    weights = parameter_counts(content)["total"] - parameter_counts(content)["encoder"]
    assert stored == {"weights": weights, "embeddings": 10 * 4 * 2 * 2, "stored": weights + 160}
    # The coordinate model's input is computed from the frame index: nothing stored beyond weights.
    assert stored_values(coords, 10) == {"weights": parameter_counts(coords)["total"], "embeddings": 0,
                                         "stored": parameter_counts(coords)["total"]}  # fmt: skip
    with pytest.raises(ValueError, match="n_patches"):
        stored_values(coords, -1)


def test_decode_of_the_encoding_is_the_forward_pass() -> None:
    torch.manual_seed(0)
    content = ContentHNeRV(spec_for_patch((8, 8), 8, (2, 2)), clip_dim=5, embed_dim=4)
    pixels = torch.rand(2, 3, 8, 8)
    embedding = content.encode(pixels)
    assert embedding.shape == (2, 4, 2, 2) and embedding[0].numel() == content.embedding_numel
    torch.testing.assert_close(content.decode(embedding).rgb, content(pixels).rgb)
    with pytest.raises(ValueError, match="unknown HNeRV kind"):
        create_hnerv("frames", spec_for_patch((8, 8), 8, (2, 2)), 6)


def test_coordinate_model_overfits_a_few_patches() -> None:
    torch.manual_seed(0)
    model = DualHeadHNeRV(spec_for_patch((8, 8), 16, (2, 2)), clip_dim=4, pe_levels=6)
    coords = torch.tensor([[0.0, 0.25, 0.5], [0.5, 0.75, 0.5]])
    target = torch.stack([torch.zeros(3, 8, 8), torch.ones(3, 8, 8)])
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    first = None
    for _ in range(60):
        loss = (model(coords).rgb - target).abs().mean()
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.2 * first


def test_full_profile_medium_model_has_the_papers_size_and_patch() -> None:
    """The full profile's architecture (cannot be trained here): ~1.5M parameters, 320 x 320 patches."""
    h = load_profile("full").hnerv
    patch = (h.crop[0] // h.grid[0], h.crop[1] // h.grid[1])
    spec = spec_for_patch(
        patch, h.widths["medium"], h.strides, lower_width=h.lower_width, kernel_max=h.kernel_max
    )
    model = DualHeadHNeRV(spec, clip_dim=512, pe_base=h.pe_base, pe_levels=h.pe_levels)
    assert 1.4e6 < parameter_counts(model)["total"] < 1.6e6
    with torch.no_grad():
        assert model(torch.rand(1, 3)).rgb.shape == (1, 3, 320, 320)


def test_kinds_are_registered_and_take_their_options_from_the_profile() -> None:
    assert list_hnervs() == ["coords", "content"]
    h = load_profile("sample").hnerv
    assert hnerv_options("coords", h) == {"pe_base": h.pe_base, "pe_levels": h.pe_levels}
    assert hnerv_options("content", h) == {"embed_dim": h.embed_dim}
    with pytest.raises(UnknownNameError, match="coords, content"):
        hnerv_options("frames", h)


def test_no_kind_has_batch_norm_so_nothing_needs_recalibrating() -> None:
    """The study trains through vtr.train.fit without torch.optim.swa_utils.update_bn: true only while
    no registered kind holds BatchNorm (a new kind that does must recalibrate after training)."""
    h = load_profile("sample").hnerv
    spec = spec_for_patch((8, 8), 8, (2, 2))
    for kind in list_hnervs():
        model = create_hnerv(kind, spec, 6, **hnerv_options(kind, h))
        assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules()), kind
