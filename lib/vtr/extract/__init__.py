"""Batch video-embedding extraction (``vtr extract``) and event retrieval, after seed 001.

    from vtr.extract import extract_directory_embeddings, extract_video_embedding, retrieve_event

Modules: :mod:`vtr.extract.api` (what to extract, the seed's API), :mod:`vtr.extract.inputs`
(folders and manifests), :mod:`vtr.extract.engines` (local and Ray Data), :mod:`vtr.extract.store`
(output formats, resume, summary), :mod:`vtr.extract.events` (frames of a video for a query) and
:mod:`vtr.extract.cli` (the command line).

The functions are imported on first use, so ``vtr --help`` does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

#: Output formats (:mod:`vtr.extract.store`).
FORMATS = ("parquet", "npy", "json")
#: Other names accepted for formats: the seed's ``numpy`` and ``both`` (npy and json).
FORMAT_ALIASES: dict[str, tuple[str, ...]] = {"numpy": ("npy",), "both": ("npy", "json")}
#: Extraction engines (:mod:`vtr.extract.engines`).
ENGINES = ("local", "ray")

_LAZY = {
    "extract": "vtr.extract.api",
    "extract_directory_embeddings": "vtr.extract.api",
    "extract_video_embedding": "vtr.extract.api",
    "make_encoder": "vtr.extract.api",
    "retrieve_event": "vtr.extract.events",
    "batch_retrieve_events": "vtr.extract.events",
    "load_extraction": "vtr.extract.store",
}

__all__ = ["ENGINES", "FORMATS", "FORMAT_ALIASES", *sorted(_LAZY)]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'vtr.extract' has no attribute {name!r}")
