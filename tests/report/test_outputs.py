import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from vtr.report import read_strict_json, save_figure, save_metrics  # noqa: E402


def test_save_metrics_merges_and_rounds(reports_tmp: Path) -> None:
    save_metrics("01_demo", {"a": 1 / 3, "n": np.int64(4)})
    path = save_metrics("01_demo", {"b": [np.float32(0.5)], "a": 2.0})
    assert path == reports_tmp / "metrics" / "01_demo.json"
    data = json.loads(path.read_text())
    assert data == {"a": 2.0, "b": [0.5], "n": 4}
    assert read_strict_json(path) == data
    assert json.loads(save_metrics("99_fresh", {"c": 1}).read_text()) == {"c": 1}  # nothing merged in


def test_metrics_files_are_strict_json(reports_tmp: Path) -> None:
    """NaN and infinities (an undefined correlation, an empty split's mean) become null, at any depth."""
    path = save_metrics(
        "01_demo",
        {
            "nan": float("nan"),
            "inf": np.float32("inf"),
            "deep": {"x": [1.0, -np.inf]},
            "arr": np.array([np.nan]),
        },
    )
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert read_strict_json(path) == {"nan": None, "inf": None, "deep": {"x": [1.0, None]}, "arr": [None]}
    save_metrics("01_demo", {"more": 1.0})  # merging keeps it strict
    assert read_strict_json(path)["more"] == 1.0


def test_strict_reader_rejects_nan_naming_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "01_bad.json"
    bad.write_text('{"a": NaN}')
    with pytest.raises(ValueError, match=r"01_bad\.json: NaN is not valid JSON"):
        read_strict_json(bad)


def test_save_figure_writes_png(reports_tmp: Path) -> None:
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    path = save_figure(fig, "01_demo_line")
    plt.close(fig)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(path.parent.glob(".*tmp*"))  # no temporary files left behind


def test_headline_keys_come_first_in_the_index(reports_tmp: Path) -> None:
    from vtr.report.index import _shown_metrics

    metrics = {f"a{i:02d}": i for i in range(20)} | {"z_main": 1.5, "nested": {"key": 2}}
    save_metrics("01_x", metrics, headline=["z_main", "nested.key", "missing"])
    stored = json.loads((reports_tmp / "metrics" / "01_x.json").read_text())
    assert stored["_headline"] == ["z_main", "nested.key", "missing"]
    keys = [key for key, _ in _shown_metrics(stored)[0]]  # what the index template lays out, in order
    assert keys.index("z_main") < keys.index("nested.key") < keys.index("a00")
    assert "missing" not in keys and "_headline" not in keys
