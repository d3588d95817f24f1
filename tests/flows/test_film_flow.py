"""Orchestration only: task names, fan-out bounds, chain order, the run's catalog row.

The flow runs in this process against the session's real Prefect server on loopback.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
import threading
from pathlib import Path

import pytest

from storyflow.core.models import Storyboard
from tests.support import REPO, TINY_STORY, reporting_to

pytestmark = pytest.mark.prefect


def test_stages_never_import_prefect():
    offenders = [
        str(path.relative_to(REPO))
        for path in (REPO / "storyflow").rglob("*.py")
        if re.search(r"^\s*(import prefect|from prefect)", path.read_text(), re.M)
    ]
    assert offenders == []


@pytest.fixture(scope="module")
def flow_run(prefect_server, tmp_path_factory):
    """Run the film flow once on the tiny story; return its summary and its task runs."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    from flows.film import run_film
    from storyflow.core.config import FilmChoices

    folder = tmp_path_factory.mktemp("flow")
    story = folder / "tiny.md"
    story.write_text(TINY_STORY)
    with pytest.MonkeyPatch.context() as env, reporting_to(prefect_server):
        env.setenv("STORYFLOW_HOME", str(folder / "outputs"))  # where this machine's settings put films
        summary = run_film(story, FilmChoices(max_concurrency=2))

        async def task_runs():
            async with get_client() as client:
                return await client.read_task_runs(
                    flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[summary["prefect_flow_run_id"]]))
                )

        runs = asyncio.run(task_runs())
    return summary, runs


def test_task_runs_carry_the_shot_id(flow_run):
    summary, runs = flow_run
    names = {run.name for run in runs}
    for shot in summary["shots"]:
        for stage in ("rewrite", "generate", "effects"):
            assert f"{stage}-{shot['id']}" in names
    assert {"plan", "narrate", "music", "mix", "stitch"} <= {name.split("-")[0] for name in names}
    # every segment made is a task run of its own, under its shot's
    for shot in summary["shots"]:
        for n, segment in enumerate(shot["segments"], start=1):
            assert f"segment-{shot['id']}-{n}" in names
    assert sum(name.startswith("segment-") for name in names) == summary["clips_generated"]
    assert all(run.state.is_completed() for run in runs)


def test_generation_is_fanned_out_but_bounded_and_chains_keep_their_order(flow_run):
    summary, runs = flow_run
    board = Storyboard.model_validate_json(Path(summary["storyboard"]).read_text())
    generate = {run.name.removeprefix("generate-"): run for run in runs if run.name.startswith("generate-")}
    spans = sorted((run.start_time, run.end_time) for run in generate.values())

    # at most two at once (the bound), and independent chains do overlap
    def running_at(t):
        return sum(start <= t < end for start, end in spans)

    peak = max(running_at(start) for start, _ in spans)
    assert peak <= 2
    if len(board.chains()) >= 2:
        assert peak == 2

    # a continuing shot starts only after the shot it continues has finished
    for chain in board.chains():
        for before, after in zip(chain, chain[1:]):
            assert generate[after.id].start_time >= generate[before.id].end_time


def test_the_run_is_recorded_with_timings(flow_run):
    summary, _ = flow_run
    assert set(summary["timings"]) >= {"plan", "narrate", "rewrite", "generate", "audio", "stitch", "record",
                                       "orchestration"}  # fmt: skip
    assert summary["timings"]["generate"] > 0
    assert Path(summary["film"]).exists()
    assert (Path(summary["film"]).parent / "summary.json").exists()


def test_the_ui_shows_the_film_under_its_own_name_and_artifacts(flow_run, prefect_server):
    """The flow run is named after the film; its storyboard, progress, pictures, summary and a link to the film
    are artifacts under keys of the film's own (so every film keeps its history on the Artifacts page)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
    from prefect.settings import PREFECT_API_URL, temporary_settings

    summary, _ = flow_run
    with temporary_settings(updates={PREFECT_API_URL: prefect_server}), get_client(sync_client=True) as client:
        run = client.read_flow_run(summary["prefect_flow_run_id"])
        made = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[summary["prefect_flow_run_id"]])))  # fmt: skip
    assert run.name == "tiny-harbour"
    by_key = {artifact.key: artifact for artifact in made}
    assert set(by_key) == {f"tiny-harbour-{what}" for what in ("storyboard", "progress", "pictures", "summary", "film")}
    storyboard = by_key["tiny-harbour-storyboard"]
    assert storyboard.type == "table" and [row["shot"] for row in __import__("json").loads(storyboard.data)] == [
        shot["id"] for shot in summary["shots"]]  # fmt: skip
    assert by_key["tiny-harbour-progress"].type == "progress" and float(by_key["tiny-harbour-progress"].data) == 100
    assert by_key["tiny-harbour-pictures"].data.count("](data:image/jpeg;base64,") == 2
    assert "| s01 |" in by_key["tiny-harbour-summary"].data
    link = by_key["tiny-harbour-film"].data  # Prefect keeps a link artifact as markdown: [name](url)
    assert f"({Path(summary['film']).resolve().as_uri()})" in link


def test_sound_is_made_beside_the_shots(flow_run):
    summary, runs = flow_run
    by_name = {run.name: run for run in runs}
    last_clip = max(run.end_time for run in runs if run.name.startswith("generate-"))
    # the score waits for no clip (the clips hold the planned frames), and is composed once
    music = [run for run in runs if run.name.startswith("music")]
    assert len(music) == 1 and music[0].start_time < last_clip
    assert summary["generations"]["music cue"] == {"made": len(summary["shots"]), "reused": 0}
    # a shot's effects wait for that shot's clips, and for nothing else
    for shot in summary["shots"]:
        assert by_name[f"effects-{shot['id']}"].start_time >= by_name[f"generate-{shot['id']}"].end_time


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a thread's own priority is Linux's")
def test_the_sound_lane_yields_the_cpu_to_the_shots():
    from flows.lanes import NICENESS, THREADS, SoundLane

    def own_priority() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    with SoundLane() as lane:  # every thread of the lane, where its Prefect tasks run: two jobs that meet keep two busy
        met = threading.Barrier(THREADS)
        jobs = [lane._executor.submit(lambda: (met.wait(timeout=30), own_priority())[1]) for _ in range(THREADS)]
        priorities = [job.result() for job in jobs]
    assert priorities == [own_priority() + NICENESS] * THREADS
