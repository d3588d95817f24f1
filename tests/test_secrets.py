"""Secrets never reach the catalog, the logs, the summaries, Prefect or the C2PA manifest.

Keys are planted in the environment (where backends read them) and a film is made; then
every byte storyflow wrote, everything it printed, and Prefect's own database are searched.
"""

from __future__ import annotations

import json

import pytest

from tests.support import TINY_STORY, run_cli

pytestmark = pytest.mark.slow

PLANTED = {
    "OPENAI_API_KEY": "sk-planted-openai-4f1d9a7c2b8e6d30",
    "GOOGLE_API_KEY": "AIza-planted-google-9b2c7e4a1f6d",
    "HF_TOKEN": "hf_planted_token_5e8a3c1b9d7f",
    "STORYFLOW_C2PA_PASSWORD": "planted-pass-7c3e1a9f5b2d",  # an unused secret of our own prefix
}


def test_planted_keys_appear_nowhere(prefect_server_state, tmp_path, write_story):
    story = write_story(TINY_STORY)
    home = tmp_path / "outputs"
    env = {**PLANTED, "PREFECT_API_URL": prefect_server_state["api_url"]}
    printed = []
    for args in (
        ["film", str(story), "--json"],
        ["film", str(story), "--json"],  # a cached rerun prints and records too
        ["catalog", "runs", "--json"],
        ["catalog", "verify", "--json"],
        ["catalog", "films"],
    ):
        result = run_cli(args, home=home, cwd=tmp_path, env=env)
        assert result.code == 0, result.stderr
        printed += [result.stdout, result.stderr]
    film = run_cli(["film", str(story), "--json"], home=home, cwd=tmp_path, env=env).json["film"]
    for args in (["provenance", film, "--json"], ["provenance", film], ["shots", film], ["verify", film, "--json"]):
        result = run_cli(args, home=home, cwd=tmp_path, env=env)
        assert result.code == 0, result.stderr
        printed += [result.stdout, result.stderr]

    # a key passed as a backend option is refused before anything is written, without being echoed
    refused = run_cli(["film", str(story), "--video-option", f"api_key={PLANTED['OPENAI_API_KEY']}"],
                      home=home, cwd=tmp_path, env=env)  # fmt: skip
    assert refused.code == 2 and "looks like a secret" in refused.stderr
    printed += [refused.stdout, refused.stderr]

    searched = 0
    for folder in (home, prefect_server_state["home"]):  # our files, and Prefect's database and logs
        for path in folder.rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                searched += 1
                for name, value in PLANTED.items():
                    assert value.encode() not in data, f"{name}'s value found in {path}"
    for text in printed:
        for name, value in PLANTED.items():
            assert value not in text, f"{name}'s value was printed"
    assert searched > 30  # the film, clips, audio, catalog, stills, manifests and Prefect's db were all read


PASSWORD = "planted-db-password-5d81c2a7"


def test_a_catalog_password_and_api_keys_never_reach_prefect(postgres_url, prefect_server_state, tmp_path, write_story):
    """A PostgreSQL catalog URL with a password, and keys in the environment: a film is made against a
    real Prefect server, then its API (the flow run's parameters, task runs, logs, artifacts) and its
    database are searched for every one of them."""
    import asyncio

    import psycopg
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, FlowRunFilter, FlowRunFilterId
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.settings import PREFECT_API_URL, temporary_settings
    from sqlalchemy.engine import make_url

    # 1. a database of its own on the session's server; trust authentication accepts any password,
    #    so the planted one travels in the URL the whole way
    server = make_url(postgres_url)
    with psycopg.connect(host=server.host, port=server.port, user=server.username, dbname="postgres",
                         autocommit=True) as admin:  # fmt: skip
        admin.execute("CREATE DATABASE secrets_catalog")
    url = server.set(database="secrets_catalog", password=PASSWORD).render_as_string(hide_password=False)
    api = prefect_server_state["api_url"]
    env = {**PLANTED, "STORYFLOW_CATALOG_URL": url, "PREFECT_API_URL": api}

    story = write_story(TINY_STORY)
    result = run_cli(["film", str(story), "--json"], home=tmp_path / "outputs", cwd=tmp_path, env=env)
    assert result.code == 0, result.stderr
    flow_run_id = result.json["prefect_flow_run_id"]

    # 2. everything Prefect's API says about that run
    async def everything() -> tuple[dict, list, list, list]:
        async with get_client() as client:
            run = await client.read_flow_run(flow_run_id)
            runs = FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
            tasks = await client.read_task_runs(flow_run_filter=runs)
            logs = await client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
            artifacts = await client.read_artifacts(
                artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))
        return run.model_dump(mode="json"), [t.model_dump(mode="json") for t in tasks], \
            [log.model_dump(mode="json") for log in logs], [a.model_dump(mode="json") for a in artifacts]  # fmt: skip

    with temporary_settings(updates={PREFECT_API_URL: api}):
        run, tasks, logs, artifacts = asyncio.run(everything())
    assert set(run["parameters"]) >= {"story", "choices"}  # what the run was asked, as Prefect shows it
    assert len(tasks) >= 10 and len(logs) >= 5 and artifacts  # there was plenty to search
    seen = json.dumps([run, tasks, logs, artifacts])
    for name, value in {**PLANTED, "the catalog's password": PASSWORD}.items():
        assert value not in seen, f"{name} reached Prefect's API"
    assert "postgresql" not in json.dumps(run["parameters"])  # the catalog is this machine's, not a parameter

    # 3. Prefect's database and logs on disk
    searched = 0
    for path in prefect_server_state["home"].rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            searched += 1
            for name, value in {**PLANTED, "the catalog's password": PASSWORD}.items():
                assert value.encode() not in data, f"{name} found in {path}"
    assert searched >= 1
