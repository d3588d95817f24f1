"""The film flow runs from another process: served on a cron schedule, and cleaned up after a kill.

A deployment's run resolves its parameters in a fresh process (the runner starts one per
run), so this is where a parameter type Prefect cannot rebuild, or a setting that only the
launching process knew, would fail.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from storyflow import media
from tests.support import REPO, TINY_STORY, stop

pytestmark = [pytest.mark.prefect, pytest.mark.slow]


def _env(**extra: str) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("STORYFLOW_", "PREFECT_"))},
        "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PYTHONPATH": str(REPO),
        **extra,
    }


def test_the_film_flow_served_on_a_cron_schedule_makes_the_film(prefect_server, tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName
    from prefect.settings import PREFECT_API_URL, temporary_settings

    story = tmp_path / "tiny.md"
    story.write_text(TINY_STORY)
    home = tmp_path / "outputs"
    name = f"every-minute-{os.getpid()}"
    serve = (
        "from flows.film import film_flow\n"
        f"film_flow.serve(name={name!r}, cron='* * * * *', parameters={{'story': {str(story)!r}}})\n"
    )
    server = subprocess.Popen(
        [sys.executable, "-c", serve], cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, env=_env(PREFECT_API_URL=prefect_server, STORYFLOW_HOME=str(home),
                                           PREFECT_RUNNER_POLL_FREQUENCY="2"),
    )  # fmt: skip

    async def runs_of_deployment() -> list:
        async with get_client() as client:
            deployments = await client.read_deployments(
                deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=[name])))
            if not deployments:
                return []
            return await client.read_flow_runs(deployment_filter=DeploymentFilter(
                id={"any_": [deployments[0].id]}))  # fmt: skip

    async def remove_deployment() -> None:
        async with get_client() as client:
            for deployment in await client.read_deployments(
                deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=[name]))):
                await client.delete_deployment(deployment.id)

    try:
        # the scheduler makes the run at the next minute; the served process runs it
        deadline = time.monotonic() + 240
        finished = []
        with temporary_settings(updates={PREFECT_API_URL: prefect_server}):
            while time.monotonic() < deadline and not finished:
                assert server.poll() is None, server.stdout.read().decode(errors="replace")[-3000:]
                runs = asyncio.run(runs_of_deployment())
                finished = [run for run in runs if run.state is not None and run.state.is_final()]
                time.sleep(2)
            assert finished, "no scheduled run finished within 4 minutes"
            run = finished[0]
            assert run.state.is_completed(), f"the scheduled run ended {run.state.name}: {run.state.message}"
            assert run.parameters["story"] == str(story)
    finally:
        with temporary_settings(updates={PREFECT_API_URL: prefect_server}):
            asyncio.run(remove_deployment())
        stop(server, signal.SIGINT, timeout=30)

    # the film it made, in the served process's output folder
    film = home / "tiny-harbour" / "tiny-harbour.mp4"
    info = media.probe(film)
    assert (info.width, info.height, round(info.fps)) == (160, 90, 12) and info.audio_codec == "aac"


def _children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2 :].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text()
    except OSError:
        return False
    return state[state.rindex(")") + 2] != "Z"  # a zombie is dead, only not yet reaped


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
def test_a_run_killed_with_sigkill_leaves_no_prefect_server_behind(tmp_path):
    story = tmp_path / "tiny.md"
    story.write_text(TINY_STORY)
    run = subprocess.Popen(
        [sys.executable, "-m", "storyflow.cli", "film", str(story)], cwd=tmp_path, stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=_env(STORYFLOW_HOME=str(tmp_path / "outputs")),
    )  # fmt: skip
    try:
        # wait until the run has its temporary server and is making the film
        seen = b""
        while b"planned" not in seen:
            line = run.stderr.readline()
            assert line, f"the run ended before planning: {seen.decode(errors='replace')}"
            seen += line
        servers = [pid for pid in _children(run.pid) if b"uvicorn" in Path(f"/proc/{pid}/cmdline").read_bytes()]
        assert len(servers) == 1, f"expected one temporary Prefect server under the run, found {servers}"
    finally:
        run.kill()  # SIGKILL: nothing of the run's own code runs after this
        run.wait()
    deadline = time.monotonic() + 15
    while _alive(servers[0]) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(servers[0]), "the temporary Prefect server outlived the killed run"
