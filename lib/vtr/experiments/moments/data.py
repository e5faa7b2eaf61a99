"""Moment data of a profile: queries, videos and per-clip features for each split.

The sample profile (``moments.dataset: sample``) reads the sample world's long videos and their
QVHighlights-format queries (train / val / test). QVHighlights (``moments.dataset: qvhighlights``)
reads ``highlight_train_release.jsonl`` and ``highlight_val_release.jsonl`` from
``moments.annotations`` and the videos ``<vid>.mp4`` from ``moments.videos``; a tenth of the
training videos is held out for early stopping (``val``) and the official val set is ``test``, so the
reported split is never trained or selected on.

A video that is missing or cannot be decoded is skipped with its queries and listed in
:attr:`MomentData.skipped`; the others go on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from vtr.config import Profile
from vtr.data.moments import MomentQuery, load_moments
from vtr.keys import unit_hash
from vtr.models.encoders import Encoder
from vtr.moments.features import QueryFeatures, VideoFeatures, query_features, video_clip_features
from vtr.moments.training import MomentSample
from vtr.paths import resolve
from vtr.progress import show_progress

SPLITS = ("train", "val", "test")
DATASETS = ("sample", "qvhighlights")


@dataclass
class MomentData:
    """Queries (ground truth), samples (features attached) and video files of every split."""

    queries: dict[str, list[MomentQuery]]
    samples: dict[str, list[MomentSample]]
    videos: dict[str, Path]  # vid -> file
    features: dict[str, VideoFeatures]  # vid -> per-clip features
    source: str  # where the queries came from, for the notebook's header
    skipped: dict[str, str] = field(default_factory=dict)  # vid -> why

    def summary(self) -> dict[str, dict[str, int]]:
        """Videos and queries per split."""
        return {
            split: {"videos": len({q.vid for q in qs}), "queries": len(qs)}
            for split, qs in self.queries.items()
        }


def feature_cache_dir(cfg: Profile) -> Path:
    """Where per-clip features are cached: ``<data_dir>/cache/moments``."""
    return resolve(cfg.data_dir) / "cache" / "moments"


def ground_truth(cfg: Profile) -> tuple[dict[str, list[MomentQuery]], dict[str, Path], str]:
    """The profile's queries per split, the video file of each vid, and a description of the source."""
    dataset = cfg.moments.dataset
    if dataset == "sample":
        from vtr.data.synthetic.world import sample_world

        world = sample_world(cfg)
        queries = {split: load_moments(world.moments_paths[split]) for split in SPLITS}
        videos_dir = world.long_videos_dir
        source = f"sample world long videos ({world.long_videos_dir})"
    elif dataset == "qvhighlights":
        queries, videos_dir = _qvhighlights(cfg)
        source = f"QVHighlights ({resolve(cfg.moments.annotations)})"
    else:
        raise ValueError(f"moments.dataset={dataset!r} is not one of {DATASETS}")
    vids = {q.vid for qs in queries.values() for q in qs}
    return queries, {vid: videos_dir / f"{vid}.mp4" for vid in sorted(vids)}, source


def _qvhighlights(cfg: Profile) -> tuple[dict[str, list[MomentQuery]], Path]:
    folder = resolve(cfg.moments.annotations)
    files = {name: folder / f"highlight_{name}_release.jsonl" for name in ("train", "val")}
    for name, path in files.items():
        if not path.is_file():
            raise FileNotFoundError(f"moments.annotations: {path} not found (QVHighlights {name} file)")
    if not cfg.moments.videos:
        raise ValueError("moments.videos: set the folder of QVHighlights videos (<vid>.mp4)")
    train = load_moments(files["train"])
    # Hold out whole videos (a stable hash of the vid) for early stopping.
    held = {q.vid for q in train if unit_hash(q.vid, cfg.seed) < 0.1}
    return (
        {
            "train": [q for q in train if q.vid not in held],
            "val": [q for q in train if q.vid in held],
            "test": load_moments(files["val"]),
        },
        resolve(cfg.moments.videos),
    )


def load_moment_data(cfg: Profile, encoder: Encoder, *, progress: bool = True) -> MomentData:
    """Queries of every split with their per-clip video features and query token features.

    Features are cached (:func:`feature_cache_dir`), so a second call decodes nothing.
    """
    queries, videos, source = ground_truth(cfg)
    features: dict[str, VideoFeatures] = {}
    skipped: dict[str, str] = {}
    for vid, path in tqdm(
        videos.items(), desc="clip features", total=len(videos), disable=not show_progress(progress)
    ):
        if not path.is_file():
            skipped[vid] = f"{path} not found"
            continue
        try:
            features[vid] = video_clip_features(
                encoder, path, cfg.moments.clip_len, frames_per_clip=cfg.moments.frames_per_clip,
                cache_dir=feature_cache_dir(cfg),
            )  # fmt: skip
        except Exception as err:  # noqa: BLE001 - one bad video must not stop the others
            skipped[vid] = f"{path}: {err}"
    kept = {split: [q for q in qs if q.vid in features] for split, qs in queries.items()}
    texts = _query_features(encoder, {q.query for qs in kept.values() for q in qs})
    samples = {
        split: [MomentSample(q.qid, features[q.vid], texts[q.query], list(q.windows)) for q in qs]
        for split, qs in kept.items()
    }
    return MomentData(kept, samples, videos, features, source, skipped)


def _query_features(encoder: Encoder, texts: set[str]) -> dict[str, QueryFeatures]:
    return {text: query_features(encoder, text) for text in sorted(texts)}
