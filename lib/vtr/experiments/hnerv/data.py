"""Stage 2 of the HNeRV study: one video cut into patches, each with its CLIP embedding, cached.

:func:`prepare_video` decodes ``hnerv.video`` (Big Buck Bunny by default), centre-crops and resizes
it, cuts it into the ``hnerv.grid`` of patches and embeds every patch with the profile's encoder.
The result is cached under ``<data_dir>/cache/hnerv/`` (:func:`vtr.keys.cache_root`) by a
:func:`vtr.keys.run_key` of the video's content, the preparation fields and the encoder.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from vtr.atomic import atomic_path
from vtr.keys import cache_root, run_key
from vtr.paths import resolve

if TYPE_CHECKING:
    from vtr.config import HnervConfig
    from vtr.models.encoders import Encoder

# Bump when data preparation or training changes, so cached data and runs are rebuilt.
STUDY_VERSION = 3  # 2: held-out curves of content runs from interpolated embeddings; 3: seeded init
CACHE_KIND = "hnerv"  # <data_dir>/cache/hnerv holds data-<key>.npz and runs/<run>-<key>/
# The preparation fields of the hnerv section: everything else there shapes training, not the data.
DATA_FIELDS = ("video", "max_frames", "crop", "resize", "grid")


@dataclass
class PatchData:
    """One video cut into a grid of patches, with a CLIP embedding per patch.

    ``frames`` are the training-resolution frames (after crop and resize); ``targets[f, p]`` is the
    unit-length CLIP embedding of patch ``p`` (row-major in the grid) of frame ``f``, computed from
    the *cropped full-resolution* frame, so the target does not depend on the training resolution.
    """

    frames: np.ndarray  # (F, H, W, 3) uint8
    targets: np.ndarray  # (F, P, D) float32
    grid: tuple[int, int]
    source: str
    key: str  # identifies the video, the preparation and the encoder (cache keys build on it)

    def __post_init__(self) -> None:
        rows, cols = self.grid
        n, h, w, _ = self.frames.shape
        if h % rows or w % cols:
            raise ValueError(f"frames of {h}x{w} do not split into a {rows}x{cols} grid of equal patches")
        if self.targets.shape[:2] != (n, rows * cols):
            raise ValueError(f"targets {self.targets.shape} do not match {n} frames x {rows * cols} patches")

    @property
    def n_frames(self) -> int:
        return len(self.frames)

    @property
    def n_patches(self) -> int:
        return self.grid[0] * self.grid[1]

    @property
    def patch_hw(self) -> tuple[int, int]:
        return self.frames.shape[1] // self.grid[0], self.frames.shape[2] // self.grid[1]

    def patches(self) -> np.ndarray:
        """(F, P, ph, pw, 3) uint8, patches in row-major grid order."""
        return to_patches(self.frames, self.grid)

    def coords(self) -> np.ndarray:
        """(F, P, 3) float32 normalised (t, x, y): t = f / F (HNeRV's ``norm_idx``), x, y = patch centre."""
        rows, cols = self.grid
        t = np.arange(self.n_frames, dtype=np.float32) / self.n_frames
        r, c = np.divmod(np.arange(self.n_patches), cols)
        xy = np.stack([(c + 0.5) / cols, (r + 0.5) / rows], axis=1).astype(np.float32)
        out = np.empty((self.n_frames, self.n_patches, 3), dtype=np.float32)
        out[..., 0] = t[:, None]
        out[..., 1:] = xy[None]
        return out


def to_patches(frames: np.ndarray, grid: Sequence[int]) -> np.ndarray:
    """(F, H, W, C) → (F, rows·cols, H/rows, W/cols, C), row-major."""
    rows, cols = grid
    n, h, w, ch = frames.shape
    ph, pw = h // rows, w // cols
    return (
        frames.reshape(n, rows, ph, cols, pw, ch)
        .transpose(0, 1, 3, 2, 4, 5)
        .reshape(n, rows * cols, ph, pw, ch)
    )


def from_patches(patches: np.ndarray | torch.Tensor, grid: Sequence[int]) -> Any:
    """(F, rows·cols, ph, pw, C) → (F, rows·ph, cols·pw, C): the inverse of :func:`to_patches`."""
    rows, cols = grid
    n, _, ph, pw, ch = patches.shape
    out = patches.reshape(n, rows, cols, ph, pw, ch)
    out = out.transpose(0, 1, 3, 2, 4, 5) if isinstance(out, np.ndarray) else out.permute(0, 1, 3, 2, 4, 5)
    return out.reshape(n, rows * ph, cols * pw, ch)


def _video_path(name: str) -> Path:
    from vtr.data.real_videos import real_videos

    videos = real_videos()
    if name in videos:
        return videos[name]
    path = resolve(name)
    if not path.is_file():
        raise FileNotFoundError(
            f"hnerv.video={name!r} is neither a known real video {sorted(videos)} nor a file"
        )
    return path


def _crop_resize(
    frames: np.ndarray, crop: Sequence[int], resize: Sequence[int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 (F, H, W, 3) → (cropped, resized) uint8 tensors (F, 3, h, w); empty ``resize`` keeps the crop."""
    x = torch.from_numpy(frames).permute(0, 3, 1, 2)
    h, w = x.shape[-2:]
    if crop:
        ch, cw = (int(v) for v in crop)
        if ch > h or cw > w:
            raise ValueError(f"hnerv.crop {ch}x{cw} is larger than the {h}x{w} video")
        x = TF.center_crop(x, [ch, cw])
    small = x
    if resize:
        rh, rw = (int(v) for v in resize)
        small = TF.resize(x, [rh, rw], interpolation=InterpolationMode.BICUBIC, antialias=True)
    return x, small


def _patch_targets(cropped: torch.Tensor, grid: tuple[int, int], encoder: Encoder) -> np.ndarray:
    """(F, P, D) CLIP embeddings of the grid's patches of uint8 (F, 3, H, W) frames.

    When the patches are larger than the encoder's input, the frames are first resized so that a
    patch's shorter side matches it: one resize of whole frames instead of one per patch, and the
    encoder then sees the same pixels its own resize would give it (to rounding).
    """
    rows, cols = grid
    ph, pw = cropped.shape[-2] // rows, cropped.shape[-1] // cols
    side = min(encoder.image_size)
    scale = side / min(ph, pw)
    if scale < 1:
        size = [rows * max(1, round(ph * scale)), cols * max(1, round(pw * scale))]
        cropped = TF.resize(cropped, size, interpolation=InterpolationMode.BICUBIC, antialias=True)
    patches = to_patches(cropped.permute(0, 2, 3, 1).numpy(), grid)
    n, p = patches.shape[:2]
    return (
        encoder.encode_frames(patches.reshape(n * p, *patches.shape[2:])).reshape(n, p, -1).astype(np.float32)
    )


def data_key(h: HnervConfig, encoder: Encoder) -> str:
    """The :func:`vtr.keys.run_key` of the prepared data: the video's content, the preparation
    fields (:data:`DATA_FIELDS`), the encoder's identity and :data:`STUDY_VERSION`."""
    from vtr.video import content_fingerprint

    fields = {name: getattr(h, name) for name in DATA_FIELDS}
    fields["video"] = content_fingerprint(_video_path(h.video))
    return run_key(STUDY_VERSION, fields, encoder.identity())


def prepare_video(h: HnervConfig, encoder: Encoder, *, data_dir: str | Path, cache: bool = True) -> PatchData:
    """Decode ``h.video``, centre-crop, resize, cut into the grid and embed every patch.

    ``h`` is the profile's ``hnerv`` section. Cached as ``<data_dir>/cache/hnerv/data-<key>.npz``
    (atomic), keyed by :func:`data_key`.
    """
    from vtr.video import probe, sample_frames

    key = data_key(h, encoder)
    target = cache_root(data_dir, CACHE_KIND) / f"data-{key}.npz"
    grid = (int(h.grid[0]), int(h.grid[1]))
    if cache and target.is_file():
        with np.load(target, allow_pickle=False) as stored:
            return PatchData(stored["frames"], stored["targets"], grid, h.video, key)
    path = _video_path(h.video)
    info = probe(path)
    n = min(info.frame_count, h.max_frames) if h.max_frames > 0 else info.frame_count
    # "uniform" with n samples of n frames takes every frame: index (2k + 1)·n // 2n = k
    full = sample_frames(path, n, "uniform", size=None, end=n / info.fps if n < info.frame_count else None)
    cropped, small = _crop_resize(full, h.crop, h.resize)
    del full
    if small.shape[-2] % grid[0] or small.shape[-1] % grid[1]:
        raise ValueError(f"frames of {tuple(small.shape[-2:])} do not split into a {grid[0]}x{grid[1]} grid")
    targets = _patch_targets(cropped, grid, encoder)
    data = PatchData(
        small.permute(0, 2, 3, 1).contiguous().numpy(),
        targets,
        grid,
        h.video,
        key,
    )
    if cache:
        with atomic_path(target) as tmp, tmp.open("wb") as f:
            np.savez(f, frames=data.frames, targets=data.targets)
    return data
