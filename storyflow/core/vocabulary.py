"""The words every planner, prompt writer and score share: moods, camera phrasing, what to avoid.

A chat LLM is told these in its instructions (prompts/plan_system.md, rewrite_system.md),
the embedded planner infers them from the story's words, and the procedural score has a
recipe for each mood: one list, so the three always agree.
"""

from __future__ import annotations

import re

from storyflow.core.models import CameraAngle, CameraMove, Framing, LensEffect

# The moods a shot may have; the first is the default.
MOODS = ("calm", "tense", "joyful", "melancholy", "mysterious", "triumphant", "eerie", "romantic", "playful")
DEFAULT_MOOD = MOODS[0]

# A shot lasts at least this long past its last timed change ("[at 8s]").
CHANGE_HOLD_SECONDS = 2.0

# How the rewriter phrases each part of the shot grammar (Shot.directives: framing, angle,
# camera moves, lens and speed effects); the value itself always leads, so a prompt names
# the directive the way a video model was trained to read it. One table for the embedded
# rewriter (prompts/shot_prompt.j2) and a chat LLM's instructions. CameraMove.TILT_SHIFT
# (kept so old storyboards load) and LensEffect.TILT_SHIFT are one key: both say "tilt shift".
CAMERA_PHRASES: dict[CameraMove | Framing | CameraAngle | LensEffect, str] = {
    # camera moves
    CameraMove.STATIC: "static shot, locked-off camera",
    CameraMove.PAN_LEFT: "pan left, the camera turns slowly to the left",
    CameraMove.PAN_RIGHT: "pan right, the camera turns slowly to the right",
    CameraMove.TILT_UP: "tilt up, the camera tilts slowly upward",
    CameraMove.TILT_DOWN: "tilt down, the camera tilts slowly downward",
    CameraMove.ZOOM_IN: "zoom in, slowly closing in on the subject",
    CameraMove.ZOOM_OUT: "zoom out, slowly revealing the surroundings",
    CameraMove.DOLLY_ZOOM: "dolly zoom, the background stretches while the subject keeps its size",
    CameraMove.ARC_SHOT: "arc shot, the camera circles the subject",
    CameraMove.CRANE_SHOT: "crane shot, the camera rises high above the scene",
    CameraMove.TRACKING_SHOT: "tracking shot, the camera follows the subject",
    CameraMove.FPV_DRONE: "FPV drone shot, fast low flight",
    CameraMove.TILT_SHIFT: "tilt shift, miniature look, shallow focus",  # also LensEffect.TILT_SHIFT
    # framing, widest first
    Framing.EXTREME_WIDE: "extreme wide shot, the surroundings dwarf the subject",
    Framing.WIDE: "wide shot, the whole scene in frame",
    Framing.MEDIUM_WIDE: "medium wide shot, the subject seen head to toe",
    Framing.MEDIUM: "medium shot, the subject from the waist up",
    Framing.MEDIUM_CLOSE_UP: "medium close-up, head and shoulders",
    Framing.CLOSE_UP: "close-up, the subject fills the frame",
    Framing.EXTREME_CLOSE_UP: "extreme close-up, one small detail fills the frame",
    # camera angles
    CameraAngle.EYE_LEVEL: "eye level, the camera at the subject's eye height",
    CameraAngle.LOW: "low angle, looking up at the subject",
    CameraAngle.HIGH: "high angle, looking down on the subject",
    CameraAngle.OVERHEAD: "overhead shot, looking straight down from above",
    CameraAngle.DUTCH: "dutch angle, the horizon tilted",
    # lens and speed effects (tilt shift: above)
    LensEffect.SLOW_MOTION: "slow motion, every movement slowed down",
    LensEffect.TIME_LAPSE: "time-lapse, hours pass in seconds",
    LensEffect.RACK_FOCUS: "rack focus, the focus shifts from the foreground to the background",
}

# What every video prompt asks the model to avoid, before the story's own style adds more.
DEFAULT_NEGATIVE = (
    "blurry, low quality, distorted faces, deformed hands, extra limbs, watermark, "
    "text artifacts, logo, jpeg artifacts, flicker"
)


# ---------------------------------------------------------------- palette: the colour words of a style

_COLOURS = (
    r"red|crimson|scarlet|orange|amber|gold(?:en)?|yellow|ochre|green|emerald|olive|teal|"
    r"turquoise|cyan|blue|navy|indigo|violet|purple|magenta|pink|rose|brown|sepia|umber|"
    r"black|white|grey|gray|silver|cream|ivory|pastels?|monochrome"
)
_PALETTE = re.compile(  # "muted teal", "emerald green", "blue-grey"
    rf"\b(?:(?:muted|pale|deep|dark|bright|warm|cool|soft|dusty|faded|rich|burnt|neon)\s+)?"
    rf"(?:{_COLOURS})(?:[\s-]+(?:{_COLOURS}))?\b",
    re.I,
)


def palette_of(style: str) -> str:
    """The colour words of a style, in order: 'muted teal, amber'."""
    seen: list[str] = []
    for match in _PALETTE.finditer(style):
        colour = match.group().lower()
        if colour not in seen:
            seen.append(colour)
    return ", ".join(seen)
