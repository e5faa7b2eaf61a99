"""The one way to name cached work: run keys, array digests, the hash split, the cache root, the hub offline check.

Every folder that holds finished work (a world, a checkpoint, cached features, a training run) is
named by :func:`run_key` of what determines its content. Fields that cannot change a result are
left out by one documented list, :data:`NOT_IN_KEYS`, so moving ``data_dir`` or turning off progress
bars never invalidates a cache, while any change of a seed, a size or a model does.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePath
from typing import Any

#: Fields that never change a result and so never enter a key: where things are written
#: (``data_dir``, ``reports_dir``, ``cache_dir``, ``out``), how progress is shown (``progress``), how
#: many local workers share the work (``workers``, ``num_workers``), and bookkeeping of the loaded
#: profile (``name``, ``source_file``). The device is *in* keys: CPU and CUDA kernels differ numerically.
NOT_IN_KEYS: frozenset[str] = frozenset(
    {
        "data_dir",
        "reports_dir",
        "cache_dir",
        "out",
        "progress",
        "workers",
        "num_workers",
        "name",
        "source_file",
    }
)

_TRUE = {"1", "true", "yes", "on"}


def canonical(value: Any, exclude: Iterable[str] = NOT_IN_KEYS) -> Any:
    """``value`` as plain JSON data: dataclasses, pydantic models and mappings become dicts without
    the ``exclude`` fields (at every depth), paths become strings, tuples and sets become lists."""
    excluded = frozenset(exclude)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    elif hasattr(value, "model_dump") and callable(value.model_dump):  # pydantic v2
        value = value.model_dump()
    if isinstance(value, Mapping):
        return {str(k): canonical(v, excluded) for k, v in value.items() if str(k) not in excluded}
    if isinstance(value, (list, tuple)):
        return [canonical(v, excluded) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted(canonical(v, excluded) for v in value)
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    if hasattr(value, "item") and callable(value.item):  # numpy and torch scalars
        return value.item()
    return value


def run_key(*parts: Any, size: int = 8, exclude: Iterable[str] = NOT_IN_KEYS) -> str:
    """A hex key (``2 * size`` characters) of ``parts``: blake2b of their canonical JSON.

    Pass everything that determines the content (config sections, a version constant, the keys
    of the inputs); fields named in ``exclude`` are dropped at every depth.
    """
    payload = json.dumps(canonical(list(parts), exclude), sort_keys=True, separators=(",", ":"))
    return hashlib.blake2b(payload.encode("utf-8"), digest_size=size).hexdigest()


def array_digest(*arrays: Any, size: int = 8) -> str:
    """A hex key (``2 * size`` characters) of the arrays' contents: blake2b of their C-ordered bytes, in
    order. For content that :func:`run_key` cannot take as JSON (feature matrices); pass the result to it."""
    import numpy as np

    digest = hashlib.blake2b(digest_size=size)
    for array in arrays:
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def unit_hash(key: str, seed: int | None = None) -> float:
    """A number in [0, 1) from SHA-256 of ``seed:key`` (or ``key``): stable across machines and runs."""
    text = key if seed is None else f"{seed}:{key}"
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def cache_root(data_dir: str | os.PathLike[str], kind: str) -> Path:
    """``<data_dir>/cache/<kind>``: the one place caches live, so ``data_dir`` moves all of them."""
    from vtr.paths import resolve

    return resolve(data_dir) / "cache" / kind


def hub_offline() -> bool:
    """True when the user asked the Hugging Face libraries to stay offline (``HF_HUB_OFFLINE`` or
    ``HF_DATASETS_OFFLINE`` set to 1/true/yes/on)."""
    return any(
        os.environ.get(v, "").strip().lower() in _TRUE for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
    )
