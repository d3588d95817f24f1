"""Errors a user can act on.

Every error carries a `fix`: one sentence that tells the user what to do next. The CLI
prints both and exits with `exit_code`; no traceback unless `--debug` asks for one.
"""

from __future__ import annotations

import contextlib
from pathlib import Path


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


DISK_FULL_BYTES = 16 * 2**20  # less free than this under STORYFLOW_HOME: a failure is most likely the full disk


def unexpected_failure(exc: BaseException, home: Path | None = None) -> StoryflowError:
    """What to tell the user about an exception storyflow did not raise itself: the disk that filled up, the
    folder that cannot be written, or else what failed and how to see where (--debug)."""
    import errno

    causes = cause_chain(exc)
    where = f" ({home})" if home is not None else ""
    found = next((c for c in causes if isinstance(c, OSError) and c.errno is not None), None)
    code = found.errno if found is not None else None
    kept = "finished clips are kept and reused by the next run"
    if code in (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR):  # ENOTDIR: a file where a folder must be
        return StoryflowError(f"cannot write {getattr(found, 'filename', None) or 'the output folder'}: "
                              f"{found.strerror if found is not None else 'permission denied'}",
                              fix="make STORYFLOW_HOME a folder you may write to (not a file, not read-only), then rerun")
    if code in (errno.ENOSPC, errno.EDQUOT) or (code is None and disk_full(home)):
        return StoryflowError(f"the disk holding the output folder{where} is full",
                              fix=f"free some space or set STORYFLOW_HOME to a larger disk, then rerun: {kept}")
    summary = (str(exc).strip().splitlines() or [""])[0][:300]
    return StoryflowError(f"storyflow failed unexpectedly: {type(exc).__name__}: {summary}",
                          fix=f"rerun with --debug to see where ({kept}); if it happens again, report it with that output")


def cause_chain(exc: BaseException, most: int = 20) -> list[BaseException]:
    """`exc` and what it was raised from or while handling, outermost first (at most `most` deep)."""
    chain = [exc]
    while len(chain) < most and (chain[-1].__cause__ or chain[-1].__context__) is not None:
        chain.append(chain[-1].__cause__ or chain[-1].__context__)  # type: ignore[arg-type]
    return chain


def _existing(path: Path) -> Path:
    """`path`, or its nearest folder that exists (disk_usage needs one)."""
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def disk_full(home: Path | None) -> bool:
    """Whether the disk holding `home` has less than DISK_FULL_BYTES free (False when it cannot be told)."""
    import shutil

    if home is None:
        return False
    with contextlib.suppress(OSError):
        return shutil.disk_usage(_existing(home)).free < DISK_FULL_BYTES
    return False
