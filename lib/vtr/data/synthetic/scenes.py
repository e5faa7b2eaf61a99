"""What happens in the sample world: appearances, motions, and the frames that show them.

A clip is an :class:`Appearance` (shape, colour, size, count, background) plus a :data:`Motion`, a
tuple of primitive events played one after another ("up", then "left"). Trajectories are
piecewise-linear in normalised time ``u = frame / (T - 1)``, so a single event played backwards is
exactly its opposite event ("right" reversed is "left", "grow" reversed is "shrink").
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from vtr.data.synthetic.render import (
    BACKGROUND_COLOURS,
    BACKGROUND_PATTERNS,
    OBJECT_COLOURS,
    SHAPES,
    SIZES,
    Sprite,
    background,
    composite,
)

Motion = tuple[str, ...]

PRIMITIVES = (
    "left",
    "right",
    "up",
    "down",
    "grow",
    "shrink",
    "clockwise",
    "counterclockwise",
    "bounce_left",
    "bounce_right",
    "still",
)
OPPOSITE = {
    "left": "right",
    "right": "left",
    "up": "down",
    "down": "up",
    "grow": "shrink",
    "shrink": "grow",
    "clockwise": "counterclockwise",
    "counterclockwise": "clockwise",
    "bounce_left": "bounce_right",
    "bounce_right": "bounce_left",
    "still": "still",
}
# The category of a clip is its motion family. Every family but "static" comes in hard pairs that
# share the appearance and differ only in direction (the pair's clips are each other's time reversal)
# or in the order of two events (same first and last frame), so a model that ignores frame order
# scores at chance on them: per-category recall shows where temporal order matters.
FAMILIES: dict[str, tuple[str, str] | None] = {
    "horizontal": ("right", "left"),
    "vertical": ("down", "up"),
    "scale": ("grow", "shrink"),
    "rotation": ("clockwise", "counterclockwise"),
    "bounce": ("bounce_right", "bounce_left"),
    "sequence": None,  # two perpendicular moves, in both orders
    "static": None,
}
CATEGORIES = tuple(FAMILIES)

# A group of `count` objects is laid out around its centre; offsets are in object radii.
_CLUSTER_OFFSETS = {
    1: np.array([[0.0, 0.0]]),
    2: np.array([[-1.2, 0.0], [1.2, 0.0]]),
    3: np.array([[-1.2, 1.05], [1.2, 1.05], [0.0, -1.05]]),
}
SCALE_RANGE = (0.5, 1.4)  # grow / shrink between these multiples of the nominal radius
ROTATION_DEGREES = 150.0  # a rotate event turns the object by this much
BOUNCE_HOPS = 2
MARGIN_PX = 1.0


@dataclass(frozen=True)
class Appearance:
    """Everything one still frame shows; ``background_seed`` fixes the texture's randomness."""

    shape: str
    colour: str
    size: str
    count: int
    background_pattern: str
    background_colour: str
    background_seed: int

    @property
    def background(self) -> str:
        return f"{self.background_pattern} {self.background_colour}"

    def attributes(self) -> dict[str, object]:
        attrs = dataclasses.asdict(self)
        attrs.pop("background_seed")
        attrs["background"] = self.background
        return attrs

    def key(self) -> tuple[object, ...]:
        return (
            self.shape,
            self.colour,
            self.size,
            self.count,
            self.background_pattern,
            self.background_colour,
        )


def _pick(rng: np.random.Generator, options: list[Any] | tuple[Any, ...]) -> Any:
    return options[int(rng.integers(len(options)))]  # faster than rng.choice on small lists


def sample_appearance(rng: np.random.Generator, *, rotating: bool = False) -> Appearance:
    """A random appearance; a circle is never asked to rotate (it would look still)."""
    shapes = [s for s in SHAPES if s != "circle"] if rotating else SHAPES
    count = _pick(rng, (1, 1, 2, 3))  # one object half the time
    # Three large objects would leave no room to move in a small frame.
    sizes = list(SIZES) if count <= 2 else ["small", "medium"]
    colour = _pick(rng, list(OBJECT_COLOURS))
    return Appearance(
        shape=_pick(rng, shapes),
        colour=colour,
        size=_pick(rng, sizes),
        count=count,
        background_pattern=_pick(rng, BACKGROUND_PATTERNS),
        # Never the object's own colour name, so "a red circle on a red background" cannot happen.
        background_colour=_pick(rng, [c for c in BACKGROUND_COLOURS if c != colour]),
        background_seed=int(rng.integers(2**31)),
    )


def render_background(appearance: Appearance, size: int) -> np.ndarray:
    rng = np.random.default_rng(appearance.background_seed)
    return background(appearance.background_pattern, appearance.background_colour, size, rng)


@dataclass(frozen=True)
class _State:
    x: float
    y: float
    scale: float
    angle: float  # degrees


def _extent(count: int) -> tuple[float, float]:
    """Half width and half height of a cluster, in object radii (every shape fits in its unit circle)."""
    offsets = _CLUSTER_OFFSETS[count]
    return float(np.abs(offsets[:, 0]).max() + 1.0), float(np.abs(offsets[:, 1]).max() + 1.0)


def _ranges(
    appearance: Appearance, size: int, max_scale: float
) -> tuple[tuple[float, float], tuple[float, float]]:
    radius = SIZES[appearance.size] * size * max_scale
    half_w, half_h = _extent(appearance.count)
    # A cluster wider than the frame allows would get an empty range: pin it to the centre instead.
    x_lo, y_lo = min(MARGIN_PX + half_w * radius, size / 2), min(MARGIN_PX + half_h * radius, size / 2)
    return (x_lo, size - x_lo), (y_lo, size - y_lo)


def _apply(state: _State, primitive: str, tau: float, ranges: tuple[tuple[float, float], ...]) -> _State:
    """The state after ``tau`` (0..1) of ``primitive`` starting from ``state``."""
    (x_lo, x_hi), (y_lo, y_hi) = ranges
    s_lo, s_hi = SCALE_RANGE
    lerp = lambda a, b: a + (b - a) * tau  # noqa: E731
    if primitive in ("left", "bounce_left"):
        state = dataclasses.replace(state, x=lerp(state.x, x_lo))
    elif primitive in ("right", "bounce_right"):
        state = dataclasses.replace(state, x=lerp(state.x, x_hi))
    elif primitive == "up":
        state = dataclasses.replace(state, y=lerp(state.y, y_lo))
    elif primitive == "down":
        state = dataclasses.replace(state, y=lerp(state.y, y_hi))
    elif primitive == "grow":
        state = dataclasses.replace(state, scale=lerp(state.scale, s_hi))
    elif primitive == "shrink":
        state = dataclasses.replace(state, scale=lerp(state.scale, s_lo))
    elif primitive == "clockwise":
        state = dataclasses.replace(state, angle=state.angle + ROTATION_DEGREES * tau)
    elif primitive == "counterclockwise":
        state = dataclasses.replace(state, angle=state.angle - ROTATION_DEGREES * tau)
    elif primitive != "still":
        raise ValueError(f"unknown motion {primitive!r}; expected one of {PRIMITIVES}")
    if primitive.startswith("bounce"):
        # Hops along the floor (y_hi): height |sin|, back on the floor at both ends.
        height = 0.65 * (y_hi - y_lo)
        state = dataclasses.replace(state, y=y_hi - height * abs(np.sin(np.pi * BOUNCE_HOPS * tau)))
    return state


def _start(motion: Motion, ranges: tuple[tuple[float, float], ...], rng: np.random.Generator) -> _State:
    """Start where every event of ``motion`` has room: e.g. at the right edge before moving left."""
    (x_lo, x_hi), (y_lo, y_hi) = ranges
    x = (
        x_hi
        if {"left", "bounce_left"} & set(motion)
        else x_lo
        if {"right", "bounce_right"} & set(motion)
        else None
    )
    y = (
        y_hi
        if "up" in motion or any(m.startswith("bounce") for m in motion)
        else y_lo
        if "down" in motion
        else None
    )
    scale = SCALE_RANGE[0] if "grow" in motion else SCALE_RANGE[1] if "shrink" in motion else 1.0
    return _State(
        x=float(rng.uniform(x_lo, x_hi)) if x is None else x,
        y=float(rng.uniform(y_lo, y_hi)) if y is None else y,
        scale=scale,
        angle=float(rng.uniform(0, 360)),
    )


def trajectory(
    motion: Motion, n_frames: int, appearance: Appearance, size: int, rng: np.random.Generator
) -> list[_State]:
    """Per-frame states for ``motion`` (events of equal length) over ``n_frames`` frames."""
    max_scale = SCALE_RANGE[1] if {"grow", "shrink"} & set(motion) else 1.0
    ranges = _ranges(appearance, size, max_scale)
    start = _start(motion, ranges, rng)
    states = []
    for frame in range(n_frames):
        u = frame / max(n_frames - 1, 1) * len(motion)
        segment = min(int(u), len(motion) - 1)
        state = start
        for done in motion[:segment]:
            state = _apply(state, done, 1.0, ranges)
        states.append(_apply(state, motion[segment], u - segment, ranges))
    return states


def sprites(appearance: Appearance, state: _State, size: int, alpha: float = 1.0) -> list[Sprite]:
    radius = SIZES[appearance.size] * size * state.scale
    colour = OBJECT_COLOURS[appearance.colour]
    return [
        Sprite(
            shape=appearance.shape,
            colour=colour,
            x=state.x + dx * radius,
            y=state.y + dy * radius,
            radius=radius,
            angle=float(np.deg2rad(state.angle)),
            alpha=alpha,
        )
        for dx, dy in _CLUSTER_OFFSETS[appearance.count]
    ]


def render_clip(
    appearance: Appearance, motion: Motion, n_frames: int, size: int, rng: np.random.Generator
) -> np.ndarray:
    """(n_frames, size, size, 3) uint8 frames of ``appearance`` performing ``motion``."""
    bg = render_background(appearance, size)
    states = trajectory(motion, n_frames, appearance, size, rng)
    return np.stack([composite(bg, sprites(appearance, s, size)) for s in states])


def render_still(appearance: Appearance, size: int, rng: np.random.Generator) -> np.ndarray:
    """One frame of ``appearance`` at a random position and angle."""
    (state,) = trajectory(("still",), 1, appearance, size, rng)
    return composite(render_background(appearance, size), sprites(appearance, state, size))


def assign_splits(weights: list[int], fractions: list[float]) -> list[str]:
    """Deterministic, evenly interleaved split labels: each item goes to the split furthest behind its quota.

    ``weights`` are item sizes (e.g. clips per hard-pair group), so the split fractions hold for the
    clips while a group never straddles two splits.
    """
    names = ("train", "val", "test")
    totals = np.zeros(3)
    labels = []
    seen = 0
    for weight in weights:
        seen += weight
        deficit = np.asarray(fractions) * seen - totals
        choice = int(np.argmax(deficit))
        totals[choice] += weight
        labels.append(names[choice])
    return labels
