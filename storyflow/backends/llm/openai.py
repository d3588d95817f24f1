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
from typing import Any, Literal

from pydantic import Field

from storyflow.backends.base import LLMTask
from storyflow.backends.chat import ChatLLM, ChatOptions, Reply
from storyflow.backends.openai_api import EndpointOptions, OpenAIEndpoint
from storyflow.core.errors import GenerationError
from storyflow.core.secrets import redact

log = logging.getLogger(__name__)

Structured = Literal["json_schema", "json_object", "none"]
FALLBACK: dict[str, Structured] = {"json_schema": "json_object", "json_object": "none"}


class OpenAIOptions(ChatOptions, EndpointOptions):
    model: str = Field(default="gpt-4.1-mini", min_length=1, description="the model name the server knows")
    structured: Literal["auto", "json_schema", "json_object", "none"] = Field(
        default="auto", description="response_format: auto tries json_schema, then json_object, then none")


class OpenAIBackend(OpenAIEndpoint, ChatLLM):
    name = "openai"
    description = "OpenAI or an OpenAI-compatible server (vLLM, Ollama); key in $OPENAI_API_KEY"
    Options = OpenAIOptions
    requires = ("openai",)
    install = 'pip install "storyflow[openai]"'
    operational = ChatLLM.operational | {"timeout", "max_retries", "structured"}
    fallback = "--llm embedded"

    options: OpenAIOptions

    def __init__(self, options: OpenAIOptions | None = None) -> None:
        super().__init__(options)
        self._mode: Structured | None = None if self.options.structured == "auto" else self.options.structured

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
                raise self.api_error(exc) from None
            except openai.OpenAIError as exc:
                raise self.api_error(exc) from None
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
