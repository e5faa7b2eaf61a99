"""The sample world's language: noun phrases for appearances, verb phrases for motions, templates.

Captions are lower case like MSR-VTT's. Every clip caption names the motion (what hard pairs differ
in); appearance words vary between paraphrases as in human captions. Still captions name every
appearance attribute, so a model pretrained on them can be probed attribute by attribute.
"""

from __future__ import annotations

import numpy as np

from vtr.data.synthetic.scenes import Appearance, Motion

_COUNT_WORDS = {2: "two", 3: "three"}
_PLURALS = {"cross": "crosses"}
_BACKGROUND_PHRASES = {
    "plain": "a plain {colour} background",
    "gradient": "a {colour} gradient background",
    "striped": "a striped {colour} background",
    "checkered": "a checkered {colour} background",
    "mottled": "a mottled {colour} background",
}

# (third person singular, plural) paraphrases of each primitive motion.
VERB_PHRASES: dict[str, list[tuple[str, str]]] = {
    "left": [
        ("moves left", "move left"),
        ("slides to the left", "slide to the left"),
        ("travels leftwards", "travel leftwards"),
        ("goes from right to left", "go from right to left"),
    ],
    "right": [
        ("moves right", "move right"),
        ("slides to the right", "slide to the right"),
        ("travels rightwards", "travel rightwards"),
        ("goes from left to right", "go from left to right"),
    ],
    "up": [
        ("moves up", "move up"),
        ("rises", "rise"),
        ("slides upwards", "slide upwards"),
        ("goes from the bottom to the top", "go from the bottom to the top"),
    ],
    "down": [
        ("moves down", "move down"),
        ("sinks", "sink"),
        ("slides downwards", "slide downwards"),
        ("goes from the top to the bottom", "go from the top to the bottom"),
    ],
    "grow": [
        ("grows", "grow"),
        ("gets bigger", "get bigger"),
        ("expands", "expand"),
        ("grows larger", "grow larger"),
    ],
    "shrink": [
        ("shrinks", "shrink"),
        ("gets smaller", "get smaller"),
        ("contracts", "contract"),
        ("shrinks down", "shrink down"),
    ],
    "clockwise": [
        ("rotates clockwise", "rotate clockwise"),
        ("spins clockwise", "spin clockwise"),
        ("turns clockwise", "turn clockwise"),
    ],
    "counterclockwise": [
        ("rotates counterclockwise", "rotate counterclockwise"),
        ("spins anticlockwise", "spin anticlockwise"),
        ("turns counterclockwise", "turn counterclockwise"),
    ],
    "bounce_left": [
        ("bounces to the left", "bounce to the left"),
        ("hops to the left", "hop to the left"),
        ("bounces leftwards", "bounce leftwards"),
    ],
    "bounce_right": [
        ("bounces to the right", "bounce to the right"),
        ("hops to the right", "hop to the right"),
        ("bounces rightwards", "bounce rightwards"),
    ],
    "still": [
        ("stays still", "stay still"),
        ("does not move", "do not move"),
        ("sits motionless", "sit motionless"),
        ("remains in place", "remain in place"),
    ],
}
# Two-event motions: (singular, plural) templates over the bare directions ("up", "left").
SEQUENCE_PHRASES: list[tuple[str, str]] = [
    ("moves {a}, then {b}", "move {a}, then {b}"),
    ("goes {a} and then {b}", "go {a} and then {b}"),
    ("first moves {a}, then {b}", "first move {a}, then {b}"),
    ("travels {a} and then {b}", "travel {a} and then {b}"),
]
# Clip caption templates: {np} noun phrase, {np_short} without size, {vp} verb phrase, {bg} background.
CLIP_TEMPLATES = [
    "{np} {vp} on {bg}",
    "{np_short} {vp}",
    "{np} {vp}",
    "on {bg}, {np_short} {vp}",
    "{np} in front of {bg} {vp}",
    "{np_short} {vp} on {bg}",
]
STILL_TEMPLATES = [
    "{np} on {bg}",
    "{bg} with {np}",
    "a picture of {np} on {bg}",
    "{np} in front of {bg}",
]


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def noun_phrase(appearance: Appearance, *, with_size: bool = True) -> str:
    """``"a large red triangle"``, ``"two small orange crosses"``."""
    shape = appearance.shape
    if appearance.count > 1:
        shape = _PLURALS.get(shape, shape + "s")
    words = [appearance.size] if with_size else []
    words += [appearance.colour, shape]
    lead = _COUNT_WORDS[appearance.count] if appearance.count > 1 else _article(words[0])
    return " ".join([lead, *words])


def background_phrase(appearance: Appearance) -> str:
    return _BACKGROUND_PHRASES[appearance.background_pattern].format(colour=appearance.background_colour)


def verb_phrase(motion: Motion, plural: bool, choice: int) -> str:
    """A paraphrase (index ``choice``, wrapping) of ``motion``, agreeing with a singular/plural subject."""
    if len(motion) == 1:
        options = VERB_PHRASES[motion[0]]
        return options[choice % len(options)][int(plural)]
    if len(motion) == 2:
        template = SEQUENCE_PHRASES[choice % len(SEQUENCE_PHRASES)][int(plural)]
        return template.format(a=motion[0], b=motion[1])
    raise ValueError(f"motions of one or two events have captions, got {motion}")


def clip_captions(appearance: Appearance, motion: Motion, n: int, rng: np.random.Generator) -> list[str]:
    """``n`` distinct captions: the first uses the full template (every attribute), the rest vary.

    The template and paraphrase picks come from ``rng`` alone and opposite motions have as many
    paraphrases, so two clips given equal generators get captions that differ only in the motion
    words, as a hard pair should.
    """
    plural = appearance.count > 1
    fields = {
        "np": noun_phrase(appearance),
        "np_short": noun_phrase(appearance, with_size=False),
        "bg": background_phrase(appearance),
    }
    n_phrases = len(VERB_PHRASES[motion[0]]) if len(motion) == 1 else len(SEQUENCE_PHRASES)
    picks = [(t, p) for t in range(len(CLIP_TEMPLATES)) for p in range(n_phrases)]
    first = int(rng.integers(n_phrases))  # the full template with a random paraphrase leads
    rest = [picks[i] for i in rng.permutation(len(picks)) if picks[i] != (0, first)]
    captions = []
    for template, phrase in [(0, first), *rest][:n]:
        captions.append(CLIP_TEMPLATES[template].format(vp=verb_phrase(motion, plural, phrase), **fields))
    return captions


def still_caption(appearance: Appearance, choice: int) -> str:
    """An appearance-only caption naming shape, colour, size, count and background."""
    template = STILL_TEMPLATES[choice % len(STILL_TEMPLATES)]
    return template.format(np=noun_phrase(appearance), bg=background_phrase(appearance))


def moment_query(appearance: Appearance, motion: Motion, choice: int) -> str:
    """A moment-retrieval query: ``"the small red circle moves left"`` (every word but the verb fixed).

    Size is always named, so a query never also matches another object of the same video.
    """
    words = noun_phrase(appearance).split()
    if appearance.count == 1:
        words = words[1:]  # "a small red circle" -> "the small red circle"
    return " ".join(["the", *words, verb_phrase(motion, appearance.count > 1, choice)])
