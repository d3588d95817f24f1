"""The check before generation: a model's length, size and rate rules applied, every correction said.

A backend here declares the rules of a real model (Wan: 16 fps, 4k+1 frames, sides in
multiples of 16; Veo: 4, 6 or 8 s), makes exactly what it is asked for, and the film still
gets its own size, rate and length, with every correction on the clip's record.
"""

from __future__ import annotations

import numpy as np
import pytest

from storyflow import media
from storyflow.backends.base import GeneratedVideo, VideoBackend, VideoCapabilities
from storyflow.catalog import Generations
from storyflow.core.errors import GenerationError
from storyflow.core.models import CameraMove, ClipRequest
from storyflow.stages.conform import Conformed, conform
from storyflow.stages.extend import plan_segments, segment_lengths
from storyflow.stages.generate import generate_chain
from tests.stages.test_generate import make_board, prompt, shot

WAN_LIKE = VideoCapabilities(max_clip_seconds=5.0, fps=(16,), frame_step=4, frame_offset=1, size_multiple=16)
VEO_LIKE = VideoCapabilities(max_clip_seconds=8.0, durations=(4.0, 6.0, 8.0))


def request(frames=48, fps=24, width=640, height=360) -> ClipRequest:
    return ClipRequest(prompt="a lighthouse", seed=1, width=width, height=height, fps=fps, num_frames=frames,
                       camera=CameraMove.STATIC)  # fmt: skip


def test_a_wan_like_backend_is_asked_for_its_rate_length_and_size_and_each_change_is_said():
    plan = conform(request(frames=48, fps=24), WAN_LIKE, "wan-like")
    # 2 s of film at 24 fps = 32 frames at 16 fps, snapped up to 33 (4k+1); 360 px -> a multiple of 16
    assert (plan.fps, plan.frames, plan.width, plan.height, plan.keep) == (16, 33, 640, 352, 48)
    kinds = [kind for kind, _ in plan.corrections]
    assert kinds == ["rate", "length", "size"]
    assert "made at 16 fps" in plan.sentences[0] and "24 fps" in plan.sentences[0]
    assert "33 frames" in plan.sentences[1] and "4k+1" in plan.sentences[1] and "last 1 trimmed" in plan.sentences[1]
    assert "640x352" in plan.sentences[2] and "multiples of 16" in plan.sentences[2] and "640x360" in plan.sentences[2]


def test_nothing_is_corrected_when_the_film_already_fits_the_rules():
    plan = conform(request(frames=33, fps=16, width=640, height=352), WAN_LIKE, "wan-like")
    assert plan.corrections == () and (plan.fps, plan.frames, plan.width, plan.height) == (16, 33, 640, 352)


def test_fixed_durations_plan_segments_that_waste_least():
    fps = 24
    assert segment_lengths(VEO_LIKE, fps) == [96, 144, 192]  # 4, 6 and 8 s
    ten = plan_segments(10 * fps, fps, VEO_LIKE)
    assert [p.frames for p in ten] == [144, 96]  # 6 s + 4 s: nothing to trim, not 5 s + 5 s made as 6 s + 6 s
    nine = plan_segments(9 * fps, fps, VEO_LIKE)
    assert [p.frames for p in nine] == [144, 72]  # 6 s + 4 s made, 1 s trimmed: the least two segments can waste
    assert conform(request(frames=72, fps=fps), VEO_LIKE, "veo-like").frames == 96  # the short one asks for 4 s


def test_frame_rules_bound_the_longest_segment_at_the_films_rate():
    # 5 s at 16 fps = 80 frames -> the longest 4k+1 is 77 -> 115 film frames at 24 fps
    assert segment_lengths(WAN_LIKE, 24) == [115]
    plans = plan_segments(240, 24, WAN_LIKE)
    assert len(plans) == 3 and all(conform(request(frames=p.frames), WAN_LIKE, "w").frames <= 77 for p in plans)


def test_conformed_frames_are_retimed_trimmed_and_fitted_to_the_film():
    req = request(frames=48, fps=24)
    plan = conform(req, WAN_LIKE, "wan-like")
    # backend frame i carries its own index in its pixels
    made = [np.full((plan.height, plan.width, 3), i, np.uint8) for i in range(plan.frames)]
    answer = Conformed(made, plan, req, "wan-like")
    frames = list(answer)
    answer.check("s01")
    assert len(frames) == 48 and all(f.shape == (360, 640, 3) for f in frames)
    shown = [int(f[180, 320, 0]) for f in frames]
    assert shown == [i * 16 // 24 for i in range(48)]  # each film frame shows the backend frame on screen then
    assert answer.received == 33 and answer.extra == []


def test_a_backend_that_answers_at_another_size_is_fitted_and_that_is_said():
    req = request(frames=12, fps=16, width=640, height=352)
    plan = conform(req, WAN_LIKE, "wan-like")
    answer = Conformed([np.zeros((300, 500, 3), np.uint8)] * plan.frames, plan, req, "wan-like")
    assert all(f.shape == (352, 640, 3) for f in answer)
    assert answer.extra and "answered with 500x300 frames" in answer.extra[0][1]


def test_too_few_frames_is_a_backend_error():
    req = request(frames=48, fps=24)
    plan = conform(req, WAN_LIKE, "wan-like")
    answer = Conformed([np.zeros((352, 640, 3), np.uint8)] * 20, plan, req, "wan-like")
    list(answer)
    with pytest.raises(GenerationError, match="returned 20 frames for shot s01, expected 33"):
        answer.check("s01")


class WanLike(VideoBackend):
    """Makes exactly what it is asked: N frames of W x H, and only what Wan's rules allow."""

    name = "wan-like"

    @property
    def capabilities(self) -> VideoCapabilities:
        return VideoCapabilities(max_clip_seconds=2.0, fps=(16,), frame_step=4, frame_offset=1, size_multiple=16,
                                 image_to_video=True, cost_per_second=0.05)  # fmt: skip

    def generate(self, request: ClipRequest) -> GeneratedVideo:
        assert request.fps == 16 and (request.num_frames - 1) % 4 == 0
        assert request.width % 16 == 0 and request.height % 16 == 0 and request.num_frames <= 33
        if request.conditioning is not None:  # conditioning frames arrive at the size the model makes
            assert request.conditioning.shape[1:3] == (request.height, request.width)
        return GeneratedVideo(frames=(np.full((request.height, request.width, 3), 20 * i % 255, np.uint8)
                                      for i in range(request.num_frames)))  # fmt: skip


def test_a_chain_made_by_a_rule_bound_backend_has_the_films_size_rate_and_length(tmp_path, caplog):
    long = shot(1, 5.0)  # 60 frames at 12 fps: 2 s segments at most -> 3 segments
    board = make_board(long).model_copy(update={"width": 96, "height": 54})
    with caplog.at_level("WARNING", logger="storyflow.stages.conform"):
        chain = generate_chain(long, prompt("s01"), board, WanLike(), tmp_path, Generations.in_memory())
    assert sum(c.num_frames for c in chain.clips) == 60
    for clip in chain.clips:
        info = media.probe(clip.path)
        assert (info.width, info.height, round(info.fps), info.num_frames) == (96, 54, 12, clip.num_frames)
        assert any("made at 16 fps" in c for c in clip.corrections)
        assert any("96x48" in c and "96x54" in c for c in clip.corrections)
        assert clip.cost_usd == pytest.approx(0.05 * 29 / 16)  # 20 film frames = 27 at 16 fps, made as 29 (4k+1)
    assert chain.clips[1].strategy == "last_frame_i2v"
    # warned once per kind of correction, however many clips it applies to
    assert caplog.text.count("made at 16 fps") == 1
