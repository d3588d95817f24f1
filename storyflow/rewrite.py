"""Shot -> ShotPrompt, through an LLM backend and the templates in prompts/.

A shot with timed prompt changes gets one more prompt per change (ShotPrompt.changes, at
the same times): the prompt a video segment starting there must be generated from.

Prompt templates are versioned files (Jinja2) in the repository's prompts/ folder, or in
$STORYFLOW_PROMPTS_DIR when set. Every prompt carries the sha256 of the template that
wrote it, so the catalog can tell which prompt version made which clip. Templates render
with StrictUndefined: a misspelt variable is an error that names the template.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from storyflow.errors import InputError, LLMOutputError

if TYPE_CHECKING:
    import jinja2

    from storyflow.backends.base import LLMBackend
    from storyflow.models import Shot, ShotPrompt, Storyboard

PROMPTS_DIR_ENV = "STORYFLOW_PROMPTS_DIR"
REWRITE_INSTRUCTIONS = "rewrite_system.md"


def prompts_dir() -> Path:
    """Where templates are read from: $STORYFLOW_PROMPTS_DIR, else the repository's prompts/."""
    override = os.environ.get(PROMPTS_DIR_ENV)
    if override:
        return Path(override).expanduser()
    return Path(__file__).resolve().parent.parent / "prompts"


@dataclass(frozen=True)
class PromptTemplate:
    """One template file: its text and the sha256 of its bytes (the prompt's version)."""

    name: str
    text: str
    sha256: str
    path: Path

    def render(self, **variables: Any) -> str:
        """Render with Jinja2; an undefined variable or a syntax error names this template."""
        import jinja2

        try:
            return _compile(self.text).render(**variables)
        except jinja2.TemplateSyntaxError as exc:
            raise InputError(
                f"prompt template {self.path}, line {exc.lineno}: {exc.message}",
                fix=f"correct the Jinja2 syntax in {self.path}, or restore the file from git",
            ) from None
        except jinja2.UndefinedError as exc:
            known = ", ".join(sorted(variables))
            raise InputError(
                f"prompt template {self.path}: {exc.message}",
                fix=f"use only the variables this template gets: {known}",
            ) from None


@functools.lru_cache(maxsize=64)
def _compile(text: str) -> jinja2.Template:
    """A compiled template per distinct text (compiling costs more than rendering)."""
    import jinja2

    environment = jinja2.Environment(
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # prompts are plain text, not HTML
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    return environment.from_string(text)


def load_template(name: str) -> PromptTemplate:
    """Read prompts/<name> (or $STORYFLOW_PROMPTS_DIR/<name>)."""
    # 1. a plain file name: a template can never be read from outside the prompts folder
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name) or ".." in name:
        raise InputError(f"bad prompt template name {name!r}", fix="name a file in prompts/, e.g. shot_prompt.j2")
    folder = prompts_dir()
    path = folder / name
    # 2. read it as UTF-8 text
    if not path.is_file():
        where = f"${PROMPTS_DIR_ENV} ({folder})" if os.environ.get(PROMPTS_DIR_ENV) else str(folder)
        raise InputError(
            f"prompt template {name} not found in {where}",
            fix=f"restore prompts/{name} from git, or unset {PROMPTS_DIR_ENV}"
            if os.environ.get(PROMPTS_DIR_ENV)
            else f"restore prompts/{name} from git",
        )
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"prompt template {path} is not UTF-8 text", fix="save it as UTF-8") from None
    return PromptTemplate(name=name, text=text, sha256=hashlib.sha256(data).hexdigest(), path=path)


def templates_sha256() -> str:
    """One sha256 over every template in the prompts folder: an edit to any of them is a new version."""
    digest = hashlib.sha256()
    folder = prompts_dir()
    for path in sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def rewrite_cache_key(shot: Shot, board: Storyboard, llm: LLMBackend) -> str:
    """What determines a shot's prompt: the LLM, the shot, and what the storyboard says of the whole
    film (style, characters, size). Not the story file's hash: an edit elsewhere in the story
    must not make every shot's prompt new."""
    from storyflow.cache import cache_key

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
    from storyflow.backends.llm.embedded_rules import CAMERA_PHRASES, DEFAULT_NEGATIVE

    return load_template(REWRITE_INSTRUCTIONS).render(
        camera_phrases={move.value: phrase for move, phrase in CAMERA_PHRASES.items()},
        default_negative=DEFAULT_NEGATIVE,
    )
