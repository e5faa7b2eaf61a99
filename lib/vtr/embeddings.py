"""Batch video and text embedding with a content-keyed cache shared by all notebooks.

    emb = embed_videos(encoder, records, base_dir, n_frames=8, strategy="uniform", size=64,
                       cache_dir=default_cache_dir(cfg))
    emb.ids, emb.embeddings          # the videos that decoded: (M,) ids and (M, D) video embeddings
    emb.frames                       # (M, T, D) per-frame embeddings (temporal heads train on these)
                                     # (M, 1, D) for a video encoder (ViCLIP): its clip embedding
    emb.errors                       # {record id: "path: reason"} for videos that could not be read
    texts = embed_texts(encoder, captions, cache_dir=default_cache_dir(cfg))    # (N, D)

Videos are decoded (``vtr.video.sample_frames``) in a thread pool that runs ahead of the encoder,
so decoding overlaps encoding; a bad video is recorded and the rest of the batch goes on.

Cache layout under ``cache_dir``::

    videos/index.parquet             one row per (video, settings): key, id, path, npy, error, ...
    videos/<k[:2]>/<key>.npy         (T, D) float32 frame embeddings of one video
    texts/<model>/index.parquet      text hash -> (shard, row)
    texts/<model>/shard-<hash>.npy   (n, D) float32 caption embeddings

A video's key hashes the model's identity (architecture, weights tag or checkpoint hash,
preprocessing, precision), the sampling strategy, number of frames, frame size, seed, the
``start``/``end`` window and the file's content fingerprint, so editing a video, or changing any
setting, misses the cache instead of returning stale embeddings. Content errors (invalid data, no
video stream, a truncated file) are cached too (keyed the same way), so a corrupt file is not
decoded again on every run; failures of the machine rather than the file (an I/O error, a full
disk, a permission, memory: ``VideoDecodeError.transient``) are reported for the run and retried
on the next one. All files are written
atomically; the ``.npy`` files are the source of truth, the index records errors and provenance.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from vtr import video
from vtr.atomic import atomic_path
from vtr.data.manifest import ClipRecord
from vtr.keys import cache_root, run_key
from vtr.models.encoders import Encoder, pool_frames
from vtr.progress import show_progress

if TYPE_CHECKING:
    from vtr.config import Profile

# Bump when what is stored changes, so old entries are not reused.
CACHE_VERSION = 1
# Flush the video index after this many new entries, so an interrupted run keeps its errors too.
INDEX_FLUSH_EVERY = 256
_INDEX_COLUMNS = [
    "key",
    "id",
    "path",
    "npy",
    "error",
    "n_frames",
    "dim",
    "arch",
    "weights",
    "strategy",
    "size",
    "seed",
    "start",
    "end",
    "fingerprint",
    "created",
]


def default_cache_dir(cfg: Profile) -> Path | None:
    """``<data_dir>/cache/embeddings`` (:func:`vtr.keys.cache_root`), or None when the profile turns
    caching off (``video.cache``)."""
    return cache_root(cfg.data_dir, "embeddings") if cfg.video.cache else None


def _digest(obj: Any, size: int = 16) -> str:
    """The cache key of ``obj``: :func:`vtr.keys.run_key`, so every cached thing is named one way."""
    return run_key(obj, size=size)


def model_key(encoder: Encoder) -> str:
    """A short hash of everything about the encoder that decides its embeddings."""
    return _digest({"version": CACHE_VERSION, "model": encoder.identity()}, size=8)


# ----------------------------------------------------------------------------------- results


@dataclass
class VideoEmbeddings:
    """The outcome of :func:`embed_videos`, aligned with the records that were asked for."""

    ids: list[str]  # the records that decoded, in input order
    frames: np.ndarray  # (M, T, D) float32, L2-normalised per frame
    errors: dict[str, str]  # record id -> message naming the file and the reason
    requested: list[str]  # every record id, in input order
    cache_hits: int = 0
    keys: list[str] = field(default_factory=list)  # cache keys of ``ids`` (empty without a cache)
    # ids in ``errors`` whose failure is the machine's, not the file's (a missing file, an OS error):
    # a caller that remembers failures should try these again on its next run
    retryable: list[str] = field(default_factory=list)

    @cached_property
    def embeddings(self) -> np.ndarray:
        """(M, D) video embeddings: the mean of the frame embeddings, re-normalised."""
        if len(self.ids) == 0:
            return np.zeros((0, self.frames.shape[-1] if self.frames.ndim == 3 else 0), dtype=np.float32)
        return pool_frames(self.frames)

    @property
    def mask(self) -> np.ndarray:
        """(N,) bool over ``requested``: True where the video decoded."""
        ok = set(self.ids)
        return np.array([i in ok for i in self.requested], dtype=bool)

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, ids: Sequence[str]) -> VideoEmbeddings:
        """The embeddings of ``ids`` (in that order); unknown or failed ids raise KeyError."""
        position = {v: i for i, v in enumerate(self.ids)}
        missing = [i for i in ids if i not in position]
        if missing:
            raise KeyError(f"no embedding for {len(missing)} id(s), e.g. {missing[0]!r}")
        rows = [position[i] for i in ids]
        keys = [self.keys[r] for r in rows] if self.keys else []
        errors = {i: e for i, e in self.errors.items() if i in set(ids)}
        return VideoEmbeddings(list(ids), self.frames[rows], errors, list(ids), keys=keys)


# -------------------------------------------------------------------------------- video index


class _VideoIndex:
    """The parquet index of the video cache: read once, appended to, written back atomically."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.path = root / "index.parquet"
        self.rows: dict[str, dict[str, Any]] = {}
        if self.path.is_file():
            try:
                table = pd.read_parquet(self.path)
                self.rows = {r["key"]: r for r in table.to_dict("records")}
            except (OSError, ValueError):
                self.rows = {}  # an unreadable index is rebuilt; the .npy files still hold the embeddings
        self.pending = 0

    def npy(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.npy"

    def add(self, row: dict[str, Any]) -> None:
        self.rows[row["key"]] = row
        self.pending += 1
        if self.pending >= INDEX_FLUSH_EVERY:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        table = pd.DataFrame(list(self.rows.values()), columns=_INDEX_COLUMNS)
        with atomic_path(self.path) as tmp:
            table.to_parquet(tmp, index=False)
        self.pending = 0


# ---------------------------------------------------------------------------------- decoding


@dataclass
class _Job:
    record: ClipRecord
    path: Path
    key: str | None
    fingerprint: str | None


def _decode(job: _Job, n_frames: int, strategy: str, size: int, seed: int) -> np.ndarray | Exception:
    try:
        return video.sample_frames(
            job.path, n_frames, strategy, size, seed, start=job.record.start, end=job.record.end
        )
    except video.VideoDecodeError as err:
        return err
    except (OSError, ValueError, RuntimeError) as err:  # anything else a bad file can raise
        # vtr.video did not say the file is to blame, so this is not remembered as the file's fault.
        return video.VideoDecodeError(job.path, f"{type(err).__name__}: {err}", transient=True)


def _decoded(
    jobs: Sequence[_Job], workers: int, decode: Any
) -> Iterator[tuple[_Job, np.ndarray | Exception]]:
    """Yield (job, frames or error) in order; with ``workers`` > 0, threads decode ahead of the consumer."""
    if workers <= 0:
        for job in jobs:
            yield job, decode(job)
        return
    lookahead = max(2, 4 * workers)  # bounded, so decoded frames never pile up in memory
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="vtr-decode") as pool:
        pending: list[tuple[_Job, Future]] = []
        queue = iter(jobs)
        for job in queue:
            pending.append((job, pool.submit(decode, job)))
            if len(pending) >= lookahead:
                break
        while pending:
            job, future = pending.pop(0)
            nxt = next(queue, None)
            if nxt is not None:
                pending.append((nxt, pool.submit(decode, nxt)))
            yield job, future.result()


def embed_videos(
    encoder: Encoder,
    records: Sequence[ClipRecord],
    base_dir: str | os.PathLike[str],
    n_frames: int,
    strategy: str = "uniform",
    size: int | None = None,
    seed: int = 0,
    cache_dir: str | os.PathLike[str] | None = None,
    workers: int = 2,
    progress: bool = True,
) -> VideoEmbeddings:
    """Embed each record's video (``n_frames`` frames sampled by ``strategy`` at ``size`` pixels).

    Relative ``record.video`` paths are resolved against ``base_dir`` and ``record.start`` /
    ``record.end`` restrict sampling to that window. ``size=None`` decodes at the encoder's input
    size; a video encoder that squashes whole frames (ViCLIP) decodes at native size whatever
    ``size`` says (:meth:`~vtr.models.encoders.Encoder.decode_size`). ``cache_dir`` (None: no cache) holds frame embeddings keyed as described in the module
    docstring. ``workers`` decoding threads run ahead of the encoder (0 decodes in the calling
    thread, one video after another). A video that cannot be decoded is recorded in ``errors``
    and never stops the batch.
    """
    size = encoder.decode_size(size)
    ids = [r.id for r in records]
    if len(set(ids)) != len(ids):
        raise ValueError("record ids must be unique")
    index = _VideoIndex(Path(cache_dir) / "videos") if cache_dir is not None else None
    identity = encoder.identity() if index is not None else {}
    settings = {"strategy": strategy, "n_frames": n_frames, "size": size, "seed": seed}

    results: dict[str, np.ndarray] = {}
    errors: dict[str, str] = {}
    retryable: set[str] = set()
    keys: dict[str, str] = {}
    todo: list[_Job] = []
    hits = 0
    for record in records:
        path = record.video_path(base_dir)
        if index is None:
            todo.append(_Job(record, path, None, None))
            continue
        try:
            fingerprint = video.content_fingerprint(path)
        except OSError as err:
            # Missing or unreadable files are reported but not cached: they may appear later.
            errors[record.id] = str(video.VideoDecodeError(path, f"cannot read file ({err.strerror or err})"))
            retryable.add(record.id)
            continue
        key = _digest(
            {
                "version": CACHE_VERSION,
                "decoder": video.CACHE_VERSION,
                "model": identity,
                **settings,
                "window": [record.start, record.end],
                "content": fingerprint,
            }
        )
        keys[record.id] = key
        cached = _load_cached(index, key)
        if cached is None:
            todo.append(_Job(record, path, key, fingerprint))
            continue
        hits += 1
        if isinstance(cached, str):
            errors[record.id] = cached
        else:
            results[record.id] = cached

    def decode(job: _Job) -> np.ndarray | Exception:
        return _decode(job, n_frames, strategy, size, seed)

    batch: list[tuple[_Job, np.ndarray]] = []
    batch_frames = 0
    bar = tqdm(
        total=len(todo),
        desc=f"embed videos ({encoder.arch})",
        unit="video",
        disable=not show_progress(progress),
    )

    def flush_batch() -> None:
        nonlocal batch, batch_frames
        if not batch:
            return
        rows = encoder.encode_video_rows([frames for _, frames in batch])
        for (job, _), part in zip(batch, rows, strict=True):
            results[job.record.id] = part
            if index is not None and job.key is not None:
                with atomic_path(index.npy(job.key)) as tmp, tmp.open("wb") as fh:
                    np.save(fh, part)
                index.add(
                    _row(job, settings, identity, npy=f"{job.key[:2]}/{job.key}.npy", dim=part.shape[1])
                )
        bar.update(len(batch))
        batch, batch_frames = [], 0

    try:
        for job, outcome in _decoded(todo, workers, decode):
            if isinstance(outcome, Exception):
                if _is_content_error(outcome):
                    errors[job.record.id] = str(outcome)
                    if index is not None and job.key is not None:
                        index.add(_row(job, settings, identity, error=str(outcome)))
                else:
                    errors[job.record.id] = f"{outcome} (not cached: retried on the next run)"
                    retryable.add(job.record.id)
                bar.update(1)
                continue
            batch.append((job, outcome))
            batch_frames += len(outcome)
            if batch_frames >= encoder.batch_size:
                flush_batch()
        flush_batch()
    finally:
        bar.close()
        if index is not None:
            index.flush()

    done = [i for i in ids if i in results]
    dim = encoder.output_dim
    frames = (
        np.stack([results[i] for i in done])
        if done
        else np.zeros((0, encoder.rows_per_video(n_frames), dim), dtype=np.float32)
    )
    return VideoEmbeddings(
        ids=done,
        frames=frames.astype(np.float32, copy=False),
        errors={i: errors[i] for i in ids if i in errors},
        requested=ids,
        cache_hits=hits,
        keys=[keys[i] for i in done] if index is not None else [],
        retryable=[i for i in ids if i in retryable],
    )


def _is_content_error(err: Exception) -> bool:
    """Whether ``err`` is about the file's bytes, so that decoding it again would fail the same way."""
    return isinstance(err, video.VideoDecodeError) and not err.transient


def _load_cached(index: _VideoIndex, key: str) -> np.ndarray | str | None:
    """The cached frame embeddings, the cached error message, or None for a miss."""
    npy = index.npy(key)
    if npy.is_file():
        try:
            return np.load(npy)
        except (OSError, ValueError):
            return None  # a damaged entry is recomputed and replaced
    row = index.rows.get(key)
    if row is not None and isinstance(row.get("error"), str) and row["error"]:
        return row["error"]
    return None


def _row(
    job: _Job,
    settings: dict[str, Any],
    identity: dict[str, Any],
    *,
    npy: str | None = None,
    dim: int | None = None,
    error: str | None = None,
) -> dict[str, Any]:
    return {
        "key": job.key,
        "id": job.record.id,
        "path": os.fspath(job.path),
        "npy": npy,
        "error": error,
        "n_frames": settings["n_frames"],
        "dim": dim,
        "arch": identity.get("arch"),
        "weights": identity.get("weights"),
        "strategy": settings["strategy"],
        "size": settings["size"],
        "seed": settings["seed"],
        "start": job.record.start,
        "end": job.record.end,
        "fingerprint": job.fingerprint,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def embed_profile_videos(
    cfg: Profile,
    encoder: Encoder,
    records: Sequence[ClipRecord],
    base_dir: str | os.PathLike[str],
    *,
    workers: int = 2,
    progress: bool = True,
) -> VideoEmbeddings:
    """:func:`embed_videos` with the profile's frame sampling (``video``), seed and cache folder."""
    return embed_videos(
        encoder,
        records,
        base_dir,
        n_frames=cfg.video.n_frames,
        strategy=cfg.video.strategy,
        size=cfg.video.size,
        seed=cfg.seed,
        cache_dir=default_cache_dir(cfg),
        workers=workers,
        progress=progress,
    )


# ------------------------------------------------------------------------------------- texts


def _text_hash(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()


def embed_texts(
    encoder: Encoder,
    captions: Sequence[str],
    cache_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
) -> np.ndarray:
    """(N, D) float32 L2-normalised caption embeddings, cached per model and caption text.

    Only captions the cache has not seen with this model are encoded; they are stored as a new
    shard, so different caption lists (a split, all captions, queries) share one store.
    """
    captions = list(captions)
    if any(not isinstance(c, str) for c in captions):
        bad = next(i for i, c in enumerate(captions) if not isinstance(c, str))
        raise TypeError(f"caption {bad} is {type(captions[bad]).__name__}, not a string")
    if cache_dir is None:
        return _encode_texts(encoder, captions, progress)
    root = Path(cache_dir) / "texts" / model_key(encoder)
    index_path = root / "index.parquet"
    located: dict[str, tuple[str, int]] = {}
    if index_path.is_file():
        try:
            table = pd.read_parquet(index_path)
            located = {
                h: (s, int(r)) for h, s, r in zip(table["hash"], table["shard"], table["row"], strict=True)
            }
        except (OSError, ValueError, KeyError):
            located = {}
    hashes = [_text_hash(c) for c in captions]
    missing = list(
        dict.fromkeys(h for h in hashes if h not in located or not (root / located[h][0]).is_file())
    )
    fresh: dict[str, np.ndarray] = {}
    if missing:
        text_of = dict(zip(hashes, captions, strict=True))
        encoded = _encode_texts(encoder, [text_of[h] for h in missing], progress)
        shard = f"shard-{_digest(missing)}.npy"
        with atomic_path(root / shard) as tmp, tmp.open("wb") as fh:
            np.save(fh, encoded)
        for row, h in enumerate(missing):
            located[h] = (shard, row)
            fresh[h] = encoded[row]
        table = pd.DataFrame(
            {
                "hash": list(located),
                "shard": [s for s, _ in located.values()],
                "row": [r for _, r in located.values()],
            }
        )
        with atomic_path(index_path) as tmp:
            table.to_parquet(tmp, index=False)
    shards: dict[str, np.ndarray] = {}
    out = np.zeros((len(captions), encoder.output_dim), dtype=np.float32)
    for i, h in enumerate(hashes):
        if h in fresh:
            out[i] = fresh[h]
            continue
        shard, row = located[h]
        if shard not in shards:
            shards[shard] = np.load(root / shard, mmap_mode="r")
        out[i] = shards[shard][row]
    return out


def _encode_texts(encoder: Encoder, captions: list[str], progress: bool) -> np.ndarray:
    step = max(encoder.batch_size, 256)  # text is cheap; bigger batches, fewer tqdm updates
    parts = [
        encoder.encode_text(captions[i : i + step])
        for i in tqdm(
            range(0, len(captions), step),
            desc="embed texts",
            disable=not show_progress(progress) or len(captions) <= step,
        )
    ]
    return np.concatenate(parts) if parts else np.zeros((0, encoder.output_dim), dtype=np.float32)
