"""Shared fixtures. Every test writes under its own temporary STORYFLOW_HOME."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Prefect must not phone home (and on a fresh database that also causes "database is locked").
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

REPO = Path(__file__).resolve().parent.parent
STORIES = REPO / "stories"


@pytest.fixture
def storyflow_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh output folder, set as STORYFLOW_HOME for the test."""
    home = tmp_path / "outputs"
    home.mkdir()
    monkeypatch.setenv("STORYFLOW_HOME", str(home))
    return home


@pytest.fixture
def write_story(tmp_path: Path):
    """write_story(text, name='story.md') -> path of a story file in a temporary folder."""

    def write(text: str | bytes, name: str = "story.md") -> Path:
        path = tmp_path / "stories" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8")
        return path

    return write


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory):
    """A real `prefect server start` on a free loopback port for the whole session.

    Started through the same code as `make ui`, stopped afterwards by its process id.
    Yields the API URL; subprocesses get it as PREFECT_API_URL.
    """
    import socket

    from flows.server import start_server, stop_server

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    prefect_home = tmp_path_factory.mktemp("prefect-server")
    state = start_server(prefect_home, port=port, wait_s=120)
    try:
        yield state["api_url"]
    finally:
        stop_server(prefect_home)
