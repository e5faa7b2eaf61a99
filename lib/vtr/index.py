"""A faiss search index over the video and frame embeddings of a ``vtr extract`` folder.

    index = build_index("runs/extract", "runs/index")      # or VideoIndex.load("runs/index")
    hits = index.search("a red circle moves left", k=10)   # a pandas DataFrame, one row per video
    hits = index.search(query_vector, k=10)                # a (D,) float32 vector works too

An extraction folder (``vtr extract --format parquet``) holds ``embeddings/shard-*.npy`` (float32
``[rows, dim]``, L2-normalised), ``metadata.parquet`` (one row per embedding: ``video_id``,
``video_path``, ``kind`` "video" or "frame", ``frame_index``, ``time_s``, ``shard``, ``row``,
``content_key``) and ``extraction.json`` (``model``, ``dim``, ``settings``). The index folder holds
``index.faiss``, ``metadata.parquet`` (the id -> row table: faiss id ``i`` is row ``i``) and
``index.json`` (model, dim, kind, params, count), each written atomically; ``index.json`` is written
last and its count is checked against the other two on load, so a half-written index is refused.

Index kinds (``kind=``):

* ``"flat"`` -- ``faiss.IndexFlatIP``: exact inner-product (cosine) search, no training;
* ``"ivf"`` -- ``faiss.IndexIVFFlat``: ``nlist`` k-means cells, a query scans ``nprobe`` of them;
* ``"hnsw"`` -- ``faiss.IndexHNSWFlat``: a graph index, ``M`` links per node, ``efSearch`` at query time;
* ``"auto"`` -- flat up to :data:`FLAT_MAX_ROWS` rows, IVF above. ``benchmarks/search.py`` measured on
  a 2-core CPU (docs/search.md) that a one-thread flat query over 512-d vectors costs about 0.9 ms of
  CPU per 10k rows, so flat stays exact and under the 5 ms goal up to about 50k rows; above that IVF
  answers in 2-3 ms (up to 1M rows) at recall@10 >= 0.95 on clustered vectors.

Search breadth: unless the caller sets ``nprobe`` / ``efSearch``, a build doubles it from its default
until the index's estimated recall@10 (64 stored vectors as queries, against brute force) reaches
:data:`TARGET_RECALL`; ``index.json`` keeps the estimate. Stored vectors are easier queries than
held-out ones or text embeddings, so the estimate is an upper bound (docs/search.md).

Incremental add: building into a folder that already holds an index of the same model appends only
the extraction rows it does not hold yet (rows are identified by ``content_key`` and ``frame_index``).
Flat and HNSW indexes just grow. An IVF index keeps the k-means cells it was trained on until the
collection grows past :data:`IVF_RETRAIN_FACTOR` times the size it was trained at; then it is
re-trained on all rows (cells fitted to a quarter of the data no longer balance the lists).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import faiss
import numpy as np
import pandas as pd

from vtr.atomic import atomic_path, write_json

if TYPE_CHECKING:
    from vtr.models.encoders import Encoder

INDEX_FILE = "index.faiss"
METADATA_FILE = "metadata.parquet"
INFO_FILE = "index.json"
EXTRACTION_INFO_FILE = "extraction.json"
EMBEDDINGS_DIR = "embeddings"

KINDS = ("auto", "flat", "ivf", "hnsw")
FLAT_MAX_ROWS = 50_000  # auto: exact flat search up to here (measured, see the module docstring)
IVF_RETRAIN_FACTOR = 4.0  # re-train IVF cells once the collection is this many times its training size
DEFAULT_NPROBE = 16
DEFAULT_HNSW_M = 32
DEFAULT_EF_SEARCH = 64
DEFAULT_EF_CONSTRUCTION = 64
# OpenMP threads for a query: one query is too little work to share, and on a loaded machine the
# threads' barrier costs more than the search (faiss flat, 10k x 512: 83 ms with 2 threads, 4.6 ms with 1)
QUERY_THREADS = 1
TARGET_RECALL = 0.95  # a build widens nprobe / efSearch until its estimated recall@10 reaches this
MAX_EF_SEARCH = 1024
_MIN_POINTS_PER_CELL = 39  # faiss warns below this many training points per k-means centroid
_TRAIN_POINTS_PER_CELL = 64  # k-means trains on at most this many sampled points per cell

METADATA_COLUMNS = ("video_id", "video_path", "kind", "frame_index", "time_s", "shard", "row", "content_key")
RESULT_COLUMNS = ("rank", "video_id", "video_path", "score", "best_time_s", "frame_times", "frame_scores")


class SearchIndexError(ValueError):
    """An index or extraction folder that cannot be used: the message names the folder and the problem."""


class MissingIndexError(SearchIndexError):
    """No index (or no extraction) in the given folder."""


class IndexMismatchError(SearchIndexError):
    """An index and a query, an encoder or new rows that do not belong together (model or dimension)."""


# ----------------------------------------------------------------------------------- extraction


@dataclass
class Extraction:
    """The embeddings of an extraction folder, row-aligned with its metadata table."""

    vectors: np.ndarray  # float32 (N, dim)
    metadata: pd.DataFrame  # the columns of METADATA_COLUMNS, one row per vector
    model: Any  # extraction.json's "model": the encoder name
    dim: int
    settings: dict[str, Any] = field(default_factory=dict)


def read_extraction(extract_dir: str | Path) -> Extraction:
    """Read ``extraction.json``, ``metadata.parquet`` and the shards they point to.

    Raises:
        MissingIndexError: the folder or one of its files is missing.
        SearchIndexError: a missing field or column, a shard of the wrong width, a row out of range.
    """
    root = Path(extract_dir)
    info_path, meta_path = root / EXTRACTION_INFO_FILE, root / METADATA_FILE
    for path in (info_path, meta_path):
        if not path.is_file():
            raise MissingIndexError(f"{path}: not found; is {root} the output folder of `vtr extract`?")
    info = _read_json(info_path)
    for key in ("model", "dim"):
        if key not in info:
            raise SearchIndexError(f"{info_path}: field {key!r} is missing")
    dim = int(info["dim"])
    metadata = pd.read_parquet(meta_path)
    if missing := [c for c in METADATA_COLUMNS if c not in metadata.columns]:
        raise SearchIndexError(f"{meta_path}: columns {missing} are missing")
    vectors = np.zeros((len(metadata), dim), dtype=np.float32)
    for shard, positions in metadata.groupby("shard", sort=True).indices.items():
        array = _load_shard(root, shard, dim)
        rows = metadata["row"].to_numpy()[positions].astype(np.int64)
        if len(rows) and (rows.min() < 0 or rows.max() >= len(array)):
            raise SearchIndexError(
                f"{meta_path}: field 'row' points past shard {shard!r} ({len(array)} rows): max row {rows.max()}"
            )
        vectors[positions] = array[rows]
    return Extraction(vectors, metadata.reset_index(drop=True), info["model"], dim, info.get("settings", {}))


def _shard_path(root: Path, shard: Any) -> Path:
    """A shard given as a number (``shard-00003.npy``) or as a file name relative to ``embeddings/``."""
    if isinstance(shard, int | np.integer):
        return root / EMBEDDINGS_DIR / f"shard-{int(shard):05d}.npy"
    name = str(shard)
    path = root / name if "/" in name else root / EMBEDDINGS_DIR / name
    return path if path.suffix == ".npy" else path.with_name(path.name + ".npy")


def _load_shard(root: Path, shard: Any, dim: int) -> np.ndarray:
    path = _shard_path(root, shard)
    if not path.is_file():
        raise MissingIndexError(f"{root / METADATA_FILE}: shard {shard!r} refers to {path}, which is missing")
    array = np.load(path, mmap_mode="r")
    if array.ndim != 2 or array.shape[1] != dim:
        raise IndexMismatchError(
            f"{path}: shape {array.shape}, but {root / EXTRACTION_INFO_FILE} says dim {dim}"
        )
    return array


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise SearchIndexError(f"{path}: not valid JSON ({err})") from err
    if not isinstance(data, dict):
        raise SearchIndexError(f"{path}: expected a JSON object")
    return data


def model_arch(model: Any) -> str:
    """The architecture in an extraction's ``model`` field: the name itself, a dict's ``arch``, or the
    part of ``"arch/weights"``, ``"arch:weights"`` or ``"arch@weights"`` before the separator."""
    if isinstance(model, dict):
        return str(model.get("arch", ""))
    return re.split(r"[/:@ ]", str(model), maxsplit=1)[0]


# ----------------------------------------------------------------------------------- faiss kinds


def choose_kind(kind: str, count: int) -> str:
    """``kind`` itself, or for ``"auto"`` flat up to :data:`FLAT_MAX_ROWS` rows and IVF above."""
    if kind not in KINDS:
        raise SearchIndexError(f"index kind {kind!r} is not one of {', '.join(KINDS)}")
    if kind != "auto":
        return kind
    return "flat" if count <= FLAT_MAX_ROWS else "ivf"


def default_nlist(count: int) -> int:
    """IVF cells: the power of two nearest sqrt(count), and at least 39 training points per cell."""
    nlist = 2 ** round(math.log2(max(math.sqrt(max(count, 1)), 1.0)))
    return int(max(1, min(nlist, count // _MIN_POINTS_PER_CELL, 65536)))


def _new_faiss_index(kind: str, dim: int, params: dict[str, Any]) -> faiss.Index:
    if kind == "flat":
        return faiss.IndexFlatIP(dim)
    if kind == "ivf":  # the factory hands the quantizer's ownership to the IVF index
        return faiss.index_factory(dim, f"IVF{int(params['nlist'])},Flat", faiss.METRIC_INNER_PRODUCT)
    if kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, int(params["M"]), faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = int(params["efConstruction"])
        return index
    raise SearchIndexError(f"index kind {kind!r} is not one of flat, ivf, hnsw")


def _default_params(kind: str, count: int, given: dict[str, Any]) -> dict[str, Any]:
    if kind == "ivf":
        params = {"nlist": default_nlist(count), "nprobe": DEFAULT_NPROBE}
    elif kind == "hnsw":
        params = {
            "M": DEFAULT_HNSW_M,
            "efSearch": DEFAULT_EF_SEARCH,
            "efConstruction": DEFAULT_EF_CONSTRUCTION,
        }
    else:
        params = {}
    return {**params, **{key: value for key, value in given.items() if value is not None}}


def _apply_search_params(index: faiss.Index, kind: str, params: dict[str, Any]) -> None:
    if kind == "ivf":
        index.nprobe = int(params["nprobe"])
    elif kind == "hnsw":
        index.hnsw.efSearch = int(params["efSearch"])


def _train_sample(vectors: np.ndarray, nlist: int, seed: int = 0) -> np.ndarray:
    limit = nlist * _TRAIN_POINTS_PER_CELL
    if len(vectors) <= limit:
        return np.ascontiguousarray(vectors)
    picks = np.sort(np.random.default_rng(seed).choice(len(vectors), size=limit, replace=False))
    return np.ascontiguousarray(vectors[picks])


def _as_matrix(vectors: np.ndarray, dim: int, what: str) -> np.ndarray:
    array = np.ascontiguousarray(np.asarray(vectors, dtype=np.float32))
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2 or array.shape[1] != dim:
        raise IndexMismatchError(f"{what}: vectors of shape {array.shape}, but the index has dim {dim}")
    return array


# ----------------------------------------------------------------------------------- the index


class VideoIndex:
    """A faiss index plus its id -> metadata table; search returns ranked videos with frame times.

    Args:
        model: the encoder name the embeddings come from (an extraction's ``model``).
        dim: embedding width.
        kind: ``"auto"``, ``"flat"``, ``"ivf"`` or ``"hnsw"`` (see the module docstring).
        params: ``nlist``/``nprobe`` (IVF), ``M``/``efSearch``/``efConstruction`` (HNSW); unset ones
            get defaults (``nlist`` from the first batch of rows).
        settings: the extraction settings (e.g. ``pretrained``), kept in ``index.json``.
        encoder: the encoder that embeds text queries; made on first use when not given.
    """

    def __init__(
        self,
        model: Any,
        dim: int,
        *,
        kind: str = "auto",
        params: dict[str, Any] | None = None,
        settings: dict[str, Any] | None = None,
        encoder: Encoder | None = None,
    ) -> None:
        if kind not in KINDS:
            raise SearchIndexError(f"index kind {kind!r} is not one of {', '.join(KINDS)}")
        self.model = model
        self.dim = int(dim)
        self.requested_kind = kind
        self.kind: str | None = None  # the faiss kind in use, decided by the first add
        # the parameters the caller chose; defaults for the rest are filled in (again) at each rebuild
        self.given_params: dict[str, Any] = {k: v for k, v in (params or {}).items() if v is not None}
        self.params: dict[str, Any] = dict(self.given_params)
        self.settings = dict(settings or {})
        self.encoder = encoder
        self.metadata = pd.DataFrame(columns=list(METADATA_COLUMNS))
        self.trained_count = 0  # IVF: the collection size its cells were trained at
        self.recall_estimate: dict[str, Any] = {}  # see _estimate_recall; from the last (re)build
        self._faiss: faiss.Index | None = None
        self.path: Path | None = None  # the folder it was saved to or loaded from

    def __len__(self) -> int:
        return 0 if self._faiss is None else int(self._faiss.ntotal)

    def __repr__(self) -> str:
        return f"VideoIndex(model={self.model!r}, dim={self.dim}, kind={self.kind!r}, count={len(self)})"

    # -- adding ----------------------------------------------------------------------------------

    def add(self, vectors: np.ndarray, metadata: pd.DataFrame) -> int:
        """Append rows (float32 ``(n, dim)`` and their metadata); returns how many were added.

        A flat or HNSW index grows in place. ``kind="auto"`` switches from flat to IVF once the
        collection passes :data:`FLAT_MAX_ROWS`; an IVF index is re-trained when it grows past
        :data:`IVF_RETRAIN_FACTOR` times its training size.
        """
        vectors = _as_matrix(vectors, self.dim, "VideoIndex.add")
        if len(vectors) != len(metadata):
            raise SearchIndexError(
                f"VideoIndex.add: {len(vectors)} vectors but {len(metadata)} metadata rows"
            )
        if len(vectors) == 0:
            return 0
        total = len(self) + len(vectors)
        wanted = choose_kind(self.requested_kind, total)
        if self._faiss is None or wanted != self.kind or self._needs_retrain(total):
            everything = np.concatenate([self.vectors(), vectors]) if len(self) else vectors
            self._rebuild(wanted, everything)
        else:
            self._faiss.add(vectors)
        rows = metadata.reset_index(drop=True)
        self.metadata = rows if self.metadata.empty else pd.concat([self.metadata, rows], ignore_index=True)
        return len(vectors)

    def _needs_retrain(self, total: int) -> bool:
        return self.kind == "ivf" and total > IVF_RETRAIN_FACTOR * max(self.trained_count, 1)

    def _rebuild(self, kind: str, vectors: np.ndarray) -> None:
        """A new faiss index of ``kind`` over all ``vectors`` (training IVF cells on them)."""
        self.params = _default_params(kind, len(vectors), self.given_params)  # e.g. nlist for the new size
        index = _new_faiss_index(kind, self.dim, self.params)
        if kind == "ivf":
            index.train(_train_sample(vectors, int(self.params["nlist"])))
            self.trained_count = len(vectors)
        index.add(vectors)
        self._faiss, self.kind = index, kind
        self._tune_search_breadth(vectors)
        _apply_search_params(index, kind, self.params)

    def _tune_search_breadth(self, vectors: np.ndarray) -> None:
        """Double ``nprobe`` (IVF) or ``efSearch`` (HNSW) from its default until the estimated recall@10
        reaches :data:`TARGET_RECALL` (or the breadth its cap); a value the caller gave is kept as is.

        Clusters as coarse as IVF's cells give recall 1.0 at nprobe 16; video-like data (a dozen
        frames per cluster) needs 4x more cells scanned for 0.9 (docs/search.md).
        """
        key = {"ivf": "nprobe", "hnsw": "efSearch"}.get(self.kind or "")
        cap = int(self.params.get("nlist", 0)) // 2 if self.kind == "ivf" else MAX_EF_SEARCH
        while True:
            _apply_search_params(self._faiss, self.kind, self.params)
            self.recall_estimate = self._estimate_recall(vectors)
            if key is None or key in self.given_params or self.recall_estimate["recall@10"] >= TARGET_RECALL:
                return
            if int(self.params[key]) * 2 > cap:
                return
            self.params[key] = int(self.params[key]) * 2

    def _estimate_recall(self, vectors: np.ndarray, queries: int = 64, k: int = 10) -> dict[str, Any]:
        """recall@k of this (approximate) index for stored vectors as queries, against numpy brute force.

        Each query's own row is left out of both top-k lists. Computed when the faiss index is built
        (not at each incremental add): on data without cluster structure IVF can lose most
        neighbours, and this is where a user learns it (``vtr index build`` prints it).
        """
        estimate: dict[str, Any] = {"count": len(vectors), "params": dict(self.params), "queries": 0}
        if self.kind == "flat":
            return {**estimate, f"recall@{k}": 1.0}
        picks = np.random.default_rng(0).choice(len(vectors), size=min(queries, len(vectors)), replace=False)
        _, truth = brute_force_search(vectors, vectors[picks], k + 1)
        _, found = self._faiss.search(np.ascontiguousarray(vectors[picks]), k + 1)
        truth = [[i for i in row if i != own][:k] for row, own in zip(truth, picks, strict=True)]
        found = [[i for i in row if i != own and i >= 0][:k] for row, own in zip(found, picks, strict=True)]
        recall = float(
            np.mean([len(set(f) & set(t)) / max(len(t), 1) for f, t in zip(found, truth, strict=True)])
        )
        return {**estimate, "queries": len(picks), f"recall@{k}": recall}

    def vectors(self) -> np.ndarray:
        """All stored vectors, float32 ``(len(self), dim)``, in id order."""
        if self._faiss is None or len(self) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        if self.kind == "ivf":
            self._faiss.make_direct_map()
        return self._faiss.reconstruct_n(0, len(self))

    def add_extraction(self, extraction: Extraction) -> int:
        """Add the rows of ``extraction`` this index does not hold yet; returns how many were added."""
        self.check_model(extraction.model, extraction.dim, where="the extraction")
        keys = _row_keys(extraction.metadata)
        new = ~keys.isin(set(_row_keys(self.metadata))) if len(self) else np.ones(len(keys), dtype=bool)
        new = np.asarray(new)
        return self.add(extraction.vectors[new], extraction.metadata[new])

    # -- checks ----------------------------------------------------------------------------------

    def check_model(self, model: Any, dim: int | None = None, *, where: str = "the query") -> None:
        """Raise :class:`IndexMismatchError` when ``model`` (an architecture or encoder name) or ``dim``
        is not the index's."""
        if model_arch(model) != model_arch(self.model):
            raise IndexMismatchError(
                f"{self._name()} was built with model {model_arch(self.model)!r}, {where} uses {model_arch(model)!r}"
            )
        if dim is not None and int(dim) != self.dim:
            raise IndexMismatchError(f"{self._name()} has dimension {self.dim}, {where} has dimension {dim}")

    def _name(self) -> str:
        return f"index {self.path}" if self.path else "the index"

    # -- searching -------------------------------------------------------------------------------

    def embed_query(self, text: str) -> np.ndarray:
        """A text query as a float32 (dim,) vector, by the index's encoder (made on first use)."""
        if not text or not text.strip():
            raise SearchIndexError(f"{self._name()}: the query is empty")
        encoder = self.encoder or self._make_encoder()
        self.check_model(encoder.arch, encoder.output_dim, where=f"the query encoder {encoder.arch!r}")
        self.encoder = encoder
        return encoder.encode_text([text])[0]

    def _make_encoder(self) -> Encoder:
        """The index's encoder from its stored architecture and ``settings["pretrained"]`` (hub tag or file).

        Weights that only a profile can rebuild (vtr-tiny's) or that were not recorded cannot be
        guessed: random weights would give silently meaningless scores.
        """
        from vtr.models.encoders import TINY_TAG, create_encoder

        pretrained = self.settings.get("pretrained")
        if pretrained is None or pretrained == TINY_TAG:
            raise SearchIndexError(
                f"{self._name()}: cannot make its encoder from index.json (pretrained={pretrained!r}); "
                "pass one: VideoIndex.load(dir, encoder=load_encoder(profile))"
            )
        return create_encoder(model_arch(self.model), str(pretrained), device="cpu")

    def search_rows(self, query: str | np.ndarray, k: int, **params: Any) -> pd.DataFrame:
        """The ``k`` nearest embeddings (video and frame rows alike): metadata plus ``score``, ``id``."""
        if len(self) == 0:
            raise SearchIndexError(f"{self._name()} is empty")
        vector = self.embed_query(query) if isinstance(query, str) else query
        matrix = _as_matrix(vector, self.dim, f"the query for {self._name()}")
        search_params = {**self.params, **{key: value for key, value in params.items() if value is not None}}
        _apply_search_params(self._faiss, self.kind, search_params)
        threads = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(QUERY_THREADS)
        try:
            scores, ids = self._faiss.search(matrix, min(int(k), len(self)))
        finally:
            faiss.omp_set_num_threads(threads)
            _apply_search_params(self._faiss, self.kind, self.params)
        keep = ids[0] >= 0
        rows = self.metadata.iloc[ids[0][keep]].copy()
        rows.insert(0, "id", ids[0][keep])
        rows["score"] = scores[0][keep]
        return rows.reset_index(drop=True)

    def search(self, query: str | np.ndarray, k: int = 10, *, frames: int = 3, **params: Any) -> pd.DataFrame:
        """The ``k`` best videos for a text or a (dim,) vector: a DataFrame of :data:`RESULT_COLUMNS`.

        A video's ``score`` is its best hit among its video row and its frame rows; ``frame_times``
        and ``frame_scores`` are its best-scoring frame hits (up to ``frames``), best first, and
        ``best_time_s`` is the first of them (NaN when only the video row matched). More rows are
        fetched until ``k`` distinct videos are found or the index is exhausted. ``nprobe`` (IVF) and
        ``efSearch`` (HNSW) override the stored search settings for this call.
        """
        if k < 1:
            raise SearchIndexError(f"{self._name()}: k must be >= 1, got {k}")
        vector = self.embed_query(query) if isinstance(query, str) else query
        fetch = min(len(self), max(4 * k, k + 16))
        while True:
            rows = self.search_rows(vector, fetch, **params)
            if rows["video_id"].nunique() >= k or fetch >= len(self):
                break
            fetch = min(len(self), fetch * 4)
        return _aggregate(rows, k, frames)

    # -- saving and loading ----------------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        """What ``index.json`` holds."""
        return {
            "model": self.model,
            "dim": self.dim,
            "kind": self.kind,
            "requested_kind": self.requested_kind,
            "params": self.params,
            "given_params": self.given_params,
            "count": len(self),
            "trained_count": self.trained_count,
            "recall_estimate": self.recall_estimate,
            "videos": int(self.metadata["video_id"].nunique()) if len(self) else 0,
            "settings": self.settings,
            "updated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }

    def save(self, out_dir: str | Path) -> Path:
        """Write ``index.faiss``, ``metadata.parquet`` and, last, ``index.json`` into ``out_dir``."""
        if self._faiss is None:
            raise SearchIndexError(f"{out_dir}: refusing to save an empty index")
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        with atomic_path(out / INDEX_FILE) as tmp:
            faiss.write_index(self._faiss, str(tmp))
        with atomic_path(out / METADATA_FILE) as tmp:
            self.metadata.to_parquet(tmp, index=False)
        write_json(out / INFO_FILE, self.info())
        self.path = out
        return out

    @classmethod
    def load(cls, index_dir: str | Path, *, encoder: Encoder | None = None) -> VideoIndex:
        """Read an index folder written by :meth:`save`.

        Raises:
            MissingIndexError: the folder or one of its three files is missing.
            SearchIndexError: the files disagree (a write that was cut short): rebuild the index.
        """
        root = Path(index_dir)
        paths = [root / name for name in (INFO_FILE, INDEX_FILE, METADATA_FILE)]
        for path in paths:
            if not path.is_file():
                raise MissingIndexError(
                    f"index {root}: {path.name} not found (build it with `vtr index build`)"
                )
        info = _read_json(paths[0])
        for key in ("model", "dim", "kind", "count"):
            if key not in info:
                raise SearchIndexError(f"index {root}: {INFO_FILE} field {key!r} is missing")
        index = cls(
            info["model"],
            info["dim"],
            kind=info.get("requested_kind", info["kind"]),
            params=info.get("given_params", {}),
            settings=info.get("settings", {}),
            encoder=encoder,
        )
        index.path = root
        index.kind, index.trained_count = info["kind"], int(info.get("trained_count", 0))
        index.recall_estimate = dict(info.get("recall_estimate", {}))
        index.params = dict(info.get("params", {}))
        index._faiss = faiss.read_index(str(paths[1]))
        index.metadata = pd.read_parquet(paths[2])
        counts = {
            INFO_FILE: int(info["count"]),
            INDEX_FILE: index._faiss.ntotal,
            METADATA_FILE: len(index.metadata),
        }
        if len(set(counts.values())) != 1 or index._faiss.d != index.dim:
            raise SearchIndexError(
                f"index {root}: its files disagree (rows {counts}, dim {index._faiss.d} vs {index.dim}); rebuild it"
            )
        _apply_search_params(index._faiss, index.kind, index.params)
        return index


def _row_keys(metadata: pd.DataFrame) -> pd.Series:
    """One key per embedding row: its video's content key and its frame index (-1: the video row)."""
    frame = pd.to_numeric(metadata["frame_index"], errors="coerce").fillna(-1).astype(np.int64).astype(str)
    return metadata["content_key"].astype(str) + "#" + frame


def _aggregate(rows: pd.DataFrame, k: int, frames: int) -> pd.DataFrame:
    """Row hits (sorted best first) -> one row per video, best first.

    A plain loop over the few hundred hits: a pandas groupby costs ~100x more per query.
    """
    videos: dict[Any, dict[str, Any]] = {}
    columns = (rows[c].to_numpy() for c in ("video_id", "video_path", "kind", "time_s", "score"))
    for video_id, path, kind, time_s, score in zip(*columns, strict=True):
        entry = videos.get(video_id)
        if entry is None:  # the first hit of a video is its best: rows come sorted by score
            if len(videos) == k:
                continue
            entry = videos[video_id] = {
                "video_id": video_id, "video_path": path, "score": float(score),
                "best_time_s": math.nan, "frame_times": [], "frame_scores": [],
            }  # fmt: skip
        if kind == "frame" and len(entry["frame_times"]) < frames:
            entry["frame_times"].append(float(time_s))
            entry["frame_scores"].append(float(score))
    for entry in videos.values():
        entry["best_time_s"] = entry["frame_times"][0] if entry["frame_times"] else math.nan
    table = pd.DataFrame(list(videos.values()), columns=[c for c in RESULT_COLUMNS if c != "rank"])
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    return table


# ----------------------------------------------------------------------------------- building


def build_index(
    extract_dir: str | Path,
    out_dir: str | Path,
    *,
    kind: str = "auto",
    nlist: int | None = None,
    nprobe: int | None = None,
    hnsw_m: int | None = None,
    ef_search: int | None = None,
    rebuild: bool = False,
) -> VideoIndex:
    """Index an extraction folder into ``out_dir``, or add its new rows to the index already there.

    Args:
        extract_dir: a ``vtr extract`` output folder (see the module docstring).
        out_dir: the index folder; when it holds an index of the same model and dimension (and
            ``rebuild`` is false), only extraction rows it does not hold yet are added.
        kind: ``"auto"``, ``"flat"``, ``"ivf"`` or ``"hnsw"``; for an existing index ``"auto"`` keeps
            the kind it was built with, another kind than that is an error (use ``rebuild``).
        nlist: IVF cells (default: :func:`default_nlist`).
        nprobe: IVF cells scanned per query (default 16).
        hnsw_m: HNSW links per node (default 32).
        ef_search: HNSW search breadth (default 64).
        rebuild: build from scratch even when ``out_dir`` holds an index.

    Raises:
        IndexMismatchError: the existing index was built with another model or dimension.
    """
    extraction = read_extraction(extract_dir)
    given = {"nlist": nlist, "nprobe": nprobe, "M": hnsw_m, "efSearch": ef_search}
    given = {key: value for key, value in given.items() if value is not None}
    out = Path(out_dir)
    if not rebuild and (out / INFO_FILE).is_file():
        index = VideoIndex.load(out)
        index.check_model(extraction.model, extraction.dim, where=f"extraction {Path(extract_dir)}")
        if kind != "auto" and kind != index.kind:
            raise IndexMismatchError(
                f"index {out} is a {index.kind} index, not {kind}: pass rebuild=True (--rebuild) to change it"
            )
        index.given_params.update(given)
        index.params.update(given)  # nprobe/efSearch apply now; nlist at the next (re)training
    else:
        index = VideoIndex(
            extraction.model, extraction.dim, kind=kind, params=given, settings=extraction.settings
        )
    index.add_extraction(extraction)
    if len(index) == 0:
        raise SearchIndexError(f"extraction {Path(extract_dir)}: no embeddings to index")
    index.save(out)
    return index


def brute_force_search(vectors: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-``k`` inner products with numpy: (scores, ids), each ``(len(queries), k)``, best first.

    The reference the tests and ``benchmarks/search.py`` compare faiss against.
    """
    queries = np.atleast_2d(np.asarray(queries, dtype=np.float32))
    k = min(k, len(vectors))
    scores = queries @ np.asarray(vectors, dtype=np.float32).T
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-part_scores, axis=1, kind="stable")
    return np.take_along_axis(part_scores, order, axis=1), np.take_along_axis(part, order, axis=1)


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean fraction of the true top-k ids (``truth``, one row per query) that ``found`` contains."""
    hits = [
        len(set(f.tolist()) & set(t.tolist())) / max(len(t), 1) for f, t in zip(found, truth, strict=True)
    ]
    return float(np.mean(hits)) if hits else math.nan
