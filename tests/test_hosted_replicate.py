"""`--video-backend replicate` end to end: the real CLI and Replicate's client against a local Replicate API.

One film, as a user would make it, through 30% injected transient faults: it completes at the
asked size with sound; the long shot (longer than the model's longest clip) is made of
segments that continue each other from the last frame; every prediction paid for is in the
catalog's jobs table, done, and what the film and the run cost is their sum; the token is
never shown.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from storyflow import media
from storyflow.backends.video.replicate import MODELS
from tests.fake_replicate import FakeReplicate
from tests.support import run_cli

pytestmark = [pytest.mark.prefect, pytest.mark.slow]

TOKEN = "r8_e2e_token_not_real_0123456789"
MODEL = "kwaivgi/kling-v2.1-master"  # 5 or 10 s clips at $0.28 a second
STORY = """---
title: Harbour Replicated
resolution: 160x90
fps: 24
seed: 5
title_card: false
---
A gull glides over the harbour at dawn. [12s]

The boats rest at the pier.
"""


def test_a_film_through_replicate_survives_transient_faults_and_costs_the_sum_of_its_predictions(tmp_path,
                                                                                                 prefect_server):
    story = tmp_path / "harbour.md"
    story.write_text(STORY)
    home = tmp_path / "outputs"
    with FakeReplicate(polls=2, token=TOKEN, fault_rate=0.3, seed=3) as server:
        result = run_cli(["film", str(story), "--json", "--video-backend", "replicate",
                          "--video-option", f"base_url={server.url}", "--video-option", f"model={MODEL}",
                          "--video-option", "poll_seconds=0.05", "--video-option", "backoff_seconds=0.05",
                          "--video-option", "max_retries=8", "--video-option", f"download_dir={tmp_path / 'dl'}"],
                         home=home, cwd=tmp_path, env={"PREFECT_API_URL": prefect_server,
                                                       "REPLICATE_API_TOKEN": TOKEN})  # fmt: skip
        assert result.code == 0, result.stderr
        summary = result.json

        # the film: the asked size and rate, with sound
        info = media.probe(Path(summary["film"]))
        assert (info.width, info.height, round(info.fps), info.audio_codec) == (160, 90, 24, "aac")

        # the 12 s shot is longer than the model's longest clip: extended from its last frame
        long_shot, short_shot = summary["shots"]
        assert max(MODELS[MODEL].durations) < long_shot["seconds"]
        strategies = [segment["strategy"] for segment in long_shot["segments"]]
        assert len(strategies) > 1 and strategies[0] == "text_to_video"
        assert set(strategies[1:]) == {"last_frame_i2v"}, strategies
        continued = [r for r in server.creates if "start_image" in r.body["input"]]
        assert len(continued) == len(strategies) - 1, "each later segment was sent the previous one's last frame"
        segments = long_shot["segments"]
        assert [s["parent_sha256"] for s in segments[1:]] == [media.sha256_file(Path(s["path"])) for s in segments[:-1]]
        assert len(short_shot["segments"]) == 1

        # every prediction paid for is recorded, done; the film's and the run's cost are their sum
        from storyflow.catalog.api import Catalog

        with Catalog.open(f"sqlite:///{home / 'catalog.db'}", home) as catalog:
            paid = catalog.jobs()
        assert sorted(job["job_id"] for job in paid) == sorted(server.predictions)
        assert {job["status"] for job in paid} == {"done"} and {job["backend"] for job in paid} == {"replicate"}
        assert len(paid) == sum(len(shot["segments"]) for shot in summary["shots"])
        assert summary["cost_usd"] == pytest.approx(sum(job["cost_usd"] for job in paid)) and summary["cost_usd"] > 0
        seconds = sum(float(r.body["input"]["duration"]) for r in server.creates)
        assert summary["cost_usd"] == pytest.approx(seconds * MODELS[MODEL].prices[""])
        runs = run_cli(["catalog", "runs", "--json"], home=home, cwd=tmp_path)
        assert json.loads(runs.stdout)[0]["cost_usd"] == pytest.approx(summary["cost_usd"])

        # the faults were real, and the token never shows
        assert any(r.status in (0, 429, 500, 503) for r in server.requests), "faults were injected"
        shown = result.stdout + result.stderr + runs.stdout + runs.stderr + Path(summary["film"]).with_name(
            "summary.json").read_text()  # fmt: skip
        assert TOKEN not in shown
