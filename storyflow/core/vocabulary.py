"""The words every planner, prompt writer and score share: moods, camera phrasing, what to avoid.

A chat LLM is told these in its instructions (prompts/plan_system.md, rewrite_system.md),
the embedded planner infers them from the story's words, and the procedural score has a
recipe for each mood: one list, so the three always agree.
"""

from __future__ import annotations

from storyflow.core.models import CameraMove

# The moods a shot may have; the first is the default.
MOODS = ("calm", "tense", "joyful", "melancholy", "mysterious", "triumphant", "eerie", "romantic", "playful")
DEFAULT_MOOD = MOODS[0]

# A shot lasts at least this long past its last timed change ("[at 8s]").
CHANGE_HOLD_SECONDS = 2.0

# How the rewriter phrases each move; the CameraMove value itself always leads.
CAMERA_PHRASES: dict[CameraMove, str] = {
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
    CameraMove.TILT_SHIFT: "tilt shift, miniature look, shallow focus",
}

# What every video prompt asks the model to avoid, before the story's own style adds more.
DEFAULT_NEGATIVE = (
    "blurry, low quality, distorted faces, deformed hands, extra limbs, watermark, "
    "text artifacts, logo, jpeg artifacts, flicker"
)
