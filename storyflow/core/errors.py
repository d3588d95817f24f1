"""Errors a user can act on.

Every error carries a `fix`: one sentence that tells the user what to do next. The CLI
prints both and exits with `exit_code`; no traceback unless `--debug` asks for one.
"""

from __future__ import annotations


class StoryflowError(Exception):
    """Base class: something the user can fix. `exit_code` 1 means the run failed."""

    exit_code = 1

    def __init__(self, message: str, fix: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix

    def __str__(self) -> str:
        return f"{self.message}\n  fix: {self.fix}" if self.fix else self.message


class InputError(StoryflowError):
    """The user's input is wrong (story file, option, backend name). Exit code 2."""

    exit_code = 2


class StoryError(InputError):
    """The story file cannot be read or validated."""


class UnknownBackendError(InputError):
    """No backend of that kind and name is registered."""


class BackendOptionError(InputError):
    """A backend option is unknown or has the wrong type."""


class BackendUnavailableError(StoryflowError):
    """A backend is registered but cannot run here (missing package, key or weights)."""


class GenerationError(StoryflowError):
    """A backend failed while generating (API error, model error, bad output)."""


class TransientError(GenerationError):
    """A failure worth retrying as is: rate limit, timeout, a 5xx from a hosted API."""


class ContentFiltered(GenerationError):
    """A provider's safety filter refused a prompt or its result: not retried as is (one rephrased try at most)."""

    def __init__(self, message: str, fix: str | None = None, *, reasons: tuple[str, ...] = ()) -> None:
        super().__init__(message, fix)
        self.reasons = tuple(reasons)  # the provider's own words, secrets redacted


class ShotsFailed(GenerationError):
    """Some shots could not be made; every other shot was made, and is kept for the next run."""


class BudgetExceeded(GenerationError):
    """The run's --budget is spent: the next paid clip is not asked for (the shot fails; the rest is kept)."""


class LLMOutputError(GenerationError):
    """An LLM answered with something that is not a usable storyboard or prompt."""


class MediaError(StoryflowError):
    """Encoding, decoding or muxing failed."""


class CatalogError(StoryflowError):
    """The shot catalog cannot be opened or written."""
