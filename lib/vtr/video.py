"""Video I/O: decoding, probing and frame sampling (PyAV), and writing H.264 files."""

from __future__ import annotations

import os
from fractions import Fraction

import av
import numpy as np


def write_video(
    path: str | os.PathLike[str],
    frames: np.ndarray,
    fps: float,
    *,
    codec: str = "libx264",
    crf: int = 20,
    gop: int = 12,
) -> None:
    """Write ``frames`` (T, H, W, 3) uint8 RGB as an mp4 (H.264, yuv420p; H and W must be even).

    ``gop`` sets the keyframe interval so that seeking into the file is cheap, as in real datasets.
    Not atomic by itself: wrap in :func:`vtr.atomic.atomic_path` when the file is a result.
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be (T, H, W, 3) uint8, got {frames.shape} {frames.dtype}")
    _, height, width, _ = frames.shape
    if height % 2 or width % 2:
        raise ValueError(f"H.264 with yuv420p needs even sizes, got {width}x{height}")
    with av.open(os.fspath(path), mode="w", format="mp4") as container:
        stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1000))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": str(crf), "g": str(gop), "preset": "veryfast"}
        if codec == "libx264":
            # Single-threaded, deterministic encoding: identical inputs give identical files.
            stream.codec_context.thread_count = 1
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
