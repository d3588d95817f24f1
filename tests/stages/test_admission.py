"""A storyboard bigger than this machine allows is refused before anything is made, naming the limit."""

from __future__ import annotations

import pytest

from storyflow.backends.registry import load_backend
from storyflow.core.config import Limits
from storyflow.core.errors import InputError
from storyflow.stages.admission import check_storyboard_size
from tests.stages.test_generate import make_board, shot


def test_too_many_shots_names_the_setting():
    board = make_board(*(shot(i, 2.0) for i in range(1, 6)))
    check_storyboard_size(board, Limits(max_shots=5))
    with pytest.raises(InputError, match="the storyboard has 5 shots, more than the 4 allowed") as caught:
        check_storyboard_size(board, Limits(max_shots=4))
    assert "STORYFLOW_MAX_SHOTS" in caught.value.fix


def test_a_film_too_long_names_its_longest_shot():
    board = make_board(shot(1, 3.0), shot(2, 99999.0))  # what a [99999s] timing marker plans
    with pytest.raises(InputError, match=r"the film would last 27 h 46 min, longer than the 2 h 00 min allowed "
                                         r"\(its longest shot, s02, lasts 27 h 46 min\)") as caught:  # fmt: skip
        check_storyboard_size(board, Limits())
    assert "STORYFLOW_MAX_FILM_SECONDS" in caught.value.fix


def test_clips_are_counted_as_generation_splits_them_every_take_included():
    caps = load_backend("video", "animatic").capabilities
    board = make_board(shot(1, 2.0), shot(2, 40.0))  # a 40 s shot is several segments
    check_storyboard_size(board, Limits(max_segments=40), caps)
    with pytest.raises(InputError, match="more than 20 clips from the video backend \\(4 takes of each segment\\)") as caught:
        check_storyboard_size(board, Limits(max_segments=20), caps, candidates=4)
    assert "--candidates" in caught.value.fix and "STORYFLOW_MAX_SEGMENTS" in caught.value.fix
