"""MSR-VTT recall tables (notebook 05): zero-shot, seed 002's recipe and temporal heads, with breakdowns.

    test = load_split(cfg, cfg.msrvtt_recall.test_split, encoder)      # 1k-A: 1,000 videos, 1,000 queries
    train = load_split(cfg, cfg.msrvtt_recall.train_split, encoder)    # 9k: 9,000 videos, 180,000 captions
    rows = compute_rows(cfg, train, test)                              # {"zero-shot": Row, ...}
    recall_table(rows)                                                  # t2v / v2t R@1/5/10, MedR, MeanR, CIs, DSL

Data: the annotations are read by :func:`vtr.data.msrvtt.load_msrvtt` from ``cfg.data.msrvtt_annotations``
(real MSR-VTT) or, when that is empty, from the sample world's MSR-VTT-format folder, so both profiles
go through the same loader. Video features are the frozen encoder's per-frame embeddings from the
shared cache (:func:`vtr.embeddings.embed_profile_videos`), or pre-extracted features (an array plus
its video ids, as seed 002 used) validated against the annotation ids. Captions are embedded once
through the text cache; every trained row works on these frozen features, so training takes seconds.

Rows (each scored in both directions with bootstrap intervals, and with dual-softmax re-scoring in
separate ``dsl_*`` columns):

* ``zero-shot``: mean-pooled frame embeddings against the caption embeddings.
* ``seed 002``: seed 002's recipe, an MLP projection of the frozen text embeddings trained with
  InfoNCE at temperature 0.07 on the positive and the ``hard_negatives`` hardest in-batch negatives of
  each query (:func:`hard_negative_info_nce`). When text and video widths agree the projection is
  residual and starts as the identity, so training starts from the zero-shot row.
* ``<kind> head``: a temporal head (:func:`vtr.models.temporal.create_temporal_head`) over the frame
  embeddings, trained with InfoNCE; ``mean`` (CLIP4Clip's meanP) vs ``seqtransf`` (seqTransf).

Model selection uses a held-out part of the training split (``val_fraction``), never the test set.

Statistics: intervals resample test videos with all their captions, or hard-pair groups where the
sample world records them (:func:`sample_world_pairs`); there the pair accuracy (share of captions
scoring their own clip above its partner, exact interval) sits beside R@K. :func:`gains_table` tests
every row against zero-shot (paired clustered bootstrap for R@1, exact McNemar for pair accuracy),
Holm–Bonferroni corrected per family. v2t uses the CLIP4Clip rule; multi-caption tables say so.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import textwrap
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure
from torch import Tensor, nn

from vtr import metrics as M
from vtr.data.manifest import ClipRecord, ManifestError
from vtr.data.msrvtt import VideoDataInfo, load_features, load_msrvtt, read_videodatainfo
from vtr.embeddings import default_cache_dir, embed_profile_videos, embed_texts
from vtr.evaluation import HardPairs, evaluate_retrieval, hard_pairs
from vtr.models.encoders import l2_normalize, pool_frames
from vtr.paths import resolve
from vtr.plots import frame_grid, grouped_bars

if TYPE_CHECKING:
    from vtr.config import Profile
    from vtr.models.encoders import Encoder
    from vtr.train import TrainResult

# Bump when the trained models or their inputs change, so old checkpoints are not resumed.
RUN_VERSION = 1
ZERO_SHOT = "zero-shot"
SEED_002 = "seed 002"
# Hard-negative masking: a similarity this low drops out of a softmax over cosine similarities / T.
_MASKED = -1e4


# ------------------------------------------------------------------------------------ data


@dataclass
class SplitData:
    """One MSR-VTT split as frozen features: videos with their frame embeddings, captions with theirs."""

    split: str
    records: list[ClipRecord]  # the videos that have features, in split order
    frames: np.ndarray  # (N, T, D) float32, each frame L2-normalised
    captions: list[str]  # every caption of those videos (the queries), video by video
    caption_to_video: np.ndarray  # (Q,) index into ``records``
    text: np.ndarray  # (Q, Dt) float32 L2-normalised caption embeddings
    dropped: dict[str, str] = field(default_factory=dict)  # video id -> why it has no features
    base_dir: Path | None = None  # where relative ``record.video`` paths resolve (frames for figures)
    pairs: HardPairs | None = None  # hard pairs among the videos (the sample world), else None

    @cached_property
    def videos(self) -> np.ndarray:
        """(N, D) mean-pooled, re-normalised video embeddings (the zero-shot video side)."""
        return pool_frames(self.frames)

    @property
    def ids(self) -> list[str]:
        return [r.id for r in self.records]

    @property
    def query_categories(self) -> list[str]:
        """The category of each query's video."""
        return [self.records[v].category or "unknown" for v in self.caption_to_video]

    def __len__(self) -> int:
        return len(self.records)

    def subset(self, video_indices: Sequence[int]) -> SplitData:
        """The given videos (in that order) with all their captions."""
        keep = np.asarray(video_indices, dtype=np.int64)
        new_index = np.full(len(self.records), -1, dtype=np.int64)
        new_index[keep] = np.arange(len(keep))
        queries = np.flatnonzero(new_index[self.caption_to_video] >= 0)
        queries = queries[np.argsort(new_index[self.caption_to_video[queries]], kind="stable")]
        return SplitData(
            split=self.split,
            records=[self.records[i] for i in keep],
            frames=self.frames[keep],
            captions=[self.captions[q] for q in queries],
            caption_to_video=new_index[self.caption_to_video[queries]],
            text=self.text[queries],
            base_dir=self.base_dir,
        )


def msrvtt_dirs(cfg: Profile) -> tuple[Path, Path]:
    """``(annotations_dir, videos_dir)``: real MSR-VTT when ``data.msrvtt_annotations`` is set, else the
    sample world's MSR-VTT-format folder (built on first use)."""
    if cfg.data.msrvtt_annotations:
        return resolve(cfg.data.msrvtt_annotations), resolve(cfg.data.root or "data/msrvtt/videos")
    from vtr.data.synthetic import sample_world

    folder = sample_world(cfg).msrvtt_dir
    return folder, folder / "videos"


def load_video_features(
    array_path: str | Path, ids_path: str | Path, records: Sequence[ClipRecord]
) -> np.ndarray:
    """Pre-extracted video features for ``records``: ``(N, T, D)`` float32, each frame L2-normalised.

    ``array_path`` holds ``(rows, D)`` (one vector per video, then ``T = 1``) or ``(rows, T, D)``; the
    checks of :func:`vtr.data.msrvtt.load_features` apply (row count, duplicate ids, every annotation
    id present). A row that is not finite or is all zeros is an error naming the file and the id.
    """
    features = load_features(array_path, ids_path, records).astype(np.float32)
    if features.ndim == 2:
        features = features[:, None, :]
    if features.ndim != 3:
        raise ManifestError(
            f"{array_path}: expected (videos, D) or (videos, frames, D) features, got shape {features.shape}"
        )
    norms = np.linalg.norm(features, axis=-1)
    for check, what in ((~np.isfinite(features).all(axis=(1, 2)), "non-finite values"),
                        ((norms == 0).any(axis=1), "an all-zero vector")):  # fmt: skip
        if check.any():
            bad = [records[i].id for i in np.flatnonzero(check)]
            raise ManifestError(
                f"{array_path}: features of video id {bad[0]!r} have {what} ({len(bad)} such)"
            )
    return l2_normalize(features)


def assemble_split(
    split: str,
    records: Sequence[ClipRecord],
    frames_by_id: dict[str, np.ndarray],
    embed_captions: Callable[[list[str]], np.ndarray],
    dropped: dict[str, str] | None = None,
    base_dir: Path | None = None,
) -> SplitData:
    """A :class:`SplitData` from records, per-video frame embeddings and a caption embedder.

    Videos without features (in ``dropped``, or absent from ``frames_by_id``) are left out with their
    captions, and listed in ``dropped``.
    """
    dropped = dict(dropped or {})
    kept = [r for r in records if r.id in frames_by_id]
    for r in records:
        if r.id not in frames_by_id:
            dropped.setdefault(r.id, "no features")
    if not kept:
        raise ValueError(f"split {split!r}: none of its {len(records)} videos has features: {dropped}")
    captions = [c for r in kept for c in r.captions]
    owners = np.repeat(np.arange(len(kept)), [len(r.captions) for r in kept])
    text = np.asarray(embed_captions(captions), dtype=np.float32)
    frames = np.stack([np.asarray(frames_by_id[r.id], dtype=np.float32) for r in kept])
    return SplitData(split, kept, frames, captions, owners, text, dropped, base_dir)


def load_split(
    cfg: Profile,
    split: str,
    encoder: Encoder,
    *,
    info: VideoDataInfo | None = None,
    progress: bool = True,
) -> SplitData:
    """The profile's MSR-VTT ``split`` as frozen features (see the module docstring).

    Videos that cannot be decoded are recorded in ``dropped`` (with the file and the reason) and left
    out, never stopping the split.
    """
    annotations, videos_dir = msrvtt_dirs(cfg)
    info = info or read_videodatainfo(annotations)
    records = list(load_msrvtt(annotations, split, videos_dir, info=info))
    mr = cfg.msrvtt_recall
    if mr.video_features:
        array = load_video_features(resolve(mr.video_features), resolve(mr.video_feature_ids), records)
        frames_by_id, dropped = {r.id: array[i] for i, r in enumerate(records)}, {}
    else:
        embedded = embed_profile_videos(cfg, encoder, records, videos_dir, progress=progress)
        frames_by_id = dict(zip(embedded.ids, embedded.frames, strict=True))
        dropped = embedded.errors
    cache = default_cache_dir(cfg)
    data = assemble_split(
        split,
        records,
        frames_by_id,
        lambda caps: embed_texts(encoder, caps, cache_dir=cache, progress=progress),
        dropped,
        videos_dir,
    )
    return dataclasses.replace(data, pairs=sample_world_pairs(cfg, data.ids))


def sample_world_pairs(cfg: Profile, ids: Sequence[str]) -> HardPairs | None:
    """The sample world's hard pairs among ``ids`` (its MSR-VTT files keep no pair fields, so they are read
    from the world's manifest); None for real MSR-VTT (``data.msrvtt_annotations`` set)."""
    if cfg.data.msrvtt_annotations:
        return None
    from vtr.data.synthetic import sample_world

    meta = {r.id: r.meta for r in sample_world(cfg).clips()}
    pairs = hard_pairs(list(ids), [meta.get(i, {}) for i in ids])
    return pairs if pairs.any else None


def split_train_val(data: SplitData, fraction: float, seed: int) -> tuple[SplitData, SplitData | None]:
    """Hold out ``fraction`` of the videos (at least 2, at random by ``seed``) for model selection."""
    if not 0 <= fraction < 1:
        raise ValueError(f"val_fraction must be in [0, 1), got {fraction}")
    if fraction == 0:
        return data, None
    n_val = max(2, round(fraction * len(data)))
    if len(data) - n_val < 2:
        raise ValueError(f"{len(data)} training videos are too few to hold out {n_val} for validation")
    order = np.random.default_rng(seed).permutation(len(data))
    return data.subset(np.sort(order[n_val:])), data.subset(np.sort(order[:n_val]))


# ---------------------------------------------------------------------------------- models


class TextProjection(nn.Module):
    """Seed 002's projection of frozen text embeddings: ``Linear → GELU → Linear``, then L2-normalised.

    With equal input and output widths it is residual (``x + mlp(x)``) with the last layer zero-
    initialised, so it starts as the identity and training starts from the zero-shot scores; with
    different widths (e.g. 512-d text onto 1024-d pre-extracted video features) it is the plain MLP.
    """

    def __init__(self, in_dim: int, out_dim: int, hidden: int) -> None:
        super().__init__()
        self.residual = in_dim == out_dim
        self.mlp = nn.Sequential(nn.Linear(in_dim, hidden), nn.GELU(), nn.Linear(hidden, out_dim))
        if self.residual:
            nn.init.zeros_(self.mlp[2].weight)
            nn.init.zeros_(self.mlp[2].bias)

    def forward(self, text: Tensor) -> Tensor:
        out = self.mlp(text)
        return nn.functional.normalize(text + out if self.residual else out, dim=-1)


def hard_negative_mask(sim: Tensor, k: int) -> Tensor:
    """(B, B) bool: the diagonal, plus each row's and each column's ``k`` most similar off-diagonal entries.

    Rows are text→video queries and columns video→text queries, so each query in either direction keeps
    its ``k`` hardest negatives (and may keep a few more that the other direction mined).
    """
    n = sim.shape[0]
    eye = torch.eye(n, dtype=torch.bool, device=sim.device)
    scores = sim.detach().masked_fill(eye, -math.inf)
    k = min(k, n - 1)
    keep = eye.clone()
    keep.scatter_(1, scores.topk(k, dim=1).indices, True)
    keep.scatter_(0, scores.topk(k, dim=0).indices, True)
    return keep


def hard_negative_info_nce(sim: Tensor, temperature: float | Tensor = 0.07, k: int = 8) -> Tensor:
    """Seed 002's loss: symmetric InfoNCE (:func:`vtr.losses.info_nce`) over the positive and the hard
    negatives of :func:`hard_negative_mask`; the other in-batch negatives are dropped from the softmax.

    ``k <= 0`` or ``k >= B - 1`` keeps every negative, i.e. plain InfoNCE.
    """
    from vtr.losses import info_nce

    if 0 < k < sim.shape[0] - 1:
        sim = sim.masked_fill(~hard_negative_mask(sim, k), _MASKED)
    return info_nce(sim, temperature)


class PairBatches:
    """Batches of ``(video item, caption embedding)`` pairs for contrastive training on frozen features.

    Each pass (epoch) visits every video ``rounds`` times, each time with one of its captions drawn at
    random; within a round a batch never holds a video twice, so the in-batch negatives are true
    negatives. The draws come from ``self.generator``, which :func:`vtr.train.fit` re-seeds from
    ``(seed, epoch)`` at the start of every epoch, so a resumed run draws what an uninterrupted one
    would. Batches of fewer than two pairs (a lone last one) are skipped: they have no negative.
    """

    def __init__(
        self,
        videos: Tensor,
        text: Tensor,
        caption_to_video: np.ndarray,
        batch_size: int,
        seed: int = 0,
        rounds: int = 1,
    ) -> None:
        owners = np.asarray(caption_to_video)
        counts = np.bincount(owners, minlength=len(videos))
        if (counts == 0).any():
            raise ValueError(f"video {int(np.flatnonzero(counts == 0)[0])} has no caption to train on")
        if len(counts) != len(videos):
            raise ValueError(f"caption_to_video names video {len(counts) - 1}, but there are {len(videos)}")
        if batch_size < 2:
            raise ValueError(f"batch_size must be at least 2 for in-batch negatives, got {batch_size}")
        self.videos, self.text = videos, text
        self.order = torch.from_numpy(np.argsort(owners, kind="stable"))  # captions grouped by video
        self.starts = torch.from_numpy(np.concatenate([[0], np.cumsum(counts)[:-1]]))
        self.counts = torch.from_numpy(counts)
        self.batch_size, self.rounds = batch_size, rounds
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        full, rest = divmod(len(self.videos), self.batch_size)
        return self.rounds * (full + (rest >= 2))

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        n = len(self.videos)
        for _ in range(self.rounds):
            offsets = (torch.rand(n, generator=self.generator, dtype=torch.float64) * self.counts).long()
            picks = self.order[self.starts + offsets]
            perm = torch.randperm(n, generator=self.generator)
            for start in range(0, n, self.batch_size):
                chunk = perm[start : start + self.batch_size]
                if len(chunk) >= 2:
                    yield self.videos[chunk], self.text[picks[chunk]]


# ------------------------------------------------------------------------------------ rows


@dataclass
class Row:
    """One system's scores on the test split."""

    name: str
    text: np.ndarray  # (Q, D) query embeddings
    videos: np.ndarray  # (N, D) video embeddings
    caption_to_video: np.ndarray
    metrics: dict[str, float]
    history: pd.DataFrame | None = None  # training history (None for untrained rows)
    note: str = ""
    pairs: HardPairs | None = None

    @cached_property
    def sim(self) -> np.ndarray:
        return self.text @ self.videos.T

    @cached_property
    def t2v_ranks(self) -> np.ndarray:
        return M.t2v_ranks(self.sim, self.caption_to_video)

    @cached_property
    def v2t_ranks(self) -> np.ndarray:
        return M.v2t_ranks(self.sim, self.caption_to_video)

    @cached_property
    def pair_outcomes(self) -> np.ndarray:
        """Per hard-pair caption: own clip scored above the partner (empty without pairs)."""
        if self.pairs is None:
            return np.zeros(0, dtype=bool)
        return M.pair_outcomes(self.sim, self.caption_to_video, self.pairs.partner)

    @property
    def video_clusters(self) -> np.ndarray:
        """The bootstrap unit of each video: its hard-pair group, else the video itself."""
        return self.pairs.clusters if self.pairs is not None else np.arange(len(self.videos))


def score_row(
    name: str,
    text: np.ndarray,
    videos: np.ndarray,
    caption_to_video: np.ndarray,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    temperature: float = 0.07,
    history: pd.DataFrame | None = None,
    note: str = "",
    pairs: HardPairs | None = None,
) -> Row:
    """Every retrieval number (:func:`vtr.evaluation.evaluate_retrieval`) plus MedR / MeanR intervals."""
    metrics = evaluate_retrieval(
        text, videos, caption_to_video, temperature=temperature, n_boot=n_boot, seed=seed, pairs=pairs
    )
    row = Row(name, np.asarray(text, np.float32), np.asarray(videos, np.float32),
              np.asarray(caption_to_video), metrics, history, note, pairs)  # fmt: skip
    clusters = {"t2v": row.video_clusters[row.caption_to_video], "v2t": row.video_clusters}
    for direction, ranks in (("t2v", row.t2v_ranks), ("v2t", row.v2t_ranks)):
        for stat in ("MedR", "MeanR"):
            low, high = M.bootstrap_ci(ranks, stat, n_boot=n_boot, seed=seed, clusters=clusters[direction])
            metrics[f"{direction}_{stat}_lo"], metrics[f"{direction}_{stat}_hi"] = low, high
    return row


def run_dir(cfg: Profile, train: SplitData, name: str) -> Path:
    """Checkpoint folder of one trained row, keyed by its settings and the training features' content,
    so a re-run resumes or reuses it and any change starts afresh."""
    digest = hashlib.blake2b(digest_size=8)
    settings = {
        "version": RUN_VERSION,
        "row": name,
        "seed": cfg.seed,
        "msrvtt_recall": dataclasses.asdict(cfg.msrvtt_recall),
        "train": dataclasses.asdict(cfg.train),
    }
    digest.update(json.dumps(settings, sort_keys=True).encode())
    for array in (train.frames, train.text, train.caption_to_video):
        digest.update(np.ascontiguousarray(array).tobytes())
    slug = name.replace(" ", "_")
    return resolve(cfg.data_dir) / "runs" / "05_msrvtt_recall" / f"{slug}-{digest.hexdigest()}"


def _train_config(cfg: Profile) -> Any:
    mr = cfg.msrvtt_recall
    return dataclasses.replace(
        cfg.train, epochs=mr.epochs, batch_size=mr.batch_size, lr_head=mr.lr, patience=mr.patience
    )


def _held_out(val: SplitData | None, score: Callable[[nn.Module, SplitData], tuple[Tensor, Tensor]]) -> Any:
    """A ``validate`` callback: t2v R@1 / MeanR on the held-out videos (None without a held-out part)."""
    if val is None:
        return None

    def validate(model: nn.Module) -> dict[str, float]:
        text, videos = score(model, val)
        sim = (text @ videos.T).float().cpu().numpy()
        ranks = M.t2v_ranks(sim, val.caption_to_video)
        return {"val_R@1": float(100 * np.mean(ranks == 1)), "val_MeanR": float(ranks.mean())}

    return validate


def train_projection(
    cfg: Profile,
    train: SplitData,
    val: SplitData | None,
    *,
    device: str | torch.device = "cpu",
    out_dir: Path | None = None,
    progress: bool = True,
) -> tuple[TextProjection, TrainResult]:
    """Seed 002's recipe on frozen features: the text projection trained with hard-negative InfoNCE."""
    from vtr.train import fit

    mr = cfg.msrvtt_recall
    torch.manual_seed(cfg.seed)
    model = TextProjection(train.text.shape[1], train.videos.shape[1], mr.projection_hidden).to(device)
    videos = torch.from_numpy(train.videos)
    batches = PairBatches(videos, torch.from_numpy(train.text), train.caption_to_video, mr.batch_size,
                          cfg.seed, mr.rounds_per_epoch)  # fmt: skip

    def batch_loss(m: nn.Module, batch: tuple[Tensor, Tensor]) -> Tensor:
        video, text = batch
        return hard_negative_info_nce(m(text) @ video.T, mr.temperature, mr.hard_negatives)

    def score(m: nn.Module, split: SplitData) -> tuple[Tensor, Tensor]:
        return m(torch.from_numpy(split.text).to(device)), torch.from_numpy(split.videos).to(device)

    result = fit(
        model,
        batch_loss,
        batches,
        _train_config(cfg),
        out_dir=out_dir or run_dir(cfg, train, SEED_002),
        validate=_held_out(val, score),
        seed=cfg.seed,
        device=device,
        progress=progress,
    )
    return model.eval(), result


def train_temporal_head(
    cfg: Profile,
    kind: str,
    train: SplitData,
    val: SplitData | None,
    *,
    device: str | torch.device = "cpu",
    out_dir: Path | None = None,
    progress: bool = True,
) -> tuple[nn.Module, TrainResult | None]:
    """A temporal head over the frozen frame embeddings trained with InfoNCE against the frozen captions.

    A head without trainable parameters (plain mean pooling) is returned untrained, with ``None``.
    """
    from vtr.models.temporal import create_temporal_head
    from vtr.train import fit

    mr = cfg.msrvtt_recall
    torch.manual_seed(cfg.seed)
    kwargs = {"layers": mr.head_layers} if kind == "seqtransf" else {}
    head = create_temporal_head(kind, train.frames.shape[-1], **kwargs).to(device)
    if not any(p.requires_grad for p in head.parameters()):
        return head.eval(), None
    batches = PairBatches(torch.from_numpy(train.frames), torch.from_numpy(train.text), train.caption_to_video,
                          mr.batch_size, cfg.seed, mr.rounds_per_epoch)  # fmt: skip

    def batch_loss(m: nn.Module, batch: tuple[Tensor, Tensor]) -> Tensor:
        frames, text = batch
        return _info_nce(text @ m(frames).T, mr.temperature)

    def score(m: nn.Module, split: SplitData) -> tuple[Tensor, Tensor]:
        return torch.from_numpy(split.text).to(device), _encode_frames(m, split.frames, device)

    result = fit(
        head,
        batch_loss,
        batches,
        _train_config(cfg),
        out_dir=out_dir or run_dir(cfg, train, f"{kind} head"),
        validate=_held_out(val, score),
        seed=cfg.seed,
        device=device,
        progress=progress,
    )
    return head.eval(), result


def _info_nce(sim: Tensor, temperature: float) -> Tensor:
    from vtr.losses import info_nce

    return info_nce(sim, temperature)


@torch.no_grad()
def _encode_frames(
    head: nn.Module, frames: np.ndarray, device: str | torch.device, batch: int = 512
) -> Tensor:
    was_training = head.training
    head.eval()
    parts = [head(torch.from_numpy(frames[i : i + batch]).to(device)) for i in range(0, len(frames), batch)]
    head.train(was_training)
    return torch.cat(parts)


def _history(result: TrainResult | None) -> pd.DataFrame | None:
    if result is None:
        return None
    # Wall-clock seconds are printed by the trainer, never kept: the tables must repeat exactly.
    return result.history.drop(columns=["seconds"], errors="ignore")


def compute_rows(
    cfg: Profile,
    train: SplitData,
    test: SplitData,
    *,
    device: str | torch.device = "cpu",
    progress: bool = True,
    out_root: Path | None = None,
) -> dict[str, Row]:
    """Every row of the table: zero-shot, seed 002's recipe and one per temporal head in ``heads``.

    Rows that cannot apply are left out with a printed reason (zero-shot and the heads need text and
    video features of the same width; pre-extracted features may differ).
    """
    mr = cfg.msrvtt_recall
    fit_part, val = split_train_val(train, mr.val_fraction, cfg.seed)
    same_width = test.text.shape[1] == test.frames.shape[-1]
    score = dict(n_boot=mr.n_boot, seed=cfg.seed, temperature=mr.temperature, pairs=test.pairs)
    rows: dict[str, Row] = {}

    def where(name: str) -> Path | None:
        return out_root / name.replace(" ", "_") if out_root is not None else None

    if same_width:
        rows[ZERO_SHOT] = score_row(ZERO_SHOT, test.text, test.videos, test.caption_to_video, **score)
    else:
        print(f"zero-shot and temporal-head rows skipped: text width {test.text.shape[1]} "
              f"!= video feature width {test.frames.shape[-1]}")  # fmt: skip

    projection, result = train_projection(cfg, fit_part, val, device=device, out_dir=where(SEED_002),
                                          progress=progress)  # fmt: skip
    with torch.no_grad():
        text = projection(torch.from_numpy(test.text).to(device)).cpu().numpy()
    rows[SEED_002] = score_row(SEED_002, text, test.videos, test.caption_to_video, **score,
                               history=_history(result), note=_note(result))  # fmt: skip
    for kind in mr.heads if same_width else ():
        name = f"{kind} head"
        head, result = train_temporal_head(cfg, kind, fit_part, val, device=device, out_dir=where(name),
                                           progress=progress)  # fmt: skip
        videos = _encode_frames(head, test.frames, device).cpu().numpy()
        note = _note(result) if result is not None else "no trainable parameters: mean pooling as is"
        rows[name] = score_row(name, test.text, videos, test.caption_to_video, **score,
                               history=_history(result), note=note)  # fmt: skip
    return rows


def _note(result: TrainResult | None) -> str:
    if result is None:
        return ""
    value = "" if result.best_value is None else f" (held-out R@1 {result.best_value:.1f})"
    return f"best epoch {result.best_epoch}{value}" + (", stopped early" if result.stopped_early else "")


# ---------------------------------------------------------------------------------- tables


_STATS = ("R@1", "R@5", "R@10", "MedR", "MeanR")


def recall_table(rows: dict[str, Row], digits: int = 1) -> pd.DataFrame:
    """One line per (system, direction): R@1/5/10, MedR, MeanR with 95% bootstrap intervals, then the
    same five after dual-softmax re-scoring (``DSL ...``). With several captions per video the v2t
    lines name their rule (``v2t (clip4clip rule)``)."""
    lines = []
    for name, row in rows.items():
        m = row.metrics
        for d in M.DIRECTIONS:
            label = M.v2t_label(row.caption_to_video) if d == "v2t" else d
            line: dict[str, Any] = {"system": name, "direction": label}
            for stat in _STATS:
                line[stat] = round(m[f"{d}_{stat}"], digits)
                if f"{d}_{stat}_lo" in m:
                    line[f"{stat} 95% CI"] = (
                        f"[{m[f'{d}_{stat}_lo']:.{digits}f}, {m[f'{d}_{stat}_hi']:.{digits}f}]"
                    )
            for stat in _STATS:
                line[f"DSL {stat}"] = round(m[f"dsl_{d}_{stat}"], digits)
            lines.append(line)
    return pd.DataFrame(lines).set_index(["system", "direction"])


def pair_table(rows: dict[str, Row]) -> pd.DataFrame:
    """Pair accuracy per system (percent, exact Clopper–Pearson interval); empty without hard pairs."""
    lines = []
    for name, row in rows.items():
        if row.pair_outcomes.size:
            acc = M.pair_accuracy(row.pair_outcomes)
            lines.append({"system": name, "pair_acc": acc.accuracy, "low": acc.low, "high": acc.high,
                          "captions": acc.n})  # fmt: skip
    return pd.DataFrame(lines).set_index("system") if lines else pd.DataFrame()


def gains_table(
    rows: dict[str, Row], baseline: str = ZERO_SHOT, n_boot: int = 1000, seed: int = 0, alpha: float = 0.05
) -> pd.DataFrame:
    """R@1 of every other row minus ``baseline``'s, per direction, with paired bootstrap intervals over the
    test videos (or hard-pair groups) and p-values; ``significant`` after Holm–Bonferroni over the table's
    comparisons. With hard pairs, ``Δpair_acc`` and its exact McNemar p (one value per system, shown on
    the t2v line), Holm-corrected as a family of their own (``pair_significant``)."""
    if baseline not in rows:
        return pd.DataFrame()
    base = rows[baseline]
    clusters = {"t2v": base.video_clusters[base.caption_to_video], "v2t": base.video_clusters}
    lines = []
    for name, row in rows.items():
        if name == baseline:
            continue
        for d, a, b in (("t2v", base.t2v_ranks, row.t2v_ranks), ("v2t", base.v2t_ranks, row.v2t_ranks)):
            diff = M.paired_bootstrap_diff(a, b, "R@1", n_boot=n_boot, seed=seed, clusters=clusters[d])
            line = {"system": name, "direction": d, "ΔR@1": diff.diff, "low": diff.low, "high": diff.high,
                    "p": diff.p_value}  # fmt: skip
            if d == "t2v" and base.pair_outcomes.size:
                test = M.mcnemar_exact(base.pair_outcomes, row.pair_outcomes)
                line["Δpair_acc"] = 100.0 * (row.pair_outcomes.mean() - base.pair_outcomes.mean())
                line["pair_p"] = test.p_value
            lines.append(line)
    if not lines:
        return pd.DataFrame()
    table = pd.DataFrame(lines).set_index(["system", "direction"])
    return M.holm_verdicts(table, alpha, {"p": "significant", "pair_p": "pair_significant"})


def breakdown_table(rows: dict[str, Row], labels: Sequence[str] | pd.Categorical, by: str) -> pd.DataFrame:
    """Text-to-video metrics per group of queries (``by`` names the grouping), one line per (system, group)."""
    parts = []
    for name, row in rows.items():
        table = M.breakdown(row.t2v_ranks, pd.Series(labels, name=by))
        parts.append(table.reset_index().assign(system=name))
    out = pd.concat(parts, ignore_index=True)
    # Keep the groups in breakdown order (e.g. 1–10 before 11–20), also through a later pivot.
    out[by] = pd.Categorical(out[by], categories=list(dict.fromkeys(out[by])), ordered=True)
    return out[["system", by, "n", *[c for c in out.columns if c not in ("system", by, "n")]]]


def category_breakdown(rows: dict[str, Row], test: SplitData) -> pd.DataFrame:
    return breakdown_table(rows, test.query_categories, "category")


def length_breakdown(rows: dict[str, Row], test: SplitData) -> pd.DataFrame:
    """By query length in words: 1–10, 11–20, 21+ (:func:`vtr.metrics.query_length_bucket`)."""
    return breakdown_table(rows, M.query_length_bucket(test.captions), "query words")


def category_counts(data: SplitData) -> pd.DataFrame:
    """Videos and queries per category, most frequent first."""
    videos = pd.Series([r.category or "unknown" for r in data.records]).value_counts()
    queries = pd.Series(data.query_categories).value_counts()
    table = pd.DataFrame({"videos": videos, "queries": queries}).fillna(0).astype(int)
    table.index.name = "category"
    return table.sort_values(["videos", "queries"], ascending=False, kind="stable")


def similarity_split(row: Row) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(positives, negatives, hardest)``: each query's score with its own video, with every other
    video, and with the most similar other video (what decides R@1)."""
    sim = row.sim
    own = np.zeros(sim.shape, dtype=bool)
    own[np.arange(len(row.caption_to_video)), row.caption_to_video] = True
    hardest = np.where(own, -np.inf, sim).max(axis=1)
    return sim[own], sim[~own], hardest


def similarity_stats(rows: dict[str, Row]) -> pd.DataFrame:
    """Mean and spread of positive vs negative similarities per system, and their separation (d')."""
    lines = []
    for name, row in rows.items():
        pos, neg, hardest = similarity_split(row)
        pooled = math.sqrt((pos.var() + neg.var()) / 2) or 1.0
        lines.append({"system": name, "positive mean": float(pos.mean()), "positive std": float(pos.std()),
                      "negative mean": float(neg.mean()), "hardest negative mean": float(hardest.mean()), "negative std": float(neg.std()),
                      "d'": float((pos.mean() - neg.mean()) / pooled)})  # fmt: skip
    return pd.DataFrame(lines).set_index("system")


@dataclass(frozen=True)
class Case:
    """One text-to-video query: its rank and the video ranked first."""

    query: int
    caption: str
    target: str  # the correct video's id
    rank: int
    top: str  # the id of the video ranked first
    margin: float  # own-video score minus the best other video's score


def pick_cases(row: Row, test: SplitData, n: int, kind: str = "success") -> list[Case]:
    """The ``n`` most confident successes (rank 1, largest margin) or the ``n`` worst failures (largest
    rank, then smallest margin); ties go to the earlier query, so the choice repeats exactly."""
    if kind not in ("success", "failure"):
        raise ValueError(f"kind must be 'success' or 'failure', got {kind!r}")
    sim, owners = row.sim, row.caption_to_video
    positive = sim[np.arange(len(owners)), owners]
    others = sim.copy()
    others[np.arange(len(owners)), owners] = -np.inf
    margin = positive - others.max(axis=1)
    ranks = row.t2v_ranks
    if kind == "success":
        chosen = [q for q in np.lexsort((-margin,)) if ranks[q] == 1][:n]
    else:
        chosen = [q for q in np.lexsort((margin, -ranks)) if ranks[q] > 1][:n]
    top = sim.argmax(axis=1)
    return [Case(int(q), test.captions[q], test.ids[owners[q]], int(ranks[q]),
                 test.ids[top[q]], float(margin[q])) for q in chosen]  # fmt: skip


# --------------------------------------------------------------------------------- figures


def recall_figure(rows: dict[str, Row], direction: str = "t2v") -> Figure:
    """Seed 002's recall comparison: R@1/5/10 per system with 95% bootstrap whiskers."""
    lines = [
        {"metric": stat, "system": name, "value": row.metrics[f"{direction}_{stat}"],
         "value_lo": row.metrics[f"{direction}_{stat}_lo"], "value_hi": row.metrics[f"{direction}_{stat}_hi"]}
        for stat in ("R@1", "R@5", "R@10") for name, row in rows.items()
    ]  # fmt: skip
    return grouped_bars(pd.DataFrame(lines), x="metric", y="value", hue="system",
                        title=f"{direction} recall on the test split (95% bootstrap CI)", ylabel="recall (%)")  # fmt: skip


def breakdown_figure(table: pd.DataFrame, by: str, stat: str = "R@1") -> Figure:
    """Horizontal bars of ``stat`` per group (rows) and system (colours), with the query count per group."""
    import seaborn as sns

    groups = list(dict.fromkeys(table[by].astype(str)))
    n_of = table.groupby(table[by].astype(str), sort=False)["n"].first()
    labels = [f"{g} (n={n_of[g]})" for g in groups]
    data = table.assign(group=table[by].astype(str).map(dict(zip(groups, labels, strict=True))))
    fig, ax = plt.subplots(figsize=(7.5, 1.2 + 0.28 * len(groups) * max(1, table["system"].nunique()) ** 0.5))
    sns.barplot(data=data, y="group", x=stat, hue="system", order=labels, orient="h", ax=ax, errorbar=None)
    ax.set_xlabel(f"t2v {stat} (%)")
    ax.set_ylabel(by)
    ax.set_title(f"t2v {stat} by {by}")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig


def similarity_figure(rows: dict[str, Row], bins: int = 60) -> Figure:
    """Seed 002's similarity distributions: per system, positives vs negatives (densities)."""
    fig, axes = plt.subplots(1, len(rows), figsize=(3.4 * len(rows), 2.9), sharey=False, squeeze=False)
    for ax, (name, row) in zip(axes[0], rows.items(), strict=True):
        pos, neg, hardest = similarity_split(row)
        edges = np.histogram_bin_edges(np.concatenate([pos, neg]), bins=bins)
        ax.hist(neg, bins=edges, density=True, alpha=0.5, label=f"negatives (mean {neg.mean():.2f})")
        ax.hist(hardest, bins=edges, density=True, histtype="step", linewidth=1.4, color="black",
                label=f"hardest negative (mean {hardest.mean():.2f})")  # fmt: skip
        ax.hist(pos, bins=edges, density=True, alpha=0.5, label=f"positives (mean {pos.mean():.2f})")
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("cosine similarity")
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("density")
    fig.suptitle(
        "similarity of each query to its own video (positives), to the others (negatives) and to the "
        "most similar other (hardest)"
    )
    fig.tight_layout()
    return fig


def category_distribution_figure(data: SplitData) -> Figure:
    """Seed 002's category distribution of the test set (videos per category)."""
    counts = category_counts(data)
    fig, ax = plt.subplots(figsize=(6.5, 1.0 + 0.26 * len(counts)))
    ax.barh(counts.index[::-1], counts["videos"][::-1], color="tab:blue")
    ax.set_xlabel("videos")
    ax.set_title(f"category distribution of the {data.split} split ({len(data)} videos)")
    fig.tight_layout()
    return fig


def _frames_of(data: SplitData, video_id: str, n_frames: int, size: int) -> np.ndarray:
    """Frames of a video for display; a grey strip when its file cannot be read (e.g. features-only)."""
    from vtr.video import VideoDecodeError, sample_frames

    record = data.records[data.ids.index(video_id)]
    try:
        return sample_frames(record.video_path(data.base_dir or "."), n_frames, "uniform", size=size)
    except (VideoDecodeError, OSError, ValueError):
        return np.full((n_frames, size, size, 3), 128, dtype=np.uint8)


def cases_figure(
    cases: Sequence[Case], data: SplitData, title: str, n_frames: int = 6, size: int = 80
) -> Figure:
    """Two rows of frames per case: the query's own video, then the video ranked first (when different)."""
    frames, labels = [], []
    for case in cases:
        query = textwrap.fill(f"“{case.caption}”", 38)
        frames.append(_frames_of(data, case.target, n_frames, size))
        labels.append(f"{query}\nown video {case.target}: rank {case.rank}")
        if case.top != case.target:
            frames.append(_frames_of(data, case.top, n_frames, size))
            labels.append(f"ranked first: {case.top}")
    if not frames:
        fig, ax = plt.subplots(figsize=(5, 1))
        ax.axis("off")
        ax.set_title(f"{title}: none")
        return fig
    return frame_grid(frames, row_labels=labels, title=title, cell_inches=1.0)


# --------------------------------------------------------------------------------- summary


def summary_metrics(
    rows: dict[str, Row],
    categories: pd.DataFrame,
    lengths: pd.DataFrame,
    gains: pd.DataFrame,
    train: SplitData,
    test: SplitData,
) -> dict[str, Any]:
    """The notebook's metrics file: every row's numbers, the breakdowns' R@1, the gains, the data sizes."""
    out: dict[str, Any] = {
        "test": {"split": test.split, "videos": len(test), "queries": len(test.captions),
                 "dropped_videos": len(test.dropped)},
        "train": {"split": train.split, "videos": len(train), "captions": len(train.captions),
                  "dropped_videos": len(train.dropped)},
        "rows": {name: {k: v for k, v in row.metrics.items() if "@50" not in k} for name, row in rows.items()},
        "notes": {name: row.note for name, row in rows.items() if row.note},
    }  # fmt: skip
    for key, table, by in (
        ("by_category", categories, "category"),
        ("by_query_length", lengths, "query words"),
    ):
        out[key] = {name: dict(zip(part[by].astype(str), part["R@1"], strict=True))
                    for name, part in table.groupby("system", sort=False)}  # fmt: skip
    if not gains.empty:
        out["gain_vs_zero_shot"] = {
            f"{s} {d}": {"dR@1": r["ΔR@1"], "low": r["low"], "high": r["high"], "p_holm": r["p_holm"],
                         "significant": bool(r["significant"])}
            for (s, d), r in gains.iterrows()
        }  # fmt: skip
        out["n_real_gains_R@1"] = int(gains["significant"].sum())
    return out
