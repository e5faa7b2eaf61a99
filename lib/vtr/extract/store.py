"""The output folder of ``vtr extract``: formats, the item manifest that makes reruns resume, the summary.

Layout of ``OUT`` (every file is written atomically, ``vtr.atomic``)::

    extraction.json                 {"model", "weights", "dim", "settings", "key", "created", "vtr_version"}
    items.parquet                   the item manifest: one row per input video, done or failed
    summary.json                    counts, failures [{video_path, reason}], throughput, wall and CPU time
    # --format parquet (default): the sharded format the search index reads
    embeddings/shard-00000.npy      float32 [rows, dim], L2-normalised: video rows and frame rows
    metadata.parquet                one row per embedding: video_id, video_path, kind ("video" | "frame"),
                                    frame_index (-1 for video rows), time_s (NaN for video rows),
                                    shard (the number in shard-NNNNN.npy), row, content_key
    # --format npy / json (seed 001's formats), one file per video, named after the video's id
    <id>_embedding.npy              (dim,) float32 video embedding
    <id>_embedding.json             {"video_path", "embedding", "shape", "dtype"}
    # --consolidated
    consolidated_embeddings.json    {"embeddings": {id: {"embedding", "shape", "video_path"}},
                                     "metadata": {"total_videos", "successful", "failed", "processing_date"}}

Each batch of finished videos is committed in this order: its shard and per-video files, then
``metadata.parquet``, then ``items.parquet``. ``items.parquet`` is the record of what is done, so a
run interrupted between two steps redoes at most that batch. An item is keyed by ``content_key``:
the run key of the extraction (model identity and sampling settings) and the file's content
fingerprint, so an edited video is extracted again and its old rows leave ``metadata.parquet``.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vtr.atomic import atomic_path, write_json
from vtr.data.manifest import ClipRecord
from vtr.extract import FORMAT_ALIASES, FORMATS
from vtr.models.encoders import pool_frames

METADATA_COLUMNS = ["video_id", "video_path", "kind", "frame_index", "time_s", "shard", "row", "content_key"]
ITEM_COLUMNS = [
    "video_id", "video_path", "content_key", "status", "reason", "retry", "formats", "shard", "row",
    "n_rows", "created",
]  # fmt: skip
CONSOLIDATED_NAME = "consolidated_embeddings.json"


class ExtractionMismatchError(ValueError):
    """``OUT`` already holds an extraction made with another model or other settings."""


def parse_formats(text: str | Sequence[str]) -> tuple[str, ...]:
    """``"parquet"``, ``"npy,json"``, ``"both"`` or a list of names -> the formats, in :data:`FORMATS` order.

    Raises:
        ValueError: an unknown format name (the message lists the known ones).
    """
    names = text.split(",") if isinstance(text, str) else list(text)
    chosen: set[str] = set()
    for name in (n.strip().lower() for n in names if n.strip()):
        if name in FORMATS:
            chosen.add(name)
        elif name in FORMAT_ALIASES:
            chosen.update(FORMAT_ALIASES[name])
        else:
            known = ", ".join([*FORMATS, *FORMAT_ALIASES])
            raise ValueError(f"unknown format {name!r}; known formats: {known}")
    if not chosen:
        raise ValueError("no output format given; known formats: " + ", ".join(FORMATS))
    return tuple(f for f in FORMATS if f in chosen)


@dataclass
class ItemResult:
    """The outcome of one video: its (T, D) embedding rows, or the reason it failed."""

    record: ClipRecord
    content_key: str
    rows: np.ndarray | None = None  # (T, D) float32 frame embeddings (a video encoder: (1, D))
    frame_index: np.ndarray | None = None  # (T,) frame numbers of the rows; None: no frame rows
    time_s: np.ndarray | None = None  # (T,) seconds of those frames
    error: str | None = None
    retry: bool = False  # a failure of the machine, not of the file: tried again on the next run

    @property
    def ok(self) -> bool:
        return self.rows is not None


def safe_name(video_id: str) -> str:
    """A relative file name for ``video_id``: sub-folders kept, odd characters and ``..`` replaced."""
    parts = [re.sub(r"[^A-Za-z0-9._@=+-]", "_", p) for p in video_id.split("/") if p not in ("", ".")]
    return "/".join("_" if p == ".." else p for p in parts) or "_"


class ExtractionStore:
    """An output folder: checks its header, knows what is done, and commits batches of results."""

    def __init__(self, out: str | os.PathLike[str], header: dict[str, Any], formats: Sequence[str]) -> None:
        self.out = Path(out)
        self.formats = tuple(formats)
        self.header = header
        self._check_header()
        self.items: dict[str, dict[str, Any]] = _read_table(self.out / "items.parquet", "video_id")
        self.metadata = _read_frame(self.out / "metadata.parquet", METADATA_COLUMNS)
        shards = sorted(self.shard_dir.glob("shard-*.npy")) if self.shard_dir.is_dir() else []
        self.next_shard = max((int(p.stem.split("-")[1]) for p in shards), default=-1) + 1

    @property
    def shard_dir(self) -> Path:
        return self.out / "embeddings"

    def shard_path(self, shard: int) -> Path:
        return self.shard_dir / f"shard-{shard:05d}.npy"

    def _check_header(self) -> None:
        path = self.out / "extraction.json"
        if path.is_file():
            try:
                old = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as err:
                raise ExtractionMismatchError(f"{path}: unreadable ({err}); use another --out") from None
            if old.get("key") != self.header["key"]:
                raise ExtractionMismatchError(
                    f"{self.out} holds an extraction with other settings ({_describe(old)}), not "
                    f"({_describe(self.header)}); use another --out or the same settings"
                )
            self.header = {**self.header, "created": old.get("created", self.header["created"])}
        self.out.mkdir(parents=True, exist_ok=True)
        write_json(path, self.header)

    # -- resume ----------------------------------------------------------------------------------

    def skip_reason(self, record: ClipRecord, content_key: str, retry_failed: bool = False) -> str | None:
        """``"done"`` or ``"failed"`` when an earlier run finished this video with these settings, else None."""
        entry = self.items.get(record.id)
        if entry is None or entry["content_key"] != content_key:
            return None
        if entry["status"] == "done" and set(self.formats) <= set(entry["formats"].split(",")):
            return "done"
        if entry["status"] == "failed" and not entry["retry"] and not retry_failed:
            return "failed"
        return None

    # -- commit ----------------------------------------------------------------------------------

    def commit(self, results: Iterable[ItemResult]) -> None:
        """Write one batch: its shard (``parquet``) and per-video files, then the tables."""
        results = list(results)
        if not results:
            return
        done = [r for r in results if r.ok]
        created = datetime.now(timezone.utc).isoformat(timespec="seconds")
        placed: dict[str, tuple[int, int, int]] = {}
        if done and "parquet" in self.formats:
            placed = self._write_shard(done)
        for result in done:
            self._write_files(result)
        self._write_metadata(results, placed)
        for result in results:
            shard, row, n_rows = placed.get(result.record.id, (-1, -1, 0))
            old = self.items.get(result.record.id)
            formats = set(self.formats) if result.ok else set()
            if result.ok and old and old["content_key"] == result.content_key and old["status"] == "done":
                formats |= set(old["formats"].split(","))  # files from an earlier run stay valid
                if shard < 0:
                    shard, row, n_rows = old["shard"], old["row"], old["n_rows"]
            self.items[result.record.id] = {
                "video_id": result.record.id,
                "video_path": result.record.video,
                "content_key": result.content_key,
                "status": "done" if result.ok else "failed",
                "reason": result.error,
                "retry": bool(result.retry),
                "formats": ",".join(f for f in FORMATS if f in formats),
                "shard": int(shard),
                "row": int(row),
                "n_rows": int(n_rows),
                "created": created,
            }
        table = pd.DataFrame(list(self.items.values()), columns=ITEM_COLUMNS)
        with atomic_path(self.out / "items.parquet") as tmp:
            table.to_parquet(tmp, index=False)

    def _write_shard(self, done: Sequence[ItemResult]) -> dict[str, tuple[int, int, int]]:
        shard = self.next_shard
        self.next_shard += 1
        blocks, placed, row = [], {}, 0
        for result in done:
            block = self._rows_of(result)
            placed[result.record.id] = (shard, row, len(block))
            blocks.append(block)
            row += len(block)
        with atomic_path(self.shard_path(shard)) as tmp, tmp.open("wb") as fh:
            np.save(fh, np.concatenate(blocks).astype(np.float32, copy=False))
        return placed

    @staticmethod
    def _rows_of(result: ItemResult) -> np.ndarray:
        """The video row (the re-normalised mean of the frame rows), then the frame rows."""
        video_row = pool_frames(result.rows)[None]
        return np.concatenate([video_row, result.rows]) if result.frame_index is not None else video_row

    def _write_files(self, result: ItemResult) -> None:
        embedding = pool_frames(result.rows)
        stem = self.out / f"{safe_name(result.record.id)}_embedding"
        if "npy" in self.formats:
            with atomic_path(stem.with_suffix(".npy")) as tmp, tmp.open("wb") as fh:
                np.save(fh, embedding)
        if "json" in self.formats:
            write_json(
                stem.with_suffix(".json"),
                {
                    "video_path": result.record.video,
                    "embedding": embedding.tolist(),
                    "shape": list(embedding.shape),
                    "dtype": str(embedding.dtype),
                },
                indent=0,
            )

    def _write_metadata(self, results: Sequence[ItemResult], placed: dict[str, tuple[int, int, int]]) -> None:
        if "parquet" not in self.formats:
            return
        ids = {r.record.id for r in results if r.ok and r.record.id in placed}
        ids |= {r.record.id for r in results if not r.ok}  # a video that now fails loses its old rows
        rows: list[dict[str, Any]] = []
        for result in results:
            if result.record.id not in placed:
                continue
            shard, first, _ = placed[result.record.id]
            base = {
                "video_id": result.record.id,
                "video_path": result.record.video,
                "shard": shard,
                "content_key": result.content_key,
            }
            rows.append({**base, "kind": "video", "frame_index": -1, "time_s": math.nan, "row": first})
            if result.frame_index is None:
                continue
            for i, (index, seconds) in enumerate(zip(result.frame_index, result.time_s, strict=True)):
                frame = {
                    "kind": "frame",
                    "frame_index": int(index),
                    "time_s": float(seconds),
                    "row": first + 1 + i,
                }
                rows.append({**base, **frame})
        kept = self.metadata[~self.metadata["video_id"].isin(ids)]
        fresh = pd.DataFrame(rows, columns=METADATA_COLUMNS)
        self.metadata = pd.concat([kept, fresh], ignore_index=True) if len(kept) else fresh
        self.metadata = self.metadata.astype({"frame_index": "int64", "shard": "int64", "row": "int64"})
        with atomic_path(self.out / "metadata.parquet") as tmp:
            self.metadata.to_parquet(tmp, index=False)

    # -- reading back ----------------------------------------------------------------------------

    def video_embedding(self, video_id: str) -> np.ndarray:
        """The (D,) video embedding of a done item, from whichever format holds it."""
        entry = self.items[video_id]
        formats = entry["formats"].split(",")
        if "parquet" in formats and entry["shard"] >= 0:
            return np.array(np.load(self.shard_path(entry["shard"]), mmap_mode="r")[entry["row"]])
        stem = self.out / f"{safe_name(video_id)}_embedding"
        if "npy" in formats:
            return np.load(stem.with_suffix(".npy"))
        payload = json.loads(stem.with_suffix(".json").read_text(encoding="utf-8"))
        return np.asarray(payload["embedding"], dtype=payload["dtype"])

    def write_consolidated(self, records: Sequence[ClipRecord]) -> Path:
        """``consolidated_embeddings.json`` over ``records`` (this run's input), in seed 001's layout."""
        entries = [self.items.get(r.id) for r in records]
        done = [e for e in entries if e is not None and e["status"] == "done"]
        embeddings = {}
        for entry in done:
            vector = self.video_embedding(entry["video_id"])
            embeddings[entry["video_id"]] = {
                "embedding": vector.tolist(),
                "shape": list(vector.shape),
                "video_path": entry["video_path"],
            }
        failed = sum(1 for e in entries if e is not None and e["status"] == "failed")
        metadata = {
            "total_videos": len(records),
            "successful": len(done),
            "failed": failed,
            "processing_date": datetime.now().strftime("%Y-%m-%d %H:%M:%S"),
            "model": self.header["model"],
            "dim": self.header["dim"],
        }
        return write_json(
            self.out / CONSOLIDATED_NAME, {"embeddings": embeddings, "metadata": metadata}, indent=0
        )

    def failures(self, records: Sequence[ClipRecord]) -> list[dict[str, str]]:
        """``[{video_path, reason}]`` of the failed items among ``records``."""
        entries = [self.items.get(r.id) for r in records]
        return [
            {"video_path": e["video_path"], "reason": e["reason"]}
            for e in entries
            if e is not None and e["status"] == "failed"
        ]


def _describe(header: dict[str, Any]) -> str:
    settings = ", ".join(f"{k}={v}" for k, v in sorted((header.get("settings") or {}).items()))
    return f"model {header.get('model')} weights {header.get('weights')} dim {header.get('dim')}; {settings}"


def _read_table(path: Path, key: str) -> dict[str, dict[str, Any]]:
    frame = _read_frame(path, ITEM_COLUMNS)
    return {row[key]: row for row in frame.to_dict("records")}


def _read_frame(path: Path, columns: list[str]) -> pd.DataFrame:
    if not path.is_file():
        return pd.DataFrame(columns=columns)
    try:
        frame = pd.read_parquet(path)
    except (OSError, ValueError) as err:
        raise ExtractionMismatchError(f"{path}: unreadable ({err}); delete it to start over") from None
    missing = set(columns) - set(frame.columns)
    if missing:
        raise ExtractionMismatchError(f"{path}: missing column(s) {sorted(missing)}; delete it to start over")
    return frame


def load_extraction(out: str | os.PathLike[str]) -> tuple[pd.DataFrame, np.ndarray, dict[str, Any]]:
    """The parquet format of ``out`` read back: (metadata, embeddings, header).

    ``embeddings`` holds every shard's rows stacked, and ``metadata`` gains a column ``index``,
    the row of each embedding in that array (``metadata.parquet`` only lists live rows: rows of a
    video extracted again after an edit are left out).

    Raises:
        FileNotFoundError: ``out`` has no ``extraction.json`` or ``metadata.parquet``.
    """
    root = Path(out)
    for name in ("extraction.json", "metadata.parquet"):
        if not (root / name).is_file():
            raise FileNotFoundError(f"{root}: no {name}; run `vtr extract VIDEOS --out {root}` first")
    header = json.loads((root / "extraction.json").read_text(encoding="utf-8"))
    metadata = pd.read_parquet(root / "metadata.parquet")
    shards = sorted(metadata["shard"].unique().tolist())
    arrays, offset = [], {}
    total = 0
    for shard in shards:
        array = np.load(root / "embeddings" / f"shard-{shard:05d}.npy", mmap_mode="r")
        offset[shard] = total
        total += len(array)
        arrays.append(array)
    embeddings = np.concatenate(arrays) if arrays else np.zeros((0, header["dim"]), np.float32)
    metadata = metadata.assign(
        index=[offset[s] + r for s, r in zip(metadata["shard"], metadata["row"], strict=True)]
    )
    return metadata, embeddings, header
