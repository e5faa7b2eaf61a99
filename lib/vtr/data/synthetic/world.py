"""Building the sample world: plan every clip, still and long video from the seed, render, write, cache."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from vtr.atomic import write_json
from vtr.config import ConfigError, Profile, WorldConfig
from vtr.data.manifest import SPLITS, ClipRecord, read_manifest, write_manifest
from vtr.data.moments import MomentQuery, write_moments
from vtr.data.synthetic import captions as lang
from vtr.data.synthetic.formats import write_msrvtt, write_npz
from vtr.data.synthetic.render import composite
from vtr.data.synthetic.scenes import (
    CATEGORIES,
    FAMILIES,
    OPPOSITE,
    PRIMITIVES,
    Appearance,
    Motion,
    assign_splits,
    render_background,
    render_clip,
    render_still,
    sample_appearance,
    sprites,
    trajectory,
)
from vtr.keys import run_key
from vtr.paths import resolve
from vtr.progress import show_progress
from vtr.video import write_video

# Bump when the generator changes what it writes: the cache key includes it.
# 2: videos encoded by x264's C code (vtr.video.write_video), the same bytes on every build.
GENERATOR_VERSION = "2"
MOMENT_CLIP_SECONDS = 2  # QVHighlights scores 2-second clips
EVENT_SECONDS = (4, 6, 8)
GAP_SECONDS = (0, 2, 4)
URL_PREFIX = "https://sample-world.vtr.invalid/"  # .invalid: a reserved name, never fetched
STILL_ATTRIBUTES = (
    "shape",
    "colour",
    "size",
    "count",
    "background",
    "background_pattern",
    "background_colour",
)

# Random streams, so adding long videos does not change the clips, and so on.
_PLAN, _CLIP, _STILL, _LONG, _ORDER = range(5)


@dataclass
class Stills:
    """Still frames with appearance-only captions (pretraining and zero-shot probing)."""

    images: np.ndarray  # (N, S, S, 3) uint8
    captions: list[str]
    splits: np.ndarray  # (N,) of "train" / "val" / "test"
    attributes: pd.DataFrame  # one row per still: shape, colour, size, count, background, ...

    def __len__(self) -> int:
        return len(self.captions)


@dataclass
class World:
    """A built sample world: paths to its files plus readers for the short clips and the stills."""

    root: Path
    manifest_path: Path  # canonical manifest of the short clips
    stills_path: Path
    moments_paths: dict[str, Path]  # split -> QVHighlights-format jsonl
    long_videos_dir: Path  # <vid>.mp4 and timeline.json
    msrvtt_dir: Path  # MSR-VTT-format annotations + videos/<video_id>.mp4

    @classmethod
    def at(cls, root: Path) -> World:
        root = Path(root)
        return cls(
            root=root,
            manifest_path=root / "manifest.jsonl",
            stills_path=root / "stills.npz",
            moments_paths={split: root / "moments" / f"{split}.jsonl" for split in SPLITS},
            long_videos_dir=root / "long_videos",
            msrvtt_dir=root / "msrvtt",
        )

    @property
    def info(self) -> dict[str, Any]:
        """``world.json``: config, seed, counts, version."""
        return json.loads((self.root / "world.json").read_text(encoding="utf-8"))

    @property
    def timeline_path(self) -> Path:
        """Per long video: duration, split and its events (start, end, appearance, motion, query)."""
        return self.long_videos_dir / "timeline.json"

    def clips(self, split: str | None = None) -> list[ClipRecord]:
        """The short clips' manifest records (all, or one split's); ``video`` is relative to ``root``."""
        return read_manifest(self.manifest_path, split=split)

    def stills(self, split: str | None = None) -> Stills:
        """The still frames (all, or one split's) with their captions and attribute table."""
        if split is not None and split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS} or None, got {split!r}")
        with np.load(self.stills_path, allow_pickle=False) as data:
            keep = slice(None) if split is None else data["splits"] == split
            attributes = pd.DataFrame({name: data[f"attr_{name}"][keep] for name in STILL_ATTRIBUTES})
            return Stills(
                images=data["images"][keep],
                captions=[str(c) for c in data["captions"][keep]],
                splits=data["splits"][keep],
                attributes=attributes,
            )


def validate_config(cfg: WorldConfig) -> None:
    """Reject sizes the generator cannot honour, naming the ``world.*`` key."""
    checks = [
        (cfg.n_clips >= 1, "n_clips", "must be >= 1"),
        (cfg.n_long_videos >= 0, "n_long_videos", "must be >= 0"),
        (cfg.events_per_long_video >= 1, "events_per_long_video", "must be >= 1"),
        (cfg.n_stills >= 0, "n_stills", "must be >= 0"),
        (cfg.clip_frames >= 4, "clip_frames", "must be >= 4"),
        (cfg.fps >= 1, "fps", "must be >= 1"),
        (cfg.size >= 32 and cfg.size % 2 == 0, "size", "must be even and >= 32 (H.264, room to move)"),
        (1 <= cfg.captions_per_clip <= 18, "captions_per_clip", "must be within 1..18"),
        (
            len(cfg.split_fractions) == 3
            and min(cfg.split_fractions) >= 0
            and abs(sum(cfg.split_fractions) - 1) < 1e-6,
            "split_fractions",
            "must be three non-negative fractions (train, val, test) summing to 1",
        ),
    ]
    for ok, key, why in checks:
        if not ok:
            raise ConfigError(f"world.{key}={getattr(cfg, key)!r} {why}")


def world_key(cfg: WorldConfig, seed: int) -> str:
    """The cache folder's name: :func:`vtr.keys.run_key` of (config, seed, generator version), 12 hex digits."""
    return run_key({"config": cfg, "seed": seed, "version": GENERATOR_VERSION}, size=6)


# ---------------------------------------------------------------------------------------------- plan


@dataclass(frozen=True)
class _Group:
    """Clips sharing one appearance: a hard pair (two motions) or a single static clip."""

    index: int
    category: str
    appearance: Appearance
    motions: tuple[Motion, ...]
    kind: str | None  # "reversal" (each other's time reversal), "order" (same events swapped) or None


def _plan_groups(cfg: WorldConfig, seed: int) -> list[_Group]:
    """Round-robin over the motion families until ``n_clips`` clips, with a static clip whenever the
    static ones fall below ``static_fraction`` of the clips so far; appearances never repeated."""
    rng = np.random.default_rng([seed, _PLAN])
    groups: list[_Group] = []
    seen: set[tuple[object, ...]] = set()
    total = n_static = n_moving = 0
    families = [c for c in CATEGORIES if c != "static"]
    while total < cfg.n_clips:
        if cfg.n_clips - total == 1 or n_static < cfg.static_fraction * (total + 1):
            category = "static"  # (also when there is no room for a pair)
            n_static += 1
        else:
            category = families[n_moving % len(families)]
            n_moving += 1
        appearance = sample_appearance(rng, rotating=category == "rotation")
        while appearance.key() in seen:
            appearance = sample_appearance(rng, rotating=category == "rotation")
        seen.add(appearance.key())
        pair = FAMILIES[category]
        if pair is not None:
            first = pair if rng.random() < 0.5 else pair[::-1]
            motions, kind = ((first[0],), (first[1],)), "reversal"
        elif category == "sequence":
            vertical, horizontal = str(rng.choice(["up", "down"])), str(rng.choice(["left", "right"]))
            motions, kind = ((vertical, horizontal), (horizontal, vertical)), "order"
        else:
            motions, kind = (("still",),), None
        groups.append(_Group(len(groups), category, appearance, motions, kind))
        total += len(motions)
    return groups


def _stratified_splits(groups: list[_Group], fractions: list[float]) -> dict[int, str]:
    """Split whole groups, category by category, so every split gets its share of every category."""
    result: dict[int, str] = {}
    ordered = sorted(groups, key=lambda g: (CATEGORIES.index(g.category), g.index))
    labels = assign_splits([len(g.motions) for g in ordered], fractions)
    for group, label in zip(ordered, labels, strict=True):
        result[group.index] = label
    return result


# ---------------------------------------------------------------------------------------------- clips


def plan_clips(cfg: WorldConfig, seed: int) -> list[ClipRecord]:
    """The manifest records of the short clips, without rendering anything (cheap: for checks and plots)."""
    return [record for record, _, _ in _clip_records(cfg, seed, _plan_groups(cfg, seed))]


def _clip_records(cfg: WorldConfig, seed: int, groups: list[_Group]) -> list[tuple[ClipRecord, _Group, int]]:
    """Manifest records (ids ``video<N>``, train then val then test, shuffled within a split)."""
    splits = _stratified_splits(groups, list(cfg.split_fractions))
    order_rng = np.random.default_rng([seed, _ORDER])
    planned: list[tuple[_Group, int]] = []
    for split in SPLITS:
        members = [(g, m) for g in groups if splits[g.index] == split for m in range(len(g.motions))]
        planned += [members[i] for i in order_rng.permutation(len(members))]
    ids = {(g.index, m): f"video{n}" for n, (g, m) in enumerate(planned)}
    records = []
    for group, member in planned:
        # Captions: one generator per group, so a pair's captions differ only in the motion words.
        caption_rng = np.random.default_rng([seed, _CLIP, group.index, 1])
        motion = group.motions[member]
        partner = ids.get((group.index, 1 - member)) if len(group.motions) == 2 else None
        meta = {
            **group.appearance.attributes(),
            "motion": list(motion),
            "pair_group": f"pair{group.index:04d}" if partner else None,
            "pair_kind": group.kind,
            "pair_partner": partner,
            "frames": cfg.clip_frames,
            "fps": cfg.fps,
        }
        record = ClipRecord(
            id=ids[(group.index, member)],
            video=f"msrvtt/videos/{ids[(group.index, member)]}.mp4",
            captions=lang.clip_captions(group.appearance, motion, cfg.captions_per_clip, caption_rng),
            split=splits[group.index],
            category=group.category,
            meta=meta,
        )
        records.append((record, group, member))
    return records


def _render_group(cfg: WorldConfig, seed: int, group: _Group) -> list[np.ndarray]:
    # Each member starts from the same generator state: an order pair then starts (and ends) in the
    # very same frame, and only the path in between differs.
    clips = [
        render_clip(
            group.appearance,
            motion,
            cfg.clip_frames,
            cfg.size,
            np.random.default_rng([seed, _CLIP, group.index, 0]),
        )
        for motion in group.motions[: 1 if group.kind == "reversal" else None]
    ]
    if group.kind == "reversal":
        clips.append(clips[0][::-1].copy())  # the opposite motion is the same clip played backwards
    return clips


# ---------------------------------------------------------------------------------------------- stills


def _write_stills(cfg: WorldConfig, seed: int, path: Path, bar: tqdm) -> dict[str, int]:
    """Render the stills (each from its own generator) into one npz; returns the count per split."""
    splits = assign_splits([1] * cfg.n_stills, list(cfg.split_fractions))
    images = np.zeros((cfg.n_stills, cfg.size, cfg.size, 3), dtype=np.uint8)
    captions, rows = [], []
    for i in range(cfg.n_stills):
        rng = np.random.default_rng([seed, _STILL, i])
        appearance = sample_appearance(rng)
        images[i] = render_still(appearance, cfg.size, rng)
        captions.append(lang.still_caption(appearance, int(rng.integers(len(lang.STILL_TEMPLATES)))))
        rows.append(appearance.attributes())
        bar.update()
    arrays: dict[str, np.ndarray] = {
        "images": images,
        "captions": np.asarray(captions, dtype=str),
        "splits": np.asarray(splits, dtype=str),
    }
    for name in STILL_ATTRIBUTES:
        column = [row[name] for row in rows]
        arrays[f"attr_{name}"] = np.asarray(column, dtype=np.int64 if name == "count" else str)
    write_npz(path, arrays)
    return {s: splits.count(s) for s in SPLITS}


# ---------------------------------------------------------------------------------------------- long videos


def _long_video(cfg: WorldConfig, seed: int, index: int) -> tuple[np.ndarray, dict[str, Any]]:
    """Frames and timeline of one long video: objects appear, move and fade out one after another.

    Event boundaries fall on whole 2-second clips, so QVHighlights clip ids and windows agree
    exactly. Later events often repeat an earlier object with the opposite motion, so a query must
    be localised by its motion, not by its appearance.
    """
    rng = np.random.default_rng([seed, _LONG, index])
    scene = sample_appearance(rng)
    events: list[dict[str, Any]] = []
    t = int(rng.choice([0, 2]))
    for _ in range(cfg.events_per_long_video):
        reversible = [e for e in events if e["motion"][0] != "still"]
        if reversible and rng.random() < 0.5:
            earlier = reversible[int(rng.integers(len(reversible)))]
            appearance, motion = earlier["appearance"], (OPPOSITE[earlier["motion"][0]],)
        else:
            motion = (str(rng.choice(PRIMITIVES)),)
            appearance = sample_appearance(rng, rotating=motion[0] in ("clockwise", "counterclockwise"))
            appearance = dataclasses.replace(
                appearance,
                background_pattern=scene.background_pattern,
                background_colour=scene.background_colour,
                background_seed=scene.background_seed,
            )
            if appearance.colour == scene.background_colour:  # keep the object visible on this background
                appearance = dataclasses.replace(appearance, colour="white")
        length = int(rng.choice(EVENT_SECONDS))
        events.append({"start": t, "end": t + length, "appearance": appearance, "motion": motion})
        t += length + int(rng.choice(GAP_SECONDS))
    duration = events[-1]["end"] + int(rng.choice([0, 2]))
    bg = render_background(scene, cfg.size)
    n_frames = duration * cfg.fps
    frames = np.repeat(composite(bg, [])[None], n_frames, axis=0)
    alpha = np.zeros((len(events), n_frames))
    for e, event in enumerate(events):
        first, count = event["start"] * cfg.fps, (event["end"] - event["start"]) * cfg.fps
        states = trajectory(event["motion"], count, event["appearance"], cfg.size, rng)
        # Opacity fades in over the first second and out over the last one.
        frames_from_edge = np.minimum(np.arange(1, count + 1), np.arange(count, 0, -1))
        ramp = np.minimum(1.0, frames_from_edge / cfg.fps)
        for k, state in enumerate(states):
            frames[first + k] = composite(bg, sprites(event["appearance"], state, cfg.size, float(ramp[k])))
        alpha[e, first : first + count] = ramp
    return frames, {"duration": duration, "events": events, "alpha": alpha, "background": scene.background}


def _moment_queries(
    vid: str, timeline: dict[str, Any], fps: int, next_qid: int, rng: np.random.Generator
) -> list[dict]:
    """One query per distinct (appearance, motion) of a video; repeated events give several windows."""
    by_description: dict[tuple[object, ...], list[int]] = {}
    for e, event in enumerate(timeline["events"]):
        by_description.setdefault((event["appearance"].key(), event["motion"]), []).append(e)
    queries = []
    clip_frames = MOMENT_CLIP_SECONDS * fps
    n_clips = timeline["duration"] // MOMENT_CLIP_SECONDS
    for members in by_description.values():
        first = timeline["events"][members[0]]
        visible = timeline["alpha"][members].sum(axis=0)
        per_clip = visible[: n_clips * clip_frames].reshape(n_clips, clip_frames).mean(axis=1)
        clip_ids = [int(k) for k in np.flatnonzero(per_clip > 0)]
        # Saliency 0..4 from the object's mean opacity over the clip: fading edges score lower.
        scores = [[int(round(4 * per_clip[k]))] * 3 for k in clip_ids]
        query = lang.moment_query(first["appearance"], first["motion"], int(rng.integers(4)))
        for e in members:
            timeline["events"][e]["query"] = query
            timeline["events"][e]["qid"] = next_qid + len(queries)
        queries.append(
            {
                "qid": next_qid + len(queries),
                "query": query,
                "duration": timeline["duration"],
                "vid": vid,
                "relevant_clip_ids": clip_ids,
                "saliency_scores": scores,
                "relevant_windows": [
                    [timeline["events"][e]["start"], timeline["events"][e]["end"]] for e in members
                ],
            }
        )
    return queries


def _write_long_videos(cfg: WorldConfig, seed: int, world: World, bar: tqdm) -> dict[str, dict[str, int]]:
    world.long_videos_dir.mkdir(parents=True, exist_ok=True)
    splits = assign_splits([1] * cfg.n_long_videos, list(cfg.split_fractions))
    queries: dict[str, list[dict]] = {s: [] for s in SPLITS}
    timelines: dict[str, Any] = {}
    qid = 0
    for index in range(cfg.n_long_videos):
        vid = f"long{index:04d}"
        frames, timeline = _long_video(cfg, seed, index)
        write_video(world.long_videos_dir / f"{vid}.mp4", frames, cfg.fps)
        rng = np.random.default_rng([seed, _LONG, index, 1])
        new = _moment_queries(vid, timeline, cfg.fps, qid, rng)
        qid += len(new)
        queries[splits[index]] += new
        timelines[vid] = {
            "duration": timeline["duration"],
            "fps": cfg.fps,
            "split": splits[index],
            "background": timeline["background"],
            "events": [
                {
                    "start": e["start"],
                    "end": e["end"],
                    "motion": list(e["motion"]),
                    "query": e["query"],
                    "qid": e["qid"],
                    **e["appearance"].attributes(),
                }
                for e in timeline["events"]
            ],
        }
        bar.update()
    write_json(world.timeline_path, timelines)
    for split in SPLITS:
        write_moments(world.moments_paths[split], [_moment_query(q) for q in queries[split]])
    return {
        "long_videos": {s: splits.count(s) for s in SPLITS},
        "queries": {s: len(queries[s]) for s in SPLITS},
    }


# ---------------------------------------------------------------------------------------------- build


def _generate(cfg: WorldConfig, seed: int, world: World, progress: bool) -> None:
    groups = _plan_groups(cfg, seed)
    planned = _clip_records(cfg, seed, groups)
    total = cfg.n_clips + cfg.n_stills + cfg.n_long_videos
    with tqdm(total=total, desc="sample world", unit="item", disable=not show_progress(progress)) as bar:
        stills_counts = _write_stills(cfg, seed, world.stills_path, bar)
        (world.msrvtt_dir / "videos").mkdir(parents=True, exist_ok=True)
        record_of = {(group.index, member): record for record, group, member in planned}
        for group in groups:
            for member, frames in enumerate(_render_group(cfg, seed, group)):
                write_video(record_of[(group.index, member)].video_path(world.root), frames, cfg.fps)
                bar.update()
        long_counts = _write_long_videos(cfg, seed, world, bar)
    records = [record for record, _, _ in planned]
    write_manifest(world.manifest_path, records)
    write_msrvtt(world.msrvtt_dir, records, list(CATEGORIES), cfg.clip_frames / cfg.fps, URL_PREFIX)
    counts = {
        "clips": {s: sum(r.split == s for r in records) for s in SPLITS},
        "hard_pairs": {
            s: sum(r.split == s and r.meta["pair_group"] is not None for r in records) // 2 for s in SPLITS
        },
        "categories": {c: sum(r.category == c for r in records) for c in CATEGORIES},
        "stills": stills_counts,
        **long_counts,
    }
    # Written last: its presence marks a complete world.
    write_json(
        world.root / "world.json",
        {
            "version": GENERATOR_VERSION,
            "key": world_key(cfg, seed),
            "seed": seed,
            "config": dataclasses.asdict(cfg),
            "counts": counts,
            "categories": list(CATEGORIES),
            "pyav": av.__version__,
        },
    )


def build_world(cfg: WorldConfig, seed: int, root: Path, progress: bool = True) -> World:
    """Build (or reuse) the world for ``(cfg, seed)`` under ``root/<key>/``; see :func:`world_key`.

    The world is generated in a temporary folder beside its final place and renamed when complete,
    so an interrupted build leaves nothing that a later call could mistake for a finished one.
    """
    validate_config(cfg)
    root = Path(root)
    target = root / world_key(cfg, seed)
    if (target / "world.json").is_file():
        return World.at(target)
    root.mkdir(parents=True, exist_ok=True)
    if target.exists():  # no world.json: not a finished build (e.g. a hand-made copy); rebuild it
        shutil.rmtree(target)
    scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=root))
    try:
        _generate(cfg, seed, World.at(scratch), progress)
        try:
            os.rename(scratch, target)
        except OSError:
            if not (target / "world.json").is_file():  # not a concurrent build that finished first
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return World.at(target)


def sample_world(profile: Profile) -> World:
    """The profile's sample world, built on first use under ``<data_dir>/sample_world/``."""
    return build_world(profile.world, profile.seed, resolve(profile.data_dir) / "sample_world")


def _moment_query(raw: dict[str, Any]) -> MomentQuery:
    return MomentQuery(
        qid=raw["qid"],
        query=raw["query"],
        vid=raw["vid"],
        duration=raw["duration"],
        windows=[tuple(w) for w in raw["relevant_windows"]],
        clip_ids=raw["relevant_clip_ids"],
        saliency=raw["saliency_scores"],
    )
