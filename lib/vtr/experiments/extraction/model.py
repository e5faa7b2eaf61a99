"""The ViT of notebook 06's TempMe and STOP rows, and an honest label of its weights.

The sample profile's encoder (``vtr-tiny``) is a ResNet: it has no tokens to merge or prompt, so these
rows use ``extract.vit_arch``, by default ``vtr-tiny-vit``, pretrained by vtr itself on the sample
world exactly as ``vtr-tiny`` is (:func:`vtr.models.tiny.ensure_tiny_checkpoint` with ``arch=``).
"""

from __future__ import annotations

import dataclasses

from vtr.config import Profile
from vtr.models.encoders import TINY_TAG, Encoder, load_encoder
from vtr.models.tiny import SELF_PRETRAINED_ARCHS


def vit_profile(cfg: Profile) -> Profile:
    """``cfg`` with ``model.arch = extract.vit_arch`` and the weights that go with it: the profile's own
    weights when it is the profile's model, vtr's self-pretrained checkpoint when the profile uses vtr's
    (``pretrained: vtr-tiny``) and the ViT is one vtr pretrains, random weights otherwise."""
    arch = cfg.extract.vit_arch
    if arch == cfg.model.arch:
        pretrained = cfg.model.pretrained
    elif cfg.model.pretrained == TINY_TAG and arch in SELF_PRETRAINED_ARCHS:
        pretrained = TINY_TAG
    else:
        pretrained = ""
    return dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, arch=arch, pretrained=pretrained))


def vit_encoder(cfg: Profile, device: str | None = None) -> Encoder:
    """The encoder of :func:`vit_profile` (pretraining ``vtr-tiny-vit`` first when it is not cached)."""
    return load_encoder(vit_profile(cfg), device=device)


def weights_label(cfg: Profile) -> str:
    """How the ViT's weights came about, for the notebook's text and metrics."""
    model = vit_profile(cfg).model
    if model.pretrained == TINY_TAG:
        return f"{model.arch}, pretrained by vtr on the sample world (vtr.models.tiny)"
    if not model.pretrained:
        return f"{model.arch}, random weights (no pretrained weights for it in this profile)"
    return f"{model.arch}, weights {model.pretrained!r}"
