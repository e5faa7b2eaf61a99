"""HNeRV-style video representations with two heads: RGB patches and their CLIP embeddings.

Two models share one decoder and the same two heads, so the study (:mod:`vtr.experiments.hnerv`) compares only
what goes *into* the decoder:

* :class:`DualHeadHNeRV` (seed 000): a patch's normalised coordinates ``(t, x, y)`` → NeRV's
  positional encoding → a linear stem that makes a small ``fc_dim × fc_h × fc_w`` feature map →
  the decoder → an RGB patch and a unit-length CLIP embedding. The video lives in the weights only;
  a frame that was never trained on is reached by interpolating the coordinate.
* :class:`ContentHNeRV` (HNeRV, Chen et al., CVPR 2023, the reference): a small convolutional
  encoder turns the patch's *pixels* into a tiny content embedding (``embed_dim × fc_h × fc_w``),
  which feeds the same decoder. With a 1 × 1 grid the "patch" is the whole frame, which is exactly
  the original HNeRV. The video lives in the weights *and* in the stored embeddings (one per patch
  of every stored frame); the encoder is only needed to make them.

The decoder is a stack of HNeRV blocks (convolution → PixelShuffle → GELU). As in HNeRV, the
kernel grows with depth (``min(kernel_min + 2·i, kernel_max)``: 1, 3, 5, 5, ...) and the channel
width shrinks by ``reduce`` per block (never below ``lower_width``), which spreads parameters
evenly across the blocks instead of piling them into the first one.

Model sizes (small / medium / large / xl) differ only in ``fc_dim``, the width of the first feature
map; :func:`parameter_counts` reports what each part costs and :func:`stored_values` everything a
decoder needs to reproduce frames (weights plus the content model's embeddings).

Kinds are registered in :data:`HNERVS` (the :mod:`vtr.registry` pattern)::

    create_hnerv("coords", spec, clip_dim=512, pe_levels=80)     # DualHeadHNeRV
    create_hnerv("content", spec, clip_dim=512, embed_dim=16)    # ContentHNeRV
    list_hnervs()                                                # ["coords", "content"]

Each registered class names the ``hnerv`` profile fields its constructor takes in ``config_fields``
(:func:`hnerv_options` picks them from a profile section), so a new kind needs no if/else anywhere.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from vtr.registry import Registry

N_COORDS = 3  # (t, x, y)

#: The HNeRV kinds: a name → the model class (``"coords"``: seed 000's, ``"content"``: HNeRV).
HNERVS: Registry[Any] = Registry("HNeRV kind")
register_hnerv = HNERVS.register
list_hnervs = HNERVS.names


class HNeRVOutput(NamedTuple):
    rgb: torch.Tensor  # (B, 3, H, W) in [0, 1]
    embedding: torch.Tensor  # (B, D), L2-normalised


@dataclass(frozen=True)
class DecoderSpec:
    """The shape of the shared decoder: from an ``fc_dim × fc_h × fc_w`` map up to the patch."""

    fc_dim: int
    fc_hw: tuple[int, int]
    strides: tuple[int, ...]
    reduce: float = 1.2  # channel reduction per block (HNeRV's r)
    lower_width: int = 12  # channels never drop below this
    kernel_min: int = 1  # HNeRV's "--ks 0_1_5": kernels 1, 3, 5, 5, ...
    kernel_max: int = 5

    def __post_init__(self) -> None:
        if self.fc_dim < 1 or min(self.fc_hw) < 1 or not self.strides or min(self.strides) < 1:
            raise ValueError(f"invalid decoder spec {self}: sizes and strides must be positive")

    @property
    def upscale(self) -> int:
        return math.prod(self.strides)

    @property
    def out_hw(self) -> tuple[int, int]:
        """The (height, width) of the patches this decoder produces."""
        return self.fc_hw[0] * self.upscale, self.fc_hw[1] * self.upscale

    def kernel(self, stage: int) -> int:
        return min(self.kernel_min + 2 * stage, self.kernel_max)


def spec_for_patch(
    patch_hw: Sequence[int],
    fc_dim: int,
    strides: Sequence[int],
    *,
    reduce: float = 1.2,
    lower_width: int = 12,
    kernel_max: int = 5,
) -> DecoderSpec:
    """The decoder spec whose output is exactly ``patch_hw``: ``fc_hw = patch_hw / prod(strides)``."""
    up = math.prod(strides)
    h, w = (int(v) for v in patch_hw)
    if h % up or w % up:
        raise ValueError(
            f"patch size {h}x{w} is not divisible by the decoder's upscale factor {up} "
            f"(strides {list(strides)}): choose strides whose product divides the patch size"
        )
    return DecoderSpec(
        fc_dim, (h // up, w // up), tuple(int(s) for s in strides), reduce, lower_width, kernel_max=kernel_max
    )


# --------------------------------------------------------------------------------------- parts


class PositionalEncoding(nn.Module):
    """NeRV's encoding of coordinates in [0, 1]: ``sin(b^i π v), cos(b^i π v)`` for ``i < levels``.

    NeRV's ``pe_1.25_80`` is ``base=1.25, levels=80``. The highest frequency must separate
    neighbouring frames: ``b^(levels-1) · π / n_frames`` should be well above π.
    """

    def __init__(self, base: float = 1.25, levels: int = 80) -> None:
        super().__init__()
        if base <= 1 or levels < 1:
            raise ValueError(f"positional encoding needs base > 1 and levels >= 1, got {base}, {levels}")
        self.register_buffer(
            "freqs", math.pi * base ** torch.arange(levels, dtype=torch.float64), persistent=False
        )
        self.levels = levels

    def out_dim(self, n_coords: int) -> int:
        return 2 * self.levels * n_coords

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        # float64 for the products: at b^79 ≈ 4.5e7 float32 phases lose all precision.
        phase = coords.double().unsqueeze(-1) * self.freqs  # (B, K, L)
        encoded = torch.cat([phase.sin(), phase.cos()], dim=-1)  # (B, K, 2L)
        return encoded.flatten(1).to(coords.dtype if coords.is_floating_point() else torch.float32)


class HNeRVBlock(nn.Module):
    """Convolution to ``c_out·s²`` channels, PixelShuffle by ``s``, GELU: upsamples by ``s``."""

    def __init__(self, c_in: int, c_out: int, stride: int, kernel: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out * stride * stride, kernel, padding=kernel // 2)
        self.shuffle = nn.PixelShuffle(stride)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.shuffle(self.conv(x)))


class NeRVDecoder(nn.Module):
    """The blocks of :class:`DecoderSpec`; ``out_channels`` is the width of the final feature map."""

    def __init__(self, spec: DecoderSpec) -> None:
        super().__init__()
        blocks, width = [], spec.fc_dim
        for stage, stride in enumerate(spec.strides):
            new_width = max(round(width / spec.reduce), spec.lower_width)
            blocks.append(HNeRVBlock(width, new_width, stride, spec.kernel(stage)))
            width = new_width
        self.blocks = nn.Sequential(*blocks)
        self.out_channels = width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x)


class DualHeads(nn.Module):
    """RGB head (3 × 3 convolution, HNeRV's ``tanh`` output mapped to [0, 1]) and CLIP head
    (global average pool → MLP → unit vector), both reading the decoder's last feature map."""

    def __init__(self, channels: int, clip_dim: int) -> None:
        super().__init__()
        self.rgb = nn.Conv2d(channels, 3, 3, padding=1)
        self.clip = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(channels, 2 * channels),
            nn.GELU(),
            nn.Linear(2 * channels, clip_dim),
        )

    def forward(self, features: torch.Tensor) -> HNeRVOutput:
        rgb = torch.tanh(self.rgb(features)) * 0.5 + 0.5
        return HNeRVOutput(rgb, F.normalize(self.clip(features), dim=-1))


# --------------------------------------------------------------------------------------- models


@register_hnerv("coords")
class DualHeadHNeRV(nn.Module):
    """Seed 000's model: ``(B, 3)`` coordinates in [0, 1] → RGB patches and CLIP embeddings."""

    kind = "coords"
    config_fields: tuple[str, ...] = ("pe_base", "pe_levels")  # hnerv profile fields it takes

    def __init__(
        self, spec: DecoderSpec, clip_dim: int, *, pe_base: float = 1.25, pe_levels: int = 80
    ) -> None:
        super().__init__()
        self.spec = spec
        self.pe = PositionalEncoding(pe_base, pe_levels)
        fc_h, fc_w = spec.fc_hw
        self.stem = nn.Sequential(nn.Linear(self.pe.out_dim(N_COORDS), spec.fc_dim * fc_h * fc_w), nn.GELU())
        self.decoder = NeRVDecoder(spec)
        self.heads = DualHeads(self.decoder.out_channels, clip_dim)

    def forward(self, coords: torch.Tensor) -> HNeRVOutput:
        if coords.ndim != 2 or coords.shape[1] != N_COORDS:
            raise ValueError(f"coords must be (B, {N_COORDS}) (t, x, y) in [0, 1], got {tuple(coords.shape)}")
        fc_h, fc_w = self.spec.fc_hw
        x = self.stem(self.pe(coords)).view(-1, self.spec.fc_dim, fc_h, fc_w)
        return self.heads(self.decoder(x))


class ContentEncoder(nn.Module):
    """HNeRV's encoder, small: one strided convolution per stage (kernel = stride, GELU between),
    the last one to ``embed_dim`` channels: a ``(B, 3, H, W)`` patch → ``(B, embed_dim, H/s, W/s)``."""

    def __init__(self, strides: Sequence[int], embed_dim: int, width: int = 64) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 3
        for i, stride in enumerate(strides):
            last = i == len(strides) - 1
            c_out = embed_dim if last else width
            layers.append(nn.Conv2d(c_in, c_out, stride, stride=stride))
            if not last:
                layers.append(nn.GELU())
            c_in = c_out
        self.layers = nn.Sequential(*layers)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.layers(pixels)


@register_hnerv("content")
class ContentHNeRV(nn.Module):
    """The original HNeRV as reference: the patch's pixels → content embedding → the same decoder.

    ``forward`` takes ``(B, 3, H, W)`` float pixels in [0, 1]: ``decode(encode(pixels))``. HNeRV
    counts the embeddings (one per patch, ``embedding_numel`` values each) as part of the stored
    video; the encoder is not stored (:func:`stored_values`).
    """

    kind = "content"
    config_fields: tuple[str, ...] = ("embed_dim",)

    def __init__(
        self, spec: DecoderSpec, clip_dim: int, *, embed_dim: int = 16, encoder_width: int = 64
    ) -> None:
        super().__init__()
        self.spec = spec
        self.encoder = ContentEncoder(spec.strides, embed_dim, encoder_width)
        self.stem = nn.Sequential(nn.Conv2d(embed_dim, spec.fc_dim, 1), nn.GELU())
        self.decoder = NeRVDecoder(spec)
        self.heads = DualHeads(self.decoder.out_channels, clip_dim)
        self.embedding_numel = embed_dim * spec.fc_hw[0] * spec.fc_hw[1]

    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` pixels in [0, 1] → ``(B, embed_dim, fc_h, fc_w)`` content embeddings."""
        expected = self.spec.out_hw
        if pixels.ndim != 4 or tuple(pixels.shape[-2:]) != expected or pixels.shape[1] != 3:
            raise ValueError(
                f"pixels must be (B, 3, {expected[0]}, {expected[1]}), got {tuple(pixels.shape)}"
            )
        return self.encoder(pixels)

    def decode(self, embedding: torch.Tensor) -> HNeRVOutput:
        """Content embeddings (stored, or interpolated between stored ones) → patches and CLIP embeddings."""
        return self.heads(self.decoder(self.stem(embedding)))

    def forward(self, pixels: torch.Tensor) -> HNeRVOutput:
        return self.decode(self.encode(pixels))


def parameter_counts(model: nn.Module) -> dict[str, int]:
    """Parameters per part (``stem``, ``decoder``, ``heads``, ``encoder`` when present) and ``total``.

    ``weights`` are the parameters a decoder keeps: everything but the content encoder. They are
    not the stored size of a content model, which also keeps its embeddings: see :func:`stored_values`.
    """
    counts = {
        name: sum(p.numel() for p in child.parameters())
        for name, child in model.named_children()
        if any(True for _ in child.parameters())
    }
    counts["total"] = sum(p.numel() for p in model.parameters())
    counts["weights"] = counts["total"] - counts.get("encoder", 0)
    return counts


def stored_values(model: nn.Module, n_patches: int) -> dict[str, int]:
    """Everything a decoder needs to reproduce ``n_patches`` stored patches, in numbers kept:
    ``weights`` (:func:`parameter_counts`), ``embeddings`` (``n_patches × embedding_numel`` for a
    content model, none for the coordinate model, whose input is computed from the index) and
    ``stored``, their sum."""
    if n_patches < 0:
        raise ValueError(f"n_patches must be >= 0, got {n_patches}")
    weights = parameter_counts(model)["weights"]
    embeddings = n_patches * int(getattr(model, "embedding_numel", 0))
    return {"weights": weights, "embeddings": embeddings, "stored": weights + embeddings}


def create_hnerv(kind: str, spec: DecoderSpec, clip_dim: int, **options: Any) -> nn.Module:
    """The registered HNeRV ``kind`` (:func:`list_hnervs`) with the shared ``spec`` and CLIP width.

    ``options`` go to its constructor (``pe_base``/``pe_levels`` for ``"coords"``, ``embed_dim`` for
    ``"content"``). An unknown kind is a :class:`vtr.registry.UnknownNameError` naming the known ones.
    """
    return HNERVS.create(kind, spec, clip_dim, **options)


def hnerv_options(kind: str, section: Any) -> dict[str, Any]:
    """The constructor options of ``kind`` read from a profile section (``cfg.hnerv``): the fields
    its class lists in ``config_fields``."""
    return {name: getattr(section, name) for name in HNERVS.get(kind).config_fields}
