"""Stage 5 of the HNeRV study: score a trained model on every frame, check its embeddings, search.

* :func:`evaluate`: PSNR and SSIM (:mod:`vtr.metrics`) per patch and per frame, cosine to the CLIP
  target per patch, train against held-out frames (the content model's held-out frames decoded from
  interpolated embeddings, so it never reads their pixels).
* :func:`embedding_checks`: seed 000's four checks of the predicted CLIP embeddings.
* :func:`text_search`: text-to-patch search by predicted embeddings against the ground truth's.
* :func:`project_embeddings`: a t-SNE of predicted against ground-truth embeddings.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch
from torch import nn

from vtr.experiments.hnerv.data import PatchData, from_patches
from vtr.experiments.hnerv.model import (
    interpolation_plan,
    model_inputs,
    own_pixels_plan,
    patch_pixels,
    predict,
)
from vtr.experiments.hnerv.splits import HELD_OUT, TRAIN, FrameSplit, split_frames
from vtr.metrics import psnr, ssim, t2v_ranks

if TYPE_CHECKING:
    from vtr.models.encoders import Encoder

# Pass criteria of the seed's four embedding checks (documented in :func:`embedding_checks`).
SPECIFICITY_MARGIN = 0.05  # matched cosine must beat mismatched pairs by this much
MIN_VARIANCE_RATIO = 0.5  # predicted embeddings keep at least half of the targets' variance
TEMPORAL_TOLERANCE = 0.05  # frame-to-frame similarity within this of the targets'
MAX_COSINE_GAP = 0.02  # train minus held-out cosine at most this
RELEVANT_FRACTION = 0.05  # text search: a patch in the ground truth's top 5% for a query is relevant


@dataclass
class Evaluation:
    """Everything measured on one trained model, for every frame of the video."""

    patches: pd.DataFrame  # frame, patch, row, col, group, psnr, ssim, cosine
    frames: pd.DataFrame  # frame, group, psnr, ssim, cosine (mean over the frame's patches)
    embeddings: np.ndarray  # (F, P, D) predicted, unit length
    reconstructions: np.ndarray  # (F, H, W, 3) uint8

    def summary(self) -> dict[str, float]:
        """Means per group: ``{train,heldout}_{psnr,ssim,cosine}`` (per frame), ``..._patch_psnr``
        and ``..._patch_ssim`` (per patch), and the gaps (train minus held-out)."""
        out: dict[str, float] = {}
        for group, tag in ((TRAIN, "train"), (HELD_OUT, "heldout")):
            f = self.frames[self.frames.group == group]
            p = self.patches[self.patches.group == group]
            for metric in ("psnr", "ssim", "cosine"):
                out[f"{tag}_{metric}"] = float(f[metric].mean()) if len(f) else math.nan
            for metric in ("psnr", "ssim"):
                out[f"{tag}_patch_{metric}"] = float(p[metric].mean()) if len(p) else math.nan
        for metric in ("psnr", "ssim", "cosine"):
            out[f"gap_{metric}"] = out[f"train_{metric}"] - out[f"heldout_{metric}"]
        return out


@torch.no_grad()
def evaluate(
    net: nn.Module,
    data: PatchData,
    split: str | FrameSplit,
    *,
    device: torch.device | str = "cpu",
    frames_per_batch: int = 8,
    held_out: str = "interpolated",
) -> Evaluation:
    """Reconstruct every frame and score it: PSNR and SSIM per patch and per frame, cosine to the
    CLIP target per patch.

    The content model decodes the training frames from their own embeddings and, with
    ``held_out="interpolated"``, each held-out frame from embeddings interpolated between the
    nearest training frames (:func:`interpolation_plan`): it never reads a held-out frame's
    pixels. ``held_out="own pixels"`` encodes held-out frames from their own pixels instead (an
    autoencoder). The coordinate model ignores ``held_out``.
    """
    if held_out not in ("interpolated", "own pixels"):
        raise ValueError(f"held_out must be 'interpolated' or 'own pixels', got {held_out!r}")
    dev = torch.device(device)
    split = split if isinstance(split, FrameSplit) else split_frames(data.n_frames, split)
    groups = split.group_of(data.n_frames)
    net = net.to(dev).eval()
    kind = getattr(net, "kind", "coords")
    plan = (
        interpolation_plan(split, data.n_frames)
        if held_out == "interpolated"
        else own_pixels_plan(data.n_frames)
    )
    inputs = model_inputs(kind, data)
    pixels = patch_pixels(data)
    targets = torch.from_numpy(data.targets)
    n_p, (ph, pw) = data.n_patches, data.patch_hw
    patch_rows, frame_rows, embeddings, recons = [], [], [], []
    for start in range(0, data.n_frames, frames_per_batch):
        frames = np.arange(start, min(start + frames_per_batch, data.n_frames))
        flat = torch.from_numpy((frames[:, None] * n_p + np.arange(n_p)).ravel())
        out = predict(net, inputs, pixels, flat, n_p, plan, dev)
        rgb = out.rgb.float().clamp(0, 1)
        truth = pixels[flat].to(dev).float() / 255.0
        emb = out.embedding.float().cpu().view(len(frames), n_p, -1)
        cos = (emb * targets[frames]).sum(-1)
        p_psnr, p_ssim = (
            psnr(rgb, truth).cpu().view(len(frames), n_p),
            ssim(rgb, truth).cpu().view(len(frames), n_p),
        )
        as_frames = from_patches(rgb.permute(0, 2, 3, 1).reshape(len(frames), n_p, ph, pw, 3), data.grid)
        true_frames = from_patches(truth.permute(0, 2, 3, 1).reshape(len(frames), n_p, ph, pw, 3), data.grid)
        a, b = as_frames.permute(0, 3, 1, 2), true_frames.permute(0, 3, 1, 2)
        f_psnr, f_ssim = psnr(a, b).cpu(), ssim(a, b).cpu()
        for i, f in enumerate(frames.tolist()):
            frame_rows.append(
                {
                    "frame": f,
                    "group": groups[f],
                    "psnr": float(f_psnr[i]),
                    "ssim": float(f_ssim[i]),
                    "cosine": float(cos[i].mean()),
                }
            )
            for p in range(n_p):
                patch_rows.append(
                    {
                        "frame": f,
                        "patch": p,
                        "row": p // data.grid[1],
                        "col": p % data.grid[1],
                        "group": groups[f],
                        "psnr": float(p_psnr[i, p]),
                        "ssim": float(p_ssim[i, p]),
                        "cosine": float(cos[i, p]),
                    }
                )
        embeddings.append(emb.numpy())
        recons.append((as_frames * 255).round().to(torch.uint8).cpu().numpy())
    return Evaluation(
        pd.DataFrame(patch_rows), pd.DataFrame(frame_rows), np.concatenate(embeddings), np.concatenate(recons)
    )


def per_patch_table(evaluation: Evaluation, metric: str = "psnr") -> pd.DataFrame:
    """Mean ``metric`` by patch position: rows (group, grid row), columns the grid column. Shows
    where in the frame a representation spends its capacity."""
    return evaluation.patches.pivot_table(index=["group", "row"], columns="col", values=metric)


def embedding_checks(
    predicted: np.ndarray, targets: np.ndarray, split: FrameSplit
) -> dict[str, float | bool]:
    """Seed 000's four checks of predicted CLIP embeddings (``(F, P, D)`` each, unit length).

    1. *Similarity to ground truth*: mean cosine of each patch's prediction to its own target,
       against the mean cosine to other patches' targets (a model that ignores the input scores
       the same on both); and R@1 of finding the own target among the same frame's patches.
       Passes when matched exceeds mismatched by ``SPECIFICITY_MARGIN``.
    2. *Diversity*: total variance of the predictions over that of the targets (seed 000: 69%),
       and the mean pairwise cosine of each. Passes when the ratio is at least ``MIN_VARIANCE_RATIO``.
    3. *Temporal consistency*: mean cosine between the same patch in consecutive frames, predicted
       vs targets. Passes when they differ by at most ``TEMPORAL_TOLERANCE``.
    4. *Train / held-out gap*: mean matched cosine on training frames minus held-out frames.
       Passes when the gap is at most ``MAX_COSINE_GAP`` (or there are no held-out frames).
    """
    pred = predicted.reshape(-1, predicted.shape[-1]).astype(np.float64)
    gt = targets.reshape(-1, targets.shape[-1]).astype(np.float64)
    n = len(pred)
    sim = pred @ gt.T
    matched = float(np.mean(np.diag(sim)))
    mismatched = float((sim.sum() - np.trace(sim)) / (n * (n - 1))) if n > 1 else math.nan
    # Within each frame: is a patch's prediction closest to its own target among that frame's patches?
    # (Across frames neighbouring frames' targets are near-duplicates, so a global R@1 says little.)
    per_frame = np.einsum("fpd,fqd->fpq", predicted.astype(np.float64), targets.astype(np.float64))
    r1 = float(np.mean([np.mean(t2v_ranks(m.astype(np.float32)) == 1) for m in per_frame]))

    def mean_pairwise(x: np.ndarray) -> float:
        s = x @ x.T
        return float((s.sum() - np.trace(s)) / (n * (n - 1))) if n > 1 else math.nan

    variance_ratio = float(pred.var(axis=0).sum() / gt.var(axis=0).sum())
    temporal_pred = float(np.mean(np.sum(predicted[1:] * predicted[:-1], axis=-1)))
    temporal_gt = float(np.mean(np.sum(targets[1:] * targets[:-1], axis=-1)))
    own = np.sum(predicted * targets, axis=-1)  # (F, P)
    train_cos = float(own[split.train].mean())
    held = split.held_out
    held_cos = float(own[held].mean()) if len(held) else math.nan
    gap = train_cos - held_cos
    return {
        "matched_cosine": matched,
        "mismatched_cosine": mismatched,
        "position_R@1": 100.0 * r1,
        "variance_ratio": variance_ratio,
        "pairwise_cosine_pred": mean_pairwise(pred),
        "pairwise_cosine_gt": mean_pairwise(gt),
        "temporal_cosine_pred": temporal_pred,
        "temporal_cosine_gt": temporal_gt,
        "train_cosine": train_cos,
        "heldout_cosine": held_cos,
        "cosine_gap": gap,
        "pass_similarity": bool(matched - mismatched >= SPECIFICITY_MARGIN),
        "pass_diversity": bool(variance_ratio >= MIN_VARIANCE_RATIO),
        "pass_temporal": bool(abs(temporal_pred - temporal_gt) <= TEMPORAL_TOLERANCE),
        "pass_gap": bool(not len(held) or gap <= MAX_COSINE_GAP),
    }


# --------------------------------------------------------------------------------------- search


@dataclass
class SearchResult:
    hits: pd.DataFrame  # query, source ("predicted" | "ground truth"), rank, frame, patch, score, group
    summary: pd.DataFrame  # per query: best scores, overlap@k of predicted vs ground-truth top k


def text_search(
    encoder: Encoder,
    queries: Sequence[str],
    predicted: np.ndarray,
    targets: np.ndarray,
    split: FrameSplit,
    k: int = 6,
) -> SearchResult:
    """Rank every patch of the video for each text query by the cosine of its *predicted* embedding,
    and, as the ceiling, by its ground-truth CLIP embedding. ``overlap@k`` is the fraction of the
    ground-truth top ``k`` that the predicted embeddings also put in their top ``k`` (strict: the
    neighbouring frames of a video are near-duplicates); ``precision@k`` the fraction of the
    predicted top ``k`` that lies in the ground truth's top ``RELEVANT_FRACTION`` of all patches."""
    if not queries:
        raise ValueError("text_search needs at least one query")
    text = encoder.encode_text(list(queries)).astype(np.float64)
    n_p = predicted.shape[1]
    groups = split.group_of(predicted.shape[0])
    hits, summary = [], []
    for qi, query in enumerate(queries):
        tops = {}
        for source, emb in (("predicted", predicted), ("ground truth", targets)):
            scores = emb.reshape(-1, emb.shape[-1]).astype(np.float64) @ text[qi]
            top = np.argsort(-scores, kind="stable")[:k]
            tops[source] = (top, scores)
            for rank, flat in enumerate(top.tolist(), start=1):
                f, p = divmod(flat, n_p)
                hits.append(
                    {
                        "query": query,
                        "source": source,
                        "rank": rank,
                        "frame": f,
                        "patch": p,
                        "score": float(scores[flat]),
                        "group": groups[f],
                    }
                )
        (top_pred, pred_scores), (top_gt, gt_scores) = tops["predicted"], tops["ground truth"]
        n_relevant = max(1, math.ceil(RELEVANT_FRACTION * len(gt_scores)))
        relevant_threshold = np.sort(gt_scores)[-n_relevant]
        summary.append(
            {
                "query": query,
                "best_predicted": float(pred_scores[top_pred[0]]),
                "best_ground_truth": float(gt_scores[top_gt[0]]),
                f"overlap@{k}": len(set(top_pred.tolist()) & set(top_gt.tolist())) / k,
                f"precision@{k}": float(np.mean(gt_scores[top_pred] >= relevant_threshold)),
            }
        )
    return SearchResult(pd.DataFrame(hits), pd.DataFrame(summary))


# --------------------------------------------------------------------------------------- projection


def project_embeddings(
    predicted: np.ndarray, targets: np.ndarray, split: FrameSplit, n_points: int = 300, seed: int = 0
) -> pd.DataFrame:
    """t-SNE (scikit-learn) of the same ``n_points`` patches' predicted and ground-truth embeddings.

    Returns ``x, y, source, group, frame, patch`` per point. Cosine distance, PCA initialisation.
    """
    from sklearn.manifold import TSNE

    n_f, n_p, dim = predicted.shape
    rng = np.random.default_rng(seed)
    flat = np.sort(rng.choice(n_f * n_p, size=min(n_points, n_f * n_p), replace=False))
    x = np.concatenate([predicted.reshape(-1, dim)[flat], targets.reshape(-1, dim)[flat]]).astype(np.float64)
    perplexity = float(min(30, max(2, (len(x) - 1) // 3)))
    xy = TSNE(2, perplexity=perplexity, metric="cosine", init="pca", random_state=seed).fit_transform(x)
    frames, patches = np.divmod(flat, n_p)
    groups = split.group_of(n_f)[frames]
    return pd.DataFrame(
        {
            "x": xy[:, 0],
            "y": xy[:, 1],
            "source": ["predicted"] * len(flat) + ["ground truth"] * len(flat),
            "group": np.concatenate([groups, groups]),
            "frame": np.concatenate([frames, frames]),
            "patch": np.concatenate([patches, patches]),
        }
    )
