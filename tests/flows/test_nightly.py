"""Nightly renders: `storyflow schedule`, a worker (`storyflow serve`), two nights, the report.

The real CLI against a real Prefect server and a real process worker: the schedule is a
deployment with an explicit time zone; a night renders every story of the folder, a story
that fails stops no other, and the second night, after one story was edited, generates only
that story's clips. Each night leaves a report as a file and as a Prefect artifact.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support import REPO, run_cli

pytestmark = [pytest.mark.prefect, pytest.mark.slow]


def tiny(title: str, text: str) -> str:
    return f"---\ntitle: {title}\nresolution: 128x72\nfps: 8\ntitle_card: false\n---\n{text}\n"


STORIES = {
    "a-harbour.md": tiny("Harbour", "The boats rest at the pier at dawn."),
    "b-forest.md": tiny("Forest", "A fox runs between the pines."),
    "c-moon.md": tiny("Moon", "The moon rises over the sea."),
    "d-broken.md": "---\ntitle: [unclosed\n---\nA story with broken front matter.\n",
}


def wait_for(flow_run_id: str, api_url: str, timeout: float = 240) -> str:
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    deadline = time.monotonic() + timeout
    with temporary_settings(updates={PREFECT_API_URL: api_url}), get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            state = client.read_flow_run(flow_run_id).state
            if state is not None and state.is_final():
                return state.type.value
            time.sleep(1)
    raise AssertionError(f"the nightly run {flow_run_id} did not finish in {timeout} s")


def run_name(flow_run_id: str, api_url: str) -> str:
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: api_url}), get_client(sync_client=True) as client:
        return client.read_flow_run(flow_run_id).name


def test_a_scheduled_night_renders_every_story_and_the_next_one_only_what_changed(tmp_path, prefect_server):
    folder = tmp_path / "stories"
    folder.mkdir()
    for name, text in STORIES.items():
        (folder / name).write_text(text)
    home = tmp_path / "outputs"
    pool, name = f"pool-{os.getpid()}", f"nightly-test-{os.getpid()}"
    env = {"PREFECT_API_URL": prefect_server}

    def storyflow(*args: str):
        return run_cli(list(args), home=home, cwd=tmp_path, env=env)

    # 1. the schedule: a deployment on the server, its cron read in the zone given
    made = storyflow("schedule", str(folder), "--cron", "0 2 * * *", "--timezone", "Europe/Paris", "--name", name,
                     "--pool", pool, "--json")  # fmt: skip
    assert made.code == 0, made.stderr
    assert made.json["next_runs"][0].endswith(("T02:00:00+01:00", "T02:00:00+02:00"))
    listed = {entry["name"]: entry for entry in json.loads(storyflow("schedules", "--json").stdout)}
    assert listed[name]["cron"] == "0 2 * * *" and listed[name]["timezone"] == "Europe/Paris"
    assert listed[name]["folder"] == str(folder.resolve()) and not listed[name]["paused"]

    # 2. a worker for the pool, as `storyflow serve` starts it
    worker = subprocess.Popen(
        [sys.executable, "-m", "storyflow.cli", "serve", "--pool", pool], cwd=tmp_path, stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT, start_new_session=True,
        env={**{k: v for k, v in os.environ.items() if not k.startswith(("STORYFLOW_", "PREFECT_"))},
             "STORYFLOW_HOME": str(home), "PREFECT_API_URL": prefect_server, "PYTHONPATH": str(REPO),
             "DO_NOT_TRACK": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "HOME": str(tmp_path),
             "PREFECT_WORKER_QUERY_SECONDS": "1", "PREFECT_WORKER_PREFETCH_SECONDS": "1"},
    )  # fmt: skip
    try:
        nights = []
        for night in range(2):
            if night == 1:  # the day between: one story is edited
                (folder / "b-forest.md").write_text(STORIES["b-forest.md"].replace("pines", "birches"))
            started = storyflow("schedules", "run", name)
            assert started.code == 0, started.stderr
            flow_run_id = started.stdout.split("flow run ")[-1].strip()
            # a story failed, so the night ends Failed: after every other story is made and the report written
            assert wait_for(flow_run_id, prefect_server) == "FAILED"
            assert run_name(flow_run_id, prefect_server).startswith("nightly-stories-")
            reports = sorted((home / "nightly").glob("*.json"))
            assert len(reports) == night + 1
            nights.append(json.loads(reports[-1].read_text()))

        first, second = ({Path(e["story"]).name: e for e in night["stories"]} for night in nights)
        assert [first[n]["status"] for n in STORIES] == ["made", "made", "made", "failed"]
        assert "front matter" in first["d-broken.md"]["error"]
        assert all(Path(first[n]["film"]).is_file() for n in list(STORIES)[:3])
        # the second night: only the edited story generates; the others cost nothing
        assert [second[n]["status"] for n in STORIES] == ["reused", "made", "reused", "failed"]
        assert second["b-forest.md"]["clips_generated"] > 0
        assert second["a-harbour.md"]["clips_generated"] == second["c-moon.md"]["clips_generated"] == 0
        assert (nights[1]["made"], nights[1]["reused"], nights[1]["failed"]) == (1, 2, 1)
        report_md = Path(nights[1]["report"]).read_text()
        assert "| b-forest.md | made |" in report_md and "**failed**" in report_md

        # the report is an artifact of the nightly run too, under the folder's own key
        from prefect.client.orchestration import get_client
        from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
        from prefect.settings import PREFECT_API_URL, temporary_settings

        with temporary_settings(updates={PREFECT_API_URL: prefect_server}), get_client(sync_client=True) as client:
            artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["nightly-stories"])))
        assert len(artifacts) >= 2 and "b-forest.md" in artifacts[-1].data
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=60)

    # 3. pausing, resuming and removing
    assert storyflow("schedules", "pause", name).code == 0
    assert {e["name"]: e for e in json.loads(storyflow("schedules", "--json").stdout)}[name]["paused"]
    assert storyflow("schedules", "resume", name).code == 0
    assert storyflow("schedules", "remove", name).code == 0
    assert name not in {e["name"] for e in json.loads(storyflow("schedules", "--json").stdout)}
    gone = storyflow("schedules", "pause", name)
    assert gone.code == 2 and f"no nightly schedule named '{name}'" in gone.stderr
    assert run_cli(["catalog", "verify"], home=home, cwd=tmp_path).code == 0  # the reports are storyflow's own


@pytest.mark.parametrize("sigint", ["default", "ignored"])
def test_stopping_storyflow_serve_by_its_process_id_stops_its_worker_too(sigint, tmp_path, prefect_server):
    """`kill PID` (SIGTERM, what a service manager or a script sends) leaves no Prefect worker behind, also when
    serve was started with SIGINT ignored, as `storyflow serve &` in a script is (the worker stops on SIGINT)."""
    import psutil

    said = tmp_path / "serve.log"  # a file, not a pipe: a worker left behind would hold a pipe open
    serve = subprocess.Popen(
        [sys.executable, "-m", "storyflow.cli", "serve", "--pool", f"stop-{os.getpid()}-{sigint}"], cwd=tmp_path,
        stdout=subprocess.DEVNULL, stderr=said.open("w"),
        preexec_fn=(lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if sigint == "ignored" else None,
        env={**{k: v for k, v in os.environ.items() if not k.startswith(("STORYFLOW_", "PREFECT_"))},
             "STORYFLOW_HOME": str(tmp_path / "outputs"), "PREFECT_API_URL": prefect_server, "PYTHONPATH": str(REPO),
             "DO_NOT_TRACK": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "HOME": str(tmp_path)},
    )  # fmt: skip
    worker = None
    try:
        deadline = time.monotonic() + 60
        while not psutil.Process(serve.pid).children():
            assert time.monotonic() < deadline and serve.poll() is None, "storyflow serve started no worker"
            time.sleep(0.2)
        [worker] = psutil.Process(serve.pid).children()
        time.sleep(3)  # the worker is up and polling
        serve.send_signal(signal.SIGTERM)  # the command alone, not its process group
        assert serve.wait(timeout=60) == 0, said.read_text()
        assert psutil.wait_procs([worker], timeout=30)[1] == [], "the Prefect worker outlived storyflow serve"
        assert "Traceback" not in said.read_text()
    finally:  # whatever happened, nothing is left running
        if worker is not None and worker.is_running():
            worker.kill()
        if serve.poll() is None:
            serve.kill()
