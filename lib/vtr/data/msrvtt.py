"""MSR-VTT annotations, splits, pre-extracted features and video preparation.

MSR-VTT (Xu et al., "MSR-VTT: A Large Video Description Dataset for Bridging Video and Language",
CVPR 2016) has 10,000 YouTube clips with 20 English captions each and one of 20 categories. The
annotation folder holds the files of the release and of the common retrieval splits:

* ``train_val_videodatainfo.json``, ``test_videodatainfo.json``: the 2016 release (videos with
  ``video_id``, ``category`` (int), ``url``, ``start time``, ``end time``, ``split``; sentences with
  ``sen_id``, ``video_id``, ``caption``);
* ``category.txt``: ``name<TAB>id`` per line;
* ``MSRVTT_JSFUSION_test.csv`` (``key,vid_key,video_id,sentence``): the 1k-A test split;
* ``MSRVTT_train.9k.csv`` (``video_id``): the 9k training split.

Splits (:data:`SPLIT_PROTOCOLS`):

* ``train`` / ``val`` / ``test``: the official 2016 splits (6,513 / 497 / 2,990 videos; video0-6512,
  video6513-7009, video7010-9999), all 20 captions per video (Xu et al., 2016).
* ``test_1k``: the 1k-A test of JSFusion (Yu, Kim and Kim, "A Joint Sequence Fusion Model for Video
  Question Answering and Retrieval", ECCV 2018): 1,000 videos drawn from the official test split,
  each queried by the single sentence in the csv (not all 20), in csv order. This is the protocol
  behind most published text-to-video numbers (CLIP4Clip, Luo et al. 2022; MMT, Gabeur et al. 2020).
* ``train_9k``: the "Training-9K" split paired with 1k-A (MMT; CLIP4Clip): the 9,000 videos of
  the csv (official train + val + the 1,990 test videos not in 1k-A), all 20 captions each.
* ``train_7k``: the "Training-7K" split paired with 1k-A (CLIP4Clip): the official train + val,
  7,010 videos, all 20 captions each.

Records carry no ``start`` / ``end``: the released files are already cut, so the clip is the whole
file; the position in the source YouTube video is kept in ``meta`` (``url``, ``source_start``,
``source_end``). Captions are whitespace-normalised (runs of spaces collapsed, ends stripped): 370 of
the 200,000 release captions carry double or trailing spaces. The 1k-A sentences are used as the csv
has them; 12 of them differ from their release caption by punctuation that JSFusion removed.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import tarfile
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np
from tqdm.auto import tqdm

from vtr.atomic import atomic_path, write_json
from vtr.data.manifest import ClipRecord, LoadedRecords, ManifestError, warn_skipped
from vtr.progress import show_progress

if TYPE_CHECKING:
    from vtr.config import Profile

TRAIN_VAL_JSON = "train_val_videodatainfo.json"
TEST_JSON = "test_videodatainfo.json"
CATEGORY_TXT = "category.txt"
TEST_1K_CSV = "MSRVTT_JSFUSION_test.csv"
TRAIN_9K_CSV = "MSRVTT_train.9k.csv"

SPLIT_PROTOCOLS: dict[str, str] = {
    "train": "official 2016 train split (6,513 videos), 20 captions per video",
    "val": "official 2016 validate split (497 videos), 20 captions per video",
    "test": "official 2016 test split (2,990 videos), 20 captions per video",
    "test_1k": "1k-A test (JSFusion, Yu et al. 2018): 1,000 videos, one csv sentence per video",
    "train_9k": "Training-9K (MMT / CLIP4Clip): the 9,000 videos of MSRVTT_train.9k.csv, 20 captions each",
    "train_7k": "Training-7K (CLIP4Clip): official train + validate (7,010 videos), 20 captions each",
}
SPLITS = tuple(SPLIT_PROTOCOLS)
# The release calls the validation split "validate"; the manifest uses train / val / test.
_RELEASE_SPLITS = {"train": "train", "validate": "val", "test": "test"}
_VIDEO_FIELDS = ("video_id", "category", "url", "start time", "end time", "split")
_SENTENCE_FIELDS = ("sen_id", "video_id", "caption")
VIDEO_FILE = re.compile(r"^(video\d+)\.mp4$")


@dataclass(frozen=True)
class VideoInfo:
    """One video of the 2016 release."""

    video_id: str
    category_id: int
    url: str
    source_start: float  # seconds into the YouTube video where the released clip starts
    source_end: float
    split: str  # train / val / test


@dataclass
class VideoDataInfo:
    """The parsed release: videos in file order, captions ordered by ``sen_id``, category names."""

    videos: dict[str, VideoInfo]
    captions: dict[str, list[str]]
    categories: dict[int, str]
    annotations_dir: Path


def normalize_caption(text: str) -> str:
    """Collapse whitespace runs and strip the ends (tokenisers ignore them; string matching does not)."""
    return " ".join(text.split())


def _require(path: Path) -> Path:
    if not path.is_file():
        raise ManifestError(f"MSR-VTT annotation file {path} not found")
    return path


def category_names(annotations_dir: str | os.PathLike[str]) -> dict[int, str]:
    """``{id: name}`` from ``category.txt`` (``name<TAB>id`` per line; names may contain spaces)."""
    path = _require(Path(annotations_dir) / CATEGORY_TXT)
    names: dict[int, str] = {}
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.strip().rsplit(maxsplit=1)
        if len(parts) != 2 or not parts[1].isdigit():
            raise ManifestError(f"{path}:{lineno}: expected 'name<TAB>id', got {line!r}")
        idx = int(parts[1])
        if idx in names:
            raise ManifestError(f"{path}:{lineno}: category id {idx} appears twice")
        names[idx] = parts[0].strip()
    return names


def _load_json(path: Path) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except json.JSONDecodeError as err:
        raise ManifestError(f"{path}: not valid JSON ({err.msg} at line {err.lineno})") from None
    for key in ("videos", "sentences"):
        if not isinstance(data, dict) or not isinstance(data.get(key), list):
            raise ManifestError(f"{path}: missing top-level field {key!r} (a list)")
    return data


def _missing(entry: Any, fields: Sequence[str]) -> list[str]:
    return [f for f in fields if not isinstance(entry, dict) or f not in entry]


def _parse_video(path: Path, i: int, entry: Any, categories: dict[int, str]) -> VideoInfo:
    where = f"{path}: videos[{i}]"
    if missing := _missing(entry, _VIDEO_FIELDS):
        raise ManifestError(f"{where}: missing field(s) {missing}")
    if entry["split"] not in _RELEASE_SPLITS:
        raise ManifestError(
            f"{where}: field 'split' is {entry['split']!r}; expected {sorted(_RELEASE_SPLITS)}"
        )
    if entry["category"] not in categories:
        raise ManifestError(
            f"{where}: field 'category' is {entry['category']!r}, not an id in {CATEGORY_TXT} {sorted(categories)}"
        )
    try:
        start, end = float(entry["start time"]), float(entry["end time"])
    except (TypeError, ValueError):
        raise ManifestError(f"{where}: fields 'start time' / 'end time' must be numbers") from None
    return VideoInfo(str(entry["video_id"]), int(entry["category"]), str(entry["url"]), start, end,
                     _RELEASE_SPLITS[entry["split"]])  # fmt: skip


def read_videodatainfo(annotations_dir: str | os.PathLike[str]) -> VideoDataInfo:
    """Parse both videodatainfo files and ``category.txt`` (a couple of seconds for the 200k captions).

    Raises :class:`ManifestError` naming the file and the field for a missing file or field, a
    duplicate video or an unknown category. Sentences of unknown videos are an error too: they mean
    the two files do not belong together.
    """
    folder = Path(annotations_dir)
    categories = category_names(folder)
    videos: dict[str, VideoInfo] = {}
    sentences: list[tuple[int, str, str]] = []
    for name in (TRAIN_VAL_JSON, TEST_JSON):
        path = _require(folder / name)
        data = _load_json(path)
        for i, entry in enumerate(data["videos"]):
            info = _parse_video(path, i, entry, categories)
            if info.video_id in videos:
                raise ManifestError(f"{path}: videos[{i}]: video_id {info.video_id!r} appears twice")
            videos[info.video_id] = info
        for i, entry in enumerate(data["sentences"]):
            if missing := _missing(entry, _SENTENCE_FIELDS):
                raise ManifestError(f"{path}: sentences[{i}]: missing field(s) {missing}")
            if not isinstance(entry["sen_id"], int) or isinstance(entry["sen_id"], bool):
                raise ManifestError(
                    f"{path}: sentences[{i}]: field 'sen_id' must be an int, got {entry['sen_id']!r}"
                )
            sentences.append((entry["sen_id"], str(entry["video_id"]), str(entry["caption"])))
    captions: dict[str, list[str]] = {vid: [] for vid in videos}
    for sen_id, vid, caption in sorted(sentences):
        if vid not in captions:
            raise ManifestError(
                f"{folder}: sentence sen_id={sen_id} names video_id {vid!r}, not in the videos list"
            )
        if text := normalize_caption(caption):
            captions[vid].append(text)
    return VideoDataInfo(videos, captions, categories, folder)


def _read_csv(path: Path, required: Sequence[str]) -> list[dict[str, str]]:
    with open(_require(path), encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        if missing := [c for c in required if c not in (reader.fieldnames or [])]:
            raise ManifestError(f"{path}: missing column(s) {missing}; found {reader.fieldnames}")
        return list(reader)


def _split_plan(info: VideoDataInfo, split: str) -> list[tuple[str, list[str] | None, dict[str, Any]]]:
    """``(video_id, captions or None for all 20, extra meta)`` in the split's order."""
    folder = info.annotations_dir
    if split in ("train", "val", "test"):
        return [(v.video_id, None, {}) for v in info.videos.values() if v.split == split]
    if split == "train_7k":
        return [(v.video_id, None, {}) for v in info.videos.values() if v.split in ("train", "val")]
    if split == "train_9k":
        return [(row["video_id"], None, {}) for row in _read_csv(folder / TRAIN_9K_CSV, ["video_id"])]
    if split == "test_1k":
        plan: dict[str, tuple[list[str], dict[str, Any]]] = {}
        for lineno, row in enumerate(_read_csv(folder / TEST_1K_CSV, ["video_id", "sentence"]), 2):
            sentence = normalize_caption(row["sentence"] or "")
            if not sentence:
                raise ManifestError(f"{folder / TEST_1K_CSV}:{lineno}: field 'sentence' is empty")
            caps, meta = plan.setdefault(row["video_id"], ([], {"query_keys": []}))
            caps.append(sentence)
            meta["query_keys"].append(row.get("key") or f"line{lineno}")
        return [(vid, caps, meta) for vid, (caps, meta) in plan.items()]
    raise ValueError(f"unknown MSR-VTT split {split!r}; expected one of {SPLITS}")


def load_msrvtt(
    annotations_dir: str | os.PathLike[str],
    split: str = "test_1k",
    videos_dir: str | os.PathLike[str] | None = None,
    *,
    info: VideoDataInfo | None = None,
) -> LoadedRecords:
    """Records of one split (see the module docstring and :data:`SPLIT_PROTOCOLS` for each protocol).

    ``video`` is ``<videos_dir>/<video_id>.mp4`` (``videos_dir`` kept as given, so a relative one
    stays relative to wherever the manifest will be written), or just ``<video_id>.mp4``. Pass an
    ``info`` from :func:`read_videodatainfo` to build several splits from one parse. Videos without
    captions and csv ids missing from the release are skipped with a warning and listed in
    ``report``.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown MSR-VTT split {split!r}; expected one of {SPLITS}")
    info = info or read_videodatainfo(annotations_dir)
    records = LoadedRecords(report={"split": split, "protocol": SPLIT_PROTOCOLS[split]})
    unknown, captionless = [], []
    for vid, captions, extra in _split_plan(info, split):
        video = info.videos.get(vid)
        if video is None:
            unknown.append(vid)
            continue
        captions = captions if captions is not None else list(info.captions[vid])
        if not captions:
            captionless.append(vid)
            continue
        name = f"{vid}.mp4"
        records.append(
            ClipRecord(
                id=vid,
                video=os.fspath(Path(videos_dir) / name) if videos_dir is not None else name,
                captions=captions,
                split={"train_9k": "train", "train_7k": "train", "test_1k": "test"}.get(split, split),
                category=info.categories[video.category_id],
                meta={
                    "url": video.url,
                    "source_start": video.source_start,
                    "source_end": video.source_end,
                    "category_id": video.category_id,
                    "msrvtt_split": video.split,
                    **extra,
                },
            )
        )
    records.report.update(unknown_videos=unknown, videos_without_captions=captionless)
    warn_skipped(
        info.annotations_dir, f"video id(s) of split {split!r} not in the videodatainfo files", unknown
    )
    warn_skipped(info.annotations_dir, "video(s) without captions skipped", captionless)
    return records


# --- pre-extracted features ------------------------------------------------------------------


def _read_ids(path: Path) -> list[str]:
    if not path.is_file():
        raise ManifestError(f"feature id list {path} not found")
    suffix = path.suffix.lower()
    if suffix == ".json":
        ids = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(ids, list):
            raise ManifestError(f"{path}: expected a JSON list of ids")
    elif suffix == ".npy":
        ids = np.load(path, allow_pickle=False).tolist()
    else:  # .txt / .csv: one id per line
        ids = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [str(i) for i in ids]


def load_features(
    array_path: str | os.PathLike[str],
    ids_path: str | os.PathLike[str],
    records: Sequence[ClipRecord] | Sequence[str],
) -> np.ndarray:
    """Pre-extracted features (an ``.npy`` of shape (N, ...)) re-ordered to match ``records``.

    ``ids_path`` names row ``i``'s video: a ``.txt`` (one id per line), a ``.json`` list or an
    ``.npy`` of strings. Checks that the array has one row per id, that ids are unique and that
    every record's id is present (the error lists the missing ones). The array is memory-mapped,
    so only the rows needed are read.
    """
    array_path, ids_path = Path(array_path), Path(ids_path)
    if not array_path.is_file():
        raise ManifestError(f"feature array {array_path} not found")
    try:
        features = np.load(array_path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError) as err:
        raise ManifestError(f"feature array {array_path} cannot be read as a .npy array ({err})") from None
    if not isinstance(features, np.ndarray):
        raise ManifestError(f"feature array {array_path} is an archive of arrays; expected one .npy array")
    ids = _read_ids(ids_path)
    if features.ndim == 0 or features.shape[0] != len(ids):
        raise ManifestError(
            f"{array_path} has {features.shape[0] if features.ndim else 0} rows but {ids_path} lists {len(ids)} ids"
        )
    row_of = {vid: row for row, vid in enumerate(ids)}
    if len(row_of) != len(ids):
        duplicates = sorted(vid for vid, n in Counter(ids).items() if n > 1)
        raise ManifestError(f"{ids_path}: {len(duplicates)} duplicate id(s): {duplicates[:20]}")
    wanted = [r if isinstance(r, str) else r.id for r in records]
    if missing := [i for i in wanted if i not in row_of]:
        shown = ", ".join(missing[:20]) + (", ..." if len(missing) > 20 else "")
        raise ManifestError(
            f"{ids_path}: {len(missing)} of {len(wanted)} annotation id(s) have no features: {shown}"
        )
    return np.asarray(features[[row_of[i] for i in wanted]])


# --- preparing videos from a folder or an archive ----------------------------------------------


def find_videos(source: str | os.PathLike[str]) -> dict[str, Path]:
    """``videoNNNN.mp4`` files anywhere under a folder, by video id (the first in sorted order wins)."""
    found: dict[str, Path] = {}
    for path in sorted(Path(source).rglob("video*.mp4")):
        if (m := VIDEO_FILE.match(path.name)) and path.is_file():
            found.setdefault(m.group(1), path)
    return found


def _is_archive(path: Path) -> bool:
    return path.is_file() and (zipfile.is_zipfile(path) or tarfile.is_tarfile(path))


def extract_videos(
    archive: str | os.PathLike[str], out_dir: str | os.PathLike[str], wanted: set[str] | None = None
) -> tuple[dict[str, Path], list[str]]:
    """Extract only the ``videoNNNN.mp4`` members (of ``wanted`` ids, if given) into ``out_dir``.

    Each file is written atomically and a file already there with the member's size is kept, so an
    interrupted run resumes where it stopped. Members that fail to read (bad CRC, truncated archive)
    are reported, not raised. Returns ``({video_id: path}, [problems])``.
    """
    archive, out_dir = Path(archive), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    found: dict[str, Path] = {}
    problems: list[str] = []
    for vid, size, open_member in _members(archive, problems):
        if (wanted is not None and vid not in wanted) or vid in found:
            continue
        target = out_dir / f"{vid}.mp4"
        if not (target.is_file() and target.stat().st_size == size):
            try:
                with open_member() as src, atomic_path(target) as tmp, open(tmp, "wb") as dst:
                    shutil.copyfileobj(src, dst, length=1 << 20)
            except (zipfile.BadZipFile, tarfile.TarError, OSError, EOFError, zlib.error) as err:
                problems.append(f"{archive}: member {vid}.mp4 could not be extracted ({err})")
                continue
        found[vid] = target
    return found, problems


def _members(archive: Path, problems: list[str]) -> Iterator[tuple[str, int, Callable[[], IO[bytes]]]]:
    """``(video_id, size, opener)`` per ``videoNNNN.mp4`` member; a broken archive ends the listing.

    The opener must be called before the next member is requested (tar archives are streamed).
    """
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            infos = [i for i in zf.infolist() if not i.is_dir() and VIDEO_FILE.match(Path(i.filename).name)]
            for info in tqdm(infos, desc=f"extract {archive.name}", unit="video", disable=not show_progress()):
                vid = VIDEO_FILE.match(Path(info.filename).name).group(1)  # type: ignore[union-attr]
                yield vid, info.file_size, lambda info=info: zf.open(info)
        return
    # Streaming mode ("r|*") reads a .tar.gz once, front to back, instead of seeking through it.
    try:
        with (
            tarfile.open(archive, mode="r|*") as tf,
            tqdm(desc=f"extract {archive.name}", unit="video", disable=not show_progress()) as bar,
        ):
            for member in tf:
                m = VIDEO_FILE.match(Path(member.name).name)
                if member.isfile() and m:
                    bar.update()
                    yield m.group(1), member.size, lambda member=member: tf.extractfile(member)
    except (tarfile.TarError, EOFError, OSError, zlib.error) as err:
        problems.append(f"{archive}: archive is damaged, stopped reading it ({err})")


def prepare_msrvtt(
    source: str | os.PathLike[str],
    annotations_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    splits: Sequence[str] = SPLITS,
) -> Path:
    """Find the MSR-VTT videos in ``source``, extract them from an archive, and report what is missing.

    ``source`` is a folder (searched recursively for ``videoNNNN.mp4``, used in place) or a ``.zip`` /
    ``.tar`` / ``.tar.gz`` archive (only the annotated ``videoNNNN.mp4`` members are extracted into
    ``out_dir/videos``, resumably: the folder to give as ``data.root``). Writes
    ``out_dir/prepare_report.json`` listing, per split, the annotated videos, how many were found
    and which have no file. The ``msrvtt`` data source reads the annotations and ``data.root``
    directly, so no per-split manifest is written. Returns ``out_dir``.
    """
    source, out_dir = Path(source), Path(out_dir)
    if unknown := [s for s in splits if s not in SPLITS]:
        raise ValueError(f"unknown MSR-VTT split(s) {unknown}; expected {SPLITS}")
    info = read_videodatainfo(annotations_dir)
    per_split = {split: load_msrvtt(annotations_dir, split, info=info) for split in splits}
    wanted = {rec.id for records in per_split.values() for rec in records}
    if source.is_dir():
        found, problems = set(find_videos(source)), []
    elif _is_archive(source):
        files, problems = extract_videos(source, out_dir / "videos", wanted)
        found = set(files)
    else:
        raise ManifestError(f"MSR-VTT video source {source} is neither a folder nor a zip / tar archive")

    report: dict[str, Any] = {"source": os.fspath(source), "problems": problems, "splits": {}}
    for split, records in per_split.items():
        missing = [rec.id for rec in records if rec.id not in found]
        report["splits"][split] = {
            "protocol": SPLIT_PROTOCOLS[split],
            "annotated": len(records),
            "found": len(records) - len(missing),
            "missing_videos": missing,
        }
        warn_skipped(source, f"video(s) of split {split!r} not found", missing)
    warn_skipped(source, "archive member(s) could not be extracted", problems)
    write_json(out_dir / "prepare_report.json", report)
    return out_dir


def msrvtt_dirs(profile: Profile) -> tuple[Path, Path]:
    """``(annotations_dir, videos_dir)`` of a profile's MSR-VTT: the real one when
    ``data.msrvtt_annotations`` is set (videos under ``data.root``, default ``data/msrvtt/videos``),
    else the sample world's MSR-VTT-format folder (built on first use)."""
    from vtr.paths import resolve

    if profile.data.msrvtt_annotations:
        return resolve(profile.data.msrvtt_annotations), resolve(profile.data.root or "data/msrvtt/videos")
    from vtr.data.synthetic import sample_world

    folder = sample_world(profile).msrvtt_dir
    return folder, folder / "videos"
