"""The output folder's pieces: format names, file names, the header check."""

from __future__ import annotations

from pathlib import Path

import pytest

from vtr.extract.store import ExtractionMismatchError, ExtractionStore, parse_formats, safe_name


def test_format_names_and_aliases() -> None:
    assert parse_formats("parquet") == ("parquet",)
    assert parse_formats("json,parquet") == ("parquet", "json")
    assert parse_formats("both") == ("npy", "json") == parse_formats(["numpy", "json"])
    with pytest.raises(ValueError, match="unknown format 'hdf5'; known formats: parquet, npy, json"):
        parse_formats("npy,hdf5")
    with pytest.raises(ValueError, match="no output format"):
        parse_formats(" , ")


def test_safe_names_keep_sub_folders_and_never_climb() -> None:
    assert safe_name("sub/a@1-2") == "sub/a@1-2"
    assert safe_name("../../etc/x y") == "_/_/etc/x_y"


def test_an_output_folder_of_other_settings_is_refused(tmp_path: Path) -> None:
    header = {"model": "vtr-tiny", "weights": "w", "dim": 128, "settings": {"n_frames": 8}, "key": "k1",
              "created": "now"}  # fmt: skip
    ExtractionStore(tmp_path, header, ["parquet"])
    ExtractionStore(tmp_path, header, ["npy"])  # same key: fine, whatever the format
    other = {**header, "settings": {"n_frames": 4}, "key": "k2"}
    with pytest.raises(ExtractionMismatchError, match=r"n_frames=8.*n_frames=4"):
        ExtractionStore(tmp_path, other, ["parquet"])
