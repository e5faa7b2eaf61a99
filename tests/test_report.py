import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from vtr.report import load_metrics, save_figure, save_metrics  # noqa: E402


def test_save_metrics_merges_and_rounds(reports_tmp: Path) -> None:
    save_metrics("01_demo", {"a": 1 / 3, "n": np.int64(4)})
    path = save_metrics("01_demo", {"b": [np.float32(0.5)], "a": 2.0})
    assert path == reports_tmp / "metrics" / "01_demo.json"
    data = json.loads(path.read_text())
    assert data == {"a": 2.0, "b": [0.5], "n": 4}
    assert load_metrics("01_demo") == data
    assert load_metrics("99_missing") == {}


def test_save_figure_writes_png(reports_tmp: Path) -> None:
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    path = save_figure(fig, "01_demo_line")
    plt.close(fig)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(path.parent.glob(".*tmp*"))  # no temporary files left behind
