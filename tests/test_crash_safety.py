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
import threading
import time
from contextlib import closing
from pathlib import Path

import pytest

from storyflow.catalog import Catalog
from tests.support import cli_env, run_cli, run_cli_in_process

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
    env = cli_env(home, cwd, {"PREFECT_API_URL": api_url})
    return subprocess.Popen(
        [sys.executable, "-m", "storyflow.cli", "film", str(story), "--seed", str(seed), "--json"],
        cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,  # its own process group: the kill takes its ffmpeg children too
    )  # fmt: skip


def timed_film(story: Path, home: Path, cwd: Path, seed: int, api_url: str) -> tuple[float, int]:
    """Make a film to the end: (seconds it took, how many clips it reported made)."""
    started = time.perf_counter()
    with start_film(story, home, cwd, seed=seed, api_url=api_url) as run:
        _, err = run.communicate(timeout=300)
        assert run.returncode == 0, err
    seconds = time.perf_counter() - started
    made = sum(what == "generated" for what in clip_events(err).values())
    assert made > 0, err
    return seconds, made


def kill_after_clip(run: subprocess.Popen, clips: int, delay: float) -> str:
    """Kill a run `delay` seconds after it reported its `clips`-th clip made (unless it ended first); what it printed.

    The moment comes from the run's own progress lines, so the kill lands while its work goes on however
    fast or slow this machine is at the moment."""
    assert run.stderr is not None and run.stdout is not None
    watchdog = threading.Timer(300, lambda: run.poll() is None and os.killpg(run.pid, signal.SIGKILL))
    watchdog.start()
    try:
        lines = []
        for line in run.stderr:  # the progress lines as they come, to its end (the small --json summary waits)
            lines.append(line)
            if (found := CLIP_LINE.match(line)) and found.group(3) == "generated":
                clips -= 1
                if clips == 0:
                    time.sleep(delay)
                    if run.poll() is None:
                        os.killpg(run.pid, signal.SIGKILL)
        run.stdout.read()
        run.wait(timeout=60)
    finally:
        watchdog.cancel()
    return "".join(lines)


def test_runs_killed_at_random_points_finish_on_rerun_without_redoing_finished_work(prefect_server, tmp_path):
    story = tmp_path / "kill-test.md"
    story.write_text(STORY)
    home = tmp_path / "outputs"
    rng = random.Random(20261121)

    # One full run first: it speaks the narration that every later seed reuses, and says how long a run takes and
    # how many clips it makes. Even attempts kill anywhere inside a run (from its start); odd ones a moment after
    # the run reported one of its clips made, so that kills land while clips are being made (they take a small
    # part of a run at this size, and a kill there must not lose a finished one).
    run_seconds, clips_per_run = timed_film(story, home, tmp_path, seed=1000, api_url=prefect_server)

    killed_mid_generation = 0
    left_running = 0  # runs whose process died before it could record how the run ended
    stranded_with_clips = 0  # ...after it had finished a clip
    for attempt in range(KILLS):
        seed = attempt  # a new seed each time: there is always work left to kill
        run = start_film(story, home, tmp_path, seed=seed, api_url=prefect_server)
        if attempt % 2:
            killed_err = kill_after_clip(run, rng.randint(1, clips_per_run), delay=rng.uniform(0, 0.5))
        else:
            time.sleep(rng.uniform(0.2, run_seconds))
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

        # the rerun runs the same command in this process: its own start is not what is tested here
        rerun = run_cli_in_process(["film", story, "--seed", seed, "--json"], home=home, cwd=tmp_path,
                                   api_url=prefect_server)  # fmt: skip
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
