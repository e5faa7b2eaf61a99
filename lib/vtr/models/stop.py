"""STOP-style spatial and temporal prompts on a frozen open_clip Vision Transformer.

Image CLIP sees a clip as independent frames, so a mean of its frame features cannot tell "moves
left" from "moves right". STOP (spatial–temporal dynamic prompting) keeps the ViT frozen and adds
two small trainable parts; vtr's version:

* **Intra-frame spatial prompts:** ``n_spatial`` tokens appended to every frame's tokens at the
  input. Each is a learned base token plus a projection of the frame's *motion summary*: its patch
  embeddings weighted by how much each patch changed from the previous frame (a softmax over the
  patch-wise change), so the prompts point the frozen network at the regions that move.
* **Inter-frame temporal prompts:** before each block in ``temporal_layers``, a depthwise 1-D
  convolution over time of the frames' class tokens gives one token per frame that summarises its
  neighbours; it is appended to that frame's tokens for the block and removed after it. This is the
  only path by which frames exchange information, and it makes the clip feature order-aware.

Only the prompts (and, optionally, LoRA adapters on the MLPs via ``peft``, as TempMe fine-tunes) are
trainable; :meth:`PromptedViT.trainable_parameters` lists them for :func:`vtr.train.fit`.

**Where the prompts enter** (``prompt_layer``): STOP adds them at the input (block 0, the default).
With ``prompt_layer = k`` they enter before block ``k`` instead (deep prompts, as VPT-deep does), and the
``k`` frozen blocks below see no prompt, so their output does not depend on anything trainable:
:meth:`PromptedViT.prefix_tokens` computes it once per clip and :meth:`PromptedViT.forward_tokens`
trains on it, which cuts the cost of every epoch by the share of the blocks below ``k`` (LoRA then
adapts only the blocks from ``k`` on). ``forward`` runs both, so ``forward(frames)`` is the same model.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vtr.models.tome import _check_visual


@dataclass(frozen=True)
class PromptConfig:
    """How many prompts and where; see the module docstring."""

    n_spatial: int = 4
    temporal_layers: tuple[int, ...] = (0, 1)  # 0-based blocks that receive a temporal prompt token
    temporal_kernel: int = 3  # frames each temporal prompt sees (odd)
    lora_rank: int = 0  # > 0: LoRA adapters of this rank on the frozen tower's MLPs (see add_lora)
    prompt_layer: int = 0  # the block before which the prompts enter (0: at the input, as STOP)

    def __post_init__(self) -> None:
        if self.n_spatial < 0:
            raise ValueError(f"n_spatial must be >= 0, got {self.n_spatial}")
        if self.temporal_kernel < 1 or self.temporal_kernel % 2 == 0:
            raise ValueError(f"temporal_kernel must be a positive odd number, got {self.temporal_kernel}")
        if list(self.temporal_layers) != sorted(set(self.temporal_layers)):
            raise ValueError(f"temporal_layers must be strictly increasing, got {self.temporal_layers}")
        if self.prompt_layer < 0 or any(layer < self.prompt_layer for layer in self.temporal_layers):
            raise ValueError(
                f"prompt_layer must be >= 0 and <= every temporal layer, got {self.prompt_layer} "
                f"with temporal_layers {self.temporal_layers}"
            )


class PromptedViT(nn.Module):
    """A frozen open_clip ``VisionTransformer`` with STOP-style prompts: frames [B, T, 3, H, W] →
    frame features [B, T, D] (:meth:`forward`) or an L2-normalised clip feature (:meth:`encode_clip`)."""

    def __init__(self, visual: nn.Module, cfg: PromptConfig = PromptConfig()) -> None:
        super().__init__()
        _check_visual(visual)
        blocks = len(visual.transformer.resblocks)
        if any(layer >= blocks for layer in cfg.temporal_layers) or cfg.prompt_layer >= blocks:
            raise ValueError(
                f"temporal_layers {cfg.temporal_layers} or prompt_layer {cfg.prompt_layer} exceed the "
                f"{blocks} blocks"
            )
        self.visual = visual.requires_grad_(False)
        if cfg.lora_rank:
            add_lora(visual, rank=cfg.lora_rank, blocks=range(cfg.prompt_layer, blocks))
        self.cfg = cfg
        width = visual.transformer.width
        self.spatial_base = nn.Parameter(torch.randn(cfg.n_spatial, width) * 0.02)
        self.spatial_motion = nn.Linear(width, width * cfg.n_spatial) if cfg.n_spatial else None
        self.temporal = nn.ModuleDict(
            {
                str(layer): nn.Conv1d(
                    width, width, cfg.temporal_kernel, padding=cfg.temporal_kernel // 2, groups=width
                )
                for layer in cfg.temporal_layers
            }
        )

    def trainable_parameters(self) -> list[nn.Parameter]:
        """The prompt parameters and any LoRA adapters: everything not frozen."""
        return [p for p in self.parameters() if p.requires_grad]

    def train(self, mode: bool = True) -> PromptedViT:
        super().train(mode)
        self.visual.eval()  # the frozen tower keeps its inference behaviour (dropout off)
        return self

    def _spatial_prompts(self, tokens: torch.Tensor, batch: int, frames: int) -> torch.Tensor:
        """[B*T, n_spatial, width] prompts from each frame's motion-weighted patch embeddings."""
        patches = tokens[:, 1:].reshape(batch, frames, tokens.shape[1] - 1, -1)
        previous = torch.cat([patches[:, :1], patches[:, :-1]], dim=1)
        change = (patches - previous).abs().mean(dim=-1)  # [B, T, P]
        weights = change.softmax(dim=-1).unsqueeze(-1)
        motion = (weights * patches).sum(dim=2).flatten(0, 1)  # [B*T, width]
        prompts = self.spatial_motion(motion).reshape(-1, self.cfg.n_spatial, tokens.shape[-1])
        return prompts + self.spatial_base

    def _temporal_prompt(self, layer: int, x: torch.Tensor, batch: int, frames: int) -> torch.Tensor:
        """[B*T, 1, width]: a convolution over time of the frames' class tokens."""
        cls = x[:, 0].reshape(batch, frames, -1).transpose(1, 2)  # [B, width, T]
        return self.temporal[str(layer)](cls).transpose(1, 2).reshape(batch * frames, 1, -1)

    @torch.no_grad()
    def prefix_tokens(self, frames: torch.Tensor) -> torch.Tensor:
        """Tokens [B, T, N, width] of ``frames`` [B, T, 3, H, W] after the frozen blocks below
        ``prompt_layer`` (the patch embedding alone when it is 0): nothing trainable acts on them."""
        batch, n_frames = frames.shape[:2]
        x = self.visual._embeds(frames.flatten(0, 1))
        for block in self.visual.transformer.resblocks[: self.cfg.prompt_layer]:
            x = block(x)
        return x.reshape(batch, n_frames, *x.shape[1:])

    def forward_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """Frame features [B, T, D] from :meth:`prefix_tokens`' output: the prompted blocks and the pooling."""
        batch, n_frames = tokens.shape[:2]
        x = tokens.flatten(0, 1)
        if self.cfg.n_spatial:
            x = torch.cat([x, self._spatial_prompts(x, batch, n_frames)], dim=1)
        blocks = self.visual.transformer.resblocks
        for index in range(self.cfg.prompt_layer, len(blocks)):
            if str(index) in self.temporal:
                x = torch.cat([x, self._temporal_prompt(index, x, batch, n_frames)], dim=1)
                x = blocks[index](x)[:, :-1]
            else:
                x = blocks[index](x)
        pooled, _ = self.visual._pool(x)
        if self.visual.proj is not None:
            pooled = pooled @ self.visual.proj
        return pooled.reshape(batch, n_frames, -1)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.forward_tokens(self.prefix_tokens(frames))

    def encode_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """One L2-normalised feature per clip [B, D] from :meth:`prefix_tokens`' output."""
        return F.normalize(self.forward_tokens(tokens).mean(dim=1), dim=-1)

    def encode_clip(self, frames: torch.Tensor) -> torch.Tensor:
        """One L2-normalised feature per clip [B, D]: the mean of the prompted frame features."""
        return F.normalize(self(frames).mean(dim=1), dim=-1)


def add_lora(
    visual: nn.Module,
    rank: int = 8,
    alpha: float = 16.0,
    dropout: float = 0.0,
    blocks: Iterable[int] | None = None,
) -> nn.Module:
    """LoRA adapters (``peft``) on the MLP layers of ``visual``'s blocks (all, or those of ``blocks``),
    as TempMe fine-tunes CLIP.

    Only the adapters are trainable afterwards. The MLPs are adapted rather than the attention
    because open_clip's attention is ``nn.MultiheadAttention``, whose fused projection peft does not
    wrap as plain ``Linear`` layers.
    """
    from peft import LoraConfig, inject_adapter_in_model

    targets: list[str] | str = ["c_fc", "c_proj"]
    if blocks is not None:
        chosen = "|".join(str(b) for b in blocks)
        targets = rf".*resblocks\.({chosen})\.mlp\.(c_fc|c_proj)"  # peft matches a string in full
    config = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=dropout, target_modules=targets)
    visual.requires_grad_(False)
    return inject_adapter_in_model(config, visual)
