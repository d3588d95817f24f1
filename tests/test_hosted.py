"""`--video-backend veo` end to end: the real CLI and google-genai client against a local Gemini API server.

Hosted generation is slow, flaky, filtered and billed per call. What a user must be able to
count on is checked here: the film completes through 30% injected transient faults; a long
shot is made by Veo's native extension; a kill while a job is in flight is resumed on the next
run with no second paid job; a filtered shot is rephrased once, and refused again it ends the
run with every other shot made and a clear report, and the rerun makes only what is missing;
the cost is the sum of the jobs.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from storyflow import media
from tests.fake_gemini import FakeGemini, Filtered
from tests.support import REPO, run_cli, run_cli_in_process

pytestmark = [pytest.mark.prefect, pytest.mark.slow]

KEY = "gemini-test-key-not-real"
STORY = """---
title: Harbour Hosted
resolution: 160x90
fps: 24
seed: 2
title_card: false
---
A gull glides over the harbour at dawn. [12s]

The boats rest at the pier.
"""


def veo_args(server: FakeGemini) -> list[str]:
    return ["--video-backend", "veo", "--video-option", f"base_url={server.url}", "--video-option",
            "poll_seconds=0.05", "--video-option", "backoff_seconds=0.05", "--video-option", "max_retries=8"]  # fmt: skip


@pytest.fixture
def story(tmp_path) -> Path:
    path = tmp_path / "harbour.md"
    path.write_text(STORY)
    return path


def film(story: Path, server: FakeGemini, prefect_server: str, *extra: str):
    return run_cli(["film", str(story), "--json", *veo_args(server), *extra], home=story.parent / "outputs",
                   cwd=story.parent, env={"PREFECT_API_URL": prefect_server, "GEMINI_API_KEY": KEY})  # fmt: skip


def jobs(story: Path) -> list[dict]:
    from storyflow.catalog.api import Catalog

    with Catalog.open(f"sqlite:///{story.parent / 'outputs' / 'catalog.db'}", story.parent / "outputs") as catalog:
        return catalog.jobs()


def test_a_film_through_veo_survives_transient_faults_and_extends_long_shots_natively(story, prefect_server):
    with FakeGemini(polls=2, key=KEY, fault_rate=0.3, seed=4) as server:
        result = film(story, server, prefect_server)
        assert result.code == 0, result.stderr
        summary = result.json
        info = media.probe(Path(summary["film"]))
        assert (info.width, info.height, round(info.fps), info.audio_codec) == (160, 90, 24, "aac")
        long_shot = summary["shots"][0]
        strategies = [segment["strategy"] for segment in long_shot["segments"]]
        assert strategies[0] == "text_to_video" and "continue_video" in strategies
        extensions = [r for r in server.creates if (r.body or {}).get("instances", [{}])[0].get("video")]
        assert extensions, "the long shot is continued by Veo's native extension"
        # every job paid for is in the catalog, done, and the film's cost is their sum
        paid = jobs(story)
        assert len(paid) == len(server.creates) and {job["status"] for job in paid} == {"done"}
        assert summary["cost_usd"] == pytest.approx(sum(job["cost_usd"] for job in paid)) and summary["cost_usd"] > 0
        runs = run_cli(["catalog", "runs", "--json"], home=story.parent / "outputs", cwd=story.parent)
        assert json.loads(runs.stdout)[0]["cost_usd"] == pytest.approx(summary["cost_usd"])  # per run, too
        films = run_cli(["catalog", "films", "--json"], home=story.parent / "outputs", cwd=story.parent)
        assert json.loads(films.stdout)[0]["cost_usd"] == pytest.approx(summary["film_cost_usd"])  # and per film
        assert sum(len(shot["segments"]) for shot in summary["shots"]) == len(paid)
        assert any(r.status in (0, 429, 503) for r in server.requests), "faults were injected"


def test_a_kill_while_a_job_is_in_flight_resumes_it_without_a_second_create(story, prefect_server):
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("STORYFLOW_", "PREFECT_"))},
           "STORYFLOW_HOME": str(story.parent / "outputs"), "PREFECT_API_URL": prefect_server, "GEMINI_API_KEY": KEY,
           "PYTHONPATH": str(REPO), "DO_NOT_TRACK": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}  # fmt: skip
    with FakeGemini(polls=1, key=KEY) as server:
        server.hold()  # every job stays "running": the run waits on it...
        run = subprocess.Popen([sys.executable, "-m", "storyflow.cli", "film", str(story), *veo_args(server),
                                "--concurrency", "1"],
                               cwd=story.parent, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)  # fmt: skip
        deadline = time.monotonic() + 120
        while not (server.creates and server.polls) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert server.creates and server.polls, "the run never started a job"
        os.killpg(run.pid, signal.SIGKILL)  # ...and is killed while it does
        run.wait()
        paid_before = len(server.creates)
        in_flight = [job["job_id"] for job in jobs(story)]
        assert len(in_flight) == paid_before and [job["status"] for job in jobs(story)] == ["running"] * paid_before

        server.release()
        # the rerun runs the same command in this process (the killed run was a process of its own)
        rerun = run_cli_in_process(["film", str(story), "--json", *veo_args(server)], home=story.parent / "outputs",
                                   cwd=story.parent, api_url=prefect_server, env={"GEMINI_API_KEY": KEY})  # fmt: skip
        assert rerun.code == 0, rerun.stderr
        after = jobs(story)
        # the jobs in flight were resumed (polled again and finished), and no clip was paid for twice
        assert [job["job_id"] for job in after[:paid_before]] == in_flight
        assert all(job["status"] == "done" for job in after), after
        assert len({job["cache_key"] for job in after}) == len(after) == len(server.creates)


PIER = STORY.replace("title: Harbour Hosted", "title: Pier Hosted").replace(
    "A gull glides over the harbour at dawn. [12s]", "A dead gull drifts past the bloody pier."
).replace("The boats rest at the pier.", "The boats rest beside a rusty gun.")
REFUSAL = "The prompt could not be submitted: it may violate our policies."


def gull_prompts(server: FakeGemini, since: int = 0) -> list[str]:
    """The prompts of the paid jobs made for the gull's shot (the first shot), in order."""
    sent = [(r.body or {}).get("instances", [{}])[0].get("prompt", "") for r in server.creates[since:]]
    return [prompt for prompt in sent if "gull" in prompt]


def test_a_filtered_shot_is_rephrased_once_and_refused_again_fails_alone_until_a_rerun(tmp_path, prefect_server):
    story = tmp_path / "pier.md"
    story.write_text(PIER)
    with FakeGemini(polls=1, key=KEY) as server:
        # 1. the gull's shot is refused, rephrased once (its flagged words said plainly) and refused again: it
        #    fails after exactly two paid jobs, with the provider's reasons; the boats' shot is refused once,
        #    and made from its rephrasing in the same run, and kept
        server.outcome(Filtered([REFUSAL]), Filtered([REFUSAL]), Filtered([REFUSAL]))
        failed = film(story, server, prefect_server, "--concurrency", "1")
        assert failed.code == 1 and "Traceback" not in failed.stderr
        assert "1 of 2 shots could not be made (1 made and kept)" in failed.stderr
        assert "filtered" in failed.stderr and REFUSAL in failed.stderr
        refused, rephrased = gull_prompts(server)
        assert "dead gull" in refused and "bloody" in refused and "dead" not in rephrased and "bloody" not in rephrased
        assert sorted(job["status"] for job in jobs(story)) == ["done", "filtered", "filtered", "filtered"]
        boats_sent = [(r.body or {}).get("instances", [{}])[0].get("prompt", "") for r in server.creates]
        assert "gun" in boats_sent[2] and "gun" not in boats_sent[3] and "prop" in boats_sent[3]
        made_before = len(server.creates)

        # 2. the rerun goes straight to the rephrasing (the refused prompt is not paid for again): that shot is
        #    made from it (only it: the other is reused) and the film completes, its summary saying why
        rerun = film(story, server, prefect_server, "--concurrency", "1")
        assert rerun.code == 0, rerun.stderr
        gull, boats = rerun.json["shots"]
        assert gull["prompt_origin"].startswith("rephrased after a safety filter") and REFUSAL in gull["prompt_origin"]
        assert boats["prompt_origin"].startswith("rephrased after a safety filter")
        assert gull_prompts(server, made_before) == [rephrased]
        this_run = [job["status"] for job in jobs(story) if job["run_id"] == rerun.json["run_id"]]
        assert this_run == ["done"]
        reused = [segment["reused"] for shot in (gull, boats) for segment in shot["segments"]]
        assert reused == [False, True], "only what was missing is made"
        text = json.dumps(rerun.json)
        assert KEY not in text and KEY not in failed.stderr + rerun.stderr
