"""The dual-head HNeRV overfitting study (notebook 04), one module per stage.

Seed 000 fits one video with a patch-coordinate network that predicts each patch's pixels *and*
its CLIP embedding, and reports strong train PSNR, a ~15 dB drop on held-out frames, and text
search that barely works. This package makes that a measured study, read top to bottom:

* :mod:`~vtr.experiments.hnerv.splits`: HNeRV's ``a_b_c`` frame splits (every frame not trained on
  is held out);
* :mod:`~vtr.experiments.hnerv.data`: the video cut into patches with a CLIP embedding per patch, cached;
* :mod:`~vtr.experiments.hnerv.model`: the runs of the study, their models (registered HNeRV kinds,
  :mod:`vtr.models.hnerv`) and sizes, how held-out frames are decoded fairly;
* :mod:`~vtr.experiments.hnerv.train`: seed 000's loss, one run through :func:`vtr.train.fit`;
* :mod:`~vtr.experiments.hnerv.evaluate`: PSNR / SSIM / cosine per patch and frame, the seed's four
  embedding checks, text-to-patch search, a t-SNE projection;
* :mod:`~vtr.experiments.hnerv.study`: every run trained and evaluated (:class:`Study`);
* :mod:`~vtr.experiments.hnerv.figures` and :mod:`~vtr.experiments.hnerv.report`: figures, the
  sentences computed from the numbers, the metrics file.

In a notebook::

    from vtr.experiments import hnerv
    data = hnerv.prepare_video(cfg.hnerv, encoder, data_dir=cfg.data_dir)
    study = hnerv.Study(cfg.hnerv, data, hnerv.run_study(cfg, data))
    study.overview()                                   # PSNR / SSIM / cosine, train vs held-out
    hnerv.conclusions(study.table(), study.checks()[study.main.spec.name], study.main.spec.name)
"""

from vtr.experiments.hnerv.data import (
    STUDY_VERSION,
    PatchData,
    data_key,
    from_patches,
    prepare_video,
    to_patches,
)
from vtr.experiments.hnerv.evaluate import (
    Evaluation,
    SearchResult,
    embedding_checks,
    evaluate,
    per_patch_table,
    project_embeddings,
    text_search,
)
from vtr.experiments.hnerv.figures import (
    curves_figure,
    patches_figure,
    per_frame_figure,
    projection_figure,
    reconstruction_figure,
    search_figure,
    train_vs_heldout_figure,
)
from vtr.experiments.hnerv.model import RunSpec, build_model, interpolation_plan, size_table, study_plan
from vtr.experiments.hnerv.report import (
    conclusions,
    headline,
    published_comparison,
    report_metrics,
    search_conclusion,
)
from vtr.experiments.hnerv.splits import HELD_OUT, TRAIN, FrameSplit, split_frames, split_table
from vtr.experiments.hnerv.study import RunResult, Study, long_table, run_study, study_table
from vtr.experiments.hnerv.train import HnervLoss, Trainee, embedding_loss, pixel_loss, run_dir, train_run

__all__ = [
    "HELD_OUT",
    "STUDY_VERSION",
    "TRAIN",
    "Evaluation",
    "FrameSplit",
    "HnervLoss",
    "PatchData",
    "RunResult",
    "RunSpec",
    "SearchResult",
    "Study",
    "Trainee",
    "build_model",
    "conclusions",
    "curves_figure",
    "data_key",
    "embedding_checks",
    "embedding_loss",
    "evaluate",
    "from_patches",
    "headline",
    "interpolation_plan",
    "long_table",
    "patches_figure",
    "per_frame_figure",
    "per_patch_table",
    "pixel_loss",
    "prepare_video",
    "project_embeddings",
    "projection_figure",
    "published_comparison",
    "reconstruction_figure",
    "report_metrics",
    "run_dir",
    "run_study",
    "search_conclusion",
    "search_figure",
    "size_table",
    "split_frames",
    "split_table",
    "study_plan",
    "study_table",
    "text_search",
    "to_patches",
    "train_run",
    "train_vs_heldout_figure",
]
