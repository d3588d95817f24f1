"""Shot -> ShotPrompt, through an LLM backend and the templates in prompts/.

A shot with timed prompt changes gets one more prompt per change (ShotPrompt.changes, at
the same times): the prompt a video segment starting there must be generated from.
Templates are versioned files (storyflow.core.templates); every prompt carries the sha256
of the one that wrote it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from storyflow.core.errors import LLMOutputError
from storyflow.core.templates import load_template, templates_sha256

if TYPE_CHECKING:
    from storyflow.backends.base import LLMBackend
    from storyflow.core.models import Shot, ShotPrompt, Storyboard

REWRITE_INSTRUCTIONS = "rewrite_system.md"


def rewrite_cache_key(shot: Shot, board: Storyboard, llm: LLMBackend) -> str:
    """What determines a shot's prompt: the LLM, the shot, and what the storyboard says of the whole
    film (style, characters, size). Not the story file's hash: an edit elsewhere in the story
    must not make every shot's prompt new."""
    from storyflow.core.hashing import cache_key

    return cache_key(
        "rewrite", llm=llm.model, options=llm.options_dict(), templates=templates_sha256(),
        shot=shot.model_dump(mode="json"), board=board.model_dump(mode="json", exclude={"shots", "story_sha256"}),
    )  # fmt: skip


def rewrite_shot(shot: Shot, board: Storyboard, llm: LLMBackend) -> ShotPrompt:
    """One shot -> its prompt through the LLM backend, checked before anything uses it."""
    result = llm.rewrite(shot, board)
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


def rewrite_shots(board: Storyboard, llm: LLMBackend) -> list[ShotPrompt]:
    """Every shot of a storyboard -> its prompt, in shot order."""
    return [rewrite_shot(shot, board, llm) for shot in board.shots]


def rewrite_instructions() -> str:
    """The system prompt a chat LLM gets to rewrite shots (prompts/rewrite_system.md)."""
    from storyflow.core.vocabulary import CAMERA_PHRASES, DEFAULT_NEGATIVE

    return load_template(REWRITE_INSTRUCTIONS).render(
        camera_phrases={move.value: phrase for move, phrase in CAMERA_PHRASES.items()},
        default_negative=DEFAULT_NEGATIVE,
    )
