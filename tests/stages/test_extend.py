"""Segment planning: as few segments as the backend allows, strategies from capabilities."""

from __future__ import annotations

import logging

import pytest

from storyflow.backends.base import VideoCapabilities
from storyflow.core.errors import GenerationError
from storyflow.stages.extend import plan_segments

NATIVE = VideoCapabilities(max_clip_seconds=4, image_to_video=True, extend_from_video=True)
I2V_ONLY = VideoCapabilities(max_clip_seconds=4, image_to_video=True)
T2V_ONLY = VideoCapabilities(max_clip_seconds=4)


def test_a_twelve_second_shot_on_a_four_second_backend_is_three_segments():
    plans = plan_segments(12 * 24, 24, NATIVE)
    assert [(p.offset, p.frames) for p in plans] == [(0, 96), (96, 96), (192, 96)]
    assert [p.strategy for p in plans] == ["text_to_video", "continue_video", "continue_video"]


def test_uneven_lengths_are_spread_evenly():
    plans = plan_segments(97, 24, NATIVE)  # one frame over 4 s
    assert [p.frames for p in plans] == [49, 48]
    assert sum(p.frames for p in plans) == 97


def test_short_shot_is_one_segment():
    assert [(p.frames, p.strategy) for p in plan_segments(30, 24, NATIVE)] == [(30, "text_to_video")]


def test_strategy_follows_capabilities(caplog):
    assert [p.strategy for p in plan_segments(200, 24, I2V_ONLY)][1:] == ["last_frame_i2v"] * 2
    with caplog.at_level(logging.WARNING, logger="storyflow.stages.extend"):
        plans = plan_segments(200, 24, T2V_ONLY, continues_previous=True)
    assert {p.strategy for p in plans} == {"text_to_video"}
    assert "cannot continue a clip" in caplog.text and "cannot start from a frame" in caplog.text


def test_continuing_shot_starts_from_a_frame():
    plans = plan_segments(200, 24, NATIVE, continues_previous=True)
    assert plans[0].strategy == "image_to_video" and plans[0].conditioned


def test_bad_lengths_are_refused():
    with pytest.raises(GenerationError, match="at least one frame"):
        plan_segments(0, 24, NATIVE)
    with pytest.raises(GenerationError, match="shorter than one frame"):
        plan_segments(10, 8, VideoCapabilities(max_clip_seconds=0.1))
