"""vtr.data.internvid: the 43 real InternVid-10M-FLT rows, the filter against pandas, bad rows, the hub."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
from vtr.data.internvid import (
    MetadataError,
    format_timestamp,
    is_hub_id,
    load_metadata,
    parse_row,
    parse_timestamp,
    select_clips,
    split_for,
)


@pytest.fixture(scope="module")
def real_rows_file(shared_data: Path) -> Path:
    return shared_data / "internvid" / "internvid_10m_flt_sample_rows.jsonl"


@pytest.fixture(scope="module")
def real_rows(real_rows_file: Path) -> list[dict]:
    return list(load_metadata(real_rows_file))


def test_parse_timestamp_by_hand() -> None:
    assert parse_timestamp("00:00:00.000") == 0
    assert parse_timestamp("00:05:20.120") == 320_120
    assert parse_timestamp("01:02:03.456") == 3_723_456
    assert parse_timestamp("00:00:01.5") == 1_500  # a short fraction is tenths, not thousandths
    assert parse_timestamp("00:00:07") == 7_000
    for bad in ["5:20", "00:61:00.000", "00:00:60.000", "00:00:01,500", "", "abc"]:
        with pytest.raises(ValueError, match="HH:MM:SS"):
            parse_timestamp(bad)
    for ms in [0, 1, 999, 320_120, 3_723_456, 36_000_000]:
        assert parse_timestamp(format_timestamp(ms)) == ms


def test_the_43_real_rows_parse(real_rows: list[dict]) -> None:
    assert len(real_rows) == 43
    clips = [parse_row(r, i) for i, r in enumerate(real_rows)]
    first = clips[0]  # qi3n35jW_Vw 00:05:20.120 → 00:05:24.320
    assert (first.youtube_id, first.start, first.end) == ("qi3n35jW_Vw", 320.12, 324.32)
    assert first.duration == pytest.approx(4.2)
    assert first.caption == "a young asian man standing in front of a lake"
    assert (first.aesthetic, first.umt) == (4.304688, 0.401367)
    assert first.clip_id == "qi3n35jW_Vw_00320120_00324320"
    long_one = next(c for c in clips if c.youtube_id == "9VlPZ9heX70")  # 00:02:31.651 → 00:03:41.121
    assert (long_one.start_ms, long_one.end_ms) == (151_651, 221_121)
    assert long_one.duration == pytest.approx(69.47)
    # Ids with '-' and '_' at either end are valid YouTube ids.
    assert {"_VljYs8BhSE", "7-yhkN_bCIQ", "KEUQwyAX-Uw"} <= {c.youtube_id for c in clips}
    assert len({c.clip_id for c in clips}) == 43


def _pandas_mask(path: Path, min_aesthetic: float, lo: float, hi: float) -> pd.DataFrame:
    """The filter, independently: pandas' own timedelta parser and vectorised comparisons."""
    df = pd.read_json(path, lines=True, dtype={"YoutubeID": str})
    seconds = (
        pd.to_timedelta(df["End_timestamp"]) - pd.to_timedelta(df["Start_timestamp"])
    ).dt.total_seconds()
    return df[(df["Aesthetic_Score"] >= min_aesthetic) & (seconds >= lo) & (seconds <= hi)]


@pytest.mark.parametrize(("min_aesthetic", "lo", "hi"), [(4.0, 3.0, 15.0), (5.0, 2.0, 10.0), (0.0, 0.0, 1e9)])
def test_filter_matches_pandas(real_rows_file: Path, real_rows, min_aesthetic, lo, hi) -> None:
    expected = _pandas_mask(real_rows_file, min_aesthetic, lo, hi)
    sel = select_clips(real_rows, min_aesthetic=min_aesthetic, min_duration=lo, max_duration=hi)
    assert [c.youtube_id for c in sel.clips] == list(expected["YoutubeID"])
    assert sel.rows_read == 43 and not sel.rejected
    assert len(sel.clips) + sum(sel.filtered.values()) == 43


def test_filter_reasons_and_count_by_hand(real_rows) -> None:
    sel = select_clips(real_rows, min_aesthetic=4.0, min_duration=3.0, max_duration=15.0)
    # Aesthetic below 4: wuU3kVANPcA 3.62, _VljYs8BhSE 3.20, 7p7cAapYZew 3.53, V1-LAgJhlrk 3.23,
    # EeDXhjtgBgQ 3.42, InCOGFkXWU4 3.46 (counted by hand from the file).
    assert sel.filtered["low_aesthetic"] == 6
    first_three = select_clips(real_rows, min_aesthetic=4.0, min_duration=3.0, max_duration=15.0, count=3)
    # Rows 0 (4.2 s), 2 (10.4 s) and 4 (13.7 s) pass; rows 1 (2.3 s) and 3 (1.3 s) are too short.
    assert [c.youtube_id for c in first_three.clips] == ["qi3n35jW_Vw", "BmLbac1nEtE", "y69ESjGuLJA"]
    assert first_three.rows_read == 5  # stops reading once it has enough
    assert first_three.clips == sel.clips[:3]


def _row(**changes) -> dict:
    row = {
        "YoutubeID": "qi3n35jW_Vw",
        "Start_timestamp": "00:00:01.000",
        "End_timestamp": "00:00:05.000",
        "Caption": "a dog",
        "Aesthetic_Score": 5.0,
        "UMT_Score": 0.4,
    }
    row.update(changes)
    return row


def test_bad_rows_are_recorded_with_the_field_and_never_stop_the_selection() -> None:
    rows = [
        _row(YoutubeID="short"),
        _row(YoutubeID="qi3n35jW_V!"),
        _row(Caption=None),
        _row(Caption="   "),
        _row(Start_timestamp="5:20"),
        _row(End_timestamp=None),
        _row(Start_timestamp="00:00:05.000", End_timestamp="00:00:04.000"),
        _row(Aesthetic_Score="high"),
        {"something": "else"},
        _row(),  # the only good one
        _row(),  # the same clip again
        _row(Aesthetic_Score=None),
    ]
    sel = select_clips(rows, min_aesthetic=4.0)
    assert [(r.row, r.field) for r in sel.rejected] == [
        (0, "YoutubeID"),
        (1, "YoutubeID"),
        (2, "Caption"),
        (3, "Caption"),
        (4, "Start_timestamp"),
        (5, "End_timestamp"),
        (6, "End_timestamp"),
        (7, "Aesthetic_Score"),
        (8, "YoutubeID"),
    ]
    assert "11-character" in sel.rejected[0].reason and sel.rejected[2].reason == "missing"
    assert sel.rejected[0].raw["YoutubeID"] == "short"
    assert len(sel.clips) == 1 and sel.filtered == Counter(duplicate=1, no_aesthetic_score=1)
    # Without an aesthetic threshold a missing score is fine.
    assert len(select_clips([_row(Aesthetic_Score=None)], min_aesthetic=None).clips) == 1


def test_local_parquet_and_jsonl_give_the_same_rows(tmp_path: Path, real_rows) -> None:
    parquet = tmp_path / "rows.parquet"
    pd.DataFrame(real_rows).to_parquet(parquet)
    assert list(load_metadata(parquet)) == real_rows


def test_local_file_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(MetadataError, match="not found.*missing.jsonl"):
        load_metadata(tmp_path / "missing.jsonl")
    odd = tmp_path / "rows.txt"
    odd.write_text("x")
    with pytest.raises(MetadataError, match="rows.txt.*unsupported"):
        load_metadata(odd)
    broken = tmp_path / "broken.jsonl"
    broken.write_text(json.dumps(_row()) + "\n{not json\n")
    with pytest.raises(MetadataError, match="broken.jsonl"):
        list(load_metadata(broken))


def test_hub_id_offline_fails_fast_with_a_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.monotonic()
    with pytest.raises(MetadataError, match="OFFLINE.*local jsonl/parquet"):
        load_metadata("OpenGVLab/InternVid", subset="InternVid-10M", split="FLT")
    assert time.monotonic() - start < 2


def test_hub_unreachable_fails_fast_with_a_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub

    def no_network(*args, **kwargs):
        raise OSError("[Errno -2] Name or service not known")

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub.HfApi, "dataset_info", no_network)
    with pytest.raises(MetadataError, match="cannot reach.*local jsonl/parquet"):
        load_metadata("OpenGVLab/InternVid", subset="InternVid-10M", split="FLT")


def test_is_hub_id(tmp_path: Path) -> None:
    assert is_hub_id("OpenGVLab/InternVid")
    assert not is_hub_id("data/internvid.jsonl")
    assert not is_hub_id("rows.parquet")
    assert not is_hub_id(str(tmp_path))


def test_split_for_is_stable_and_80_10_10() -> None:
    ids = [f"{i:011d}" for i in range(20_000)]
    splits = [split_for(i) for i in ids]
    assert splits == [split_for(i) for i in ids]
    share = Counter(splits)
    assert abs(share["train"] / 20_000 - 0.8) < 0.015
    assert abs(share["val"] / 20_000 - 0.1) < 0.01
    assert abs(share["test"] / 20_000 - 0.1) < 0.01
    assert {split_for(i, [0.0, 0.0, 1.0]) for i in ids[:100]} == {"test"}
    with pytest.raises(ValueError, match="fractions"):
        split_for("x", [0.5, 0.5, 0.5])
