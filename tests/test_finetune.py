"""vtr.finetune: batch scores with hard negatives, shortlist re-ranking, training runs, grids, summaries."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from vtr import finetune as FT
from vtr import metrics as M
from vtr.config import load_profile
from vtr.evaluation import hard_pairs
from vtr.models.crossmodal import TextFeatures, VideoFeatures, create_scorer

D = 16


def _split(n: int = 16, per_video: int = 2, seed: int = 0, name: str = "train") -> FT.FeatureSplit:
    """Videos whose frames share a latent with their captions, so training has something to learn."""
    gen = torch.Generator().manual_seed(seed)
    latent = torch.randn(n, D, generator=gen)
    frames = F.normalize(latent[:, None, :] + 0.8 * torch.randn(n, 4, D, generator=gen), dim=-1)
    owners = np.repeat(np.arange(n), per_video)
    pooled = F.normalize(latent[owners] + 0.8 * torch.randn(len(owners), D, generator=gen), dim=-1)
    tokens = torch.randn(len(owners), 6, D, generator=gen)
    return FT.FeatureSplit(
        name=name,
        ids=[f"v{i}" for i in range(n)],
        categories=["left" if i % 2 else "right" for i in range(n)],
        captions=[f"caption {i}" for i in range(len(owners))],
        caption_to_video=owners,
        text=TextFeatures(pooled, tokens, torch.ones(len(owners), 6, dtype=torch.bool)),
        video=VideoFeatures(frames, torch.ones(n, 4, dtype=torch.bool)),
    )


@pytest.fixture(scope="module")
def cfg():
    return load_profile(
        "sample",
        {
            "train.epochs": 2, "train.batch_size": 8, "train.tensorboard": False, "train.patience": 0,
            "finetune.temporal_layers": 1, "finetune.fusion_width": 16, "finetune.fusion_layers": 1,
            "finetune.fusion_heads": 2, "finetune.seeds": [0, 1], "finetune.rerank_k": 3, "finetune.n_boot": 200,
            "finetune.hard_negatives": 2, "finetune.temporal": "seqtransf", "finetune.sampler": "random",
            "device": "cpu",
        },
    )  # fmt: skip


def _trained_like(kind: str) -> torch.nn.Module:
    torch.manual_seed(0)
    scorer = create_scorer(kind, D, temporal_kwargs={"layers": 1, "dropout": 0.0}, heads=2)
    for name, p in scorer.named_parameters():
        if name.startswith(("out_", "text_adapter")):
            torch.nn.init.normal_(p, std=0.3)
    return scorer.eval()


def test_training_scores_with_hard_negatives() -> None:
    scorer = _trained_like("crossattn")
    split = _split(8)
    text, video = split.text.index(torch.arange(0, 16, 2)), split.video
    full = scorer.scores(text, video)
    torch.testing.assert_close(FT.training_scores(scorer, text, video, hard=0), full)
    mixed = FT.training_scores(scorer, text, video, hard=2)
    dual = scorer.dual_scores(text, video)
    # the positives and the 2 hardest dual negatives of each row and column carry the pair score
    chosen = torch.eye(8, dtype=torch.bool)
    off = dual.masked_fill(chosen, -torch.inf)
    chosen.scatter_(1, off.topk(2, dim=1).indices, True)
    chosen.scatter_(0, off.topk(2, dim=0).indices, True)
    torch.testing.assert_close(mixed[chosen], full[chosen])
    torch.testing.assert_close(mixed[~chosen], dual[~chosen])


def test_score_retrieval_reranks_the_shortlist() -> None:
    model = FT.FinetuneModel(_trained_like("crossattn"))
    split = _split(10, name="test")
    scores = FT.score_retrieval(model, split, k=3)
    dual = model.scorer.dual_scores(split.text, split.video).detach().numpy()
    full = model.scorer.scores(split.text, split.video).detach().numpy()
    top3 = np.argsort(-dual, axis=1)[:, :3]
    assert all(scores.shortlist[i, top3[i]].all() for i in range(len(dual)))
    np.testing.assert_allclose(scores.raw[scores.shortlist], full[scores.shortlist], atol=1e-6)
    np.testing.assert_allclose(scores.raw[~scores.shortlist], dual[~scores.shortlist], atol=1e-6)
    # every shortlisted candidate of a caption ranks above every other video
    for i in range(len(dual)):
        assert scores.ranking[i, scores.shortlist[i]].min() > scores.ranking[i, ~scores.shortlist[i]].max()
    # the standard protocol: each query re-scores exactly its own top k, nothing from the other direction
    assert (scores.shortlist.sum(axis=1) == 3).all()
    assert (scores.v2t_shortlist.sum(axis=0) == 3).all()
    top3_captions = np.argsort(-dual, axis=0)[:3]
    assert all(scores.v2t_shortlist[top3_captions[:, v], v].all() for v in range(dual.shape[1]))
    for v in range(dual.shape[1]):
        col, short = scores.v2t_ranking[:, v], scores.v2t_shortlist[:, v]
        assert col[short].min() > col[~short].max()
    # the alignment loss reads one consistent matrix: the pair scorer on every (first caption, video)
    np.testing.assert_allclose(scores.square, full[::2], atol=1e-6)
    dual_only = FT.score_retrieval(FT.FinetuneModel(create_scorer("dual", D, temporal="mean")), split, k=3)
    assert not dual_only.shortlist.any() and not dual_only.v2t_shortlist.any()


def test_train_one_is_deterministic_and_resumes(cfg, tmp_path: Path) -> None:
    train, val, test = _split(16), _split(8, seed=1, name="val"), _split(8, seed=2, name="test")
    spec = FT.RunSpec("crossattn", "hnac", "uniform", 0)
    model_a, result_a = FT.train_one(cfg, spec, train, val, out_dir=tmp_path / "a")
    model_b, _ = FT.train_one(cfg, spec, train, val, out_dir=tmp_path / "b")
    for (name, a), b in zip(model_a.state_dict().items(), model_b.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    assert list(result_a.history["epoch"]) == [1, 2] and "val_R@1" in result_a.history
    again, result_again = FT.train_one(
        cfg, spec, train, val, out_dir=tmp_path / "a"
    )  # reloaded, not retrained
    assert result_again.history["seconds"].tolist() == result_a.history["seconds"].tolist()
    metrics = FT.evaluate(again, test, cfg.finetune).metrics
    assert {"t2v_R@1", "t2v_R@1_lo", "t2v_MedR", "v2t_R@10", "alignment_loss", "cosine_gap"} <= set(metrics)
    assert metrics["t2v_R@1_lo"] <= metrics["t2v_R@1"] <= metrics["t2v_R@1_hi"]


@pytest.mark.parametrize("loss", ["infonce", "hnac"])
def test_dual_loss_through_contrastive_loss_equals_the_matrix_loss_on_one_process(
    cfg, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, loss: str
) -> None:
    torch.manual_seed(0)
    scorer = create_scorer("dual", D, temporal_kwargs={"layers": 1, "dropout": 0.0})
    torch.nn.init.normal_(scorer.text_adapter.weight, std=0.3)
    split = _split(8)
    text, video = split.text.index(torch.arange(0, 16, 2)), split.video
    # H-NAC settings other than contrastive_loss's defaults, so that dropping them would show
    cfg = dataclasses.replace(
        cfg, finetune=dataclasses.replace(cfg.finetune, hnac_decay=3.0, hnac_margin=0.2)
    )
    ft = cfg.finetune

    def loss_and_grads(value: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        scorer.zero_grad()
        value.backward()
        return value.detach(), [p.grad.clone() for p in scorer.parameters() if p.grad is not None]

    # the scores the loss saw before (the scorer's matrix) and the embeddings it sees now
    before = loss_and_grads(FT.loss_function(ft, loss)(FT.training_scores(scorer, text, video, 2)))
    after = loss_and_grads(
        FT.embedding_loss_function(ft, loss)(scorer.embed_text(text), scorer.embed_video(video))
    )
    assert torch.equal(before[0], after[0]) and len(after[1]) == len(before[1]) > 0
    assert all(torch.equal(a, b) for a, b in zip(after[1], before[1], strict=True))

    # the whole training path: train_one ends with the very weights the matrix loss gave
    spec = FT.RunSpec("dual", loss, "uniform", 0)
    now, _ = FT.train_one(cfg, spec, _split(16), None, out_dir=tmp_path / "now")
    monkeypatch.setattr(
        FT, "embedding_loss_function", lambda ft, name: lambda t, v: FT.loss_function(ft, name)(t @ v.T)
    )
    old, _ = FT.train_one(cfg, spec, _split(16), None, out_dir=tmp_path / "old")
    for (name, a), b in zip(now.state_dict().items(), old.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_grid_summaries_and_differences(cfg, tmp_path: Path) -> None:
    train, test = _split(16), _split(8, seed=2, name="test")
    specs = [FT.RunSpec("dual", loss, "uniform", s) for loss in ("infonce", "hnac") for s in (0, 1)]
    grid = FT.run_grid(cfg, specs, {"uniform": (train, None, test)}, out_root=tmp_path, progress=False)
    assert len(grid.table) == 4 and set(grid.table["loss"]) == {"infonce", "hnac"}
    summary = FT.summary_table(grid.table, ["loss"], ["t2v_R@1"])
    values = grid.table[grid.table["loss"] == "hnac"]["t2v_R@1"]
    assert summary.loc["hnac", "t2v_R@1"] == f"{values.mean():.3g} ± {values.std(ddof=1):.3g}"
    assert summary.loc["hnac", "seeds"] == 2
    breakdown = FT.category_breakdown(grid, ["loss"])
    assert set(breakdown.index) == {"left", "right"} and breakdown["n"].sum() == len(test.captions)


def test_paired_differences_and_their_sentence() -> None:
    spec = lambda loss, seed: FT.RunSpec("dual", loss, "uniform", seed)  # noqa: E731
    good = np.ones(200, dtype=int)
    bad = np.full(200, 5)
    ranks = {spec("infonce", s): {"t2v": bad, "v2t": bad} for s in (0, 1)}
    ranks |= {spec("hnac", s): {"t2v": good, "v2t": good} for s in (0, 1)}
    grid = FT.GridResult(pd.DataFrame(), ranks, {}, ["x"] * 200)
    diffs = FT.paired_differences(
        grid, [("H-NAC vs InfoNCE", {"loss": "infonce"}, {"loss": "hnac"})], n_boot=100
    )
    row = diffs[diffs["metric"] == "t2v_R@1"].iloc[0]
    assert row["diff"] == 100.0 and row["significant"]
    assert "a real gain" in FT.describe_differences(diffs)
    same = FT.paired_differences(grid, [("same", {"loss": "hnac"}, {"loss": "hnac"})], n_boot=100)
    assert "not distinguishable from zero" in FT.describe_differences(same)


def test_paired_differences_resample_clips_seeds_and_correct_with_holm() -> None:
    """Five captions per clip: resampling clips (not captions) and Holm over the family decide."""
    rng = np.random.default_rng(0)
    spec = lambda loss, seed: FT.RunSpec("dual", loss, "uniform", seed)  # noqa: E731
    clips = np.repeat(np.arange(40), 5)
    base = np.where(rng.random(40) < 0.5, 1, 3)[clips]
    gain = np.where(rng.random(40) < 0.25, 1, base[::5])[clips]  # fixes ~12% of the clips
    pairs = np.arange(200) % 2 == 0
    ranks = {spec("a", s): {"t2v": base, "v2t": base[::5], "pair": pairs} for s in (0, 1, 2)}
    ranks |= {spec("b", s): {"t2v": gain, "v2t": gain[::5], "pair": pairs} for s in (0, 1, 2)}
    ranks |= {spec("c", s): {"t2v": base, "v2t": base[::5], "pair": pairs | True} for s in (0, 1, 2)}
    by_caption = FT.GridResult(pd.DataFrame(), ranks, {}, ["x"] * 200)
    by_clip = dataclasses.replace(by_caption, caption_clusters=clips)
    comparisons = [("b vs a", {"loss": "a"}, {"loss": "b"}), ("c vs a", {"loss": "a"}, {"loss": "c"})]
    caption_level = FT.paired_differences(by_caption, comparisons, ["R@1"], n_boot=2000)
    clip_level = FT.paired_differences(by_clip, comparisons, ["R@1"], n_boot=2000)
    width = lambda t: float((t["high"] - t["low"]).iloc[0])  # noqa: E731
    assert width(clip_level) > 1.8 * width(caption_level)  # ~sqrt(5): five captions are one clip
    r1 = clip_level[clip_level["metric"] == "t2v_R@1"]
    np.testing.assert_allclose(r1["p_holm"], M.holm(r1["p"]))
    assert (r1["significant"] == (r1["p_holm"] < 0.05)).all()
    pair = clip_level[clip_level["metric"] == "pair_acc"].set_index("comparison")
    assert pair.loc["b vs a", "p"] == 1.0  # the same outcomes: no discordant pair
    assert pair.loc["c vs a", "p"] < 1e-20 and pair.loc["c vs a", "diff"] == 50.0  # 300 discordant, all c's
    assert bool(pair.loc["c vs a", "significant"])
    text = FT.describe_differences(clip_level)
    assert text.startswith(f"{int(r1['significant'].sum())} of 2 t2v_R@1 differences are real after Holm")
    assert "Holm-adjusted p" in text
    table = FT.pair_accuracy_table(by_clip, ["loss"])
    assert table.loc["a", "pair_acc"] == 50.0 and table.loc["a", "seeds"] == 3
    with pytest.raises(ValueError, match="different seeds"):
        FT.paired_differences(dataclasses.replace(by_clip, ranks={k: v for k, v in ranks.items() if k.seed
                              or k.loss == "a"}), comparisons[:1])  # fmt: skip


def test_unfrozen_encoder_path_with_a_random_tiny_clip(cfg, tmp_path: Path) -> None:
    """The full profile's path (encoder blocks trained at lr_encoder on decoded frames), with stand-ins."""
    from vtr.models.encoders import create_encoder

    torch.manual_seed(0)
    encoder = create_encoder("vtr-tiny", "", device="cpu", batch_size=16)
    names = FT.unfreeze_last_blocks(encoder.model, 1)
    assert any(n.startswith("visual.layer4") for n in names) and any(
        n.startswith("transformer.resblocks.3") for n in names
    )
    assert not any(
        n.startswith(("visual.layer1", "transformer.resblocks.0", "token_embedding")) for n in names
    )

    gen = torch.Generator().manual_seed(0)
    n, captions = 8, [f"a shape moves {d}" for d in ("left", "right", "up", "down")] * 2
    split = FT.FeatureSplit(
        name="train", ids=[f"v{i}" for i in range(n)], categories=["c"] * n, captions=captions,
        caption_to_video=np.arange(n), text=None, video=None, token_ids=encoder.tokenizer(captions),
        pixels=torch.randint(0, 255, (n, 2, 64, 64, 3), dtype=torch.uint8, generator=gen),
    )  # fmt: skip
    full = dataclasses.replace(cfg, finetune=dataclasses.replace(cfg.finetune, unfreeze_blocks=1))
    full = dataclasses.replace(
        full, train=dataclasses.replace(cfg.train, epochs=1, batch_size=4, lr_encoder=1e-3)
    )
    frozen = {k: v.clone() for k, v in encoder.model.state_dict().items()}
    model, result = FT.train_one(full, FT.RunSpec("crossattn", "infonce", "uniform", 0), split, None,
                                 out_dir=tmp_path, encoder=encoder)  # fmt: skip
    assert len(result.history) == 1 and np.isfinite(result.history["train_loss"]).all()
    after = model.backbone.clip.state_dict()
    assert not torch.equal(after["visual.layer4.0.conv1.weight"], frozen["visual.layer4.0.conv1.weight"])
    assert torch.equal(after["visual.layer1.0.conv1.weight"], frozen["visual.layer1.0.conv1.weight"])
    metrics = FT.evaluate(model, dataclasses.replace(split, name="test"), full.finetune, n_boot=50).metrics
    assert 0 <= metrics["t2v_R@1"] <= 100


def _paired_split(n: int = 16, name: str = "test") -> FT.FeatureSplit:
    """``_split`` whose videos come in hard pairs (2k, 2k+1), one of each pair in category "static" half the time."""
    split = _split(n, name=name)
    metas = [{"pair_group": f"pair{i // 2}", "pair_partner": f"v{i ^ 1}"} for i in range(n)]
    split.pairs = hard_pairs(split.ids, metas)
    split.categories = ["static" if (i // 2) % 4 == 0 else "horizontal" for i in range(n)]
    return split


def test_pairs_sampler_trend_head_and_calibration_effects(cfg, tmp_path: Path) -> None:
    pairs_cfg = dataclasses.replace(
        cfg, finetune=dataclasses.replace(cfg.finetune, temporal="trend", trend_init=False, sampler="pairs")
    )
    train, test = _paired_split(16, "train"), _paired_split(16, "test")
    specs = [FT.RunSpec("dual", "hnac", strategy, s) for strategy in ("uniform", "mean") for s in (0, 1)]
    grid = FT.run_grid(pairs_cfg, specs, {"uniform": (train, None, test), "mean": (train, None, test)},
                       out_root=tmp_path, progress=False)  # fmt: skip
    assert len(grid.table) == 4
    baseline = FT.mean_pooling_baseline(pairs_cfg, None, test)
    assert isinstance(baseline.scores, FT.RetrievalScores)
    assert len(FT.pair_caption_clusters(test)) == baseline.pair_outcomes.size == len(test.captions)
    gain = FT.pair_gain_over_baseline(grid, baseline, {"strategy": "uniform"}, test, n_boot=100)
    _, outcomes = FT.run_ranks(grid, {"strategy": "uniform"}, "pair")
    assert gain.diff == pytest.approx(100 * (outcomes.mean() - baseline.pair_outcomes.mean()))
    assert gain.n_seeds == 2 and gain.low <= gain.diff <= gain.high
    effect, parts = FT.sampling_interaction(grid, {"strategy": "uniform"}, {"strategy": "mean"},
                                            group=["horizontal"], n_boot=100)  # fmt: skip
    assert effect.diff == pytest.approx(parts["in_group"] - parts["rest"])  # identical features: both 0
    assert effect.diff == 0.0
    text = FT.describe_effects({"gain": gain})
    assert text.startswith("gain: ") and "interval" in text
    assert list(FT.effects_table({"gain": gain}).columns)[:3] == ["diff", "low", "high"]


def test_loss_options_come_from_the_table(cfg) -> None:
    assert FT.loss_options(cfg.finetune, "hnac") == {"decay": cfg.finetune.hnac_decay,
                                                     "margin": cfg.finetune.hnac_margin}  # fmt: skip
    assert FT.loss_options(cfg.finetune, "infonce") == {}
    with pytest.raises(ValueError, match="unknown loss"):
        FT.loss_options(cfg.finetune, "triplet")


def test_text_tower_tuning_on_cached_frames_leaves_the_encoder_alone(cfg, tmp_path: Path) -> None:
    from vtr.models.encoders import create_encoder

    torch.manual_seed(0)
    encoder = create_encoder("vtr-tiny", "", device="cpu", batch_size=16)
    before = {k: v.clone() for k, v in encoder.model.state_dict().items()}
    n, captions = 8, [f"a shape moves {d}" for d in ("left", "right", "up", "down")] * 2
    dim = encoder.output_dim
    frames = F.normalize(torch.randn(n, 3, dim), dim=-1)
    text = FT.caption_features(encoder, captions)
    split = FT.FeatureSplit(
        name="train", ids=[f"v{i}" for i in range(n)], categories=["c"] * n, captions=captions,
        caption_to_video=np.arange(n), text=text, video=VideoFeatures(frames, torch.ones(n, 3, dtype=torch.bool)),
        token_ids=encoder.tokenizer(captions),
    )  # fmt: skip
    tuned = dataclasses.replace(cfg, finetune=dataclasses.replace(cfg.finetune, text_blocks=1))
    tuned = dataclasses.replace(tuned, train=dataclasses.replace(cfg.train, epochs=1, batch_size=4, lr_encoder=1e-2))
    model, result = FT.train_one(tuned, FT.RunSpec("dual", "infonce", "uniform", 0), split, None,
                                 out_dir=tmp_path, encoder=encoder)  # fmt: skip
    assert model.backbone is None and model.text_backbone is not None
    assert np.isfinite(result.history["train_loss"]).all()
    after = model.text_backbone.clip.state_dict()
    assert not torch.equal(after["transformer.resblocks.3.mlp.c_fc.weight"],
                           before["transformer.resblocks.3.mlp.c_fc.weight"])  # fmt: skip
    assert not torch.equal(after["token_embedding.weight"], before["token_embedding.weight"])
    assert torch.equal(after["transformer.resblocks.0.mlp.c_fc.weight"], before["transformer.resblocks.0.mlp.c_fc.weight"])
    for name, value in encoder.model.state_dict().items():  # the shared encoder is untouched
        assert torch.equal(value, before[name]), name
    assert encoder.model.visual is not None
    metrics = FT.evaluate(model, dataclasses.replace(split, name="test"), tuned.finetune, n_boot=50).metrics
    assert 0 <= metrics["t2v_R@1"] <= 100


def test_run_key_names_the_spec_and_hashes_what_decides_the_weights() -> None:
    cfg, spec = load_profile("sample"), FT.RunSpec("dual", "infonce", "uniform", 0)
    key = FT.run_key(cfg, spec, {"epochs": None})
    assert key.startswith("dual-infonce-uniform-s0-") and len(key.rsplit("-", 1)[1]) == 16
    same = {"data_dir": "/elsewhere", "train.num_workers": 3, "finetune.n_boot": 7, "finetune.seeds": [5],
            "video.strategy": "mean", "train.tensorboard": True}  # fmt: skip
    for override, value in same.items():
        assert FT.run_key(load_profile("sample", {override: value}), spec, {"epochs": None}) == key, override
    for override, value in {"train.lr_head": 0.123, "finetune.hnac_margin": 0.7, "seed": 9}.items():
        assert FT.run_key(load_profile("sample", {override: value}), spec, {"epochs": None}) != key, override
    assert FT.run_key(cfg, spec, {"epochs": 3}) != key
    assert FT.run_key(cfg, dataclasses.replace(spec, seed=1), {"epochs": None}) != key


def test_validation_metrics_and_the_monitor_that_picks_the_epoch(cfg, tmp_path: Path) -> None:
    train, val = _paired_split(16, "train"), _paired_split(16, "val")
    torch.manual_seed(0)
    model = FT.build_model(cfg, "dual", D)
    found = FT.validation_metrics(model, val, cfg.finetune)
    evaluation = FT.evaluate(model, val, cfg.finetune, n_boot=20)
    assert found["val_R@1"] == pytest.approx(evaluation.metrics["t2v_R@1"])
    assert found["val_pair_acc"] == pytest.approx(evaluation.metrics["pair_acc"])
    assert found["val_R@1+pair_acc"] == pytest.approx((found["val_R@1"] + found["val_pair_acc"]) / 2)
    unpaired = FT.validation_metrics(model, _split(16, name="val"), cfg.finetune)
    assert unpaired["val_pair_acc"] == unpaired["val_R@1"]  # no pairs: the mean is R@1 alone
    for monitor in ("pair_acc", "R@1+pair_acc"):
        watched = dataclasses.replace(cfg, finetune=dataclasses.replace(cfg.finetune, monitor=monitor))
        _, result = FT.train_one(watched, FT.RunSpec("dual", "infonce", "uniform", 0), train, val,
                                 out_dir=tmp_path / monitor)  # fmt: skip
        column = FT.MONITORS[monitor]
        assert result.best_value == result.history[column].max()
        assert result.best_epoch == int(result.history.loc[result.history[column].idxmax(), "epoch"])


def test_pretrained_trend_maps_can_train_at_the_encoder_rate(cfg) -> None:
    trend = dataclasses.replace(cfg, finetune=dataclasses.replace(cfg.finetune, temporal="trend", trend_lr="encoder",
                                                                  trend_init=False))  # no vtr-tiny pretraining
    model = FT.build_model(trend, "dual", D)
    encoder, head = FT._parameter_roles(trend, model)
    assert any(n.startswith("temporal.") for n, _ in head) and not encoder  # not pretrained: a new layer
    model.scorer._trend_pretrained = True  # as _start_from_pretrained_trend marks it
    encoder, head = FT._parameter_roles(trend, model)
    assert {n for n, _ in encoder} == {n for n, _ in model.scorer.named_parameters() if n.startswith("temporal.")}
    assert not any(n.startswith("temporal.") for n, _ in head)
    as_head = dataclasses.replace(trend, finetune=dataclasses.replace(trend.finetune, trend_lr="head"))
    assert not FT._parameter_roles(as_head, model)[0]
