"""More than one machine: the shots of one film made by two Prefect workers, one PostgreSQL catalog, one bucket.

Two `storyflow serve --pool P --limit 1` processes play two GPU machines: each its own output
folder (no shared disk) and makes one shot at a time. The film run, in a third folder
(`--shot-pool P`), hands every shot to the pool as a deployment run, then fetches what the
workers made from S3 (moto's server) and stitches the film. Real PostgreSQL, a real Prefect
server, a real S3-compatible server, real worker processes, real mp4 files.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support import REPO, aws_env, new_bucket

pytestmark = pytest.mark.prefect

# Four shots, none continuing another: two workers can share them.
FOUR_SHOTS = """---
title: Four Lamps
style: flat previz colours
resolution: 160x90
fps: 12
seed: 5
---
A lamp glows on the quay at dusk.

A second lamp glows on the bridge in the rain.

A third lamp glows in the window of the bakery.

A fourth lamp glows on the mast of the boat.
"""


ONE_SHOT = """---
title: One Lamp
resolution: 160x90
fps: 12
---
A lamp glows in the fog.
"""


def start_worker(pool: str, home, machine: dict[str, str], api_url: str, cwd):
    """`storyflow serve --pool POOL --limit 1` with a machine's settings: its home, the shared catalog and storage."""
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("STORYFLOW_", "PREFECT_", "AWS_"))},
           **machine, "STORYFLOW_HOME": str(home), "PREFECT_API_URL": api_url, "PYTHONPATH": str(REPO),
           "DO_NOT_TRACK": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "HOME": str(cwd),
           "PREFECT_WORKER_QUERY_SECONDS": "1", "PREFECT_WORKER_PREFETCH_SECONDS": "1"}  # fmt: skip
    return subprocess.Popen([sys.executable, "-m", "storyflow.cli", "serve", "--pool", pool, "--limit", "1"],
                            cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                            start_new_session=True)  # fmt: skip


def worker_pids(serve: subprocess.Popen, timeout: float = 60) -> set[int]:
    """The Prefect worker processes a `storyflow serve` started (each run it takes is their child)."""
    import psutil

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        children = psutil.Process(serve.pid).children()
        if children:
            return {child.pid for child in children}
        time.sleep(0.2)
    raise AssertionError("storyflow serve started no worker")


def test_two_workers_share_one_films_shots_and_none_is_made_twice(prefect_server, pg_database, s3_endpoint,
                                                                  tmp_path, monkeypatch):  # fmt: skip
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName, LogFilter, LogFilterFlowRunId
    from prefect.settings import PREFECT_API_URL, temporary_settings
    from sqlalchemy import create_engine, text

    from flows.film import run_film
    from flows.nightly import nightly_flow
    from storyflow.core.config import FilmChoices
    from storyflow.media.video import probe

    folder = tmp_path / "stories"
    folder.mkdir()
    story = folder / "four-lamps.md"
    story.write_text(FOUR_SHOTS)
    for name, value in aws_env(s3_endpoint).items():
        monkeypatch.setenv(name, value)
    machine = {"STORYFLOW_CATALOG_URL": pg_database, "STORYFLOW_STORAGE_URL": f"s3://{new_bucket()}/films",
               **aws_env(s3_endpoint)}  # what every machine shares  # fmt: skip
    for name, value in machine.items():
        monkeypatch.setenv(name, value)
    home = tmp_path / "here"  # where the film is stitched; each worker has a home of its own
    monkeypatch.setenv("STORYFLOW_HOME", str(home))
    pool = f"gpus-{os.getpid()}"
    worker_homes = [tmp_path / "gpu-a", tmp_path / "gpu-b"]
    workers = [start_worker(pool, worker_home, machine, prefect_server, tmp_path) for worker_home in worker_homes]
    try:
        pids = set().union(*(worker_pids(serve) for serve in workers))
        with temporary_settings(updates={PREFECT_API_URL: prefect_server}):
            # 1. the film: every shot made by a worker of the pool, the film stitched here
            summary = run_film(story, FilmChoices(shot_pool=pool, max_concurrency=4))
            made_on = [sorted(p.name for p in worker_home.rglob("*.mp4") if "clips" in p.parts)
                       for worker_home in worker_homes]  # fmt: skip
            with get_client(sync_client=True) as client:
                runs = client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=["storyflow-shot"])))
                runs = [run for run in runs if run.name.endswith("-of-four-lamps")]
                logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[r.id for r in runs])))
            # 2. run again: every shot is in the catalog, so no worker is asked for anything
            again = run_film(story, FilmChoices(shot_pool=pool, max_concurrency=4))
            with get_client(sync_client=True) as client:
                runs_after = client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=["storyflow-shot"])))
            engine = create_engine(pg_database)
            with engine.connect() as db:
                clips = db.execute(text("SELECT cache_key, run_id FROM clips")).all()
            engine.dispose()
            # 3. --force-shot: that shot alone goes to a worker again, and is read back as made
            forced = run_film(story, FilmChoices(shot_pool=pool, max_concurrency=4), force_shots=["s02"])
            with get_client(sync_client=True) as client:
                runs_forced = client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=["storyflow-shot"])))
            (folder / "one-lamp.md").write_text(ONE_SHOT)
            # 4. a night spread over the pool: each film a run of its own, one made, one unchanged
            night = nightly_flow(str(folder), FilmChoices(), pool=pool)
    finally:
        for serve in workers:
            os.killpg(serve.pid, signal.SIGTERM)
        for serve in workers:
            serve.wait(timeout=60)

    shots = [shot["id"] for shot in summary["shots"]]
    assert len(shots) == 4
    # each shot made once, by one deployment run, and both workers took some
    assert sorted(run.name for run in runs) == sorted(f"{shot}-of-four-lamps" for shot in shots)
    assert all(run.state.is_completed() for run in runs)
    took = {int(log.message.rsplit(" ", 1)[1]) for log in logs if "by the worker process" in log.message}
    assert took == pids, (took, pids)
    # the catalog: every clip recorded once, by this run, and the film plays them
    assert len(clips) == len({key for key, _ in clips}) == summary["clips_generated"] >= 4
    assert {run_id for _, run_id in clips} == {summary["run_id"]}
    assert summary["clips_reused"] == 0
    # each machine kept what it made; here, every clip the film plays was fetched from storage, intact
    assert all(made_on) and not set(made_on[0]) & set(made_on[1]), made_on
    assert sum(map(len, made_on)) == summary["clips_generated"]
    for shot in summary["shots"]:
        for segment in shot["segments"]:
            assert Path(segment["path"]).is_relative_to(home) and Path(segment["path"]).is_file()
    film = probe(summary["film"])
    assert (film.width, film.height) == (160, 90) and film.seconds == pytest.approx(summary["duration_s"], abs=0.1)
    # the rerun made nothing and started no shot run
    assert again["clips_generated"] == 0 and again["film_reused"]
    assert sum(run.name.endswith("-of-four-lamps") for run in runs_after) == len(runs)
    # the forced shot was made again by a worker, and only it
    s02 = next(shot for shot in forced["shots"] if shot["id"] == "s02")
    assert forced["clips_generated"] == s02["clips_generated"] == len(s02["segments"]) > 0
    assert sorted(run.name for run in runs_forced if run.name.endswith("-of-four-lamps")) == \
        sorted([run.name for run in runs] + ["s02-of-four-lamps"])  # fmt: skip
    # the night: the film already made is reused, the new story made, each by a worker; the report says so
    lines = {Path(entry["story"]).name: entry for entry in night["stories"]}
    assert (lines["four-lamps.md"]["status"], lines["one-lamp.md"]["status"]) == ("reused", "made")
    assert lines["one-lamp.md"]["clips_generated"] > 0 and lines["four-lamps.md"]["clips_generated"] == 0
    assert lines["one-lamp.md"]["title"] == "One Lamp" and lines["one-lamp.md"]["film_url"].startswith("s3://")
