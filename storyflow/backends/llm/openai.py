"""The openai LLM backend: plans and prompts from OpenAI, or from any server that speaks its chat API.

`--llm openai` asks api.openai.com (key in OPENAI_API_KEY); `--llm-option base_url=...`
(or OPENAI_BASE_URL) points it at an OpenAI-compatible server instead: vLLM, Ollama,
LM Studio, llama.cpp. Such servers usually need no key, so then a placeholder is sent
when none is set. Keys come from the environment only, never from options or logs.

Structured output first (`response_format` json_schema, not strict, so optional fields
stay optional); a server that answers 400 about response_format gets plain JSON mode,
then no response_format at all (the system prompt always shows the schema), and the
mode that worked is kept for this backend. Retries are the openai client's own: timeouts,
connection errors, 408/409/429 and 5xx, with jittered exponential backoff, honouring
Retry-After and retry-after-ms up to two minutes (openai/_base_client.py `_should_retry`,
`_calculate_retry_timeout`). A refused key (401/403) is never retried.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from storyflow.backends.base import LLMTask
from storyflow.backends.chat import ChatLLM, ChatOptions, Reply
from storyflow.core.errors import BackendUnavailableError, GenerationError, TransientError
from storyflow.core.secrets import redact

if TYPE_CHECKING:
    import openai

log = logging.getLogger(__name__)

DEFAULT_HOST = "api.openai.com"
PLACEHOLDER_KEY = "not-needed"  # local servers ignore the key, but the client insists on one
Structured = Literal["json_schema", "json_object", "none"]
FALLBACK: dict[str, Structured] = {"json_schema": "json_object", "json_object": "none"}


class OpenAIOptions(ChatOptions):
    model: str = Field(default="gpt-4.1-mini", min_length=1, description="the model name the server knows")
    base_url: str | None = Field(default=None, description="an OpenAI-compatible server (default: "
                                 "OPENAI_BASE_URL, else api.openai.com)")  # fmt: skip
    timeout: float = Field(default=120.0, gt=0, description="seconds to wait for one reply")
    max_retries: int = Field(default=4, ge=0, le=10, description="retries of timeouts, 429 and 5xx")
    structured: Literal["auto", "json_schema", "json_object", "none"] = Field(
        default="auto", description="response_format: auto tries json_schema, then json_object, then none")

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL, e.g. http://localhost:11434/v1")
        return value or None


class OpenAIBackend(ChatLLM):
    name = "openai"
    description = "OpenAI or an OpenAI-compatible server (vLLM, Ollama); key in $OPENAI_API_KEY"
    Options = OpenAIOptions
    requires = ("openai",)
    install = 'pip install "storyflow[openai]"'
    operational = ChatLLM.operational | {"timeout", "max_retries", "structured"}

    options: OpenAIOptions

    def __init__(self, options: OpenAIOptions | None = None) -> None:
        super().__init__(options)
        self._client: openai.OpenAI | None = None
        self._lock = threading.Lock()
        self._mode: Structured | None = None if self.options.structured == "auto" else self.options.structured

    # ------------------------------------------------------------ where it asks

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

    def check(self) -> None:
        if not self.base_url and not os.environ.get("OPENAI_API_KEY"):
            raise BackendUnavailableError(
                "the llm backend 'openai' needs an API key and OPENAI_API_KEY is not set",
                fix="set OPENAI_API_KEY in the environment (keys are never options), or point it at an "
                "OpenAI-compatible server with --llm-option base_url=http://localhost:11434/v1, "
                "or use --llm embedded",
            )

    def client(self) -> openai.OpenAI:
        """The openai client, made once; the key is read from the environment by the client itself."""
        with self._lock:
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

    # ------------------------------------------------------------ asking

    def complete(self, messages: list[dict[str, str]], task: LLMTask) -> Reply:
        import openai

        client = self.client()
        refused = 0  # requests whose response_format the server refused
        while True:
            mode = self._mode or "json_schema"
            try:
                raw = client.chat.completions.with_raw_response.create(
                    model=self.options.model, messages=messages, **self._parameters(mode, task))
            except (openai.BadRequestError, openai.UnprocessableEntityError) as exc:
                if self.options.structured == "auto" and mode in FALLBACK and _about_response_format(exc):
                    log.warning("openai model %s at %s does not take response_format %s (HTTP %s); trying %s",
                                self.model, self.host, mode, exc.status_code, FALLBACK[mode])  # fmt: skip
                    self._mode = FALLBACK[mode]
                    refused += 1
                    continue
                raise self._error(exc) from None
            except openai.OpenAIError as exc:
                raise self._error(exc) from None
            self._mode = mode
            try:
                return _reply(raw.parse(), calls=1 + refused + raw.retries_taken)
            except (ValueError, TypeError, AttributeError, openai.OpenAIError):
                said = " ".join(raw.text.split())[:80]
                raise GenerationError(
                    f"openai model {self.model} at {self.host} answered with something that is not a chat "
                    f"completion: {redact(said)!r}",
                    fix="check that base_url points at an OpenAI-compatible API (its address usually ends in /v1)",
                ) from None

    def _parameters(self, mode: Structured, task: LLMTask) -> dict[str, Any]:
        options = self.options
        parameters: dict[str, Any] = {"temperature": options.temperature}
        if options.seed is not None:
            parameters["seed"] = options.seed
        if options.max_tokens is not None:  # OpenAI's own API renamed it; compatible servers know the old name
            parameters["max_tokens" if self.base_url else "max_completion_tokens"] = options.max_tokens
        if mode == "json_schema":
            # not strict: strict mode would make every field required, defaults included
            schema = {"name": task.name, "schema": task.schema, "strict": False}
            parameters["response_format"] = {"type": "json_schema", "json_schema": schema}
        elif mode == "json_object":
            parameters["response_format"] = {"type": "json_object"}
        return parameters

    @property
    def _retries(self) -> str:
        count = self.options.max_retries
        return f"{count} {'retry' if count == 1 else 'retries'}"

    def _error(self, exc: Exception) -> Exception:
        """The storyflow error for an openai error: what failed, where, with the fix."""
        import openai

        where = f"openai model {self.model} at {self.host}"
        if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
            return BackendUnavailableError(
                f"{self.host} refused the API key (HTTP {exc.status_code}) for openai model {self.model}",
                fix=f"set OPENAI_API_KEY in the environment to a key {self.host} accepts "
                "(keys are never options), or use --llm embedded",
            )
        if isinstance(exc, openai.APITimeoutError):
            return TransientError(
                f"{where} did not answer within {self.options.timeout:g} s ({self._retries})",
                fix="try again later, or raise --llm-option timeout=... for a slow model",
            )
        if isinstance(exc, openai.APIConnectionError):
            return TransientError(
                f"cannot reach {where} ({self._retries}): {redact(str(exc))}",
                fix="check that the server is running and base_url (or OPENAI_BASE_URL) points at it, "
                "or try again later",
            )
        if isinstance(exc, openai.APIStatusError):
            said = redact(_server_message(exc))
            status = exc.status_code
            if status == 429 and exc.code == "insufficient_quota":
                return GenerationError(f"{where}: out of quota (HTTP 429): {said}",
                                       fix="check the account's plan and billing, or use --llm embedded")  # fmt: skip
            if status in (408, 409, 429) or status >= 500:
                return TransientError(
                    f"{where} failed with HTTP {status} after {self._retries}: {said}",
                    fix="try again later (the server is busy or failing)",
                )
            if status == 404:
                return GenerationError(f"{where} answered HTTP 404: {said}",
                                       fix="check the model name (--llm-option model=...) and base_url")  # fmt: skip
            return GenerationError(
                f"{where} refused the request (HTTP {status}): {said}",
                fix="check the model's options (--llm-option ...) against what the server supports",
            )
        return GenerationError(f"{where} failed: {redact(str(exc))}", fix="try again, or use --llm embedded")


def _server_message(exc: Any) -> str:
    """What the server said, without the client's 'Error code: 400 - ' prefix."""
    body = exc.body
    if isinstance(body, dict) and isinstance(body.get("message"), str) and body["message"]:
        return body["message"]
    return re.sub(r"^Error code: \d+ - ", "", exc.message)


def _about_response_format(exc: Any) -> bool:
    """Whether a 400/422 says the server does not take the response_format asked for."""
    said = f"{exc.message} {exc.body}".lower()
    return any(word in said for word in ("response_format", "json_schema", "json_object", "structured output"))


def _reply(response: Any, calls: int) -> Reply:
    """A Reply from a chat completion: the message text, the tokens the server counted, whether it was cut off."""
    choice = response.choices[0] if response.choices else None
    message = choice.message if choice is not None else None
    text = (message.content or getattr(message, "refusal", None) or "") if message is not None else ""
    usage = response.usage
    return Reply(text=text, prompt_tokens=usage.prompt_tokens if usage else None,
                 completion_tokens=usage.completion_tokens if usage else None,
                 truncated=choice is not None and choice.finish_reason == "length", calls=calls)  # fmt: skip
