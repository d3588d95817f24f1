"""The catalog as source of truth, end to end: reruns cost nothing, an edit costs only what it
touches, a tampered file is caught and made again, and the film carries Content Credentials.

One film is made once per module; every test works on its own copy of that output folder.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.support import run_cli, run_cli_in_process

pytestmark = pytest.mark.slow

# With a target length: fitting shot lengths to it must stay local for an edit to stay cheap.
STORY = """---
title: Tide Clock
resolution: 160x90
fps: 12
seed: 5
duration: 16
title_card: false
characters:
  Ada: a small girl in a yellow raincoat
---
Ada walks along the harbour wall at dusk. [6s] Pan right. [at 3s] The lamps come on one by one.

(continuous) She stops and looks out to sea.

A gull circles over the boats in the harbour.
"""


def made(summary: dict) -> dict[str, int]:
    return {kind: n["made"] for kind, n in summary["generations"].items()}


def moved(path: str, summary: dict, home: Path) -> Path:
    """Where a file of the first run's folder is in a copy of it."""
    first_home = Path(summary["film"]).parents[1]
    return home / Path(path).relative_to(first_home)


@pytest.fixture(scope="module")
def first(prefect_server, tmp_path_factory):
    folder = tmp_path_factory.mktemp("first")
    story = folder / "tide.md"
    story.write_text(STORY)
    result = run_cli(["film", str(story), "--json"], home=folder / "outputs", cwd=folder,
                     env={"PREFECT_API_URL": prefect_server})  # fmt: skip
    assert result.code == 0, result.stderr
    return folder, result.json


@pytest.fixture
def copy(first, tmp_path, prefect_server):
    """(story, home, run): a private copy of the first film's folder and a way to run storyflow in it: in a
    subprocess, or with here=True in this process reporting to the session's Prefect server (for a film that
    must go to the flow and succeed: the first film was made by a subprocess, a process's start is not what the
    reruns check)."""
    folder, _ = first
    shutil.copytree(folder, tmp_path, dirs_exist_ok=True, ignore=shutil.ignore_patterns("home"))
    story, home = tmp_path / "tide.md", tmp_path / "outputs"

    def run(*args: str, api: str | None = None, here: bool = False):
        if here:
            return run_cli_in_process(list(args), home=home, cwd=tmp_path, api_url=prefect_server)
        env = {"PREFECT_API_URL": api} if api else None
        return run_cli(list(args), home=home, cwd=tmp_path, env=env)

    return story, home, run


def test_an_unchanged_rerun_generates_nothing(first, copy, prefect_server):
    story, home, run = copy
    _, summary = first
    assert all(n > 0 for n in made(summary).values())  # the first run made every kind of thing
    again = run("film", str(story), "--json", api=prefect_server)
    assert again.code == 0, again.stderr
    assert made(again.json) == {kind: 0 for kind in made(summary)}
    assert again.json["film_reused"] and again.json["clips_reused"] == summary["clips_generated"]
    assert "generated in" not in again.stderr  # no clip line says it was made


def test_editing_one_shot_regenerates_only_its_chain(first, copy, prefect_server):
    story, home, run = copy
    _, summary = first
    # a word changed, not added: with two free shots a word more moves the target's scale a
    # whole grid step (storyflow.core.durations), which re-times both
    story.write_text(STORY.replace("A gull circles over the boats", "A gull circles over the ships"))
    edited = run("film", str(story), "--json", here=True)
    assert edited.code == 0, edited.stderr
    counts = made(edited.json)
    remade_shots = {s["id"] for s in edited.json["shots"] if s["clips_generated"]}
    assert remade_shots == {"s03"}  # only the edited shot's chain (s03 continues nothing, nothing continues it)
    assert counts["clip"] == len(edited.json["shots"][2]["segments"])
    assert counts["prompt"] == 1 and counts["narration"] == 1
    assert counts["effects"] == 1  # the edited shot's sound from the picture
    assert counts["mix"] == 1 and counts["film"] == 1  # what depends on it
    assert edited.json["clips_reused"] == summary["clips_generated"] - counts["clip"]


def test_force_shot_and_force_override_the_cache(copy, prefect_server):
    story, _, run = copy
    one = run("film", str(story), "--json", "--force-shot", "2", here=True)
    assert one.code == 0, one.stderr
    assert {s["id"] for s in one.json["shots"] if s["clips_generated"]} == {"s02"}
    everything = run("film", str(story), "--json", "--force", here=True)
    assert everything.code == 0, everything.stderr
    assert everything.json["clips_reused"] == 0 and made(everything.json)["film"] == 1
    bad = run("film", str(story), "--force-shot", "9", api=prefect_server)
    assert bad.code == 2 and "no such shot" in bad.stderr and "fix:" in bad.stderr


def test_a_tampered_clip_is_detected_and_regenerated(first, copy, prefect_server):
    story, home, run = copy
    _, summary = first
    clip = moved(summary["shots"][0]["segments"][1]["path"], summary, home)
    data = bytearray(clip.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte in the middle of the picture data
    clip.write_bytes(bytes(data))

    report = run("catalog", "verify", "--json")
    assert report.code == 1
    problems = json.loads(report.stdout)["hash_mismatches"]
    assert [Path(p["path"]).name for p in problems] == [clip.name]

    again = run("film", str(story), "--json", here=True)
    assert again.code == 0, again.stderr
    counts = made(again.json)
    assert counts["clip"] >= 1 and again.json["shots"][0]["segments"][1]["reused"] is False
    assert counts["clip"] < summary["clips_generated"]  # the rest was trusted and reused
    assert run("catalog", "verify").code == 0  # the regenerated clip is what the catalog records now


def test_the_film_carries_valid_content_credentials_with_its_clips_as_ingredients(first, copy):
    _, home, run = copy
    _, summary = first
    film = moved(summary["film"], summary, home)
    shown = run("verify", str(film), "--json")
    assert shown.code == 0, shown.stdout + shown.stderr
    report = json.loads(shown.stdout)
    assert report["has_manifest"] and report["valid"]
    assert any(a.get("action") == "c2pa.created" and "trainedAlgorithmicMedia" in str(a) for a in report["actions"])
    clips = sorted(Path(seg["path"]).name for shot in summary["shots"] for seg in shot["segments"])
    assert sorted(report["ingredients"]) == clips
    assert "storyflow" in json.dumps(report["claim_generator"])
    assert summary["credentials"]["self_made_ca"] is True  # no certificate given: the local CA signed it


def test_catalog_verify_repair_puts_things_right(copy):
    _, home, run = copy
    stray = home / "tide-clock" / "clips" / "stray.mp4"
    stray.write_bytes(b"not ours")
    assert run("catalog", "verify").code == 1
    repaired = run("catalog", "verify", "--repair")
    assert repaired.code == 0, repaired.stdout + repaired.stderr
    assert not stray.exists() and list((home / ".orphans").rglob("stray.mp4"))


def test_two_runs_of_the_same_story_at_once_wait_for_each_other(copy, prefect_server):
    import os
    import signal
    import subprocess
    import sys
    import threading

    from tests.support import REPO

    story, home, run = copy
    story.write_text(STORY.replace("dusk", "dawn"))  # work for both to do
    env = {
        **{k: v for k, v in __import__("os").environ.items() if not k.startswith(("STORYFLOW_", "PREFECT_"))},
        "STORYFLOW_HOME": str(home), "PREFECT_API_URL": prefect_server, "PYTHONPATH": str(REPO),
        "DO_NOT_TRACK": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }  # fmt: skip
    def start() -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "storyflow.cli", "film", str(story), "--json"],
                                cwd=story.parent, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip

    # the second starts once the first holds the story's folder (it has planned: it is making clips), and the
    # first is frozen there until the second says it waits: however loaded the machine, they overlap
    first = start()
    said = []
    for line in first.stderr:
        said.append(line)
        if line.startswith("planned '"):
            break
    os.kill(first.pid, signal.SIGSTOP)
    thaw = threading.Timer(120, os.kill, (first.pid, signal.SIGCONT))  # never left frozen, whatever happens
    thaw.start()
    try:
        second = start()
        second_said = []
        for line in second.stderr:
            second_said.append(line)
            if "waiting for another run" in line:
                break
    finally:
        os.kill(first.pid, signal.SIGCONT)
        thaw.cancel()
    out, err = first.communicate(timeout=300)
    out2, err2 = second.communicate(timeout=300)
    results = [(out, "".join(said) + err), (out2, "".join(second_said) + err2)]
    both = [first, second]
    assert [p.returncode for p in both] == [0, 0], [err[-1500:] for _, err in results]
    summaries = [json.loads(out[out.index("{"):]) for out, _ in results]
    waited = [i for i, (_, err) in enumerate(results) if "waiting for another run" in err]
    assert waited == [1]  # the first ran, the second waited for it...
    assert made(summaries[1])["clip"] == 0  # ...and then reused what it made
    assert summaries[0]["film"] == summaries[1]["film"]
    assert run("catalog", "verify").code == 0
