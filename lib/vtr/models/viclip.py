"""ViCLIP (Wang et al., "InternVid", ICLR 2024): a CLIP whose image tower attends over a whole clip.

    enc = create_encoder("viclip-l14", "/models/ViClip-InternVid-10M-FLT.pth")
    clip = enc.encode_video(frames)          # (T, H, W, 3) uint8 RGB, T <= 8 -> (768,), one forward pass
    texts = enc.encode_text(["a dog runs"])  # (1, 768)

The architecture of OpenGVLab's release (InternVideo, ``Data/InternVid/viclip``), rebuilt from
open_clip's transformer blocks so the parameter names are the official checkpoint's:

* vision (``vision_encoder.*``): a CLIP ViT whose patch embedding is a ``Conv3d`` with kernel
  ``(1, p, p)`` (each frame is cut into patches on its own), a spatial positional embedding shared
  by the frames plus a temporal one ``(1, 8, width)``, then joint space-time attention: one
  sequence of the class token and every frame's patches (1 + 8 * 256 tokens for L/14 at 224 px).
  The class token's output, layer-normed and projected (``proj``, width -> embed), is the clip
  embedding. QuickGELU activations.
* text (``text_encoder.*``): a CLIP text transformer (BPE vocabulary of 49408, causal mask,
  end-of-text pooling) with a context of 32 tokens; open_clip's ``SimpleTokenizer`` is the same
  BPE and truncation (cut at 32, last token set to end-of-text) as the official tokenizer.
* ``temp``: the learnt softmax temperature (0.01 at initialisation; not a logit scale).

=============  ======  =====  ======  =====  ==========  ==========
arch           patch   width  layers  heads  text w/l/h  embed dim
=============  ======  =====  ======  =====  ==========  ==========
``viclip-l14``  14     1024    24      16    768/12/12   768
``viclip-b16``  16      768    12      12    512/12/8    512
=============  ======  =====  ======  =====  ==========  ==========

L/14 is the ``ViClip-InternVid-10M-FLT.pth`` checkpoint (Hugging Face ``OpenGVLab/ViCLIP``, seed 003's
model); B/16 follows the official ``clip_joint_b16`` / ``clip_text_b16`` settings (checkpoint in
``OpenGVLab/ViCLIP-B-16-hf``). Not rebuilt: drop path and the 90 % token masking of pretraining
(neither changes inference; fine-tuning here runs without them).

Frames. The official temporal embedding has 8 slots. Other clip lengths follow the official rules
for loading a checkpoint into a model of T frames: T < 8 uses the first T slots, T > 8 a linear
interpolation of the 8 (``F.interpolate(..., mode="linear")``); a single image uses their mean (the
official image path, also what :meth:`~vtr.models.encoders.Encoder.encode_frames` does with ViCLIP).
Only T = 8 is what the model was trained on.

Preprocessing, as the official demo (``frames2tensor``) does it, beside open_clip's for comparison:

=================  ==========================================  ==========================================
step               ViCLIP (``viclip-*``)                        open_clip image CLIPs
=================  ==========================================  ==========================================
frames             8 at stride ``len // 8`` from frame 0        any number, each encoded alone, then
                   (vtr's ``stride`` strategy), one forward     mean-pooled and re-normalised
colour             the demo reads BGR with OpenCV and flips    RGB
                   it; vtr decodes RGB, so nothing to flip
resize             whole frame squashed to 224 x 224, no        shortest side to 224 (bicubic,
                   crop, bilinear without antialiasing          antialiased), centre crop 224 x 224
                   (OpenCV's ``INTER_LINEAR``); vtr decodes
                   at native size for this
normalise          ImageNet mean (0.485, 0.456, 0.406),         the tag's mean/std (OpenAI's
                   std (0.229, 0.224, 0.225)                    0.481/0.458/0.408, 0.269/0.261/0.276)
text               32 tokens                                    77 tokens
=================  ==========================================  ==========================================

OpenCV's bilinear resize works in fixed point, so pixels can differ from vtr's by one level.

Protocol for MSR-VTT numbers (:mod:`vtr.experiments.baselines`, notebook 01): the 1k-A test (1000 clips, one
caption each, ``msrvtt_recall.test_split: test_1k``), t2v R@1 from the cosine similarity of the clip
embedding and the caption embedding, no re-ranking, no dual softmax, no prompt; fp16 autocast on
CUDA, fp32 on CPU; frames by ``video.strategy`` / ``video.n_frames`` (``stride`` / ``8`` is the demo's
sample). The paper's 42.4 comes from OpenGVLab's training-code evaluation, whose configs sample test
frames as the middles of 8 equal segments (``sample_type_test: middle``, vtr's ``uniform``) --
a different sample than the demo's, so compare like with like (not verified against the paper's
exact evaluation files; reproductions reported at 37.7-39.4).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from open_clip.tokenizer import SimpleTokenizer
from open_clip.transformer import QuickGELU, TextTransformer, Transformer
from torch import Tensor, nn

from vtr.models.encoders import Encoder, ResolvedWeights, file_sha256
from vtr.paths import resolve

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Hugging Face repository of the official L/14 checkpoint, for error messages.
CHECKPOINT_HINT = "ViClip-InternVid-10M-FLT.pth from the Hugging Face repo OpenGVLab/ViCLIP"
_MAX_LISTED_KEYS = 40


@dataclass(frozen=True)
class ViCLIPConfig:
    """Sizes of one ViCLIP architecture (see the table in the module docstring)."""

    patch_size: int = 14
    vision_width: int = 1024
    vision_layers: int = 24
    vision_heads: int = 16
    embed_dim: int = 768
    text_width: int = 768
    text_layers: int = 12
    text_heads: int = 12
    image_size: int = 224
    num_frames: int = 8
    context_length: int = 32
    vocab_size: int = 49408


ARCHS: dict[str, ViCLIPConfig] = {
    "viclip-l14": ViCLIPConfig(),
    "viclip-b16": ViCLIPConfig(
        patch_size=16,
        vision_width=768,
        vision_layers=12,
        vision_heads=12,
        embed_dim=512,
        text_width=512,
        text_layers=12,
        text_heads=8,
    ),  # fmt: skip
}


class CheckpointKeyError(KeyError):
    """A state dict whose keys are not the architecture's: names the file, missing and unexpected keys."""

    def __str__(self) -> str:  # KeyError would print the message with quotes and escaped newlines
        return str(self.args[0])


# ------------------------------------------------------------------------------------ the model


class VideoTransformer(nn.Module):
    """ViCLIP's vision tower: (B, 3, T, H, W) normalised pixels -> (B, embed_dim) clip features."""

    def __init__(self, cfg: ViCLIPConfig) -> None:
        super().__init__()
        width, grid = cfg.vision_width, cfg.image_size // cfg.patch_size
        self.num_frames, self.output_dim = cfg.num_frames, cfg.embed_dim
        patch = (1, cfg.patch_size, cfg.patch_size)
        self.conv1 = nn.Conv3d(3, width, kernel_size=patch, stride=patch, bias=False)
        scale = width**-0.5
        self.class_embedding = nn.Parameter(scale * torch.randn(width))
        self.positional_embedding = nn.Parameter(scale * torch.randn(grid * grid + 1, width))
        self.temporal_positional_embedding = nn.Parameter(torch.zeros(1, cfg.num_frames, width))
        self.ln_pre = nn.LayerNorm(width)
        self.transformer = Transformer(width, cfg.vision_layers, cfg.vision_heads, act_layer=QuickGELU)
        self.ln_post = nn.LayerNorm(width)
        self.proj = nn.Parameter(scale * torch.randn(width, cfg.embed_dim))
        # read by vtr.models.encoders.Encoder: the official demo's preprocessing
        self.preprocess_cfg = {
            "size": cfg.image_size,
            "mean": IMAGENET_MEAN,
            "std": IMAGENET_STD,
            "resize_mode": "squash",
            "interpolation": "bilinear",
            "antialias": False,
        }

    def _temporal(self, frames: int) -> Tensor:
        """(1, T, width): the slots a T-frame clip adds to its patches."""
        slots = self.temporal_positional_embedding
        if frames == 1:
            return slots.mean(dim=1, keepdim=True)
        if frames > self.num_frames:
            return F.interpolate(slots.transpose(1, 2), size=frames, mode="linear").transpose(1, 2)
        return slots[:, :frames]

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv1(x)  # (B, C, T, h, w)
        b, c, t = x.shape[:3]
        patches = x.flatten(3).permute(0, 2, 3, 1)  # (B, T, h*w, C)
        patches = patches + self.positional_embedding[1:] + self._temporal(t)[:, :, None]
        # one sequence per clip; the official order is patch-major, frame-minor
        patches = patches.transpose(1, 2).reshape(b, -1, c)
        cls = (self.class_embedding + self.positional_embedding[0]).expand(b, 1, c)
        x = self.ln_pre(torch.cat([cls.to(patches.dtype), patches], dim=1))
        x = self.ln_post(self.transformer(x)[:, 0])
        return x @ self.proj


class ViCLIP(nn.Module):
    """The two towers and the temperature, with the official checkpoint's parameter names."""

    def __init__(self, cfg: ViCLIPConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.vision_encoder = VideoTransformer(cfg)
        self.text_encoder = TextTransformer(
            context_length=cfg.context_length,
            vocab_size=cfg.vocab_size,
            width=cfg.text_width,
            heads=cfg.text_heads,
            layers=cfg.text_layers,
            output_dim=cfg.embed_dim,
            act_layer=QuickGELU,
        )
        self.temp = nn.Parameter(torch.tensor(0.01))

    @property
    def visual(self) -> VideoTransformer:
        return self.vision_encoder

    # open_clip's CLIP keeps its text tower's parts at the top level; code written for it
    # (vtr.models.crossmodal.text_token_features, vtr.finetune.unfreeze_last_blocks) finds them here.
    @property
    def token_embedding(self) -> nn.Embedding:
        return self.text_encoder.token_embedding

    @property
    def positional_embedding(self) -> nn.Parameter:
        return self.text_encoder.positional_embedding

    @property
    def transformer(self) -> Transformer:
        return self.text_encoder.transformer

    @property
    def ln_final(self) -> nn.Module:
        return self.text_encoder.ln_final

    @property
    def text_projection(self) -> nn.Parameter:
        return self.text_encoder.text_projection

    @property
    def attn_mask(self) -> Tensor:
        return self.text_encoder.attn_mask

    def encode_video(self, pixels: Tensor, normalize: bool = False) -> Tensor:
        """(B, T, 3, H, W) normalised pixels -> (B, D): one embedding per clip."""
        features = self.vision_encoder(pixels.transpose(1, 2))
        return F.normalize(features, dim=-1) if normalize else features

    def encode_image(self, pixels: Tensor, normalize: bool = False) -> Tensor:
        """(N, 3, H, W) -> (N, D): each image a one-frame clip (the official image path)."""
        return self.encode_video(pixels[:, None], normalize)

    def encode_text(self, tokens: Tensor, normalize: bool = False) -> Tensor:
        features = self.text_encoder(tokens)
        return F.normalize(features, dim=-1) if normalize else features


# ---------------------------------------------------------------------------------- checkpoints


def read_checkpoint(path: str | Path) -> dict[str, Tensor]:
    """The state dict of an official checkpoint: ``torch.load(path, weights_only=True)["model"]``.

    A bare state dict (no ``model`` entry, e.g. a ``.safetensors`` file) is accepted as it is.
    """
    path = Path(path)
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            obj: Any = load_file(str(path))
        else:
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a truncated download or a foreign file: say which one
        raise RuntimeError(f"cannot read ViCLIP checkpoint {path}: {type(err).__name__}: {err}") from err
    state = obj.get("model", obj) if isinstance(obj, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise ValueError(f"{path}: not a ViCLIP checkpoint (expected a dict with a 'model' state dict)")
    return state


def _listed(keys: Sequence[str]) -> str:
    shown = ", ".join(keys[:_MAX_LISTED_KEYS])
    more = len(keys) - _MAX_LISTED_KEYS
    return f"{shown}{f', ... and {more} more' if more > 0 else ''}"


def check_state_dict(model: nn.Module, state: dict[str, Tensor], source: str) -> None:
    """Raise :class:`CheckpointKeyError` listing missing and unexpected keys and shape mismatches."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    shapes = sorted(
        f"{k} {tuple(state[k].shape)} != {tuple(expected[k].shape)}"
        for k in set(expected) & set(state)
        if state[k].shape != expected[k].shape
    )
    if missing or unexpected or shapes:
        parts = [f"{source} does not match the architecture:"]
        if missing:
            parts.append(f"missing keys ({len(missing)}): {_listed(missing)}")
        if unexpected:
            parts.append(f"unexpected keys ({len(unexpected)}): {_listed(unexpected)}")
        if shapes:
            parts.append(f"wrong shapes ({len(shapes)}): {_listed(shapes)}")
        raise CheckpointKeyError("\n".join(parts))


def load_checkpoint(model: ViCLIP, path: str | Path) -> None:
    """Load an official checkpoint into ``model`` strictly (every key, every shape)."""
    state = read_checkpoint(path)
    check_state_dict(model, state, str(path))
    model.load_state_dict(state, strict=True)


# -------------------------------------------------------------------------------------- encoder


class ViCLIPEncoder(Encoder):
    """An :class:`~vtr.models.encoders.Encoder` whose video embedding is one joint pass over the clip.

    ``encode_video`` / ``encode_clips`` run the whole clip (any number of frames, 8 as trained) through the model; ``encode_frames``
    still embeds frames one by one (each a one-frame clip). In extraction a video is stored as one
    row, its clip embedding, so ``VideoEmbeddings.frames`` is (M, 1, D) for ViCLIP.
    """

    model: ViCLIP

    @property
    def frames_per_clip(self) -> int:
        return self.model.cfg.num_frames

    def rows_per_video(self, n_frames: int) -> int:
        return 1

    def decode_size(self, size: int | None) -> int | None:
        """Always native: ViCLIP squashes whole frames, so a square crop at decode time would lose edges."""
        return None

    @torch.inference_mode()
    def encode_clip_pixels(self, pixels: Tensor) -> Tensor:
        """Preprocessed (B, T, 3, S, S) clips -> L2-normalised float32 (B, D)."""
        with self._autocast():
            features = self.model.encode_video(pixels)
        return F.normalize(features.float(), dim=-1)

    def encode_clips(self, videos: Sequence[np.ndarray], batch_size: int | None = None) -> np.ndarray:
        """Clips of uint8 (T, H, W, 3) frames (sizes may differ between clips) -> float32 (N, D)."""
        if len(videos) == 0:
            return np.zeros((0, self.output_dim), dtype=np.float32)
        per_batch = max(1, (batch_size or self.batch_size) // max(len(v) for v in videos))
        out = []
        for start in range(0, len(videos), per_batch):
            pixels = torch.stack([self.preprocess(v) for v in videos[start : start + per_batch]])
            out.append(self.encode_clip_pixels(pixels).cpu().numpy())
        return np.concatenate(out).astype(np.float32, copy=False)

    def encode_video(self, frames: np.ndarray) -> np.ndarray:
        """(T, H, W, 3) uint8 -> (D,): the clip embedding of one joint forward pass."""
        return self.encode_clips([frames])[0]

    def encode_video_rows(self, videos: Sequence[np.ndarray]) -> list[np.ndarray]:
        """One (1, D) row per video: its clip embedding."""
        return [row[None] for row in self.encode_clips(videos)]


def create_viclip_encoder(
    arch: str, pretrained: str, *, device: torch.device, batch_size: int = 64
) -> ViCLIPEncoder:
    """A ViCLIP of ``arch`` (a key of :data:`ARCHS`) with random weights (``""``) or an official checkpoint."""
    if arch not in ARCHS:
        raise ValueError(f"unknown ViCLIP architecture {arch!r}; known: {sorted(ARCHS)}")
    cfg = ARCHS[arch]
    path = resolve(pretrained) if pretrained else None
    if path is not None and not path.is_file():  # before building 428M parameters
        raise FileNotFoundError(
            f"model.pretrained: ViCLIP weights are given by path, and {path} is not a file "
            f"(download {CHECKPOINT_HINT}; use '' for random weights)"
        )
    model = ViCLIP(cfg)
    if path is None:
        weights = ResolvedWeights(checkpoint=None, identity="random")
    else:
        load_checkpoint(model, path)
        weights = ResolvedWeights(checkpoint=str(path), identity=f"sha256:{file_sha256(path)}")
    tokenizer = SimpleTokenizer(context_length=cfg.context_length)
    model.to(device)
    return ViCLIPEncoder(model, tokenizer, arch=arch, weights=weights, device=device, batch_size=batch_size)


def parameter_count(cfg: ViCLIPConfig) -> int:
    """Number of parameters of ``cfg`` without allocating them (meta tensors)."""
    with torch.device("meta"):
        model = ViCLIP(dataclasses.replace(cfg))
    return sum(math.prod(p.shape) for p in model.parameters())
