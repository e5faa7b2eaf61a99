"""vtr.experiments.hnerv.figures: every figure of notebook 04 builds from a tiny study."""

from __future__ import annotations

from vtr.experiments.hnerv import figures
from vtr.experiments.hnerv.evaluate import project_embeddings, text_search
from vtr.experiments.hnerv.splits import split_frames
from vtr.experiments.hnerv.study import Study


def test_figures_build(tiny_study: tuple, fake_encoder) -> None:
    import matplotlib.pyplot as plt

    cfg, data, runs = tiny_study
    split = split_frames(data.n_frames, "6_6_10")
    search = text_search(fake_encoder, ["q0", "q1"], runs[0].evaluation.embeddings, data.targets, split, k=2)
    study = Study(cfg.hnerv, data, runs)
    figs = [
        figures.patches_figure(data),
        figures.train_vs_heldout_figure(study.bars(), "6_6_10", "small"),
        figures.reconstruction_figure(data, runs[:2], [0, 6]),
        figures.search_figure(data, search),
        figures.per_frame_figure(runs),
        figures.curves_figure(runs),
        figures.projection_figure(project_embeddings(runs[0].evaluation.embeddings, data.targets, split, 8)),
    ]
    assert all(f.axes for f in figs)
    assert len(figs[1].axes) == 4 and figs[1].axes[0].get_title() == "psnr by size (6_6_10)"
    plt.close("all")
