"""What the backends that speak OpenAI's API share: where they ask, the client, what its errors mean.

`--llm openai` and `--speech-backend openai` both ask api.openai.com (key in OPENAI_API_KEY),
or an OpenAI-compatible server named by their `base_url` option or OPENAI_BASE_URL (vLLM,
Ollama, a local TTS server), which usually needs no key: a placeholder is sent then. Keys
come from the environment only. Retries are the openai client's own (timeouts, connection
errors, 408/409/429 and 5xx, jittered backoff, Retry-After honoured up to two minutes); a
refused key is never retried. This module sits beside base.py because the backends under
llm/ and speech/ must stay independent of each other (an import-linter contract); the
openai package is imported only inside the methods.
"""

from __future__ import annotations

import os
import re
import threading
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from storyflow.backends.base import BackendOptions
from storyflow.core.errors import BackendUnavailableError, GenerationError, TransientError
from storyflow.core.secrets import redact

if TYPE_CHECKING:
    import openai

DEFAULT_HOST = "api.openai.com"
PLACEHOLDER_KEY = "not-needed"  # local servers ignore the key, but the client insists on one
_CLIENTS = threading.Lock()  # made once per backend; the lock only guards that first time


class EndpointOptions(BackendOptions):
    """Where an OpenAI-API backend asks, and how long and how often it tries."""

    base_url: str | None = Field(default=None, description="an OpenAI-compatible server (default: "
                                 "OPENAI_BASE_URL, else api.openai.com)")  # fmt: skip
    timeout: float = Field(default=120.0, gt=0, description="seconds to wait for one answer")
    max_retries: int = Field(default=4, ge=0, le=10, description="retries of timeouts, 429 and 5xx")

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL, e.g. http://localhost:11434/v1")
        return value or None


class OpenAIEndpoint:
    """Mixin for a backend with EndpointOptions: the server it asks, its client, its errors as storyflow's."""

    kind: ClassVar[str]
    model: str
    options: EndpointOptions
    local_example: ClassVar[str] = "http://localhost:11434/v1"  # an OpenAI-compatible server, for messages
    fallback: ClassVar[str] = ""  # the backend to use instead, as a flag: "--llm embedded"
    _client: openai.OpenAI | None = None

    @property
    def base_url(self) -> str | None:
        """The server asked: the option, else OPENAI_BASE_URL, else None (OpenAI itself)."""
        return self.options.base_url or os.environ.get("OPENAI_BASE_URL") or None

    @property
    def host(self) -> str:
        """The server's host[:port], for messages (never its credentials)."""
        if not self.base_url:
            return DEFAULT_HOST
        parts = urlsplit(self.base_url)
        return f"{parts.hostname}:{parts.port}" if parts.port else parts.hostname or self.base_url

    @property
    def option_flag(self) -> str:
        return f"--{self.kind}-option"

    def check(self) -> None:
        """OpenAI itself needs OPENAI_API_KEY; a server of one's own does not."""
        if not self.base_url and not os.environ.get("OPENAI_API_KEY"):
            raise BackendUnavailableError(
                f"the {self.kind} backend 'openai' needs an API key and OPENAI_API_KEY is not set",
                fix="set OPENAI_API_KEY in the environment (keys are never options), or point it at an "
                f"OpenAI-compatible server with {self.option_flag} base_url={self.local_example}, "
                f"or use {self.fallback}",
            )

    def client(self) -> openai.OpenAI:
        """The openai client, made once; the key is read from the environment by the client itself."""
        with _CLIENTS:
            if self._client is None:
                import openai

                key = None if os.environ.get("OPENAI_API_KEY") or not self.base_url else PLACEHOLDER_KEY
                try:
                    self._client = openai.OpenAI(api_key=key, base_url=self.base_url, timeout=self.options.timeout,
                                                 max_retries=self.options.max_retries)  # fmt: skip
                except openai.OpenAIError as exc:
                    raise BackendUnavailableError(
                        f"cannot set up the openai client for {self.host}: {redact(str(exc))}",
                        fix="set OPENAI_API_KEY in the environment (keys are never options)",
                    ) from None
            return self._client

    @property
    def refused_fix(self) -> str:
        """What to check when the server refuses a request (a backend names its own options)."""
        return f"check the model's options ({self.option_flag} ...) against what the server supports"

    def api_error(self, exc: Exception) -> Exception:
        """The storyflow error for an openai error: what failed, where, with the fix."""
        import openai

        where = f"openai model {self.model} at {self.host}"
        retries = f"{self.options.max_retries} {'retry' if self.options.max_retries == 1 else 'retries'}"
        if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
            return BackendUnavailableError(
                f"{self.host} refused the API key (HTTP {exc.status_code}) for openai model {self.model}",
                fix=f"set OPENAI_API_KEY in the environment to a key {self.host} accepts "
                f"(keys are never options), or use {self.fallback}",
            )
        if isinstance(exc, openai.APITimeoutError):
            return TransientError(f"{where} did not answer within {self.options.timeout:g} s ({retries})",
                                  fix=f"try again later, or raise {self.option_flag} timeout=... for a slow model")  # fmt: skip
        if isinstance(exc, openai.APIConnectionError):
            return TransientError(f"cannot reach {where} ({retries}): {redact(str(exc))}",
                                  fix="check that the server is running and base_url (or OPENAI_BASE_URL) "
                                  "points at it, or try again later")  # fmt: skip
        if isinstance(exc, openai.APIStatusError):
            said, status = redact(server_message(exc)), exc.status_code
            if status == 429 and exc.code == "insufficient_quota":
                return GenerationError(f"{where}: out of quota (HTTP 429): {said}",
                                       fix=f"check the account's plan and billing, or use {self.fallback}")  # fmt: skip
            if status in (408, 409, 429) or status >= 500:
                return TransientError(f"{where} failed with HTTP {status} after {retries}: {said}",
                                      fix="try again later (the server is busy or failing)")  # fmt: skip
            if status == 404:
                return GenerationError(f"{where} answered HTTP 404: {said}",
                                       fix=f"check the model name ({self.option_flag} model=...) and base_url")  # fmt: skip
            return GenerationError(f"{where} refused the request (HTTP {status}): {said}", fix=self.refused_fix)
        return GenerationError(f"{where} failed: {redact(str(exc))}", fix=f"try again, or use {self.fallback}")


def server_message(exc: Any) -> str:
    """What the server said, without the client's 'Error code: 400 - ' prefix."""
    body = exc.body
    if isinstance(body, dict) and isinstance(body.get("message"), str) and body["message"]:
        return body["message"]
    return re.sub(r"^Error code: \d+ - ", "", exc.message)
