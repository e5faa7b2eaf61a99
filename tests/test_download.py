"""vtr.download against a loopback HTTP server: real mp4s, a 404, a truncated mp4, a non-video file,
a source shorter than the metadata claims and a server that stalls. Nothing leaves 127.0.0.1."""

from __future__ import annotations

import dataclasses
import functools
import http.server
import json
import re
import shutil
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from vtr.config import InternVidConfig
from vtr.data.manifest import SPLITS, read_manifest
from vtr.download import (
    MANIFEST_FILE,
    REJECTED_FILE,
    STATUS_FILE,
    ItemStatus,
    StatusLog,
    classify_error,
    diagnose_media,
    download_internvid,
)
from vtr.video import probe, sample_frames, write_video

FPS = 10
SOURCE_SECONDS = 6
# Each source frame is flat grey at 4 * its index, so a decoded frame tells where it was cut from.
GREY_STEP = 4


def _ramp_video(path: Path) -> None:
    n = FPS * SOURCE_SECONDS
    frames = np.broadcast_to((np.arange(n) * GREY_STEP).astype(np.uint8)[:, None, None, None], (n, 48, 64, 3))
    write_video(path, np.ascontiguousarray(frames), fps=FPS)


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves the folder with byte ranges (as video hosts do: ffmpeg seeks to an mp4's index);
    ``stalled*`` answers only after the client has given up."""

    def do_GET(self) -> None:
        self.server.requests.append(self.path)  # type: ignore[attr-defined]
        if "stalled" in self.path:
            time.sleep(3)
        path = Path(self.translate_path(self.path))
        if not path.is_file():
            self.send_error(404, "File not found")
            return
        body = path.read_bytes()
        first, last = 0, len(body) - 1
        ranged = re.fullmatch(r"bytes=(\d*)-(\d*)", self.headers.get("Range", ""))
        if ranged and ranged.group(1):
            first = int(ranged.group(1))
            last = min(int(ranged.group(2) or last), last)
        self.send_response(206 if ranged else 200)
        self.send_header("Content-Type", self.guess_type(str(path)))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(last - first + 1))
        if ranged:
            self.send_header("Content-Range", f"bytes {first}-{last}/{len(body)}")
        self.end_headers()
        try:
            self.wfile.write(body[first : last + 1])
        except (BrokenPipeError, ConnectionResetError):
            pass  # ffmpeg closes the connection once it has what it needs

    def do_HEAD(self) -> None:
        self.server.requests.append(self.path)  # type: ignore[attr-defined]
        super().do_HEAD()

    def log_message(self, *args: object) -> None:
        pass


class _NoRangeHandler(_Handler):
    """A host without byte ranges: every GET is answered 200 with the whole file, Range or not."""

    def do_GET(self) -> None:
        self.server.requests.append(self.path)  # type: ignore[attr-defined]
        self.server.ranges.append(self.headers.get("Range"))  # type: ignore[attr-defined]
        path = Path(self.translate_path(self.path))
        if not path.is_file():
            self.send_error(404, "File not found")
            return
        body = path.read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", self.guess_type(str(path)))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass


class LoopbackServer:
    def __init__(self, root: Path, handler: type[_Handler] = _Handler) -> None:
        self.httpd = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(handler, directory=str(root))
        )
        self.httpd.ranges = []  # type: ignore[attr-defined]
        self.httpd.requests = []  # type: ignore[attr-defined]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url_template(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v/{{youtube_id}}.mp4"

    @property
    def requests(self) -> list[str]:
        return self.httpd.requests  # type: ignore[attr-defined]

    def requested_ids(self) -> Counter[str]:
        return Counter(Path(p).stem for p in self.requests)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _row(youtube_id: str, start: str, end: str, aesthetic: float = 5.0, caption: str | None = None) -> dict:
    return {
        "YoutubeID": youtube_id,
        "Start_timestamp": start,
        "End_timestamp": end,
        "Caption": caption if caption is not None else f"a clip of {youtube_id}",
        "Aesthetic_Score": aesthetic,
        "UMT_Score": 0.4,
    }


GOOD = ["goodclip001", "kinetics001"]
EXPECTED_FAILURES = {
    "missing4040": "http_404",
    "truncated01": "truncated",
    "notavideo01": "not_video",
    "pastend0001": "bad_duration",
}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory):
    """The served folder, a metadata jsonl over it, and the running server."""
    from vtr.paths import shared_data_dir

    root = tmp_path_factory.mktemp("site")
    videos = root / "v"
    videos.mkdir()
    _ramp_video(videos / "goodclip001.mp4")
    shutil.copy(videos / "goodclip001.mp4", videos / "pastend0001.mp4")
    shutil.copy(videos / "goodclip001.mp4", videos / "stalled0001.mp4")
    data = (videos / "goodclip001.mp4").read_bytes()
    (videos / "truncated01.mp4").write_bytes(data[: len(data) // 2])
    (videos / "notavideo01.mp4").write_bytes(b"<html>this is not a video</html>\n" * 50)
    kinetics = shared_data_dir() / "videos" / "kinetics_demo.mp4"
    rows = [
        _row("goodclip001", "00:00:02.000", "00:00:05.000"),
        _row("missing4040", "00:00:01.000", "00:00:05.000"),
        _row("truncated01", "00:00:01.000", "00:00:05.000"),
        _row("notavideo01", "00:00:01.000", "00:00:05.000"),
        _row("pastend0001", "00:00:03.000", "00:00:09.500"),  # the source is 6 s long
        _row("not-an-id", "00:00:01.000", "00:00:05.000"),  # invalid row
        _row("lowscore001", "00:00:01.000", "00:00:05.000", aesthetic=2.0),  # filtered out
    ]
    if kinetics.is_file():  # a real 340x256 28 fps Kinetics clip, when the shared data is present
        shutil.copy(kinetics, videos / "kinetics001.mp4")
        rows.append(_row("kinetics001", "00:00:01.500", "00:00:06.500"))
    metadata = root / "meta.jsonl"
    metadata.write_text("".join(json.dumps(r) + "\n" for r in rows))
    server = LoopbackServer(root)
    yield {"metadata": metadata, "server": server, "kinetics": kinetics.is_file()}
    server.close()


def _cfg(server: LoopbackServer, **overrides) -> InternVidConfig:
    base = InternVidConfig(url_template=server.url_template, workers=2, timeout=20.0, retries=0, count=100)
    return dataclasses.replace(base, **overrides)


@pytest.fixture(scope="module")
def first_run(site, tmp_path_factory):
    out = tmp_path_factory.mktemp("internvid")
    server = site["server"]
    before = len(server.requests)
    report = download_internvid(_cfg(server), metadata=site["metadata"], out_dir=out, progress=False)
    return {"out": out, "report": report, "requests": server.requests[before:]}


def _good(site) -> list[str]:
    return GOOD if site["kinetics"] else GOOD[:1]


def test_good_items_are_cut_to_the_requested_span(site, first_run):
    out, report = first_run["out"], first_run["report"]
    assert report.done == report.downloaded == len(_good(site))
    clip = out / "clips" / "goodclip001_00002000_00005000.mp4"
    info = probe(clip)
    assert info.codec == "h264"
    assert abs(info.duration - 3.0) < 0.15
    assert abs(info.frame_count - 30) <= 1
    # Frame i of the clip is source frame 20 + i (cut at 2.0 s): grey 4 * (20 + i).
    frames = sample_frames(clip, 30, "uniform", size=None)
    greys = frames.reshape(len(frames), -1).mean(axis=1)
    assert np.allclose(greys, GREY_STEP * (20 + np.arange(30)), atol=3)
    if site["kinetics"]:
        real = probe(out / "clips" / "kinetics001_00001500_00006500.mp4")
        assert abs(real.duration - 5.0) < 0.1
        assert (real.width, real.height) == (340, 256)
        assert sample_frames(real.path, 4, "uniform", size=32).shape == (4, 32, 32, 3)


def test_failures_are_recorded_with_their_cause(first_run):
    out, report = first_run["out"], first_run["report"]
    statuses = StatusLog(out / STATUS_FILE).entries
    for youtube_id, reason in EXPECTED_FAILURES.items():
        (entry,) = [e for e in statuses.values() if e.youtube_id == youtube_id]
        assert (entry.status, entry.reason) == ("failed", reason), entry
        assert entry.detail
        assert not entry.path
    assert report.failed_by_reason == Counter(EXPECTED_FAILURES.values())
    assert report.invalid_rows == 1 and report.filtered == {"low_aesthetic": 1}
    rejected = [json.loads(line) for line in (out / REJECTED_FILE).read_text().splitlines()]
    assert [(r["field"], r["raw"]["YoutubeID"]) for r in rejected] == [("YoutubeID", "not-an-id")]
    # Nothing half-written is left behind: only finished clips, no temporary folders.
    assert sorted(p.name for p in (out / "clips").iterdir()) == sorted(
        e.path.split("/")[-1] for e in statuses.values() if e.status == "done"
    )
    assert not (out / ".tmp").exists()


def test_manifest_lists_exactly_the_done_clips(site, first_run):
    out = first_run["out"]
    records = read_manifest(out / MANIFEST_FILE)
    assert [r.meta["youtube_id"] for r in records] == _good(site)
    good = records[0]
    assert good.id == "goodclip001_00002000_00005000"
    assert (out / good.video).is_file()
    assert good.captions == ["a clip of goodclip001"]
    assert good.start is None and good.end is None and good.category is None
    assert good.split in SPLITS
    assert good.meta["start_timestamp"] == "00:00:02.000" and good.meta["source_end"] == 5.0
    assert good.meta["aesthetic_score"] == 5.0 and good.meta["umt_score"] == 0.4


def test_rerun_skips_done_and_failed_items_without_any_request(site, first_run):
    server = site["server"]
    before = len(server.requests)
    report = download_internvid(
        _cfg(server), metadata=site["metadata"], out_dir=first_run["out"], progress=False
    )
    assert server.requests[before:] == []
    assert (report.skipped_done, report.skipped_failed, report.downloaded) == (
        len(_good(site)),
        len(EXPECTED_FAILURES),
        0,
    )
    assert report.done == len(_good(site))
    assert report.failed_by_reason == Counter(EXPECTED_FAILURES.values())


def test_retry_failed_fetches_only_the_failed_items(site, first_run, tmp_path):
    server = site["server"]
    out = tmp_path / "copy"
    shutil.copytree(first_run["out"], out)
    before = len(server.requests)
    report = download_internvid(
        _cfg(server), metadata=site["metadata"], out_dir=out, retry_failed=True, progress=False
    )
    asked = Counter(Path(p).stem for p in server.requests[before:])
    assert set(asked) == set(EXPECTED_FAILURES)
    assert report.skipped_done == len(_good(site)) and report.skipped_failed == 0
    assert report.failed_by_reason == Counter(EXPECTED_FAILURES.values())
    # The status file is compacted to one line per clip after the run.
    lines = (out / STATUS_FILE).read_text().splitlines()
    assert len(lines) == len(_good(site)) + len(EXPECTED_FAILURES)


def test_a_torn_status_line_or_a_lost_clip_is_redone(site, first_run, tmp_path):
    server = site["server"]
    out = tmp_path / "copy"
    shutil.copytree(first_run["out"], out)
    (out / "clips" / "goodclip001_00002000_00005000.mp4").unlink()
    with open(out / STATUS_FILE, "a") as fh:
        fh.write('{"id": "half a line')  # as if the process died mid-write
    before = len(server.requests)
    report = download_internvid(_cfg(server), metadata=site["metadata"], out_dir=out, progress=False)
    assert set(Path(p).stem for p in server.requests[before:]) == {"goodclip001"}
    assert report.downloaded == 1 and report.done == len(_good(site))
    assert (out / "clips" / "goodclip001_00002000_00005000.mp4").is_file()


def test_a_clip_whose_status_line_was_lost_is_adopted_without_download(site, first_run, tmp_path):
    server = site["server"]
    out = tmp_path / "copy"
    shutil.copytree(first_run["out"], out)
    status = out / STATUS_FILE
    kept = [line for line in status.read_text().splitlines() if "goodclip001" not in line]
    status.write_text("".join(line + "\n" for line in kept))  # as if killed before the append
    before = len(server.requests)
    report = download_internvid(_cfg(server), metadata=site["metadata"], out_dir=out, progress=False)
    assert server.requests[before:] == []
    assert report.done == len(_good(site)) and report.downloaded == 0
    assert StatusLog(status).entries["goodclip001_00002000_00005000"].status == "done"


def test_whole_file_download_is_cut_at_the_source_timestamps(site, tmp_path):
    server = site["server"]
    rows = [
        _row("goodclip001", "00:00:01.500", "00:00:04.500"),
        _row("notavideo01", "00:00:01.000", "00:00:05.000"),
    ]
    cfg = _cfg(server, section_download=False)
    report = download_internvid(cfg, metadata=rows, out_dir=tmp_path, progress=False)
    assert report.done == 1 and report.failed_by_reason == {"not_video": 1}
    frames = sample_frames(tmp_path / "clips" / "goodclip001_00001500_00004500.mp4", 30, "uniform", size=None)
    greys = frames.reshape(len(frames), -1).mean(axis=1)
    assert np.allclose(greys, GREY_STEP * (15 + np.arange(30)), atol=3)


def test_a_stalled_server_is_a_timeout_and_retried_on_the_next_run(site, tmp_path):
    server = site["server"]
    cfg = _cfg(server, timeout=1.0)
    rows = [
        _row("stalled0001", "00:00:01.000", "00:00:05.000"),
        _row("missing4040", "00:00:01.000", "00:00:05.000"),
    ]
    start = time.monotonic()
    report = download_internvid(cfg, metadata=rows, out_dir=tmp_path, progress=False)
    assert report.failed_by_reason == {"timeout": 1, "http_404": 1}
    assert time.monotonic() - start < 10
    # A timeout says nothing lasting about the video: the next run tries it again, not the 404.
    before = len(server.requests)
    again = download_internvid(cfg, metadata=rows, out_dir=tmp_path, progress=False)
    assert set(Path(p).stem for p in server.requests[before:]) == {"stalled0001"}
    assert (again.retried_transient, again.skipped_failed) == (1, 1)
    assert "1 retried after a transient failure" in again.summary()


def test_an_os_error_while_fetching_is_transient(site, tmp_path, monkeypatch):
    import errno

    import vtr.download

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(vtr.download, "cut_clip", no_space)
    rows = [_row("goodclip001", "00:00:02.000", "00:00:05.000")]
    report = download_internvid(_cfg(site["server"]), metadata=rows, out_dir=tmp_path, progress=False)
    assert report.failed_by_reason == {"os_error": 1}
    monkeypatch.undo()  # the disk has room again
    again = download_internvid(_cfg(site["server"]), metadata=rows, out_dir=tmp_path, progress=False)
    assert again.retried_transient == 1 and again.done == 1 and again.failed == 0


def _textured_ramp_video(path: Path) -> None:
    """The grey ramp on top, fixed noise below: far bigger than ffmpeg's first read (its index, at
    the end, has to be reached by a seek), and the top half still tells where a frame came from."""
    n = FPS * SOURCE_SECONDS
    frames = np.empty((n, 96, 64, 3), dtype=np.uint8)
    frames[:, :48] = (np.arange(n) * GREY_STEP).astype(np.uint8)[:, None, None, None]
    frames[:, 48:] = np.random.default_rng(0).integers(0, 256, (n, 48, 64, 3), dtype=np.uint8)
    write_video(path, frames, fps=FPS)


def test_a_host_without_byte_ranges_gives_whole_file_cuts_not_truncated(tmp_path: Path) -> None:
    """Against a host that ignores Range, the section read fails for files whose index has to be
    sought; those are downloaded whole and cut locally. Only a file cut short is truncated."""
    from vtr.paths import shared_data_dir

    videos = tmp_path / "site" / "v"
    videos.mkdir(parents=True)
    _textured_ramp_video(videos / "texturedrmp.mp4")
    data = (videos / "texturedrmp.mp4").read_bytes()
    assert data[-(len(data) // 4) :].find(b"moov") >= 0 and len(data) > 64 * 1024  # index at the end
    (videos / "truncated01.mp4").write_bytes(data[: len(data) // 2])
    rows = [
        _row("texturedrmp", "00:00:02.000", "00:00:05.000"),
        _row("truncated01", "00:00:01.000", "00:00:05.000"),
    ]
    real = {"kinetics001": ("kinetics_demo.mp4", 1.5, 6.5), "realshort01": ("realshort.mp4", 0.1, 1.1),
            "skeleton001": ("demo_skeleton.mp4", 0.2, 2.2)}  # fmt: skip
    for youtube_id, (name, start, end) in real.items():
        if (shared_data_dir() / "videos" / name).is_file():
            shutil.copy(shared_data_dir() / "videos" / name, videos / f"{youtube_id}.mp4")
            rows.append(_row(youtube_id, f"00:00:0{start:.3f}", f"00:00:0{end:.3f}"))
    server = LoopbackServer(tmp_path / "site", _NoRangeHandler)
    try:
        cfg = _cfg(server, min_duration=0.5)
        report = download_internvid(cfg, metadata=rows, out_dir=tmp_path / "out", progress=False)
        # Read over this host, an intact file ends early for ffmpeg: that is no verdict on the file.
        over_network = diagnose_media(cfg.url_template.format(youtube_id="texturedrmp"), cfg)
        assert over_network[0] == "incomplete_read", over_network
    finally:
        server.close()
    assert any(server.httpd.ranges), "ffmpeg asked for byte ranges and was served the whole file"
    entries = {e.youtube_id: e for e in StatusLog(tmp_path / "out" / STATUS_FILE).entries.values()}
    assert entries.pop("truncated01").reason == "truncated"
    assert report.failed_by_reason == {"truncated": 1} and report.done == len(rows) - 1
    assert {e.status for e in entries.values()} == {"done"}
    assert (
        entries["texturedrmp"].fetched == "whole"
        and "fetched the whole file" in entries["texturedrmp"].detail
    )
    frames = sample_frames(tmp_path / "out" / entries["texturedrmp"].path, 30, "uniform", size=None)
    greys = frames[:, :48].reshape(len(frames), -1).mean(axis=1)
    assert np.allclose(greys, GREY_STEP * (20 + np.arange(30)), atol=3)  # cut at 2.0 s from the whole file
    for youtube_id, (_, start, end) in real.items():
        if youtube_id in entries:
            assert abs(probe(tmp_path / "out" / entries[youtube_id].path).duration - (end - start)) < 0.15


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ("ERROR: [youtube] abcdefghijk: Private video. Sign in if you've been granted access", "private"),
        (
            "ERROR: [youtube] abcdefghijk: Video unavailable. This video has been removed by the uploader",
            "unavailable",
        ),
        ("ERROR: [youtube] abcdefghijk: Sign in to confirm you're not a bot", "blocked"),
        (
            "ERROR: [youtube] abcdefghijk: The uploader has not made this video available in your country",
            "blocked",
        ),
        ("ERROR: unable to download video data: HTTP Error 403: Forbidden", "http_403"),
        ("ERROR: [generic] x: Unable to download webpage: HTTP Error 404: Not Found", "http_404"),
        ("ERROR: Unable to download webpage: The read operation timed out", "timeout"),
        ("[mov,mp4,m4a,3gp,3g2,mj2 @ 0x1] moov atom not found", "truncated"),
        ("x.mp4: Invalid data found when processing input", "not_video"),
        ("ERROR: unable to write data: [Errno 28] No space left on device", "os_error"),
        ("av_interleaved_write_frame(): Input/output error", "os_error"),
        ("something nobody anticipated", "download_failed"),
    ],
)
def test_classify_error(message: str, reason: str) -> None:
    assert classify_error(message) == reason


def test_status_log_last_line_wins_and_compacts(tmp_path: Path) -> None:
    log = StatusLog(tmp_path / STATUS_FILE)
    log.append(ItemStatus(id="a", status="failed", reason="timeout"))
    log.append(ItemStatus(id="b", status="done", path="clips/b.mp4"))
    log.append(ItemStatus(id="a", status="done", path="clips/a.mp4"))
    reread = StatusLog(tmp_path / STATUS_FILE).entries
    assert {k: v.status for k, v in reread.items()} == {"a": "done", "b": "done"}
    assert len((tmp_path / STATUS_FILE).read_text().splitlines()) == 3
    log.compact()
    assert len((tmp_path / STATUS_FILE).read_text().splitlines()) == 2
    assert StatusLog(tmp_path / STATUS_FILE).entries == reread
