"""The embedded planner: stories in, storyboards out, checked as a reader of the story would."""

from __future__ import annotations

import os
import subprocess
import sys
from itertools import pairwise
from pathlib import Path

import pytest

from storyflow.backends.llm.embedded import EmbeddedLLM
from storyflow.core.templates import PromptFolder
from storyflow.stages.plan import plan_task
from storyflow.core import durations
from storyflow.core.errors import StoryError
from storyflow.core.models import CameraMove, LensEffect, Storyboard, Transition
from storyflow.core.timeline import film_timeline
from storyflow.stages.plan import storyboard_json
from storyflow.stages.story import read_story

REPO = Path(__file__).resolve().parents[3]
LIGHTHOUSE = REPO / "stories" / "lighthouse.md"

FRONT = """---
title: Test Film
resolution: 240p
seed: {seed}
{extra}
characters:
  Mara: a tall woman in a red raincoat with a grey braid
  Tom: a stocky fisherman in a blue cap
---
"""


@pytest.fixture
def plan(write_story):
    """plan(body, seed=0, extra="fps: 12") -> the embedded planner's storyboard for that story."""

    def make(body: str, seed: int = 0, extra: str = "") -> Storyboard:
        path = write_story(FRONT.format(seed=seed, extra=extra) + body)
        return plan_with_rules(read_story(path))

    return make


def plan_with_rules(story):
    """The embedded backend's plan of a story, asked the way the plan stage asks it."""
    return EmbeddedLLM().plan(story, plan_task(story, PromptFolder()))


def shot_with(board: Storyboard, words: str):
    """The one shot whose narration contains `words`."""
    found = [shot for shot in board.shots if words in shot.narration]
    assert len(found) == 1, f"{words!r} is in {len(found)} shots"
    return found[0]


# ---------------------------------------------------------------- determinism


def test_same_story_and_seed_give_identical_storyboard_json_even_in_another_process():
    story = read_story(LIGHTHOUSE)
    first = storyboard_json(plan_with_rules(story))
    assert first == storyboard_json(plan_with_rules(story))
    # a fresh interpreter with a different hash salt must plan the very same bytes
    code = (
        "from storyflow.backends.llm.embedded import EmbeddedLLM;"
        "from storyflow.core.templates import PromptFolder;"
        "from storyflow.stages.plan import plan_task;"
        "from storyflow.stages.plan import storyboard_json;"
        "from storyflow.stages.story import read_story;"
        f"story = read_story({str(LIGHTHOUSE)!r});"
        "print(storyboard_json(EmbeddedLLM().plan(story, plan_task(story, PromptFolder()))), end='')"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO, check=True)
    assert other.stdout == first


def test_a_different_seed_can_change_inferred_cameras_but_never_written_ones():
    story = read_story(LIGHTHOUSE)
    boards = [plan_with_rules(story.model_copy(update={"seed": seed})) for seed in range(8)]
    written = {tuple((s.id, s.camera) for s in b.shots if s.camera_from_text) for b in boards}
    inferred = {tuple(s.camera for s in b.shots if not s.camera_from_text) for b in boards}
    assert len(written) == 1 and len(next(iter(written))) >= 5  # the story's own directives, every time
    assert len(inferred) > 1  # the seed picks establishing and rotation moves
    # and the text never changes with the seed
    assert len({tuple(s.narration for s in b.shots) for b in boards}) == 1


# ---------------------------------------------------------------- camera directives in the text


def test_arc_shot_sentence_sets_the_camera_and_leaves_the_narration(plan):
    board = plan("The harbour wakes up slowly.\n\nMara walks to the end of the pier. Arc shot. She watches the boats.")
    shot = shot_with(board, "She watches the boats.")
    assert shot.camera is CameraMove.ARC_SHOT
    assert shot.camera_from_text
    assert "arc shot" not in shot.narration.lower()
    assert "Arc shot." in shot.story_text  # the shot still covers the written directive
    assert all("arc shot" not in s.narration.lower() for s in board.shots)


WRITTEN_DIRECTIVES = [
    ("Static shot.", CameraMove.STATIC),
    ("Locked-off.", CameraMove.STATIC),
    ("Pan left.", CameraMove.PAN_LEFT),
    ("Slow pan right.", CameraMove.PAN_RIGHT),
    ("Tilt up.", CameraMove.TILT_UP),
    ("Tilt down.", CameraMove.TILT_DOWN),
    ("Zoom in.", CameraMove.ZOOM_IN),
    ("Zoom out.", CameraMove.ZOOM_OUT),
    ("Dolly zoom.", CameraMove.DOLLY_ZOOM),
    ("Vertigo shot.", CameraMove.DOLLY_ZOOM),
    ("Dolly zoom in.", CameraMove.DOLLY_ZOOM),  # not "zoom in": the longer phrase wins
    ("Arc shot.", CameraMove.ARC_SHOT),
    ("Orbit shot.", CameraMove.ARC_SHOT),
    ("Crane shot.", CameraMove.CRANE_SHOT),
    ("Crane up.", CameraMove.CRANE_SHOT),
    ("Tracking shot.", CameraMove.TRACKING_SHOT),
    ("Follow shot.", CameraMove.TRACKING_SHOT),
    ("FPV drone shot.", CameraMove.FPV_DRONE),
    ("Drone shot.", CameraMove.FPV_DRONE),
    ("Rotating panorama.", CameraMove.PAN_RIGHT),
]


@pytest.mark.parametrize(("written", "move"), WRITTEN_DIRECTIVES)
def test_every_camera_move_can_be_written_in_the_story(plan, written, move):
    board = plan(f"The harbour wakes up slowly.\n\n{written} Tom mends a net on the quay.\n")
    shot = shot_with(board, "Tom mends a net on the quay.")
    assert (shot.camera, shot.camera_from_text) == (move, True)
    assert shot.narration == "Tom mends a net on the quay."


def test_all_camera_moves_are_covered_by_the_directive_test():
    # CameraMove.TILT_SHIFT only loads old storyboards: "tilt shift" is now LensEffect.TILT_SHIFT
    assert {move for _, move in WRITTEN_DIRECTIVES} == set(CameraMove) - {CameraMove.TILT_SHIFT}


@pytest.mark.parametrize("written", ["Tilt shift.", "TILT-SHIFT.", "Tilt-shift lens."])
def test_tilt_shift_written_in_a_story_is_the_lens_effect(plan, written):
    board = plan(f"The harbour wakes up slowly.\n\n{written} Tom mends a net on the quay.\n")
    shot = shot_with(board, "Tom mends a net on the quay.")
    assert shot.effects == (LensEffect.TILT_SHIFT,) and shot.camera is not CameraMove.TILT_SHIFT
    assert shot.narration == "Tom mends a net on the quay."


def test_a_directive_inside_a_sentence_is_read_and_the_sentence_stays(plan):
    board = plan("The harbour wakes up slowly.\n\nBoats rock at anchor as the camera pans left across the bay.\n")
    shot = shot_with(board, "the camera pans left across the bay")
    assert (shot.camera, shot.camera_from_text) == (CameraMove.PAN_LEFT, True)
    assert "camera" not in shot.action.lower() and "Boats rock at anchor" in shot.action


def test_a_directive_closing_a_paragraph_applies_to_its_shot(plan):
    board = plan("The harbour wakes up slowly.\n\nMara climbs the lighthouse stairs. Tilt down.\n")
    shot = shot_with(board, "Mara climbs")
    assert (shot.camera, shot.camera_from_text) == (CameraMove.TILT_DOWN, True)  # not the inferred tilt up


# ---------------------------------------------------------------- inferred cameras


@pytest.mark.parametrize(
    ("sentence", "move"),
    [
        ("The wolves chase the deer across the frozen lake.", CameraMove.TRACKING_SHOT),
        ("Tom runs along the quay.", CameraMove.TRACKING_SHOT),
        ("A gull soars over the rooftops.", CameraMove.FPV_DRONE),
        ("Suddenly Mara realises the door was open.", CameraMove.DOLLY_ZOOM),
        ("Tom looks up at the cliff.", CameraMove.TILT_UP),
        ("Mara peers down into the well.", CameraMove.TILT_DOWN),
        ("The fog parts and reveals a vast lake.", CameraMove.ZOOM_OUT),
        ("Mara whispers his name, tears in her eyes.", CameraMove.ZOOM_IN),
    ],
)
def test_inferred_cameras_follow_the_documented_rules(plan, sentence, move):
    board = plan(f"The harbour wakes up slowly.\n\n{sentence}\n")
    shot = shot_with(board, sentence)
    assert (shot.camera, shot.camera_from_text) == (move, False)


def test_the_first_shot_of_every_scene_is_an_establishing_crane_or_pan(plan):
    body = "# One\n\nTom sits on a bench.\n\n## Two\n\nMara sits on a chair.\n\n## Three\n\nThe kettle hums.\n"
    establishing = (CameraMove.CRANE_SHOT, CameraMove.PAN_LEFT, CameraMove.PAN_RIGHT)
    for seed in range(6):
        board = plan(body, seed=seed)
        assert len(board.shots) == 3
        assert all(shot.camera in establishing and not shot.camera_from_text for shot in board.shots)


def test_neighbouring_shots_without_a_cue_get_different_cameras(plan):
    body = "The harbour wakes up slowly.\n\n" + "\n\n".join(
        ["Tom sits on a bench.", "A kettle sits on the stove.", "The clock ticks.", "Mara reads a letter.",
         "A cat sits by the door.", "Bread cools on the table.", "Tom folds a map."]
    )
    board = plan(body)
    cameras = [shot.camera for shot in board.shots[1:]]
    assert all(a != b for a, b in pairwise(cameras))
    assert not any(shot.camera_from_text for shot in board.shots)


# ---------------------------------------------------------------- narration, characters, setting


def test_narration_keeps_the_storys_words_and_dialogue(plan):
    body = (
        "# The **Harbour**\n\n"
        "Mara opens the *old* door. Arc shot. \"Is anyone there?\" she calls.\n\n"
        "Tom answers from the [dark](https://example.com) stairwell.\n"
    )
    board = plan(body)
    narration = " ".join(shot.narration for shot in board.shots)
    assert narration == 'Mara opens the old door. "Is anyone there?" she calls. Tom answers from the dark stairwell.'
    assert "Harbour" not in narration  # headings are not narration


def test_markdown_scene_breaks_lists_and_comments_are_read_as_a_reader_would(plan):
    board = plan(
        "Tom rows.\n---\n<!-- note to self: make it rain -->\n"
        "> Mara waits.\n\n- She counts the boats.\n- She counts the gulls.\n"
    )
    assert [shot.narration for shot in board.shots] == [
        "Tom rows.", "Mara waits.", "She counts the boats. She counts the gulls.",
    ]
    assert board.shots[0].transition is Transition.FADE  # a horizontal rule is a new scene
    assert "rain" not in board.shots[1].setting  # comments are not story


def test_characters_are_found_by_name_and_carried_over_by_pronouns(plan):
    board = plan(
        "MARA'S lantern flickers in the wind.\n\n"
        "She climbs the stairs.\n\n"
        "The sea roars below.\n\n"
        "Tom and Mara haul the boat ashore.\n\n"
        '"Come home, Tom!" the harbourmaster calls.\n'
    )
    people = [shot.characters for shot in board.shots]
    assert people == [("Mara",), ("Mara",), (), ("Mara", "Tom"), ()]


def test_setting_carries_over_until_the_text_changes_it(plan):
    board = plan(
        "The lighthouse stands on a rocky coast at dusk.\n\n"
        "Heavy rain begins to fall.\n\n"
        "Tom ties the rope twice.\n\n"
        "In the morning the rain stops and the harbour is quiet.\n"
    )
    settings = [shot.setting for shot in board.shots]
    assert settings[0] == "a rocky coast with a lighthouse, at dusk"
    assert settings[1] == settings[2] == "a rocky coast with a lighthouse, at dusk, in heavy rain"
    assert settings[3] == "a harbour, in the morning, under a clear sky"


def test_mood_and_sound_follow_the_words(plan):
    board = plan(
        "Thunder rolls over the sea.\n\nTom laughs and dances on the deck.\n\nThe rope holds.\n"
    )
    first, second, third = board.shots
    assert "thunder" in first.sound_cue
    assert second.mood == "joyful"
    assert third.mood == "joyful"  # nothing new: the mood carries over
    assert all(shot.sound_cue for shot in board.shots)


# ---------------------------------------------------------------- shots, continuations, transitions


def test_a_long_paragraph_becomes_continuing_shots_joined_by_cuts(plan):
    board = plan(
        "The harbour wakes up slowly.\n\n"
        "Tom unties the heavy rope from the rusty iron ring on the quay. He pushes the boat away "
        "from the wall with both hands. The little engine coughs twice and starts. Gulls scatter "
        "from the mast into the grey morning sky. The boat slides out past the end of the pier.\n"
    )
    chain = [shot for shot in board.shots if shot.beat == 2]
    assert len(chain) >= 3  # ~40 words do not fit one shot
    assert [shot.continues_previous for shot in chain] == [False] + [True] * (len(chain) - 1)
    for before, after in zip(board.shots, board.shots[1:]):
        if after.continues_previous:
            assert before.transition is Transition.CUT
    assert all(2.5 <= shot.duration <= 8.5 for shot in chain)


def test_a_written_camera_move_inside_a_paragraph_is_a_new_angle_not_a_continuation(plan):
    board = plan("Tom unties the rope. Zoom in. His hands shake with cold.\n")
    first, second = board.shots
    assert second.camera is CameraMove.ZOOM_IN and not second.continues_previous
    assert first.transition is Transition.CUT


def test_continuous_markers_continue_across_paragraphs(plan):
    board = plan(
        "Tom runs down the pier.\n\n"
        "(continuous) He leaps into the boat.\n\n"
        "Continuous. The boat rocks under his weight.\n\n"
        "Mara watches from the window.\n"
    )
    assert [shot.continues_previous for shot in board.shots] == [False, True, True, False]
    assert [shot.transition for shot in board.shots[:3]] == [Transition.CUT, Transition.CUT, Transition.CROSSFADE]
    assert board.shots[1].narration == "He leaps into the boat."
    assert all("ontinuous" not in shot.narration for shot in board.shots)


def test_transitions_follow_paragraphs_scenes_and_markers(plan):
    board = plan(
        "# Night\n\nTom rows.\n\nMara waits.\n\nCut to: the lighthouse lamp.\n\n"
        "The lamp goes dark. Fade to black.\n\nThe kettle hums.\n\n"
        "Years later, Tom is old.\n\n## Morning\n\nThe gulls cry.\n"
    )
    assert [shot.narration for shot in board.shots] == [
        "Tom rows.", "Mara waits.", "The lighthouse lamp.", "The lamp goes dark.",
        "The kettle hums.", "Years later, Tom is old.", "The gulls cry.",
    ]
    assert [shot.transition for shot in board.shots] == [
        Transition.CROSSFADE,  # into a new paragraph
        Transition.CUT,  # "Cut to"
        Transition.CROSSFADE,
        Transition.FADE,  # "Fade to black"
        Transition.FADE,  # "Years later"
        Transition.FADE,  # a new heading scene
        Transition.FADE,  # the end
    ]


def test_a_story_of_only_headings_is_an_error_that_says_what_to_write(plan):
    with pytest.raises(StoryError) as caught:
        plan("# Title\n\n## Chapter one\n")
    assert "write at least one paragraph" in caught.value.fix


# ---------------------------------------------------------------- durations


HARBOUR = ["The harbour wakes up slowly.", "Tom unties the rope and pushes the boat away from the quay.",
           "Mara waves from the lighthouse door.", "Gulls circle the mast.", "The boat rounds the point and is gone."]


def on_target(board, target: float) -> bool:
    return durations.on_target(film_timeline(board).total_frames, round(target * board.fps))


def test_a_target_duration_is_met_within_two_percent_in_whole_frames(plan):
    body = "\n\n".join(HARBOUR)
    for fps, target in ((24, 40.0), (12, 25.0), (24, 21.3)):
        board = plan(body, extra=f"fps: {fps}\nduration: {target}")
        assert abs(film_timeline(board).seconds - target) <= target * 0.02 + 0.5 / fps
        assert on_target(board, target) and not on_target(board, target * 1.05)
        for shot in board.shots:
            assert shot.duration * fps == pytest.approx(round(shot.duration * fps), abs=1e-6)


def test_with_a_target_a_word_more_in_one_paragraph_leaves_the_other_shots_lengths_alone(plan):
    """Shot lengths decide which clips exist: re-timing every shot after an edit would remake them all."""
    before = plan("\n\n".join(HARBOUR), extra="fps: 24\nduration: 40")
    edited = plan("\n\n".join([HARBOUR[0], HARBOUR[1].replace("the boat", "the old boat"), *HARBOUR[2:]]),
                  extra="fps: 24\nduration: 40")  # fmt: skip
    assert edited.shots[1].duration > before.shots[1].duration
    assert [s.duration for i, s in enumerate(edited.shots) if i != 1] == [
        s.duration for i, s in enumerate(before.shots) if i != 1
    ]
    assert on_target(edited, 40.0)


def test_an_unreachable_target_keeps_every_shot_at_least_a_second(plan):
    body = "\n\n".join(f"Tom lifts crate number {n}." for n in range(1, 9))
    board = plan(body, extra="duration: 4")
    assert all(shot.duration >= 1.0 for shot in board.shots)
    assert film_timeline(board).seconds > 4


def test_without_a_target_longer_narration_stays_longer_on_screen(plan):
    board = plan(
        "Tom waits.\n\nTom waits by the harbour wall while the long grey tide comes in "
        "over the stones and the weed and the old iron rings.\n"
    )
    short, long = board.shots
    assert 2.5 <= short.duration < long.duration <= 12


def test_every_mood_the_planner_writes_has_its_own_music():
    from storyflow.backends.music.procedural import RECIPES
    from storyflow.core.vocabulary import MOODS

    assert set(MOODS) <= set(RECIPES)  # otherwise the score would fall back to its default mood


# ---------------------------------------------------------------- written lengths, timed changes, loops


@pytest.mark.parametrize(
    ("marker", "fps", "seconds"), [("[12s]", 24, 12.0), ("[12 s]", 12, 12.0), ("[12.5s]", 24, 12.5)]
)
def test_a_written_length_sets_the_shot_in_whole_frames_and_is_not_narrated(plan, marker, fps, seconds):
    long_paragraph = (
        f"Tom unties the heavy rope from the rusty iron ring on the quay. {marker} He pushes the boat away "
        "from the wall with both hands. The little engine coughs twice and starts. Gulls scatter."
    )
    board = plan(f"The harbour wakes up slowly.\n\n{long_paragraph}\n", extra=f"fps: {fps}")
    opening, timed = board.shots  # ~30 words would be split without the marker: it stays one shot
    assert timed.duration == seconds and timed.frames(fps) == seconds * fps
    assert "[" not in timed.narration and timed.narration.endswith("Gulls scatter.")
    assert marker in timed.story_text  # the shot still covers what was written
    assert opening.duration < 12  # the other shot keeps its reading-speed length


def test_timed_changes_make_one_evolving_shot_whose_changes_are_seen_and_narrated(plan):
    board = plan(
        "A walking figure made out of water crosses the sand. [12s] [at 4s] Lightning flashes in the background.\n"
        "[at 8s] Purple smoke emits from the figure. It keeps walking. The sand glitters. It never stops.\n\n"
        "The figure reaches the sea.\n"
    )
    assert len(board.shots) == 2  # six sentences in the first paragraph, yet one shot
    shot = board.shots[0]
    assert shot.duration == 12.0
    assert [(change.at, change.text) for change in shot.prompt_changes] == [
        (4.0, "Lightning flashes in the background."),
        (8.0, "Purple smoke emits from the figure. It keeps walking. The sand glitters. It never stops."),
    ]
    assert shot.action == "A walking figure made out of water crosses the sand."  # what is seen from 0 s
    assert shot.narration == (
        "A walking figure made out of water crosses the sand. Lightning flashes in the background. "
        "Purple smoke emits from the figure. It keeps walking. The sand glitters. It never stops."
    )
    assert shot.setting == "a beach"  # the lightning comes at 4 s, not before...
    assert "thunder" in shot.sound_cue  # ...but it is heard in the shot
    assert board.shots[1].setting.endswith("in a thunderstorm")  # and the storm carries on


def test_without_a_written_length_an_evolving_shot_holds_its_last_change_two_seconds(plan):
    board = plan("Snow falls on the field. [at 9s] A fox crosses it.\n\nThe fox is gone.\n")
    evolving, after = board.shots
    assert evolving.duration == 11.0  # reading speed alone would give about 3.7 s
    assert after.duration < 4 and not after.prompt_changes


def test_a_paragraph_with_changes_starting_continuous_still_continues_the_shot_before(plan):
    board = plan("Tom runs down the pier.\n\n(continuous) He leaps into the boat. [at 3s] The boat rocks.\n")
    assert board.shots[1].continues_previous and board.shots[1].prompt_changes[0].at == 3.0


BAD_TIMINGS = [
    # (paragraph, the line it names counting from the paragraph's first line, words in the message, words in the fix)
    ("A figure walks. [8s]\n[at 4s] Rain falls.\n[at 7.5s] Smoke rises.\n", 0, "lasts [8s]", "[8.5s]"),
    ("A figure walks. [8s] [at 8s] Rain falls.\n", 0, "lasts [8s]", "[9s]"),
    ("A figure walks.\n[at 8s] Rain falls.\n[at 4s] Smoke rises.\n", 2, "[at 4s] comes after [at 8s]", "increasing"),
    ("A figure walks.\n[at 4s] Rain falls. [at 4s] Smoke rises.\n", 1, "[at 4s] comes after [at 4s]", "increasing"),
    ("A figure walks. [at 0s] Rain falls.\n", 0, "[at 0s] does not come after", "[at 1s]"),
    ("A figure walks.\n\n[at four] Rain falls.\n", 2, "[at four] is not a timing marker", "[at 4s]"),
    ("A figure walks. [3 min]\n", 0, "[3 min] is not a timing marker", "[12s]"),
    ("A figure walks. [4s]\nIt stops. [6s]\n", 1, "second shot length [6s]", "one [Ns] per paragraph"),
    ("A figure walks. [at 4s] Zoom in.\n", 0, "[at 4s] has no text", "Lightning flashes"),
    ("[12s] [at 4s] Rain falls.\n", 0, "no story text seen from the shot's start", "start the paragraph"),
]


@pytest.mark.parametrize(("paragraph", "line", "problem", "fix"), BAD_TIMINGS)
def test_a_bad_timing_marker_is_an_error_naming_its_line_and_the_fix(plan, paragraph, line, problem, fix):
    # the multi-line comment and heading make sure lines are counted as written in the file
    body = "<!-- a note\n   over two lines -->\n# Title\n\n" + paragraph
    first_line = FRONT.format(seed=0, extra="").count("\n") + 5  # the paragraph's first line in the file
    with pytest.raises(StoryError) as caught:
        plan(body)
    assert f"story.md, line {first_line + line}: " in caught.value.message
    assert problem in caught.value.message and fix in caught.value.fix


def test_seamless_loop_marks_its_shot_is_not_narrated_and_is_never_continued(plan, caplog):
    board = plan(
        "The waves roll in and slide back out. Seamless loop.\n\n"
        "Continuous. Tom walks along the beach.\n\n"
        "Loop. The lamp turns. Its beam sweeps the bay.\n"
    )
    first, second, third = board.shots
    assert (first.loop, second.loop, third.loop) == (True, False, True)
    assert "loop" not in " ".join(shot.narration.lower() for shot in board.shots)
    assert "Seamless loop." in first.story_text
    assert not second.continues_previous  # "Continuous." cannot carry on from a loop...
    assert "loops" in caplog.text  # ...and the user is told so
    assert third.narration == "The lamp turns. Its beam sweeps the bay."


def test_a_loop_word_inside_a_sentence_is_narration_not_a_directive(plan):
    board = plan("The road loops around the hill.\n")
    assert not board.shots[0].loop and board.shots[0].narration == "The road loops around the hill."


def test_a_duration_target_is_met_around_a_written_length(plan):
    body = "\n\n".join(
        ["The harbour wakes up slowly.", "Tom unties the rope and pushes the boat away from the quay. [12s]",
         "Mara waves from the lighthouse door.", "Gulls circle the mast.", "The boat rounds the point and is gone."]
    )
    for fps, target in ((24, 40.0), (12, 25.0), (24, 21.3)):
        board = plan(body, extra=f"fps: {fps}\nduration: {target}")
        assert on_target(board, target)
        assert board.shots[1].duration == 12.0  # the written length is kept...
        unwritten = plan(body.replace(" [12s]", ""), extra=f"fps: {fps}\nduration: {target}")
        assert unwritten.shots[1].duration != 12.0  # ...where fitting alone would have changed it


def test_fitting_a_short_target_keeps_an_evolving_shot_past_its_last_change(plan):
    body = "Snow falls on the field. [at 6s] A fox crosses it.\n\n" + "\n\n".join(
        f"Tom lifts crate number {n}." for n in range(1, 5)
    )
    board = plan(body, extra="duration: 16")  # scaled in proportion, the first shot would get about 6.6 s
    assert board.shots[0].duration == 8.0  # the last change + 2 s
    assert abs(film_timeline(board).seconds - 16) <= 1 / 24 + 1e-9


def test_written_lengths_longer_than_the_target_keep_their_length_with_a_warning(plan, caplog):
    board = plan("Tom waits. [12s]\n\nMara waits. [12s]\n\nThe tide turns.\n", extra="duration: 10")
    assert [shot.duration for shot in board.shots[:2]] == [12.0, 12.0]
    assert board.shots[2].duration >= 1.0
    assert "written length" in caplog.text and "10.00 s" in caplog.text
