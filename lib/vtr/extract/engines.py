"""Engines that turn videos into embedding rows: ``local`` (this process) and ``ray`` (Ray Data).

Both decode and encode with :func:`vtr.embeddings.embed_videos` -- the one embedding path --
so they give the same embeddings; both yield batches of :class:`~vtr.extract.store.ItemResult`
that the caller commits as they come.

* ``local``: decoding threads run ahead of the encoder in this process; frame embeddings go
  through the shared embedding cache (``video.cache`` in the profile), so videos a notebook
  already embedded are not decoded again.
* ``ray``: ``ray.data.from_items(jobs).map_batches(EmbedActor, concurrency=N)``, an actor pool
  whose actors each build the encoder once; one GPU per actor when CUDA is there. Connects to a
  running cluster (``RAY_ADDRESS``, or one started with ``ray.init`` in this process) or starts
  a local one. No cache: the actors may run on machines that do not share this one's disk.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from vtr import video
from vtr.data.manifest import ClipRecord
from vtr.embeddings import VideoEmbeddings, embed_videos
from vtr.extract.store import ItemResult

if TYPE_CHECKING:
    from vtr.config import Profile
    from vtr.models.encoders import Encoder


@dataclass(frozen=True)
class Sampling:
    """How frames are taken from each video (the profile's ``video`` section, ``--frames``)."""

    n_frames: int
    strategy: str
    size: int | None
    seed: int


@dataclass(frozen=True)
class Job:
    """One video to extract and the key its result is stored under."""

    record: ClipRecord
    content_key: str


def frame_positions(
    path: str | os.PathLike[str], sampling: Sampling, start: float | None, end: float | None
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Frame numbers and times (seconds) of the frames ``sampling`` takes, or (None, None).

    Computed from the header (:func:`vtr.video.probe`: frame count and average rate) with the
    same index rule as the decoder (:func:`vtr.video.sample_indices`), so they are exact for
    constant-rate files and the header's estimate otherwise. Strategies that average frames
    (``mean``) have no single frame per row: (None, None), and no frame rows are stored.
    """
    if video.strategy_aggregate(sampling.strategy) is not None:
        return None, None
    try:
        info = video.probe(path)
    except (video.VideoDecodeError, OSError, ValueError):
        return None, None
    fps = info.fps if info.fps > 0 else 1.0
    first = 0 if start is None else min(info.frame_count - 1, int(math.ceil(start * fps - 1e-9)))
    stop = info.frame_count if end is None else min(info.frame_count, int(math.ceil(end * fps - 1e-9)))
    count = max(1, stop - first)
    index = first + video.sample_indices(count, sampling.n_frames, sampling.strategy, sampling.seed)
    return index, (index / fps).astype(np.float64)


def to_results(
    jobs: Sequence[Job], emb: VideoEmbeddings, sampling: Sampling, frame_rows: bool
) -> list[ItemResult]:
    """One :class:`ItemResult` per job from what :func:`embed_videos` returned for them."""
    position = {vid: i for i, vid in enumerate(emb.ids)}
    retry = set(emb.retryable)
    results = []
    for job in jobs:
        rid = job.record.id
        if rid not in position:
            error = emb.errors.get(rid, f"{job.record.video}: no embedding returned")
            results.append(ItemResult(job.record, job.content_key, error=error, retry=rid in retry))
            continue
        index, seconds = (None, None)
        if frame_rows:
            index, seconds = frame_positions(job.record.video, sampling, job.record.start, job.record.end)
        rows = emb.frames[position[rid]]
        results.append(ItemResult(job.record, job.content_key, rows=rows, frame_index=index, time_s=seconds))
    return results


def _chunks(jobs: Sequence[Job], size: int) -> Iterator[Sequence[Job]]:
    for start in range(0, len(jobs), size):
        yield jobs[start : start + size]


def run_local(
    encoder: Encoder,
    jobs: Sequence[Job],
    sampling: Sampling,
    *,
    cache_dir: str | os.PathLike[str] | None,
    workers: int = 2,
    chunk_size: int = 256,
) -> Iterator[list[ItemResult]]:
    """Embed ``jobs`` in this process, ``chunk_size`` videos at a time (one shard each)."""
    frame_rows = encoder.rows_per_video(sampling.n_frames) == sampling.n_frames
    for chunk in _chunks(jobs, chunk_size):
        emb = embed_videos(
            encoder,
            [job.record for job in chunk],
            "/",
            n_frames=sampling.n_frames,
            strategy=sampling.strategy,
            size=sampling.size,
            seed=sampling.seed,
            cache_dir=cache_dir,
            workers=workers,
            progress=False,
        )
        yield to_results(chunk, emb, sampling, frame_rows)


class EmbedActor:
    """A Ray Data actor: builds the encoder once, then embeds batches of jobs (``map_batches``)."""

    def __init__(self, profile: dict[str, Any], sampling: dict[str, Any]) -> None:
        from vtr.config import load_profile
        from vtr.extract.api import make_encoder

        self.encoder = make_encoder(load_profile(profile))
        self.sampling = Sampling(**sampling)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        records = [
            ClipRecord(id=str(i), video=str(v), captions=[], split="test", start=_none(s), end=_none(e))
            for i, v, s, e in zip(
                batch["video_id"], batch["video"], batch["start"], batch["end"], strict=True
            )
        ]
        emb = embed_videos(
            self.encoder,
            records,
            "/",
            n_frames=self.sampling.n_frames,
            strategy=self.sampling.strategy,
            size=self.sampling.size,
            seed=self.sampling.seed,
            cache_dir=None,
            workers=1,
            progress=False,
        )
        rows = self.encoder.rows_per_video(self.sampling.n_frames)
        out = np.zeros((len(records), rows, self.encoder.output_dim), dtype=np.float32)
        position = {vid: i for i, vid in enumerate(emb.ids)}
        for i, record in enumerate(records):
            if record.id in position:
                out[i] = emb.frames[position[record.id]]
        return {
            "video_id": np.asarray([r.id for r in records], dtype=object),
            "rows": out,
            "ok": np.asarray([r.id in position for r in records]),
            "error": np.asarray([emb.errors.get(r.id, "") for r in records], dtype=object),
            "retry": np.asarray([r.id in set(emb.retryable) for r in records]),
        }


def _none(value: Any) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def run_ray(
    cfg: Profile,
    jobs: Sequence[Job],
    sampling: Sampling,
    *,
    concurrency: int = 2,
    batch_size: int = 8,
    chunk_size: int = 256,
    frame_rows: bool = True,
) -> Iterator[list[ItemResult]]:
    """Embed ``jobs`` on Ray Data with ``concurrency`` actors of ``batch_size`` videos per call."""
    import torch

    if not jobs:
        return
    try:
        import ray
    except ImportError:
        raise ValueError("--engine ray needs Ray Data: pip install 'vtr[ray]' (ray[data])") from None
    if not ray.is_initialized():
        lib = str(Path(__file__).resolve().parents[2])  # so workers import this vtr, as the driver does
        paths = os.pathsep.join(p for p in (lib, os.environ.get("PYTHONPATH", "")) if p)
        ray.init(runtime_env={"env_vars": {"PYTHONPATH": paths}}, log_to_driver=False)
    gpus = 1 if cfg.device != "cpu" and torch.cuda.is_available() else 0
    items = [
        {
            "video_id": job.record.id,
            "video": job.record.video,
            "start": math.nan if job.record.start is None else job.record.start,
            "end": math.nan if job.record.end is None else job.record.end,
        }
        for job in jobs
    ]
    dataset = ray.data.from_items(items).map_batches(
        EmbedActor,
        fn_constructor_kwargs={"profile": cfg.to_dict(), "sampling": asdict(sampling)},
        batch_size=batch_size,
        concurrency=concurrency,
        num_gpus=gpus,
        batch_format="numpy",
    )
    by_id = {job.record.id: job for job in jobs}
    for batch in dataset.iter_batches(batch_size=chunk_size, batch_format="numpy"):
        results = []
        for vid, rows, ok, error, retry in zip(
            batch["video_id"], batch["rows"], batch["ok"], batch["error"], batch["retry"], strict=True
        ):
            job = by_id[str(vid)]
            if not ok:
                results.append(ItemResult(job.record, job.content_key, error=str(error), retry=bool(retry)))
                continue
            index, seconds = (None, None)
            if frame_rows:
                index, seconds = frame_positions(job.record.video, sampling, job.record.start, job.record.end)
            results.append(
                ItemResult(
                    job.record, job.content_key, rows=np.asarray(rows), frame_index=index, time_s=seconds
                )
            )
        yield results


# ``vtr extract --engine ray`` in a child process with its own stdin/stdout/stderr: Ray's processes started
# under a notebook's or pytest's captured streams miss the raylet's fixed start-up deadline on a busy
# 2-core machine (the dashboard agent is too slow to write its port file, ray-project/ray#65983).
_RAY_DRIVER = """
import sys
import ray
for attempt in range(2):  # one retry: the deadline is still missed now and then under heavy load
    try:
        ray.init(num_cpus=int(sys.argv[1]), include_dashboard=False, log_to_driver=False)
        break
    except Exception as err:  # Ray raises a bare Exception for a start-up timeout
        if "timed out during startup" not in str(err) or attempt == 1:
            raise
        ray.shutdown()
from vtr.cli import main
sys.exit(main(sys.argv[2:]))
"""


def ray_child_command(args: Sequence[str], num_cpus: int = 2) -> tuple[list[str], dict[str, str]]:
    """The command line and environment that run ``vtr <args>`` (an ``extract --engine ray``) in a
    child Python with a local Ray of ``num_cpus`` CPUs: this vtr on the path, Ray's usage stats off."""
    import sys

    lib = str(Path(__file__).resolve().parents[2])
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(p for p in (lib, os.environ.get("PYTHONPATH", "")) if p),
        "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_AUTH_MODE": "disabled",
    }
    return [sys.executable, "-c", _RAY_DRIVER, str(num_cpus), *args], env
