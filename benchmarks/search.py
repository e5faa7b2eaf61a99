"""Search speed and recall of vtr's index against numpy brute force and faiss flat; prints a markdown table.

    PYTHONPATH=lib .venv/bin/python benchmarks/search.py [--sizes 10000 30000 100000 1000000] [--queries 100]

For each size N, N clustered 512-d unit vectors (``--clusters`` Gaussian clusters around random
centres, like the frames of many videos on a few topics) and held-out queries near them are
searched one query at a time:

* numpy -- ``vectors @ q`` and an argpartition (:func:`vtr.index.brute_force_search`);
* faiss flat -- ``faiss.IndexFlatIP``, exact, with faiss's default OpenMP threads and with one thread
  (vtr's queries use one: :data:`vtr.index.QUERY_THREADS`);
* vtr auto -- :class:`vtr.index.VideoIndex` with ``kind="auto"`` (flat up to ``FLAT_MAX_ROWS``, IVF above);
* vtr ivf (nprobe p) -- IVF with the default ``nlist`` at several ``--nprobe`` values;
* vtr hnsw -- HNSW (M 32, efSearch 64) up to ``--hnsw-max`` rows (its build is slow on 2 cores).

Per method: median wall and CPU (``time.process_time``, all threads) milliseconds per query,
recall@10 against the exact top 10, the index file size and the build time (wall and CPU). The
``search()`` columns time ``VideoIndex.search``: the row search plus grouping hits per video; the
build time includes the recall estimate ``VideoIndex`` makes when it builds an approximate index.
Each size is freed before the next (1M x 512 float32 is 2 GB; run it niced on a shared machine).
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import faiss
import numpy as np
import pandas as pd

from vtr.index import FLAT_MAX_ROWS, VideoIndex, brute_force_search, recall_at_k

DIM = 512
K = 10


def clustered_vectors(n: int, clusters: int, spread: float, seed: int) -> np.ndarray:
    """``n`` unit vectors in ``clusters`` Gaussian clusters, generated in chunks to stay float32."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, DIM), dtype=np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    out = np.empty((n, DIM), dtype=np.float32)
    for start in range(0, n, 100_000):
        stop = min(n, start + 100_000)
        noise = rng.standard_normal((stop - start, DIM), dtype=np.float32) * (spread / np.sqrt(DIM))
        out[start:stop] = centres[rng.integers(0, clusters, stop - start)] + noise
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out


def make_queries(vectors: np.ndarray, count: int, spread: float, seed: int) -> np.ndarray:
    """Queries near random stored vectors (not equal to them), unit length."""
    rng = np.random.default_rng(seed + 1)
    base = vectors[rng.integers(0, len(vectors), count)]
    queries = base + rng.standard_normal(base.shape, dtype=np.float32) * (spread / np.sqrt(DIM))
    return (queries / np.linalg.norm(queries, axis=1, keepdims=True)).astype(np.float32)


def fake_metadata(n: int, frames_per_video: int = 12) -> pd.DataFrame:
    """An extraction-shaped table: ``frames_per_video`` frame rows per video."""
    ids = np.arange(n)
    video = ids // frames_per_video
    return pd.DataFrame(
        {
            "video_id": pd.Series(video).map("v{:07d}".format),
            "video_path": "videos/x.mp4",
            "kind": "frame",
            "frame_index": ids % frames_per_video,
            "time_s": (ids % frames_per_video) * 0.5,
            "shard": ids // 65536,
            "row": ids % 65536,
            "content_key": pd.Series(video).map("k{:07d}".format),
        }
    )


def timed(fn: Callable[[], object]) -> tuple[object, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def per_query(
    search: Callable[[np.ndarray], np.ndarray], queries: np.ndarray
) -> tuple[np.ndarray, float, float]:
    """Ids found for each query, median wall ms and median CPU ms per query (one query at a time)."""
    search(queries[0])  # warm-up
    found, walls, cpus = [], [], []
    for q in queries:
        ids, wall, cpu = timed(lambda q=q: search(q))
        found.append(ids)
        walls.append(wall)
        cpus.append(cpu)
    return np.stack(found), 1e3 * float(np.median(walls)), 1e3 * float(np.median(cpus))


def file_size_mb(index: faiss.Index) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "index.faiss"
        faiss.write_index(index, str(path))
        return path.stat().st_size / 2**20


def record(
    n: int,
    method: str,
    found: np.ndarray,
    truth: np.ndarray,
    wall: float,
    cpu: float,
    size_mb: float = float("nan"),
    build: tuple[float, float] = (float("nan"),) * 2,
) -> dict[str, object]:
    return {
        "N": n, "method": method, "ms/query": wall, "CPU ms/query": cpu,
        "recall@10": recall_at_k(found, truth[: len(found)]), "index MB": size_mb,
        "build s": build[0], "build CPU s": build[1],
    }  # fmt: skip


def bench_size(n: int, args: argparse.Namespace) -> list[dict[str, object]]:
    """All methods at size ``n``; the vectors and indexes are freed when it returns."""
    vectors = clustered_vectors(n, args.clusters, args.spread, args.seed)
    queries = make_queries(vectors, args.queries, args.spread, args.seed)
    flat = faiss.IndexFlatIP(DIM)
    _, *flat_build = timed(lambda: flat.add(vectors))
    _, truth = flat.search(queries, K)  # the exact top 10 (batched)
    few = queries[: max(5, min(len(queries), args.queries * 10_000 // n))]  # exact search is slow at 1M
    found, wall, cpu = per_query(lambda q: brute_force_search(vectors, q, K)[1][0], few)
    rows = [record(n, "numpy brute force", found, truth, wall, cpu)]
    found, wall, cpu = per_query(lambda q: flat.search(q[None], K)[1][0], few)
    rows.append(record(n, "faiss flat", found, truth, wall, cpu, file_size_mb(flat), tuple(flat_build)))
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    found, wall, cpu = per_query(lambda q: flat.search(q[None], K)[1][0], few)
    faiss.omp_set_num_threads(threads)
    rows.append(record(n, "faiss flat, 1 thread", found, truth, wall, cpu))
    flat.reset()  # frees its copy of the vectors
    metadata = fake_metadata(n)
    variants = [("vtr auto", "auto", {})] + [
        (f"vtr ivf nprobe {p}", "ivf", {"nprobe": p}) for p in args.nprobe
    ]
    variants += [("vtr hnsw", "hnsw", {})] if n <= args.hnsw_max else []
    built: dict[str, tuple[VideoIndex, tuple[float, float], float]] = {}
    for label, kind, search_params in variants:
        if kind == "ivf" and "auto" in built and built["auto"][0].kind == "ivf":
            built["ivf"] = built["auto"]  # the same index: no second build
        if kind not in built:
            for old in [k for k in built if k != "auto"]:  # keep one extra copy of the vectors at most
                built.pop(old)
            gc.collect()
            index = VideoIndex("bench", DIM, kind=kind)
            _, *build = timed(lambda index=index: index.add(vectors, metadata))
            built[kind] = (index, tuple(build), file_size_mb(index._faiss))
        index, build, size_mb = built[kind]
        nlist = f" nlist {index.params['nlist']}" if index.kind == "ivf" else ""
        found, wall, cpu = per_query(
            lambda q, i=index, p=search_params: i.search_rows(q, K, **p)["id"].to_numpy(), queries
        )
        rows.append(record(n, f"{label} ({index.kind}{nlist})", found, truth, wall, cpu, size_mb, build))
        if not search_params:  # the build's own estimate, at the stored nprobe / efSearch
            rows[-1]["estimated recall@10"] = index.recall_estimate.get("recall@10", float("nan"))
        if kind == "auto":  # the whole VideoIndex.search: rows, then hits grouped per video
            _, wall, cpu = per_query(lambda q, i=index: np.asarray([len(i.search(q, K))]), queries[:20])
            rows[-1]["search() ms"], rows[-1]["search() CPU ms"] = wall, cpu
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 30_000, 100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=100, help="queries per size (fewer for brute force)")
    parser.add_argument("--nprobe", type=int, nargs="+", default=[8, 16, 32])
    parser.add_argument("--hnsw-max", type=int, default=100_000, help="largest size to build HNSW at")
    parser.add_argument("--clusters", type=int, default=1000)
    parser.add_argument(
        "--spread", type=float, default=0.8, help="cluster noise norm relative to unit centres"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    print(
        f"# {platform.machine()}, {os.cpu_count()} CPUs, faiss {faiss.__version__}, {faiss.omp_get_max_threads()} "
        f"OpenMP threads; dim {DIM}, {args.clusters} clusters; auto = flat up to {FLAT_MAX_ROWS} rows"
    )
    rows = []
    for n in args.sizes:
        rows += bench_size(n, args)
        gc.collect()
        print(f"# N={n} done", flush=True)
    print_table(rows)


def print_table(rows: list[dict[str, object]]) -> None:
    """A markdown table, 3 significant digits."""
    columns = list(dict.fromkeys(key for row in rows for key in row))
    print("| " + " | ".join(columns) + " |")
    print("|" + "|".join("---" if c == "method" else "---:" for c in columns) + "|")
    for row in rows:
        cells = [row.get(c, "") for c in columns]
        print("| " + " | ".join(f"{v:.3g}" if isinstance(v, float) else str(v) for v in cells) + " |")


if __name__ == "__main__":
    main()
