"""plan_storyboard: sample stories plan into usable storyboards; broken plans are refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from storyflow.backends.base import LLMBackend, LLMTask
from storyflow.backends.registry import load_backend
from storyflow.core import durations
from storyflow.core.errors import InputError, LLMOutputError
from storyflow.core.models import (
    CameraMove,
    PromptChange,
    Shot,
    ShotPrompt,
    Story,
    Storyboard,
    Transition,
)
from storyflow.core.timeline import film_timeline
from storyflow.stages.plan import (
    load_storyboard,
    plan_instructions,
    plan_storyboard,
    save_storyboard,
    storyboard_json,
)
from storyflow.stages.story import read_story

STORIES = Path(__file__).resolve().parents[2] / "stories"
SAMPLES = sorted(STORIES.glob("*.md"))


@pytest.fixture
def embedded() -> LLMBackend:
    return load_backend("llm", "embedded")  # through the registry, as the CLI gets it


# ---------------------------------------------------------------- the sample stories


def test_there_are_at_least_three_sample_stories():
    assert len(SAMPLES) >= 3


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.stem)
def test_every_sample_story_parses_and_plans_into_a_short_film(path, embedded):
    story = read_story(path)
    board = plan_storyboard(story, embedded)
    seconds = film_timeline(board).seconds
    assert 20 <= seconds <= 60
    if story.duration:  # within 2%: see storyflow.core.durations
        assert durations.on_target(film_timeline(board).total_frames, round(story.duration * story.fps))
    assert min(story.width, story.height) <= 360 and story.fps in (12, 24)
    assert board.planner == "embedded 1"
    # each sample shows off written camera directives and inferred ones
    assert any(shot.camera_from_text for shot in board.shots)
    assert any(not shot.camera_from_text for shot in board.shots)
    assert all(shot.narration and shot.action for shot in board.shots)


def test_the_samples_cover_a_long_film_a_vertical_film_and_continuing_shots(embedded):
    boards = {path.stem: plan_storyboard(read_story(path), embedded) for path in SAMPLES}
    assert len(boards["lighthouse"].shots) >= 8
    assert any(board.height > board.width for board in boards.values())  # 9:16
    assert any(shot.continues_previous for board in boards.values() for shot in board.shots)
    assert len({shot.camera for board in boards.values() for shot in board.shots}) >= 8
    assert any(shot.prompt_changes for board in boards.values() for shot in board.shots)  # an evolving shot
    assert any(shot.loop for board in boards.values() for shot in board.shots)


def test_the_water_figure_sample_has_an_evolving_12_second_shot_a_continuation_and_a_loop(embedded):
    story = read_story(STORIES / "water-figure.md")
    board = plan_storyboard(story, embedded)
    evolving, continuing, looping = board.shots
    assert (story.aspect, story.fps, story.height) == ("16:9", 24, 240)
    assert film_timeline(board).seconds <= 30
    assert evolving.duration == 12.0 and evolving.frames(24) == 288
    assert [change.at for change in evolving.prompt_changes] == [4.0, 8.0]
    assert "Lightning flashes in the background." == evolving.prompt_changes[0].text
    assert "Purple smoke" in evolving.prompt_changes[1].text
    assert "[" not in evolving.narration and "Lightning" in evolving.narration
    assert continuing.continues_previous and evolving.transition is Transition.CUT
    assert looping.loop and not looping.continues_previous


# ---------------------------------------------------------------- storyboard files


def test_storyboard_json_is_stable_and_round_trips_through_a_file(tmp_path, embedded):
    board = plan_storyboard(read_story(STORIES / "lighthouse.md"), embedded)
    text = storyboard_json(board)
    assert list(json.loads(text)) == sorted(json.loads(text))  # sorted keys
    path = save_storyboard(board, tmp_path / "films" / "storyboard.json")
    assert path.read_text(encoding="utf-8") == text
    assert load_storyboard(path) == board
    assert storyboard_json(load_storyboard(path)) == text
    assert [p.name for p in path.parent.iterdir()] == ["storyboard.json"]  # no temporary left behind


def test_loading_something_that_is_not_a_storyboard_names_the_problem(tmp_path):
    path = tmp_path / "board.json"
    path.write_text('{"title": "x"}', encoding="utf-8")
    with pytest.raises(InputError) as caught:
        load_storyboard(path)
    assert str(path) in caught.value.message and "storyflow plan" in caught.value.fix
    with pytest.raises(InputError):
        load_storyboard(tmp_path / "missing.json")


# ---------------------------------------------------------------- refusing broken plans


class ScriptedLLM(LLMBackend):
    """A stand-in for a real chat LLM: answers with the storyboard it was given."""

    name = "scripted"

    def __init__(self, board: Storyboard) -> None:
        super().__init__()
        self.board = board

    def plan(self, story: Story, task: LLMTask) -> Storyboard:
        return self.board

    def rewrite(self, shot: Shot, board: Storyboard, task: LLMTask) -> ShotPrompt:
        raise NotImplementedError


@pytest.fixture
def story() -> Story:
    return read_story(STORIES / "lighthouse.md")


@pytest.fixture
def good(story, embedded) -> Storyboard:
    return plan_storyboard(story, embedded)


def _edit(board: Storyboard, position: int, **changes) -> Storyboard:
    shots = list(board.shots)
    shots[position] = shots[position].model_copy(update=changes)
    return board.model_copy(update={"shots": tuple(shots)})


def _refusal(story: Story, board: Storyboard) -> LLMOutputError:
    with pytest.raises(LLMOutputError) as caught:
        plan_storyboard(story, ScriptedLLM(board))
    assert "--llm embedded" in caught.value.fix
    return caught.value


def test_a_good_plan_from_another_llm_is_accepted(story, good):
    scripted = ScriptedLLM(good)
    assert plan_storyboard(story, scripted) == good.model_copy(update={"planner_model": scripted.model_ref})


def test_duplicate_shot_ids_are_refused_naming_the_shot_and_field(story, good):
    error = _refusal(story, _edit(good, 2, id="s02"))
    assert "shot s02 (#3)" in error.message and "'id'" in error.message


def test_shots_out_of_order_are_refused(story, good):
    error = _refusal(story, _edit(good, 4, index=9))
    assert "shot s05" in error.message and "'index'" in error.message


def test_an_unknown_character_is_refused_naming_the_shot_and_field(story, good):
    error = _refusal(story, _edit(good, 1, characters=("Mara", "Captain Reyes")))
    assert "shot s02" in error.message and "'characters'" in error.message and "Captain Reyes" in error.message


def test_a_continuing_first_shot_is_refused(story, good):
    error = _refusal(story, _edit(good, 0, continues_previous=True))
    assert "shot s01" in error.message and "'continues_previous'" in error.message


def test_a_continuing_shot_after_a_crossfade_is_refused(story, good):
    assert good.shots[1].transition is Transition.CROSSFADE
    error = _refusal(story, _edit(good, 2, continues_previous=True))
    assert "shot s03" in error.message and "'transition'" in error.message and "s02" in error.message


def test_a_duration_that_is_not_whole_frames_is_refused(story, good):
    error = _refusal(story, _edit(good, 3, duration=2.01))
    assert "shot s04" in error.message and "'duration'" in error.message and "24 fps" in error.message


def test_a_zero_duration_and_an_empty_action_are_refused(story, good):
    error = _refusal(story, _edit(_edit(good, 5, duration=0.0), 6, action="  "))
    assert "shot s06" in error.message and "'duration'" in error.message
    assert "shot s07" in error.message and "'action'" in error.message


def test_an_empty_storyboard_is_refused(story, good):
    error = _refusal(story, good.model_copy(update={"shots": ()}))
    assert "'shots'" in error.message


def test_timed_prompt_changes_inside_the_shot_are_accepted(story, good):
    duration = good.shots[3].duration
    changes = (PromptChange(at=1.0, text="Rain."), PromptChange(at=duration - 0.5, text="Hail."))
    board = _edit(good, 3, prompt_changes=changes)
    assert plan_storyboard(story, ScriptedLLM(board)).shots[3].prompt_changes == board.shots[3].prompt_changes


@pytest.mark.parametrize("at", ["duration", "after", "zero"])
def test_a_prompt_change_outside_its_shot_is_refused_naming_the_shot_and_field(story, good, at):
    duration = good.shots[3].duration
    when = {"duration": duration, "after": duration + 2, "zero": 0.0}[at]
    # model_copy does not validate: a hand-built storyboard can hold any number here
    change = PromptChange(at=1.0, text="Lightning flashes.").model_copy(update={"at": when})
    error = _refusal(story, _edit(good, 3, prompt_changes=(change,)))
    assert "shot s04" in error.message and "'prompt_changes' #1" in error.message
    assert "not inside the shot" in error.message


def test_prompt_changes_out_of_time_order_or_without_text_are_refused(story, good):
    changes = (PromptChange(at=2.0, text="Rain."), PromptChange(at=1.0, text="Hail."), PromptChange(at=2.2, text=" "))
    error = _refusal(story, _edit(good, 3, prompt_changes=changes))
    assert "shot s04" in error.message
    assert "'prompt_changes' #2 (at 1 s) does not come after the change before it (at 2 s)" in error.message
    assert "'prompt_changes' #3 (at 2.2 s) has no text" in error.message


def test_a_shot_continuing_a_loop_is_refused(story, good):
    joined = _edit(_edit(good, 1, transition=Transition.CUT), 2, continues_previous=True)
    assert plan_storyboard(story, ScriptedLLM(joined)).shots[2].continues_previous  # fine without a loop...
    error = _refusal(story, _edit(joined, 1, loop=True))  # ...refused after one
    assert "shot s03" in error.message and "'continues_previous'" in error.message
    assert "shot s02" in error.message and "'loop'" in error.message


def test_the_storys_own_facts_override_what_the_llm_said(story, good):
    wrong = good.model_copy(update={"fps": 30, "seed": 99, "width": 1920, "slug": "../../etc", "title_card": False})
    board = plan_storyboard(story, ScriptedLLM(wrong))
    assert (board.fps, board.seed, board.width, board.height, board.slug, board.title_card) == (
        story.fps, story.seed, story.width, story.height, story.slug, story.title_card,
    )


def test_an_answer_that_is_not_a_storyboard_is_refused(story):
    class Chatty(ScriptedLLM):
        def plan(self, story: Story, task: LLMTask):  # type: ignore[override]
            return {"shots": []}

    with pytest.raises(LLMOutputError, match="not a storyboard"):
        plan_storyboard(story, Chatty(None))  # type: ignore[arg-type]


# ---------------------------------------------------------------- instructions for chat LLMs


def test_plan_instructions_give_the_schema_camera_moves_and_characters(story):
    text = plan_instructions(story)
    assert '"PlannedShot"' in text and '"continues_previous"' in text  # the JSON schema
    assert all(move.value in text for move in CameraMove if move is not CameraMove.TILT_SHIFT)
    assert all(value in text for value in ("extreme close-up", "dutch angle", "slow motion", "rack focus"))
    for character in story.characters:
        assert f"{character.name} ({character.description})" in text
    assert "24 fps" in text and "48.0 s" in text  # whole frames and the target length
    assert "`prompt_changes`" in text and "[at 4s]" in text and "`loop`" in text  # evolving shots and loops
