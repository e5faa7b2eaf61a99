"""Notebook 06's comparisons, scored on the sample world's held-out ``test`` clips.

Every row is text-to-video retrieval with all the test captions as queries: R@1 with its 95% bootstrap
interval and a paired difference against the reference row, from :func:`vtr.evaluation.evaluate_retrieval`
and :func:`vtr.metrics.paired_bootstrap_diff` (what notebooks 01-05 use), resampling whole clips with
their captions, and both clips of a hard pair together.

* :func:`tempme_comparison` — the ViT with TempMe merging off and on (``extract``'s schedule), with the
  tokens each pass processed and its encode time (CPU seconds of this process, and wall seconds);
* :func:`stop_comparison` — the frozen ViT against it with trained STOP prompts;
* :func:`ray_against_local` — the Ray engine against the local one on a few clips: the largest absolute
  difference of any stored embedding and the time of each (Ray in a child process, including its start).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from vtr import metrics as M
from vtr.atomic import write_text
from vtr.config import Profile
from vtr.embeddings import default_cache_dir, embed_texts
from vtr.evaluation import evaluate_retrieval
from vtr.experiments.extraction.data import SplitClips, runs_dir
from vtr.experiments.extraction.train import PromptRun, clip_features, clip_tokens
from vtr.extract.api import extract
from vtr.extract.engines import ray_child_command
from vtr.extract.store import load_extraction
from vtr.models.encoders import Encoder
from vtr.models.tome import MergeConfig, MergeStats, encode_clips_merged, merge_config
from vtr.paths import project_root

CLIPS_PER_PASS = 16  # clips per merged forward pass (12 frames each)


@dataclass
class Scored:
    """One system's test retrieval: its metrics and per-query t2v ranks (for paired differences)."""

    name: str
    metrics: dict[str, float]
    ranks: np.ndarray


def score(
    name: str, text: np.ndarray, videos: np.ndarray, clips: SplitClips, n_boot: int, seed: int
) -> Scored:
    """``evaluate_retrieval`` of caption embeddings ``text`` against clip embeddings ``videos``."""
    metrics = evaluate_retrieval(
        text, videos, clips.caption_to_video, n_boot=n_boot, seed=seed, dsl=False, pairs=clips.pairs
    )
    return Scored(name, metrics, M.t2v_ranks(text @ videos.T, clips.caption_to_video))


def paired_row(
    reference: Scored, other: Scored, clips: SplitClips, n_boot: int, seed: int
) -> dict[str, float]:
    """``other``'s R@1 minus ``reference``'s on the same queries, with its interval and p-value."""
    d = M.paired_bootstrap_diff(reference.ranks, other.ranks, "R@1", n_boot=n_boot, seed=seed,
                                clusters=clips.caption_clusters)  # fmt: skip
    return {"dR@1": d.diff, "dR@1_lo": d.low, "dR@1_hi": d.high, "p": d.p_value}


def _row(scored: Scored) -> dict[str, Any]:
    m = scored.metrics
    return {"t2v_R@1": m["t2v_R@1"], "R@1_lo": m["t2v_R@1_lo"], "R@1_hi": m["t2v_R@1_hi"],
            "t2v_R@5": m["t2v_R@5"], "t2v_MedR": m["t2v_MedR"]}  # fmt: skip


def _encode_merged(encoder: Encoder, frames: list[np.ndarray], merge: MergeConfig) -> tuple[np.ndarray, dict]:
    stats = MergeStats()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    parts = [encode_clips_merged(encoder, frames[i : i + CLIPS_PER_PASS], merge, stats)
             for i in range(0, len(frames), CLIPS_PER_PASS)]  # fmt: skip
    cost = {"tokens": stats.total_tokens, "encode_cpu_s": time.process_time() - cpu0,
            "encode_wall_s": time.perf_counter() - wall0}  # fmt: skip
    return np.concatenate(parts), cost


@dataclass
class Comparison:
    """A table of rows (the reference first) and the paired differences against the reference."""

    table: pd.DataFrame
    scored: dict[str, Scored]


def tempme_comparison(cfg: Profile, encoder: Encoder, test: SplitClips) -> Comparison:
    """Merging off (the plain per-frame ViT, mean of the frames) against ``extract``'s schedule."""
    n_boot, seed = cfg.extract.n_boot, cfg.seed
    text = embed_texts(encoder, test.captions, cache_dir=default_cache_dir(cfg), progress=False)
    encode_clips_merged(
        encoder, test.frames[:2], merge_config(cfg)
    )  # warm-up: first-call costs out of the timing
    rows, scored = [], {}
    for name, merge in (("merging off", MergeConfig()), ("TempMe merging", merge_config(cfg))):
        videos, cost = _encode_merged(encoder, test.frames, merge)
        scored[name] = score(name, text, videos, test, n_boot, seed)
        rows.append({"setting": name, **_row(scored[name]), **cost})
    table = pd.DataFrame(rows).set_index("setting")
    table["tokens_ratio"] = table["tokens"] / table["tokens"].iloc[0]
    table["speedup_cpu"] = table["encode_cpu_s"].iloc[0] / table["encode_cpu_s"]
    diff = paired_row(scored["merging off"], scored["TempMe merging"], test, n_boot, seed)
    for key, value in diff.items():
        table.loc["TempMe merging", key] = value
    return Comparison(table, scored)


def stop_comparison(cfg: Profile, encoder: Encoder, run: PromptRun, test: SplitClips) -> Comparison:
    """The frozen ViT (mean of its frame features) against the same ViT with the trained prompts."""
    n_boot, seed = cfg.extract.n_boot, cfg.seed
    text = embed_texts(encoder, test.captions, cache_dir=default_cache_dir(cfg), progress=False)
    frozen = score("frozen ViT", text, encoder.encode_clips(test.frames), test, n_boot, seed)
    prompted_videos = clip_features(run.model, clip_tokens(run.model, encoder, test))
    prompted = score("STOP prompts", text, prompted_videos, test, n_boot, seed)
    table = pd.DataFrame(
        [
            {"setting": s.name, **_row(s), "trainable_params": t}
            for s, t in ((frozen, 0), (prompted, run.trainable))
        ]
    ).set_index("setting")
    for key, value in paired_row(frozen, prompted, test, n_boot, seed).items():
        table.loc["STOP prompts", key] = value
    return Comparison(table, {"frozen ViT": frozen, "STOP prompts": prompted})


# ------------------------------------------------------------------------------------ Ray


def _subset_manifest(cfg: Profile, world_manifest: Path, count: int, folder: Path) -> Path:
    """The first ``count`` lines of the world's manifest with absolute video paths (same ids)."""
    lines = []
    for line in world_manifest.read_text().splitlines()[:count]:
        raw = json.loads(line)
        raw["video"] = str((world_manifest.parent / raw["video"]).resolve())
        lines.append(json.dumps({"video": raw["video"], "id": raw["id"]}))
    path = folder / "ray_subset.jsonl"
    write_text(path, "\n".join(lines) + "\n")
    return path


def _rows(out: Path) -> tuple[pd.DataFrame, np.ndarray]:
    metadata, embeddings, _ = load_extraction(out)
    return metadata.sort_values(["video_id", "kind", "frame_index"]).reset_index(drop=True), embeddings


def ray_against_local(cfg: Profile, world_manifest: Path, *, timeout_s: float = 300.0) -> dict[str, Any]:
    """Extract ``extract.ray_videos`` clips with the local engine here and with ``--engine ray`` (two
    actors on a local Ray of 2 CPUs) in a child process, caches off; compare what they stored.

    Returns ``status`` ("ok", or "skipped" with ``message`` when Ray is missing or cannot start, or
    ran past ``timeout_s``), ``videos``, ``max_abs_diff`` (over every stored embedding), ``same_rows``,
    ``local_s`` and ``ray_s`` (wall seconds; Ray's includes starting Ray and its actors) and
    ``ray_extract_s`` (the Ray run's own extraction time from its summary)."""
    folder = runs_dir(cfg) / "ray_check"
    manifest = _subset_manifest(cfg, world_manifest, cfg.extract.ray_videos, folder)
    local_dir, ray_dir = folder / "local", folder / "ray"
    for done in (local_dir, ray_dir):  # timed from nothing: an earlier run's output would resume instead
        if done.exists():
            shutil.rmtree(done)
    try:
        import ray  # noqa: F401
    except ImportError:
        return {"status": "skipped", "message": "Ray is not installed (pip install 'vtr[ray]')"}
    profile = folder / "profile.yaml"
    settings = {**cfg.to_dict(), "video": {**cfg.to_dict()["video"], "cache": False}}
    write_text(profile, yaml.safe_dump(settings, sort_keys=False))
    from vtr.config import load_profile

    local_cfg = load_profile(profile)
    wall0 = time.perf_counter()
    extract(local_cfg, manifest, local_dir, progress=False)  # the encoder as each Ray actor builds it
    local_s = time.perf_counter() - wall0
    args = ["extract", str(manifest), "--out", str(ray_dir), "--engine", "ray", "--workers", "2",
            "--profile", str(profile), "--no-progress"]  # fmt: skip
    command, env = ray_child_command(args)
    wall0 = time.perf_counter()
    try:
        done = subprocess.run(command, env={**env, "VTR_PROGRESS": "0"}, cwd=project_root(),
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout_s)  # fmt: skip
    except subprocess.TimeoutExpired:
        return {"status": "skipped", "message": f"the Ray run did not finish within {timeout_s:.0f} s"}
    ray_s = time.perf_counter() - wall0
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"status": "skipped", "message": f"Ray could not run (exit {done.returncode}): {last}"}
    (meta_local, emb_local), (meta_ray, emb_ray) = _rows(local_dir), _rows(ray_dir)
    keys = ["video_id", "kind", "frame_index", "content_key"]
    same = meta_local[keys].equals(meta_ray[keys])
    diff = (
        float(np.abs(emb_local[meta_local["index"]] - emb_ray[meta_ray["index"]]).max())
        if same
        else float("nan")
    )
    summary = json.loads((ray_dir / "summary.json").read_text())
    return {
        "status": "ok", "videos": int((meta_local["kind"] == "video").sum()), "same_rows": bool(same),
        "max_abs_diff": diff, "local_s": local_s, "ray_s": ray_s,
        "ray_extract_s": float(summary["throughput"]["seconds"]),
    }  # fmt: skip


# ------------------------------------------------------------------------------------ reporting


def _interval(row: pd.Series, key: str = "t2v_R@1", low: str = "R@1_lo", high: str = "R@1_hi") -> str:
    return f"{row[key]:.1f}% [{row[low]:.1f}, {row[high]:.1f}]"


def _difference(row: pd.Series) -> str:
    verdict = (
        "the interval excludes 0" if row["dR@1_lo"] > 0 or row["dR@1_hi"] < 0 else "the interval includes 0"
    )
    return f"{row['dR@1']:+.1f} points [{row['dR@1_lo']:+.1f}, {row['dR@1_hi']:+.1f}], p = {row['p']:.3f}: {verdict}"


def summary_metrics(
    tempme: Comparison, stop: Comparison, prompts: PromptRun, ray: dict[str, Any], extraction: dict[str, Any]
) -> dict[str, Any]:
    """Notebook 06's metrics file: extraction counts and throughput, both comparisons, the Ray check."""
    off, on = tempme.table.iloc[0], tempme.table.iloc[1]
    frozen, prompted = stop.table.iloc[0], stop.table.iloc[1]
    return {
        "extraction": {name: {**s["counts"], "videos_per_s": s["throughput"]["videos_per_s"]}
                       for name, s in extraction.items()},  # fmt: skip
        "tempme": {
            "R@1_off": off["t2v_R@1"], "R@1_off_lo": off["R@1_lo"], "R@1_off_hi": off["R@1_hi"],
            "R@1_on": on["t2v_R@1"], "R@1_on_lo": on["R@1_lo"], "R@1_on_hi": on["R@1_hi"],
            "dR@1": on["dR@1"], "dR@1_lo": on["dR@1_lo"], "dR@1_hi": on["dR@1_hi"], "p": on["p"],
            "tokens_off": int(off["tokens"]), "tokens_on": int(on["tokens"]), "tokens_ratio": on["tokens_ratio"],
            "encode_cpu_s_off": off["encode_cpu_s"], "encode_cpu_s_on": on["encode_cpu_s"],
            "speedup_cpu": on["speedup_cpu"],
        },
        "stop": {
            "R@1_frozen": frozen["t2v_R@1"], "R@1_frozen_lo": frozen["R@1_lo"], "R@1_frozen_hi": frozen["R@1_hi"],
            "R@1_prompts": prompted["t2v_R@1"], "R@1_prompts_lo": prompted["R@1_lo"],
            "R@1_prompts_hi": prompted["R@1_hi"], "dR@1": prompted["dR@1"], "dR@1_lo": prompted["dR@1_lo"],
            "dR@1_hi": prompted["dR@1_hi"], "p": prompted["p"], "trainable_params": prompts.trainable,
            "frozen_params": prompts.frozen, "epochs": len(prompts.history),
            "best_val_R@1": float(prompts.history["val_R@1"].max()),
        },
        "ray": ray,
    }  # fmt: skip


def narrative(tempme: Comparison, stop: Comparison, ray: dict[str, Any], weights: str) -> str:
    """The notebook's reading of the results, every number taken from them."""
    off, on = tempme.table.iloc[0], tempme.table.iloc[1]
    frozen, prompted = stop.table.iloc[0], stop.table.iloc[1]
    lines = [
        f"**The ViT:** {weights}.",
        f"**TempMe merging** processes {on['tokens_ratio']:.0%} of the tokens of the plain pass and encodes the "
        f"test clips {on['speedup_cpu']:.2f}x faster in CPU time; test t2v R@1 goes from {_interval(off)} to "
        f"{_interval(on)}, a paired difference of {_difference(on)}.",
        f"**STOP prompts** ({int(prompted['trainable_params']):,} trainable parameters on the frozen ViT): test "
        f"t2v R@1 {_interval(frozen)} frozen against {_interval(prompted)} prompted, {_difference(prompted)}.",
    ]
    if ray.get("status") == "ok":
        lines.append(
            f"**Ray against local** on {ray['videos']} clips: same rows {ray['same_rows']}, largest absolute "
            f"difference of any embedding {ray['max_abs_diff']:.2e}; local {ray['local_s']:.1f} s, Ray "
            f"{ray['ray_s']:.1f} s including its start ({ray['ray_extract_s']:.1f} s of extraction)."
        )
    else:
        lines.append(f"**Ray against local** was skipped: {ray.get('message', 'turned off (extract.ray)')}.")
    return "\n\n".join(lines)
