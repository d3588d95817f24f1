"""One rephrased prompt after a video provider's safety filter: told what was refused and why, recorded, reused.

The embedded rewriter and the real `openai` client against a local server (tests/fake_openai.py)
each write a refused shot's prompt once more. What a user would notice is checked: the new
prompt differs, still describes the character word for word and keeps the style; its origin
names the provider's reasons, in the catalog too; the chat model was sent the refused prompt
and the reasons as data; a rerun asks the LLM nothing; a prompt that cannot be changed ends in
a ContentFiltered that tells the user to reword that paragraph of the story.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from storyflow.backends.base import LLMBackend
from storyflow.backends.registry import load_backend
from storyflow.catalog import Generations, open_catalog
from storyflow.core.errors import ContentFiltered
from storyflow.core.models import ShotPrompt, Storyboard
from storyflow.core.templates import PROMPTS_DIR_ENV, PromptFolder
from storyflow.stages.plan import plan_storyboard
from storyflow.stages.rephrase import rephrase_after_filter
from storyflow.stages.rewrite import rewrite_shot
from storyflow.stages.story import read_story
from tests.fake_openai import FakeOpenAI

STORY = """---
title: The Pier
fps: 24
characters:
  Tom: an old fisherman in a yellow coat
---
Tom finds a dead gull on the bloody pier.

The boats rest at the pier.
"""
TOM = "Tom: an old fisherman in a yellow coat"
REASON = "The prompt could not be submitted: it may violate our policies."
KEY = "sk-test-do-not-leak-0123456789"


@pytest.fixture(autouse=True)
def repo_prompts(monkeypatch):
    monkeypatch.delenv(PROMPTS_DIR_ENV, raising=False)


@contextmanager
def film_run(write_story, llm: LLMBackend) -> Iterator[tuple[Storyboard, Generations, list[ShotPrompt]]]:
    """One run as the flow starts it: the story, its storyboard and shots in the catalog, every shot's prompt."""
    story = read_story(write_story(STORY))
    with open_catalog() as catalog:
        door = Generations(catalog, run_id=catalog.start_run("pier.md", {}))
        door.point_at(story=catalog.record_story(story))
        board = plan_storyboard(story, llm, door)
        board_id = catalog.record_storyboard(door.refs["story"], board, llm=llm.label, options={}, wall_s=0)
        door.point_at(storyboard=board_id, shot=catalog.record_shots(board_id, board))
        yield board, door, [rewrite_shot(shot, board, llm, door, PromptFolder()) for shot in board.shots]


def refused(reason: str = REASON) -> ContentFiltered:
    return ContentFiltered(f"veo model veo-3.1: job op-1 was filtered by the service's safety filters: {reason}",
                           fix="rewrite the shot's prompt", reasons=(reason,))  # fmt: skip


def recorded_origins(home) -> dict[str, str]:
    """The catalog's prompts that have an origin: their text -> origin (as a user would query catalog.db)."""
    with sqlite3.connect(home / "catalog.db") as db:
        return dict(db.execute("SELECT prompt, origin FROM prompts WHERE origin != ''").fetchall())


def test_the_embedded_rewriter_says_the_scene_plainly_once_and_a_rerun_reuses_it(write_story, storyflow_home):
    llm = load_backend("llm", "embedded")
    with film_run(write_story, llm) as (board, door, prompts):
        shot, prompt = board.shots[0], prompts[0]
        new = rephrase_after_filter(shot, board, prompt, refused(), llm, door, PromptFolder())
        assert new.prompt != prompt.prompt and "dead" in prompt.prompt and "bloody" in prompt.prompt
        assert "dead" not in new.prompt and "bloody" not in new.prompt and "gull on the pier" in new.prompt
        assert TOM in new.prompt and board.style.style in new.prompt  # the bibles, word for word
        assert new.shot_id == shot.id and new.llm == "embedded 1"
        assert new.origin == f"rephrased after a safety filter refused: {REASON}"
        assert door.tally["prompt"] == {"made": 3, "reused": 0}  # two prompts, one rephrasing

        # a shot whose words have nothing to soften: the same prompt would be refused again
        with pytest.raises(ContentFiltered) as caught:
            rephrase_after_filter(board.shots[1], board, prompts[1], refused(), llm, door, PromptFolder())
        error = caught.value
        assert "could not rephrase" in error.message and REASON in error.message and error.reasons == (REASON,)
        assert "reword the paragraph" in error.fix and "'The boats rest at the pier.'" in error.fix
    assert recorded_origins(storyflow_home) == {new.prompt: new.origin}

    with film_run(write_story, llm) as (board, door, prompts):  # a rerun that needs the same rephrasing
        again = rephrase_after_filter(board.shots[0], board, prompts[0], refused(), llm, door, PromptFolder())
        assert again == new and door.tally["prompt"] == {"made": 0, "reused": 3}


def chat_model(request: dict[str, Any]) -> str:
    """A deterministic chat 'model': plans one shot per paragraph, writes prompts from the shot it is sent,
    and, asked again after a refusal, writes the action plainly."""
    document = json.loads(request["messages"][1]["content"].split("\n", 1)[1])
    if "story" in document:
        paragraphs = [p.strip() for p in document["story"].split("\n\n") if p.strip()]
        shots = [{"story_text": text, "action": text, "duration": 3.0, "characters": ["Tom"] if "Tom" in text else []}
                 for text in paragraphs]  # fmt: skip
        return json.dumps({"shots": shots})
    action = document["shot"]["action"]
    if "refused_prompt" in document:
        action = action.replace("a dead gull on the bloody pier", "a gull resting on the pier")
    return json.dumps({"prompt": f"{action} {', '.join(document['camera_phrases'])}.", "negative_prompt": "blurry",
                       "caption": action[:60], "changes": []})  # fmt: skip


def test_a_chat_model_is_sent_the_refused_prompt_and_the_reasons_and_asked_once(write_story, storyflow_home,
                                                                                  monkeypatch):  # fmt: skip
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    reason = f"{REASON} (request signed with {KEY})"  # a provider echoing a secret: it goes no further
    with FakeOpenAI(respond=chat_model) as server:
        llm = load_backend("llm", "openai", {"base_url": server.url, "model": "gpt-test", "max_retries": 0})
        with film_run(write_story, llm) as (board, door, prompts):
            asked = len(server.requests)
            new = rephrase_after_filter(board.shots[0], board, prompts[0], refused(reason), llm, door, PromptFolder())
            assert len(server.requests) == asked + 1  # one rephrasing, one request
            system, question = server.messages[-1][0]["content"], server.messages[-1][1]["content"]
            assert "safety filter refused the prompt" in " ".join(system.split())  # prompts/rephrase_system.md
            assert "Tom finds" not in system  # the story and the refusal are data, never instructions
            sent = json.loads(question.split("\n", 1)[1])
            assert sent["refused_prompt"] == prompts[0].prompt and "a dead gull on the bloody pier" in prompts[0].prompt
            assert sent["filter_reasons"] == [f"{REASON} (request signed with ***)"]
            assert KEY not in json.dumps(server.requests)

            assert new.prompt != prompts[0].prompt and "a gull resting on the pier" in new.prompt
            assert TOM in new.prompt and new.prompt.startswith(board.style.style)  # the bibles are put back
            assert (new.template, new.model) == ("rephrase_system.md", "gpt-test")
            assert new.origin == f"rephrased after a safety filter refused: {REASON} (request signed with ***)"
        assert recorded_origins(storyflow_home) == {new.prompt: new.origin}

        with film_run(write_story, llm) as (board, door, prompts):  # the rerun: nothing asked at all
            asked = len(server.requests)
            again = rephrase_after_filter(board.shots[0], board, prompts[0], refused(reason), llm, door, PromptFolder())
            assert again == new and len(server.requests) == asked
