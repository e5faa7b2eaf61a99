"""Notebook 06's data: what it extracts, how each output format looks, and a split's clips as queries.

```python
runs = extract_sources(cfg, encoder)            # {"world": summary, "real": summary}
examples = format_examples(runs["world"]["out"])
clips = load_split(cfg, "test", n_frames=12)    # decoded frames + caption queries of the test clips
```
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vtr import video
from vtr.atomic import write_text
from vtr.config import Profile
from vtr.data.manifest import ClipRecord
from vtr.data.real_videos import real_videos
from vtr.data.synthetic import sample_world
from vtr.evaluation import HardPairs, hard_pairs
from vtr.extract.api import extract, extraction_header, sampling_of
from vtr.extract.store import load_extraction
from vtr.models.encoders import Encoder
from vtr.paths import resolve

#: Every format ``vtr extract`` writes: parquet shards + metadata, per-video npy and per-video json.
ALL_FORMATS = ("parquet", "npy", "json")


def runs_dir(cfg: Profile) -> Path:
    """``<data_dir>/runs/extraction``: notebook 06's extraction folders, indexes and trained prompts."""
    return resolve(cfg.data_dir) / "runs" / "extraction"


def real_videos_manifest(folder: Path) -> Path:
    """A jsonl manifest of :func:`vtr.data.real_videos.real_videos` (they live in different folders)."""
    lines = [json.dumps({"video": str(path), "id": name}) for name, path in sorted(real_videos().items())]
    path = folder / "real_videos.jsonl"
    write_text(path, "\n".join(lines) + "\n")
    return path


def extract_sources(
    cfg: Profile, encoder: Encoder, *, formats: tuple[str, ...] = ALL_FORMATS, progress: bool = True
) -> dict[str, dict[str, Any]]:
    """Extract the sample world's short clips (its manifest) and the real videos, every format and the
    consolidated JSON, into ``runs/extraction/<source>-<run key>`` (another model or other settings get
    their own folder); a rerun resumes (nothing is extracted twice). Returns each run's summary."""
    root = runs_dir(cfg)
    key = extraction_header(encoder, sampling_of(cfg, encoder))["key"][:12]
    sources = {"world": sample_world(cfg).manifest_path, "real": real_videos_manifest(root)}
    return {
        name: extract(cfg, source, root / f"{name}-{key}", formats=formats, consolidated=True, encoder=encoder,
                      progress=progress)
        for name, source in sources.items()
    }  # fmt: skip


def _shape_of(path: Path) -> str:
    array = np.load(path, mmap_mode="r")
    return f"{array.shape} {array.dtype}"


def format_examples(out: str | Path, rows: int = 5) -> dict[str, Any]:
    """One look at each format of the extraction folder ``out``:

    ``parquet`` (the metadata table's head), ``shards`` (each shard's shape), ``npy`` (the first per-video
    files and their shapes), ``json`` (the first per-video JSON, embedding cut to 4 values) and
    ``consolidated`` (the consolidated file's metadata and its first entry's keys)."""
    out = Path(out)
    metadata, embeddings, header = load_extraction(out)
    npy_files = sorted(out.glob("*_embedding.npy"))[:rows]
    json_files = sorted(out.glob("*_embedding.json"))
    first = json.loads(json_files[0].read_text()) if json_files else {}
    if first:
        first["embedding"] = [round(v, 4) for v in first["embedding"][:4]] + ["..."]
    consolidated = json.loads((out / "consolidated_embeddings.json").read_text())
    first_entry = next(iter(consolidated["embeddings"].values()), {})
    return {
        "header": {k: header[k] for k in ("model", "dim", "settings")},
        "parquet": metadata.drop(columns=["index"], errors="ignore").head(rows),
        "shards": pd.DataFrame(
            {"shard": [p.name for p in sorted((out / "embeddings").glob("*.npy"))]}
        ).assign(shape=lambda t: [_shape_of(out / "embeddings" / s) for s in t["shard"]]),
        "embeddings": f"{embeddings.shape} {embeddings.dtype}",
        "npy": pd.DataFrame(
            {"file": [p.name for p in npy_files], "shape": [_shape_of(p) for p in npy_files]}
        ),
        "json": first,
        "consolidated": {"metadata": consolidated.get("metadata"), "entry_keys": sorted(first_entry)},
    }


@dataclass
class SplitClips:
    """One split of the sample world as retrieval queries: decoded frames and every caption."""

    records: list[ClipRecord]  # the clips that decoded, in manifest order
    frames: list[np.ndarray]  # uint8 (T, H, W, 3) per clip
    captions: list[str]  # every caption of those clips: one query each
    caption_to_video: np.ndarray  # (Q,) index into records
    pairs: HardPairs  # the world's hard pairs (resampled together by the bootstrap)
    errors: dict[str, str]  # clip id -> why it did not decode

    @property
    def ids(self) -> list[str]:
        return [r.id for r in self.records]

    @property
    def caption_clusters(self) -> np.ndarray:
        """Each query's resampling unit: its clip's hard-pair group (or the clip)."""
        return self.pairs.clusters[self.caption_to_video]


def first_clips(records: list[ClipRecord], limit: int) -> list[ClipRecord]:
    """The first ``limit`` clips in manifest order, hard pairs kept whole (so one more when a pair
    straddles the limit); ``limit`` 0 keeps all."""
    if limit <= 0:
        return list(records)
    groups: dict[str, list[ClipRecord]] = {}
    for record in records:
        groups.setdefault(str(record.meta.get("pair_group") or f"clip:{record.id}"), []).append(record)
    chosen: list[ClipRecord] = []
    for members in groups.values():
        if len(chosen) >= limit:
            break
        chosen.extend(members)
    keep = {r.id for r in chosen}
    return [r for r in records if r.id in keep]


def load_split(
    cfg: Profile, split: str, n_frames: int, size: int | None = None, limit: int | None = None
) -> SplitClips:
    """The world's ``split`` clips, ``n_frames`` frames each (``video.strategy``, the profile's seed) at
    ``size`` pixels (default ``video.size``), the first ``limit`` of them (default ``extract.split_clips``,
    :func:`first_clips`); a clip that does not decode is left out and named in ``errors``."""
    world = sample_world(cfg)
    records, frames, errors = [], [], {}
    limit = cfg.extract.split_clips if limit is None else limit
    for record in first_clips(world.clips(split), limit):
        try:
            clip = video.sample_frames(
                record.video_path(world.root), n_frames, cfg.video.strategy, size or cfg.video.size, cfg.seed
            )
        except video.VideoDecodeError as err:
            errors[record.id] = str(err)
            continue
        records.append(record)
        frames.append(clip)
    if not records:
        raise ValueError(f"no {split} clip of the sample world at {world.root} decoded")
    captions = [c for r in records for c in r.captions]
    owners = np.asarray([i for i, r in enumerate(records) for _ in r.captions], dtype=np.int64)
    pairs = hard_pairs([r.id for r in records], [r.meta for r in records])
    return SplitClips(records, frames, captions, owners, pairs, errors)
