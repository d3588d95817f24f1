"""Shot -> ShotPrompt, through an LLM backend and the templates in prompts/.

A shot with timed prompt changes gets one more prompt per change (ShotPrompt.changes, at
the same times): the prompt a video segment starting there must be generated from.
Templates are versioned files (storyflow.core.templates); every prompt carries the sha256
of the one that wrote it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from storyflow.backends.base import LLMTask
from storyflow.catalog import PROMPT, Generations
from storyflow.core.errors import LLMOutputError
from storyflow.core.hashing import cache_key
from storyflow.core.models import PromptAnswer, ShotPrompt
from storyflow.core.templates import PromptFolder
from storyflow.core.vocabulary import CAMERA_PHRASES, DEFAULT_NEGATIVE

if TYPE_CHECKING:
    from storyflow.backends.base import LLMBackend
    from storyflow.core.models import Shot, Storyboard

REWRITE_INSTRUCTIONS = "rewrite_system.md"


def rewrite_cache_key(shot: Shot, board: Storyboard, llm: LLMBackend, prompts: PromptFolder) -> str:
    """What determines a shot's prompt: the LLM, the templates, the shot, and what the storyboard says
    of the whole film (style, characters, size). Not the story file's hash: an edit elsewhere in
    the story must not make every shot's prompt new."""
    return cache_key(
        "rewrite", **llm.identity(), templates=prompts.sha256(), shot=shot.model_dump(mode="json"),
        board=board.model_dump(mode="json", exclude={"shots", "story_sha256"}),
    )  # fmt: skip


def rewrite_shot(
    shot: Shot, board: Storyboard, llm: LLMBackend, door: Generations | None = None, prompts: PromptFolder | None = None
) -> ShotPrompt:
    """One shot -> its prompt through the LLM backend, checked before anything uses it (or the
    prompt written before for the same shot, film, LLM and templates)."""
    prompts = prompts or PromptFolder.from_settings()
    door = door or Generations.in_memory()

    def make() -> ShotPrompt:
        return _checked(llm.rewrite(shot, board, rewrite_task(prompts)), shot, llm)

    prompt = door.reuse_or_make(PROMPT, rewrite_cache_key(shot, board, llm, prompts), make)
    return prompt if prompt.shot_id == shot.id else prompt.model_copy(update={"shot_id": shot.id})


def _checked(result: ShotPrompt, shot: Shot, llm: LLMBackend) -> ShotPrompt:
    """The LLM's prompt for `shot`, if it is one: LLMOutputError naming the field that is not."""
    where = f"{llm.label} rewrote shot {shot.id}"
    fix = f"rerun with --llm embedded, or check the {llm.name} backend's model and prompt templates"
    if getattr(result, "shot_id", None) != shot.id:
        raise LLMOutputError(
            f"{where}: field 'shot_id' is {getattr(result, 'shot_id', None)!r}, not {shot.id!r}", fix=fix
        )
    if not result.prompt.strip():
        raise LLMOutputError(f"{where}: field 'prompt' is empty", fix=fix)
    # an evolving shot: one timed prompt per change of the shot, at the same times, none empty
    wanted = [change.at for change in shot.prompt_changes]
    got = [change.at for change in result.changes]
    if got != wanted:
        raise LLMOutputError(
            f"{where}: field 'changes' has prompts at {got or 'no times'} s, the shot's prompt_changes are at "
            f"{wanted or 'no times'} s",
            fix=fix,
        )
    empty = [change.at for change in result.changes if not change.prompt.strip()]
    if empty:
        raise LLMOutputError(f"{where}: field 'changes' has an empty prompt at {empty[0]:g} s", fix=fix)
    return result


def rewrite_shots(
    board: Storyboard, llm: LLMBackend, door: Generations | None = None, prompts: PromptFolder | None = None
) -> list[ShotPrompt]:
    """Every shot of a storyboard -> its prompt, in shot order."""
    prompts = prompts or PromptFolder.from_settings()
    return [rewrite_shot(shot, board, llm, door, prompts) for shot in board.shots]


def rewrite_task(prompts: PromptFolder) -> LLMTask:
    """What the prompt writer is asked: the instructions, a PromptAnswer as the answer, the templates."""
    return LLMTask(instructions=rewrite_instructions(prompts), answer=PromptAnswer, templates=prompts)


def rewrite_instructions(prompts: PromptFolder | None = None) -> str:
    """The system prompt a chat LLM gets to rewrite shots (prompts/rewrite_system.md)."""
    prompts = prompts or PromptFolder.from_settings()
    return prompts.load(REWRITE_INSTRUCTIONS).render(
        camera_phrases={move.value: phrase for move, phrase in CAMERA_PHRASES.items()},
        default_negative=DEFAULT_NEGATIVE,
    )
