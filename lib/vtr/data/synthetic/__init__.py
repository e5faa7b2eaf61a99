"""The sample world: a procedurally generated, deterministic video-caption corpus on disk.

Short H.264 clips of shapes that move (left, right, up, down, grow, shrink, rotate, bounce, stay
still, or two moves in sequence) on varied backgrounds, in hard pairs that differ only in the
direction or order of motion; still frames with appearance-only captions; long multi-event videos
with QVHighlights-format moment queries; and MSR-VTT-format annotations of the clips.

    world = sample_world(load_profile("sample"))
    world.clips("test")           # canonical ClipRecords
    world.stills("train").images  # (N, 64, 64, 3) uint8
"""

from vtr.data.synthetic.scenes import CATEGORIES, FAMILIES, Appearance
from vtr.data.synthetic.world import (
    GENERATOR_VERSION,
    Stills,
    World,
    build_world,
    plan_clips,
    sample_world,
    validate_config,
    world_key,
)

__all__ = [
    "CATEGORIES",
    "FAMILIES",
    "GENERATOR_VERSION",
    "Appearance",
    "Stills",
    "World",
    "build_world",
    "plan_clips",
    "sample_world",
    "validate_config",
    "world_key",
]
