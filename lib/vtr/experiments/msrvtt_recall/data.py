"""Stage 1 of notebook 05: the MSR-VTT splits as frozen features.

Annotations come from :func:`vtr.data.msrvtt.msrvtt_dirs` (real MSR-VTT, or the sample world's
MSR-VTT-format folder) through :func:`vtr.data.msrvtt.load_msrvtt`; frame embeddings from the shared
cache (:func:`vtr.embeddings.embed_profile_videos`) or from pre-extracted features validated against
the annotation ids; captions are embedded once through the text cache.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from vtr.data.manifest import ClipRecord, ManifestError
from vtr.data.msrvtt import VideoDataInfo, load_features, load_msrvtt, msrvtt_dirs, read_videodatainfo
from vtr.embeddings import default_cache_dir, embed_profile_videos, embed_texts
from vtr.evaluation import HardPairs, hard_pairs
from vtr.models.encoders import l2_normalize, pool_frames
from vtr.paths import resolve

if TYPE_CHECKING:
    from vtr.config import Profile
    from vtr.models.encoders import Encoder


@dataclass
class SplitData:
    """One MSR-VTT split as frozen features: videos with their frame embeddings, captions with theirs."""

    split: str
    records: list[ClipRecord]  # the videos that have features, in split order
    frames: np.ndarray  # (N, T, D) float32, each frame L2-normalised
    captions: list[str]  # every caption of those videos (the queries), video by video
    caption_to_video: np.ndarray  # (Q,) index into ``records``
    text: np.ndarray  # (Q, Dt) float32 L2-normalised caption embeddings
    dropped: dict[str, str] = field(default_factory=dict)  # video id -> why it has no features
    base_dir: Path | None = None  # where relative ``record.video`` paths resolve (frames for figures)
    pairs: HardPairs | None = None  # hard pairs among the videos (the sample world), else None

    @cached_property
    def videos(self) -> np.ndarray:
        """(N, D) mean-pooled, re-normalised video embeddings (the zero-shot video side)."""
        return pool_frames(self.frames)

    @property
    def ids(self) -> list[str]:
        """The video ids, in split order."""
        return [r.id for r in self.records]

    @property
    def query_categories(self) -> list[str]:
        """The category of each query's video."""
        return [self.records[v].category or "unknown" for v in self.caption_to_video]

    def __len__(self) -> int:
        return len(self.records)

    def subset(self, video_indices: Sequence[int]) -> SplitData:
        """The given videos (in that order) with all their captions."""
        keep = np.asarray(video_indices, dtype=np.int64)
        new_index = np.full(len(self.records), -1, dtype=np.int64)
        new_index[keep] = np.arange(len(keep))
        queries = np.flatnonzero(new_index[self.caption_to_video] >= 0)
        queries = queries[np.argsort(new_index[self.caption_to_video[queries]], kind="stable")]
        return SplitData(
            split=self.split,
            records=[self.records[i] for i in keep],
            frames=self.frames[keep],
            captions=[self.captions[q] for q in queries],
            caption_to_video=new_index[self.caption_to_video[queries]],
            text=self.text[queries],
            base_dir=self.base_dir,
            pairs=None if self.pairs is None else _subset_pairs(self.pairs, keep, new_index),
        )



def _subset_pairs(pairs: HardPairs, keep: np.ndarray, new_index: np.ndarray) -> HardPairs:
    """The hard pairs among the kept videos: a partner left out leaves its clip unpaired (its group stays)."""
    partner = pairs.partner[keep]
    return HardPairs(pairs.clusters[keep], np.where(partner >= 0, new_index[np.maximum(partner, 0)], -1))


def load_video_features(
    array_path: str | Path, ids_path: str | Path, records: Sequence[ClipRecord]
) -> np.ndarray:
    """Pre-extracted video features for ``records``: ``(N, T, D)`` float32, each frame L2-normalised.

    ``array_path`` holds ``(rows, D)`` (one vector per video, then ``T = 1``) or ``(rows, T, D)``; the
    checks of :func:`vtr.data.msrvtt.load_features` apply (row count, duplicate ids, every annotation
    id present). A row that is not finite or is all zeros is an error naming the file and the id.
    """
    features = load_features(array_path, ids_path, records).astype(np.float32)
    if features.ndim == 2:
        features = features[:, None, :]
    if features.ndim != 3:
        raise ManifestError(
            f"{array_path}: expected (videos, D) or (videos, frames, D) features, got shape {features.shape}"
        )
    norms = np.linalg.norm(features, axis=-1)
    for check, what in ((~np.isfinite(features).all(axis=(1, 2)), "non-finite values"),
                        ((norms == 0).any(axis=1), "an all-zero vector")):  # fmt: skip
        if check.any():
            bad = [records[i].id for i in np.flatnonzero(check)]
            raise ManifestError(
                f"{array_path}: features of video id {bad[0]!r} have {what} ({len(bad)} such)"
            )
    return l2_normalize(features)


def assemble_split(
    split: str,
    records: Sequence[ClipRecord],
    frames_by_id: dict[str, np.ndarray],
    embed_captions: Callable[[list[str]], np.ndarray],
    dropped: dict[str, str] | None = None,
    base_dir: Path | None = None,
) -> SplitData:
    """A :class:`SplitData` from records, per-video frame embeddings and a caption embedder.

    Videos without features (in ``dropped``, or absent from ``frames_by_id``) are left out with their
    captions, and listed in ``dropped``.
    """
    dropped = dict(dropped or {})
    kept = [r for r in records if r.id in frames_by_id]
    for r in records:
        if r.id not in frames_by_id:
            dropped.setdefault(r.id, "no features")
    if not kept:
        raise ValueError(f"split {split!r}: none of its {len(records)} videos has features: {dropped}")
    captions = [c for r in kept for c in r.captions]
    owners = np.repeat(np.arange(len(kept)), [len(r.captions) for r in kept])
    text = np.asarray(embed_captions(captions), dtype=np.float32)
    frames = np.stack([np.asarray(frames_by_id[r.id], dtype=np.float32) for r in kept])
    return SplitData(split, kept, frames, captions, owners, text, dropped, base_dir)


def load_split(
    cfg: Profile,
    split: str,
    encoder: Encoder,
    *,
    info: VideoDataInfo | None = None,
    progress: bool = True,
) -> SplitData:
    """The profile's MSR-VTT ``split`` as frozen features (see the module docstring).

    Videos that cannot be decoded are recorded in ``dropped`` (with the file and the reason) and left
    out, never stopping the split.
    """
    annotations, videos_dir = msrvtt_dirs(cfg)
    info = info or read_videodatainfo(annotations)
    records = list(load_msrvtt(annotations, split, videos_dir, info=info))
    mr = cfg.msrvtt_recall
    if mr.video_features:
        array = load_video_features(resolve(mr.video_features), resolve(mr.video_feature_ids), records)
        frames_by_id, dropped = {r.id: array[i] for i, r in enumerate(records)}, {}
    else:
        embedded = embed_profile_videos(cfg, encoder, records, videos_dir, progress=progress)
        frames_by_id = dict(zip(embedded.ids, embedded.frames, strict=True))
        dropped = embedded.errors
    cache = default_cache_dir(cfg)
    data = assemble_split(
        split,
        records,
        frames_by_id,
        lambda caps: embed_texts(encoder, caps, cache_dir=cache, progress=progress),
        dropped,
        videos_dir,
    )
    return dataclasses.replace(data, pairs=sample_world_pairs(cfg, data.ids))


def sample_world_pairs(cfg: Profile, ids: Sequence[str]) -> HardPairs | None:
    """The sample world's hard pairs among ``ids`` (its MSR-VTT files keep no pair fields, so they are read
    from the world's manifest); None for real MSR-VTT (``data.msrvtt_annotations`` set)."""
    if cfg.data.msrvtt_annotations:
        return None
    from vtr.data.synthetic import sample_world

    meta = {r.id: r.meta for r in sample_world(cfg).clips()}
    pairs = hard_pairs(list(ids), [meta.get(i, {}) for i in ids])
    return pairs if pairs.any else None


def split_train_val(data: SplitData, fraction: float, seed: int) -> tuple[SplitData, SplitData | None]:
    """Hold out ``fraction`` of the videos (at least 2, at random by ``seed``) for model selection."""
    if not 0 <= fraction < 1:
        raise ValueError(f"val_fraction must be in [0, 1), got {fraction}")
    if fraction == 0:
        return data, None
    n_val = max(2, round(fraction * len(data)))
    if len(data) - n_val < 2:
        raise ValueError(f"{len(data)} training videos are too few to hold out {n_val} for validation")
    order = np.random.default_rng(seed).permutation(len(data))
    return data.subset(np.sort(order[n_val:])), data.subset(np.sort(order[:n_val]))
