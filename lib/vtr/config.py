"""Profiles: typed, validated configuration loaded from ``configs/<name>.yaml``.

A profile is a YAML file whose keys mirror the dataclasses below. The dataclass defaults ARE the
sample profile (``configs/sample.yaml`` only names itself), and every other profile states only
its differences from them, so each default is written once:

    cfg = load_profile("sample", overrides={"world.n_clips": 60})
    differences(load_profile("sample"), load_profile("full"))   # {"device": ("cpu", "auto"), ...}

Loading validates the whole profile with pydantic v2 before anything runs: an unknown or mistyped
key, a value of the wrong type, a number out of range or a name that is not one of the allowed
ones (a sampling strategy, a data source, a loss: the registered names) raises
:class:`ConfigError` naming the file (or the ``--set`` override), the key, the value and what is
allowed. The loaded sections are plain dataclasses, so ``cfg.video.cache``,
``dataclasses.asdict`` and ``dataclasses.replace`` work as before; objects built in Python
without :func:`load_profile` are not validated.

Each section belongs to one part of the library; add a field to the section that reads it.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, BeforeValidator, ConfigDict, Field, Strict, TypeAdapter, ValidationError

from vtr.paths import project_root


class ConfigError(ValueError):
    """A profile that does not match the schema: names the file, the key and what is allowed."""


# ------------------------------------------------------------------------------------ value types

Int = Annotated[int, Strict()]  # strict: a YAML true or "3" is not an int
Float = Annotated[float, Strict()]  # strict, but an int is taken for a float (0 -> 0.0)
Bool = Annotated[bool, Strict()]
Str = Annotated[str, Strict()]  # strict: an unquoted 6_6_10 is YAML's int 6610, not a name
Positive = Annotated[int, Strict(), Field(ge=1)]
Count = Annotated[int, Strict(), Field(ge=0)]
PositiveFloat = Annotated[float, Strict(), Field(gt=0)]
NonNegativeFloat = Annotated[float, Strict(), Field(ge=0)]
Fraction = Annotated[float, Strict(), Field(ge=0, le=1)]
OpenFraction = Annotated[float, Strict(), Field(gt=0, lt=1)]

# Each section rejects keys it does not define (load_profile names the file and suggests a key).
_SECTION = ConfigDict(extra="forbid")


_LISTED = 20  # an error message lists up to this many allowed names


def _registered(kind: str, module: str, attr: str) -> Callable[[str], str]:
    """A validator accepting the names registered in ``module.attr`` (a ``list_*`` function, a
    :class:`vtr.registry.Registry` or a dict), imported when a profile is validated, not before,
    so a component registered by a notebook or a plug-in is allowed too."""

    def check(value: str) -> str:
        source = getattr(importlib.import_module(module), attr)
        allowed = list(source() if callable(source) else source)
        if value not in allowed:
            close = difflib.get_close_matches(value, allowed, n=3 if len(allowed) > _LISTED else 1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            if (
                len(allowed) > _LISTED
            ):  # open_clip's hundreds of architectures: the closest, and where to look
                shown = f"{len(allowed)} names of {module}.{attr}(); closest: {close or 'none'}"
                raise ValueError(f"must be one of the registered {kind} ({shown}), got {value!r}")
            raise ValueError(f"must be one of the registered {kind} {allowed}, got {value!r}{hint}")
        return value

    return check


Strategy = Annotated[
    str, Strict(), AfterValidator(_registered("sampling strategies", "vtr.video", "list_strategies"))
]
Source = Annotated[
    str, Strict(), AfterValidator(_registered("data sources", "vtr.data.sources", "list_sources"))
]
Loss = Annotated[str, Strict(), AfterValidator(_registered("losses", "vtr.losses", "list_losses"))]
Scorer = Annotated[str, Strict(), AfterValidator(_registered("scorers", "vtr.models.crossmodal", "SCORERS"))]
TemporalHead = Annotated[
    str, Strict(), AfterValidator(_registered("temporal heads", "vtr.models.temporal", "HEADS"))
]
Architecture = Annotated[
    str,
    Strict(),
    AfterValidator(_registered("encoder architectures", "vtr.models.encoders", "list_encoders")),
]
MomentModel = Annotated[
    str, Strict(), AfterValidator(_registered("moment models", "vtr.moments.models", "list_moment_models"))
]
MsrvttSplit = Annotated[
    str, Strict(), AfterValidator(_registered("MSR-VTT splits", "vtr.data.msrvtt", "SPLITS"))
]

_DEVICE = re.compile(r"auto|cpu|mps|cuda(:\d+)?")


def _device(value: str) -> str:
    if not _DEVICE.fullmatch(value):
        raise ValueError(f"must be auto, cpu, mps, cuda or cuda:N, got {value!r}")
    return value


def _split_fractions(value: list[float]) -> list[float]:
    if len(value) != 3 or min(value) < 0 or abs(sum(value) - 1) > 1e-6:
        raise ValueError(f"must be three non-negative fractions (train, val, test) summing to 1, got {value}")
    return value


def _even_frame_side(value: int) -> int:
    if value < 32 or value % 2:
        raise ValueError(f"must be even and >= 32 (H.264, room to move), got {value}")
    return value


_HNERV_SPLIT = re.compile(r"\d+_\d+_\d+")


def _hnerv_split(value: str) -> str:
    if not _HNERV_SPLIT.fullmatch(value):
        raise ValueError(f"must be an HNeRV split a_b_c such as '6_6_10' (quote it in YAML), got {value!r}")
    return value


Device = Annotated[str, Strict(), AfterValidator(_device)]
SplitFractions = Annotated[list[Float], AfterValidator(_split_fractions)]
HnervSplit = Annotated[str, Strict(), AfterValidator(_hnerv_split)]


# ------------------------------------------------------------------------------------ sections


@dataclass
class WorldConfig:
    """The procedurally generated sample world (``vtr.data.synthetic``).

    The built world is cached under ``<data_dir>/sample_world/<hash of these fields + seed>/``.
    """

    __pydantic_config__ = _SECTION

    n_clips: Positive = 1400  # short clips (train/val/test), mostly in hard pairs of two
    # Share of clips that are static (one clip, no partner): 03's appearance-only contrast, whose
    # interval narrows with their number (at 1/13 of the clips it spanned about +-12 points).
    static_fraction: Fraction = 0.25
    n_long_videos: Count = 20  # multi-event videos for moment retrieval
    events_per_long_video: Positive = 5
    n_stills: Count = 2000  # still frames with appearance-only captions (tiny model pretraining)
    clip_frames: Positive = 24
    fps: Positive = 8
    size: Annotated[int, Strict(), AfterValidator(_even_frame_side)] = 64  # frame side in pixels
    captions_per_clip: Annotated[int, Strict(), Field(ge=1, le=18)] = 5  # paraphrases per clip
    split_fractions: SplitFractions = field(default_factory=lambda: [0.55, 0.15, 0.3])  # ~770/210/420 clips, >150 test pairs


@dataclass
class VideoConfig:
    """Decoding and frame sampling (``vtr.video``)."""

    __pydantic_config__ = _SECTION

    n_frames: Positive = 8
    size: Positive = 64
    strategy: Strategy = "uniform"  # a name of vtr.video.list_strategies()
    cache: Bool = True


@dataclass
class DataConfig:
    """Which corpus the experiments run on (``vtr.data``)."""

    __pydantic_config__ = _SECTION

    source: Source = (
        "sample"  # a name of vtr.data.sources.list_sources(): sample | internvid | msrvtt | folder
    )
    root: Str = ""  # folder of videos (msrvtt / folder sources)
    captions: Str = ""  # captions csv/jsonl for the folder source
    msrvtt_annotations: Str = ""  # folder holding MSRVTT_JSFUSION_test.csv, *_videodatainfo.json


@dataclass
class InternVidConfig:
    """InternVid metadata and clip download (``vtr.data.internvid``, ``vtr.download``)."""

    __pydantic_config__ = _SECTION

    metadata: Str = "OpenGVLab/InternVid"  # hub dataset id, or a local jsonl/json/parquet/csv file
    subset: Str = "InternVid-10M"  # hub configuration; InternVid-18M holds the AES split
    split: Str = "FLT"  # hub split within the subset: FLT / DIV (InternVid-10M), AES (InternVid-18M)
    min_aesthetic: Float = 4.0
    min_duration: NonNegativeFloat = 3.0  # seconds; clips outside [min_duration, max_duration] are skipped
    max_duration: PositiveFloat = 15.0
    count: Positive = 50  # the first `count` rows passing the filter, in metadata order
    workers: Positive = 4  # parallel downloads
    timeout: PositiveFloat = 120.0  # seconds: network socket timeout, and the limit for one ffmpeg run
    retries: Count = 3  # yt-dlp retries on transient HTTP errors
    out_dir: Str = "data/internvid"  # clips/, status.jsonl and manifest.jsonl go here
    url_template: Str = "https://www.youtube.com/watch?v={youtube_id}"
    # yt-dlp format selector: a small mp4; video-only streams are fine since audio is dropped
    format: Str = "best[height<=360][ext=mp4]/bestvideo[height<=360][ext=mp4]/best[ext=mp4]/best"
    section_download: Bool = True  # fetch only [start, end] (yt-dlp download_ranges) instead of the video
    crf: Annotated[int, Strict(), Field(ge=0, le=51)] = 23  # libx264 quality of the cut clips
    keep_audio: Bool = False
    duration_tolerance: NonNegativeFloat = 0.5  # seconds a cut clip may differ from end - start
    split_fractions: SplitFractions = field(default_factory=lambda: [0.8, 0.1, 0.1])  # train/val/test


@dataclass
class ModelConfig:
    """The CLIP-style encoder (``vtr.models.encoders``)."""

    __pydantic_config__ = _SECTION

    # a name of vtr.models.encoders.list_encoders(): open_clip's architectures (with vtr's vtr-tiny)
    # and vtr's registered ones (viclip-l14, viclip-b16)
    arch: Architecture = "vtr-tiny"
    # an open_clip tag (e.g. "openai"), a local checkpoint path, "" for random weights, or "vtr-tiny"
    # for vtr's self-pretrained checkpoint (built on demand from the sample world, see ``tiny``).
    # ViCLIP takes a path to the official checkpoint (ViClip-InternVid-10M-FLT.pth) or "".
    pretrained: Str = "vtr-tiny"
    batch_size: Positive = 64  # frames or captions per forward pass


@dataclass
class TinyConfig:
    """Pretraining of the tiny CLIP on the sample world's stills (``vtr.models.tiny``).

    The checkpoint is cached under ``data/models/`` by a hash of this section, the world section
    and the seed.
    """

    __pydantic_config__ = _SECTION

    max_epochs: Positive = 6  # the cosine schedule spans this (6 x the pool below: 56% of 8 x 1600 + 800)
    batch_size: Positive = 128
    lr: PositiveFloat = 2e-3
    weight_decay: NonNegativeFloat = 0.1
    warmup_steps: Count = 30
    patience: Count = 3  # epochs without held-out improvement before stopping
    target_accuracy: NonNegativeFloat = 0.99  # held-out accuracy that stops training early (> 1: never)
    augment: Bool = False  # random translations of the stills (off: frame features keep position)
    # The motion pretraining pool (vtr.data.synthetic.pretraining); 0 clips = stills-only pretraining.
    pool_stills: Count = 1200  # pool stills (own seeds and templates); 0 = the world's training stills
    pool_clips: Count = 600  # short motion clips with motion captions
    pool_frames: Positive = 4  # evenly spaced frames per pool clip
    position_captions: Bool = True  # half the pool stills' captions also name the objects' position
    # Legendre time moments of the pretraining video head (models.temporal.TrendHead)
    trend_degree: Annotated[int, Strict(), Field(ge=1, le=3)] = 2


@dataclass
class TrainConfig:
    """The shared trainer (``vtr.train``): seed 003's AdamW settings, few epochs for 2 CPU cores."""

    __pydantic_config__ = _SECTION

    epochs: Count = 10  # seed 003 reports its alignment losses at epoch 10
    batch_size: Positive = 32
    # tuned encoder blocks (the sample's text block on cached features); full: seed 003's 2e-5
    lr_encoder: NonNegativeFloat = 1e-4
    lr_head: NonNegativeFloat = 1e-3  # new heads start from scratch and need a larger step than the encoder
    weight_decay: NonNegativeFloat = 0.02  # seed 003; never applied to biases, norms or the logit scale
    warmup_fraction: Fraction = 0.1  # linear warmup over this fraction of all steps, then cosine decay to 0
    grad_accum: Positive = 1  # batches whose gradients are summed before one optimizer step
    grad_clip: NonNegativeFloat = 1.0  # max global gradient norm; 0 turns clipping off
    amp: Bool = True  # mixed precision; only takes effect on CUDA
    patience: Count = 3  # epochs without a better monitored value before stopping; 0 = never stop early
    num_workers: Count = 0  # DataLoader workers
    tensorboard: Bool = (
        False  # also log to <out_dir>/tensorboard (sample: many short runs, metrics.csv is enough)
    )


@dataclass
class FinetuneConfig:
    """Notebooks 02 and 03: cross-attention, InfoNCE vs H-NAC, fusion, sampling ablations (``vtr.finetune``).

    The defaults train heads on FROZEN vtr-tiny features from the embedding cache, sized so each
    notebook takes about two minutes on 2 cores; the full profile sets seed 003's sizes.
    """

    __pydantic_config__ = _SECTION

    scorers: list[Scorer] = field(default_factory=lambda: ["dual", "crossattn"])  # notebook 02's models
    losses: list[Loss] = field(default_factory=lambda: ["infonce", "hnac"])
    # sample: the two the motion/static interaction needs (the reports' 12-minute budget); full: + keyframes,
    # weighted, dropout
    strategies: list[Strategy] = field(default_factory=lambda: ["uniform", "mean"])
    # every configuration is trained once per seed; sample: one (budget), so its intervals cover the test
    # clips, not training noise; full: five
    seeds: list[Int] = field(default_factory=lambda: [0])
    temperature: PositiveFloat = (
        0.07  # fixed, so alignment losses compare across models (seed 003 reports them)
    )
    hnac_decay: NonNegativeFloat = 5.0  # H-NAC's λ: how fast a negative's weight decays past s_pos - margin
    hnac_margin: Float = 0.1  # H-NAC's m: negatives within m of the positive start to be down-weighted
    temporal: TemporalHead = "trend"  # video head of every scorer: mean | seqtransf | trend
    # trend head: start from vtr-tiny's pretrained time maps (when model.pretrained is vtr-tiny)
    trend_init: Bool = True
    # the rate of the pretrained trend maps (trend_init with vtr-tiny): "encoder" = train.lr_encoder, like the
    # other pretrained weights tuned; "head" = train.lr_head, like the new layers
    trend_lr: Literal["encoder", "head"] = "head"
    sampler: Literal["random", "pairs"] = "pairs"  # pairs: hard-pair partners share a training batch
    # what picks the epoch on the val split: t2v R@1, the pair accuracy, or their mean (val_R@1+pair_acc)
    monitor: Literal["R@1", "pair_acc", "R@1+pair_acc"] = "R@1+pair_acc"
    text_blocks: Count = 1  # last text-tower blocks tuned on cached frame features (+ ln_final, projection, tokens)
    temporal_layers: Positive = 1  # seqTransf depth (CLIP4Clip's 4 in the full profile)
    crossattn_heads: Count = 0  # 0 = one head per 64 channels
    fusion_width: Positive = 32  # the fusion transformer's width (inputs are projected to it); full: 256
    fusion_layers: Positive = 4  # seed 003: a 4-layer encoder over [video | text]
    fusion_heads: Positive = 2
    # tokens: every caption token enters the fusion; pooled: one caption token per pair (keeps the
    # sample's 30 fusion runs within budget)
    fusion_text: Literal["tokens", "pooled"] = "pooled"
    dropout: Annotated[float, Strict(), Field(ge=0, lt=1)] = 0.1
    # pair scorers in training: 0 = every in-batch pair; n = positives + n hardest per row/column
    hard_negatives: Count = 4
    rerank_k: Positive = (
        10  # retrieval re-scores each query's top-k dual-encoder candidates with the pair scorer
    )
    unfreeze_blocks: Count = (
        0  # last encoder blocks trained at train.lr_encoder (0 = frozen, cached features)
    )
    n_boot: Positive = 1000  # bootstrap resamples for intervals and paired differences
    # torch CPU threads while a grid trains (0 = torch's default, every core). On an idle 2-core machine
    # two threads train a notebook-02 run in 52 s against 72 s on one; on a machine busy with other work
    # the small matrices lose more to synchronisation than they gain, so set 1 there
    cpu_threads: Count = 0


@dataclass
class HnervConfig:
    """Notebook 04: the dual-head HNeRV study (``vtr.experiments.hnerv``, ``vtr.models.hnerv``).

    Defaults are the sample profile's CPU-sized setting (Big Buck Bunny's 640 x 1280 crop downscaled
    to 64 x 128, 2 x 4 patches of 32 x 32, 12 epochs: ~50 s of training on 2 idle cores); the full
    profile sets the HNeRV paper's bunny setting (640 x 1280 crop at full resolution, 300 epochs,
    ~1.5M parameters for medium).
    """

    __pydantic_config__ = _SECTION

    video: Str = "bigbuckbunny"  # a name from vtr.data.real_videos.real_videos(), or a video file path
    max_frames: Count = 0  # use the first N frames; 0 = all (Big Buck Bunny has 132)
    crop: list[Positive] = field(default_factory=lambda: [640, 1280])  # centre crop (h, w): HNeRV's 640_1280
    resize: list[Positive] = field(
        default_factory=lambda: [64, 128]
    )  # then resize to (h, w); [] keeps the crop
    grid: list[Positive] = field(default_factory=lambda: [2, 4])  # patch rows x columns (seed 000: 2 x 4)
    strides: list[Positive] = field(
        default_factory=lambda: [2, 2, 2]
    )  # decoder upsampling; prod divides the patch
    # fc_dim (width of the decoder's first feature map) of each model size; sizes are run in this order
    widths: dict[Str, Positive] = field(
        default_factory=lambda: {"small": 8, "medium": 16, "large": 32, "xl": 48}
    )
    reduce: PositiveFloat = 1.2  # HNeRV's channel reduction per decoder block
    lower_width: Positive = 8  # lowest channel width (HNeRV: 12)
    kernel_max: Positive = (
        3  # decoder kernels grow 1, 3, 5, ... up to this (HNeRV: 5; 3 is ~2.5x cheaper on CPU)
    )
    pe_base: PositiveFloat = 1.25  # NeRV's positional encoding pe_1.25_L ...
    pe_levels: Positive = 32  # ... with L levels: 1.25^(L-1) must exceed the frame count (80 in NeRV)
    embed_dim: Positive = 16  # content-HNeRV embedding channels (HNeRV's enc_dim 64_16)
    splits: list[HnervSplit] = field(default_factory=lambda: ["9_10_10", "6_6_10", "8_8_10"])  # HNeRV a_b_c
    main_split: HnervSplit = "6_6_10"  # the split of the size sweep (it has the most held-out frames)
    main_size: Str = "medium"  # the size of the split sweep and of the content-HNeRV reference
    # splits on which the original (content-embedding) HNeRV is also trained at main_size; [] = none
    reference_splits: list[HnervSplit] = field(default_factory=lambda: ["6_6_10"])
    epochs: Positive = 12
    batch_size: Positive = 32  # patches per step
    lr: PositiveFloat = 1e-2  # HNeRV: 1e-3 for 300 epochs; the sample's 12 epochs need a larger step
    clip_weight: NonNegativeFloat = 0.2  # lambda of the embedding term (seed 000: 0.1-0.2)
    clip_warmup_epochs: Count = 3  # RGB-only epochs before the embedding term switches on (seed: 50 of 300)
    curve_patches: Positive = 128  # patches per group scored after every epoch for the training curves
    queries: list[Str] = field(
        default_factory=lambda: ["a plain green background", "a plain blue background", "a white circle"]
    )
    top_k: Positive = 6  # patches shown per text query
    tsne_points: Positive = 300  # patches per source (predicted, ground truth) in the projection


@dataclass
class MsrvttRecallConfig:
    """Notebook 05: MSR-VTT recall tables (``vtr.experiments.msrvtt_recall``).

    The defaults read the sample world's MSR-VTT-format annotations with the loader the full profile
    uses on real MSR-VTT; heads train on cached frame embeddings in seconds. The full profile sets
    seed 002's recipe (batch 256, lr 1e-4, 1024-wide projection, CLIP4Clip's 4-layer seqTransf).
    """

    __pydantic_config__ = _SECTION

    test_split: MsrvttSplit = "test_1k"  # the 1k-A test: the protocol behind the published numbers
    train_split: MsrvttSplit = (
        "train_9k"  # what the projection and the temporal heads train on (CLIP4Clip's 9k)
    )
    val_fraction: OpenFraction = (
        0.2  # of the training videos, held out for early stopping (never the test set)
    )
    # Pre-extracted video features as seed 002 used: an .npy of (N, D) or (N, T, D) rows plus the video
    # id of each row (.txt / .json / .npy); "" embeds the videos with the profile's encoder instead.
    video_features: Str = ""
    video_feature_ids: Str = ""
    temperature: PositiveFloat = 0.07  # InfoNCE temperature of every trained row (seed 002)
    hard_negatives: Count = 8  # per query, the hardest in-batch negatives seed 002's loss keeps; 0 = all
    projection_hidden: Positive = 256  # hidden width of the text projection MLP (seed 002: 1024)
    epochs: Count = 20  # seed 002 trains 10-15 epochs on real MSR-VTT
    batch_size: Positive = 32  # seed 002: 256
    lr: PositiveFloat = 1e-3  # AdamW learning rate of the projection and the heads (seed 002: 1e-4)
    patience: Count = 5  # epochs without a better monitored value before stopping; 0 = never stop early
    # The held-out value that picks the epoch, as finetune.monitor (R@1+pair_acc is R@1 without hard pairs)
    monitor: Literal["R@1", "pair_acc", "R@1+pair_acc"] = "R@1+pair_acc"
    rounds_per_epoch: Positive = (
        1  # visits of each training video per epoch, each with a fresh random caption
    )
    heads: list[TemporalHead] = field(
        default_factory=lambda: ["mean", "trend"]
    )  # temporal heads compared (full: mean, seqtransf); the gain over "mean" is reported with its interval
    head_layers: Positive = 2  # transformer layers of the seqTransf head (CLIP4Clip uses 4)
    trend_init: Bool = True  # the trend head starts from vtr-tiny's pretrained time maps (with vtr-tiny)
    sampler: Literal["random", "pairs"] = "pairs"  # pairs: hard-pair partners share a training batch
    n_boot: Positive = 1000  # bootstrap resamples of the test queries for the intervals
    n_cases: Count = 4  # success and failure cases shown with frames


@dataclass
class MomentsConfig:
    """Moment retrieval: ``vtr moments train``, notebook 07 and the demo (``vtr.moments``).

    Defaults are the sample profile's: the world's long videos, 2-second clips (the world's events
    fall on whole 2-second clips), small models trained in seconds on CPU.
    """

    __pydantic_config__ = _SECTION

    dataset: Literal["sample", "qvhighlights"] = "sample"  # sample: the world's long videos | qvhighlights
    annotations: Str = ""  # qvhighlights: folder with highlight_{train,val}_release.jsonl
    videos: Str = ""  # qvhighlights: folder of <vid>.mp4 (QVHighlights' 150 s clips)
    clip_len: PositiveFloat = 2.0  # seconds per clip (QVHighlights: 2, Charades-STA: 1)
    frames_per_clip: Positive = 2  # frames averaged into one clip feature
    models: list[MomentModel] = field(default_factory=lambda: ["temporal", "span"])  # zero_shot is free
    epochs: Positive = 40
    batch_size: Positive = 16
    lr: PositiveFloat = 1e-3
    hidden: Positive = 64  # width of the temporal / span transformers
    layers: Positive = 2
    heads: Positive = 4
    n_queries: Positive = 10  # span model: learned moment queries (Moment-DETR: 10)
    max_clips: Positive = 75  # the models' window in clips; longer videos are scored in sliding windows
    patience: Count = 5  # epochs without a lower validation loss before stopping; 0 = never
    top_k: Positive = 10  # windows kept per query (the official mAP reads the top 10)
    n_boot: Positive = (
        1000  # bootstrap resamples (videos with all their queries) for intervals and differences
    )
    n_cases: Positive = 3  # queries shown as timelines, and as failure cases


def _dash_list(value: Any) -> Any:
    """TempMe's dash-separated settings (``"2-2-3"``, ``"30-10"``) as lists; lists pass unchanged."""
    if isinstance(value, str):
        try:
            return [float(v) if "." in v else int(v) for v in value.split("-") if v.strip()]
        except ValueError:
            raise ValueError(f"must be a list or a dash-separated string such as '2-2-3', got {value!r}") from None
    return value


DashInts = Annotated[list[Positive], BeforeValidator(_dash_list)]
DashLayers = Annotated[list[Count], BeforeValidator(_dash_list)]
DashProportions = Annotated[list[Annotated[float, Field(ge=0, le=100)]], BeforeValidator(_dash_list)]


@dataclass
class ExtractConfig:
    """``vtr extract``'s TempMe-style token merging (``vtr.models.tome``) and notebook 06's comparisons.

    The merge settings are seed 001's / TempMe's: ``merge_frame_num`` frames joined at each block of
    ``merge_layer`` (0-based), ``merge_token_proportion`` the fraction of tokens merged per block within
    frames, then across frames (percent when > 1: ``"30-10"``). YAML lists or TempMe's strings
    (``--set extract.merge_layer=8-9-10``) both work. The defaults are the schedule scaled to the
    4 blocks of ``vtr-tiny-vit``; the full profile sets the paper's (ViT-B/32, 12 frames, 2-2-3 at 8-9-10).
    """

    __pydantic_config__ = _SECTION

    merge: Bool = False  # merge tokens in ``vtr extract`` (needs a ViT ``model.arch``; frames divisible)
    merge_frame_num: DashInts = field(default_factory=lambda: [2, 2, 3])
    merge_layer: DashLayers = field(default_factory=lambda: [1, 2, 3])
    merge_token_proportion: DashProportions = field(default_factory=lambda: [0.3, 0.1])
    # notebook 06 (vtr.experiments.extraction): the ViT of its TempMe and STOP rows, at merge_frames frames
    vit_arch: Architecture = "vtr-tiny-vit"
    vit_frames: Positive = 12  # frames per clip of the TempMe comparison (2 * 2 * 3)
    split_clips: Count = 120  # world clips per split in the TempMe and STOP rows (whole hard pairs); 0 = all
    # STOP prompts (vtr.models.stop) trained with vtr.train.fit on the sample world's training clips
    prompt_frames: Positive = 4  # frames per clip of the STOP comparison (training costs ~20 ms per frame)
    prompt_spatial: Count = 4  # intra-frame spatial prompt tokens
    prompt_layer: Count = 2  # the block they enter at (0 = the input, as STOP); the blocks below run once
    prompt_temporal_layers: list[Count] = field(default_factory=lambda: [2, 3])  # inter-frame prompt blocks
    prompt_lora_rank: Count = 4  # LoRA adapters on the prompted blocks' MLPs, as TempMe fine-tunes; 0 = none
    prompt_epochs: Positive = 3  # val R@1 peaked at epoch 3 of 6 (sample); the rest is ``train``'s schedule
    n_boot: Positive = 1000  # bootstrap resamples of the test clips for intervals and paired differences
    ray: Bool = True  # notebook 06 runs the Ray engine against the local one
    ray_videos: Positive = 8  # videos of that comparison (Ray's start-up dominates on 2 cores)

    def __post_init__(self) -> None:
        if len(self.merge_frame_num) != len(self.merge_layer):
            raise ValueError(
                f"'extract.merge_frame_num' {self.merge_frame_num} and 'extract.merge_layer' "
                f"{self.merge_layer} must have one entry per merge layer"
            )
        if list(self.merge_layer) != sorted(set(self.merge_layer)):
            raise ValueError(f"'extract.merge_layer' must be strictly increasing, got {self.merge_layer}")
        if len(self.merge_token_proportion) not in (1, 2):
            raise ValueError(
                "'extract.merge_token_proportion' takes one or two values (within frames, across frames), "
                f"got {self.merge_token_proportion}"
            )
        if any(layer < self.prompt_layer for layer in self.prompt_temporal_layers):
            raise ValueError(
                f"'extract.prompt_temporal_layers' {self.prompt_temporal_layers} must not lie below "
                f"'extract.prompt_layer' ({self.prompt_layer}): prompts exist only from that block on"
            )
        if any((v / 100 if v > 1 else v) >= 1 for v in self.merge_token_proportion):
            raise ValueError(
                "'extract.merge_token_proportion' values must be fractions below 1 or percentages below 100, "
                f"got {self.merge_token_proportion}"
            )


@dataclass
class Profile:
    """One complete configuration of a run; the defaults are the sample profile."""

    __pydantic_config__ = _SECTION

    name: Str = "sample"
    seed: Int = 0
    device: Device = "cpu"  # auto (CUDA, then MPS, then CPU) | cpu | cuda | cuda:N | mps
    data_dir: Str = "data"
    world: WorldConfig = field(default_factory=WorldConfig)
    video: VideoConfig = field(default_factory=VideoConfig)
    data: DataConfig = field(default_factory=DataConfig)
    internvid: InternVidConfig = field(default_factory=InternVidConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    tiny: TinyConfig = field(default_factory=TinyConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    hnerv: HnervConfig = field(default_factory=HnervConfig)
    msrvtt_recall: MsrvttRecallConfig = field(default_factory=MsrvttRecallConfig)
    moments: MomentsConfig = field(default_factory=MomentsConfig)
    extract: ExtractConfig = field(default_factory=ExtractConfig)
    source_file: Str = field(default="", metadata={"internal": True})

    def to_dict(self) -> dict[str, Any]:
        """Every key and value as plain data (``source_file``, bookkeeping, left out)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k != "source_file"}


# ------------------------------------------------------------------------------------ loading


def profile_path(profile: str | os.PathLike[str]) -> Path:
    """``"sample"`` → ``configs/sample.yaml``; anything with a suffix or a slash is a path."""
    text = os.fspath(profile)
    if not text.endswith((".yaml", ".yml")) and "/" not in text and os.sep not in text:
        return project_root() / "configs" / f"{text}.yaml"
    path = Path(text).expanduser()
    if path.is_absolute() or path.exists():
        return path.resolve()
    return project_root() / path


def load_profile(
    profile: str | os.PathLike[str] | dict[str, Any] = "sample",
    overrides: dict[str, Any] | None = None,
) -> Profile:
    """Load and validate a profile by name, path or dict, then apply dotted ``overrides``.

    Args:
        profile: a name (``"full"`` → ``configs/full.yaml``), a path to a YAML file, or a dict of
            the same shape (keys not given keep their defaults, which are the sample profile).
        overrides: ``{"section.key": value}`` applied on top, as ``--set section.key=value`` does.

    Raises:
        ConfigError: the file is missing or not a mapping, or a key or value is invalid; the
            message names the file (or the override), the key, the value and what is allowed.
    """
    if isinstance(profile, dict):
        raw, source = dict(profile), "<dict>"
    else:
        path = profile_path(profile)
        if not path.is_file():
            known = sorted(p.stem for p in (project_root() / "configs").glob("*.yaml"))
            raise ConfigError(f"profile {os.fspath(profile)!r} not found at {path}; known profiles: {known}")
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        source = str(path)
        if not isinstance(raw, dict):
            raise ConfigError(f"{source}: a profile must be a mapping of keys to values")
    cfg = _validate(raw, source)
    if overrides:
        # The file is valid by now, so any error from here on is an override's: say so.
        for dotted, value in overrides.items():
            _set_dotted(raw, dotted, value, source="--set")
        cfg = _validate(raw, f"--set override (on {source})")
    cfg.source_file = source
    return cfg


def parse_override(text: str) -> tuple[str, Any]:
    """``"world.n_clips=60"`` → ``("world.n_clips", 60)``; the value is parsed as YAML."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {text!r} is not of the form key=value")
    return key.strip(), yaml.safe_load(value)


def _set_dotted(raw: dict[str, Any], dotted: str, value: Any, source: str) -> None:
    node = raw
    *parents, leaf = dotted.split(".")
    for part in parents:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{source}: cannot set {dotted!r}: {part!r} is not a section")
        node = child
    node[leaf] = value


_ADAPTER: TypeAdapter[Profile] | None = None


def _validate(raw: dict[str, Any], source: str) -> Profile:
    """Unknown keys first (with a suggestion), then pydantic for types, ranges and names."""
    global _ADAPTER
    _check_keys(Profile, raw, prefix="", source=source)
    if _ADAPTER is None:  # built on first use: the schema build costs ~50 ms
        _ADAPTER = TypeAdapter(Profile)
    try:
        cfg = _ADAPTER.validate_python(raw)
    except ValidationError as err:
        raise ConfigError("; ".join(_describe(e, source) for e in err.errors())) from None
    _check_relations(cfg, source)
    return cfg


def _public_fields(cls: type) -> dict[str, dataclasses.Field[Any]]:
    return {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get("internal")}


def _check_keys(cls: type, raw: dict[str, Any], prefix: str, source: str) -> None:
    fields = _public_fields(cls)
    for key, value in raw.items():
        if key not in fields:
            close = difflib.get_close_matches(str(key), list(fields), n=1)
            hint = f" (did you mean {prefix + close[0]!r}?)" if close else ""
            raise ConfigError(
                f"{source}: unknown key {prefix + str(key)!r}{hint}; valid keys in "
                f"{prefix.rstrip('.') or 'the top level'}: {sorted(fields)}"
            )
        section = fields[key].type
        section = globals().get(section, section) if isinstance(section, str) else section
        if dataclasses.is_dataclass(section) and isinstance(value, dict):
            _check_keys(section, value, prefix=f"{prefix}{key}.", source=source)


_TYPE_NAMES = {"int_type": "int", "float_type": "float", "bool_type": "bool", "string_type": "str"}
_BOUNDS = {
    "greater_than_equal": (">=", "ge"),
    "greater_than": (">", "gt"),
    "less_than_equal": ("<=", "le"),
    "less_than": ("<", "lt"),
}


def _describe(error: Any, source: str) -> str:
    """One pydantic error as ``<source>: 'section.key' must ..., got <value>``."""
    key = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error["loc"]).lstrip(".")
    kind, value, ctx = error["type"], error.get("input"), error.get("ctx") or {}
    if kind in _TYPE_NAMES:
        why = f"must be {_TYPE_NAMES[kind]}, got {type(value).__name__} {value!r}"
    elif kind == "dataclass_type":
        why = f"must be a section (mapping), got {value!r}"
    elif kind == "list_type":
        why = f"must be a list, got {value!r}"
    elif kind == "dict_type":
        why = f"must be a mapping, got {value!r}"
    elif kind == "literal_error":
        why = f"must be one of {ctx.get('expected')}, got {value!r}"
    elif kind in _BOUNDS:
        symbol, name = _BOUNDS[kind]
        why = f"must be {symbol} {ctx.get(name)}, got {value!r}"
    elif kind == "value_error":
        why = str(ctx.get("error", error["msg"]))
    else:  # ranges: "Input should be greater than or equal to 1"
        why = f"{error['msg'].replace('Input should be', 'must be')}, got {value!r}"
    return f"{source}: {key!r} {why}"


def _check_relations(cfg: Profile, source: str) -> None:
    """Rules that tie two keys together (a single key's rules are in its type)."""
    h = cfg.hnerv
    problems = []
    if h.main_size not in h.widths:
        problems.append(
            f"'hnerv.main_size' must be one of hnerv.widths {list(h.widths)}, got {h.main_size!r}"
        )
    if h.main_split not in h.splits:
        problems.append(f"'hnerv.main_split' must be one of hnerv.splits {h.splits}, got {h.main_split!r}")
    # vtr pretrains these architectures itself (vtr.models.tiny.SELF_PRETRAINED_ARCHS; not imported
    # here, so loading a profile does not pull in torch)
    self_pretrained = ("vtr-tiny", "vtr-tiny-vit")
    if cfg.model.pretrained == "vtr-tiny" and cfg.model.arch not in self_pretrained:
        problems.append(
            f"'model.pretrained' is 'vtr-tiny' (vtr's self-pretrained checkpoint), which needs "
            f"model.arch='vtr-tiny' or 'vtr-tiny-vit', got {cfg.model.arch!r}; set model.pretrained to an "
            "open_clip tag, a checkpoint path or ''"
        )
    if cfg.internvid.min_duration > cfg.internvid.max_duration:
        problems.append(
            f"'internvid.min_duration' ({cfg.internvid.min_duration}) must not exceed "
            f"'internvid.max_duration' ({cfg.internvid.max_duration})"
        )
    if problems:
        raise ConfigError("; ".join(f"{source}: {p}" for p in problems))


# ------------------------------------------------------------------------------------ comparing


def flatten(cfg: Profile) -> dict[str, Any]:
    """Every key of a profile as ``{"section.key": value}`` (mappings such as ``hnerv.widths`` are one value)."""

    def walk(obj: Any, prefix: str) -> Iterable[tuple[str, Any]]:
        for f in dataclasses.fields(obj):
            if f.metadata.get("internal"):
                continue
            value = getattr(obj, f.name)
            if dataclasses.is_dataclass(value):
                yield from walk(value, f"{prefix}{f.name}.")
            else:
                yield f"{prefix}{f.name}", value

    return dict(walk(cfg, ""))


def differences(a: Profile, b: Profile) -> dict[str, tuple[Any, Any]]:
    """The keys whose values differ, as ``{"section.key": (value in a, value in b)}`` in schema order.

    ``differences(load_profile("sample"), load_profile("full"))`` is what the full profile changes.
    """
    left, right = flatten(a), flatten(b)
    return {key: (left[key], right[key]) for key in left if left[key] != right[key]}
