"""Event retrieval: the frames of a video that match a text query, one at a time or as a resumable batch.

    hit = retrieve_event("cooking.mp4", "chopping vegetables", top_k=5)
    hit.frames, hit.times, hit.scores          # best first: frame numbers, seconds, cosine scores

    results = batch_retrieve_events("queries.jsonl", "results.jsonl", top_k=8)
    # queries.jsonl:  {"video_path": "soccer.mp4", "query": "player kicking ball"}   one per line
    # results.jsonl:  {"video_path", "query", "frames", "times", "scores", "inference_time", "status", ...}

A video is sampled at ``n_frames`` frames (default :data:`EVENT_FRAMES`, seed 001's
``num_segments``) with the profile's strategy and size; frames and query are embedded by the
profile's encoder and ranked by cosine similarity. Frame embeddings come from the shared embedding
cache (:func:`vtr.embeddings.embed_videos`), so several queries on one video decode it once.

The batch form writes ``results.jsonl`` atomically after every item; a rerun keeps the items that
succeeded with the same video content, query and settings and does the rest again. A video that
cannot be read gives ``status: "failed"`` and its ``error``, and the batch goes on.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vtr import video
from vtr.atomic import write_text
from vtr.config import Profile
from vtr.data.manifest import ClipRecord, ManifestError, iter_jsonl
from vtr.embeddings import default_cache_dir, embed_videos
from vtr.extract.engines import Sampling, frame_positions
from vtr.keys import run_key
from vtr.models.encoders import Encoder

#: Frames sampled per video for event retrieval (seed 001's ``num_segments``).
EVENT_FRAMES = 32


@dataclass
class EventResult:
    """The ``top_k`` frames of ``video_path`` for ``query``, best first."""

    video_path: str
    query: str
    frames: list[int]  # frame numbers in the file (presentation order)
    times: list[float]  # seconds from the first frame
    scores: list[float]  # cosine similarity of frame and query embeddings


class _Retriever:
    """The encoder and sampling shared by the items of a batch."""

    def __init__(self, cfg: Profile, encoder: Encoder | None, n_frames: int) -> None:
        from vtr.extract.api import make_encoder

        self.cfg = cfg
        self.encoder = encoder or make_encoder(cfg)
        size = self.encoder.decode_size(cfg.video.size)
        self.sampling = Sampling(n_frames=n_frames, strategy=cfg.video.strategy, size=size, seed=cfg.seed)
        self.cache_dir = default_cache_dir(cfg)
        self._frames: dict[str, np.ndarray] = {}  # memo when the profile turns the cache off

    def settings_key(self) -> str:
        return run_key(self.encoder.identity(), self.sampling.__dict__, video.CACHE_VERSION)

    def frame_embeddings(self, path: str) -> np.ndarray:
        if path in self._frames:
            return self._frames[path]
        record = ClipRecord(id="video", video=path, captions=[], split="test")
        emb = embed_videos(
            self.encoder,
            [record],
            "/",
            n_frames=self.sampling.n_frames,
            strategy=self.sampling.strategy,
            size=self.sampling.size,
            seed=self.sampling.seed,
            cache_dir=self.cache_dir,
            workers=0,
            progress=False,
        )
        if not emb.ids:
            reason = emb.errors.get("video", f"{path}: no embedding")
            raise video.VideoDecodeError(path, reason.removeprefix(f"{path}: "))
        if self.cache_dir is None:
            self._frames[path] = emb.frames[0]
        return emb.frames[0]

    def retrieve(self, path: str, query: str, top_k: int) -> EventResult:
        if top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}")
        frames = self.frame_embeddings(path)
        if len(frames) != self.sampling.n_frames:
            raise ValueError(f"{self.encoder.arch} embeds whole clips, not frames: no event retrieval")
        scores = frames @ self.encoder.encode_text([query])[0]
        index, seconds = frame_positions(path, self.sampling, None, None)
        if index is None:
            raise video.VideoDecodeError(
                path, f"strategy {self.sampling.strategy!r} gives no frame positions"
            )
        # Frames repeat in clips shorter than n_frames: rank each frame once.
        best: dict[int, tuple[float, float]] = {}
        for i, s, t in zip(index.tolist(), scores.tolist(), seconds.tolist(), strict=True):
            best[i] = max(best.get(i, (-np.inf, t)), (s, t))
        ranked = sorted(best.items(), key=lambda item: -item[1][0])[:top_k]
        return EventResult(
            video_path=path,
            query=query,
            frames=[i for i, _ in ranked],
            times=[round(t, 4) for _, (_, t) in ranked],
            scores=[round(s, 6) for _, (s, _) in ranked],
        )


def _cfg(profile: str | os.PathLike[str] | Profile, overrides: dict[str, Any] | None) -> Profile:
    from vtr.extract.api import _profile

    return _profile(profile, overrides)


def retrieve_event(
    video_path: str | os.PathLike[str],
    query: str,
    top_k: int = 5,
    *,
    n_frames: int = EVENT_FRAMES,
    profile: str | os.PathLike[str] | Profile = "sample",
    overrides: dict[str, Any] | None = None,
    encoder: Encoder | None = None,
) -> EventResult:
    """The ``top_k`` of ``n_frames`` sampled frames of ``video_path`` that best match ``query``.

    Raises:
        vtr.video.VideoDecodeError: the video is missing or cannot be decoded.
        ValueError: ``top_k`` < 1, or the encoder embeds whole clips (ViCLIP) and has no frames.
    """
    retriever = _Retriever(_cfg(profile, overrides), encoder, n_frames)
    return retriever.retrieve(os.fspath(Path(video_path).resolve()), query, top_k)


def read_queries(path: str | os.PathLike[str]) -> list[dict[str, str]]:
    """``{video_path, query}`` items of a jsonl file; relative paths are against the file's folder.

    Raises:
        ManifestError: a line that is not JSON or lacks a non-empty ``video_path`` or ``query``.
    """
    base = Path(path).resolve().parent
    items = []
    for where, raw in iter_jsonl(path):
        for name in ("video_path", "query"):
            if not isinstance(raw.get(name), str) or not raw[name].strip():
                raise ManifestError(f"{where}: field {name!r} must be a non-empty string")
        video_path = Path(raw["video_path"])
        items.append({"video_path": os.fspath(video_path if video_path.is_absolute() else base / video_path),
                      "query": raw["query"]})  # fmt: skip
    return items


def batch_retrieve_events(
    queries: str | os.PathLike[str] | Iterable[dict[str, str]],
    output: str | os.PathLike[str],
    top_k: int = 5,
    *,
    n_frames: int = EVENT_FRAMES,
    profile: str | os.PathLike[str] | Profile = "sample",
    overrides: dict[str, Any] | None = None,
    encoder: Encoder | None = None,
) -> list[dict[str, Any]]:
    """:func:`retrieve_event` for each ``{video_path, query}`` item, written to ``output`` (jsonl).

    ``queries`` is a jsonl path (:func:`read_queries`) or the items themselves. Each result holds
    the item's fields, ``frames``, ``times``, ``scores``, ``inference_time`` (seconds),
    ``status`` (``"success"`` or ``"failed"``), ``error`` and ``key``; results are in input order.
    """
    items = read_queries(queries) if isinstance(queries, (str, os.PathLike)) else list(queries)
    retriever = _Retriever(_cfg(profile, overrides), encoder, n_frames)
    settings = retriever.settings_key()
    earlier = _read_results(Path(output))
    results: list[dict[str, Any]] = []
    for item in items:
        path = os.fspath(Path(item["video_path"]).resolve())
        key = _item_key(settings, path, item["query"], top_k)
        old = earlier.get(key) if key else None
        if old is not None and old.get("status") == "success":
            results.append(old)
        else:
            results.append(_one(retriever, {**item, "video_path": path}, key, top_k))
        _write_results(Path(output), results)
    return results


def _item_key(settings: str, path: str, query: str, top_k: int) -> str | None:
    try:
        return run_key(settings, video.content_fingerprint(path), query, top_k)
    except OSError:
        return None  # a missing file is never reused; it is tried again on the next run


def _one(retriever: _Retriever, item: dict[str, str], key: str | None, top_k: int) -> dict[str, Any]:
    start = time.perf_counter()
    try:
        hit = asdict(retriever.retrieve(item["video_path"], item["query"], top_k))
        status, error = "success", None
    except (video.VideoDecodeError, ValueError) as err:
        hit, status, error = {"frames": [], "times": [], "scores": []}, "failed", str(err)
    return {
        **item,
        **hit,
        "inference_time": round(time.perf_counter() - start, 4),
        "status": status,
        "error": error,
        "key": key,
    }


def _read_results(path: Path) -> dict[str, dict[str, Any]]:
    if not path.is_file():
        return {}
    try:
        return {raw["key"]: raw for _, raw in iter_jsonl(path) if raw.get("key")}
    except ManifestError:
        return {}  # a damaged results file is redone, not trusted


def _write_results(path: Path, results: Sequence[dict[str, Any]]) -> None:
    write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in results))
