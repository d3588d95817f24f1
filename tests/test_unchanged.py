"""An unchanged rerun is answered from the catalog: no Prefect server, no flow, nothing made, a run recorded.

The real CLI. The first run, in a subprocess, reports to the session's Prefect server (to save a
temporary server's start); every rerun answered from the catalog is a subprocess with no
PREFECT_API_URL at all, so a flow would have to start a temporary server: the answer must not
need one. Anything that changes the film, or puts its files in doubt, goes to the flow, which
makes only what is missing: those reruns run the same command in this process, reporting to the
session's server (a process's start is not what they check).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from storyflow import media
from tests.support import TINY_STORY, run_cli, run_cli_in_process

pytestmark = pytest.mark.prefect

ANSWERED = "no flow was needed"
TEMPORARY_SERVER = "starting a temporary Prefect server"


def test_an_unchanged_rerun_is_answered_from_the_catalog_and_anything_else_goes_to_the_flow(
        prefect_server, tmp_path, write_story):  # fmt: skip
    story = write_story(TINY_STORY)
    home = tmp_path / "outputs"

    def film(*args: str, server: bool = False, here: bool = True):
        """`storyflow film STORY --json ARGS`: without a server, in a subprocess; with one, in this process (`here`)."""
        command = ["film", str(story), "--json", *args]
        if not server:
            result = run_cli(command, home=home, cwd=tmp_path)
        elif here:
            result = run_cli_in_process(command, home=home, cwd=tmp_path, api_url=prefect_server)
        else:
            result = run_cli(command, home=home, cwd=tmp_path, env={"PREFECT_API_URL": prefect_server})
        assert result.code == 0, result.stderr
        return result

    def runs() -> list[dict]:
        listed = run_cli(["catalog", "runs", "--json"], home=home, cwd=tmp_path)
        assert listed.code == 0, listed.stderr
        return json.loads(listed.stdout)

    # 1. the first run makes everything; the rerun answers from the catalog, without any Prefect server
    first = film(server=True, here=False)
    assert first.json["clips_generated"] > 0
    assert "s01" in first.stderr and "generated" in first.stderr  # the terminal shows progress per shot
    made_at = Path(first.json["film"]).stat().st_mtime_ns
    time.sleep(0.01)
    again = film()
    assert ANSWERED in again.stderr and TEMPORARY_SERVER not in again.stderr and "reused" in again.stderr
    assert again.json["clips_generated"] == 0 and again.json["clips_reused"] == first.json["clips_generated"]
    assert again.json["film"] == first.json["film"] and again.json["film_reused"]
    assert made_at <= Path(first.json["film"]).stat().st_mtime_ns
    assert again.json["prefect_flow_run_id"] is None and again.json["answered_from_run"] == first.json["run_id"]
    assert media.probe(Path(again.json["film"])).num_frames == media.probe(Path(first.json["film"])).num_frames
    # a run is recorded, as having reused all the first one made; summary.json says what the rerun did
    newest = runs()[0]
    assert (newest["id"], newest["status"], newest["clips_generated"], newest["clips_reused"]) == \
        (again.json["run_id"], "completed", 0, first.json["clips_generated"])  # fmt: skip
    assert json.loads((Path(again.json["film"]).parent / "summary.json").read_text())["run_id"] == again.json["run_id"]
    # the plain names are shown again if someone removed one
    Path(again.json["poster"]).unlink()
    assert ANSWERED in film().stderr and Path(again.json["poster"]).is_file()

    # 2. a clip gone missing: the flow makes exactly that clip again
    clip = Path(first.json["shots"][0]["segments"][0]["path"])
    clip.unlink()
    repaired = film(server=True)
    assert ANSWERED not in repaired.stderr and repaired.json["clips_generated"] == 1

    # 3. a changed choice (the loudness: a new mix and film) goes to the flow; it reuses every clip
    louder = film("--loudness", "-20", server=True)
    assert ANSWERED not in louder.stderr and louder.json["clips_generated"] == 0 and not louder.json["film_reused"]
    assert ANSWERED in film("--loudness", "-20").stderr  # ...and once made, it is answered too

    # 4. an edited story goes to the flow
    story.write_text(TINY_STORY.replace("gulls circle", "gulls wheel"))
    edited = film(server=True)
    assert ANSWERED not in edited.stderr and edited.json["clips_generated"] > 0
    verified = run_cli(["catalog", "verify"], home=home, cwd=tmp_path)
    assert verified.code == 0, verified.stdout + verified.stderr
