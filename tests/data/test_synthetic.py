"""The sample world: determinism, caching, formats, and that the captions' motion is really in the pixels."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import av
import numpy as np
import pytest

import vtr
from vtr.config import ConfigError, WorldConfig, load_profile
from vtr.data.manifest import read_manifest
from vtr.data.synthetic import CATEGORIES, World, build_world, plan_clips, sample_world, world_key
from vtr.data.synthetic import world as world_module
from vtr.data.synthetic.render import BACKGROUND_COLOURS, OBJECT_COLOURS

SMALL = WorldConfig(
    n_clips=28,
    n_long_videos=3,
    events_per_long_video=3,
    n_stills=60,
    clip_frames=12,
    fps=4,
    size=64,
    captions_per_clip=3,
    split_fractions=[0.5, 0.2, 0.3],
)
APPEARANCE_KEYS = ("shape", "colour", "size", "count", "background_pattern", "background_colour")


@pytest.fixture(scope="module")
def worlds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, World]:
    """A build of (SMALL, seed 0), and one with another seed."""
    base = tmp_path_factory.mktemp("worlds")
    return {
        "a": build_world(SMALL, 0, base / "a", progress=False),
        "other_seed": build_world(SMALL, 1, base / "c", progress=False),
    }


@pytest.fixture(scope="module")
def world(worlds: dict[str, World]) -> World:
    return worlds["a"]


def decode(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def object_mask(frames: np.ndarray, colour: str) -> np.ndarray:
    """Pixels within RGB distance 50 of the object colour (backgrounds are muted, far from all of them)."""
    target = np.asarray(OBJECT_COLOURS[colour], dtype=np.float32)
    return np.linalg.norm(frames.astype(np.float32) - target, axis=-1) < 50


def centroids(mask: np.ndarray) -> np.ndarray:
    """(T, 2) colour-mass centroid (x, y) per frame."""
    ys, xs = np.mgrid[: mask.shape[1], : mask.shape[2]]
    area = mask.sum(axis=(1, 2))
    assert area.min() > 0, "object not found in some frame"
    return np.stack([(mask * xs).sum(axis=(1, 2)) / area, (mask * ys).sum(axis=(1, 2)) / area], axis=1)


def clips_with_motion(world: World, motion: list[str]) -> list:
    found = [r for r in world.clips() if r.meta["motion"] == motion]
    assert found, f"no clip with motion {motion} in the test world"
    return found


# --------------------------------------------------------------------------- determinism and cache


# Builds (SMALL, seed 0) into each folder given, one after another in this one process.
_BUILD_SCRIPT = """
import json, sys
from pathlib import Path
from vtr.config import WorldConfig
from vtr.data.synthetic import build_world
cfg = WorldConfig(**json.loads(sys.argv[1]))
for root in sys.argv[2:]:
    build_world(cfg, 0, Path(root), progress=False)
"""


def _files(world_root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(world_root).as_posix(): p.read_bytes() for p in world_root.rglob("*") if p.is_file()
    }


def test_same_seed_gives_identical_files(worlds: dict[str, World], tmp_path: Path) -> None:
    """Byte-identical worlds from separate processes running at once, and from the first and the second
    build within one process (x264's assembly once made these differ: see vtr.video.write_video)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(vtr.__file__).parents[1]), *sys.path])}
    config = json.dumps(dataclasses.asdict(SMALL))
    roots = [[tmp_path / f"p{p}b{b}" for b in range(2)] for p in range(3)]
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", _BUILD_SCRIPT, config, *map(str, pair)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for pair in roots
    ]
    for process in processes:
        _, err = process.communicate(timeout=300)
        assert process.returncode == 0, err
    reference = _files(worlds["a"].root)
    assert any(name.endswith(".mp4") for name in reference)
    for root in (r for pair in roots for r in pair):
        built = _files(root / worlds["a"].root.name)
        assert sorted(built) == sorted(reference), root
        differing = [name for name in reference if built[name] != reference[name]]
        assert not differing, (
            f"{root.name}: {len(differing)} files differ from the in-process build: {differing[:5]}"
        )


def test_different_seed_differs(worlds: dict[str, World]) -> None:
    a, c = worlds["a"], worlds["other_seed"]
    assert a.root.name != c.root.name
    assert a.manifest_path.read_bytes() != c.manifest_path.read_bytes()
    assert a.stills_path.read_bytes() != c.stills_path.read_bytes()
    assert (a.msrvtt_dir / "videos" / "video0.mp4").read_bytes() != (
        c.msrvtt_dir / "videos" / "video0.mp4"
    ).read_bytes()


def test_second_build_reuses_the_cache(world: World) -> None:
    stamp = world.manifest_path.stat().st_mtime_ns
    again = build_world(SMALL, 0, world.root.parent, progress=False)
    assert again.root == world.root
    assert world.manifest_path.stat().st_mtime_ns == stamp
    assert [p.name for p in world.root.parent.iterdir()] == [world.root.name]  # no temp folders left


def test_key_depends_on_config_and_seed() -> None:
    assert world_key(SMALL, 0) == world_key(WorldConfig(**vars(SMALL)), 0)
    assert world_key(SMALL, 0) != world_key(SMALL, 1)
    assert world_key(SMALL, 0) != world_key(WorldConfig(**{**vars(SMALL), "n_clips": 30}), 0)


def test_interrupted_build_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def failing_write(*args: object, **kwargs: object) -> None:
        calls.append(args)
        if len(calls) == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(world_module, "write_video", failing_write)
    cfg = WorldConfig(**{**vars(SMALL), "n_clips": 6, "n_stills": 4, "n_long_videos": 0})
    with pytest.raises(KeyboardInterrupt):
        build_world(cfg, 0, tmp_path, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_sample_world_builds_under_the_profiles_data_dir(tmp_path: Path) -> None:
    small = {k: v for k, v in vars(SMALL).items()} | {"n_clips": 4, "n_stills": 6, "n_long_videos": 1}
    profile = load_profile("sample", overrides={"data_dir": str(tmp_path), "seed": 3, "world": small})
    built = sample_world(profile)
    assert built.root == tmp_path / "sample_world" / world_key(profile.world, 3)
    assert built.info["seed"] == 3 and built.info["config"]["n_clips"] == 4


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"split_fractions": [0.5, 0.5, 0.5]}, "world.split_fractions"),
        ({"split_fractions": [0.5, 0.5]}, "world.split_fractions"),
        ({"size": 63}, "world.size"),
        ({"n_clips": 0}, "world.n_clips"),
        ({"captions_per_clip": 0}, "world.captions_per_clip"),
    ],
)
def test_bad_config_names_the_key(tmp_path: Path, change: dict, key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        build_world(WorldConfig(**{**vars(SMALL), **change}), 0, tmp_path, progress=False)


# --------------------------------------------------------------------------- clips and splits


def test_counts_and_info(world: World) -> None:
    clips = world.clips()
    assert len(clips) == SMALL.n_clips
    assert len({r.id for r in clips}) == len(clips)
    counts = world.info["counts"]
    assert counts["clips"] == {s: sum(r.split == s for r in clips) for s in ("train", "val", "test")}
    assert world.info["config"]["n_clips"] == SMALL.n_clips and world.info["seed"] == 0
    assert set(r.category for r in clips) == set(CATEGORIES)


def test_split_fractions_and_categories_of_the_sample_plan() -> None:
    """Planning the sample profile's 240 clips (no rendering): fractions hold, every split has every category."""
    cfg = load_profile("sample").world
    records = plan_clips(cfg, 0)
    assert len(records) == cfg.n_clips
    per_split = Counter(r.split for r in records)
    for split, fraction in zip(("train", "val", "test"), cfg.split_fractions, strict=True):
        assert abs(per_split[split] - fraction * cfg.n_clips) <= 2, per_split
    for category in CATEGORIES:
        assert {r.split for r in records if r.category == category} == {"train", "val", "test"}, category
    # A hard pair never straddles two splits.
    by_group: dict[str, set[str]] = {}
    for r in records:
        if r.meta["pair_group"]:
            by_group.setdefault(r.meta["pair_group"], set()).add(r.split)
    assert all(len(splits) == 1 for splits in by_group.values())
    assert plan_clips(cfg, 0) == records  # deterministic


def test_manifest_validates_and_points_at_the_videos(world: World) -> None:
    records = read_manifest(world.manifest_path)
    assert records == world.clips()
    assert world.clips("test") == [r for r in records if r.split == "test"]
    for r in records:
        assert r.video_path(world.manifest_path.parent).is_file()
        assert r.category in CATEGORIES
        assert len(r.captions) == SMALL.captions_per_clip == len(set(r.captions))
        for key in (*APPEARANCE_KEYS, "motion", "pair_group", "pair_kind", "pair_partner"):
            assert key in r.meta, key
        words = " ".join(r.captions)
        assert r.meta["colour"] in words and r.meta["shape"] in words


def test_every_clip_decodes_with_the_configured_geometry(world: World) -> None:
    for r in world.clips():
        frames = decode(r.video_path(world.root))
        assert frames.shape == (SMALL.clip_frames, SMALL.size, SMALL.size, 3), r.id


def test_hard_pairs_in_the_test_split(world: World) -> None:
    test = {r.id: r for r in world.clips("test")}
    pairs = {tuple(sorted((r.id, r.meta["pair_partner"]))) for r in test.values() if r.meta["pair_partner"]}
    assert pairs, "the test split has no hard pairs"
    for a_id, b_id in pairs:
        a, b = test[a_id], test[b_id]  # the partner is in the same split
        assert a.meta["pair_group"] == b.meta["pair_group"]
        assert all(a.meta[k] == b.meta[k] for k in APPEARANCE_KEYS)
        assert a.meta["motion"] != b.meta["motion"]
        if a.meta["pair_kind"] == "order":
            assert a.meta["motion"] == b.meta["motion"][::-1]
        for cap_a, cap_b in zip(a.captions, b.captions, strict=True):
            assert cap_a != cap_b
            # Same appearance words in the same template: only the motion differs.
            for word in (a.meta["colour"], a.meta["shape"], a.meta["size"], a.meta["background_colour"]):
                assert (word in cap_a) == (word in cap_b)


# --------------------------------------------------------------------------- the motion is in the pixels


@pytest.mark.parametrize(
    ("motion", "axis", "sign"), [("right", 0, 1), ("left", 0, -1), ("down", 1, 1), ("up", 1, -1)]
)
def test_translation_moves_the_colour_centroid(world: World, motion: str, axis: int, sign: int) -> None:
    for r in clips_with_motion(world, [motion]):
        path = centroids(object_mask(decode(r.video_path(world.root)), r.meta["colour"]))[:, axis] * sign
        assert path[-1] - path[0] > 8, (r.id, path)
        assert np.all(np.diff(path) > -0.5), (r.id, path)  # monotone, up to codec noise


@pytest.mark.parametrize("motion", ["grow", "shrink"])
def test_scale_changes_the_area(world: World, motion: str) -> None:
    for r in clips_with_motion(world, [motion]):
        area = object_mask(decode(r.video_path(world.root)), r.meta["colour"]).sum(axis=(1, 2)).astype(float)
        if motion == "shrink":
            area = area[::-1]
        assert area[-1] > 3 * area[0], (r.id, area)  # 0.5x to 1.4x the radius: about 8x the area
        # Monotone up to codec blur: a soft frame costs thin shapes on a checkered background ~15% of their mask.
        assert np.all(np.diff(area) > -0.15 * area.max()), (r.id, area)


def test_bounce_hops_while_travelling(world: World) -> None:
    for r in clips_with_motion(world, ["bounce_right"]):
        path = centroids(object_mask(decode(r.video_path(world.root)), r.meta["colour"]))
        assert path[-1, 0] - path[0, 0] > 8
        assert abs(path[-1, 1] - path[0, 1]) < 1.5  # back on the floor
        assert path[0, 1] - path[:, 1].min() > 5  # but off it in between (y points down)


def test_rotation_turns_in_place(world: World) -> None:
    for r in clips_with_motion(world, ["clockwise"]) + clips_with_motion(world, ["counterclockwise"]):
        mask = object_mask(decode(r.video_path(world.root)), r.meta["colour"])
        path = centroids(mask)
        # Stays put (a move travels > 8 px); small stars on a checkered background jitter ~2.5 px in the codec.
        assert np.ptp(path, axis=0).max() < 3.0
        first, middle = mask[0], mask[len(mask) // 2]
        assert (first & middle).sum() / (first | middle).sum() < 0.9  # but its outline turns


def test_static_clips_do_not_move(world: World) -> None:
    for r in clips_with_motion(world, ["still"]):
        frames = decode(r.video_path(world.root)).astype(np.float32)
        assert np.abs(frames - frames[0]).mean(axis=(1, 2, 3)).max() < 1.0  # only codec noise
        assert np.ptp(centroids(object_mask(frames.astype(np.uint8), r.meta["colour"])), axis=0).max() < 0.5


def test_reversal_pairs_are_each_other_played_backwards(world: World) -> None:
    by_id = {r.id: r for r in world.clips()}
    reversal = [r for r in by_id.values() if r.meta["pair_kind"] == "reversal"]
    assert reversal
    for r in reversal:
        a = decode(r.video_path(world.root)).astype(np.float32)
        b = decode(by_id[r.meta["pair_partner"]].video_path(world.root)).astype(np.float32)
        assert np.abs(a - b[::-1]).mean() < 2.0
        assert np.abs(a - b).mean() > np.abs(a - b[::-1]).mean()


def test_order_pairs_share_first_and_last_frames_only(world: World) -> None:
    by_id = {r.id: r for r in world.clips()}
    ordered = [r for r in by_id.values() if r.meta["pair_kind"] == "order"]
    assert ordered
    for r in ordered:
        a = centroids(object_mask(decode(r.video_path(world.root)), r.meta["colour"]))
        partner = by_id[r.meta["pair_partner"]]
        b = centroids(object_mask(decode(partner.video_path(world.root)), r.meta["colour"]))
        distance = np.linalg.norm(a - b, axis=1)
        assert distance[0] < 1.0 and distance[-1] < 1.0, distance  # same start and end
        assert distance[len(distance) // 2] > 8, distance  # opposite corners half way


# --------------------------------------------------------------------------- stills


def test_stills_shapes_splits_and_attributes(world: World) -> None:
    every = world.stills()
    assert (
        every.images.shape == (SMALL.n_stills, SMALL.size, SMALL.size, 3) and every.images.dtype == np.uint8
    )
    assert len(every) == len(every.captions) == len(every.attributes) == len(every.splits)
    counts = Counter(every.splits.tolist())
    assert sum(counts.values()) == SMALL.n_stills
    for split, fraction in zip(("train", "val", "test"), SMALL.split_fractions, strict=True):
        assert abs(counts[split] - fraction * SMALL.n_stills) <= 1
        part = world.stills(split)
        assert len(part) == counts[split] and set(part.splits.tolist()) == {split}
    assert {"shape", "colour", "size", "count", "background"} <= set(every.attributes.columns)
    with pytest.raises(ValueError, match="split"):
        world.stills("training")


def test_still_captions_name_every_attribute(world: World) -> None:
    stills = world.stills()
    for caption, (_, row) in zip(stills.captions, stills.attributes.iterrows(), strict=True):
        words = caption.split()
        count_word = {1: ("a", "an"), 2: ("two",), 3: ("three",)}[int(row["count"])]
        assert any(w in words for w in count_word), caption
        assert row["size"] in words and row["colour"] in words, caption
        assert any(w.startswith(row["shape"]) for w in words), caption  # "cross" / "crosses"
        assert row["background_colour"] in words and row["background_pattern"] in words, caption


def test_still_pixels_show_the_object_colour(world: World) -> None:
    stills = world.stills()
    for image, colour in zip(stills.images, stills.attributes["colour"], strict=True):
        assert object_mask(image[None], colour).sum() >= 10


def test_object_and_background_colours_are_far_apart() -> None:
    """The pixel tests' premise: no texture shade (0.6x..1.4x) of a background comes near an object colour."""
    for bg_name, bg in BACKGROUND_COLOURS.items():
        for shade in (0.6, 1.0, 1.4):
            for obj_name, obj in OBJECT_COLOURS.items():
                if obj_name != bg_name:  # never combined: see sample_appearance
                    assert np.linalg.norm(np.asarray(bg) * shade - np.asarray(obj)) > 80, (obj_name, bg_name)


# --------------------------------------------------------------------------- moments


def test_moments_jsonl_matches_the_timeline(world: World, shared_data_or_none: Path | None) -> None:
    timeline = json.loads(world.timeline_path.read_text())
    expected_keys = {
        "qid",
        "query",
        "duration",
        "vid",
        "relevant_clip_ids",
        "saliency_scores",
        "relevant_windows",
    }
    if shared_data_or_none is not None:
        with open(shared_data_or_none / "qvhighlights" / "highlight_val_release.jsonl") as fh:
            assert set(json.loads(fh.readline())) == expected_keys
    qids = []
    for split, path in world.moments_paths.items():
        for line in path.read_text().splitlines():
            q = json.loads(line)
            assert set(q) == expected_keys
            video = timeline[q["vid"]]
            assert video["split"] == split and q["duration"] == video["duration"]
            events = [e for e in video["events"] if e["qid"] == q["qid"]]
            assert q["relevant_windows"] == [[e["start"], e["end"]] for e in events]
            assert all(e["query"] == q["query"] for e in events)
            for start, end in q["relevant_windows"]:
                assert 0 <= start < end <= q["duration"]
            # 2-second clips: exactly those overlapping a window, one 0..4 score triple each.
            covered = {k for s, e in q["relevant_windows"] for k in range(s // 2, -(-e // 2))}
            assert q["relevant_clip_ids"] == sorted(covered)
            assert len(q["saliency_scores"]) == len(q["relevant_clip_ids"])
            assert all(len(s) == 3 and all(0 <= v <= 4 for v in s) for s in q["saliency_scores"])
            qids.append(q["qid"])
    assert len(qids) == len(set(qids)) > 0
    assert sum(world.info["counts"]["queries"].values()) == len(qids)


def test_long_video_pixels_follow_the_timeline(world: World) -> None:
    timeline = json.loads(world.timeline_path.read_text())
    assert len(timeline) == SMALL.n_long_videos
    for vid, video in timeline.items():
        frames = decode(world.long_videos_dir / f"{vid}.mp4")
        fps = video["fps"]
        assert len(frames) == video["duration"] * fps
        for event in video["events"]:
            mask = object_mask(frames, event["colour"]).sum(axis=(1, 2))
            middle = (event["start"] + event["end"]) * fps // 2
            assert mask[middle] >= 10, (vid, event)
            same_colour = [e for e in video["events"] if e["colour"] == event["colour"]]
            visible = np.zeros(len(frames), dtype=bool)
            for e in same_colour:
                visible[e["start"] * fps : e["end"] * fps] = True
            assert mask[~visible].max(initial=0) <= 2, (vid, event)  # absent outside its windows


# --------------------------------------------------------------------------- MSR-VTT format


def _csv_header(path: Path) -> list[str]:
    with open(path, newline="") as fh:
        return next(csv.reader(fh))


def test_msrvtt_files_match_the_real_layout(world: World, shared_data_or_none: Path | None) -> None:
    d = world.msrvtt_dir
    records = {r.id: r for r in world.clips()}
    assert _csv_header(d / "MSRVTT_JSFUSION_test.csv") == ["key", "vid_key", "video_id", "sentence"]
    assert _csv_header(d / "MSRVTT_train.9k.csv") == ["video_id"]
    with open(d / "MSRVTT_JSFUSION_test.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert {row["video_id"] for row in rows} == {i for i, r in records.items() if r.split == "test"}
    for row in rows:
        assert row["vid_key"] == "msr" + row["video_id"].removeprefix("video")
        assert row["sentence"] == records[row["video_id"]].captions[0]
    with open(d / "MSRVTT_train.9k.csv", newline="") as fh:
        assert {row["video_id"] for row in csv.DictReader(fh)} == {
            i for i, r in records.items() if r.split == "train"
        }

    category_lines = (d / "category.txt").read_bytes().decode().split("\r\n")
    categories = dict(line.split("\t") for line in category_lines if line)
    assert list(categories) == list(CATEGORIES)

    videos, sentences = [], []
    for name in ("train_val_videodatainfo.json", "test_videodatainfo.json"):
        payload = json.loads((d / name).read_text())
        assert set(payload) == {"info", "videos", "sentences"}
        videos += payload["videos"]
        sentences += payload["sentences"]
    assert {v["video_id"] for v in videos} == set(records)
    for v in videos:
        r = records[v["video_id"]]
        assert set(v) == {"category", "url", "video_id", "start time", "end time", "split", "id"}
        assert categories[r.category] == str(v["category"])
        assert v["split"] == {"train": "train", "val": "validate", "test": "test"}[r.split]
        assert (d / "videos" / f"{v['video_id']}.mp4").is_file()
    assert len(sentences) == sum(len(r.captions) for r in records.values())
    assert len({s["sen_id"] for s in sentences}) == len(sentences)
    assert all(set(s) == {"caption", "video_id", "sen_id"} for s in sentences)

    if shared_data_or_none is not None:  # the very same headers and key sets as the real release
        real = shared_data_or_none / "msrvtt"
        for name in ("MSRVTT_JSFUSION_test.csv", "MSRVTT_train.9k.csv"):
            assert _csv_header(real / name) == _csv_header(d / name)
        real_test = json.loads((real / "test_videodatainfo.json").read_text())
        assert set(real_test["videos"][0]) == set(videos[0])
        assert set(real_test["sentences"][0]) == set(sentences[0])
        assert set(real_test["info"]) == set(json.loads((d / "test_videodatainfo.json").read_text())["info"])
        real_category = (real / "category.txt").read_bytes()
        assert real_category.count(b"\t") == real_category.count(b"\r\n")


@pytest.fixture(scope="module")
def shared_data_or_none() -> Path | None:
    """The real files, when present: format checks compare against them, and skip only that part."""
    from vtr.paths import shared_data_dir

    path = shared_data_dir()
    return path if path.is_dir() else None


def test_pretraining_pool_names_motion_and_position_with_its_own_templates() -> None:
    from vtr.config import TinyConfig, WorldConfig
    from vtr.data.synthetic import captions as lang
    from vtr.data.synthetic.pretraining import POOL_CLIP_TEMPLATES, position_phrase, pretraining_pool

    tiny = TinyConfig(pool_stills=40, pool_clips=21, pool_frames=4)
    pool = pretraining_pool(WorldConfig(), tiny, seed=0)
    assert pool.still_images.shape == (40, 64, 64, 3) and pool.clip_frames.shape == (21, 4, 64, 64, 3)
    assert set(pool.clip_categories) == {"horizontal", "vertical", "scale", "rotation", "bounce", "sequence",
                                         "static"}  # fmt: skip
    assert any(" at the " in c or " in the centre" in c or " on the " in c.split(" background")[-1]
               for c in pool.still_captions)  # fmt: skip
    prefixes = [t.split("{")[0] for t in POOL_CLIP_TEMPLATES if not t.startswith("{")]
    assert all(any(c.startswith(p) for p in prefixes) or " where " in c for c in pool.clip_captions)
    retrieval_heads = {t.split("{")[0] for t in lang.CLIP_TEMPLATES}
    assert not any(t.split("{")[0] in retrieval_heads - {""} for t in POOL_CLIP_TEMPLATES)
    moving = [f for f, c in zip(pool.clip_frames, pool.clip_categories, strict=True) if c == "horizontal"]
    assert all(not np.array_equal(f[0], f[-1]) for f in moving)
    assert position_phrase(2, 2, 64) == "at the top left" and position_phrase(32, 32, 64) == "in the centre"
    assert position_phrase(60, 32, 64) == "on the right" and position_phrase(32, 62, 64) == "at the bottom"
    again = pretraining_pool(WorldConfig(), tiny, seed=0)
    assert np.array_equal(again.clip_frames, pool.clip_frames) and again.clip_captions == pool.clip_captions
