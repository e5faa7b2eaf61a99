"""Fine-tuning experiments of notebooks 02 and 03: seed 003's claims, tested on held-out clips over seeds.

    train = build_features(cfg, encoder, "train")                 # frozen features from the embedding cache
    test = build_features(cfg, encoder, "test", text=...)
    runs = run_grid(cfg, specs, {"uniform": (train, val, test)}, out_root=...)   # one row per (config, seed)
    summary_table(runs.table, ["scorer", "loss"])                 # mean ± std over seeds
    paired_differences(runs, comparisons)                         # clustered bootstrap, Holm-corrected

* **Features.** With ``finetune.unfreeze_blocks == 0`` (the sample profile) the encoder is frozen:
  per-frame video embeddings come from the shared embedding cache (:func:`vtr.embeddings.embed_videos`,
  one entry per sampling strategy) and caption token features from the text tower
  (:func:`vtr.models.crossmodal.text_token_features`), so a training run takes seconds. With
  ``unfreeze_blocks > 0`` (the full profile's option) the last encoder blocks train too, at
  ``train.lr_encoder``, on decoded frames (:class:`EncoderBackbone`).
* **Training.** :func:`train_one` trains one scorer with one loss and one seed through
  :func:`vtr.train.fit`; each batch holds distinct videos with one random caption each, the loss
  sees the (B, B) score matrix. Pair scorers score every in-batch pair, or (``hard_negatives = n``)
  the positives plus the n hardest dual-encoder negatives of each row and column, the dual score
  standing in for the rest.
* **Evaluation.** :func:`score_retrieval` follows the standard re-ranking protocol: each query
  re-scores its own top ``rerank_k`` candidates of the dual part with the pair scorer (t2v: each
  caption its top k videos; v2t: each video its top k captions), and those rank above the rest, so a
  query's rank never depends on the other direction's shortlist. :func:`evaluate` reports R@1/5/10,
  MedR (both directions, v2t by the CLIP4Clip rule, bootstrap intervals over clips or hard-pair
  groups), the pair accuracy on hard pairs, and the held-out alignment loss (InfoNCE at
  ``finetune.temperature``, seed 003's number) and cosine gap, both from one consistent matrix: the
  scorer's own score of every test video's first caption against every test video.
* **Comparisons.** :func:`paired_differences` compares configurations over all their seeds with the
  two-level bootstrap of :mod:`vtr.metrics` (test clips or hard-pair groups resampled, shared by both
  sides; seeds resampled, paired by seed; a side's value is its mean over seeds), and the pair accuracy
  with an exact McNemar test on (seed, caption) pairs; each family of p-values (one per metric) is
  Holm–Bonferroni corrected, and :func:`describe_differences` builds the verdicts from the adjusted
  results. With one seed the intervals cover the test clips only, not training noise.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from vtr import metrics as M
from vtr.calibration import Effect, category_interaction, pair_accuracy_gain
from vtr.data.samplers import create_batch_sampler
from vtr.data.sources import load_clips
from vtr.embeddings import default_cache_dir, embed_videos
from vtr.evaluation import HardPairs, first_caption_index, hard_pairs, metrics_from_ranks
from vtr.keys import run_key as run_key_of
from vtr.losses import contrastive_loss, get_loss
from vtr.models.crossmodal import (
    DualEncoderScorer,
    TextFeatures,
    VideoFeatures,
    create_scorer,
    text_token_features,
)
from vtr.models.temporal import load_pretrained_trend
from vtr.paths import resolve
from vtr.progress import show_progress
from vtr.runtime import resolve_device, torch_generator
from vtr.train import TrainResult, fit, param_groups

if TYPE_CHECKING:
    from vtr.config import FinetuneConfig, Profile
    from vtr.models.encoders import Encoder

# Added to shortlisted pair scores so every re-scored candidate ranks above every other one.
_SHORTLIST_OFFSET = 1e3


# ------------------------------------------------------------------------------------ features


@dataclass
class FeatureSplit:
    """One split as tensors: videos (frame features or decoded frames) and every caption."""

    name: str
    ids: list[str]  # videos, in order
    categories: list[str]  # per video
    captions: list[str]  # every caption of every video
    caption_to_video: np.ndarray  # (Q,) index into ids
    text: TextFeatures | None  # frozen caption features (None when the text tower is tuned)
    video: VideoFeatures | None  # frozen frame features (None when the image tower is tuned)
    token_ids: Tensor | None = None  # (Q, L) tokens, for a tuned text tower
    pixels: Tensor | None = None  # (N, T, H, W, 3) uint8 frames, for a tuned image tower
    errors: dict[str, str] = field(default_factory=dict)  # videos left out, with the reason
    pairs: HardPairs | None = None  # hard-pair groups and partners (None: every clip on its own)

    @property
    def caption_categories(self) -> list[str]:
        return [self.categories[v] for v in self.caption_to_video]

    @property
    def video_clusters(self) -> np.ndarray:
        """The bootstrap unit of every video: its hard-pair group, else the video itself."""
        return self.pairs.clusters if self.pairs is not None else np.asarray(self.ids)

    @property
    def caption_clusters(self) -> np.ndarray:
        return self.video_clusters[self.caption_to_video]

    def captions_of(self) -> list[np.ndarray]:
        """Caption indices of every video."""
        order = np.argsort(self.caption_to_video, kind="stable")
        counts = np.bincount(self.caption_to_video, minlength=len(self.ids))
        return np.split(order, np.cumsum(counts)[:-1])


@torch.no_grad()
def caption_features(encoder: Encoder, captions: Sequence[str], batch_size: int = 256) -> TextFeatures:
    """Frozen token features of ``captions`` (trimmed to the longest caption's tokens)."""
    parts = []
    encoder.model.eval()
    for start in range(0, len(captions), batch_size):
        tokens = encoder.tokenizer(list(captions[start : start + batch_size])).to(encoder.device)
        parts.append(text_token_features(encoder.model, tokens))
    length = max(int(p.mask.sum(dim=1).max()) for p in parts)
    return TextFeatures(
        pooled=torch.cat([p.pooled for p in parts]).cpu(),
        tokens=torch.cat([p.tokens[:, :length] for p in parts]).cpu(),
        mask=torch.cat([p.mask[:, :length] for p in parts]).cpu(),
    )


def build_features(
    cfg: Profile,
    encoder: Encoder,
    split: str,
    strategy: str | None = None,
    *,
    text: TextFeatures | None = None,
    raw: bool | None = None,
    progress: bool = False,
) -> FeatureSplit:
    """A split's features under ``strategy`` (default ``video.strategy``).

    Frozen (``raw=False``, the default when ``finetune.unfreeze_blocks == 0``): per-frame embeddings
    from the embedding cache and caption token features (pass ``text`` to reuse those of another
    strategy). Raw (``raw=True``): decoded frames and caption tokens for a tunable encoder. Videos
    that fail to decode are left out and listed in ``errors``; the batch goes on.
    """
    raw = cfg.finetune.unfreeze_blocks > 0 if raw is None else raw
    strategy = strategy or cfg.video.strategy
    clips = load_clips(cfg, split)
    size = cfg.video.size
    if raw:
        specs = {r.id: (r.video_path(clips.base_dir), r.start, r.end) for r in clips.records}
        frames_by_id, errors = _decode_raw(
            specs, cfg.video.n_frames, strategy, encoder.image_size[0], cfg.seed
        )
        ok = [r for r in clips.records if r.id in frames_by_id]
        pixels = torch.from_numpy(np.stack([frames_by_id[r.id] for r in ok])) if ok else None
        video = None
    else:
        emb = embed_videos(
            encoder, clips.records, clips.base_dir, n_frames=cfg.video.n_frames, strategy=strategy, size=size,
            seed=cfg.seed, cache_dir=default_cache_dir(cfg), progress=progress,
        )  # fmt: skip
        errors = dict(emb.errors)
        by_id = {r.id: r for r in clips.records}
        ok = [by_id[i] for i in emb.ids]
        frames = torch.from_numpy(emb.frames)
        video = VideoFeatures(frames, torch.ones(frames.shape[:2], dtype=torch.bool))
        pixels = None
    if not ok:
        raise RuntimeError(
            f"no video of split {split!r} could be read; first errors: {list(errors.items())[:3]}"
        )
    captions, owners = [], []
    for i, record in enumerate(ok):
        captions.extend(record.captions)
        owners.extend([i] * len(record.captions))
    tune_text = raw or cfg.finetune.text_blocks > 0
    token_ids = encoder.tokenizer(captions) if tune_text else None
    if not raw and text is None:
        text = caption_features(encoder, captions)
    if text is not None and len(text) != len(captions):
        raise ValueError(f"text features hold {len(text)} captions but split {split!r} has {len(captions)}")
    return FeatureSplit(
        name=split,
        ids=[r.id for r in ok],
        categories=[r.category or "none" for r in ok],
        captions=captions,
        caption_to_video=np.asarray(owners, dtype=np.int64),
        text=None if raw else text,
        video=video,
        token_ids=token_ids,
        pixels=pixels,
        errors=errors,
        pairs=hard_pairs([r.id for r in ok], [r.meta for r in ok]),
    )


def _decode_raw(
    specs: dict[str, tuple[Path, float | None, float | None]],
    n_frames: int,
    strategy: str,
    size: int,
    seed: int,
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    from vtr.video import VideoDecodeError, sample_frames

    frames, errors = {}, {}
    for key, (path, start, end) in tqdm(
        specs.items(), desc="decode", leave=False, disable=not show_progress()
    ):
        try:
            frames[key] = sample_frames(path, n_frames, strategy, size, seed, start=start, end=end)
        except (VideoDecodeError, OSError, ValueError, RuntimeError) as err:
            errors[key] = str(err)
    return frames, errors


# ------------------------------------------------------------------------------------ models


class EncoderBackbone(nn.Module):
    """The open_clip model with its last ``unfreeze_blocks`` blocks trainable (both towers)."""

    def __init__(self, encoder: Encoder, unfreeze_blocks: int) -> None:
        super().__init__()
        self.clip = encoder.model
        self._encoder = [encoder]  # not a submodule: preprocessing constants only
        unfreeze_last_blocks(self.clip, unfreeze_blocks)

    def video(self, pixels: Tensor) -> VideoFeatures:
        b, t = pixels.shape[:2]
        x = self._encoder[0].preprocess(pixels.reshape(b * t, *pixels.shape[2:]))
        frames = F.normalize(self.clip.encode_image(x).float(), dim=-1).view(b, t, -1)
        return VideoFeatures(frames, torch.ones(b, t, dtype=torch.bool, device=frames.device))

    def text(self, token_ids: Tensor) -> TextFeatures:
        return text_token_features(self.clip, token_ids)


def unfreeze_last_blocks(clip: nn.Module, n: int) -> list[str]:
    """Freeze ``clip`` except the last ``n`` blocks of each tower and the layers after them; returns
    the names of the trainable parameters. Handles ViT (``visual.transformer``) and ModifiedResNet."""
    for p in clip.parameters():
        p.requires_grad_(False)
    if n <= 0:
        return []
    modules: list[nn.Module] = []
    visual = clip.visual
    if hasattr(visual, "transformer"):
        modules += list(visual.transformer.resblocks)[-n:]
        modules += [m for m in (getattr(visual, "ln_post", None),) if m is not None]
    else:  # ModifiedResNet: layer1..layer4 then the attention pool
        modules += [getattr(visual, f"layer{i}") for i in (4, 3, 2, 1)][:n] + [visual.attnpool]
    modules += list(clip.transformer.resblocks)[-n:] + [clip.ln_final]
    for module in modules:
        for p in module.parameters():
            p.requires_grad_(True)
    for name in ("proj", "text_projection"):
        owner = visual if name == "proj" else clip
        param = getattr(owner, name, None)
        if isinstance(param, nn.Parameter):
            param.requires_grad_(True)
        elif isinstance(param, nn.Module):
            param.requires_grad_(True)
    return [name for name, p in clip.named_parameters() if p.requires_grad]


class TextBackbone(nn.Module):
    """A copy of the text tower with its last ``blocks`` blocks, final norm, projection and token
    embeddings trainable, for tuning the text side on cached (frozen) frame features.

    The copy keeps every run starting from the same pretrained weights; the image tower is dropped
    from it, since the frame features come from the embedding cache."""

    def __init__(self, encoder: Encoder, blocks: int) -> None:
        super().__init__()
        visual = encoder.model.visual
        encoder.model.visual = None  # not copied: the frames are cached features
        try:
            self.clip = copy.deepcopy(encoder.model)
        finally:
            encoder.model.visual = visual
        for p in self.clip.parameters():
            p.requires_grad_(False)
        trainable = [*list(self.clip.transformer.resblocks)[-blocks:], self.clip.ln_final, self.clip.token_embedding]
        for module in trainable:
            for p in module.parameters():
                p.requires_grad_(True)
        projection = self.clip.text_projection
        (projection.weight if isinstance(projection, nn.Linear) else projection).requires_grad_(True)

    def text(self, token_ids: Tensor) -> TextFeatures:
        return text_token_features(self.clip, token_ids)


class FinetuneModel(nn.Module):
    """A scorer, with an optional tunable encoder (or text tower alone) in front of it."""

    def __init__(
        self, scorer: DualEncoderScorer, backbone: EncoderBackbone | None = None,
        text_backbone: TextBackbone | None = None,
    ) -> None:  # fmt: skip
        super().__init__()
        self.scorer = scorer
        self.backbone = backbone
        self.text_backbone = text_backbone

    def features(self, split: FeatureSplit, vid: Tensor, cap: Tensor) -> tuple[TextFeatures, VideoFeatures]:
        """Features of videos ``vid`` and captions ``cap`` of ``split`` on the model's device."""
        device = next(self.scorer.parameters()).device
        if self.backbone is None and self.text_backbone is not None:
            return self.text_backbone.text(split.token_ids[cap].to(device)), split.video.index(vid).to(device)
        if self.backbone is None:
            return split.text.index(cap).to(device), split.video.index(vid).to(device)
        return (
            self.backbone.text(split.token_ids[cap].to(device)),
            self.backbone.video(split.pixels[vid].to(device)),
        )


def build_model(cfg: Profile, scorer: str, dim: int, encoder: Encoder | None = None) -> FinetuneModel:
    """The scorer of ``scorer`` kind with the profile's settings (and the encoder when it is tuned)."""
    ft = cfg.finetune
    temporal: dict[str, Any] = {"temporal": ft.temporal}
    if ft.temporal == "seqtransf":
        temporal["temporal_kwargs"] = {"layers": ft.temporal_layers, "dropout": ft.dropout}
    elif ft.temporal == "trend":
        temporal["temporal_kwargs"] = {"degree": cfg.tiny.trend_degree}
    options: dict[str, Any] = {
        "dual": {},
        "crossattn": {"heads": ft.crossattn_heads or None},
        "fusion": {"width": ft.fusion_width, "layers": ft.fusion_layers, "heads": ft.fusion_heads,
                   "text": ft.fusion_text, "dropout": ft.dropout},
    }.get(scorer, {})  # fmt: skip
    model = create_scorer(scorer, dim, **options, **temporal)
    if ft.temporal == "trend" and ft.trend_init:
        _start_from_pretrained_trend(cfg, model)
    backbone = EncoderBackbone(encoder, ft.unfreeze_blocks) if ft.unfreeze_blocks > 0 and encoder else None
    text_backbone = (TextBackbone(encoder, ft.text_blocks)
                     if ft.text_blocks > 0 and backbone is None and encoder else None)  # fmt: skip
    return FinetuneModel(model, backbone, text_backbone)


def _start_from_pretrained_trend(cfg: Profile, scorer: DualEncoderScorer) -> None:
    """Load vtr-tiny's pretrained clip head into the scorer's trend head (the time signal the text
    tower was pretrained against), when the profile uses vtr-tiny; otherwise keep the identity start."""
    from vtr.models.tiny import pretrained_trend_state

    state = pretrained_trend_state(cfg)
    if state is not None:
        load_pretrained_trend(scorer.temporal, state)
        scorer._trend_pretrained = True  # what finetune.trend_lr: encoder looks for


# ------------------------------------------------------------------------------------ scoring


def training_scores(scorer: DualEncoderScorer, text: TextFeatures, video: VideoFeatures, hard: int) -> Tensor:
    """(B, B) scores of a batch for the loss: every pair, or for pair scorers with ``hard > 0`` the
    pair score on the diagonal and the ``hard`` hardest dual negatives of each row and column, the
    dual score elsewhere (equal at initialisation, and far negatives carry little softmax mass)."""
    if not scorer.is_pair_scorer or hard <= 0 or hard >= len(text) - 1:
        return scorer.scores(text, video)
    dual = scorer.dual_scores(text, video)
    n = dual.shape[0]
    eye = torch.eye(n, dtype=torch.bool, device=dual.device)
    masked = dual.detach().masked_fill(eye, -torch.inf)
    chosen = eye.clone()
    chosen.scatter_(1, masked.topk(hard, dim=1).indices, True)
    chosen.scatter_(0, masked.topk(hard, dim=0).indices, True)
    t_idx, v_idx = chosen.nonzero(as_tuple=True)
    pair = scorer.pair_scores(text, video, t_idx, v_idx)
    return dual.index_put((t_idx, v_idx), pair)


@dataclass
class RetrievalScores:
    ranking: np.ndarray  # (Q, N) t2v: what caption ranks come from (each row's shortlist offset to the top)
    raw: np.ndarray  # (Q, N) t2v scores: pair scores on each row's shortlist, dual scores elsewhere
    shortlist: np.ndarray  # (Q, N) bool, each caption's top-k videos (re-scored)
    v2t_ranking: np.ndarray  # (Q, N) v2t: each column's top-k captions re-scored and offset to the top
    v2t_shortlist: np.ndarray  # (Q, N) bool, each video's top-k captions
    square: np.ndarray  # (N, N) the scorer's score of each video's first caption against every video


def _rerank(
    dual: Tensor, pair_of: Callable[[Tensor, Tensor], Tensor], k: int, dim: int
) -> tuple[Tensor, ...]:
    """Re-score each query's own top-``k`` candidates along ``dim`` (1: rows are the queries, 0: columns)."""
    top = dual.topk(min(k, dual.shape[dim]), dim=dim).indices
    shortlist = torch.zeros_like(dual, dtype=torch.bool).scatter_(dim, top, True)
    t_idx, v_idx = shortlist.nonzero(as_tuple=True)
    pair = pair_of(t_idx, v_idx)
    return (
        shortlist,
        dual.index_put((t_idx, v_idx), pair),
        dual.index_put((t_idx, v_idx), pair + _SHORTLIST_OFFSET),
    )


@torch.no_grad()
def score_retrieval(model: FinetuneModel, split: FeatureSplit, k: int, batch: int = 256) -> RetrievalScores:
    """Scores of every caption of ``split`` against every video by the standard re-ranking protocol:
    the dual encoder everywhere, each query's own top-``k`` candidates re-scored with the pair scorer
    (t2v rows: a caption's top k videos; v2t columns: a video's top k captions), and placed above the
    rest. Also the scorer's full matrix on each video's first caption (``square``)."""
    text, video, dual = _dual_scores(model, split, batch)
    scorer = model.scorer
    first = torch.as_tensor(first_caption_index(split.caption_to_video), device=dual.device)
    if not scorer.is_pair_scorer:
        sim = dual.cpu().numpy().astype(np.float64)
        none = np.zeros(sim.shape, dtype=bool)
        return RetrievalScores(sim, sim, none, sim, none.copy(), sim[first.cpu().numpy()])
    pair_of = lambda t_idx, v_idx: scorer.pair_scores(text, video, t_idx, v_idx)  # noqa: E731
    shortlist, raw, ranking = _rerank(dual, pair_of, k, dim=1)
    v2t_shortlist, _, v2t_ranking = _rerank(dual, pair_of, k, dim=0)
    square = scorer.scores(text.index(first), video)
    as_np = lambda t: t.cpu().numpy().astype(np.float64)  # noqa: E731
    return RetrievalScores(as_np(ranking), as_np(raw), shortlist.cpu().numpy(), as_np(v2t_ranking),
                           v2t_shortlist.cpu().numpy(), as_np(square))  # fmt: skip


@torch.no_grad()
def t2v_ranking(model: FinetuneModel, split: FeatureSplit, k: int, batch: int = 256) -> np.ndarray:
    """:func:`score_retrieval`'s t2v ``ranking`` alone, what validation reads every epoch: without the
    v2t re-ranking and the all-pairs ``square`` matrix, which cost more than the rest together."""
    text, video, dual = _dual_scores(model, split, batch)
    if model.scorer.is_pair_scorer:
        pair_of = lambda t_idx, v_idx: model.scorer.pair_scores(text, video, t_idx, v_idx)  # noqa: E731
        dual = _rerank(dual, pair_of, k, dim=1)[2]
    return dual.cpu().numpy().astype(np.float64)


def _dual_scores(
    model: FinetuneModel, split: FeatureSplit, batch: int
) -> tuple[TextFeatures, VideoFeatures, Tensor]:
    """Every caption's and video's features of ``split`` in eval mode, and their dual-encoder scores."""
    model.eval()
    text, video = _all_features(model, split, batch)
    return text, video, model.scorer.dual_scores(text, video)


def _all_features(
    model: FinetuneModel, split: FeatureSplit, batch: int
) -> tuple[TextFeatures, VideoFeatures]:
    device = next(model.scorer.parameters()).device
    if model.backbone is None and model.text_backbone is not None:
        parts = [model.text_backbone.text(split.token_ids[s : s + batch].to(device))
                 for s in range(0, len(split.captions), batch)]  # fmt: skip
        length = max(int(p.mask.sum(dim=1).max()) for p in parts)
        text = TextFeatures(*(torch.cat([getattr(p, f)[:, :length] if f != "pooled" else p.pooled for p in parts])
                              for f in ("pooled", "tokens", "mask")))  # fmt: skip
        return text, split.video.to(device)
    if model.backbone is None:
        return split.text.to(device), split.video.to(device)
    texts = [
        model.backbone.text(split.token_ids[s : s + batch].to(device))
        for s in range(0, len(split.captions), batch)
    ]
    videos = [
        model.backbone.video(split.pixels[s : s + batch].to(device)) for s in range(0, len(split.ids), batch)
    ]
    return (
        TextFeatures(*(torch.cat([getattr(t, f) for t in texts]) for f in ("pooled", "tokens", "mask"))),
        VideoFeatures(*(torch.cat([getattr(v, f) for v in videos]) for f in ("frames", "mask"))),
    )


@dataclass
class Evaluation:
    metrics: dict[str, float]
    t2v_ranks: np.ndarray
    v2t_ranks: np.ndarray
    scores: RetrievalScores
    pair_outcomes: np.ndarray  # per hard-pair caption: own clip scored above the partner


def evaluate(
    model: FinetuneModel, split: FeatureSplit, ft: FinetuneConfig, *, seed: int = 0, n_boot: int | None = None
) -> Evaluation:
    """Held-out metrics of ``model`` on ``split`` (see the module docstring for what each one is)."""
    scores = score_retrieval(model, split, ft.rerank_k)
    owners = split.caption_to_video
    t2v, v2t = M.t2v_ranks(scores.ranking, owners), M.v2t_ranks(scores.v2t_ranking, owners)
    partner = split.pairs.partner if split.pairs is not None else np.full(len(split.ids), -1)
    outcomes = M.pair_outcomes(scores.ranking, owners, partner)
    out = metrics_from_ranks(t2v, v2t, t2v_clusters=split.caption_clusters, v2t_clusters=split.video_clusters,
                             square=scores.square, temperature=ft.temperature, pair_outcomes=outcomes,
                             n_boot=n_boot or ft.n_boot, seed=seed)  # fmt: skip
    return Evaluation(out, t2v, v2t, scores, outcomes)


# ------------------------------------------------------------------------------------ training


@dataclass(frozen=True)
class RunSpec:
    """One trained configuration: which scorer, loss, frame sampling and seed."""

    scorer: str
    loss: str
    strategy: str
    seed: int

    def label(self) -> str:
        return f"{self.scorer}/{self.loss}/{self.strategy}/seed{self.seed}"


# The profile keys each loss reads beyond the temperature (keyword -> FinetuneConfig field).
LOSS_OPTIONS: dict[str, dict[str, str]] = {
    "infonce": {},
    "hnac": {"decay": "hnac_decay", "margin": "hnac_margin"},
}


def loss_options(ft: FinetuneConfig, name: str) -> dict[str, float]:
    """The keyword arguments of loss ``name`` from the profile (:data:`LOSS_OPTIONS`)."""
    get_loss(name)  # an unknown name fails here, naming the known losses
    return {keyword: getattr(ft, key) for keyword, key in LOSS_OPTIONS.get(name.lower(), {}).items()}


def loss_function(ft: FinetuneConfig, name: str) -> Callable[[Tensor], Tensor]:
    """The loss ``name`` at the profile's temperature (and H-NAC's decay and margin)."""
    fn, extra = get_loss(name), loss_options(ft, name)
    return lambda sim: fn(sim, ft.temperature, **extra)


def embedding_loss_function(ft: FinetuneConfig, name: str) -> Callable[[Tensor, Tensor], Tensor]:
    """The loss ``name`` of paired (B, D) caption and video embeddings through
    :func:`vtr.losses.contrastive_loss`: on one process exactly ``loss_function(ft, name)(text @ video.T)``;
    under torchrun every caption's negatives are the videos of all ranks' batches (and vice versa)."""
    extra = loss_options(ft, name)
    return lambda text, video: contrastive_loss(text, video, name, ft.temperature, **extra)


class _CaptionSampler:
    """Collate: a batch of video indices -> (videos, one random caption of each) as tensors."""

    def __init__(self, captions_of: list[np.ndarray]) -> None:
        self.captions_of = [torch.as_tensor(c) for c in captions_of]

    def __call__(self, items: list[Tensor]) -> tuple[Tensor, Tensor]:
        vid = torch.stack(items)
        # the global torch RNG, which fit() seeds per epoch: resumable and reproducible
        pick = [c[torch.randint(len(c), ()).item()] for c in (self.captions_of[int(v)] for v in vid)]
        return vid, torch.stack(pick)


def train_one(
    cfg: Profile,
    spec: RunSpec,
    train: FeatureSplit,
    val: FeatureSplit | None,
    *,
    out_dir: str | Path,
    encoder: Encoder | None = None,
    epochs: int | None = None,
    progress: bool = False,
) -> tuple[FinetuneModel, TrainResult]:
    """Train one configuration with :func:`vtr.train.fit` (validation t2v R@1 on ``val`` when given).

    Under torchrun (DDP, :mod:`vtr.train`) the dual scorer's loss goes through
    :func:`vtr.losses.contrastive_loss`, which gathers every rank's embeddings, so the negatives are the
    global batch, as on one process with the concatenated batch. The pair scorers (``crossattn``,
    ``fusion``) score (text, video) pairs jointly and are not gathered: each rank's loss sees its own
    batch's pairs only, so their negatives are local (``train.batch_size`` per process).
    """
    torch.manual_seed(spec.seed)  # the scorer's initial weights depend on the seed only
    dim = train.text.pooled.shape[1] if train.text is not None else encoder.output_dim
    model = build_model(cfg, spec.scorer, dim, encoder)
    loss_fn = loss_function(cfg.finetune, spec.loss)
    embedding_loss = embedding_loss_function(cfg.finetune, spec.loss)
    hard = cfg.finetune.hard_negatives
    n = len(train.ids)
    batch_size = min(cfg.train.batch_size, n)
    generator = torch_generator(spec.seed)  # shared by sampler and loader: fit reseeds it every epoch
    batches = create_batch_sampler(cfg.finetune.sampler, train.video_clusters, batch_size, generator,
                                   drop_last=n > batch_size)  # fmt: skip
    loader = torch.utils.data.DataLoader(
        torch.arange(n), batch_sampler=batches, collate_fn=_CaptionSampler(train.captions_of()),
        generator=generator, num_workers=cfg.train.num_workers,
    )  # fmt: skip

    def batch_loss(m: FinetuneModel, batch: tuple[Tensor, Tensor]) -> Tensor:
        vid, cap = batch
        text, video = m.features(train, vid, cap)
        if m.scorer.is_pair_scorer:  # every pair scored jointly: this rank's batch only
            return loss_fn(training_scores(m.scorer, text, video, hard))
        return embedding_loss(m.scorer.embed_text(text), m.scorer.embed_video(video))

    def validate(m: FinetuneModel) -> dict[str, float]:
        return validation_metrics(m, val, cfg.finetune)

    train_cfg = dataclasses.replace(cfg.train, epochs=epochs or cfg.train.epochs)
    encoder_params, head_params = _parameter_roles(cfg, model)
    groups = param_groups(encoder_params, head_params, train_cfg)
    device = resolve_device(cfg.device)
    result = fit(
        model, batch_loss, loader, train_cfg, out_dir=out_dir, groups=groups,
        validate=validate if val is not None else None, monitor=MONITORS[cfg.finetune.monitor], mode="max",
        seed=spec.seed, device=device, progress=progress,
    )  # fmt: skip
    return model, result


#: The validation value each ``finetune.monitor`` setting picks the epoch by (:func:`validation_metrics`).
MONITORS = {"R@1": "val_R@1", "pair_acc": "val_pair_acc", "R@1+pair_acc": "val_R@1+pair_acc"}


def validation_metrics(model: FinetuneModel, val: FeatureSplit, ft: FinetuneConfig) -> dict[str, float]:
    """What early stopping can watch on ``val``: t2v R@1 and MeanR (each caption re-ranks its own top
    ``rerank_k``), and with hard pairs the pair accuracy and the mean of the two (``val_R@1+pair_acc``).

    Why the pair accuracy: R@1 over a few hundred clips moves with appearance, while the hard pairs are
    what only a model that reads motion gets right; without them the mean is R@1 alone."""
    ranking = t2v_ranking(model, val, ft.rerank_k)
    ranks = M.t2v_ranks(ranking, val.caption_to_video)
    out = {"val_R@1": M.recall_metrics(ranks, (1,))["R@1"], "val_MeanR": float(ranks.mean())}
    partner = val.pairs.partner if val.pairs is not None else np.full(len(val.ids), -1)
    return out | pair_monitor_values(out["val_R@1"], M.pair_outcomes(ranking, val.caption_to_video, partner))


def pair_monitor_values(r_at_1: float, outcomes: np.ndarray) -> dict[str, float]:
    """``val_pair_acc`` (percent of ``outcomes``, the hard-pair captions that rank their own clip first)
    and ``val_R@1+pair_acc``; without hard pairs the pair accuracy is ``r_at_1`` itself."""
    pair_acc = 100.0 * float(outcomes.mean()) if outcomes.size else r_at_1
    return {"val_pair_acc": pair_acc, "val_R@1+pair_acc": (r_at_1 + pair_acc) / 2}


def _parameter_roles(cfg: Profile, model: FinetuneModel) -> tuple[list, list]:
    """(encoder-rate, head-rate) named parameters: the tuned encoder (or text tower) at ``lr_encoder``,
    the scorer at ``lr_head``, except vtr-tiny's pretrained trend maps with ``finetune.trend_lr: encoder``."""
    backbone = model.backbone if model.backbone is not None else model.text_backbone
    encoder = list(backbone.named_parameters()) if backbone is not None else []
    head = list(model.scorer.named_parameters())
    ft = cfg.finetune
    if ft.trend_lr == "encoder" and getattr(model.scorer, "_trend_pretrained", False):
        encoder += [(n, p) for n, p in head if n.startswith("temporal.")]
        head = [(n, p) for n, p in head if not n.startswith("temporal.")]
    return encoder, head


# ------------------------------------------------------------------------------------ grids


@dataclass
class GridResult:
    table: pd.DataFrame  # one row per RunSpec: its fields, best_epoch, final train loss, test metrics
    ranks: dict[RunSpec, dict[str, np.ndarray]]  # test "t2v" / "v2t" ranks and "pair" outcomes of every run
    histories: dict[RunSpec, pd.DataFrame]
    categories: list[str]  # category of every test caption (for breakdowns)
    caption_clusters: np.ndarray | None = None  # bootstrap unit of every test caption (clip / pair group)
    video_clusters: np.ndarray | None = None  # bootstrap unit of every test video


def run_key(cfg: Profile, spec: RunSpec, extra: dict[str, Any] | None = None) -> str:
    """A stable name for a run's checkpoint folder: the spec, then :func:`vtr.keys.run_key` of everything
    that decides its weights (the sections below, less :data:`vtr.keys.NOT_IN_KEYS`; less the fields the
    spec already names or that only the evaluation reads: ``video.strategy``, ``finetune.seeds``,
    ``finetune.n_boot``, and the ``train.tensorboard`` logging switch)."""

    def without(section: Any, *names: str) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(section).items() if k not in names}

    key = run_key_of(
        spec, cfg.world, without(cfg.video, "strategy"), cfg.data, cfg.model, without(cfg.train, "tensorboard"),
        without(cfg.finetune, "seeds", "n_boot"), cfg.seed, extra or {}, size=8,
    )  # fmt: skip
    return f"{spec.scorer}-{spec.loss}-{spec.strategy}-s{spec.seed}-{key}"


def default_runs_dir(cfg: Profile, notebook: str) -> Path:
    """``<data_dir>/runs/<notebook>``: checkpoints, so an interrupted grid resumes where it stopped."""
    return resolve(cfg.data_dir) / "runs" / notebook


def run_grid(
    cfg: Profile,
    specs: Sequence[RunSpec],
    splits: dict[str, tuple[FeatureSplit, FeatureSplit | None, FeatureSplit]],
    *,
    out_root: str | Path,
    encoder: Encoder | None = None,
    epochs: int | None = None,
    progress: bool = True,
) -> GridResult:
    """Train and test every spec; ``splits[strategy] = (train, val, test)``. Finished runs are reloaded
    from their checkpoints (the folder name hashes every setting), so re-running a grid is cheap."""
    rows, ranks, histories = [], {}, {}
    # Comparisons pair runs by test caption; strategies whose test splits lost different clips to decode
    # errors cannot be paired, which paired_differences reports (different shapes).
    test = splits[specs[0].strategy][2] if specs else None
    with cpu_threads(cfg.finetune.cpu_threads if resolve_device(cfg.device).type == "cpu" else 0):
        for spec in tqdm(specs, desc="runs", disable=not show_progress(progress)):
            _run_spec(cfg, spec, splits, out_root, encoder, epochs, rows, ranks, histories)
    if test is None:
        return GridResult(pd.DataFrame(rows), ranks, histories, [])
    return GridResult(pd.DataFrame(rows), ranks, histories, test.caption_categories, test.caption_clusters,
                      test.video_clusters)  # fmt: skip


@contextlib.contextmanager
def cpu_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` torch CPU threads (0: leave the setting alone), then restore it."""
    before = torch.get_num_threads()
    if n > 0:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _run_spec(
    cfg: Profile,
    spec: RunSpec,
    splits: dict[str, tuple[FeatureSplit, FeatureSplit | None, FeatureSplit]],
    out_root: str | Path,
    encoder: Encoder | None,
    epochs: int | None,
    rows: list[dict[str, Any]],
    ranks: dict[RunSpec, dict[str, np.ndarray]],
    histories: dict[RunSpec, pd.DataFrame],
) -> None:
    """Train and test one spec; append its row, ranks and history."""
    train, val, test = splits[spec.strategy]
    out_dir = Path(out_root) / run_key(cfg, spec, {"epochs": epochs})
    model, result = train_one(cfg, spec, train, val, out_dir=out_dir, encoder=encoder, epochs=epochs)
    evaluation = evaluate(model, test, cfg.finetune, seed=spec.seed)
    history = result.history
    final = history.iloc[-1]
    rows.append({
        **dataclasses.asdict(spec),
        "epochs_run": int(final["epoch"]),
        "best_epoch": result.best_epoch,
        "train_loss": float(final["train_loss"]),
        **evaluation.metrics,
    })  # fmt: skip
    ranks[spec] = {"t2v": evaluation.t2v_ranks, "v2t": evaluation.v2t_ranks, "pair": evaluation.pair_outcomes}
    histories[spec] = history


# ------------------------------------------------------------------------------------ summaries


def summary_table(
    table: pd.DataFrame, by: Sequence[str], columns: Sequence[str], digits: int = 3
) -> pd.DataFrame:
    """``mean ± std`` over seeds of each column, one row per group of ``by`` (std with ddof=1)."""
    grouped = table.groupby(list(by), sort=False)[list(columns)]
    mean, std, count = grouped.mean(), grouped.std(ddof=1), grouped.size()
    out = pd.DataFrame(index=mean.index)
    for column in columns:
        out[column] = [
            f"{m:.{digits}g} ± {s:.{digits}g}" if np.isfinite(s) else f"{m:.{digits}g}"
            for m, s in zip(mean[column], std[column], strict=True)
        ]
    out["seeds"] = count
    return out


def pooled_ranks(grid: GridResult, select: dict[str, Any], direction: str = "t2v") -> np.ndarray:
    """Test ranks of every run matching ``select`` (e.g. ``{"scorer": "dual", "loss": "hnac"}``),
    concatenated in :func:`run_ranks`' order: paired with another selection's by run and query."""
    return run_ranks(grid, select, direction)[1].reshape(-1)


def run_ranks(
    grid: GridResult, select: dict[str, Any], direction: str = "t2v"
) -> tuple[list[int], np.ndarray]:
    """``(seeds, (n_runs, n_queries) array)``: the test ranks (or ``"pair"`` outcomes) of every run
    matching ``select``, one row per run ordered by (seed, scorer, loss, strategy). Two selections that
    differ in one field therefore pair their runs by the other fields: ``{"strategy": "uniform"}``
    against ``{"strategy": "mean"}`` pairs each (seed, loss) run with its twin."""
    chosen = sorted(
        (s for s in grid.ranks if all(getattr(s, k) == v for k, v in select.items())),
        key=lambda s: (s.seed, s.scorer, s.loss, s.strategy),
    )
    if not chosen:
        raise KeyError(f"no run matches {select}")
    return [s.seed for s in chosen], np.stack([grid.ranks[s][direction] for s in chosen])


def paired_differences(
    grid: GridResult,
    comparisons: Sequence[tuple[str, dict[str, Any], dict[str, Any]]],
    metrics: Sequence[str] = ("R@1", "R@5", "R@10"),
    *,
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """``metric(b) - metric(a)`` (means over seeds) for each comparison, one row per (comparison, metric):
    the paired two-level bootstrap interval and p-value (see the module docstring), ``p_holm`` the
    Holm–Bonferroni adjusted p over the comparisons of that metric (one family per metric), and
    ``significant`` when ``p_holm < alpha``. With hard pairs, rows ``metric == "pair_acc"`` give the
    pair-accuracy difference with an exact McNemar test on (seed, caption) pairs, Holm-corrected as
    their own family (``low``/``high`` are NaN there: McNemar gives no interval)."""
    rows = []
    has_pairs = all("pair" in r for r in grid.ranks.values())
    for name, a, b in comparisons:
        (seeds_a, ranks_a), (seeds_b, ranks_b) = run_ranks(grid, a), run_ranks(grid, b)
        if seeds_a != seeds_b:
            raise ValueError(f"{name}: the two sides ran with different seeds ({seeds_a} vs {seeds_b})")
        for metric in metrics:
            d = M.paired_bootstrap_diff(ranks_a, ranks_b, metric, n_boot=n_boot, seed=seed,
                                        clusters=grid.caption_clusters)  # fmt: skip
            rows.append({"comparison": name, "metric": f"t2v_{metric}", "diff": d.diff, "low": d.low,
                         "high": d.high, "p": d.p_value})  # fmt: skip
        pair_a, pair_b = (run_ranks(grid, x, "pair")[1] for x in (a, b)) if has_pairs else (np.empty(0),) * 2
        if pair_a.size:
            test = M.mcnemar_exact(pair_a, pair_b)
            rows.append({"comparison": name, "metric": "pair_acc", "diff": 100.0 * (pair_b.mean() - pair_a.mean()),
                         "low": np.nan, "high": np.nan, "p": test.p_value})  # fmt: skip
    table = pd.DataFrame(rows, columns=["comparison", "metric", "diff", "low", "high", "p"])
    table["p_holm"] = np.nan
    for _, part in table.groupby("metric", sort=False):
        table.loc[part.index, "p_holm"] = M.holm(part["p"])
    table["significant"] = table["p_holm"] < alpha
    return table


def describe_differences(diffs: pd.DataFrame, metric: str = "t2v_R@1", alpha: float = 0.05) -> str:
    """The verdicts from the Holm-adjusted results: a count sentence, then one sentence per comparison.
    A difference is called a gain or a loss only when its adjusted p is below ``alpha``."""
    part = diffs[diffs["metric"] == metric]
    n_real = int(part["significant"].sum())
    sentences = [
        f"{n_real} of {len(part)} {metric} differences are real after Holm–Bonferroni correction "
        f"(family-wise error {alpha:.0%})."
    ]
    for row in part.itertuples():
        if np.isfinite(row.low):
            interval = f"{row.diff:+.1f} points, 95% CI [{row.low:+.1f}, {row.high:+.1f}]"
        else:
            interval = f"{row.diff:+.1f} points"
        if row.significant:
            verdict = "a real gain" if row.diff > 0 else "a real loss"
        else:
            verdict = "not distinguishable from zero"
        sentences.append(
            f"{row.comparison}: {metric} {interval}, Holm-adjusted p = {row.p_holm:.3g}, {verdict}."
        )
    return " ".join(sentences)


def pair_accuracy_table(grid: GridResult, by: Sequence[str]) -> pd.DataFrame:
    """Pair accuracy per group of ``by``: pooled over seeds (= the mean of the per-seed shares), with the
    exact interval on the pooled (seed, caption) trials, and the spread of the per-seed shares."""
    lines = []
    for group in sorted({tuple(getattr(s, k) for k in by) for s in grid.ranks}):
        seeds, outcomes = run_ranks(grid, dict(zip(by, group, strict=True)), "pair")
        if not outcomes.size:
            continue
        acc = M.pair_accuracy(outcomes)
        per_seed = 100.0 * outcomes.mean(axis=1)
        lines.append({**dict(zip(by, group, strict=True)), "pair_acc": acc.accuracy, "low": acc.low,
                      "high": acc.high, "seed_std": float(np.std(per_seed, ddof=1)) if len(seeds) > 1 else np.nan,
                      "captions": outcomes.shape[1], "seeds": len(seeds)})  # fmt: skip
    return pd.DataFrame(lines).set_index(list(by)) if lines else pd.DataFrame()


def category_breakdown(grid: GridResult, by: Sequence[str], metric: str = "R@1") -> pd.DataFrame:
    """t2v ``metric`` per test-caption category (rows) for each group of ``by`` (columns), pooled over seeds."""
    groups = sorted({tuple(getattr(s, k) for k in by) for s in grid.ranks})
    columns = {}
    for group in groups:
        select = dict(zip(by, group, strict=True))
        ranks = pooled_ranks(grid, select)
        n_seeds = len(ranks) // len(grid.categories)
        table = M.breakdown(ranks, np.tile(np.asarray(grid.categories), n_seeds), ks=(1, 5))
        columns["/".join(map(str, group))] = table[metric]
        columns.setdefault("n", table["n"] // n_seeds)
    return pd.DataFrame(columns)


# ------------------------------------------------------------------------------------ calibration

# The categories whose hard pairs differ in motion (every category but the static clips).
MOTION_CATEGORIES = ("horizontal", "vertical", "scale", "rotation", "bounce", "sequence")


def mean_pooling_baseline(cfg: Profile, encoder: Encoder, test: FeatureSplit) -> Evaluation:
    """The frozen dual encoder with mean pooling (no trained layer): the order-blind reference every
    temporal model is measured against, whatever ``finetune.temporal`` the grid uses."""
    mean_cfg = dataclasses.replace(cfg, finetune=dataclasses.replace(cfg.finetune, temporal="mean"))
    dim = test.text.pooled.shape[1] if test.text is not None else encoder.output_dim
    return evaluate(build_model(mean_cfg, "dual", dim, encoder), test, cfg.finetune, seed=cfg.seed)


def pair_caption_clusters(split: FeatureSplit) -> np.ndarray:
    """The hard-pair group of every caption that :func:`vtr.metrics.pair_outcomes` scores, in its order."""
    if split.pairs is None:
        return np.empty(0, dtype=str)
    has_partner = split.pairs.partner[split.caption_to_video] >= 0
    return split.caption_clusters[has_partner]


def pair_gain_over_baseline(
    grid: GridResult, baseline: Evaluation, select: dict[str, Any], test: FeatureSplit,
    *, n_boot: int = 1000, seed: int = 0,
) -> Effect:  # fmt: skip
    """Pair accuracy of the runs matching ``select`` (all seeds) minus the baseline's, with the
    two-level bootstrap interval over hard-pair groups and seeds (:func:`vtr.calibration.pair_accuracy_gain`)."""
    _, outcomes = run_ranks(grid, select, "pair")
    return pair_accuracy_gain(baseline.pair_outcomes, outcomes, pair_caption_clusters(test), n_boot=n_boot,
                              seed=seed)  # fmt: skip


def pair_gain_between(
    grid: GridResult, a: dict[str, Any], b: dict[str, Any], test: FeatureSplit, *, n_boot: int = 1000, seed: int = 0
) -> Effect:
    """Pair accuracy of the runs ``b`` minus those of ``a`` (paired by seed and caption), with its interval."""
    (seeds_a, pair_a), (seeds_b, pair_b) = run_ranks(grid, a, "pair"), run_ranks(grid, b, "pair")
    if seeds_a != seeds_b:
        raise ValueError(f"the two sides ran with different seeds ({seeds_a} vs {seeds_b})")
    return pair_accuracy_gain(pair_a, pair_b, pair_caption_clusters(test), n_boot=n_boot, seed=seed)


def sampling_interaction(
    grid: GridResult, a: dict[str, Any], b: dict[str, Any], group: Sequence[str] = MOTION_CATEGORIES,
    *, metric: str = "R@1", n_boot: int = 1000, seed: int = 0,
) -> tuple[Effect, dict[str, float]]:  # fmt: skip
    """How much more ``b`` loses against ``a`` (t2v ``metric``) on the ``group`` categories than on the
    others (:func:`vtr.calibration.category_interaction`), e.g. mean-frame vs uniform sampling on
    the motion categories vs the static clips."""
    (seeds_a, ranks_a), (seeds_b, ranks_b) = run_ranks(grid, a), run_ranks(grid, b)
    if seeds_a != seeds_b:
        raise ValueError(f"the two sides ran with different seeds ({seeds_a} vs {seeds_b})")
    return category_interaction(ranks_a, ranks_b, grid.categories, group, grid.caption_clusters,
                                metric=metric, n_boot=n_boot, seed=seed)  # fmt: skip


def effects_table(effects: dict[str, Effect]) -> pd.DataFrame:
    """One row per named effect: difference, interval, p, whether the interval excludes 0."""
    return pd.DataFrame(
        [{"comparison": name, "diff": e.diff, "low": e.low, "high": e.high, "p": e.p_value,
          "excludes_0": e.excludes_zero, "queries": e.n_queries, "seeds": e.n_seeds}
         for name, e in effects.items()]
    ).set_index("comparison")  # fmt: skip


def describe_effects(effects: dict[str, Effect]) -> str:
    """One sentence per effect, saying whether its interval excludes zero (built from the numbers)."""
    sentences = []
    for name, e in effects.items():
        verdict = ("its interval excludes zero" if e.excludes_zero
                   else "its interval includes zero: no difference shown")  # fmt: skip
        sentences.append(f"{e.describe(name)}; {verdict}.")
    return " ".join(sentences)
