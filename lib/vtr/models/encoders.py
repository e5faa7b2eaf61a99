"""CLIP-style encoders: one wrapper over open_clip for any (architecture, weights) pair.

    enc = load_encoder(cfg)                       # the profile's model section and device
    texts = enc.encode_text(["a red circle"])     # (1, D) float32, L2-normalised
    frames = enc.encode_frames(video)             # video: (T, H, W, 3) uint8 -> (T, D)
    clip = enc.encode_video(video)                # (D,): mean of the frame embeddings, re-normalised

``arch`` is any open_clip architecture, vtr's own (``vtr-tiny``), or a video architecture of
:func:`video_architectures` (``viclip-l14``, ``viclip-b16``: :mod:`vtr.models.viclip`), whose
``encode_video`` is one joint pass over the clip instead of a mean of frames. vtr's own architectures
are registered by name (:func:`register_encoder`); :func:`list_encoders` lists every accepted name.

``pretrained`` is an open_clip tag (``openai``, ``laion2b_s34b_b79k``...), a local checkpoint file,
``""`` for random weights, or ``"vtr-tiny"`` for vtr's own small CLIP, which is pretrained on the
sample world on first use and then loaded from its checkpoint file like any other local checkpoint.

Hub weights are looked up in the local Hugging Face cache first. When they are not there and the
hub cannot be reached, loading fails at once with a message that says how to pass a local file,
instead of open_clip's retries (about 45 s per file without network).
"""

from __future__ import annotations

import difflib
import hashlib
import os
import socket
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import numpy as np
import open_clip
import torch
import torch.nn.functional as F
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from vtr.keys import hub_offline
from vtr.paths import resolve
from vtr.registry import Registry
from vtr.runtime import resolve_device

if TYPE_CHECKING:
    from vtr.config import ModelConfig, Profile

TINY_TAG = "vtr-tiny"
_MODEL_CONFIGS_DIR = Path(__file__).resolve().parents[1] / "model_configs"
_CHECKPOINT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors", ".ckpt", ".npz")
_HF_HOST_CHECK_TIMEOUT_S = 3.0


class WeightsUnavailableError(RuntimeError):
    """Pretrained weights that are neither cached locally nor downloadable (e.g. no network)."""


def register_model_configs() -> None:
    """Make vtr's architectures (``lib/vtr/model_configs/*.json``, e.g. ``vtr-tiny``) known to open_clip."""
    if _MODEL_CONFIGS_DIR not in open_clip.factory._MODEL_CONFIG_PATHS:
        open_clip.add_model_config(_MODEL_CONFIGS_DIR)


EncoderFactory = Callable[..., "Encoder"]

#: vtr's own encoder architectures by name: ``factory(arch, pretrained, *, device, batch_size) -> Encoder``.
#: Every other name is an open_clip architecture; ``video=True`` marks one that embeds a whole
#: clip in one pass (ViCLIP) instead of a mean of frames.
ENCODERS: Registry[EncoderFactory] = Registry("encoder architecture")


def register_encoder(
    name: str, *, video: bool = False, replace: bool = False
) -> Callable[[EncoderFactory], EncoderFactory]:
    """Register ``factory(arch, pretrained, *, device, batch_size) -> Encoder`` under ``name`` (a decorator)."""
    return ENCODERS.register(name, replace=replace, video=video)


def _viclip_encoder(arch: str, pretrained: str, *, device: torch.device, batch_size: int) -> Encoder:
    from vtr.models.viclip import create_viclip_encoder

    return create_viclip_encoder(arch, pretrained, device=device, batch_size=batch_size)


def _register_builtin_encoders() -> None:
    """ViCLIP's sizes (``vtr.models.viclip.ARCHS``), registered on use: vtr.models.viclip imports this module."""
    from vtr.models.viclip import ARCHS

    for arch in ARCHS:
        if arch not in ENCODERS:
            ENCODERS.add(arch, _viclip_encoder, video=True)
    for gone in [n for n in ENCODERS if ENCODERS.get(n) is _viclip_encoder and n not in ARCHS]:
        ENCODERS.unregister(gone)  # a size a test or notebook added to ARCHS and removed again


def video_architectures() -> list[str]:
    """Architectures that embed a whole clip at once (not open_clip models): ViCLIP's."""
    _register_builtin_encoders()
    return sorted(name for name in ENCODERS if ENCODERS.entry(name).meta.get("video"))


def list_encoders() -> list[str]:
    """Every architecture :func:`create_encoder` accepts: open_clip's (with vtr's ``vtr-tiny``) and vtr's registered ones."""
    register_model_configs()
    _register_builtin_encoders()
    return open_clip.list_models() + ENCODERS.names()


# --------------------------------------------------------------------------------------- weights


@dataclass(frozen=True)
class ResolvedWeights:
    """Where an encoder's weights come from, and how embeddings made with them are identified."""

    checkpoint: str | None  # a local file for open_clip to load; None means random initialisation
    identity: str  # the tag, ``sha256:<file hash>``, or ``random`` (then the encoder hashes its weights)
    preprocess: dict[str, Any] = field(default_factory=dict)  # mean/std/... that belong to a hub tag
    quick_gelu: bool | None = None  # the activation a hub tag was trained with


def file_sha256(path: str | os.PathLike[str], chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _looks_like_path(text: str) -> bool:
    return "/" in text or os.sep in text or text.endswith(_CHECKPOINT_SUFFIXES)


def _offline_reason() -> str | None:
    """Why the Hugging Face hub cannot be used right now, or None when it looks reachable."""
    if hub_offline():
        return "HF_HUB_OFFLINE/HF_DATASETS_OFFLINE is set"
    host = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co").hostname or "huggingface.co"
    try:
        # One cheap connection attempt: without network, huggingface_hub retries for ~45 s per file.
        socket.create_connection((host, 443), timeout=_HF_HOST_CHECK_TIMEOUT_S).close()
    except OSError as err:
        return f"{host} is unreachable ({err.__class__.__name__}: {err})"
    return None


def _cached_hub_file(tag_cfg: dict[str, Any]) -> tuple[str | None, str]:
    """The locally cached weights file of an open_clip tag (or None) and a description of where it lives."""
    from huggingface_hub import try_to_load_from_cache

    if hub := tag_cfg.get("hf_hub"):
        repo_id, filename = os.path.split(hub)
        filename = filename or "open_clip_pytorch_model.bin"
        # open_clip prefers a .safetensors twin of the .bin file when the repo has one.
        candidates = [filename[: filename.rfind(".")] + ".safetensors", filename]
        if filename == "open_clip_pytorch_model.bin":
            candidates.insert(0, "open_clip_model.safetensors")
        for name in candidates:
            hit = try_to_load_from_cache(repo_id=repo_id, filename=name)
            if isinstance(hit, str):
                return hit, f"{repo_id}/{name}"
        return None, f"Hugging Face repo {repo_id}, file {filename}"
    if url := tag_cfg.get("url"):
        # open_clip's own download cache for url-only tags.
        local = Path("~/.cache/clip").expanduser() / os.path.basename(url)
        return (str(local) if local.is_file() else None), url
    return None, "nowhere (the tag names no file)"


def resolve_weights(arch: str, pretrained: str) -> ResolvedWeights:
    """Turn a profile's ``pretrained`` value into a local file (or random init) without hanging offline."""
    if not pretrained:
        return ResolvedWeights(checkpoint=None, identity="random")
    if pretrained == TINY_TAG:
        raise ValueError(
            f"pretrained={TINY_TAG!r} names vtr's self-pretrained checkpoint, which is built from a profile: "
            "call load_encoder(profile) with the whole Profile, or pass the checkpoint path"
        )
    tag_cfg = open_clip.get_pretrained_cfg(arch, pretrained)
    if tag_cfg:
        local, where = _cached_hub_file(tag_cfg)
        extra = {k: tag_cfg[k] for k in ("mean", "std", "interpolation", "resize_mode") if k in tag_cfg}
        quick_gelu = tag_cfg.get("quick_gelu")
        if local is None:
            if reason := _offline_reason():
                # A checkpoint given by path carries no activation flag: QuickGELU weights need the
                # -quickgelu architecture, or their embeddings come out silently wrong.
                same_arch = (
                    f"{arch}-quickgelu"
                    if quick_gelu and f"{arch}-quickgelu" in open_clip.list_models()
                    else arch
                )
                raise WeightsUnavailableError(
                    f"pretrained weights {pretrained!r} for {arch!r} are not in the local cache ({where}) and "
                    f"cannot be downloaded: {reason}. Download open_clip_pytorch_model.bin on a machine with "
                    f"network (e.g. `huggingface-cli download {where.split(',')[0].split()[-1]}`) and pass "
                    "the file instead: `model.pretrained: /path/to/open_clip_pytorch_model.bin` with "
                    f"`model.arch: {same_arch}` in the profile (or --set model.pretrained=/path/to/"
                    f"open_clip_pytorch_model.bin --set model.arch={same_arch})"
                )
            local = open_clip.download_pretrained(tag_cfg)
        return ResolvedWeights(checkpoint=local, identity=pretrained, preprocess=extra, quick_gelu=quick_gelu)
    path = resolve(pretrained)
    if path.is_file():
        return ResolvedWeights(checkpoint=str(path), identity=f"sha256:{file_sha256(path)}")
    if _looks_like_path(pretrained):
        raise FileNotFoundError(f"model.pretrained: checkpoint file {path} does not exist")
    tags = open_clip.list_pretrained_tags_by_model(arch)
    close = difflib.get_close_matches(pretrained, tags, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise ValueError(
        f"model.pretrained={pretrained!r} is neither an open_clip tag for {arch!r}{hint} nor an existing file; "
        f"tags for {arch!r}: {tags or 'none'}; use '' for random weights or a path to a checkpoint"
    )


# --------------------------------------------------------------------------------------- encoder


def pool_frames(frame_embeddings: np.ndarray) -> np.ndarray:
    """Mean-pool (..., T, D) frame embeddings over T and L2-normalise: (..., D)."""
    mean = np.asarray(frame_embeddings, dtype=np.float32).mean(axis=-2)
    return l2_normalize(mean)


def l2_normalize(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return (x / np.maximum(norm, eps)).astype(np.float32)


def _output_dim(model: torch.nn.Module) -> int:
    if isinstance(dim := getattr(model.visual, "output_dim", None), int):
        return dim
    with torch.inference_mode():
        size = model.visual.preprocess_cfg["size"]
        size = (size, size) if isinstance(size, int) else size
        probe = torch.zeros(1, 3, *size, device=next(model.parameters()).device)
        return int(model.encode_image(probe).shape[-1])


def _batches(n: int, size: int) -> Iterator[slice]:
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


class Encoder:
    """An open_clip model, its tokenizer and tensor-based preprocessing, with numpy in and out."""

    def __init__(
        self,
        model: torch.nn.Module,
        tokenizer: Any,
        *,
        arch: str,
        weights: ResolvedWeights,
        device: torch.device,
        batch_size: int = 64,
    ) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.arch = arch
        self.weights = weights
        self.device = device
        self.batch_size = batch_size
        cfg = dict(model.visual.preprocess_cfg)
        size = cfg["size"]
        self.image_size: tuple[int, int] = (size, size) if isinstance(size, int) else tuple(size)
        self.mean = torch.tensor(cfg["mean"], dtype=torch.float32, device=device).view(1, 3, 1, 1)
        self.std = torch.tensor(cfg["std"], dtype=torch.float32, device=device).view(1, 3, 1, 1)
        self.resize_mode: str = cfg.get("resize_mode", "shortest")
        self.antialias: bool = cfg.get("antialias", True)
        self.interpolation = (
            InterpolationMode.BILINEAR
            if cfg.get("interpolation") == "bilinear"
            else InterpolationMode.BICUBIC
        )
        self.preprocess_cfg = cfg
        self.output_dim: int = _output_dim(model)  # D, the width of the shared embedding space
        self._weights_identity: str | None = None if weights.identity == "random" else weights.identity
        self._frame_memo: dict[bytes, np.ndarray] | None = None  # set inside frame_memo()

    # -- identity ------------------------------------------------------------------------------

    @property
    def amp(self) -> bool:
        return self.device.type == "cuda"

    def weights_identity(self) -> str:
        """The tag, the checkpoint's sha256, or for random weights a hash of the weights themselves."""
        if self._weights_identity is None:
            digest = hashlib.sha256()
            for name, tensor in sorted(self.model.state_dict().items()):
                digest.update(name.encode())
                digest.update(tensor.detach().to("cpu").contiguous().numpy().tobytes())
            self._weights_identity = f"random:{digest.hexdigest()}"
        return self._weights_identity

    def identity(self) -> dict[str, Any]:
        """Everything that decides the embeddings: what cache keys are made of."""
        return {
            "arch": self.arch,
            "weights": self.weights_identity(),
            "image_size": list(self.image_size),
            "mean": [round(float(v), 6) for v in self.mean.flatten()],
            "std": [round(float(v), 6) for v in self.std.flatten()],
            "resize_mode": self.resize_mode,
            "interpolation": self.interpolation.value,
            "precision": "amp-fp16" if self.amp else "fp32",
            # only when off, so the keys of existing caches (all antialiased) stay the same
            **({"antialias": False} if not self.antialias else {}),
        }

    # -- preprocessing -------------------------------------------------------------------------

    def preprocess(self, frames: np.ndarray | torch.Tensor) -> torch.Tensor:
        """uint8 (N, H, W, 3) frames -> normalised float (N, 3, S, S) on the device.

        Mirrors open_clip's inference transform (resize the shortest side with antialiasing, centre
        crop, normalise) on whole batches of tensors instead of one PIL image at a time.
        """
        x = torch.as_tensor(np.asarray(frames) if not isinstance(frames, torch.Tensor) else frames)
        if x.ndim != 4 or x.shape[-1] != 3 or x.dtype != torch.uint8:
            raise ValueError(f"frames must be uint8 (N, H, W, 3), got {tuple(x.shape)} {x.dtype}")
        x = x.to(self.device, non_blocking=True).permute(0, 3, 1, 2)
        height, width = x.shape[-2:]
        target_h, target_w = self.image_size
        if (height, width) != (target_h, target_w):
            if self.resize_mode == "squash":
                new_size = [target_h, target_w]
            elif self.resize_mode == "shortest" and target_h == target_w:
                new_size = [target_h]  # torchvision's shortest-edge rule, exactly as open_clip's Resize
            else:
                # "shortest" covers the target then crops; "longest" fits inside it, then pads with zeros.
                pick = max if self.resize_mode == "shortest" else min
                scale = pick(target_h / height, target_w / width)
                new_size = [max(1, round(height * scale)), max(1, round(width * scale))]
            x = TF.resize(x, new_size, interpolation=self.interpolation, antialias=self.antialias)
            x = TF.center_crop(x, [target_h, target_w])
        x = x.float().div_(255.0)
        return (x - self.mean) / self.std

    # -- encoding ------------------------------------------------------------------------------

    def _autocast(self) -> Any:
        return torch.autocast("cuda", dtype=torch.float16) if self.amp else nullcontext()

    @torch.inference_mode()
    def encode_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        """Preprocessed (N, 3, S, S) images -> L2-normalised float32 (N, D) tensor."""
        with self._autocast():
            features = self.model.encode_image(pixels)
        return F.normalize(features.float(), dim=-1)

    def encode_frames(self, frames: np.ndarray | torch.Tensor, batch_size: int | None = None) -> np.ndarray:
        """uint8 (N, H, W, 3) frames -> float32 (N, D), L2-normalised, in batches of ``batch_size``.

        Inside :meth:`frame_memo`, a frame seen before (same pixels) is not encoded again.
        """
        if self._frame_memo is not None:
            return self._encode_frames_memoized(frames, batch_size)
        return self._encode_frames(frames, batch_size)

    @contextmanager
    def frame_memo(self) -> Iterator[None]:
        """Within the block, remember every encoded frame's embedding by its pixels' digest.

        A sweep over sampling strategies and frame counts draws the same few frames of each clip
        again and again (the sample world's clips have 24 frames; the 21-run sweep of notebook 01
        encodes 196 per clip, of which about 25 are distinct). Memory grows with
        the distinct frames seen (D floats each), so the memo is scoped to a block.
        """
        previous = self._frame_memo
        self._frame_memo = {} if previous is None else previous
        try:
            yield
        finally:
            self._frame_memo = previous

    def _encode_frames_memoized(self, frames: np.ndarray | torch.Tensor, batch_size: int | None) -> np.ndarray:
        memo = self._frame_memo
        assert memo is not None
        array = frames.cpu().numpy() if isinstance(frames, torch.Tensor) else np.asarray(frames)
        # the shape goes into the digest: the same bytes at another frame size are another frame
        digests = [hashlib.blake2b(repr(f.shape).encode() + np.ascontiguousarray(f).tobytes(),
                                   digest_size=16).digest() for f in array]  # fmt: skip
        first_seen: dict[bytes, int] = {}
        for i, d in enumerate(digests):
            if d not in memo:
                first_seen.setdefault(d, i)
        if first_seen:
            encoded = self._encode_frames(array[list(first_seen.values())], batch_size)
            memo.update(zip(first_seen, encoded, strict=True))
        if not digests:
            return np.zeros((0, self.output_dim), dtype=np.float32)
        return np.stack([memo[d] for d in digests]).astype(np.float32, copy=False)

    def _encode_frames(self, frames: np.ndarray | torch.Tensor, batch_size: int | None = None) -> np.ndarray:
        size = batch_size or self.batch_size
        n = len(frames)
        if n == 0:
            return np.zeros((0, self.output_dim), dtype=np.float32)
        out = [self.encode_pixels(self.preprocess(frames[part])).cpu().numpy() for part in _batches(n, size)]
        return np.concatenate(out).astype(np.float32, copy=False)

    def encode_video(self, frames: np.ndarray) -> np.ndarray:
        """(T, H, W, 3) uint8 -> (D,): the re-normalised mean of the frame embeddings."""
        return pool_frames(self.encode_frames(frames))

    def encode_clips(self, videos: Sequence[np.ndarray], batch_size: int | None = None) -> np.ndarray:
        """Several videos of uint8 (T, H, W, 3) frames -> float32 (N, D) video embeddings."""
        rows = self.encode_video_rows(videos)
        return (
            np.stack([pool_frames(r) for r in rows]) if rows else np.zeros((0, self.output_dim), np.float32)
        )

    def encode_video_rows(self, videos: Sequence[np.ndarray]) -> list[np.ndarray]:
        """What extraction stores per video: its (T, D) frame embeddings, encoded in shared batches.

        Video encoders (ViCLIP) store one (1, D) row, the clip embedding, instead.
        """
        if len(videos) == 0:
            return []
        embedded = self.encode_frames(np.concatenate(videos))
        bounds = np.cumsum([len(v) for v in videos])[:-1]
        return np.split(embedded, bounds)

    def rows_per_video(self, n_frames: int) -> int:
        """How many rows :meth:`encode_video_rows` stores for a video of ``n_frames`` frames."""
        return n_frames

    def decode_size(self, size: int | None) -> int | None:
        """The frame size to decode videos at for this encoder (None: native resolution).

        Square frames of ``size`` (default: the input size); video encoders that squash whole
        frames (ViCLIP) decode at native size instead, whatever ``size`` says.
        """
        return size or self.image_size[0]

    @torch.inference_mode()
    def encode_text(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        """Captions -> float32 (N, D), L2-normalised. Longer captions are cut at the context length."""
        if isinstance(texts, str):
            raise TypeError("encode_text takes a list of strings, not a single string")
        size = batch_size or self.batch_size
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.output_dim), dtype=np.float32)
        out = []
        for part in _batches(len(texts), size):
            tokens = self.tokenizer(texts[part]).to(self.device)
            with self._autocast():
                features = self.model.encode_text(tokens)
            out.append(F.normalize(features.float(), dim=-1).cpu().numpy())
        return np.concatenate(out).astype(np.float32, copy=False)

    def __repr__(self) -> str:
        return (
            f"Encoder(arch={self.arch!r}, weights={self.weights.identity!r}, device={self.device}, "
            f"image_size={self.image_size}, dim={self.output_dim})"
        )


def create_encoder(
    arch: str,
    pretrained: str = "",
    *,
    device: str | torch.device = "auto",
    batch_size: int = 64,
) -> Encoder:
    """Build an :class:`Encoder` for any open_clip architecture and weights (tag, local file or ``""``).

    Names registered with :func:`register_encoder` go to their factory: the video architectures
    (:func:`video_architectures`) take ``""`` or a path to the official checkpoint.
    """
    register_model_configs()
    _register_builtin_encoders()
    dev = device if isinstance(device, torch.device) else resolve_device(device)
    if arch in ENCODERS:
        return ENCODERS.create(arch, arch, pretrained, device=dev, batch_size=batch_size)
    models = open_clip.list_models()
    if arch not in models:
        close = difflib.get_close_matches(arch, list_encoders(), n=3)
        raise ValueError(f"model.arch={arch!r} is not an open_clip architecture; did you mean {close}?")
    weights = resolve_weights(arch, pretrained)
    kwargs: dict[str, Any] = {}
    if weights.quick_gelu:
        # open_clip only warns when a tag trained with QuickGELU (OpenAI's) is loaded into a GELU config.
        kwargs["force_quick_gelu"] = True
    model = open_clip.create_model(
        arch,
        pretrained=weights.checkpoint,
        device=dev,
        force_preprocess_cfg=weights.preprocess or None,
        **kwargs,
    )
    tokenizer = open_clip.get_tokenizer(arch)
    return Encoder(model, tokenizer, arch=arch, weights=weights, device=dev, batch_size=batch_size)


def load_encoder(cfg: ModelConfig | Profile, device: str | None = None) -> Encoder:
    """The one way notebooks get a model: from a profile (or its ``model`` section).

    With a whole :class:`~vtr.config.Profile`, ``pretrained: vtr-tiny`` builds (once, then caches)
    the tiny model's checkpoint from the profile's sample world and loads it as a local file.
    """
    from vtr.config import Profile

    if isinstance(cfg, Profile):
        model_cfg, device = cfg.model, device or cfg.device
        pretrained = model_cfg.pretrained
        if pretrained == TINY_TAG:
            from vtr.models.tiny import SELF_PRETRAINED_ARCHS, ensure_tiny_checkpoint

            if model_cfg.arch not in SELF_PRETRAINED_ARCHS:
                raise ValueError(
                    f"model.pretrained={TINY_TAG!r} needs model.arch in {list(SELF_PRETRAINED_ARCHS)}, "
                    f"not {model_cfg.arch!r}"
                )
            pretrained = str(ensure_tiny_checkpoint(cfg, arch=model_cfg.arch))
    else:
        model_cfg, pretrained = cfg, cfg.pretrained
    return create_encoder(
        model_cfg.arch, pretrained, device=device or "auto", batch_size=model_cfg.batch_size
    )
