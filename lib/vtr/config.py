"""Profiles: typed configuration loaded from ``configs/<name>.yaml``.

A profile is a YAML file whose keys mirror the dataclasses below; anything not given keeps its
default. Loading is strict: an unknown or mistyped key, or a value of the wrong type, raises
:class:`ConfigError` naming the key, the file and the valid keys, so a typo never silently
falls back to a default.

    cfg = load_profile("sample", overrides={"world.n_clips": 60})

Each section belongs to one part of the library; add a field to the section that reads it.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from vtr.paths import project_root


class ConfigError(ValueError):
    """A profile that does not match the schema: names the key, the file and the valid keys."""


@dataclass
class WorldConfig:
    """The procedurally generated sample world (``vtr.data.synthetic``).

    The built world is cached under ``<data_dir>/sample_world/<hash of these fields + seed>/``.
    """

    n_clips: int = 240  # short clips (train/val/test), mostly in hard pairs of two
    n_long_videos: int = 20  # multi-event videos for moment retrieval
    events_per_long_video: int = 5
    n_stills: int = 4000  # still frames with appearance-only captions (tiny model pretraining)
    clip_frames: int = 24
    fps: int = 8
    size: int = 64  # frame side in pixels (even)
    captions_per_clip: int = 5  # paraphrases per clip (1..18)
    split_fractions: list[float] = field(default_factory=lambda: [0.6, 0.15, 0.25])  # train/val/test


@dataclass
class VideoConfig:
    """Decoding and frame sampling (``vtr.video``)."""

    n_frames: int = 8
    size: int = 64
    strategy: str = "uniform"
    cache: bool = True


@dataclass
class DataConfig:
    """Which corpus the experiments run on (``vtr.data``)."""

    source: str = "sample"  # sample | internvid | msrvtt | folder
    root: str = ""  # folder of videos (msrvtt / folder sources)
    captions: str = ""  # captions csv/jsonl for the folder source
    msrvtt_annotations: str = ""  # folder holding MSRVTT_JSFUSION_test.csv, *_videodatainfo.json


@dataclass
class InternVidConfig:
    """InternVid metadata and clip download (``vtr.data.internvid``, ``vtr.download``)."""

    metadata: str = "OpenGVLab/InternVid"  # hub dataset id, or a local jsonl/json/parquet/csv file
    subset: str = "InternVid-10M"  # hub configuration; InternVid-18M holds the AES split
    split: str = "FLT"  # hub split within the subset: FLT / DIV (InternVid-10M), AES (InternVid-18M)
    min_aesthetic: float = 4.0
    min_duration: float = 3.0  # seconds; clips outside [min_duration, max_duration] are skipped
    max_duration: float = 15.0
    count: int = 50  # the first `count` rows passing the filter, in metadata order
    workers: int = 4  # parallel downloads
    timeout: float = 120.0  # seconds: network socket timeout, and the limit for one ffmpeg run
    retries: int = 3  # yt-dlp retries on transient HTTP errors
    out_dir: str = "data/internvid"  # clips/, status.jsonl and manifest.jsonl go here
    url_template: str = "https://www.youtube.com/watch?v={youtube_id}"
    # yt-dlp format selector: a small mp4; video-only streams are fine since audio is dropped
    format: str = "best[height<=360][ext=mp4]/bestvideo[height<=360][ext=mp4]/best[ext=mp4]/best"
    section_download: bool = True  # fetch only [start, end] (yt-dlp download_ranges) instead of the video
    crf: int = 23  # libx264 quality of the cut clips
    keep_audio: bool = False
    duration_tolerance: float = 0.5  # seconds a cut clip may differ from end - start
    split_fractions: list[float] = field(default_factory=lambda: [0.8, 0.1, 0.1])  # train/val/test


@dataclass
class ModelConfig:
    """The CLIP-style encoder (``vtr.models.encoders``)."""

    arch: str = "vtr-tiny"  # any open_clip architecture name, or vtr's registered ones (viclip-l14, viclip-b16)
    # an open_clip tag (e.g. "openai"), a local checkpoint path, "" for random weights, or "vtr-tiny"
    # for vtr's self-pretrained checkpoint (built on demand from the sample world, see ``tiny``).
    # ViCLIP takes a path to the official checkpoint (ViClip-InternVid-10M-FLT.pth) or "".
    pretrained: str = "vtr-tiny"
    batch_size: int = 64  # frames or captions per forward pass


@dataclass
class TinyConfig:
    """Pretraining of the tiny CLIP on the sample world's stills (``vtr.models.tiny``)."""

    max_epochs: int = 8  # the cosine schedule spans this; about 11 s per epoch on 2 CPU cores
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 0.1
    warmup_steps: int = 30
    patience: int = 3  # epochs without held-out improvement before stopping
    target_accuracy: float = 0.99  # held-out appearance accuracy at which training stops early
    augment: bool = True  # small random translations of the stills
    # The motion pretraining pool (vtr.data.synthetic.pretraining); 0 clips = stills-only pretraining.
    pool_stills: int = 0  # pool stills (own seeds and templates); 0 = the world's training stills
    pool_clips: int = 0  # short motion clips with motion captions
    pool_frames: int = 4  # evenly spaced frames per pool clip
    position_captions: bool = True  # half the pool stills' captions also name the objects' position
    trend_degree: int = 2  # Legendre time moments of the pretraining video head (models.temporal.TrendHead)


@dataclass
class TrainConfig:
    """The shared trainer (``vtr.train``): defaults from seed 003."""

    epochs: int = 10  # seed 003 reports its alignment losses at epoch 10
    batch_size: int = 32
    lr_encoder: float = 2e-5  # seed 003's AdamW learning rate, for (unfrozen) pretrained encoder blocks
    lr_head: float = 1e-3  # new heads start from scratch and need a larger step than the encoder
    weight_decay: float = 0.02  # seed 003; never applied to biases, norms or the logit scale
    warmup_fraction: float = 0.1  # linear warmup over this fraction of all steps, then cosine decay to 0
    grad_accum: int = 1  # batches whose gradients are summed before one optimizer step
    grad_clip: float = 1.0  # max global gradient norm; 0 turns clipping off
    amp: bool = True  # mixed precision; only takes effect on CUDA
    patience: int = 3  # epochs without a better monitored value before stopping; 0 = never stop early
    num_workers: int = 0  # DataLoader workers
    tensorboard: bool = True  # also log to <out_dir>/tensorboard (needs the tensorboard package)


@dataclass
class FinetuneConfig:
    """Notebooks 02 and 03: cross-attention, InfoNCE vs H-NAC, fusion, sampling ablations (``vtr.finetune``)."""

    scorers: list[str] = field(default_factory=lambda: ["dual", "crossattn"])  # notebook 02's models
    losses: list[str] = field(default_factory=lambda: ["infonce", "hnac"])
    strategies: list[str] = field(
        default_factory=lambda: ["uniform", "mean", "keyframes", "weighted", "dropout"]
    )
    seeds: list[int] = field(
        default_factory=lambda: [0, 1, 2]
    )  # every configuration is trained once per seed
    temperature: float = 0.07  # fixed, so alignment losses compare across models (seed 003 reports them)
    hnac_decay: float = 5.0  # H-NAC's λ: how fast a negative's weight decays past s_pos - margin
    hnac_margin: float = 0.1  # H-NAC's m: negatives within m of the positive start to be down-weighted
    temporal: str = "seqtransf"  # video head of every scorer: mean | seqtransf | trend
    # trend head: start from vtr-tiny's pretrained time maps (when model.pretrained is vtr-tiny)
    trend_init: bool = True
    sampler: str = "random"  # training batches: random | pairs (hard-pair partners in the same batch)
    text_blocks: int = 0  # last text-tower blocks tuned on cached frame features (+ ln_final, projection, tokens)
    temporal_layers: int = 4  # CLIP4Clip's seqTransf depth
    crossattn_heads: int = 0  # 0 = one head per 64 channels
    fusion_width: int = 256  # the fusion transformer's width (inputs are projected to it)
    fusion_layers: int = 4  # seed 003: a 4-layer encoder over [video | text]
    fusion_heads: int = 4
    fusion_text: str = "tokens"  # tokens: every caption token enters the fusion; pooled: one caption token
    dropout: float = 0.1
    hard_negatives: int = (
        0  # pair scorers in training: 0 = every in-batch pair; n = positives + n hardest per row/column
    )
    rerank_k: int = 20  # retrieval re-scores each query's top-k dual-encoder candidates with the pair scorer
    unfreeze_blocks: int = 0  # last encoder blocks trained at train.lr_encoder (0 = frozen, cached features)
    n_boot: int = 1000  # bootstrap resamples for intervals and paired differences
    # torch CPU threads while a grid trains (0 = torch's default): the heads' matrices are small, so on a
    # busy 2-core machine extra threads cost more in synchronisation than they save (measured 16x slower)
    cpu_threads: int = 1


@dataclass
class HnervConfig:
    """Notebook 04: the dual-head HNeRV study (``vtr.hnerv``, ``vtr.models.hnerv``).

    Defaults are the sample profile's CPU-sized setting; the full profile sets the HNeRV paper's
    bunny setting (640 x 1280 crop at full resolution, 300 epochs, ~1.5M parameters for medium).
    """

    video: str = "bigbuckbunny"  # a name from vtr.data.real_videos.real_videos(), or a video file path
    max_frames: int = 0  # use the first N frames; 0 = all (Big Buck Bunny has 132)
    crop: list[int] = field(default_factory=lambda: [640, 1280])  # centre crop (h, w): HNeRV's 640_1280
    resize: list[int] = field(default_factory=lambda: [64, 128])  # then resize to (h, w); [] keeps the crop
    grid: list[int] = field(default_factory=lambda: [2, 4])  # patch rows x columns (seed 000: 2 x 4)
    strides: list[int] = field(
        default_factory=lambda: [2, 2, 2]
    )  # decoder upsampling; prod divides the patch
    # fc_dim (width of the decoder's first feature map) of each model size; sizes are run in this order
    widths: dict[str, int] = field(default_factory=lambda: {"small": 8, "medium": 16, "large": 32, "xl": 48})
    reduce: float = 1.2  # HNeRV's channel reduction per decoder block
    lower_width: int = 8  # lowest channel width (HNeRV: 12)
    kernel_max: int = 3  # decoder kernels grow 1, 3, 5, ... up to this (HNeRV: 5; 3 is ~2.5x cheaper on CPU)
    pe_base: float = 1.25  # NeRV's positional encoding pe_1.25_L ...
    pe_levels: int = 32  # ... with L levels: 1.25^(L-1) must exceed the frame count (80 in NeRV)
    embed_dim: int = 16  # content-HNeRV embedding channels (HNeRV's enc_dim 64_16)
    splits: list[str] = field(default_factory=lambda: ["9_10_10", "6_6_10", "8_8_10"])  # HNeRV a_b_c
    main_split: str = "6_6_10"  # the split of the size sweep (it has the most held-out frames)
    main_size: str = "medium"  # the size of the split sweep and of the content-HNeRV reference
    # splits on which the original (content-embedding) HNeRV is also trained at main_size; [] = none
    reference_splits: list[str] = field(default_factory=lambda: ["6_6_10"])
    epochs: int = 12
    batch_size: int = 32  # patches per step
    lr: float = 1e-2  # HNeRV: 1e-3 for 300 epochs; the sample's 12 epochs need a larger step
    clip_weight: float = 0.2  # lambda of the embedding term (seed 000: 0.1-0.2)
    clip_warmup_epochs: int = 3  # RGB-only epochs before the embedding term switches on (seed: 50 of 300)
    curve_patches: int = 128  # patches per group scored after every epoch for the training curves
    queries: list[str] = field(
        default_factory=lambda: ["a plain green background", "a plain blue background", "a white circle"]
    )
    top_k: int = 6  # patches shown per text query
    tsne_points: int = 300  # patches per source (predicted, ground truth) in the projection


@dataclass
class MsrvttRecallConfig:
    """Notebook 05: MSR-VTT recall tables (``vtr.msrvtt_recall``)."""

    test_split: str = "test_1k"  # the 1k-A test: the protocol behind the published numbers
    train_split: str = "train_9k"  # what the projection and the temporal heads train on (CLIP4Clip's 9k)
    val_fraction: float = 0.05  # of the training videos, held out for early stopping (never the test set)
    # Pre-extracted video features as seed 002 used: an .npy of (N, D) or (N, T, D) rows plus the video
    # id of each row (.txt / .json / .npy); "" embeds the videos with the profile's encoder instead.
    video_features: str = ""
    video_feature_ids: str = ""
    temperature: float = 0.07  # InfoNCE temperature of every trained row (seed 002)
    hard_negatives: int = 8  # per query, the hardest in-batch negatives seed 002's loss keeps; 0 = all
    projection_hidden: int = 1024  # hidden width of seed 002's text projection MLP
    epochs: int = 10  # seed 002 trains 10-15 epochs
    batch_size: int = 256  # seed 002
    lr: float = 1e-4  # AdamW learning rate of the projection and the heads (seed 002; CLIP4Clip's new layers)
    patience: int = 3  # epochs without a better held-out R@1 before stopping; 0 = never stop early
    rounds_per_epoch: int = 1  # visits of each training video per epoch, each with a fresh random caption
    heads: list[str] = field(default_factory=lambda: ["mean", "seqtransf"])  # temporal heads compared
    head_layers: int = 4  # transformer layers of the seqTransf head (CLIP4Clip uses 4)
    n_boot: int = 1000  # bootstrap resamples of the test queries for the intervals
    n_cases: int = 4  # success and failure cases shown with frames


@dataclass
class Profile:
    """One complete configuration of a run."""

    name: str = "sample"
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | mps
    data_dir: str = "data"
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
    source_file: str = field(default="", metadata={"internal": True})

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(self).items() if k != "source_file"}


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
    """Load and validate a profile by name, path or dict, then apply dotted ``overrides``."""
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
    cfg = _build(Profile, raw, prefix="", source=source)
    if overrides:
        # The file is valid by now, so any error from here on is an override's: say so.
        for dotted, value in overrides.items():
            _set_dotted(raw, dotted, value, source="--set")
        cfg = _build(Profile, raw, prefix="", source=f"--set override (on {source})")
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


def _public_fields(cls: type) -> dict[str, dataclasses.Field[Any]]:
    return {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get("internal")}


def _build(cls: type, raw: dict[str, Any], prefix: str, source: str) -> Any:
    fields = _public_fields(cls)
    hints = typing.get_type_hints(cls)
    for key in raw:
        if key not in fields:
            where = f"{prefix}{key}"
            close = difflib.get_close_matches(str(key), list(fields), n=1)
            hint = f" (did you mean {prefix + close[0]!r}?)" if close else ""
            raise ConfigError(
                f"{source}: unknown key {where!r}{hint}; valid keys in "
                f"{prefix.rstrip('.') or 'the top level'}: {sorted(fields)}"
            )
    values = {}
    for name in fields:
        if name not in raw:
            continue
        values[name] = _check(hints[name], raw[name], f"{prefix}{name}", source)
    return cls(**values)


def _check(hint: Any, value: Any, key: str, source: str) -> Any:
    """Validate ``value`` against the annotation ``hint``; returns the (possibly converted) value."""
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: {key!r} must be a section (mapping), got {value!r}")
        return _build(hint, value, prefix=f"{key}.", source=source)
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(hint):
            if option is type(None) and value is None:
                return None
            try:
                return _check(option, value, key, source)
            except ConfigError:
                continue
        raise ConfigError(f"{source}: {key!r}={value!r} matches none of {hint}")
    if origin is list:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{source}: {key!r} must be a list, got {value!r}")
        (item,) = typing.get_args(hint) or (Any,)
        return [_check(item, v, f"{key}[{i}]", source) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: {key!r} must be a mapping, got {value!r}")
        return dict(value)
    if hint is Any:
        return value
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if (hint is int and isinstance(value, bool)) or not isinstance(value, hint):
        raise ConfigError(f"{source}: {key!r} must be {hint.__name__}, got {type(value).__name__} {value!r}")
    return value
