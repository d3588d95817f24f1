"""`storyflow film --candidates N` and `storyflow pick FILM SHOT TAKE` through Veo: the real CLI and google-genai
client against a local Gemini API server.

Takes cost money, so what a user must be able to count on is checked where it is paid for:
N candidates make N paid chains per shot, all kept in the catalog, and the film plays the
one the scorer rates best; picking another take re-stitches the film without a single call
to the provider (not even a key is needed); a person's pick survives the next run.
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from storyflow import media
from tests.fake_gemini import FakeGemini
from tests.support import run_cli, run_cli_in_process

pytestmark = [pytest.mark.prefect, pytest.mark.slow]

KEY = "gemini-test-key-not-real"
STORY = """---
title: Harbour Takes
resolution: 160x90
fps: 24
seed: 2
title_card: false
---
A gull glides over the harbour at dawn.

The boats rest at the pier.
"""


def test_candidates_make_paid_takes_the_scorer_chooses_and_a_pick_restitches_with_no_call(tmp_path, prefect_server):
    story = tmp_path / "harbour.md"
    story.write_text(STORY)
    home = tmp_path / "outputs"

    def storyflow(*args: str, key: bool = True):
        return run_cli(list(args), home=home, cwd=tmp_path,
                       env={"PREFECT_API_URL": prefect_server, **({"GEMINI_API_KEY": KEY} if key else {})})  # fmt: skip

    with FakeGemini(polls=1, key=KEY) as server:
        veo = ["--video-backend", "veo", "--video-option", f"base_url={server.url}", "--video-option",
               "poll_seconds=0.05"]  # fmt: skip
        # 1. two candidates: two paid chains per shot, both recorded, the scorer's choice played
        made = storyflow("film", str(story), "--json", "--candidates", "2", *veo)
        assert made.code == 0, made.stderr
        summary = made.json
        assert [len(shot["takes"]) for shot in summary["shots"]] == [2, 2]
        assert len(server.creates) == sum(len(take["clips"]) for shot in summary["shots"] for take in shot["takes"])
        assert summary["estimate_usd"] == pytest.approx(summary["cost_usd"], rel=0.3)  # both takes estimated
        for shot in summary["shots"]:
            scores = [take["score"] for take in shot["takes"]]
            assert shot["picked_by"] == "scorer" and shot["take"] == scores.index(max(scores))
            assert {"sharpness", "motion", "flicker"} <= set(shot["takes"][0]["measures"])
        with closing(sqlite3.connect(home / "catalog.db")) as db:
            assert {take for (take,) in db.execute("SELECT take FROM clips")} == {0, 1}
            assert db.execute("SELECT count(*) FROM picks WHERE picked_by = 'scorer'").fetchone()[0] == 2

        # 2. pick the other take of s02: the film is stitched again, nothing is asked of the provider
        other = 1 - summary["shots"][1]["take"]
        calls = len(server.requests)
        picked = storyflow("pick", "harbour-takes", "2", str(other), "--json", key=False)
        assert picked.code == 0, picked.stderr
        after = picked.json
        assert len(server.requests) == calls, "picking a take called the provider"
        assert after["clips_generated"] == 0 and after["cost_usd"] is None
        assert (after["shots"][1]["take"], after["shots"][1]["picked_by"]) == (other, "person")
        assert after["shots"][0]["take"] == summary["shots"][0]["take"]
        played = after["shots"][1]["segments"][0]["path"]
        assert played == summary["shots"][1]["takes"][other]["clips"][0]
        assert media.sha256_file(Path(after["film"])) != media.sha256_file(Path(summary["recorded"]["film"]))
        info = media.probe(Path(after["film"]))
        assert info.seconds == pytest.approx(summary["duration_s"], abs=0.1) and info.audio_codec == "aac"

        # 3. a film or a take that was never made is refused, naming the ones there are
        unknown = storyflow("pick", "harbour", "s02", "1", key=False)
        assert unknown.code == 2 and "no film 'harbour' in the catalog (the catalog has films of harbour-takes)" in unknown.stderr
        missing = storyflow("pick", "harbour-takes", "s02", "7", key=False)
        assert missing.code == 2 and "Traceback" not in missing.stderr
        assert "shot s02 of film" in missing.stderr and "has no take 7 in the catalog (it has 0, 1)" in missing.stderr

        # 4. the next run keeps the person's pick and pays for nothing
        paid = len(server.creates)
        # (run in this process: the command's own process is checked by the first run)
        rerun = run_cli_in_process(["film", str(story), "--json", "--candidates", "2", *veo], home=home,
                                   cwd=tmp_path, api_url=prefect_server, env={"GEMINI_API_KEY": KEY})  # fmt: skip
        assert rerun.code == 0, rerun.stderr
        assert len(server.creates) == paid and rerun.json["clips_generated"] == 0
        assert (rerun.json["shots"][1]["take"], rerun.json["shots"][1]["picked_by"]) == (other, "person")
        assert KEY not in json.dumps(rerun.json) + made.stderr + picked.stderr
