"""The sample world's files in the formats of the real data sets it stands in for.

* stills: one compressed ``.npz`` written with fixed zip timestamps (``numpy.savez_compressed``
  stamps the current time, which would break byte-for-byte reproducibility);
* MSR-VTT: ``MSRVTT_JSFUSION_test.csv``, ``MSRVTT_train.9k.csv``, ``train_val_videodatainfo.json``,
  ``test_videodatainfo.json`` and ``category.txt``, laid out like the 2016 release;
* moments: QVHighlights jsonl (qid, query, duration, vid, relevant_clip_ids, saliency_scores,
  relevant_windows), one file per split.
"""

from __future__ import annotations

import csv
import io
import json
import os
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from vtr.atomic import atomic_path, write_bytes, write_text
from vtr.data.manifest import ClipRecord

_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
# MSR-VTT's videodatainfo calls the validation split "validate".
MSRVTT_SPLIT_NAMES = {"train": "train", "val": "validate", "test": "test"}


def write_npz(path: str | os.PathLike[str], arrays: Mapping[str, np.ndarray]) -> Path:
    """Atomically write a compressed ``.npz`` that ``np.load`` reads, identical bytes for identical arrays."""
    with (
        atomic_path(path) as tmp,
        zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=3) as archive,
    ):
        for name, array in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            with archive.open(info, "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asarray(array), allow_pickle=False)
    return Path(path)


def _csv_text(header: list[str], rows: Iterable[list[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")  # the real files use bare \n
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def write_msrvtt(
    out_dir: Path,
    records: list[ClipRecord],
    categories: list[str],
    duration: float,
    url_prefix: str,
) -> None:
    """MSR-VTT annotation files for ``records`` whose ids are ``video<N>``.

    The JSFusion csv holds one sentence per test video (the first caption), as the 1k-A protocol
    does; ``MSRVTT_train.9k.csv`` lists the train split's videos (the 9k protocol's "every video
    outside the test set" minus our val split, which stays held out).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    test = [r for r in records if r.split == "test"]
    write_text(
        out_dir / "MSRVTT_JSFUSION_test.csv",
        _csv_text(
            ["key", "vid_key", "video_id", "sentence"],
            (
                [f"ret{i}", "msr" + r.id.removeprefix("video"), r.id, r.captions[0]]
                for i, r in enumerate(test)
            ),
        ),
    )
    write_text(
        out_dir / "MSRVTT_train.9k.csv",
        _csv_text(["video_id"], ([r.id] for r in records if r.split == "train")),
    )
    category_index = {name: i for i, name in enumerate(categories)}
    info = {
        "contributor": "vtr sample world (procedurally generated)",
        "data_created": "1970-01-01 00:00:00",
        "version": "1.0",
        "description": "The vtr sample world in the layout of the 2016 MSR-VTT release.",
        "year": "2016",
    }
    sen_id = 0
    for filename, splits in (
        ("train_val_videodatainfo.json", ("train", "val")),
        ("test_videodatainfo.json", ("test",)),
    ):
        chosen = [r for r in records if r.split in splits]
        videos, sentences = [], []
        for record in chosen:
            number = int(record.id.removeprefix("video"))
            videos.append(
                {
                    "category": category_index[record.category or ""],
                    "url": f"{url_prefix}{record.id}",
                    "video_id": record.id,
                    "start time": 0.0,
                    "end time": duration,
                    "split": MSRVTT_SPLIT_NAMES[record.split],
                    "id": number,
                }
            )
            for caption in record.captions:
                sentences.append({"caption": caption, "video_id": record.id, "sen_id": sen_id})
                sen_id += 1
        payload = {"info": info, "videos": videos, "sentences": sentences}
        write_text(out_dir / filename, json.dumps(payload))
    # category.txt: "<name>\t<index>" with the CRLF line ends of the real file.
    write_bytes(
        out_dir / "category.txt", "".join(f"{name}\t{i}\r\n" for i, name in enumerate(categories)).encode()
    )
