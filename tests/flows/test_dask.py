"""The shots of a film made on a Dask cluster (prefect-dask): proof that no task is tied to threads.

A local cluster of two worker processes: every task the flow fans out (rewrite, generate,
effects) is pickled to another process, opens the catalog there from that process's settings,
and records what it makes; the flow stitches the film from what came back.
"""

from __future__ import annotations

import asyncio
import os
import re

import pytest

from tests.support import TINY_STORY, reporting_to

pytestmark = pytest.mark.prefect


def test_a_dask_cluster_of_processes_makes_the_shots(prefect_server, tmp_path, monkeypatch):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId, LogFilter, LogFilterTaskRunId

    from flows.film import run_film
    from storyflow.core.config import FilmChoices
    from storyflow.media.video import probe

    story = tmp_path / "tiny.md"
    story.write_text(TINY_STORY)
    monkeypatch.setenv("STORYFLOW_HOME", str(tmp_path / "outputs"))  # the workers inherit this machine's settings
    monkeypatch.setenv("PREFECT_API_URL", prefect_server)
    with reporting_to(prefect_server):
        summary = run_film(story, FilmChoices(task_runner="dask", max_concurrency=2))

        async def generate_logs():
            async with get_client() as client:
                runs = await client.read_task_runs(
                    flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[summary["prefect_flow_run_id"]])))
                generate = [run for run in runs if run.name.startswith("generate-")]
                logs = await client.read_logs(log_filter=LogFilter(
                    task_run_id=LogFilterTaskRunId(any_=[run.id for run in generate])))
                return generate, logs

        generate, logs = asyncio.run(generate_logs())
        again = run_film(story, FilmChoices(max_concurrency=2))

    # 1. every shot was made, by a task run that completed, in a worker process (not this one)
    assert summary["clips_generated"] >= len(summary["shots"]) >= 2
    assert sorted(run.name for run in generate) == sorted(f"generate-{shot['id']}" for shot in summary["shots"])
    assert all(run.state.is_completed() for run in generate)
    pids = {int(m.group(1)) for log in logs if (m := re.search(r"\(process (\d+)\)", log.message))}
    assert len(pids) >= 1 and os.getpid() not in pids, pids

    # 2. the film plays every shot, and the catalog knows each clip: a rerun in threads makes nothing
    film = probe(summary["film"])
    assert film.seconds == pytest.approx(summary["duration_s"], abs=0.1) and film.audio_codec is not None
    assert again["clips_generated"] == 0 and again["film_reused"]
    assert again["generations"]["clip"]["reused"] == summary["generations"]["clip"]["made"]
