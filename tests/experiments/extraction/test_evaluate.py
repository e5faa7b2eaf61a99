"""Notebook 06's comparisons: TempMe on/off and STOP against frozen, scored with vtr.evaluation's statistics."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from vtr import metrics as M
from vtr.config import Profile
from vtr.embeddings import embed_texts
from vtr.evaluation import evaluate_retrieval
from vtr.experiments.extraction import data as xdata
from vtr.experiments.extraction import evaluate as xeval
from vtr.experiments.extraction import model as xmodel
from vtr.experiments.extraction import train as xtrain


@pytest.fixture(scope="module")
def vit(small_cfg: Profile):
    return xmodel.vit_encoder(small_cfg)


def test_tempme_rows_are_the_plain_vit_and_the_merged_one_with_their_costs(small_cfg: Profile, vit) -> None:
    test = xdata.load_split(small_cfg, "test", n_frames=12)
    result = xeval.tempme_comparison(small_cfg, vit, test)
    off, on = result.table.loc["merging off"], result.table.loc["TempMe merging"]
    # merging off is exactly the encoder's own clip embedding, scored by evaluate_retrieval
    text = embed_texts(vit, test.captions, progress=False)
    plain = evaluate_retrieval(text, vit.encode_clips(test.frames), test.caption_to_video, n_boot=100,
                               dsl=False, pairs=test.pairs)  # fmt: skip
    assert off["t2v_R@1"] == plain["t2v_R@1"] and off["R@1_lo"] == plain["t2v_R@1_lo"]
    # the sample schedule (4 blocks: frames joined at 1-2-3) keeps about 3/4 of the tokens
    assert on["tokens"] < 0.8 * off["tokens"] and on["tokens_ratio"] == on["tokens"] / off["tokens"]
    assert on["encode_cpu_s"] > 0 and on["speedup_cpu"] == off["encode_cpu_s"] / on["encode_cpu_s"]
    assert on["dR@1"] == pytest.approx(on["t2v_R@1"] - off["t2v_R@1"])
    assert on["dR@1_lo"] <= on["dR@1"] <= on["dR@1_hi"] and 0 <= on["p"] <= 1
    expected = M.paired_bootstrap_diff(result.scored["merging off"].ranks, result.scored["TempMe merging"].ranks,
                                       "R@1", n_boot=100, seed=0, clusters=test.caption_clusters)  # fmt: skip
    assert on["dR@1_lo"] == expected.low and on["p"] == expected.p_value


def test_stop_row_against_the_frozen_vit_and_the_narrative(small_cfg: Profile, vit) -> None:
    cfg = dataclasses.replace(small_cfg, extract=dataclasses.replace(small_cfg.extract, prompt_epochs=1))
    splits = {
        s: xdata.load_split(cfg, s, n_frames=cfg.extract.prompt_frames) for s in ("train", "val", "test")
    }
    run = xtrain.train_prompts(cfg, vit, splits["train"], splits["val"], progress=False)
    stop = xeval.stop_comparison(cfg, vit, run, splits["test"])
    frozen, prompted = stop.table.loc["frozen ViT"], stop.table.loc["STOP prompts"]
    text = embed_texts(vit, splits["test"].captions, progress=False)
    sim = text @ vit.encode_clips(splits["test"].frames).T
    assert frozen["t2v_R@1"] == M.retrieval_metrics(sim, splits["test"].caption_to_video)["t2v_R@1"]
    assert prompted["trainable_params"] == run.trainable
    assert prompted["dR@1"] == pytest.approx(prompted["t2v_R@1"] - frozen["t2v_R@1"])

    test12 = xdata.load_split(cfg, "test", n_frames=12)
    tempme = xeval.tempme_comparison(cfg, vit, test12)
    skipped = {"status": "skipped", "message": "Ray is not installed"}
    text = xeval.narrative(tempme, stop, skipped, "a ViT")
    assert f"{tempme.table['tokens_ratio'].iloc[1]:.0%} of the tokens" in text
    assert f"{prompted['t2v_R@1']:.1f}%" in text and "skipped: Ray is not installed" in text
    metrics = xeval.summary_metrics(tempme, stop, run, skipped, {})
    assert metrics["stop"]["epochs"] == 1 and metrics["tempme"]["tokens_on"] == tempme.table["tokens"].iloc[1]
    assert np.isfinite(metrics["tempme"]["dR@1"])
