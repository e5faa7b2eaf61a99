"""One entry point from a profile to its clips: ``load_clips(profile, "test")``.

Notebooks never branch on the data source themselves. ``profile.data.source`` picks the corpus, one
of the loaders registered with :func:`register_source` (:func:`list_sources` names them):

| source | clips come from | split names |
|---|---|---|
| ``sample`` | the sample world (:func:`vtr.data.synthetic.sample_world`, built on demand) | its own train / val / test |
| ``internvid`` | ``<internvid.out_dir>/manifest.jsonl`` written by ``vtr download internvid`` | hash of the YouTube id, 80/10/10 |
| ``msrvtt`` | ``data.msrvtt_annotations`` + ``data.root`` (videos) | train = 9k, val = official val, test = 1k-A |
| ``folder`` | ``data.root`` (videos) + ``data.captions`` (csv/jsonl) | a ``split`` column, else a hash of the video |
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tqdm.auto import tqdm

from vtr.config import ConfigError, Profile
from vtr.data.manifest import ClipRecord, read_manifest
from vtr.paths import resolve
from vtr.progress import show_progress
from vtr.registry import Registry

if TYPE_CHECKING:  # pandas is imported when a table is built: validating a profile lists the sources
    import pandas as pd

MSRVTT_SPLITS = {"train": "train_9k", "val": "val", "test": "test_1k"}


@dataclass
class ClipSet:
    """Clips of one split plus the folder their relative ``video`` paths are relative to."""

    name: str
    split: str
    records: list[ClipRecord]
    base_dir: Path

    def __len__(self) -> int:
        return len(self.records)

    def video_paths(self) -> list[Path]:
        return [r.video_path(self.base_dir) for r in self.records]

    def queries(self) -> tuple[list[str], list[int]]:
        """Every caption as a query, with the index of its clip (the multi-caption protocol)."""
        captions, owner = [], []
        for i, record in enumerate(self.records):
            captions.extend(record.captions)
            owner.extend([i] * len(record.captions))
        return captions, owner


Loader = Callable[[Profile, str], ClipSet]

#: The data sources by name: ``loader(profile, split) -> ClipSet``. ``data.source`` in a profile
#: must be one of these names (checked when the profile is loaded).
SOURCES: Registry[Loader] = Registry("data source")


def register_source(name: str, *, replace: bool = False) -> Callable[[Loader], Loader]:
    """Register ``loader(profile, split) -> ClipSet`` as the data source ``name`` (a decorator)."""
    return SOURCES.register(name, replace=replace)


def list_sources() -> list[str]:
    """The registered data source names, in registration order."""
    return SOURCES.names()


def create_clips(source: str, profile: Profile, split: str) -> ClipSet:
    """The clips of ``split`` from the data source ``source`` (usually ``profile.data.source``)."""
    if source not in SOURCES:
        raise ConfigError(
            f"{profile.source_file}: data.source is {source!r}; expected one of {list_sources()}"
        )
    return SOURCES.create(source, profile, split)


def load_clips(profile: Profile, split: str) -> ClipSet:
    """The clips of ``split`` for the profile's data source (building the sample world if needed)."""
    return create_clips(profile.data.source, profile, split)


@register_source("sample")
def _sample_clips(profile: Profile, split: str) -> ClipSet:
    from vtr.data.synthetic import sample_world

    world = sample_world(profile)
    return ClipSet("sample world", split, world.clips(split), world.root)


@register_source("internvid")
def _internvid_clips(profile: Profile, split: str) -> ClipSet:
    out_dir = resolve(profile.internvid.out_dir)
    manifest = out_dir / "manifest.jsonl"
    if not manifest.is_file():
        raise FileNotFoundError(
            f"{manifest} not found: run `vtr download internvid --profile {profile.source_file}` first"
        )
    return ClipSet("InternVid", split, read_manifest(manifest, split=split), out_dir)


@register_source("msrvtt")
def _msrvtt_clips(profile: Profile, split: str) -> ClipSet:
    from vtr.data.msrvtt import load_msrvtt

    annotations = _required_dir(profile.data.msrvtt_annotations, "data.msrvtt_annotations")
    videos = _required_dir(profile.data.root, "data.root")
    records = load_msrvtt(annotations, split=MSRVTT_SPLITS.get(split, split), videos_dir=videos)
    return ClipSet("MSR-VTT", split, list(records), videos)


@register_source("folder")
def _folder_clips(profile: Profile, split: str) -> ClipSet:
    from vtr.data.folder import load_folder

    videos = _required_dir(profile.data.root, "data.root")
    records = load_folder(videos, resolve(profile.data.captions))
    return ClipSet(videos.name, split, [r for r in records if r.split == split], videos)


def _required_dir(value: str, key: str) -> Path:
    if not value:
        raise ConfigError(f"{key} is empty: set it in the profile or with --set {key}=PATH")
    path = resolve(value)
    if not path.is_dir():
        raise FileNotFoundError(f"{key} = {value!r}: folder {path} does not exist")
    return path


def clip_table(clips: ClipSet, *, probe_videos: bool = True) -> pd.DataFrame:
    """One row per clip: split, category, caption count and mean length in words, duration (seconds)."""
    import pandas as pd

    from vtr.video import VideoDecodeError, probe

    rows = []
    for record, path in tqdm(
        zip(clips.records, clips.video_paths(), strict=True),
        total=len(clips),
        desc="probe",
        disable=not (probe_videos and show_progress()),
    ):
        duration = None
        if record.start is not None and record.end is not None:
            duration = record.end - record.start
        elif probe_videos:
            try:
                duration = probe(path).duration
            except VideoDecodeError:
                duration = None  # recorded as missing; the notebook reports how many
        words = [len(c.split()) for c in record.captions]
        rows.append(
            {
                "id": record.id,
                "split": record.split,
                "category": record.category or "none",
                "n_captions": len(record.captions),
                "caption_words": sum(words) / len(words),
                "duration_s": duration,
            }
        )
    return pd.DataFrame(rows)
