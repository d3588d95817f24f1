"""`--llm openai` end to end: the real CLI, the real `openai` client, a local OpenAI-compatible server.

The server (tests/fake_openai.py) plays a model that plans one shot per paragraph and writes
prompts from the shot it is sent. What a user sees is checked: a validated storyboard with
full coverage, the character bible in the prompts, a film, no second LLM call on a rerun,
an edited storyboard rendered as is, and clear errors (no traceback) for broken answers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from storyflow import media
from tests.fake_openai import FakeOpenAI
from tests.support import TINY_STORY, run_cli, run_cli_in_process

pytestmark = pytest.mark.prefect

MARA = "Mara: a tall woman in a red raincoat"


def story_model(request: dict[str, Any]) -> str:
    """A deterministic 'model': plans one shot per paragraph, writes a prompt from the shot's data."""
    question = request["messages"][1]["content"]
    document = json.loads(question.split("\n", 1)[1])
    if "story" in document:  # planning
        paragraphs = [p.strip() for p in document["story"].split("\n\n") if p.strip()]
        shots = [{"story_text": text, "action": text.split(".")[0] + ".", "duration": 2.0,
                  "characters": ["Mara"] if ("Mara" in text or "She" in text) else [],
                  "camera": ["tracking shot", "zoom in"] if n == 0 else [], "framing": "wide shot",
                  "transition": "crossfade" if n < len(paragraphs) - 1 else "fade"}
                 for n, text in enumerate(paragraphs)]  # fmt: skip
        return json.dumps({"shots": shots})
    shot = document["shot"]  # rewriting: leave the bible out, storyflow puts it in
    return json.dumps({"prompt": f"{shot['action']} {', '.join(document['camera_phrases'])}.",
                       "negative_prompt": "blurry", "caption": shot["action"][:60], "changes": []})  # fmt: skip


def llm_args(server: FakeOpenAI) -> list[str]:
    return ["--llm", "openai", "--llm-option", "model=story-model", "--llm-option", f"base_url={server.url}",
            "--llm-option", "max_retries=0"]  # fmt: skip


@pytest.fixture
def story_file(tmp_path) -> Path:
    path = tmp_path / "tiny.md"
    path.write_text(TINY_STORY)
    return path


def test_plan_with_openai_returns_a_covered_storyboard_and_writes_an_editable_file(tmp_path, story_file):
    with FakeOpenAI(respond=story_model) as server:
        result = run_cli(["plan", str(story_file), "--json", *llm_args(server), "--out", "board.yaml"],
                         home=tmp_path / "outputs", cwd=tmp_path)  # fmt: skip
        assert result.code == 0, result.stderr
        board = json.loads(result.stdout)
        assert [shot["id"] for shot in board["shots"]] == ["s01", "s02", "s03"]
        assert board["coverage"] == 1.0 and board["planner"] == "openai 1" and board["planner_model"] == "story-model"
        first = board["shots"][0]
        assert (first["framing"], first["camera"], first["more_moves"]) == ("wide shot", "tracking shot", ["zoom in"])
        assert (tmp_path / "board.yaml").is_file() and "--storyboard board.yaml" in result.stderr
        # the request asked for structured output, the story went as data
        planning = server.requests[0]
        assert planning["response_format"]["type"] == "json_schema"
        assert "Mara walks along the harbour" not in planning["messages"][0]["content"]
        # planned once: a second plan of the same story asks nothing
        asked = len(server.requests)
        again = run_cli(["plan", str(story_file), "--json", *llm_args(server)], home=tmp_path / "outputs", cwd=tmp_path)
        assert again.code == 0 and json.loads(again.stdout) == board and len(server.requests) == asked


@pytest.mark.slow
def test_film_with_openai_then_an_unchanged_rerun_makes_no_llm_call(tmp_path, story_file, prefect_server):
    env = {"PREFECT_API_URL": prefect_server}
    with FakeOpenAI(respond=story_model) as server:
        result = run_cli(["film", str(story_file), "--json", *llm_args(server)], home=tmp_path / "outputs",
                         cwd=tmp_path, env=env)  # fmt: skip
        assert result.code == 0, result.stderr
        asked = len(server.requests)
        assert asked == 1 + 3  # one plan, one prompt per shot
        film = Path(result.json["film"])
        info = media.probe(film)
        assert (info.width, info.height, info.audio_codec) == (160, 90, "aac")
        # the character's bible is in every prompt of a shot she is in, word for word
        shown = run_cli(["provenance", str(film), "--json"], home=tmp_path / "outputs", cwd=tmp_path)
        tree = json.loads(shown.stdout)
        prompts = {shot["shot_key"]: shot["prompt"] for shot in tree["shots"]}
        assert MARA in prompts["s01"]["text"] and MARA in prompts["s02"]["text"] and MARA not in prompts["s03"]["text"]
        assert prompts["s01"]["model"] == "story-model" and prompts["s01"]["template"] == "rewrite_system.md"
        assert prompts["s01"]["usage"]["calls"] == 1 and prompts["s01"]["usage"]["prompt_tokens"] > 0
        assert tree["storyboard"]["planner_model"] == "story-model" and tree["storyboard"]["origin"] == "planned"

        rerun = run_cli(["film", str(story_file), "--json", *llm_args(server)], home=tmp_path / "outputs",
                        cwd=tmp_path, env=env)  # fmt: skip
        assert rerun.code == 0, rerun.stderr
        assert len(server.requests) == asked, "an unchanged story makes no LLM call"

        # review before spending: the plan as YAML, edited by hand, rendered as it is
        planned = run_cli(["plan", str(story_file), *llm_args(server), "--out", "board.yaml"],
                          home=tmp_path / "outputs", cwd=tmp_path)  # fmt: skip
        assert planned.code == 0 and len(server.requests) == asked
        board = tmp_path / "board.yaml"
        board.write_text(board.read_text().replace("mood: calm", "mood: eerie", 1))
        # (run in this process: the command's own process is checked by the first film)
        edited = run_cli_in_process(["film", str(story_file), "--json", "--storyboard", str(board),
                                     *llm_args(server)], home=tmp_path / "outputs", cwd=tmp_path,
                                    api_url=prefect_server)  # fmt: skip
        assert edited.code == 0, edited.stderr
        tree = json.loads(run_cli(["provenance", edited.json["film"], "--json"], home=tmp_path / "outputs",
                                  cwd=tmp_path).stdout)  # fmt: skip
        assert tree["storyboard"]["origin"] == "edited by hand" and tree["storyboard"]["planner"] == "openai 1"
        assert tree["shots"][0]["mood"] == "eerie"


def test_broken_answers_fail_clearly_naming_the_model(tmp_path, story_file):
    with FakeOpenAI(default="Sure! Here is your storyboard: shots galore.") as server:
        result = run_cli(["plan", str(story_file), *llm_args(server)], home=tmp_path / "outputs", cwd=tmp_path)
    assert result.code != 0 and "Traceback" not in result.stderr
    assert "story-model" in result.stderr and "fix:" in result.stderr
    assert len(server.requests) == 3  # the answer, then two repairs


def test_a_refused_key_fails_at_once_naming_the_variable(tmp_path, story_file):
    with FakeOpenAI([FakeOpenAI.error(401, "Incorrect API key provided", type="invalid_api_key")] * 3) as server:
        result = run_cli(["plan", str(story_file), *llm_args(server)], home=tmp_path / "outputs", cwd=tmp_path,
                         env={"OPENAI_API_KEY": "sk-test-not-a-real-key"})  # fmt: skip
    assert result.code != 0 and "Traceback" not in result.stderr
    assert "OPENAI_API_KEY" in result.stderr and "sk-test-not-a-real-key" not in result.stderr + result.stdout
    assert len(server.requests) == 1  # an auth error is not retried


def test_a_bad_storyboard_file_is_refused_before_any_work(tmp_path, story_file):
    board = tmp_path / "board.yaml"
    board.write_text("title: x\nshots: [{id: s01}]\n")
    result = run_cli(["film", str(story_file), "--storyboard", str(board)], home=tmp_path / "outputs", cwd=tmp_path)
    assert result.code == 2 and "Traceback" not in result.stderr
    assert "is not a valid storyboard" in result.stderr and "shot s01, field" in result.stderr
    assert not (tmp_path / "outputs").exists()


def test_transformers_on_a_local_folder_fails_clearly_and_a_missing_folder_names_itself(tmp_path, story_file):
    from tests.tiny_models import build_tiny_chat_model

    folder = build_tiny_chat_model(tmp_path / "tiny-llm")  # random weights: its answers are garbage
    args = ["plan", str(story_file), "--llm", "transformers", "--llm-option", f"model={folder}",
            "--llm-option", "max_new_tokens=8", "--llm-option", "repairs=1"]  # fmt: skip
    result = run_cli(args, home=tmp_path / "outputs", cwd=tmp_path)
    assert result.code != 0 and "Traceback" not in result.stderr
    assert f"transformers model {folder} answered 2 times without a valid storyboard" in result.stderr
    missing = run_cli(["plan", str(story_file), "--llm", "transformers", "--llm-option", f"model={tmp_path / 'nope'}"],
                      home=tmp_path / "outputs", cwd=tmp_path)  # fmt: skip
    assert missing.code != 0 and "Traceback" not in missing.stderr and str(tmp_path / "nope") in missing.stderr
