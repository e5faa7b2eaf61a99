"""Drawing the sample world: shapes as anti-aliased signed-distance masks over textured backgrounds.

Everything is plain numpy on a small square canvas (64 px in the sample profile). Coordinates are
pixels with the origin at the top-left corner and y pointing *down*, as in the image arrays, so
"up" means decreasing y and a growing angle turns a shape *clockwise* on screen.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Bright, saturated object colours; the backgrounds below are darker and muted, so an object always
# stands out from its background and a colour-distance threshold finds it in the decoded pixels.
OBJECT_COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (230, 40, 40),
    "green": (40, 200, 60),
    "blue": (50, 100, 245),
    "yellow": (245, 225, 40),
    "purple": (170, 60, 230),
    "orange": (250, 140, 20),
    "white": (245, 245, 245),
}
BACKGROUND_COLOURS: dict[str, tuple[int, int, int]] = {
    "blue": (35, 55, 120),
    "green": (35, 95, 50),
    "red": (115, 35, 35),
    "grey": (85, 85, 85),
    "brown": (95, 65, 35),
    "purple": (80, 45, 100),
    "teal": (30, 95, 100),
}
BACKGROUND_PATTERNS = ("plain", "gradient", "striped", "checkered", "mottled")
SHAPES = ("circle", "square", "triangle", "diamond", "cross", "star")
# Object radius (centre to farthest vertex) as a fraction of the frame side.
SIZES: dict[str, float] = {"small": 0.08, "medium": 0.105, "large": 0.145}


def _regular_polygon(n: int, phase: float = -np.pi / 2) -> np.ndarray:
    angles = phase + 2 * np.pi * np.arange(n) / n
    return np.stack([np.cos(angles), np.sin(angles)], axis=1)


def _star(points: int = 5, inner: float = 0.45) -> np.ndarray:
    outer = _regular_polygon(2 * points)
    radii = np.where(np.arange(2 * points) % 2 == 0, 1.0, inner)
    return outer * radii[:, None]


def _cross(arm: float = 0.36) -> np.ndarray:
    a = arm
    return np.array(
        [
            [-a, -1],
            [a, -1],
            [a, -a],
            [1, -a],
            [1, a],
            [a, a],
            [a, 1],
            [-a, 1],
            [-a, a],
            [-1, a],
            [-1, -a],
            [-a, -a],
        ]
    ) / np.hypot(1, a)


# Unit polygons (every vertex within the unit circle, so ``radius`` bounds the drawn extent).
POLYGONS: dict[str, np.ndarray] = {
    "square": _regular_polygon(4, phase=-np.pi / 4),
    "triangle": _regular_polygon(3),
    "diamond": np.array(
        [[0.0, -1.0], [0.62, 0.0], [0.0, 1.0], [-0.62, 0.0]]
    ),  # a rhombus, not a turned square
    "cross": _cross(),
    "star": _star(),
}


@dataclass(frozen=True)
class Sprite:
    """One object in one frame."""

    shape: str
    colour: tuple[int, int, int]
    x: float
    y: float
    radius: float
    angle: float = 0.0  # radians, clockwise on screen
    alpha: float = 1.0  # opacity, for fading in and out


def _box(sprite: Sprite, size: int) -> tuple[slice, slice]:
    """The pixel rows and columns the sprite can touch (its radius plus the anti-aliasing pixel)."""
    reach = sprite.radius + 1.5
    x0, x1 = max(int(sprite.x - reach), 0), min(int(np.ceil(sprite.x + reach)), size)
    y0, y1 = max(int(sprite.y - reach), 0), min(int(np.ceil(sprite.y + reach)), size)
    return slice(y0, max(y0, y1)), slice(x0, max(x0, x1))


def _polygon_signed_distance(
    xs: np.ndarray, ys: np.ndarray, start: np.ndarray, end: np.ndarray
) -> np.ndarray:
    """Signed distance (negative inside) from pixel centres to a closed polygon, in pixels.

    ``xs`` (W,) and ``ys`` (H,) are pixel-centre coordinates; ``start`` and ``end`` (M, 2) are the
    polygon's edges. Returns (H, W).
    """
    px, py = xs[None, :, None], ys[:, None, None]
    ax, ay, bx, by = start[:, 0], start[:, 1], end[:, 0], end[:, 1]
    ex, ey = bx - ax, by - ay
    wx, wy = px - ax, py - ay
    t = np.clip((wx * ex + wy * ey) / (ex * ex + ey * ey), 0.0, 1.0)
    dist = np.sqrt(((wx - ex * t) ** 2 + (wy - ey * t) ** 2).min(axis=-1))
    # Even-odd rule: count the edges a ray from the pixel towards +x crosses.
    straddles = (ay <= py) != (by <= py)
    x_cross = ax + (py - ay) * ex / np.where(ey == 0, 1e-12, ey)
    inside = (straddles & (px < x_cross)).sum(axis=-1) % 2 == 1
    return np.where(inside, -dist, dist)


def coverage(sprite: Sprite, size: int) -> np.ndarray:
    """Fraction of each pixel the sprite covers, (size, size) float32 in [0, 1] (one-pixel anti-aliasing)."""
    full = np.zeros((size, size), dtype=np.float32)
    rows, cols = _box(sprite, size)
    full[rows, cols] = _coverage_in_box(sprite, rows, cols)
    return full


def _coverage_in_box(sprite: Sprite, rows: slice, cols: slice) -> np.ndarray:
    # Pixel centres, so a shape centred at size/2 is centred on the canvas.
    xs, ys = np.arange(cols.start, cols.stop) + 0.5, np.arange(rows.start, rows.stop) + 0.5
    if sprite.shape == "circle":
        signed = np.hypot(xs[None, :] - sprite.x, ys[:, None] - sprite.y) - sprite.radius
    else:
        cos, sin = np.cos(sprite.angle), np.sin(sprite.angle)
        rotation = np.array([[cos, sin], [-sin, cos]]) * sprite.radius
        centre = np.array([sprite.x, sprite.y])
        start = POLYGONS[sprite.shape] @ rotation + centre
        signed = _polygon_signed_distance(xs, ys, start, np.roll(start, -1, axis=0))
    return np.clip(0.5 - signed, 0.0, 1.0).astype(np.float32)


def composite(background: np.ndarray, sprites: list[Sprite]) -> np.ndarray:
    """Draw ``sprites`` in order over a float (size, size, 3) background; returns uint8 RGB."""
    canvas = background.astype(np.float32, copy=True)
    size = canvas.shape[0]
    for sprite in sprites:
        if sprite.alpha <= 0:
            continue
        rows, cols = _box(sprite, size)
        mask = (_coverage_in_box(sprite, rows, cols) * sprite.alpha)[..., None]
        colour = np.asarray(sprite.colour, dtype=np.float32)
        canvas[rows, cols] = canvas[rows, cols] * (1.0 - mask) + colour * mask
    return np.clip(np.rint(canvas), 0, 255).astype(np.uint8)


def background(pattern: str, colour: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """A (size, size, 3) float32 background: ``pattern`` in :data:`BACKGROUND_PATTERNS` in ``colour``.

    Textures vary the base colour's brightness by at most about ±30 %, so the colour name stays true
    and objects keep their contrast. ``rng`` picks orientation, period and noise.
    """
    base = np.asarray(BACKGROUND_COLOURS[colour], dtype=np.float32)
    centres = (np.arange(size, dtype=np.float32) + 0.5) / size  # pixel centres, 0..1
    u, v = np.meshgrid(centres, centres)
    if pattern == "plain":
        shade = np.ones_like(u)
    elif pattern == "gradient":
        direction = rng.uniform(0, 2 * np.pi)
        ramp = (u - 0.5) * np.cos(direction) + (v - 0.5) * np.sin(direction)
        shade = 1.0 + 0.6 * ramp / 0.71  # about 0.6 .. 1.4 corner to corner
    elif pattern == "striped":
        direction = rng.choice([0.0, np.pi / 2, np.pi / 4, 3 * np.pi / 4])
        period = rng.uniform(0.12, 0.22)
        phase = (u * np.cos(direction) + v * np.sin(direction)) / period
        shade = np.where(np.floor(phase) % 2 == 0, 0.72, 1.3)
    elif pattern == "checkered":
        period = rng.uniform(0.12, 0.2)
        shade = np.where((np.floor(u / period) + np.floor(v / period)) % 2 == 0, 0.72, 1.3)
    elif pattern == "mottled":
        # Smooth value noise: a coarse random grid upsampled bilinearly.
        cells = int(rng.integers(4, 8))
        coarse = rng.uniform(0.65, 1.35, size=(cells + 1, cells + 1))
        gx, gy = u * cells, v * cells
        i, j = np.floor(gx).astype(int), np.floor(gy).astype(int)
        fx, fy = gx - i, gy - j
        top = coarse[j, i] * (1 - fx) + coarse[j, i + 1] * fx
        bottom = coarse[j + 1, i] * (1 - fx) + coarse[j + 1, i + 1] * fx
        shade = top * (1 - fy) + bottom * fy
    else:
        raise ValueError(f"unknown background pattern {pattern!r}; expected one of {BACKGROUND_PATTERNS}")
    return np.clip(base * shade[..., None].astype(np.float32), 0, 255)
