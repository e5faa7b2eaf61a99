"""The pretraining pool of vtr-tiny: stills that name position, short clips that name motion.

ViCLIP learns to read motion from InternVid's captioned clips; vtr-tiny learns it here from a pool
rendered like the sample world but from its own random streams and its own caption templates, so
no retrieval clip, still or caption is seen in pretraining and zero-shot evaluation stays zero-shot:

    pool = pretraining_pool(profile.world, profile.tiny, seed=profile.seed)
    pool.still_images   # (S, H, W, 3) uint8; half the captions also name where the objects are
    pool.clip_frames    # (C, T, H, W, 3) uint8; T = tiny.pool_frames evenly spaced frames
    pool.clip_captions  # "a clip where a small red circle moves left", "... moves up, then right"

Every motion family of the world is drawn equally often (single moves, bounces, rotations, scale
changes, two moves in sequence and still objects). Positions are named by thirds of the frame
("at the top left", "in the centre"), which gives the image tower a reason to keep where things
are: the retrieval clips' hard pairs differ only in where the objects go.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from vtr.data.synthetic import captions as lang
from vtr.data.synthetic.render import composite
from vtr.data.synthetic.scenes import (
    CATEGORIES,
    FAMILIES,
    Appearance,
    Motion,
    render_background,
    sample_appearance,
    sprites,
    trajectory,
)

if TYPE_CHECKING:
    from vtr.config import TinyConfig, WorldConfig

# Random-stream ids well away from the world's (0..4), so the pool shares no generator with the splits.
_POOL_STILL, _POOL_CLIP = 101, 102
# Templates that no retrieval caption uses ({np} noun phrase, {vp} verb phrase, {bg} background).
POOL_CLIP_TEMPLATES = [
    "a clip where {np} {vp}",
    "{bg} where {np} {vp}",
    "a video of {np} that {vp}",
]
_ROWS = ("at the top", "in the middle", "at the bottom")
_COLUMNS = ("left", "", "right")


@dataclass
class PretrainPool:
    """Rendered stills and clips with their captions (all in memory: a few tens of MB)."""

    still_images: np.ndarray  # (S, H, W, 3) uint8
    still_captions: list[str]
    clip_frames: np.ndarray  # (C, T, H, W, 3) uint8
    clip_captions: list[str]
    clip_categories: list[str]


def position_phrase(x: float, y: float, size: int) -> str:
    """Where a point lies by thirds of the frame: ``"at the top left"``, ``"in the centre"``, ``"on the right"``."""
    row, column = min(2, int(3 * y / size)), min(2, int(3 * x / size))
    if row == 1:
        return "in the centre" if column == 1 else f"on the {_COLUMNS[column]}"
    return f"{_ROWS[row]} {_COLUMNS[column]}".rstrip()


def _pool_motion(category: str, rng: np.random.Generator) -> Motion:
    pair = FAMILIES[category]
    if pair is not None:
        return (pair[int(rng.integers(2))],)
    if category == "sequence":
        moves = [str(rng.choice(["up", "down"])), str(rng.choice(["left", "right"]))]
        return tuple(moves if rng.random() < 0.5 else moves[::-1])
    return ("still",)


def _render_frames(
    appearance: Appearance, motion: Motion, n_frames: int, keep: np.ndarray, size: int, rng: np.random.Generator
) -> np.ndarray:
    """Only the frames ``keep`` of a ``n_frames``-long clip (rendering is the costly part)."""
    states = trajectory(motion, n_frames, appearance, size, rng)
    bg = render_background(appearance, size)
    return np.stack([composite(bg, sprites(appearance, states[k], size)) for k in keep])


def pool_clip_caption(appearance: Appearance, motion: Motion, choice: int) -> str:
    template = POOL_CLIP_TEMPLATES[choice % len(POOL_CLIP_TEMPLATES)]
    verb = lang.verb_phrase(motion, appearance.count > 1, choice // len(POOL_CLIP_TEMPLATES))
    return template.format(np=lang.noun_phrase(appearance), vp=verb, bg=lang.background_phrase(appearance))


def pretraining_pool(world: WorldConfig, tiny: TinyConfig, seed: int) -> PretrainPool:
    """Render ``tiny.pool_stills`` stills and ``tiny.pool_clips`` clips at the world's frame size."""
    size = world.size
    images, still_captions = np.zeros((tiny.pool_stills, size, size, 3), np.uint8), []
    for i in range(tiny.pool_stills):
        rng = np.random.default_rng([seed, _POOL_STILL, i])
        appearance = sample_appearance(rng)
        (state,) = trajectory(("still",), 1, appearance, size, rng)
        images[i] = composite(render_background(appearance, size), sprites(appearance, state, size))
        caption = lang.still_caption(appearance, int(rng.integers(len(lang.STILL_TEMPLATES))))
        if tiny.position_captions and rng.random() < 0.5:
            caption = f"{caption} {position_phrase(state.x, state.y, size)}"
        still_captions.append(caption)
    keep = np.round(np.linspace(0, world.clip_frames - 1, tiny.pool_frames)).astype(int)
    frames = np.zeros((tiny.pool_clips, tiny.pool_frames, size, size, 3), np.uint8)
    clip_captions, categories = [], []
    for i in range(tiny.pool_clips):
        rng = np.random.default_rng([seed, _POOL_CLIP, i])
        category = CATEGORIES[i % len(CATEGORIES)]
        appearance = sample_appearance(rng, rotating=category == "rotation")
        motion = _pool_motion(category, rng)
        frames[i] = _render_frames(appearance, motion, world.clip_frames, keep, size, rng)
        clip_captions.append(pool_clip_caption(appearance, motion, int(rng.integers(12))))
        categories.append(category)
    return PretrainPool(images, still_captions, frames, clip_captions, categories)
