"""Prompt templates: versioned Jinja2 files in the repository's prompts/ folder.

The folder is the repository's prompts/, or $STORYFLOW_PROMPTS_DIR when set (a PromptFolder,
handed to the stages that write prompts). Every prompt
carries the sha256 of the template that wrote it, so the catalog can tell which prompt
version made which clip. Templates render with StrictUndefined: a misspelt variable is an
error that names the template. Jinja2 is imported on first render.
"""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from storyflow.core.errors import InputError

if TYPE_CHECKING:
    import jinja2

PROMPTS_DIR_ENV = "STORYFLOW_PROMPTS_DIR"
REPOSITORY_PROMPTS = Path(__file__).resolve().parents[2] / "prompts"


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


# Templates read only after a video provider's safety filter refused a prompt (storyflow.stages.rephrase).
REPHRASE_TEMPLATE = "rephrase_system.md"
REFUSAL_ONLY = frozenset({REPHRASE_TEMPLATE})


@dataclass(frozen=True)
class PromptFolder:
    """The folder prompt templates are read from: what every stage that writes a prompt is handed."""

    path: Path = REPOSITORY_PROMPTS
    chosen: bool = False  # the user chose it (STORYFLOW_PROMPTS_DIR): messages say so

    @classmethod
    def of(cls, directory: Path | str | None) -> PromptFolder:
        """The folder a setting names (STORYFLOW_PROMPTS_DIR), else the repository's prompts/."""
        return cls(Path(directory).expanduser(), chosen=True) if directory else cls()

    @classmethod
    def from_settings(cls) -> PromptFolder:
        """The folder the settings name (storyflow.core.config: STORYFLOW_PROMPTS_DIR)."""
        from storyflow.core.config import load_settings

        return cls.of(load_settings().prompts_dir)

    def load(self, name: str) -> PromptTemplate:
        """Read <folder>/<name> as a template."""
        # 1. a plain file name: a template can never be read from outside the prompts folder
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name) or ".." in name:
            raise InputError(f"bad prompt template name {name!r}", fix="name a file in prompts/, e.g. shot_prompt.j2")
        path = self.path / name
        # 2. read it as UTF-8 text
        if not path.is_file():
            where = f"${PROMPTS_DIR_ENV} ({self.path})" if self.chosen else str(self.path)
            fix = f"restore prompts/{name} from git" + (f", or unset {PROMPTS_DIR_ENV}" if self.chosen else "")
            raise InputError(f"prompt template {name} not found in {where}", fix=fix)
        data = path.read_bytes()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise InputError(f"prompt template {path} is not UTF-8 text", fix="save it as UTF-8") from None
        return PromptTemplate(name=name, text=text, sha256=hashlib.sha256(data).hexdigest(), path=path)

    def sha256(self) -> str:
        """One sha256 over every template that writes a first plan or prompt: an edit to any of them is a
        new version. Templates read only afterwards (REFUSAL_ONLY) are left out, so adding or editing one
        never rewrites (and pays again for) prompts that did not need it; what reads them hashes them."""
        digest = hashlib.sha256()
        for path in sorted(p for p in self.path.iterdir() if p.is_file() and not p.name.startswith(".")
                           and p.name not in REFUSAL_ONLY):  # fmt: skip
            digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
        return digest.hexdigest()
