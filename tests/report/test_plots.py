import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from vtr.report.plots import frame_grid, grouped_bars, similarity_heatmap  # noqa: E402


def test_frame_grid_has_one_axis_per_cell() -> None:
    rows = [np.zeros((3, 8, 8, 3), np.uint8), np.zeros((5, 8, 8, 3), np.uint8)]
    fig = frame_grid(rows, row_labels=["a", "b"], col_labels=["0", "1"])
    assert len(fig.axes) == 2 * 5
    assert sum(len(ax.images) for ax in fig.axes) == 3 + 5


def test_similarity_heatmap_crops_to_max_items() -> None:
    fig = similarity_heatmap(np.eye(60), max_items=10)
    assert fig.axes[0].images[0].get_array().shape == (10, 10)


def test_grouped_bars_draws_intervals() -> None:
    table = pd.DataFrame(
        {"k": ["R@1", "R@5"] * 2, "v": [1.0, 2.0, 3.0, 4.0], "m": ["a", "a", "b", "b"]}
    ).assign(v_lo=lambda t: t.v - 0.5, v_hi=lambda t: t.v + 0.5)
    fig = grouped_bars(table, x="k", y="v", hue="m")
    whiskers = [line for line in fig.axes[0].lines if len(line.get_xdata()) == 2]
    assert len(whiskers) == 4
