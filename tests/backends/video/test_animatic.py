"""The animatic backend, judged by its frames: what the words, the camera and the seams do
to real pixels (and to a real mp4 decoded back)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from storyflow import media
from storyflow.backends.registry import load_backend
from storyflow.backends.video import animatic
from storyflow.backends.video.animatic import AnimaticBackend, Sceneries
from storyflow.core.errors import BackendOptionError, GenerationError
from storyflow.core.models import CameraMove, Character, ClipRequest

REPO = Path(__file__).resolve().parents[3]
MARA = Character(name="Mara", description="a tall woman in a red raincoat")
PLAIN = AnimaticBackend(AnimaticBackend.Options(caption=False, labels=False, camera_tag=False))
FULL = AnimaticBackend()


def request(prompt: str = "rolling hills at noon", **fields) -> ClipRequest:
    values = {"seed": 7, "width": 160, "height": 90, "fps": 24, "num_frames": 12, **fields}
    return ClipRequest(prompt=prompt, **values)


def render(prompt: str = "rolling hills at noon", backend: AnimaticBackend = PLAIN, **fields) -> list[np.ndarray]:
    return list(backend.generate(request(prompt, **fields)).frames)


def luma(frame: np.ndarray) -> np.ndarray:
    return frame.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)


def mad(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference between two frames, in 8-bit levels."""
    return float(np.abs(a.astype(np.float32) - b.astype(np.float32)).mean())


def shift_between(a: np.ndarray, b: np.ndarray, axis: int, most: int = 30) -> int:
    """How far the picture moved from `a` to `b` along an axis (1: x, 0: y), by best match."""
    la, lb = luma(a), luma(b)
    n = la.shape[axis]
    errors = {}
    for s in range(-most, most + 1):
        if axis == 1:
            pa, pb = la[:, max(0, -s) : n - max(0, s)], lb[:, max(0, s) : n - max(0, -s)]
        else:
            pa, pb = la[max(0, -s) : n - max(0, s)], lb[max(0, s) : n - max(0, -s)]
        errors[s] = float(np.abs(pa - pb).mean())
    return min(errors, key=errors.get)


def scale_between(a: np.ndarray, b: np.ndarray) -> float:
    """How much the picture grew about the centre from `a` to `b`, by best match."""
    h, w = a.shape[:2]

    def zoomed(frame: np.ndarray, s: float) -> np.ndarray:
        bw, bh = w / s, h / s
        box = ((w - bw) / 2, (h - bh) / 2, (w + bw) / 2, (h + bh) / 2)
        return luma(np.asarray(Image.fromarray(frame).resize((w, h), Image.Resampling.BILINEAR, box=box)))

    errors = {}
    for s in np.linspace(1.0, 1.6, 61):
        errors[s] = float(np.abs(zoomed(a, s) - luma(b)).mean())
        errors[1 / s] = float(np.abs(zoomed(b, s) - luma(a)).mean())
    return min(errors, key=errors.get)


def red_mask(frame: np.ndarray) -> np.ndarray:
    r, g, b = (frame[..., i].astype(int) for i in range(3))
    return (r > 140) & (g < 90) & (b < 90)


def red_box(frame: np.ndarray) -> tuple[float, float, int, int]:
    """Centre x, centre y, width and height of the red pixels."""
    ys, xs = np.nonzero(red_mask(frame))
    assert len(xs) > 0, "no red pixels in the frame"
    return float(xs.mean()), float(ys.mean()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)


def specks(frame: np.ndarray) -> int:
    """Pixels clearly brighter than the pixels two steps away on every side."""
    y = np.pad(luma(frame), 2, mode="edge")
    centre = y[2:-2, 2:-2]
    around = (y[:-4, 2:-2] + y[4:, 2:-2] + y[2:-2, :-4] + y[2:-2, 4:]) / 4
    return int((centre - around > 20).sum())


def saturation(frame: np.ndarray) -> float:
    return float((frame.max(axis=-1).astype(int) - frame.min(axis=-1)).mean())


# ---------------------------------------------------------------- the contract


def test_frames_have_the_requested_count_size_and_type_and_stream_lazily():
    result = PLAIN.generate(request(num_frames=10, width=96, height=64))
    assert isinstance(result.frames, types.GeneratorType)  # nothing rendered until asked
    assert result.context_frames == 0
    frames = list(result.frames)
    assert len(frames) == 10
    assert all(f.shape == (64, 96, 3) and f.dtype == np.uint8 for f in frames)


def test_same_request_gives_identical_frames_and_another_seed_another_world():
    first = render("a pine forest at dawn", camera=CameraMove.PAN_LEFT, subjects=(MARA,))
    again = render("a pine forest at dawn", camera=CameraMove.PAN_LEFT, subjects=(MARA,))
    other = render("a pine forest at dawn", camera=CameraMove.PAN_LEFT, subjects=(MARA,), seed=8)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert mad(first[0], other[0]) > 2.0


def test_frames_are_identical_in_a_fresh_process_with_another_hash_seed():
    code = (
        "import hashlib, sys; sys.path.insert(0, '.');"
        "from tests.backends.video.test_animatic import render;"
        "print(hashlib.sha256(b''.join(f.tobytes() for f in render('a village at dusk in the rain', num_frames=4))).hexdigest())"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, check=True)
    here = hashlib.sha256(b"".join(f.tobytes() for f in render("a village at dusk in the rain", num_frames=4))).hexdigest()
    assert out.stdout.strip() == here


def test_clips_longer_than_the_declared_maximum_are_refused_with_a_fix():
    most = int(AnimaticBackend().capabilities.max_clip_seconds * 24)
    assert len(render(num_frames=most, width=32, height=18)) == most
    with pytest.raises(GenerationError) as error:
        PLAIN.generate(request(num_frames=most + 1))  # refused at the call, before any frame
    assert f"at most {most} frames" in error.value.fix


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"width": 161}, "odd side"),
        ({"fps": 5}, "fps 5"),
        ({"shot_offset_frames": 10, "shot_total_frames": 15}, "run past the shot's 15 frames"),
        ({"strategy": "continue_video"}, "needs conditioning"),
    ],
)
def test_bad_requests_name_the_problem_and_the_fix(fields, message):
    with pytest.raises(GenerationError) as error:
        PLAIN.generate(request(**fields))
    assert message in error.value.message
    assert error.value.fix


def test_conditioning_of_the_wrong_size_names_both_sizes():
    frames = np.zeros((2, 180, 320, 3), np.uint8)
    with pytest.raises(GenerationError) as error:
        PLAIN.generate(request(strategy="continue_video", conditioning=frames))
    assert "320x180" in error.value.message and "160x90" in error.value.message
    assert "160x90" in error.value.fix


def test_options_are_typed_and_a_typo_is_an_error_naming_it():
    backend = load_backend("video", "animatic", {"caption": False})
    assert isinstance(backend, AnimaticBackend) and backend.options.caption is False
    with pytest.raises(BackendOptionError) as error:
        load_backend("video", "animatic", {"captoin": False})
    assert "captoin" in str(error.value)


def test_a_clip_encodes_to_an_mp4_that_decodes_to_the_same_picture(tmp_path: Path):
    frames = render("a harbour at sunset with boats", backend=FULL, num_frames=16, width=320, height=180,
                    camera=CameraMove.PAN_RIGHT, subjects=(MARA,), caption="Mara waits by the boats.")  # fmt: skip
    path = tmp_path / "clip.mp4"
    written = media.write_video(path, iter(frames), 320, 180, 24)
    info = media.probe(path)
    assert (written, info.num_frames, info.width, info.height, round(info.fps)) == (16, 16, 320, 180, 24)
    decoded = next(media.read_frames(path))
    assert mad(decoded, frames[0]) < 4.0


# ---------------------------------------------------------------- the words


def test_night_is_darker_than_noon():
    noon = render("a village square at noon", num_frames=1)[0]
    night = render("a village square at night", num_frames=1)[0]
    assert luma(night).mean() < 0.5 * luma(noon).mean()


def test_sunset_warms_the_sky_that_noon_keeps_blue():
    noon = render("open hills at noon", num_frames=1)[0][:20]
    sunset = render("open hills at sunset", num_frames=1)[0][:20]
    assert noon[..., 2].mean() > noon[..., 0].mean() + 20  # blue above
    assert sunset[..., 0].mean() > noon[..., 0].mean() + 20  # redder than noon's


def test_snow_falls_as_bright_specks_and_rain_as_moving_streaks():
    clear = render("a quiet field at dusk", num_frames=3)
    snow = render("a quiet field at dusk in the snow", num_frames=3)
    rain = render("a quiet field at dusk in the rain", num_frames=3)
    assert np.array_equal(clear[0], clear[2])  # nothing moves in a still, clear scene
    ground = slice(60, 90)  # below the horizon, where no star can twinkle
    assert specks(snow[0][ground]) > specks(clear[0][ground]) + 40
    assert mad(snow[0], snow[2]) > 0.5 and mad(rain[0], rain[2]) > 0.5


def test_a_storm_flashes_with_lightning():
    frames = render("a thunderstorm over the city at night", num_frames=96, width=64, height=36)
    brightness = np.array([luma(f).mean() for f in frames])
    assert brightness.max() > np.median(brightness) * 1.8


def test_wind_sways_the_trees():
    calm = render("a pine forest at noon", num_frames=6)
    windy = render("a pine forest at noon, strong wind", num_frames=6)
    assert np.array_equal(calm[0], calm[5])
    assert mad(windy[0], windy[5]) > 0.3


def test_noir_is_grey_and_neon_is_saturated():
    colour = render("a city street at night", num_frames=1)[0]
    noir = render("a city street at night, film noir", num_frames=1)[0]
    neon = render("a city street at night, neon cyberpunk", num_frames=1)[0]
    assert saturation(noir) < 1.0 < saturation(colour)
    assert saturation(neon) > 1.5 * saturation(colour)
    assert neon[..., 0].mean() > colour[..., 0].mean() and neon[..., 2].mean() > colour[..., 2].mean()


@pytest.mark.parametrize(
    ("prompt", "dominant"),
    [("a deep forest at noon", 1), ("the open sea at noon", 2), ("a sandy desert at noon", 0)],
)
def test_the_setting_decides_the_ground_colour(prompt, dominant):
    band = render(prompt, num_frames=1)[0][53:62].astype(float)  # just below the horizon
    means = band.reshape(-1, 3).mean(axis=0)
    assert int(np.argmax(means)) == dominant, means


def test_every_setting_draws_a_different_picture():
    prompts = ["a forest", "a city street", "a beach by the sea", "a mountain peak", "a desert", "a meadow",
               "a village", "a lake", "a library room", "outer space", "the surface of mars", "a cave",
               "somewhere"]  # fmt: skip
    frames = {p: render(f"{p} at noon", num_frames=1)[0] for p in prompts}
    for i, a in enumerate(prompts):
        for b in prompts[i + 1 :]:
            assert mad(frames[a], frames[b]) > 5.0, (a, b)
    scene = FULL.generate(request("a library room at noon")).metadata["scene"]
    assert scene["setting"].startswith("interior") and "library" in scene["setting"]


# ---------------------------------------------------------------- the characters


def test_a_red_raincoat_puts_a_red_figure_on_screen():
    empty = render("a sandy beach at noon", num_frames=1, width=320, height=180)[0]
    with_mara = render("a sandy beach at noon", num_frames=1, width=320, height=180, subjects=(MARA,))[0]
    assert red_mask(empty).sum() == 0
    assert red_mask(with_mara).sum() > 200


def test_description_words_shape_the_figure():
    child = Character(name="Tom", description="a small child in a red coat")
    fox = Character(name="Rusty", description="a red fox")
    frames = {who.name: render("a sandy beach at noon", num_frames=1, width=320, height=180, subjects=(who,))[0]
              for who in (MARA, child, fox)}  # fmt: skip
    _, _, mara_w, mara_h = red_box(frames["Mara"])
    _, _, child_w, child_h = red_box(frames["Tom"])
    _, _, fox_w, fox_h = red_box(frames["Rusty"])
    assert child_h < 0.75 * mara_h  # a child is shorter
    assert mara_h > mara_w and fox_w > fox_h  # a person stands tall, a fox is long


def test_action_verbs_change_how_far_a_figure_moves():
    def path(prompt: str) -> float:
        """How far the red coat travels over one second, turns included."""
        frames = render(prompt, num_frames=24, width=320, height=180, subjects=(MARA,))
        xs = [red_box(f)[0] for f in frames]
        return float(np.abs(np.diff(xs)).sum())

    sits, walks, runs = (path(f"Mara {verb} in the desert at noon") for verb in ("sits", "walks", "runs"))
    assert sits < 0.2 * walks and walks > 20 and runs > 1.8 * walks


def test_a_standing_figure_still_moves_in_a_static_shot():
    frames = render("a sandy desert at noon", num_frames=48, width=320, height=180, subjects=(MARA,))
    changed = np.any(np.stack(frames) != frames[0], axis=(0, -1))
    assert changed.sum() > 50  # breathing, gesturing
    ys, xs = np.nonzero(changed)
    # only the figure changed: a small box around it, the rest of the beach is untouched
    assert (xs.max() - xs.min()) * (ys.max() - ys.min()) < 0.1 * 320 * 180


def test_figures_are_labelled_with_their_names_above_them():
    bare = render("a sandy beach at noon", num_frames=1, width=320, height=180, subjects=(MARA,))[0]
    labelled = render("a sandy beach at noon", num_frames=1, width=320, height=180, subjects=(MARA,),
                      backend=AnimaticBackend(AnimaticBackend.Options(caption=False, camera_tag=False)))[0]  # fmt: skip
    ys, xs = np.nonzero(np.any(bare != labelled, axis=-1))
    fx, fy, _, fh = red_box(bare)
    assert len(ys) > 20
    assert ys.max() < fy - fh / 2  # all of the label is above the coat
    assert abs(xs.mean() - fx) < 20


# ---------------------------------------------------------------- the camera

SHOT = {"num_frames": 24, "shot_offset_frames": 36, "shot_total_frames": 96}  # the middle of a 4 s shot


def test_pan_left_and_pan_right_move_the_picture_in_opposite_directions():
    left = render("a city street at noon", camera=CameraMove.PAN_LEFT, **SHOT)
    right = render("a city street at noon", camera=CameraMove.PAN_RIGHT, **SHOT)
    assert shift_between(left[0], left[-1], axis=1) >= 3  # the scene slides right as the camera turns left
    assert shift_between(right[0], right[-1], axis=1) <= -3


def test_tilt_up_and_tilt_down_move_the_picture_vertically():
    up = render("a city street at noon", camera=CameraMove.TILT_UP, **SHOT)
    down = render("a city street at noon", camera=CameraMove.TILT_DOWN, **SHOT)
    assert shift_between(up[0], up[-1], axis=0) >= 2
    assert shift_between(down[0], down[-1], axis=0) <= -2
    assert shift_between(up[0], up[-1], axis=1) == 0


def test_zoom_in_magnifies_the_centre_and_zoom_out_shrinks_it():
    zoom_in = render("a mountain peak at noon", camera=CameraMove.ZOOM_IN, **SHOT)
    zoom_out = render("a mountain peak at noon", camera=CameraMove.ZOOM_OUT, **SHOT)
    assert scale_between(zoom_in[0], zoom_in[-1]) > 1.05
    assert scale_between(zoom_out[0], zoom_out[-1]) < 1 / 1.05


def test_a_static_shot_holds_the_picture_still():
    frames = render("a city street at noon", camera=CameraMove.STATIC, **SHOT)
    assert all(np.array_equal(frames[0], f) for f in frames)


@pytest.mark.parametrize("move", [m for m in CameraMove if m is not CameraMove.STATIC])
def test_every_camera_move_moves_the_picture(move):
    frames = render("a village at noon", camera=move, **SHOT)
    assert mad(frames[0], frames[-1]) > 1.0


def test_dolly_zoom_keeps_the_subject_the_same_size_while_the_background_scales():
    fields = {"subjects": (Character(name="Mara", description="a woman in a red coat who sits"),), "width": 320, "height": 180}
    dolly = render("Mara sits on the beach at noon", camera=CameraMove.DOLLY_ZOOM, **SHOT, **fields)
    zoom = render("Mara sits on the beach at noon", camera=CameraMove.ZOOM_IN, **SHOT, **fields)
    dolly_growth = red_box(dolly[-1])[3] / red_box(dolly[0])[3]
    zoom_growth = red_box(zoom[-1])[3] / red_box(zoom[0])[3]
    assert abs(dolly_growth - 1) < 0.05 and zoom_growth > 1.08
    sky = slice(0, 60)  # the background above the subject does change
    assert mad(dolly[0][sky], dolly[-1][sky]) > 1.0


def test_a_tracking_shot_keeps_the_walker_in_frame_while_the_ground_scrolls():
    frames = render("Mara walks along a street at noon", camera=CameraMove.TRACKING_SHOT, width=320, height=180,
                    subjects=(MARA,), **SHOT)  # fmt: skip
    assert abs(red_box(frames[-1])[0] - red_box(frames[0])[0]) < 3
    ground = slice(140, 180)
    assert abs(shift_between(frames[0][ground], frames[-1][ground], axis=1)) >= 5


def test_a_move_continues_smoothly_across_the_clips_of_one_shot():
    shot = {"camera": CameraMove.PAN_RIGHT, "shot_total_frames": 48, "num_frames": 24}
    first = render("a city street at noon", shot_offset_frames=0, **shot)
    second = render("a city street at noon", shot_offset_frames=24, **shot)
    inside = [mad(a, b) for clip in (first, second) for a, b in zip(clip, clip[1:])]
    assert mad(first[-1], second[0]) < 3 * np.median(inside)
    whole = render("a city street at noon", shot_offset_frames=0, **{**shot, "num_frames": 48})
    assert all(np.array_equal(a, b) for a, b in zip(whole, first + second))


# ---------------------------------------------------------------- starting from frames


def test_image_to_video_starts_on_the_given_frame_then_dissolves_into_the_scene():
    given = render("a city street at night", num_frames=1)[0]
    result = PLAIN.generate(request("a sandy beach at noon", strategy="image_to_video", conditioning=given[None],
                                    camera=CameraMove.PAN_LEFT, num_frames=24))  # fmt: skip
    frames = list(result.frames)
    plain = render("a sandy beach at noon", camera=CameraMove.PAN_LEFT, num_frames=24)
    assert result.context_frames == 1 and len(frames) == 25
    assert np.array_equal(frames[0], given)
    steps = [mad(a, b) for a, b in zip(frames, frames[1:])]
    assert max(steps) < 0.25 * mad(given, plain[0])  # a dissolve, not a cut
    assert np.array_equal(frames[-1], plain[-1])  # and then the scene itself


def test_continue_video_picks_up_the_shot_from_its_decoded_tail(tmp_path: Path):
    shot = {"camera": CameraMove.PAN_LEFT, "shot_total_frames": 48, "num_frames": 24, "subjects": (MARA,)}
    first = render("Mara walks through a pine forest at dawn", shot_offset_frames=0, **shot)
    media.write_video(tmp_path / "one.mp4", iter(first), 160, 90, 24)
    tail = media.last_frames(tmp_path / "one.mp4", 1)
    result = PLAIN.generate(request("Mara walks through a pine forest at dawn", shot_offset_frames=24,
                                    strategy="continue_video", conditioning=tail, **shot))  # fmt: skip
    second = list(result.frames)
    plain = render("Mara walks through a pine forest at dawn", shot_offset_frames=24, **shot)
    assert result.context_frames == 0 and len(second) == 24
    inside = np.median([mad(a, b) for a, b in zip(first, first[1:])])
    assert mad(tail[0], second[0]) < 3 * inside
    assert np.array_equal(second[-1], plain[-1])


def test_a_continuation_from_the_very_frame_the_shot_shows_there_is_the_shot_itself():
    """Nothing to join: the seam adds exactly nothing (no rounding, no drift of colour)."""
    shot = {"camera": CameraMove.PAN_LEFT, "shot_total_frames": 48, "num_frames": 24, "subjects": (MARA,)}
    first = render("Mara walks through a pine forest at dawn", shot_offset_frames=0, **shot)
    second = render("Mara walks through a pine forest at dawn", shot_offset_frames=24, strategy="continue_video",
                    conditioning=first[-1][None], **shot)  # fmt: skip
    plain = render("Mara walks through a pine forest at dawn", shot_offset_frames=24, **shot)
    assert all(np.array_equal(a, b) for a, b in zip(second, plain, strict=True))


def test_what_only_the_tail_shows_fades_where_the_camera_carries_it():
    """A mark on the given frame that the scene does not have dissolves in place on the scene: it moves with
    the pan, as the picture around it does, while it fades."""
    shot = {"camera": CameraMove.PAN_LEFT, "shot_total_frames": 48, "num_frames": 24}
    first = render("a city street at noon", shot_offset_frames=0, **shot)
    tail = first[-1].copy()
    tail[40:50, 70:80] = (255, 0, 255)
    frames = render("a city street at noon", shot_offset_frames=24, strategy="continue_video",
                    conditioning=tail[None], **shot)  # fmt: skip
    plain = render("a city street at noon", shot_offset_frames=24, **shot)
    k = 5  # half a second in: the mark at half strength
    marked = np.abs(frames[k].astype(int) - plain[k]).sum(axis=2) > 60
    ys, xs = np.nonzero(marked)
    moved = shift_between(first[-1], plain[k], axis=1)
    assert moved != 0  # the pan moved the street meanwhile
    assert abs(xs.mean() - (74.5 + moved)) <= 1.0 and abs(ys.mean() - 44.5) <= 1.0
    assert not (np.abs(frames[-1].astype(int) - plain[-1]).sum(axis=2) > 60).any()  # and it is gone


def test_a_backend_draws_a_shot_once_and_its_later_clips_are_what_a_new_backend_makes(monkeypatch):
    """The scenery of a shot is kept for its next clips (and another take's beside it), never changing a frame."""
    # little memory for the pan's copies moved by fractions of a pixel: which ones a clip gets must not
    # depend on the clips the backend made before
    monkeypatch.setattr(animatic, "PHASE_MEMORY", 1 << 17)  # one copy of this pan's picture
    backend = AnimaticBackend(PLAIN.options)
    pan = {"camera": CameraMove.PAN_LEFT, "shot_total_frames": 72, "num_frames": 24, "subjects": (MARA,)}
    first = render("Mara walks down a city street at noon", backend, shot_offset_frames=0, **pan)
    drawn = backend.sceneries.find(Sceneries.shot_of(request("Mara walks down a city street at noon", **pan)))
    assert drawn is not None
    # another take of the shot (another seed) made in between: kept beside it
    other = render("Mara walks down a city street at noon", backend, seed=8, shot_offset_frames=0, **pan)
    assert all(np.array_equal(a, b) for a, b in zip(other, render(
        "Mara walks down a city street at noon", AnimaticBackend(PLAIN.options), seed=8, shot_offset_frames=0, **pan)))
    second = render("Mara walks down a city street at noon", backend, shot_offset_frames=24, strategy="continue_video",
                    conditioning=first[-1][None], **pan)  # fmt: skip
    assert backend.sceneries.find(Sceneries.shot_of(request("Mara walks down a city street at noon", **pan))) is drawn
    fresh = render("Mara walks down a city street at noon", AnimaticBackend(PLAIN.options), shot_offset_frames=24,
                   strategy="continue_video", conditioning=first[-1][None], **pan)  # fmt: skip
    assert all(np.array_equal(a, b) for a, b in zip(second, fresh, strict=True))
    # a loop's closing clip films its own lap: drawn for it, and still the same frames as a new backend's
    closing = {"shot_offset_frames": 48, "strategy": "loop_close", "conditioning": second[-1][None],
               "end_conditioning": first[0][None], **pan}  # fmt: skip
    looped = render("Mara walks down a city street at noon", backend, **closing)
    assert all(np.array_equal(a, b) for a, b in zip(
        looped, render("Mara walks down a city street at noon", AnimaticBackend(PLAIN.options), **closing), strict=True))
    assert len(backend.sceneries) == 2  # the two newest: the shot and its loop's lap (the other take's went)


def test_a_continuation_with_a_new_prompt_fades_from_the_tail_into_it():
    shot = {"shot_total_frames": 48, "num_frames": 24}
    day = render("a village at noon", shot_offset_frames=0, **shot)
    night = PLAIN.generate(request("a village at night", shot_offset_frames=24, strategy="continue_video",
                                   conditioning=np.stack(day[-2:]), **shot))  # fmt: skip
    frames = list(night.frames)
    steps = [mad(a, b) for a, b in zip(frames, frames[1:])]
    assert mad(day[-1], frames[0]) < 0.1 * mad(day[-1], frames[-1])  # no jump at the seam
    assert max(steps) < 0.2 * mad(day[-1], frames[-1])  # a gradual change
    assert luma(frames[-1]).mean() < 0.5 * luma(day[-1]).mean()  # that ends at night


def test_a_six_segment_chain_does_not_drift_in_colour(tmp_path: Path):
    shot = {"camera": CameraMove.PAN_RIGHT, "shot_total_frames": 72, "num_frames": 12, "subjects": (MARA,)}
    prompt = "Mara walks along the sea at sunset"
    chain = [render(prompt, shot_offset_frames=0, **shot)]
    for segment in range(1, 6):
        path = tmp_path / f"{segment}.mp4"
        media.write_video(path, iter(chain[-1]), 160, 90, 24)
        result = PLAIN.generate(request(prompt, shot_offset_frames=12 * segment, strategy="continue_video",
                                        conditioning=media.last_frames(path, 1), **shot))  # fmt: skip
        chain.append(list(result.frames))
    reference = render(prompt, shot_offset_frames=0, **{**shot, "num_frames": 72})
    for segment, frames in enumerate(chain):
        pure = reference[12 * segment + 11]
        assert np.abs(frames[-1].reshape(-1, 3).mean(0) - pure.reshape(-1, 3).mean(0)).max() < 0.5


# ---------------------------------------------------------------- ending on frames: backward extension and loops

EARLIER = "Mara walks through a pine forest at dawn"
DUSK = "Mara walks through a pine forest at dusk"
PAN_SHOT = {"camera": CameraMove.PAN_LEFT, "subjects": (MARA,), "fps": 12, "shot_total_frames": 48}


def through_mp4(frames: list[np.ndarray], path: Path) -> list[np.ndarray]:
    """Encode frames to a real mp4 and decode them back, as the pipeline does with every parent."""
    media.write_video(path, iter(frames), frames[0].shape[1], frames[0].shape[0], 12)
    return list(media.read_frames(path))


def median_step(*clips: list[np.ndarray]) -> float:
    """The ordinary change between consecutive frames inside the clips."""
    return float(np.median([mad(a, b) for clip in clips for a, b in zip(clip, clip[1:])]))


@pytest.mark.parametrize("decoded", [False, True], ids=["frames", "mp4"])
def test_extend_backward_renders_what_came_before_and_leads_into_the_head(tmp_path: Path, decoded: bool):
    later = render(EARLIER, shot_offset_frames=24, num_frames=24, **PAN_SHOT)  # shot frames 24..47
    if decoded:
        later = through_mp4(later, tmp_path / "later.mp4")
    result = PLAIN.generate(request(EARLIER, strategy="extend_backward", end_conditioning=np.stack(later[:2]),
                                    shot_offset_frames=0, num_frames=24, **PAN_SHOT))  # fmt: skip
    before = list(result.frames)
    if decoded:
        before = through_mp4(before, tmp_path / "before.mp4")
    assert result.context_frames == 0 and len(before) == 24  # the given head is not repeated
    # played before -> later, the join is an ordinary step
    assert mad(before[-1], later[0]) < 2.5 * median_step(before, later)
    # and its start is really earlier, not a copy of the head: the pan had not yet turned left
    assert shift_between(before[0], later[0], axis=1) >= 8  # the scene sits further left
    assert mad(before[0], later[0]) > 3 * median_step(before, later)


def test_extend_backward_fades_into_a_head_that_looks_different(tmp_path: Path):
    # the head was made from another prompt: what the renderer would draw there is far from it
    later = through_mp4(render(DUSK, shot_offset_frames=24, num_frames=24, **PAN_SHOT), tmp_path / "later.mp4")
    before = through_mp4(render(EARLIER, strategy="extend_backward", end_conditioning=np.stack(later[:1]),
                                shot_offset_frames=0, num_frames=24, **PAN_SHOT), tmp_path / "before.mp4")  # fmt: skip
    steps = [mad(a, b) for a, b in zip(before, before[1:])]
    assert mad(before[-1], later[0]) < 2.5 * median_step(before, later)  # no jump into the head
    assert max(steps) < 0.25 * mad(before[0], later[0])  # but a gradual change toward it
    assert luma(before[0]).mean() > luma(later[0]).mean() + 20  # from its own dawn light


def test_a_loop_closes_back_into_its_first_frame_while_the_camera_pans(tmp_path: Path):
    assert PLAIN.capabilities.last_frame and PLAIN.capabilities.extend_backward  # what the planner reads
    segment = {**PAN_SHOT, "num_frames": 16}
    first = through_mp4(render(EARLIER, shot_offset_frames=0, **segment), tmp_path / "0.mp4")
    second = through_mp4(render(EARLIER, shot_offset_frames=16, strategy="continue_video",
                                conditioning=np.stack(first[-1:]), **segment), tmp_path / "1.mp4")  # fmt: skip
    closing = through_mp4(render(EARLIER, shot_offset_frames=32, strategy="loop_close", conditioning=np.stack(second[-1:]),
                                 end_conditioning=np.stack(first[:1]), **segment), tmp_path / "2.mp4")  # fmt: skip
    plain_end = render(EARLIER, shot_offset_frames=32, strategy="continue_video", conditioning=np.stack(second[-1:]), **segment)
    inside = median_step(first, second, closing)

    # 1. both joins of the closing clip are ordinary steps, the wrap-around included
    assert mad(second[-1], closing[0]) < 2.5 * inside
    assert mad(closing[-1], first[0]) < 2.5 * inside
    # an ordinary continuation would jump back at the wrap: the pan does not return by itself
    assert mad(plain_end[-1], first[0]) > 2.5 * inside
    # 2. the camera really moves during the loop: it pans left, then pans back (by mid-clip
    # it is well on its way, rather than cross-fading the whole move at the very end)
    assert shift_between(first[0], second[-1], axis=1) >= 8
    assert shift_between(second[-1], closing[8], axis=1) <= -8


def test_an_evolving_loop_fades_back_into_its_first_light(tmp_path: Path):
    segment = {**PAN_SHOT, "num_frames": 16}
    first = through_mp4(render(EARLIER, shot_offset_frames=0, **segment), tmp_path / "0.mp4")  # dawn
    second = through_mp4(render(DUSK, shot_offset_frames=16, strategy="continue_video",
                                conditioning=np.stack(first[-1:]), **segment), tmp_path / "1.mp4")  # fmt: skip
    closing = through_mp4(render(DUSK, shot_offset_frames=32, strategy="loop_close", conditioning=np.stack(second[-1:]),
                                 end_conditioning=np.stack(first[:1]), **segment), tmp_path / "2.mp4")  # fmt: skip
    inside = median_step(first, second, closing)
    assert luma(closing[0]).mean() < luma(first[0]).mean() - 20  # the closing clip starts at dusk
    assert mad(closing[-1], first[0]) < 2.5 * inside  # and ends leading into the dawn it began with


def test_a_loop_brings_a_pacing_figure_back_to_where_she_started_without_a_double_image():
    prompt = "Mara walks in the desert at noon"  # she paces to and fro
    segment = {**PAN_SHOT, "camera": CameraMove.STATIC, "num_frames": 16, "width": 320, "height": 180}
    first = render(prompt, shot_offset_frames=0, **segment)
    second = render(prompt, shot_offset_frames=16, strategy="continue_video", conditioning=np.stack(first[-1:]), **segment)
    closing = render(prompt, shot_offset_frames=32, strategy="loop_close", conditioning=np.stack(second[-1:]),
                     end_conditioning=np.stack(first[:1]), **segment)  # fmt: skip
    xs = [red_box(f)[0] for f in first + second + closing]
    width = red_box(first[0])[2]
    assert all(red_box(f)[2] < 1.4 * width for f in closing)  # one Mara all along, never two cross-fading
    assert abs(xs[-1] - xs[0]) < 2 * np.median(np.abs(np.diff(xs)))  # the wrap is one ordinary step
    assert max(xs) - min(xs) > 40  # and she really walks during the loop


@pytest.mark.parametrize(
    ("fields", "argument"),
    [
        ({"strategy": "extend_backward"}, "end_conditioning"),
        ({"strategy": "loop_close", "conditioning": np.zeros((1, 90, 160, 3), np.uint8)}, "end_conditioning"),
        ({"strategy": "loop_close", "end_conditioning": np.zeros((1, 90, 160, 3), np.uint8)}, "conditioning"),
    ],
)
def test_ending_on_frames_without_them_names_the_missing_argument(fields, argument):
    with pytest.raises(GenerationError) as error:
        PLAIN.generate(request(shot_offset_frames=12, shot_total_frames=24, **fields))
    assert f"needs {argument} frames" in error.value.message
    assert f"as {argument}" in error.value.fix


def test_end_conditioning_of_the_wrong_size_names_the_argument_and_both_sizes():
    head = np.zeros((1, 180, 320, 3), np.uint8)
    with pytest.raises(GenerationError) as error:
        PLAIN.generate(request(strategy="extend_backward", end_conditioning=head, shot_total_frames=24))
    assert "end_conditioning" in error.value.message and "320x180" in error.value.message
    assert "160x90" in error.value.fix


@pytest.mark.parametrize(
    ("fields", "message", "fix"),
    [
        ({"strategy": "extend_backward", "shot_total_frames": 12}, "the shot has only 12 frames", "shot_total_frames"),
        ({"strategy": "extend_backward"}, "shot_total_frames is not given", "shot_total_frames"),
        ({"strategy": "loop_close", "conditioning": np.zeros((1, 90, 160, 3), np.uint8), "shot_total_frames": 36},
         "end before the shot's 36 frames", "shot_offset_frames + num_frames == shot_total_frames"),
    ],
)  # fmt: skip
def test_a_clip_that_cannot_lead_into_its_frames_says_where_it_must_stand(fields, message, fix):
    head = np.zeros((1, 90, 160, 3), np.uint8)
    with pytest.raises(GenerationError) as error:
        PLAIN.generate(request(end_conditioning=head, **fields))
    assert message in error.value.message
    assert fix in error.value.fix


# ---------------------------------------------------------------- the overlays


def test_the_caption_band_scales_with_the_frame_and_holds_white_text():
    def band_rows(width: int, height: int) -> tuple[int, np.ndarray]:
        fields = {"num_frames": 1, "width": width, "height": height, "caption": "The storm rolls in over the harbour."}
        with_caption = render("a harbour at noon", backend=AnimaticBackend(AnimaticBackend.Options(labels=False, camera_tag=False)), **fields)[0]
        without = render("a harbour at noon", **fields)[0]
        rows = np.nonzero(np.any(with_caption != without, axis=(1, 2)))[0]
        return len(rows), with_caption[rows.min() :]

    small_rows, small_band = band_rows(320, 180)
    large_rows, _ = band_rows(1280, 720)
    assert 3.0 < large_rows / small_rows < 5.0
    assert (luma(small_band) > 200).sum() > 30  # the letters


def test_the_camera_tag_sits_in_the_top_left_corner():
    tagged = render("a harbour at noon", backend=AnimaticBackend(AnimaticBackend.Options(caption=False, labels=False)),
                    camera=CameraMove.ZOOM_IN, num_frames=1, width=320, height=180)[0]  # fmt: skip
    plain = render("a harbour at noon", camera=CameraMove.ZOOM_IN, num_frames=1, width=320, height=180)[0]
    ys, xs = np.nonzero(np.any(tagged != plain, axis=-1))
    assert ys.max() < 30 and xs.max() < 160


def test_portrait_frames_render_the_same_scene_upright():
    frames = render("a lighthouse by the sea at dusk", backend=FULL, width=90, height=160, num_frames=4,
                    subjects=(MARA,), caption="Mara climbs the lighthouse stairs.")  # fmt: skip
    assert frames[0].shape == (160, 90, 3)


def test_lightning_never_flashes_on_a_seam_but_still_flashes_after_it():
    """A flash that falls where a continuation meets its tail would read as a jump at the seam."""
    backend = load_backend("video", "animatic")
    prompt = "a dark moor at night, a thunderstorm, lightning flashes in the background, static shot"
    fps, total = 12, 96
    for seed in range(20):  # the flashes' moments come from the seed: take one that flashes mid-clip
        plain = ClipRequest(prompt=prompt, seed=seed, width=96, height=54, fps=fps, num_frames=48,
                            shot_offset_frames=48, shot_total_frames=total)  # fmt: skip
        frames = list(backend.generate(plain).frames)
        means = np.array([f.mean() for f in frames])
        flashes = np.flatnonzero(means > np.median(means) + 15)
        if flashes.size and flashes[0] >= 1 and flashes[0] < 48 - 2 * fps:
            break
    assert flashes.size, "the prompt asks for lightning"
    # continue the shot from a frame just before the first flash: the seam must stay dark
    start = 48 + int(flashes[0])
    tail = np.stack(frames[int(flashes[0]) - 1 : int(flashes[0])])
    cont = ClipRequest(prompt=prompt, seed=seed, width=96, height=54, fps=fps, num_frames=total - start,
                       shot_offset_frames=start, shot_total_frames=total, strategy="continue_video",
                       conditioning=tail)  # fmt: skip
    after = [f.mean() for f in backend.generate(cont).frames]
    quiet = round(0.5 * fps)
    assert max(after[:quiet]) < np.median(means) + 10  # no flash in the seam's half second
    later = [k for k in (flashes + 48) if k >= start + quiet]
    for k in later:  # flashes further on are where they always were
        assert after[k - start] > np.median(means) + 15


def test_tilt_shift_blurs_the_top_and_bottom_and_keeps_the_middle_sharp():
    from storyflow.core.models import LensEffect

    def edges(rows: np.ndarray) -> float:  # how much neighbouring pixels differ: detail
        y = luma(rows)
        return float(np.abs(np.diff(y, axis=1)).mean() + np.abs(np.diff(y, axis=0)).mean())

    prompt = "a city street at noon"  # windows, doors and the kerb: detail down to the bottom
    sharp = render(prompt, num_frames=1, width=320, height=180)[0]
    miniature = render(prompt, num_frames=1, width=320, height=180, effects=(LensEffect.TILT_SHIFT,))[0]
    bottom, middle = slice(160, 180), slice(80, 100)
    assert edges(miniature[bottom]) < 0.6 * edges(sharp[bottom])
    assert edges(miniature[middle]) > 0.8 * edges(sharp[middle])


def test_a_figure_climbing_with_an_umbrella_is_drawn():
    # the rope a climber holds used to leave the figure's top as a tuple, and the umbrella then failed on it
    climber = Character(name="Mara", description="a tall woman in a red raincoat with an umbrella")
    frame = render("Mara climbs the cliff in the rain", num_frames=1, width=320, height=180, subjects=(climber,))[0]
    assert red_mask(frame).sum() > 100
