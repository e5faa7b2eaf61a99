"""``vtr index build`` and ``vtr search``: index an extraction folder, then query it with text.

    vtr index build runs/extract --out runs/index [--kind auto|flat|ivf|hnsw] [--nprobe 16]
    vtr search "a red circle moves left" --index runs/index -k 10 [--profile sample] [--set ...]

``vtr index build`` run again on a grown extraction folder adds only the new rows (see
:mod:`vtr.index`). ``vtr search`` embeds the query with the profile's encoder (``model.arch`` and
``model.pretrained``), which must be the model the index was built with; a missing index, another
model, another dimension or an empty query is a one-line error and exit status 2.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # vtr.index imports faiss and pandas: only when a command runs, not for `vtr --help`
    import pandas as pd

Subparsers = Any  # argparse's _SubParsersAction is private
RECALL_WARNING = 0.9  # `vtr index build` warns below this estimated recall@10


def add_parser(commands: Subparsers) -> None:
    """Register ``vtr index build`` and ``vtr search`` (added to :data:`vtr.cli.COMMANDS`)."""
    from vtr.cli import _profile_options

    index = commands.add_parser("index", help="build a search index", description="Build a search index.")
    actions = index.add_subparsers(dest="action", metavar="ACTION", required=True)
    build = actions.add_parser(
        "build",
        help="index a `vtr extract` folder (or add its new rows to an existing index)",
        description=(
            "Index the video and frame embeddings of a `vtr extract` output folder with faiss. Into a folder "
            "that already holds an index of the same model, only rows it does not hold yet are added."
        ),
    )
    opt = build.add_argument
    opt("extract", metavar="EXTRACT", help="the output folder of `vtr extract`")
    opt("--out", required=True, help="index folder (index.faiss, metadata.parquet, index.json)")
    opt("--kind", default="auto", help="auto, flat, ivf or hnsw (default auto: flat when small, else IVF)")
    opt("--nlist", type=int, help="IVF cells (default: the power of two nearest sqrt(rows))")
    opt("--nprobe", type=int, help="IVF cells scanned per query (default 16)")
    opt("--hnsw-m", type=int, help="HNSW links per node (default 32)")
    opt("--ef-search", type=int, help="HNSW search breadth (default 64)")
    opt("--rebuild", action="store_true", help="build from scratch even if --out holds an index")
    build.set_defaults(handler=_build)

    search = commands.add_parser(
        "search",
        parents=[_profile_options()],
        help="search an index with a text query",
        description=(
            "Rank the videos of an index for a text query: each video's best score among its video and frame "
            "embeddings, with the times of its best-matching frames. The query is embedded by the profile's "
            "encoder, which must be the one the index was built with."
        ),
    )
    opt = search.add_argument
    opt("query", help="the text to search for")
    opt("--index", required=True, help="index folder written by `vtr index build`")
    opt("-k", type=int, default=10, help="videos to list (default 10)")
    opt("--frames", type=int, default=3, help="frame times to show per video (default 3)")
    opt("--nprobe", type=int, help="IVF cells to scan (default: the index's)")
    opt("--ef-search", type=int, help="HNSW search breadth (default: the index's)")
    search.set_defaults(handler=_search)


def _build(args: argparse.Namespace) -> int:
    from vtr.index import SearchIndexError, build_index

    before = _count(Path(args.out))
    try:
        index = build_index(
            args.extract,
            args.out,
            kind=args.kind,
            nlist=args.nlist,
            nprobe=args.nprobe,
            hnsw_m=args.hnsw_m,
            ef_search=args.ef_search,
            rebuild=args.rebuild,
        )
    except SearchIndexError as err:
        return _usage_error(err)
    added = len(index) - (0 if args.rebuild else before)
    print(
        f"index {args.out}: {len(index)} embeddings ({added} added), {index.kind} {index.params or ''}".rstrip()
    )
    recall = index.recall_estimate.get("recall@10")
    if recall is not None and index.kind != "flat":
        print(
            f"estimated recall@10 {recall:.3f} ({index.recall_estimate['queries']} stored vectors as queries)"
        )
        if recall < RECALL_WARNING:
            print(
                f"vtr: warning: index {args.out} misses neighbours (recall@10 {recall:.2f}): raise --nprobe "
                "(IVF) or --ef-search (HNSW), or use --kind flat",
                file=sys.stderr,
            )
    return 0


def _count(index_dir: Path) -> int:
    from vtr.index import INFO_FILE, SearchIndexError, VideoIndex

    if not (index_dir / INFO_FILE).is_file():
        return 0
    try:
        return len(VideoIndex.load(index_dir))
    except SearchIndexError:
        return 0


def _search(args: argparse.Namespace) -> int:
    from vtr.cli import _load
    from vtr.extract.api import make_encoder
    from vtr.index import SearchIndexError, VideoIndex

    if not args.query.strip():
        return _usage_error(f"index {args.index}: the query is empty")
    if args.k < 1:
        return _usage_error(f"-k must be >= 1, got {args.k}")
    try:
        index = VideoIndex.load(args.index)
        cfg = _load(args, {})
        # Compare names before loading weights: a wrong model fails fast, without building vtr-tiny.
        index.check_model(cfg.model.arch, where=f"profile {cfg.name!r} (model.arch)")
        # The extractor's encoder: the same weights, also when they are random (seeded by the profile).
        index.encoder = make_encoder(cfg)
        hits = index.search(
            args.query, args.k, frames=args.frames, nprobe=args.nprobe, efSearch=args.ef_search
        )
    except SearchIndexError as err:
        return _usage_error(err)
    print(format_hits(hits))
    return 0


def format_hits(hits: pd.DataFrame) -> str:
    """The ranked videos as aligned text lines: rank, score, video id, frame times, path."""
    lines = []
    for row in hits.itertuples(index=False):
        times = ", ".join(f"{t:.2f}s" for t in row.frame_times) if row.frame_times else "-"
        score = "nan" if math.isnan(row.score) else f"{row.score:.4f}"
        lines.append(f"{row.rank:>3}  {score}  {row.video_id}  frames {times}  {row.video_path}")
    return "\n".join(lines) if lines else "no results"


def _usage_error(err: Exception | str) -> int:
    print(f"vtr: error: {err}", file=sys.stderr)
    return 2
