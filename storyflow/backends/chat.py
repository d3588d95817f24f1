"""What every chat-model LLM backend shares: ask, read the JSON, validate, ask for repairs, count the cost.

A chat model answers a stage's `LLMTask` with text. `ChatLLM.answer` turns that text into
the pydantic answer the task names (PlanAnswer, PromptAnswer): it finds the one JSON object
in the reply (code fences and prose around it are tolerated), validates it, and runs the
task's own `check`. Whatever is wrong goes back to the model as a compact list (field path
and message), with the request for the whole corrected object, up to `repairs` times; then
LLMOutputError says which model failed and how. Each answer, good or not, appends one
LLMUsage to the task: calls, repairs, tokens, time and, when prices are given, dollars.

A concrete backend only says how to send messages and get one reply (`complete`). This
module sits beside base.py, not under llm/, because the backends under llm/ must stay
independent of each other (an import-linter contract).
"""

from __future__ import annotations

import json
import logging
import re
import time
from abc import abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, Field, ValidationError

from storyflow.backends.base import BackendOptions, LLMBackend, LLMTask
from storyflow.core.errors import LLMOutputError

if TYPE_CHECKING:
    from storyflow.core.models import PlanAnswer, PromptAnswer, Shot, Story, Storyboard

log = logging.getLogger(__name__)

MAX_LISTED_PROBLEMS = 10  # what a repair request (and the final error) lists; the rest is counted
MAX_ECHOED_CHARS = 8000  # a runaway answer is sent back cut to this, not whole


@dataclass(frozen=True)
class Reply:
    """One reply of a chat model: its text and, where the server said, what it cost in tokens."""

    text: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    truncated: bool = False  # cut off at the token limit: its JSON is likely unfinished
    calls: int = 1  # requests it took: retries and refused formats included


class ChatOptions(BackendOptions):
    """Options every chat backend takes; a backend subclasses this to add its own."""

    model: str = Field(default="", description="the model to ask")
    temperature: float = Field(default=0.0, ge=0.0, le=2.0, description="0: the most likely answer")
    max_tokens: int | None = Field(default=None, gt=0, description="most tokens per answer (default: the model's)")
    seed: int | None = Field(default=None, description="sampling seed, where the model honours one")
    repairs: int = Field(default=2, ge=0, le=5, description="times an invalid answer is sent back to be fixed")
    input_price: float | None = Field(default=None, ge=0, description="USD per million prompt tokens")
    output_price: float | None = Field(default=None, ge=0, description="USD per million completion tokens")


class ChatLLM(LLMBackend):
    """An LLM backend that asks a chat model and repairs its answers; subclasses implement `complete`."""

    Options: ClassVar[type[BackendOptions]] = ChatOptions
    # Options that change how an answer is fetched or paid for, never what it says: left out of cache keys.
    operational: ClassVar[frozenset[str]] = frozenset({"repairs", "input_price", "output_price"})

    options: ChatOptions

    @property
    def model(self) -> str:
        return self.options.model

    def plan(self, story: Story, task: LLMTask) -> PlanAnswer:
        return self.answer(task)

    def rewrite(self, shot: Shot, board: Storyboard, task: LLMTask) -> PromptAnswer:
        return self.answer(task)

    @abstractmethod
    def complete(self, messages: list[dict[str, str]], task: LLMTask) -> Reply:
        """Send the conversation so far and return the model's next reply."""

    def answer(self, task: LLMTask) -> Any:
        """An instance of `task.answer`, repaired up to `repairs` times; LLMOutputError when none is valid."""
        messages = [{"role": "system", "content": system_prompt(task)}, {"role": "user", "content": task.question}]
        what = answer_name(task)
        replies: list[Reply] = []
        started = time.monotonic()
        problems: list[str] = []
        try:
            for attempt in range(self.options.repairs + 1):
                if attempt:
                    log.warning("%s model %s: answer %d was not a valid %s (%s); asking for a repair",
                                self.name, self.model_ref, attempt, what, "; ".join(problems[:3]))  # fmt: skip
                    messages += [{"role": "assistant", "content": replies[-1].text[:MAX_ECHOED_CHARS]},
                                 {"role": "user", "content": repair_request(problems, what)}]  # fmt: skip
                reply = self.complete(messages, task)
                replies.append(reply)
                answer, problems = parse_answer(reply.text, task)
                if not problems:
                    return answer
                if reply.truncated:
                    problems.append("the answer was cut off at the token limit (raise --llm-option max_tokens=...)")
            raise LLMOutputError(
                f"{self.name} model {self.model_ref} answered {len(replies)} "
                f"{'time' if len(replies) == 1 else 'times'} without a valid {what}: {summary(problems)}",
                fix="try a stronger model (--llm-option model=...), "
                + (f"allow more repairs (--llm-option repairs={min(5, self.options.repairs + 2)}), "
                   if self.options.repairs < 5 else "")
                + "or plan with the rule-based planner (--llm embedded)",
            )
        finally:
            if replies:
                task.usage.append(self.usage(replies, time.monotonic() - started))

    def usage(self, replies: list[Reply], seconds: float) -> Any:
        """One LLMUsage for an answer: tokens only when every reply reported them, cost when prices are set."""
        from storyflow.core.models import LLMUsage

        prompt = _total([r.prompt_tokens for r in replies])
        completion = _total([r.completion_tokens for r in replies])
        cost = None
        if prompt is not None and completion is not None and self.options.input_price is not None \
                and self.options.output_price is not None:  # fmt: skip
            cost = (prompt * self.options.input_price + completion * self.options.output_price) / 1_000_000
        return LLMUsage(model=self.model_ref, calls=sum(r.calls for r in replies), repairs=len(replies) - 1,
                        prompt_tokens=prompt, completion_tokens=completion, latency_s=round(seconds, 3),
                        cost_usd=cost)  # fmt: skip


def _total(counts: list[int | None]) -> int | None:
    return None if any(c is None for c in counts) else sum(c for c in counts if c is not None)


# ---------------------------------------------------------------- reading an answer


_NAMES = {"PlanAnswer": "storyboard", "PromptAnswer": "shot prompt"}


def answer_name(task: LLMTask) -> str:
    """What the task asks for, in words: 'storyboard', 'shot prompt' (else the schema's name)."""
    return _NAMES.get(task.answer.__name__, task.name)


def system_prompt(task: LLMTask) -> str:
    """The task's instructions, with the answer's JSON Schema added when they do not already show its fields.

    The stage's prompts carry the schema (or an example of it); a model asked in plain JSON
    mode, or one with no structured output at all, can only follow a shape it is shown.
    """
    fields = task.schema.get("properties", {})
    if fields and all(f'"{name}"' in task.instructions for name in fields):
        return task.instructions
    schema = json.dumps(task.schema, separators=(",", ":"), sort_keys=True)
    return f"{task.instructions.rstrip()}\n\nAnswer with one JSON object that follows this JSON Schema:\n{schema}\n"


_FENCE = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)```", re.DOTALL)
_THINKING = re.compile(r"<think>.*?</think>", re.DOTALL)


def extract_json(text: str) -> Any:
    """The one JSON object in a reply: the whole text, a fenced block, or the first object in prose; None if none."""
    text = _THINKING.sub("", text).strip()
    candidates = [text, *(block.strip() for block in _FENCE.findall(text))]
    for candidate in candidates:
        try:
            value = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    decoder = json.JSONDecoder()
    for start in (i for i, char in enumerate(text) if char == "{"):
        try:
            value, _ = decoder.raw_decode(text, start)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return None


def parse_answer(text: str, task: LLMTask) -> tuple[Any, list[str]]:
    """(the validated answer, []) or (None, what is wrong with it, as 'field.path: message' lines)."""
    data = extract_json(text)
    if data is None:
        start = " ".join(text.split())[:80]
        return None, [f"the answer holds no JSON object (it starts: {start!r})" if start else "the answer is empty"]
    try:
        answer: BaseModel = task.answer.model_validate(data)
    except ValidationError as exc:
        return None, [_problem(error) for error in exc.errors(include_url=False)]
    return answer, task.problems(answer)


def _problem(error: Any) -> str:
    where = ".".join(str(part) for part in error["loc"]) or "(the object)"
    return f"{where}: {error['msg']}"


def summary(problems: list[str]) -> str:
    """The first MAX_LISTED_PROBLEMS problems on one line, and how many more there are."""
    more = len(problems) - MAX_LISTED_PROBLEMS
    return "; ".join(problems[:MAX_LISTED_PROBLEMS]) + (f"; ... and {more} more" if more > 0 else "")


def repair_request(problems: list[str], what: str) -> str:
    """The user message that sends an invalid answer back: at most MAX_LISTED_PROBLEMS lines, then the ask."""
    listed = problems[:MAX_LISTED_PROBLEMS]
    more = len(problems) - len(listed)
    lines = "\n".join(f"- {problem}" for problem in listed) + (f"\n- ... and {more} more" if more else "")
    return (f"That answer is not a valid {what}:\n{lines}\n"
            "Answer again with the whole corrected JSON object, and nothing else.")  # fmt: skip
