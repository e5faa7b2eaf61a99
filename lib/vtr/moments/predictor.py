"""One predictor API for every moment model, as lighthouse offers one per model::

    predictor = MomentPredictor.from_checkpoint("runs/moments/temporal/model.pt")
    video = predictor.encode_video("long0003.mp4")
    result = predictor.predict("a red square moves left", video)
    result.windows   # [(start_s, end_s, score), ...] best first
    result.saliency  # one score per clip

The device falls back CUDA → MPS → CPU (:func:`vtr.runtime.resolve_device`), with mixed precision on
CUDA. Videos longer than the model's window are scored in overlapping windows of ``window`` clips
(stride half a window); per-clip saliency is averaged where windows overlap and the windows of all
parts are pooled and de-duplicated by non-maximum suppression.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from vtr.atomic import atomic_path
from vtr.models.encoders import Encoder, create_encoder
from vtr.moments.features import QueryFeatures, VideoFeatures, query_features, video_clip_features
from vtr.moments.models import create_moment_model, predict_windows
from vtr.moments.training import MomentSample, collate
from vtr.runtime import resolve_device

CHECKPOINT_FORMAT = "vtr-moments/1"


@dataclass
class MomentResult:
    """Ranked windows (seconds) and per-clip saliency of one query on one video."""

    query: str
    windows: list[tuple[float, float, float]]
    saliency: np.ndarray
    clip_len: float


def nms(windows: list[tuple[float, float, float]], iou: float = 0.7) -> list[tuple[float, float, float]]:
    """Drop windows overlapping a better one by more than ``iou`` (temporal IoU), best first."""
    kept: list[tuple[float, float, float]] = []
    for start, end, score in sorted(windows, key=lambda w: -w[2]):
        if all(_iou((start, end), (s, e)) <= iou for s, e, _ in kept):
            kept.append((start, end, score))
    return kept


def _iou(a: tuple[float, float], b: tuple[float, float]) -> float:
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    union = (a[1] - a[0]) + (b[1] - b[0]) - inter
    return inter / union if union > 0 else 0.0


class MomentPredictor:
    """An encoder (clip and query features) and a moment model (see :mod:`vtr.moments.models`)."""

    def __init__(
        self,
        encoder: Encoder,
        model: nn.Module,
        *,
        model_name: str,
        model_kwargs: dict[str, Any] | None = None,
        clip_len: float = 2.0,
        frames_per_clip: int = 1,
        window: int | None = None,
        cache_dir: Path | None = None,
    ) -> None:
        self.encoder = encoder
        self.device = encoder.device
        self.model = model.to(self.device).eval()
        self.model_name = model_name
        self.model_kwargs = dict(model_kwargs or {})
        self.clip_len = clip_len
        self.frames_per_clip = frames_per_clip
        self.window = window or getattr(model, "max_clips", None)
        self.cache_dir = cache_dir

    # ------------------------------------------------------------------ checkpoints
    def save(self, path: str | Path) -> Path:
        """Write the model's weights and everything needed to rebuild the predictor, atomically."""
        payload = {
            "format": CHECKPOINT_FORMAT,
            "model": self.model_name,
            "kwargs": self.model_kwargs,
            "state_dict": self.model.state_dict(),
            "clip_len": self.clip_len,
            "frames_per_clip": self.frames_per_clip,
            "encoder": {"arch": self.encoder.arch, "pretrained": self.encoder.weights.checkpoint or ""},
        }
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            torch.save(payload, tmp)
        return path

    @classmethod
    def from_checkpoint(
        cls, path: str | Path, *, encoder: Encoder | None = None, device: str = "auto", **options: Any
    ) -> MomentPredictor:
        """Rebuild a saved predictor; ``encoder`` overrides the one recorded in the checkpoint."""
        payload = torch.load(Path(path), map_location="cpu", weights_only=False)
        if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"{path}: not a vtr moment checkpoint (format {CHECKPOINT_FORMAT!r})")
        dev = resolve_device(device)
        if encoder is None:
            spec = payload["encoder"]
            encoder = create_encoder(spec["arch"], spec["pretrained"], device=dev)
        model = create_moment_model(payload["model"], **payload["kwargs"])
        model.load_state_dict(payload["state_dict"])
        return cls(
            encoder, model, model_name=payload["model"], model_kwargs=payload["kwargs"],
            clip_len=payload["clip_len"], frames_per_clip=payload["frames_per_clip"], **options,
        )  # fmt: skip

    # ------------------------------------------------------------------ inference
    def encode_video(self, path: str | Path) -> VideoFeatures:
        """Per-clip features of the video at ``path`` (cached when the predictor has a cache dir)."""
        return video_clip_features(
            self.encoder, path, self.clip_len, frames_per_clip=self.frames_per_clip, cache_dir=self.cache_dir
        )

    def encode_query(self, query: str) -> QueryFeatures:
        return query_features(self.encoder, query)

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.float16)
        return contextlib.nullcontext()

    def predict(
        self, query: str | QueryFeatures, video: str | Path | VideoFeatures, top_k: int = 10
    ) -> MomentResult:
        """Ranked windows and per-clip saliency of ``query`` in ``video`` (a path or its features)."""
        features = video if isinstance(video, VideoFeatures) else self.encode_video(video)
        q = query if isinstance(query, QueryFeatures) else self.encode_query(query)
        n, window = features.n_clips, self.window or features.n_clips
        starts = list(range(0, max(n - window, 0) + 1, max(window // 2, 1)))
        if starts[-1] + window < n:
            starts.append(n - window)
        saliency, counts, windows = np.zeros(n), np.zeros(n), []
        for start in starts:
            part = _slice(features, start, min(start + window, n))
            batch = collate([MomentSample("query", part, q, [])]).to(self.device)
            with self._autocast():
                ((found, scores),) = predict_windows(self.model, batch, self.clip_len, [part.duration], top_k)
            offset = start * self.clip_len
            windows += [(s + offset, min(e + offset, features.duration), score) for s, e, score in found]
            saliency[start : start + len(scores)] += scores
            counts[start : start + len(scores)] += 1
        return MomentResult(q.text, nms(windows)[:top_k], saliency / np.maximum(counts, 1), self.clip_len)


def _slice(features: VideoFeatures, first: int, stop: int) -> VideoFeatures:
    duration = min(features.duration - first * features.clip_len, (stop - first) * features.clip_len)
    return VideoFeatures(features.path, features.clips[first:stop], features.clip_len, duration)
