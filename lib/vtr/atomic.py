"""Atomic file writes: write to a temporary file in the same folder, then rename over the target.

A crash mid-write leaves either the old file or the new one, never half of one, so caches and
manifests stay valid and reruns can trust what they find.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success it is renamed to ``target``."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp" + target.suffix, dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp creates 0600 files; give results the permissions a plain open() would have.
        tmp_path.chmod(0o666 & ~_umask())
        os.replace(tmp_path, target)
    finally:
        tmp_path.unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes(target: str | os.PathLike[str], data: bytes) -> Path:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
    return Path(target)


def write_text(target: str | os.PathLike[str], text: str) -> Path:
    return write_bytes(target, text.encode("utf-8"))


def write_json(target: str | os.PathLike[str], obj: Any, *, indent: int = 2, allow_nan: bool = True) -> Path:
    """JSON with sorted keys, so that identical results give byte-identical files.

    ``allow_nan=False`` raises ``ValueError`` on NaN or infinities instead of writing the non-standard
    ``NaN``/``Infinity`` tokens: for files that must be strict JSON.
    """
    text = json.dumps(obj, indent=indent, sort_keys=True, default=_jsonable, allow_nan=allow_nan)
    return write_text(target, text + "\n")


def _jsonable(value: Any) -> Any:
    """numpy scalars and arrays, paths and sets in results become plain JSON values."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, set | frozenset):
        return sorted(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
