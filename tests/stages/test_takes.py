"""Takes (--candidates N): several tries at a shot, each its own seed and clips, scored; one played, all kept."""

from __future__ import annotations

import numpy as np
import pytest

from storyflow import media
from storyflow.backends.registry import load_backend
from storyflow.catalog import Generations
from storyflow.core.errors import InputError
from storyflow.core.models import Clip, ClipChain, TakeScore
from storyflow.stages.takes import load_scorer, make_takes, measured, take_measures
from tests.stages.test_generate import make_board, prompt, shot


@pytest.fixture
def animatic():
    return load_backend("video", "animatic")


def test_three_candidates_are_three_chains_from_three_seeds_and_the_best_scored_plays(tmp_path, animatic):
    long = shot(1, 5.0)  # two segments on a 4 s backend: a take is a whole chain
    board = make_board(long)
    door = Generations.in_memory()
    made = make_takes(long, prompt("s01"), board, animatic, tmp_path, door, candidates=3)

    assert len(made.takes) == 3 and all(len(take.clips) == 2 for take in made.takes)
    assert [{clip.take for clip in take.clips} for take in made.takes] == [{0}, {1}, {2}]
    assert len({take.clips[0].seed for take in made.takes}) == 3
    assert len({clip.sha256 for take in made.takes for clip in take.clips}) == 6, "every take is its own picture"
    # take 0 is the shot as one candidate makes it: the same clips
    alone = make_takes(long, prompt("s01"), board, animatic, tmp_path, door, candidates=1)
    assert alone.chain.clips == tuple(clip.model_copy(update={"reused": True}) for clip in made.takes[0].clips)
    # the scorer rated every take and the film plays the best
    assert [score.take for score in made.scores] == [0, 1, 2] and made.picked_by == "scorer"
    assert made.chosen == max(range(3), key=lambda take: made.scores[take].score)
    assert set(made.scores[0].measures) == {"sharpness", "motion", "flicker"}
    # made again: nothing is generated, the same take plays
    again = make_takes(long, prompt("s01"), board, animatic, tmp_path, door, candidates=3)
    assert all(clip.reused for take in again.takes for clip in take.clips) and again.chosen == made.chosen


def test_a_persons_pick_plays_and_a_pick_past_the_candidates_is_made(tmp_path, animatic):
    one = shot(1, 2.0)
    board = make_board(one)
    door = Generations.in_memory()
    made = make_takes(one, prompt("s01"), board, animatic, tmp_path, door, candidates=2, picked=3)
    assert len(made.takes) == 4 and made.chosen == 3 and made.picked_by == "person"
    assert made.chain.clips[0].take == 3


def test_a_continuing_shots_takes_all_start_from_the_take_played_before(tmp_path, animatic):
    first, second = shot(1, 2.0), shot(2, 2.0, continues=True)
    board = make_board(first, second)
    door = Generations.in_memory()
    before = make_takes(first, prompt("s01"), board, animatic, tmp_path, door, candidates=2, picked=1)
    after = make_takes(second, prompt("s02"), board, animatic, tmp_path, door, before.chain, candidates=2)
    assert {take.clips[0].parent_sha256 for take in after.takes} == {before.takes[1].last.sha256}
    assert "continuity" in after.scores[0].measures


def write_take(path, frames, fps=12) -> ClipChain:
    with media.VideoWriter(path, frames[0].shape[1], frames[0].shape[0], fps) as out:
        out.write_all(iter(frames))
    clip = Clip(shot_id="s01", segment=0, path=path, sha256=media.sha256_file(path), cache_key=path.stem,
                num_frames=len(frames), fps=fps, width=frames[0].shape[1], height=frames[0].shape[0],
                strategy="text_to_video", backend="test", model="test", seed=0)  # fmt: skip
    return ClipChain(shot_id="s01", clips=(clip,))


def test_the_measures_prefer_a_sharp_steady_take_to_a_blurred_or_flickering_one(tmp_path):
    rng = np.random.default_rng(1)
    texture = rng.integers(0, 256, (90, 160, 3)).astype(np.float32)
    sharp = [np.roll(texture, shift, axis=1).astype(np.uint8) for shift in range(24)]  # detail, panning
    blurred = [((frame.astype(np.float32) + np.roll(frame, 1, 0) + np.roll(frame, 1, 1) + np.roll(frame, -1, 0)
                 + np.roll(frame, -1, 1)) / 5).astype(np.uint8) for frame in sharp]  # fmt: skip
    blurred = [((frame.astype(np.float32) + np.roll(frame, 2, 0) + np.roll(frame, 2, 1)) / 3).astype(np.uint8)
               for frame in blurred]  # fmt: skip
    flicker = [np.clip(frame.astype(np.int16) + (60 if index % 2 else -60), 0, 255).astype(np.uint8)
               for index, frame in enumerate(sharp)]  # fmt: skip
    takes = [write_take(tmp_path / f"{name}.mp4", frames)
             for name, frames in (("blurred", blurred), ("flicker", flicker), ("sharp", sharp))]  # fmt: skip

    blurred_m, flicker_m, sharp_m = (take_measures(take) for take in takes)
    assert sharp_m["sharpness"] > 2 * blurred_m["sharpness"]
    assert flicker_m["flicker"] > 10 * sharp_m["flicker"]
    scores = measured(shot(1, 2.0), takes, None)
    assert max(scores, key=lambda score: score.score).take == 2  # the sharp, steady one


def prefer_the_last(shot, takes, previous):
    """A scorer of one's own: the newest take wins."""
    return [TakeScore(take=take, score=float(take)) for take in range(len(takes))]


def test_scorers_are_pluggable_and_a_bad_name_is_an_error_naming_the_fix(tmp_path, animatic):
    assert load_scorer("tests.stages.test_takes:prefer_the_last") is prefer_the_last
    one = shot(1, 1.0)
    made = make_takes(one, prompt("s01"), make_board(one), animatic, tmp_path, Generations.in_memory(), candidates=3,
                      scorer="tests.stages.test_takes:prefer_the_last")  # fmt: skip
    assert made.chosen == 2
    assert load_scorer("first")(one, made.takes, None)[0].score == 1.0
    for bad, words in (("best", "no such scorer"), ("tests.nowhere:score", "cannot load it"),
                       ("tests.stages.test_takes:WRONG", "cannot load it")):  # fmt: skip
        with pytest.raises(InputError, match=words) as caught:
            load_scorer(bad)
        assert caught.value.fix


def test_swapping_takes_makes_nothing_and_names_a_continuing_shot_that_would_need_making(tmp_path, animatic):
    first, second = shot(1, 2.0), shot(2, 2.0, continues=True)
    board = make_board(first, second)
    door = Generations.in_memory()
    before = make_takes(first, prompt("s01"), board, animatic, tmp_path, door, candidates=2)
    make_takes(second, prompt("s02"), board, animatic, tmp_path, door, before.takes[0], candidates=1)
    # s01's take 1 is held: swapping it in needs nothing made...
    swapped = make_takes(first, prompt("s01"), board, animatic, tmp_path, door, candidates=2, picked=1, reuse_only=True)
    assert swapped.chosen == 1 and all(clip.reused for take in swapped.takes for clip in take.clips)
    # ...but s02 continues s01's last frame, so its clips from take 1 were never made: refused, not made
    with pytest.raises(InputError, match="shot s02, take 0, segment 1 is not in the catalog") as caught:
        make_takes(second, prompt("s02"), board, animatic, tmp_path, door, swapped.chain, reuse_only=True)
    assert "continues the shot before" in caught.value.message and "storyflow film" in caught.value.fix
