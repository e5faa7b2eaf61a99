"""vtr.h264: the reference graph read from H.264 slice headers, on streams x264 writes.

The decoding itself is checked frame by frame in tests/test_video.py (sampling skips what the
graph says no wanted frame needs, and must still equal a full decode on every file).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import av
import imageio_ffmpeg
import numpy as np
import pytest

from vtr.h264 import Picture, _Bits, _rbsp, dependency_closure, reference_graph


def _encode(path: Path, x264_params: str, count: int = 60) -> Path:
    """A 64x48 moving texture, 3 B-frames always (b-adapt 0), a keyframe every 30 frames."""
    y, x = np.mgrid[0:48, 0:64]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=12)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.options = {"bframes": "3", "g": "30", "crf": "20", "x264-params": f"b-adapt=0:{x264_params}"}
        for t in range(count):
            rgb = np.stack([np.sin((x + 2 * t) / 5 + c) + np.cos((y - t) / 4 - c) for c in range(3)], -1)
            frame = av.VideoFrame.from_ndarray(np.clip(rgb * 60 + 128, 0, 255).astype(np.uint8), "rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def _graph(path: Path, skip: int = 0) -> list[Picture] | None:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        packets = [bytes(p) for p in container.demux(stream) if p.size]
        return reference_graph(packets[skip:], stream.codec_context.extradata)


def _groups(pictures: list[Picture]) -> list[list[int]]:
    """Decode positions split at each I/P picture: [P, Bref, b, b], ..."""
    groups: list[list[int]] = []
    for j, picture in enumerate(pictures):
        if not picture.bidirectional or not groups:
            groups.append([])
        groups[-1].append(j)
    return groups


def test_exp_golomb_and_emulation_prevention() -> None:
    bits = _Bits(bytes([0b1_010_011_0, 0b0100_0010, 0b1_0000000]))  # ue 0, 1, 2, 3; se -2 (code 4)
    assert [bits.ue(), bits.ue(), bits.ue(), bits.ue(), bits.se()] == [0, 1, 2, 3, -2]
    assert _rbsp(b"\x65\x00\x00\x03\x01\x00\x00\x03\x00\x00\x03") == b"\x00\x00\x01\x00\x00\x00\x00"


def test_dependency_closure_follows_references_transitively() -> None:
    def pic(*refs: int) -> Picture:
        return Picture(reference=True, bidirectional=False, intra=not refs, refs=frozenset(refs))

    pictures = [pic(), pic(0), pic(1), pic(0), pic(3)]
    assert dependency_closure(pictures, [2]) == {0, 1, 2}
    assert dependency_closure(pictures, [4, 2]) == {0, 1, 2, 3, 4}


def test_b_pyramid_reference_is_used_only_by_its_group_with_one_p_reference(tmp_path: Path) -> None:
    pictures = _graph(_encode(tmp_path / "ref1.mp4", "b-pyramid=normal:ref=1"))
    assert pictures is not None and len(pictures) == 60
    pyramids = 0
    for group in _groups(pictures):
        head, rest = group[0], group[1:]
        if not pictures[head].intra:  # a P-frame: only the I/P-frame that starts the group before it
            before = max(j for j in range(head) if not pictures[j].bidirectional)
            assert pictures[head].refs == {before}
        b_refs = [j for j in rest if pictures[j].reference]
        assert len(b_refs) == (len(rest) == 3)  # a group of 3 B-frames has a middle reference
        for b_ref in b_refs:
            users = {j for j, p in enumerate(pictures) if b_ref in p.refs}
            # Its own group's B-frames use it; no I/P-frame does. (Other B-frames are taken to
            # depend on every reference in the buffer: their lists are not modelled.)
            assert set(rest) - {b_ref} <= users and all(pictures[j].bidirectional for j in users)
            pyramids += 1
    assert pyramids >= 10


def test_p_frames_may_use_a_b_pyramid_reference_with_three_references(tmp_path: Path) -> None:
    pictures = _graph(_encode(tmp_path / "ref3.mp4", "b-pyramid=normal:ref=3"))
    assert pictures is not None
    b_refs = {j for j, p in enumerate(pictures) if p.reference and p.bidirectional}
    assert any(p.refs & b_refs for p in pictures if not p.bidirectional)


def test_strict_pyramid_memory_management_is_replayed(tmp_path: Path) -> None:
    # The strict pyramid removes each B-pyramid reference with a memory management operation.
    pictures = _graph(_encode(tmp_path / "strict.mp4", "b-pyramid=strict:ref=2"))
    assert pictures is not None
    b_refs = {j for j, p in enumerate(pictures) if p.reference and p.bidirectional}
    assert b_refs and not any(p.refs & b_refs for p in pictures if not p.bidirectional)


def test_annex_b_stream_gives_the_same_graph_as_mp4(tmp_path: Path) -> None:
    mp4 = _encode(tmp_path / "ref3.mp4", "b-pyramid=normal:ref=3")
    ts = tmp_path / "ref3.ts"
    subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(mp4), "-c", "copy", str(ts)], check=True
    )
    assert _graph(ts) == _graph(mp4) is not None


@pytest.mark.parametrize("case", ["starts mid-stream", "garbage"])
def test_what_it_cannot_model_gives_none(tmp_path: Path, case: str) -> None:
    path = _encode(tmp_path / "ref1.mp4", "b-pyramid=normal:ref=1")
    if case == "starts mid-stream":  # the first picture is not an IDR picture
        assert _graph(path, skip=1) is None
    else:
        assert reference_graph([b"\x00\x00\x00\x05\x41\xff\xff\xff\xff"], None) is None
