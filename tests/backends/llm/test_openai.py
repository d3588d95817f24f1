"""--llm openai: the real openai client, through the backend, against a real local server.

What a user would notice: the answer, how many requests reached the server, what the
repair request said, how long a rate limit was waited out, and the error text (which
names the model, the host and the fix, and never the key).
"""

from __future__ import annotations

import json
import time

import pytest

from storyflow.backends.base import LLMTask
from storyflow.backends.registry import load_backend
from storyflow.core.errors import (
    BackendOptionError,
    BackendUnavailableError,
    GenerationError,
    LLMOutputError,
    TransientError,
)
from storyflow.core.models import PlanAnswer, PromptAnswer
from storyflow.core.templates import PromptFolder
from tests.fake_openai import FakeOpenAI, Reply

KEY = "sk-test-do-not-leak-0123456789"
GULL = {"prompt": "Flat previz colours. Pan left: a gull glides over the harbour at dawn."}


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with FakeOpenAI() as fake:
        yield fake


def backend(server: FakeOpenAI, **options):
    """The backend as the CLI builds it: --llm openai --llm-option base_url=... model=..."""
    return load_backend("llm", "openai", {"base_url": server.url, "model": "gpt-test", "max_retries": 2} | options)


def prompt_task() -> LLMTask:
    return LLMTask(instructions="Write a video prompt for the shot. Answer with JSON.", answer=PromptAnswer,
                   templates=PromptFolder(), question='{"action": "a gull glides over the harbour"}',
                   name="shot_prompt")  # fmt: skip


def plan_task() -> LLMTask:
    return LLMTask(instructions="Break the story into shots. Answer with JSON.", answer=PlanAnswer,
                   templates=PromptFolder(), question="A gull glides over the harbour at dawn.",
                   name="storyboard")  # fmt: skip


def shot(duration: float) -> dict:
    return {"story_text": "A gull glides over the harbour at dawn.", "action": "a gull glides over the harbour",
            "duration": duration, "camera": ["pan left"]}  # fmt: skip


def test_a_valid_answer_is_returned_with_what_it_cost():
    with FakeOpenAI([Reply(GULL, usage={"prompt_tokens": 1200, "completion_tokens": 300})]) as server:
        llm = backend(server, input_price=2.0, output_price=8.0)
        task = prompt_task()
        answer = llm.rewrite(None, None, task)
    assert answer == PromptAnswer(prompt=GULL["prompt"])
    [request] = server.requests
    assert request["model"] == "gpt-test" and request["temperature"] == 0.0
    assert [m["role"] for m in request["messages"]] == ["system", "user"]
    assert request["messages"][1]["content"] == task.question
    assert request["response_format"]["type"] == "json_schema"
    assert request["response_format"]["json_schema"]["schema"] == PromptAnswer.model_json_schema()
    [usage] = task.usage
    assert (usage.model, usage.calls, usage.repairs) == ("gpt-test", 1, 0)
    assert (usage.prompt_tokens, usage.completion_tokens) == (1200, 300)
    assert usage.cost_usd == pytest.approx((1200 * 2.0 + 300 * 8.0) / 1e6)
    assert usage.latency_s > 0


def test_a_plan_in_a_code_fence_with_prose_around_it_is_read(server):
    server.add("Here is the storyboard:\n```json\n" + json.dumps({"shots": [shot(4.0)]}) + "\n```\nEnjoy!")
    answer = backend(server).plan(None, plan_task())
    assert isinstance(answer, PlanAnswer) and answer.shots[0].duration == 4.0
    assert [c.value for c in answer.shots[0].camera] == ["pan left"]


def test_a_reasoning_models_thoughts_are_skipped(server):
    server.add('<think>Maybe {"prompt": "a crow"}? No, the shot has a gull.</think>\n' + json.dumps(GULL))
    assert backend(server).answer(prompt_task()).prompt == GULL["prompt"]


def test_an_invalid_plan_is_sent_back_with_its_errors_and_repaired(server):
    server.add({"shots": [shot(0)]}, {"shots": [shot(3.5)]})
    task = plan_task()
    answer = backend(server).plan(None, task)
    assert answer.shots[0].duration == 3.5
    first, second = server.messages
    assert second[:2] == first and second[2] == {"role": "assistant", "content": json.dumps({"shots": [shot(0)]})}
    repair = second[3]
    assert repair["role"] == "user" and "shots.0.duration: Input should be greater than 0" in repair["content"]
    assert "whole corrected JSON object" in repair["content"]
    [usage] = task.usage
    assert (usage.calls, usage.repairs) == (2, 1)


def test_the_task_check_finds_what_the_schema_cannot(server):
    server.add({"prompt": "a crow"}, GULL)
    task = LLMTask(instructions="Answer with JSON.", answer=PromptAnswer, templates=PromptFolder(), question="gull",
                   check=lambda answer: [] if "gull" in answer.prompt else ["prompt: the gull is missing"])  # fmt: skip
    assert backend(server).answer(task).prompt == GULL["prompt"]
    assert "prompt: the gull is missing" in server.messages[1][-1]["content"]


def test_garbage_three_times_is_an_error_naming_the_model_and_what_was_wrong(server):
    server.add("I am sorry, I cannot help with storyboards.", '{"prompt": ', {"negative_prompt": "blur"})
    task = prompt_task()
    with pytest.raises(LLMOutputError) as caught:
        backend(server, repairs=2).answer(task)
    assert len(server.requests) == 3
    message = caught.value.message
    assert "openai model gpt-test answered 3 times without a valid shot prompt" in message
    assert "prompt: Field required" in message
    assert "--llm embedded" in caught.value.fix and "repairs" in caught.value.fix
    [usage] = task.usage  # recorded before the error
    assert (usage.calls, usage.repairs) == (3, 2)


def test_a_rate_limit_is_waited_out_as_long_as_retry_after_says(server):
    server.add(FakeOpenAI.error(429, "Rate limit reached", type="requests", headers={"retry-after": "1"}), GULL)
    started = time.monotonic()
    answer = backend(server).answer(prompt_task())
    assert answer.prompt == GULL["prompt"]
    assert len(server.requests) == 2
    assert time.monotonic() - started >= 1.0  # the client's own backoff alone would wait at most 0.5 s


def test_a_server_error_is_retried(server):
    server.add(FakeOpenAI.error(500, "The server had an error", type="server_error"), GULL)
    task = prompt_task()
    assert backend(server).answer(task).prompt == GULL["prompt"]
    assert len(server.requests) == 2
    assert task.usage[0].calls == 2  # the retry is counted


def test_errors_that_outlast_the_retries_are_transient_and_name_model_host_and_status(server):
    server.add(*[FakeOpenAI.error(503, "overloaded", type="server_error")] * 2)
    with pytest.raises(TransientError) as caught:
        backend(server, max_retries=1).answer(prompt_task())
    assert len(server.requests) == 2
    host = server.url.split("//")[1].removesuffix("/v1")
    assert f"openai model gpt-test at {host} failed with HTTP 503" in caught.value.message
    assert caught.value.fix


def test_a_refused_key_is_not_retried_and_the_key_never_shows(server):
    server.add(FakeOpenAI.error(401, f"Incorrect API key provided: {KEY}.", code="invalid_api_key"))
    with pytest.raises(BackendUnavailableError) as caught:
        backend(server).answer(prompt_task())
    assert len(server.requests) == 1
    assert "refused the API key (HTTP 401)" in caught.value.message and "OPENAI_API_KEY" in caught.value.fix
    assert KEY not in str(caught.value)


def test_a_timeout_is_retried_then_said_plainly(server):
    server.add(Reply(GULL, delay=1.5), Reply(GULL, delay=1.5))
    with pytest.raises(TransientError) as caught:
        backend(server, timeout=0.3, max_retries=1).answer(prompt_task())
    assert len(server.requests) == 2
    assert "openai model gpt-test" in caught.value.message and "did not answer within 0.3 s" in caught.value.message
    assert "timeout" in caught.value.fix


def test_a_server_without_json_schema_gets_json_object_and_keeps_it(server):
    server.add(FakeOpenAI.error(400, "response_format type 'json_schema' is not supported", param="response_format"),
               GULL, GULL)  # fmt: skip
    llm = backend(server)
    task = prompt_task()
    assert llm.answer(task).prompt == GULL["prompt"]
    assert llm.answer(prompt_task()).prompt == GULL["prompt"]  # the mode that worked is kept: no new 400
    formats = [request.get("response_format", {}).get("type") for request in server.requests]
    assert formats == ["json_schema", "json_object", "json_object"]
    # the schema's fields are in the system prompt, since json_object mode cannot carry it
    assert '"prompt"' in server.messages[1][0]["content"] and "JSON Schema" in server.messages[1][0]["content"]
    assert task.usage[0].calls == 2


def test_an_unrelated_bad_request_is_not_taken_for_a_format_problem(server):
    server.add(FakeOpenAI.error(400, "This model's maximum context length is 8192 tokens", code="context_length"))
    with pytest.raises(GenerationError) as caught:
        backend(server).answer(prompt_task())
    assert len(server.requests) == 1
    assert "HTTP 400" in caught.value.message and "maximum context length" in caught.value.message


def test_a_server_that_is_not_an_openai_api_is_said_to_be_one(server):
    server.add(Reply(body="<html><body>Welcome to nginx!</body></html>"))
    with pytest.raises(GenerationError) as caught:
        backend(server).answer(prompt_task())
    assert "not a chat completion: '<html><body>Welcome to nginx!" in caught.value.message
    assert "/v1" in caught.value.fix


def test_the_key_comes_from_the_environment_only(server):
    server.add(GULL)
    backend(server).answer(prompt_task())
    assert server.headers[0]["authorization"] == f"Bearer {KEY}"
    with pytest.raises(BackendOptionError) as caught:
        backend(server, api_key=KEY)
    assert "looks like a secret" in caught.value.message and KEY not in str(caught.value)


def test_a_local_server_needs_no_key(server, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY")
    server.add(GULL)
    llm = backend(server)
    llm.check_available()
    assert llm.answer(prompt_task()).prompt == GULL["prompt"]


def test_without_a_key_or_a_server_the_check_names_openai_api_key(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    llm = load_backend("llm", "openai")
    assert llm.model == "gpt-4.1-mini"
    with pytest.raises(BackendUnavailableError) as caught:
        llm.check_available()
    assert "OPENAI_API_KEY" in caught.value.message and "set OPENAI_API_KEY" in caught.value.fix
    monkeypatch.setenv("OPENAI_BASE_URL", "http://localhost:11434/v1")  # the package's own convention
    llm.check_available()
    assert llm.host == "localhost:11434"


def test_options_are_checked_and_cache_keys_ignore_how_an_answer_is_fetched():
    with pytest.raises(BackendOptionError, match="option 'base_url'"):
        load_backend("llm", "openai", {"base_url": "localhost:8000"})
    with pytest.raises(BackendOptionError, match="option 'repairs'"):
        load_backend("llm", "openai", {"repairs": 9})
    slow = load_backend("llm", "openai", {"timeout": 600, "max_retries": 9, "input_price": 1, "output_price": 2})
    assert slow.identity() == load_backend("llm", "openai").identity()
    assert load_backend("llm", "openai", {"temperature": 0.7}).identity() != slow.identity()


def test_when_the_script_runs_out_a_callable_answers_from_the_request(server):
    def respond(request: dict) -> dict:
        story = request["messages"][1]["content"]  # the first user message: the story
        return {"shots": [{"story_text": story, "action": story.lower(), "duration": 3.0}]}

    server.add(Reply("not json"))
    server.respond = respond
    answer = backend(server).plan(None, plan_task())
    assert answer.shots[0].story_text == "A gull glides over the harbour at dawn."
    assert len(server.requests) == 2  # the scripted garbage, then the callable's repair
