"""``vtr extract --set extract.merge=true``: TempMe-style merging switched on from the profile."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from vtr.cli import main
from vtr.config import load_profile
from vtr.extract import load_extraction, make_encoder
from vtr.models.tome import MergeConfig, MergingEncoder, encode_clips_merged, merge_config
from vtr.video import sample_frames

from .conftest import cli_args

VIT = ["--set", "model.arch=vtr-tiny-vit", "--frames", "12"]


def _extract(videos: Path, out: Path, tmp_path: Path, *extra: str) -> int:
    return main(["extract", str(videos), "--out", str(out), *cli_args(tmp_path, *VIT, *extra)])


def test_merging_on_stores_one_merged_row_per_video_and_differs_from_off(
    videos_dir: Path, tmp_path: Path, capsys
) -> None:
    plain, merged = tmp_path / "plain", tmp_path / "merged"
    assert _extract(videos_dir, plain, tmp_path) == 0
    assert _extract(videos_dir, merged, tmp_path, "--set", "extract.merge=true") == 0
    capsys.readouterr()
    meta_plain, emb_plain, head_plain = load_extraction(plain)
    meta_merged, emb_merged, head_merged = load_extraction(merged)
    assert head_plain["key"] != head_merged["key"]  # other settings: never mixed in one folder
    # off: a video row and 12 frame rows per video; on: 2-2-3 leaves one clip feature, no frame rows
    assert sorted(meta_plain["kind"].value_counts().items()) == [("frame", 24), ("video", 2)]
    assert list(meta_merged["kind"]) == ["video", "video"]

    # the stored row is exactly encode_clips_merged of the sampled frames with the profile's schedule
    cfg = load_profile(
        "sample", {"model.pretrained": "", "model.arch": "vtr-tiny-vit", "video.n_frames": 12,
                   "extract.merge": True, "data_dir": str(tmp_path / "data")},
    )  # fmt: skip
    encoder = make_encoder(cfg)
    assert isinstance(encoder, MergingEncoder) and encoder.identity()["merge"]["layers"] == [1, 2, 3]
    row = meta_merged.sort_values("video_id").iloc[0]
    frames = sample_frames(row["video_path"], 12, "uniform", 64, 0)
    expected = encode_clips_merged(encoder, [frames], merge_config(cfg))[0]
    np.testing.assert_allclose(emb_merged[row["index"]], expected, atol=1e-5)
    # merging changes the embedding, but not beyond recognition (same model, same frames)
    video_plain = emb_plain[meta_plain[(meta_plain["kind"] == "video")].sort_values("video_id")["index"]]
    video_merged = emb_merged[meta_merged.sort_values("video_id")["index"]]
    cosines = (video_plain * video_merged).sum(axis=1)
    assert (cosines < 1 - 1e-4).all() and (cosines > 0.5).all()


def test_a_schedule_that_does_not_fit_the_frames_or_the_model_is_exit_2(
    videos_dir: Path, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "out"
    assert _extract(videos_dir, out, tmp_path, "--frames", "8", "--set", "extract.merge=true") == 2
    assert "video.n_frames=8" in capsys.readouterr().err
    tiny = ["extract", str(videos_dir), "--out", str(out), *cli_args(tmp_path, "--set", "extract.merge=true",
            "--frames", "12")]  # fmt: skip
    assert main(tiny) == 2  # vtr-tiny is a ResNet: no tokens to merge
    assert "needs a ViT model.arch" in capsys.readouterr().err
    assert not (out / "summary.json").exists()


def test_the_profiles_schedules_are_tempmes() -> None:
    from vtr.models.tome import TEMPME_TINY_VIT, TEMPME_VIT_B32

    assert merge_config(load_profile("full")) == TEMPME_VIT_B32
    assert merge_config(load_profile("sample")) == TEMPME_TINY_VIT
    strings = load_profile(
        "sample", {"extract.merge_layer": "8-9-10", "extract.merge_token_proportion": "30-10"}
    )
    assert merge_config(strings) == TEMPME_VIT_B32
    assert merge_config(load_profile("sample", {"extract.merge_frame_num": [1, 1, 1]})) == MergeConfig(
        (1, 1, 1), (1, 2, 3), 0.3, 0.1
    )
    assert json.loads(json.dumps(load_profile("full").extract.merge_layer)) == [8, 9, 10]
