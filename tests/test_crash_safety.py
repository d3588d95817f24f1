"""Crash safety: runs killed with SIGKILL at random moments, then run again.

Every rerun must finish the film, reuse every clip the killed run had finished (no segment
is made twice once it was complete), and leave a catalog that `storyflow catalog verify`
finds clean: no partial file under a final name, no row claiming work that is not there.
"""

from __future__ import annotations

import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import pytest

from storyflow.catalog import Catalog
from tests.support import REPO, run_cli

pytestmark = pytest.mark.slow

STORY = """---
title: Kill Test
resolution: 160x90
fps: 12
title_card: false
characters:
  Ada: a small girl in a yellow raincoat
---
Ada walks along the harbour wall at dusk. [6s] Pan right.

(continuous) She stops and looks out to sea.
"""
KILLS = 12
CLIP_LINE = re.compile(r"^\s+(s\d+)(?: \[(\d+)/\d+\])?\s+\S+\s+[\d.]+ s\s+(generated|reused)", re.M)


def clip_events(stderr: str) -> dict[tuple[str, int], str]:
    """(shot, segment) -> 'generated' or 'reused', from the progress lines a run printed."""
    return {(shot, int(seg or 1) - 1): what for shot, seg, what in CLIP_LINE.findall(stderr)}


def runs_left_running(home: Path) -> int:
    with closing(sqlite3.connect(home / "catalog.db")) as db:
        return db.execute("SELECT count(*) FROM runs WHERE status = 'running'").fetchone()[0]


def start_film(story: Path, home: Path, cwd: Path, seed: int, api_url: str) -> subprocess.Popen:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("STORYFLOW_", "PREFECT_"))},
        "STORYFLOW_HOME": str(home), "HOME": str(cwd / "home"), "PREFECT_API_URL": api_url,
        "DO_NOT_TRACK": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PYTHONPATH": str(REPO),
    }  # fmt: skip
    (cwd / "home").mkdir(exist_ok=True)
    return subprocess.Popen(
        [sys.executable, "-m", "storyflow.cli", "film", str(story), "--seed", str(seed), "--json"],
        cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,  # its own process group: the kill takes its ffmpeg children too
    )  # fmt: skip


def timed_film(story: Path, home: Path, cwd: Path, seed: int, api_url: str) -> tuple[float, float]:
    """Make a film to the end: (seconds it took, seconds until it reported its first clip made)."""
    started = time.perf_counter()
    first_clip_at, lines = None, []
    with start_film(story, home, cwd, seed=seed, api_url=api_url) as run:
        assert run.stderr is not None
        for line in run.stderr:  # the progress lines as they come (its --json summary is small: stdout waits)
            lines.append(line)
            if first_clip_at is None and (found := CLIP_LINE.match(line)) and found.group(3) == "generated":
                first_clip_at = time.perf_counter() - started
        assert run.wait(timeout=300) == 0, "".join(lines)
    seconds = time.perf_counter() - started
    assert first_clip_at is not None, "".join(lines)
    return seconds, first_clip_at


def test_runs_killed_at_random_points_finish_on_rerun_without_redoing_finished_work(prefect_server, tmp_path):
    story = tmp_path / "kill-test.md"
    story.write_text(STORY)
    home = tmp_path / "outputs"
    rng = random.Random(20261121)

    # Two full runs first: the first also speaks the narration that every later seed reuses; the second is timed
    # as each killed run will go, so that kills land anywhere inside one, and half of them once clips are being made
    # (they take a small part of a run at this size, and a kill there must not lose a finished one).
    for seed in (1000, 1001):
        run_seconds, first_clip_at = timed_film(story, home, tmp_path, seed=seed, api_url=prefect_server)

    killed_mid_generation = 0
    left_running = 0  # runs whose process died before it could record how the run ended
    stranded_with_clips = 0  # ...after it had finished a clip
    for attempt in range(KILLS):
        seed = attempt  # a new seed each time: there is always work left to kill
        run = start_film(story, home, tmp_path, seed=seed, api_url=prefect_server)
        time.sleep(rng.uniform(0.2 if attempt % 2 else first_clip_at, run_seconds))
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
        _, killed_err = run.communicate(timeout=60)
        finished_before = {key for key, what in clip_events(killed_err).items() if what == "generated"}
        killed_mid_generation += bool(finished_before) and run.returncode != 0
        # a kill can land after the run recorded 'completed' (while the process shuts down),
        # so count what the catalog itself says was left running
        stranded = runs_left_running(home)
        left_running += stranded
        stranded_with_clips += bool(stranded and finished_before)

        rerun = run_cli(["film", str(story), "--seed", str(seed), "--json"], home=home, cwd=tmp_path,
                        env={"PREFECT_API_URL": prefect_server})  # fmt: skip
        assert rerun.code == 0, f"attempt {attempt}: the rerun failed:\n{rerun.stderr[-2000:]}"
        again = clip_events(rerun.stderr)
        if "no flow was needed" in rerun.stderr:  # the killed run had finished: the catalog answered the rerun
            again = {(shot["id"], n): "reused" if segment["reused"] else "generated"
                     for shot in rerun.json["shots"] for n, segment in enumerate(shot["segments"])}  # fmt: skip
        remade = sorted(key for key in finished_before if again.get(key) != "reused")
        assert remade == [], f"attempt {attempt}: finished segments made twice: {remade}"
        assert Path(rerun.json["film"]).exists()

        with Catalog.open(f"sqlite:///{home / 'catalog.db'}", home) as catalog:  # what `catalog verify` runs
            report = catalog.verify()
        assert report["ok"], f"attempt {attempt}: catalog verify is not clean: {report}"

    # the kills really landed in the middle of the work, not only before or after it
    print(f"{KILLS} kills: {killed_mid_generation} after a clip was finished, {left_running} left a run 'running'")
    assert killed_mid_generation >= 3
    verify = run_cli(["catalog", "verify"], home=home, cwd=tmp_path)  # and the command itself agrees
    assert verify.code == 0, verify.stdout
    runs = run_cli(["catalog", "runs", "--limit", "200", "--json"], home=home, cwd=tmp_path)
    listed = __import__("json").loads(runs.stdout)
    statuses = [run["status"] for run in listed]
    assert "running" not in statuses  # every killed run was marked crashed when the next one started
    assert statuses.count("crashed") == left_running
    # and each is listed with what it made before it was killed, counted from the catalog's rows
    crashed_clips = [run.get("made_before_it_ended", {}).get("clip", 0) for run in listed if run["status"] == "crashed"]
    assert sum(map(bool, crashed_clips)) >= stranded_with_clips, crashed_clips
    if stranded_with_clips:
        shown = run_cli(["catalog", "runs", "--limit", "200"], home=home, cwd=tmp_path).stdout
        assert "made before it ended: clip" in shown
