"""The animatic's speed paths keep the picture: what it caches stays bounded however long the
clip, every kind of scene still renders a full picture, and the one-pass grade is the grade."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from storyflow.backends.video import animatic
from storyflow.backends.video.animatic import (
    MAX_SWAY_LEVELS,
    PHASES,
    AnimaticBackend,
    ShotRenderer,
)
from storyflow.backends.video.animatic.effects import Grade
from storyflow.backends.video.animatic.layers import SETTING_LAYERS
from storyflow.backends.video.animatic.scene import read_scene
from storyflow.core.models import CameraMove, Character, ClipRequest, LensEffect

MARA = Character(name="Mara", description="a tall woman in a red raincoat")
WINDY_FOREST = "Mara walks through a pine forest at dawn, light rain, wind in the trees"


def renderer(prompt: str, move: CameraMove, **fields) -> ShotRenderer:
    values = {"seed": 1, "width": 320, "height": 180, "fps": 24, "num_frames": 96, "camera": move,
              "subjects": (MARA,), **fields}  # fmt: skip
    request = ClipRequest(prompt=prompt, **values)
    return ShotRenderer(request, read_scene(request.prompt, request.subjects, request.seed), AnimaticBackend.Options())


def swaying_groups(shot: ShotRenderer) -> list:
    """The groups the wind bends, and the foreground kept apart from them to lay over figures."""
    groups = [g for g in shot.back + shot.front if g.level_of is not None]
    return groups + [g.cover for g in groups if g.cover is not None]


def cached_bytes(shot: ShotRenderer) -> int:
    """Bytes of the swaying layers' copies moved by fractions of a pixel the renderer holds (the sway itself is in
    each frame's warp: no swayed picture is kept)."""
    return sum(picture.nbytes for g in swaying_groups(shot) for picture in g.phases.values())


@pytest.mark.parametrize("move", [CameraMove.STATIC, CameraMove.PAN_LEFT, CameraMove.ARC_SHOT])
def test_the_wind_cache_stops_growing_however_long_the_shot(move):
    # a 16 s shot: its last clip's frames, then three more laps over the whole shot with the same renderer
    total = 16 * 24
    shot = renderer(WINDY_FOREST, move, shot_offset_frames=total - 96, shot_total_frames=total)
    for k in range(total - 96, total):
        shot.frame(k)
    after_one_clip = cached_bytes(shot)
    for k in list(range(total)) * 3:
        shot.frame(k)
    groups = swaying_groups(shot)
    assert groups, "the wind should bend the trees"
    for group in groups:
        levels = len(group.level_wind)
        assert 2 <= levels <= MAX_SWAY_LEVELS
        assert len(group.phases) <= (PHASES * PHASES - 1) * levels
    # the wind repeats: one clip already visits (nearly) every level the whole shot needs
    assert cached_bytes(shot) <= 1.25 * after_one_clip


def test_copies_for_moves_by_fractions_of_a_pixel_keep_to_their_budget(monkeypatch):
    # a 20 s tracking shot paints a world several frames wide on its flats: a small budget cannot hold them all
    budget = 8 << 20
    monkeypatch.setattr(animatic, "PHASE_MEMORY", budget)
    total = 20 * 24
    shot = renderer("Mara walks down a city street at noon", CameraMove.TRACKING_SHOT, width=640, height=360,
                    shot_offset_frames=total - 96, shot_total_frames=total)  # fmt: skip
    frames = [shot.frame(k) for k in range(total - 96, total)]
    copies = [picture for g in shot.back + shot.front for picture in g.phases.values()]
    assert copies, "a tracking shot moves its flats by fractions of a pixel"
    held = sum(picture.nbytes for picture in copies)
    assert held == shot.phase_bytes <= budget
    # past the budget the flats still move (blended per frame): the street keeps scrolling
    steps = [np.abs(a.astype(int) - b.astype(int)).mean() for a, b in zip(frames, frames[1:])]
    assert min(steps) > 0.5


def test_a_swaying_level_is_a_picture_of_the_wind_not_of_the_frame():
    shot = renderer(WINDY_FOREST, CameraMove.STATIC)
    frames = [shot.frame(k) for k in range(96)]
    (group,) = [g for g in shot.back if g.level_of is not None]
    # frames on one wind level show the same scenery; frames on different levels do not
    levels = group.level_of[2 : 2 + 96]  # the span starts two frames before the shot
    same = [(a, b) for a in range(96) for b in range(a + 1, 96) if levels[a] == levels[b]]
    assert same and len(set(levels.tolist())) > 3
    a, b = same[0]
    top = slice(0, 60)  # the treetops, above the figures and the rain's brightest streaks
    other = next(k for k in range(96) if abs(int(levels[k]) - int(levels[a])) >= 3)
    still = np.abs(frames[a][top].astype(int) - frames[b][top].astype(int))
    moved = np.abs(frames[a][top].astype(int) - frames[other][top].astype(int))
    assert moved.mean() > still.mean()


SCENE_KINDS = [
    *(f"Mara stands in the {setting} at noon" for setting in SETTING_LAYERS),
    "Mara walks across rolling hills",
    WINDY_FOREST,
    "The lighthouse stands on a rocky coast at dusk. Storm clouds gather over the sea. Watercolor, muted teal",
    "Fishing boats race for the harbour. Rain begins to fall.",
    "Morning mist hangs over the river.",
    "Snow covers the sleeping village far below the hill.",
    "Mara sits on the hilltop at night and looks up at the full moon.",
    "Mara walks across the salt flats at night. Lightning flashes in the background.",
    "Mara sits by the fire inside a log cabin at night.",
]


@pytest.mark.parametrize("prompt", SCENE_KINDS)
@pytest.mark.parametrize("move", [CameraMove.STATIC, CameraMove.PAN_LEFT, CameraMove.ZOOM_IN, CameraMove.ARC_SHOT,
                                  CameraMove.FPV_DRONE])  # fmt: skip
def test_every_scene_kind_renders_a_full_picture_under_every_kind_of_move(prompt, move):
    effects = (LensEffect.TILT_SHIFT,) if "village" in prompt else ()
    request = ClipRequest(prompt=prompt, seed=3, width=160, height=90, fps=24, num_frames=24, camera=move,
                          subjects=(MARA,), effects=effects)  # fmt: skip
    frames = list(AnimaticBackend(AnimaticBackend.Options(caption=False, labels=False, camera_tag=False)).generate(request).frames)
    assert len(frames) == 24
    for frame in frames[::6]:
        assert frame.shape == (90, 160, 3) and frame.dtype == np.uint8
        # scenery everywhere: no black (unpainted) rows or columns at the edges, and more than one colour
        assert frame.std() > 8
        for edge in (frame[0], frame[-1], frame[:, 0], frame[:, -1]):
            assert edge.max(axis=-1).min() > 0
    if move is not CameraMove.STATIC:
        assert np.abs(frames[0].astype(int) - frames[-1].astype(int)).mean() > 1.0


@pytest.mark.parametrize("words", ["watercolor, muted teal light", "neon city", "film noir", "sepia", "pastel, golden light",
                                   "vivid"])  # fmt: skip
def test_the_one_pass_grade_is_the_grade(words):
    grade = Grade(read_scene(f"a street, {words}", (), 1))
    assert not grade.identity
    pixels = np.random.default_rng(0).integers(0, 256, (40, 50, 3), np.uint8)
    one_pass = np.asarray(grade.image(Image.fromarray(pixels))).astype(int)
    assert np.abs(one_pass - grade.array(pixels).astype(int)).max() <= 1
