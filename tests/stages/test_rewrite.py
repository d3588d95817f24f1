"""rewrite_shots and the prompt templates: consistent characters, cameras, versioned templates."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from storyflow.backends.base import LLMBackend, LLMTask
from storyflow.backends.registry import load_backend
from storyflow.core.errors import InputError, LLMOutputError
from storyflow.core.models import Shot, ShotPrompt, Story, Storyboard, TimedPrompt
from storyflow.core.templates import PROMPTS_DIR_ENV, PromptFolder
from storyflow.stages.plan import plan_storyboard
from storyflow.stages.rewrite import rewrite_instructions, rewrite_shots
from storyflow.stages.story import read_story

REPO = Path(__file__).resolve().parents[2]
PROMPTS = REPO / "prompts"
STORIES = REPO / "stories"


@pytest.fixture
def embedded() -> LLMBackend:
    return load_backend("llm", "embedded")


@pytest.fixture
def lighthouse(embedded) -> Storyboard:
    return plan_storyboard(read_story(STORIES / "lighthouse.md"), embedded)


@pytest.fixture(autouse=True)
def repo_prompts(monkeypatch):
    monkeypatch.delenv(PROMPTS_DIR_ENV, raising=False)


# ---------------------------------------------------------------- what the prompts say


def test_every_shot_with_mara_describes_her_word_for_word(lighthouse, embedded):
    mara = lighthouse.character("Mara")
    prompts = rewrite_shots(lighthouse, embedded)
    with_mara = [p for s, p in zip(lighthouse.shots, prompts) if "Mara" in s.characters]
    assert len(with_mara) >= 4
    for prompt in with_mara:
        assert f"Mara: {mara.description}" in prompt.prompt
    # a character who is not in the shot is not described in it
    for shot, prompt in zip(lighthouse.shots, prompts):
        finn = lighthouse.character("Finn")
        assert (finn.description in prompt.prompt) == ("Finn" in shot.characters)


def test_every_prompt_names_its_camera_move_style_and_action(lighthouse, embedded):
    for shot, prompt in zip(lighthouse.shots, rewrite_shots(lighthouse, embedded)):
        assert prompt.shot_id == shot.id
        assert shot.camera.value in prompt.prompt
        assert lighthouse.style.style in prompt.prompt
        assert shot.action in prompt.prompt
        assert shot.setting in prompt.prompt and shot.mood in prompt.prompt
        assert "\n" not in prompt.prompt
        assert prompt.llm == "embedded 1"


def test_fpv_and_arc_shots_say_how_the_camera_moves(embedded, write_story):
    path = write_story(
        "Tom waits on the quay.\n\nArc shot. Tom lifts his cap.\n\nFPV drone shot. Gulls wheel over the harbour.\n"
    )
    board = plan_storyboard(read_story(path), embedded)
    prompts = {p.shot_id: p.prompt for p in rewrite_shots(board, embedded)}
    assert "arc shot, the camera circles the subject" in prompts["s02"]
    assert "FPV drone shot, fast low flight" in prompts["s03"]


def test_negative_prompt_and_caption(lighthouse, embedded):
    for shot, prompt in zip(lighthouse.shots, rewrite_shots(lighthouse, embedded)):
        terms = prompt.negative_prompt.split(", ")
        assert all(term in terms for term in lighthouse.style.negative.split(", "))
        assert len(terms) == len({t.lower() for t in terms})  # each term once
        assert 0 < len(prompt.caption) <= 80
        assert prompt.caption == shot.narration or prompt.caption.endswith("…")


def test_an_evolving_shot_gets_the_prompt_in_force_at_each_time(embedded):
    board = plan_storyboard(read_story(STORIES / "water-figure.md"), embedded)
    shot = board.shots[0]
    prompt = rewrite_shots(board, embedded)[0]
    lightning, smoke = (change.text for change in shot.prompt_changes)
    # 1. one timed prompt per change, at its time; the plain prompt is the one at 0 s
    assert [change.at for change in prompt.changes] == [4.0, 8.0]
    assert prompt.prompt_at(0) == prompt.prompt
    # 2. the changes accumulate: none at 0 s, the first from 4 s, both from 8 s, in order
    at_0, at_5, at_9 = prompt.prompt_at(0), prompt.prompt_at(5), prompt.prompt_at(9)
    assert lightning not in at_0 and smoke not in at_0
    assert lightning in at_5 and smoke not in at_5
    assert f"{shot.action} {lightning} {smoke}" in at_9
    assert prompt.prompt_at(12) == at_9
    # 3. the camera move, the style and the characters are in every one
    tide = board.character("Tide")
    for text in (at_0, at_5, at_9):
        assert shot.camera.value in text and board.style.style in text
        assert f"Tide: {tide.description}" in text
        assert "\n" not in text


def test_a_loop_shot_prompt_asks_for_a_seamless_loop(embedded):
    board = plan_storyboard(read_story(STORIES / "water-figure.md"), embedded)
    for shot, prompt in zip(board.shots, rewrite_shots(board, embedded)):
        assert ("Seamless loop" in prompt.prompt) == shot.loop
        assert shot.prompt_changes or not prompt.changes  # only an evolving shot has timed prompts


# ---------------------------------------------------------------- versioned templates


def test_the_prompt_carries_the_sha256_of_its_template_file(lighthouse, embedded):
    expected = hashlib.sha256((PROMPTS / "shot_prompt.j2").read_bytes()).hexdigest()
    for prompt in rewrite_shots(lighthouse, embedded):
        assert (prompt.template, prompt.template_sha256) == ("shot_prompt.j2", expected)
    template = PromptFolder().load("shot_prompt.j2")
    assert template.sha256 == expected and template.path == PROMPTS / "shot_prompt.j2"


def test_editing_a_copy_of_the_template_changes_its_sha_and_the_prompt(lighthouse, embedded, tmp_path, monkeypatch):
    before = rewrite_shots(lighthouse, embedded)
    copy = tmp_path / "prompts"
    shutil.copytree(PROMPTS, copy)
    edited = copy / "shot_prompt.j2"
    edited.write_text(edited.read_text(encoding="utf-8") + "Shot on 35mm film.\n", encoding="utf-8")
    monkeypatch.setenv(PROMPTS_DIR_ENV, str(copy))
    after = rewrite_shots(lighthouse, embedded)
    for old, new in zip(before, after):
        assert new.template_sha256 == hashlib.sha256(edited.read_bytes()).hexdigest() != old.template_sha256
        assert new.prompt == old.prompt + " Shot on 35mm film."
        assert new.negative_prompt == old.negative_prompt  # the other templates were not touched


def test_an_undefined_template_variable_is_an_error_naming_the_template(lighthouse, embedded, tmp_path, monkeypatch):
    copy = tmp_path / "prompts"
    shutil.copytree(PROMPTS, copy)
    (copy / "shot_prompt.j2").write_text("{{ style.style }}, {{ lens_type }}\n", encoding="utf-8")
    monkeypatch.setenv(PROMPTS_DIR_ENV, str(copy))
    with pytest.raises(InputError) as caught:
        rewrite_shots(lighthouse, embedded)
    assert "shot_prompt.j2" in caught.value.message and "lens_type" in caught.value.message
    assert "camera_phrase" in caught.value.fix  # the variables it can use instead


def test_a_missing_template_or_a_path_as_name_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv(PROMPTS_DIR_ENV, str(tmp_path))
    with pytest.raises(InputError) as caught:
        PromptFolder.from_settings().load("shot_prompt.j2")
    assert PROMPTS_DIR_ENV in caught.value.fix
    with pytest.raises(InputError, match="bad prompt template name"):
        PromptFolder().load("../storyflow/models.py")


def test_rewrite_instructions_list_every_camera_phrase():
    text = rewrite_instructions()
    assert '"FPV drone shot, fast low flight"' in text and "word for word" in text


# ---------------------------------------------------------------- refusing broken prompts


class ScriptedRewriter(LLMBackend):
    """Answers every rewrite with a fixed, broken ShotPrompt."""

    name = "scripted"

    def __init__(self, **fields) -> None:
        super().__init__()
        self.fields = fields

    def plan(self, story: Story, task: LLMTask) -> Storyboard:
        raise NotImplementedError

    def rewrite(self, shot: Shot, board: Storyboard, task: LLMTask) -> ShotPrompt:
        return ShotPrompt(**{"shot_id": shot.id, "prompt": "a lighthouse", **self.fields})


def test_an_empty_prompt_is_refused_naming_the_shot_and_field(lighthouse):
    with pytest.raises(LLMOutputError) as caught:
        rewrite_shots(lighthouse, ScriptedRewriter(prompt="   "))
    assert "shot s01" in caught.value.message and "'prompt'" in caught.value.message
    assert "--llm embedded" in caught.value.fix


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ((), "field 'changes' has prompts at no times s, the shot's prompt_changes are at [4.0, 8.0] s"),
        ((TimedPrompt(at=4.0, prompt="rain"), TimedPrompt(at=9.0, prompt="smoke")), "at [4.0, 9.0] s"),
        ((TimedPrompt(at=4.0, prompt="rain"), TimedPrompt(at=8.0, prompt=" ")), "empty prompt at 8 s"),
    ],
)
def test_timed_prompts_that_do_not_match_the_shots_changes_are_refused(embedded, changes, problem):
    board = plan_storyboard(read_story(STORIES / "water-figure.md"), embedded)
    with pytest.raises(LLMOutputError) as caught:
        rewrite_shots(board, ScriptedRewriter(changes=changes))
    assert "shot s01" in caught.value.message and problem in caught.value.message


def test_a_prompt_for_the_wrong_shot_is_refused(lighthouse):
    with pytest.raises(LLMOutputError) as caught:
        rewrite_shots(lighthouse, ScriptedRewriter(shot_id="s99"))
    assert "shot s01" in caught.value.message and "'shot_id'" in caught.value.message


def test_a_template_read_only_after_a_refusal_never_changes_what_first_prompts_are_keyed_by(tmp_path):
    """Adding or editing rephrase_system.md must not rewrite (and pay again for) every prompt; editing a
    template that writes first prompts must."""
    import shutil

    from storyflow.core.templates import REPHRASE_TEMPLATE, PromptFolder

    folder = tmp_path / "prompts"
    shutil.copytree(PROMPTS, folder)
    before = PromptFolder(folder).sha256()
    (folder / REPHRASE_TEMPLATE).write_text((folder / REPHRASE_TEMPLATE).read_text() + "\nBe brief.\n")
    assert PromptFolder(folder).sha256() == before
    (folder / REPHRASE_TEMPLATE).unlink()
    assert PromptFolder(folder).sha256() == before
    (folder / "rewrite_system.md").write_text((folder / "rewrite_system.md").read_text() + "\nBe brief.\n")
    assert PromptFolder(folder).sha256() != before
