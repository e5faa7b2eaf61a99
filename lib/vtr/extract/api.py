"""Batch extraction of video embeddings: the Python side of ``vtr extract`` (seed 001's API).

    from vtr.extract import extract_directory_embeddings, extract_video_embedding

    results = extract_directory_embeddings("videos/", "embeddings/", save_format="both", consolidated=True)
    print(f"Processed {results['processed']} videos successfully")      # results is summary.json
    embedding = extract_video_embedding("video.mp4")                     # (D,) float32, L2-normalised

    summary = extract(load_profile("sample"), "videos/", "out/", formats=("parquet",), engine="ray")

What a video's embedding is: ``video.n_frames`` frames sampled by ``video.strategy`` at
``video.size`` pixels (the profile, or ``--frames``), each embedded by the profile's encoder
(``model``); the video embedding is the re-normalised mean of the frame embeddings (a video
encoder such as ViCLIP gives one clip embedding instead). The output folder is described in
:mod:`vtr.extract.store`.

Resuming. A video is keyed by the extraction's run key (:func:`vtr.keys.run_key` of the model's
identity and the sampling settings) and the file's content fingerprint. A rerun skips videos
already done with the same key and videos that failed for a reason of the file (``--retry-failed``
tries them again); failures of the machine (a missing file, an I/O error) are always retried.
Adding videos to the folder extracts only those. An output folder made with another model or
other settings is refused (:class:`~vtr.extract.store.ExtractionMismatchError`).
"""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

import vtr
from vtr import video
from vtr.atomic import write_json
from vtr.config import Profile, load_profile
from vtr.embeddings import default_cache_dir, embed_videos
from vtr.extract import ENGINES
from vtr.extract.engines import Job, Sampling, run_local, run_ray
from vtr.extract.inputs import list_videos
from vtr.extract.store import ExtractionStore, ItemResult, parse_formats
from vtr.keys import run_key
from vtr.models.encoders import Encoder, load_encoder, pool_frames
from vtr.progress import show_progress

#: Bump when what an extraction stores changes, so old output folders are not mixed with new rows.
EXTRACT_VERSION = 1


def make_encoder(cfg: Profile) -> Encoder:
    """The profile's encoder; random weights (``model.pretrained: ""``) are seeded by ``cfg.seed``,
    so every process (and every Ray actor) that builds it gets the same weights. With
    ``extract.merge`` on it merges tokens as the ``extract`` section says
    (:class:`vtr.models.tome.MergingEncoder`).

    Raises:
        ValueError: merging is on but ``video.n_frames`` cannot be joined in ``extract.merge_frame_num``
            groups, or ``model.arch`` is not a ViT with class-token pooling.
    """
    import torch

    if cfg.extract.merge:
        check_merge_settings(cfg)
    if cfg.model.pretrained:
        encoder = load_encoder(cfg)
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            encoder = load_encoder(cfg)
    if not cfg.extract.merge:
        return encoder
    from vtr.models.tome import MergingEncoder, merge_config

    try:
        return MergingEncoder(encoder, merge_config(cfg))
    except TypeError as err:
        raise ValueError(f"extract.merge needs a ViT model.arch, not {cfg.model.arch!r}: {err}") from None


def check_merge_settings(cfg: Profile) -> None:
    """ValueError naming the keys when ``video.n_frames`` does not divide into the merge groups."""
    from vtr.models.tome import merge_config

    try:
        merge_config(cfg).frames_out(cfg.video.n_frames)
    except ValueError as err:
        raise ValueError(
            f"extract.merge: video.n_frames={cfg.video.n_frames} does not fit extract.merge_frame_num="
            f"{cfg.extract.merge_frame_num} ({err}); set --frames to a multiple of their product"
        ) from None


def _profile(profile: str | os.PathLike[str] | Profile, overrides: dict[str, Any] | None) -> Profile:
    if isinstance(profile, Profile):
        return load_profile(profile.to_dict(), overrides) if overrides else profile
    return load_profile(profile, overrides)


def sampling_of(cfg: Profile, encoder: Encoder) -> Sampling:
    """The frame sampling an extraction with ``cfg`` uses (size resolved for ``encoder``)."""
    return Sampling(
        n_frames=cfg.video.n_frames,
        strategy=cfg.video.strategy,
        size=encoder.decode_size(cfg.video.size),
        seed=cfg.seed,
    )


def extraction_header(encoder: Encoder, sampling: Sampling) -> dict[str, Any]:
    """``extraction.json``: the model, the embedding width, the settings and their run key."""
    identity = encoder.identity()
    settings = {**sampling.__dict__, "decoder": video.CACHE_VERSION}
    return {
        "model": encoder.arch,
        "weights": identity["weights"],
        "dim": int(encoder.output_dim),
        "settings": settings,
        "key": run_key(EXTRACT_VERSION, identity, settings),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "vtr_version": vtr.__version__,
    }


def _plan(
    records: Sequence[Any], store: ExtractionStore, retry_failed: bool
) -> tuple[list[Job], list[ItemResult], dict[str, int]]:
    """Which videos to extract now; files that cannot be read at all fail here (and are retried later)."""
    todo: list[Job] = []
    unreadable: list[ItemResult] = []
    skipped = {"done": 0, "failed": 0}
    run = store.header["key"]
    for record in records:
        try:
            fingerprint = video.content_fingerprint(record.video)
        except OSError as err:
            reason = f"{record.video}: cannot read file ({err.strerror or err})"
            unreadable.append(ItemResult(record, "", error=reason, retry=True))
            continue
        key = run_key(run, fingerprint, record.start, record.end)
        reason = store.skip_reason(record, key, retry_failed)
        if reason is None:
            todo.append(Job(record, key))
        else:
            skipped[reason] += 1
    return todo, unreadable, skipped


def extract(
    cfg: Profile,
    source: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    formats: str | Sequence[str] = ("parquet",),
    consolidated: bool = False,
    engine: str = "local",
    workers: int = 2,
    chunk_size: int = 256,
    retry_failed: bool = False,
    encoder: Encoder | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Extract every video of ``source`` (a folder or a ``.jsonl`` manifest) into ``out``.

    Args:
        cfg: the profile: model (``model``), frame sampling (``video``), seed, device, cache.
        source: a folder of videos (searched recursively) or a jsonl manifest
            (:func:`vtr.extract.inputs.list_videos`).
        out: the output folder (:mod:`vtr.extract.store`); reruns resume there.
        formats: any of ``parquet`` (sharded ``.npy`` + ``metadata.parquet``), ``npy``, ``json``
            (``both`` = npy and json), as a list or a comma-separated string.
        consolidated: also write ``consolidated_embeddings.json``.
        engine: ``local`` or ``ray`` (:mod:`vtr.extract.engines`).
        workers: decoding threads (local) or actors (ray).
        chunk_size: videos per committed batch (one shard each).
        retry_failed: extract videos that failed in an earlier run again.
        encoder: an already built encoder (default: :func:`make_encoder` of ``cfg``; local only).
        progress: show a progress bar (``VTR_PROGRESS=0`` turns all bars off).

    Returns:
        The summary, also written to ``out/summary.json``: ``counts`` (``total``, ``processed``
        now, ``resumed`` (done earlier), ``failed`` (all failed videos of the input),
        ``failed_earlier`` (skipped), ``video_rows``, ``frame_rows``), ``failures``
        (``[{video_path, reason}]``), ``throughput`` (videos and frames per second of this run's
        extraction) and ``wall_s`` / ``cpu_s`` (CPU time of this process and its finished children;
        Ray workers' CPU time is not included). ``processed`` and ``failed`` are also top-level keys.

    Raises:
        ValueError: an unknown format or engine.
        InputError: an empty folder, a missing source, a file that is not a manifest.
        ExtractionMismatchError: ``out`` holds an extraction with another model or settings.
    """
    formats = parse_formats(formats)
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; known engines: {', '.join(ENGINES)}")
    wall0, cpu0 = time.perf_counter(), _cpu_seconds()
    records = list_videos(source)
    encoder = encoder or make_encoder(cfg)
    sampling = sampling_of(cfg, encoder)
    store = ExtractionStore(out, extraction_header(encoder, sampling), formats)
    todo, unreadable, skipped = _plan(records, store, retry_failed)
    store.commit(unreadable)
    frame_rows = encoder.rows_per_video(sampling.n_frames) == sampling.n_frames
    if engine == "ray":
        batches = run_ray(
            cfg, todo, sampling, concurrency=max(1, workers), chunk_size=chunk_size, frame_rows=frame_rows
        )
    else:
        cache_dir = default_cache_dir(cfg)
        batches = run_local(
            encoder, todo, sampling, cache_dir=cache_dir, workers=workers, chunk_size=chunk_size
        )
    counts = {"processed": 0, "failed_now": len(unreadable), "video_rows": 0, "frame_rows": 0}
    work0 = time.perf_counter()
    bar = tqdm(
        total=len(todo),
        desc=f"extract ({encoder.arch}, {engine})",
        unit="video",
        disable=not show_progress(progress),
    )
    try:
        for batch in batches:
            store.commit(batch)
            for result in batch:
                counts["processed" if result.ok else "failed_now"] += 1
                if result.ok:
                    counts["video_rows"] += 1
                    counts["frame_rows"] += 0 if result.frame_index is None else len(result.frame_index)
            bar.update(len(batch))
    finally:
        bar.close()
    work_s = time.perf_counter() - work0
    if consolidated:
        store.write_consolidated(records)
    summary = _summary(store, records, counts, skipped, engine, formats, work_s, sampling)
    summary["wall_s"] = round(time.perf_counter() - wall0, 3)
    summary["cpu_s"] = round(_cpu_seconds() - cpu0, 3)
    write_json(Path(out) / "summary.json", summary)
    return summary


def _cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _summary(
    store: ExtractionStore,
    records: Sequence[Any],
    counts: dict[str, int],
    skipped: dict[str, int],
    engine: str,
    formats: Sequence[str],
    work_s: float,
    sampling: Sampling,
) -> dict[str, Any]:
    failures = store.failures(records)
    new = counts["processed"] + counts["failed_now"]
    return {
        "out": str(store.out),
        "model": store.header["model"],
        "key": store.header["key"],
        "engine": engine,
        "formats": list(formats),
        "processed": counts["processed"],
        "failed": len(failures),
        "counts": {
            "total": len(records),
            "processed": counts["processed"],
            "resumed": skipped["done"],
            "failed": len(failures),
            "failed_now": counts["failed_now"],
            "failed_earlier": skipped["failed"],
            "video_rows": counts["video_rows"],
            "frame_rows": counts["frame_rows"],
        },
        "failures": failures,
        "throughput": {
            "videos": new,
            "seconds": round(work_s, 3),
            "videos_per_s": round(new / work_s, 3) if work_s > 0 and new else None,
            "frames_per_s": round(new * sampling.n_frames / work_s, 3) if work_s > 0 and new else None,
        },
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def extract_directory_embeddings(
    video_dir: str | os.PathLike[str],
    output_dir: str | os.PathLike[str],
    save_format: str | Sequence[str] = "parquet",
    consolidated: bool = False,
    *,
    profile: str | os.PathLike[str] | Profile = "sample",
    overrides: dict[str, Any] | None = None,
    engine: str = "local",
    progress: bool = True,
) -> dict[str, Any]:
    """Seed 001's batch API: every video of ``video_dir`` into ``output_dir``; see :func:`extract`.

    ``save_format`` is ``parquet``, ``npy`` (or ``numpy``), ``json``, ``both`` (npy and json) or a
    list of these; ``overrides`` are dotted profile keys (``{"video.n_frames": 12}``).
    Returns the summary; ``results["processed"]`` counts the videos done in this call.
    """
    cfg = _profile(profile, overrides)
    return extract(
        cfg,
        video_dir,
        output_dir,
        formats=save_format,
        consolidated=consolidated,
        engine=engine,
        progress=progress,
    )


def extract_video_embedding(
    path: str | os.PathLike[str],
    *,
    profile: str | os.PathLike[str] | Profile = "sample",
    overrides: dict[str, Any] | None = None,
    encoder: Encoder | None = None,
) -> np.ndarray:
    """The (D,) float32 L2-normalised embedding of one video, as :func:`extract` stores it.

    Raises:
        vtr.video.VideoDecodeError: the file is missing or cannot be decoded (the message names it).
    """
    cfg = _profile(profile, overrides)
    encoder = encoder or make_encoder(cfg)
    sampling = sampling_of(cfg, encoder)
    from vtr.data.manifest import ClipRecord

    record = ClipRecord(id="video", video=os.fspath(Path(path).resolve()), captions=[], split="test")
    emb = embed_videos(
        encoder,
        [record],
        "/",
        n_frames=sampling.n_frames,
        strategy=sampling.strategy,
        size=sampling.size,
        seed=sampling.seed,
        cache_dir=default_cache_dir(cfg),
        workers=0,
        progress=False,
    )
    if not emb.ids:
        raise video.VideoDecodeError(path, emb.errors.get("video", "no embedding").split(": ", 1)[-1])
    return pool_frames(emb.frames[0])
