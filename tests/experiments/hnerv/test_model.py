"""vtr.experiments.hnerv.model: the study's runs, model sizes, fair decoding of held-out frames."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from vtr.config import load_profile
from vtr.experiments.hnerv.data import PatchData
from vtr.experiments.hnerv.model import RunSpec, build_model, interpolation_plan, size_table, study_plan
from vtr.experiments.hnerv.splits import split_frames
from vtr.models.hnerv import ContentHNeRV, DualHeadHNeRV


def _data(n: int = 10, size: tuple[int, int] = (16, 32), grid: tuple[int, int] = (1, 2)) -> PatchData:
    frames = np.zeros((n, *size, 3), dtype=np.uint8)
    return PatchData(frames, np.zeros((n, grid[0] * grid[1], 6), dtype=np.float32), grid, "zeros", "k")


def test_study_plan_rejects_unknown_main_size() -> None:
    with pytest.raises(ValueError, match="main_size"):  # load_profile refuses it (ConfigError) ...
        load_profile("sample", {"hnerv.main_size": "huge"})
    unchecked = dataclasses.replace(load_profile("sample").hnerv, main_size="huge")
    # ... and so does the plan of a section built in Python
    with pytest.raises(ValueError, match="main_size"):
        study_plan(unchecked)
    assert RunSpec("coords", "small", "6_6_10").name == "coords-small-6_6_10"


def test_study_plan_of_the_sample_profile() -> None:
    h = load_profile("sample").hnerv
    names = [s.name for s in study_plan(h)]
    assert names[: len(h.widths)] == [f"coords-{size}-{h.main_split}" for size in h.widths]
    assert names[-len(h.reference_splits) :] == [f"content-{h.main_size}-{s}" for s in h.reference_splits]
    assert len(names) == len(set(names)) == len(h.widths) + len(h.splits) - 1 + len(h.reference_splits)


def test_build_model_passes_each_kind_its_own_options() -> None:
    h = load_profile("sample", {"hnerv.strides": [2, 2], "hnerv.pe_levels": 5, "hnerv.embed_dim": 3}).hnerv
    coords = build_model(h, RunSpec("coords", "small", "6_6_10"), _data())
    content = build_model(h, RunSpec("content", "small", "6_6_10"), _data())
    assert isinstance(coords, DualHeadHNeRV) and coords.pe.levels == 5
    assert isinstance(content, ContentHNeRV) and content.embedding_numel == 3 * 4 * 4
    with pytest.raises(ValueError, match="unknown model size"):
        build_model(h, RunSpec("coords", "huge", "6_6_10"), _data())


def test_sample_profile_content_model_stores_its_270k_embedding_values() -> None:
    """The sample profile (132 bunny frames, 2 x 4 patches of 32 x 32, strides 2, 2, 2, embed_dim 16):
    132 x 8 x 16 x 4 x 4 = 270,336 embedding values beside about 12.8k weights."""
    h = load_profile("sample").hnerv
    frames = np.zeros((132, *h.resize, 3), dtype=np.uint8)
    data = PatchData(frames, np.zeros((132, 8, 4), dtype=np.float32), tuple(h.grid), "zeros", "k")
    row = size_table(h, data).set_index(["kind", "size"]).loc[("content", h.main_size)]
    assert row.embeddings == 270_336 and row.stored == row.weights + 270_336 and row.weights < 20_000


def test_size_table_counts_weights_and_embeddings(tiny_study: tuple) -> None:
    _, data, _ = tiny_study
    sizes = size_table(load_profile("sample").hnerv, data)
    assert list(sizes["size"][:4]) == ["small", "medium", "large", "xl"]
    assert (sizes.total == sizes.weights + sizes.encoder).all()
    assert (sizes.stored == sizes.weights + sizes.embeddings).all()
    content = sizes[sizes.kind == "content"]
    per_patch = 16 * 2 * 2  # embed_dim x fc_h x fc_w of a 16 x 16 patch with strides 2, 2, 2
    assert (content.embeddings == data.n_frames * data.n_patches * per_patch).all()
    assert (sizes[sizes.kind == "coords"].embeddings == 0).all()


def test_interpolation_plan_mixes_the_nearest_training_frames() -> None:
    split = split_frames(25, "6_6_10")  # train 0-5, 10-15, 20-24
    lo, hi, w = interpolation_plan(split, 25)
    assert (lo[:6] == np.arange(6)).all() and (hi[:6] == np.arange(6)).all() and (w[:6] == 0).all()
    assert (lo[6], hi[6], w[6]) == (5, 10, pytest.approx(0.2))
    assert (lo[9], hi[9], w[9]) == (5, 10, pytest.approx(0.8))
    tail = interpolation_plan(split_frames(10, "6_6_10"), 10)  # 6-9 come after the last training frame
    assert (tail[0][6:] == 5).all() and (tail[1][6:] == 5).all() and (tail[2][6:] == 0).all()
