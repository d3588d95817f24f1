"""`storyflow film --budget USD` through Veo: the real CLI and google-genai client against a local Gemini API server.

A plan estimated over the budget is refused before any paid call (not one job is created); a
budget that holds the plan makes the film, whose estimate is never below what it cost; a rerun
of the same story costs nothing, so it fits a budget of 0.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fake_gemini import FakeGemini
from tests.support import run_cli

pytestmark = [pytest.mark.prefect, pytest.mark.slow]

KEY = "gemini-test-key-not-real"
STORY = """---
title: Harbour Budget
resolution: 160x90
fps: 24
seed: 2
title_card: false
---
A gull glides over the harbour at dawn. [12s]

The boats rest at the pier.
"""


@pytest.fixture
def story(tmp_path) -> Path:
    path = tmp_path / "harbour.md"
    path.write_text(STORY)
    return path


def film(story: Path, server: FakeGemini, prefect_server: str, *extra: str):
    return run_cli(["film", str(story), "--json", "--video-backend", "veo", "--video-option", f"base_url={server.url}",
                    "--video-option", "poll_seconds=0.05", *extra], home=story.parent / "outputs", cwd=story.parent,
                   env={"PREFECT_API_URL": prefect_server, "GEMINI_API_KEY": KEY})  # fmt: skip


def test_a_plan_over_the_budget_is_refused_before_any_paid_call(story, prefect_server):
    with FakeGemini(polls=1, key=KEY) as server:
        refused = film(story, server, prefect_server, "--budget", "0.5")
        assert refused.code == 2, refused.stderr
        assert "Traceback" not in refused.stderr
        assert "the plan would cost about $" in refused.stderr and "billed by veo at $0.40/s" in refused.stderr
        assert "the budget is $0.50" in refused.stderr and "--budget" in refused.stderr.split("fix:")[-1]
        assert server.creates == []  # not one job asked for


def test_a_budget_that_holds_the_plan_makes_the_film_and_a_rerun_is_free(story, prefect_server):
    with FakeGemini(polls=1, key=KEY) as server:
        made = film(story, server, prefect_server, "--budget", "50")
        assert made.code == 0, made.stderr
        summary = made.json
        assert summary["budget_usd"] == 50
        assert summary["cost_usd"] > 0 and summary["estimate_usd"] >= summary["cost_usd"]
        paid = len(server.creates)

        again = film(story, server, prefect_server, "--budget", "0")
        assert again.code == 0, again.stderr
        assert again.json["estimate_usd"] == 0 and again.json["clips_generated"] == 0
        assert len(server.creates) == paid  # nothing asked for again
