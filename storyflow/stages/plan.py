"""Story -> Storyboard, through an LLM backend, checked before anything downstream uses it.

Any LLM may plan (the embedded rules today, chat models later); whatever it returns is
validated here: shot ids and order, whole-frame durations, known characters, continuing
shots joined by cuts, timed prompt changes inside their shot, nothing continuing a loop.
The story's own facts (size, fps, seed, title, hash) are copied over the LLM's answer,
because they are the user's, not the model's.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from storyflow.backends.base import LLMTask
from storyflow.catalog import STORYBOARD, Generations
from storyflow.core.errors import InputError, LLMOutputError
from storyflow.core.hashing import cache_key
from storyflow.core.models import CROSSFADE_SECONDS, TITLE_CARD_SECONDS, CameraMove, Storyboard, Transition
from storyflow.core.templates import PromptFolder
from storyflow.core.vocabulary import CHANGE_HOLD_SECONDS, MOODS

if TYPE_CHECKING:
    from storyflow.backends.base import LLMBackend
    from storyflow.core.models import Shot, Story

log = logging.getLogger(__name__)

PLAN_INSTRUCTIONS = "plan_system.md"
FRAME_TOLERANCE = 1e-6  # a duration is whole frames when round(d * fps) == d * fps within this


def plan_cache_key(story: Story, llm: LLMBackend, prompts: PromptFolder) -> str:
    """What determines a plan: the LLM (backend, model, revision, options), the templates, the story's bytes and seed."""
    return cache_key("plan", **llm.identity(), templates=prompts.sha256(), story=story.sha256, seed=story.seed)


def plan_storyboard(
    story: Story, llm: LLMBackend, door: Generations | None = None, prompts: PromptFolder | None = None
) -> Storyboard:
    """The storyboard of a story: planned by the LLM backend and checked, or the one planned before
    from the same story, seed, LLM and templates."""
    prompts = prompts or PromptFolder.from_settings()
    door = door or Generations.in_memory()

    def make() -> Storyboard:
        board = llm.plan(story, plan_task(story, prompts))
        if not isinstance(board, Storyboard):
            raise LLMOutputError(
                f"{llm.label} answered the plan with a {type(board).__name__}, not a storyboard",
                fix=_fix(llm),
            )
        board = _with_story_facts(board, story)
        check_storyboard(board, llm)
        return board

    return door.reuse_or_make(STORYBOARD, plan_cache_key(story, llm, prompts), make,
                              facts={"llm": llm.label, "llm_options": llm.options_dict()})  # fmt: skip


def plan_task(story: Story, prompts: PromptFolder) -> LLMTask:
    """What the planner is asked: the instructions for this story, a Storyboard as the answer."""
    return LLMTask(instructions=plan_instructions(story, prompts), answer=Storyboard, templates=prompts)


def check_storyboard(board: Storyboard, llm: LLMBackend | None = None) -> None:
    """Raise LLMOutputError naming every broken shot and field (and how to get a good plan)."""
    problems: list[str] = []
    fps = board.fps
    # 1. there is something to film
    if not board.shots:
        problems.append("field 'shots' is empty")
    characters = {character.name for character in board.characters}
    seen_ids: set[str] = set()
    for position, shot in enumerate(board.shots):
        where = f"shot {shot.id or '?'} (#{position + 1})"
        # 2. ids "s01", "s02", ... in order, unique, index == position
        if shot.id in seen_ids:
            problems.append(f"{where}: field 'id' repeats {shot.id!r}")
        elif shot.id != f"s{position + 1:02d}":
            problems.append(f"{where}: field 'id' should be 's{position + 1:02d}'")
        seen_ids.add(shot.id)
        if shot.index != position:
            problems.append(f"{where}: field 'index' is {shot.index}, should be {position}")
        # 3. a positive duration of whole frames
        if not shot.duration > 0:
            problems.append(f"{where}: field 'duration' is {shot.duration}, must be more than 0 s")
        elif abs(round(shot.duration * fps) - shot.duration * fps) > FRAME_TOLERANCE:
            problems.append(
                f"{where}: field 'duration' {shot.duration} s is not a whole number of frames at {fps} fps"
            )
        # 4. something to show, with characters the storyboard knows
        if not shot.action.strip():
            problems.append(f"{where}: field 'action' is empty")
        for name in shot.characters:
            if name not in characters:
                known = ", ".join(sorted(characters)) or "none"
                problems.append(f"{where}: field 'characters' names {name!r}, not one of the characters ({known})")
        # 5. continuing shots: never the first, always joined to the previous shot by a cut
        if shot.continues_previous and position == 0:
            problems.append(f"{where}: field 'continues_previous' is set on the first shot")
        elif shot.continues_previous and board.shots[position - 1].transition is not Transition.CUT:
            before = board.shots[position - 1]
            problems.append(
                f"{where}: field 'continues_previous' is set but shot {before.id}'s field 'transition' "
                f"is {before.transition.value}, not cut"
            )
        # 6. a loop ends on its own first frame: the next shot cannot carry on from it
        if shot.continues_previous and position > 0 and board.shots[position - 1].loop:
            problems.append(
                f"{where}: field 'continues_previous' is set but shot {board.shots[position - 1].id} "
                "before it has field 'loop' set"
            )
        # 7. timed prompt changes: inside the shot, in strictly increasing time, with text
        problems += _prompt_change_problems(where, shot)
    if problems:
        label = llm.label if llm is not None else board.planner or "the planner"
        raise LLMOutputError(f"the storyboard from {label} is not usable: " + "; ".join(problems), fix=_fix(llm))


def _prompt_change_problems(where: str, shot: Shot) -> list[str]:
    """What is wrong with a shot's prompt_changes: each 0 < at < duration, increasing, with text."""
    problems: list[str] = []
    previous: float | None = None
    for number, change in enumerate(shot.prompt_changes, start=1):
        field = f"field 'prompt_changes' #{number} (at {change.at:g} s)"
        if not 0 < change.at < shot.duration:
            problems.append(f"{where}: {field} is not inside the shot (0 s to its duration {shot.duration:g} s)")
        if previous is not None and change.at <= previous:
            problems.append(f"{where}: {field} does not come after the change before it (at {previous:g} s)")
        if not change.text.strip():
            problems.append(f"{where}: {field} has no text")
        previous = change.at
    return problems


def _fix(llm: LLMBackend | None) -> str:
    if llm is not None and llm.name == "embedded":
        return "report this as a storyflow bug, with the story file; meanwhile reword the story or change its seed"
    return "rerun with --llm embedded, or try again / with a stronger model (its answer is random)"


def _with_story_facts(board: Storyboard, story: Story) -> Storyboard:
    """Copy the story's own facts over the LLM's answer, warning where they differed."""
    facts = {
        "title": story.title,
        "slug": story.slug,
        "story_sha256": story.sha256,
        "width": story.width,
        "height": story.height,
        "fps": story.fps,
        "seed": story.seed,
        "title_card": story.title_card,
        "target_seconds": story.duration,
    }
    changed = [name for name, value in facts.items() if getattr(board, name) != value]
    if changed:
        log.warning("the planner changed %s; using the story's values", ", ".join(changed))
    return board.model_copy(update=facts)


# ---------------------------------------------------------------- storyboard files


def storyboard_json(board: Storyboard) -> str:
    """The storyboard as stable JSON (sorted keys, indent 2): equal boards, equal bytes."""
    return json.dumps(board.model_dump(mode="json"), sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def save_storyboard(board: Storyboard, path: Path | str) -> Path:
    """Write storyboard_json(board) to `path` atomically."""
    from storyflow.media import atomic_write_text

    path = Path(path)
    atomic_write_text(path, storyboard_json(board))
    return path


def load_storyboard(path: Path | str) -> Storyboard:
    """Read a storyboard JSON file written by storyboard_json / save_storyboard."""
    from pydantic import ValidationError

    path = Path(path)
    try:
        return Storyboard.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        raise InputError(
            f"storyboard file not found: {path}", fix="check the path, or run `storyflow plan` first"
        ) from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "the file"
        raise InputError(
            f"{path} is not a storyboard: {where}: {first['msg']}",
            fix="regenerate it with `storyflow plan STORY --json`",
        ) from None


# ---------------------------------------------------------------- instructions for chat LLMs


def plan_instructions(story: Story, prompts: PromptFolder | None = None) -> str:
    """The system prompt a chat LLM gets to plan this story (prompts/plan_system.md)."""
    prompts = prompts or PromptFolder.from_settings()
    return prompts.load(PLAN_INSTRUCTIONS).render(
        schema=json.dumps(Storyboard.model_json_schema(), indent=2, sort_keys=True),
        camera_moves=[move.value for move in CameraMove],
        transitions=[transition.value for transition in Transition],
        moods=list(MOODS),
        characters=story.characters,
        fps=story.fps,
        target_duration=story.duration,
        title_card_seconds=TITLE_CARD_SECONDS if story.title_card else 0.0,
        crossfade_seconds=CROSSFADE_SECONDS,
        change_hold_seconds=CHANGE_HOLD_SECONDS,
    )
