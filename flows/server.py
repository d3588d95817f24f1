"""Prefect servers on loopback: the one `make ui` keeps running, and a temporary one per run.

`storyflow ui start` (what `make ui` runs) starts `prefect server start` in the
background with its state under $STORYFLOW_HOME/.prefect, and notes its process id and
address in server.json there. Later runs find that note and report to that server
(starting in about a second instead of spinning up a temporary server each time).
`storyflow ui stop` stops it by its process id.

Without one, a run starts `temporary_server()`: Prefect's own API server (without the UI)
on a free port, for this process alone, stopped when the run ends and, on Linux, killed by
the kernel the moment its parent dies, however it dies (SIGKILL included). Prefect would
start such a server by itself, but as an ordinary child that outlives a killed run.
This module does not import Prefect.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from storyflow.core.errors import StoryflowError
from storyflow.core.processes import process_alive

STATE_FILE = "server.json"


def prefect_env(prefect_home: Path, *, keep_home: bool = False) -> dict[str, str]:
    """Environment for Prefect processes: state inside our output folder (or the user's
    PREFECT_HOME, with `keep_home`), no telemetry."""
    home = os.environ.get("PREFECT_HOME") if keep_home else None
    return {
        "PREFECT_HOME": home or str(prefect_home.resolve()),
        "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        # should Prefect ever start its own ephemeral server, give it as long as ours gets: its 20 s
        # default failed about one run in twelve on a loaded 2-core machine
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": os.environ.get(
            "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90"),
    }


def running_server(prefect_home: Path) -> dict | None:
    """The note of a server `ui start` left running, if its process is alive and answering."""
    state = _read_state(prefect_home)
    if state is None or not process_alive(state["pid"]) or not _healthy(state["api_url"], timeout=1.0):
        return None
    return state


def start_server(prefect_home: Path, host: str = "127.0.0.1", port: int = 4200, wait_s: float = 90) -> dict:
    """Start the server in the background (or return the one already running)."""
    found = running_server(prefect_home)
    if found:
        return found
    prefect_home.mkdir(parents=True, exist_ok=True)
    api_url = f"http://{host}:{port}/api"
    if _healthy(api_url, timeout=1.0):
        raise StoryflowError(
            f"something else already answers on {host}:{port}",
            fix="stop it, or start storyflow's server on another port: storyflow ui start --port 4300",
        )
    log = open(prefect_home / "server.log", "ab")  # noqa: SIM115 - handed to the child process
    process = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", host, "--port", str(port),
         "--analytics-off"],  # fmt: skip
        # `--port` moves the server, not the address its UI is told to call: without these the UI
        # served on any other port still calls the API on 4200
        env={**os.environ, **prefect_env(prefect_home), "PREFECT_SERVER_API_HOST": host,
             "PREFECT_SERVER_API_PORT": str(port), "PREFECT_UI_API_URL": api_url},  # fmt: skip
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: stopped as one, survives our exit
    )
    state = {"pid": process.pid, "api_url": api_url, "ui_url": f"http://{host}:{port}", "started": time.time()}
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise StoryflowError(
                f"the Prefect server exited at start (code {process.returncode})",
                fix=f"read {prefect_home / 'server.log'}",
            )
        if _healthy(api_url, timeout=1.0):
            (prefect_home / STATE_FILE).write_text(json.dumps(state))
            return state
        time.sleep(0.5)
    _kill_group(process.pid)
    raise StoryflowError(
        f"the Prefect server did not answer within {wait_s:.0f} s", fix=f"read {prefect_home / 'server.log'}"
    )


@contextlib.contextmanager
def temporary_server(prefect_home: Path, wait_s: float = 90) -> Iterator[str]:
    """A Prefect API server for this process alone, on a free loopback port; yields its API URL.

    Prefect's database under our output folder holds run history for the UI, no film data: found damaged
    when the server will not start, it is set aside (never deleted) and the server started on a new one.
    """
    prefect_home.mkdir(parents=True, exist_ok=True)
    try:
        process, api_url = _start_temporary(prefect_home, wait_s)
    except ServerExitedAtStart:
        damaged = _set_aside_damaged_database(prefect_home)
        if damaged is None:
            raise
        sys.stderr.write(f"Prefect's own database was damaged: set aside as {damaged} and a new one made "
                         "(it holds run history for the UI; films and the catalog are untouched)\n")  # fmt: skip
        process, api_url = _start_temporary(prefect_home, wait_s)
    try:
        yield api_url
    finally:
        _drain_prefect_workers()  # logs and events still queued go to the server before it stops
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class ServerExitedAtStart(StoryflowError):
    """The temporary server's process ended before it answered."""


def _start_temporary(prefect_home: Path, wait_s: float) -> tuple[subprocess.Popen, str]:
    """Start the temporary server and wait until it answers: (its process, its API URL)."""
    import importlib.util

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    api_url = f"http://127.0.0.1:{port}/api"
    package = Path(importlib.util.find_spec("prefect").origin).parent  # without importing Prefect
    log = open(prefect_home / "temporary-server.log", "ab")  # noqa: SIM115 - handed to the child process
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--app-dir", str(package.parent), "--factory",
         "prefect.server.api.server:create_app", "--host", "127.0.0.1", "--port", str(port),
         "--log-level", "error", "--lifespan", "on"],  # fmt: skip
        # Prefect's state where this process keeps it (ours, unless the user chose PREFECT_HOME), no telemetry
        # as Prefect starts its own temporary server: no UI, the services a temporary server needs
        env={**os.environ, **prefect_env(prefect_home, keep_home=True), "PREFECT_UI_ENABLED": "0",
             "PREFECT__SERVER_EPHEMERAL": "1", "PREFECT__SERVER_FINAL": "1"},  # fmt: skip
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        preexec_fn=_die_with_parent(os.getpid()),  # noqa: PLW1509 - runs before any thread of ours
    )
    log.close()
    deadline = time.monotonic() + wait_s
    while not _healthy(api_url, timeout=1.0):
        if process.poll() is not None:
            raise ServerExitedAtStart(
                f"the temporary Prefect server exited at start (code {process.returncode})",
                fix=f"read {prefect_home / 'temporary-server.log'}; or keep a server running with `make ui`",
            )
        if time.monotonic() > deadline:
            process.kill()
            process.wait()
            raise StoryflowError(
                f"the temporary Prefect server did not answer within {wait_s:.0f} s (is the machine overloaded?)",
                fix="rerun; or keep a server running with `make ui`, which runs start in about a second",
            )
        time.sleep(0.2)
    return process, api_url


def _set_aside_damaged_database(prefect_home: Path) -> Path | None:
    """If Prefect's SQLite database in our folder (not a PREFECT_HOME the user chose) fails SQLite's own
    check, move it (and its -wal, -shm) aside; the new name, or None when it is sound or not ours."""
    import sqlite3
    from datetime import UTC, datetime

    if os.environ.get("PREFECT_HOME") and Path(os.environ["PREFECT_HOME"]).resolve() != prefect_home.resolve():
        return None
    database = prefect_home / "prefect.db"
    if not database.is_file():
        return None
    try:
        with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as connection:
            if connection.execute("PRAGMA quick_check").fetchone()[0] == "ok":
                return None
    except sqlite3.DatabaseError:
        pass  # "file is not a database", "database disk image is malformed": damaged
    aside = database.with_name(f"prefect.db.damaged-{datetime.now(UTC):%Y%m%dT%H%M%SZ}")
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.replace(f"{database}{suffix}", f"{aside}{suffix}")
    return aside


def _drain_prefect_workers(timeout_s: float = 5) -> None:
    """Send what Prefect's background workers still hold (logs, events), if this process loaded Prefect."""
    if "prefect" not in sys.modules:
        return
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for worker in (APILogWorker, EventsWorker):
        worker.drain_all(timeout=timeout_s)


def _die_with_parent(parent: int):
    """In the child, before it runs: ask the kernel to kill it when its parent dies (Linux only)."""

    def arrange() -> None:
        if sys.platform.startswith("linux"):
            import ctypes

            pr_set_pdeathsig = 1
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
        if os.getppid() != parent:  # the parent died before the line above took effect
            os._exit(1)

    return arrange


def stop_server(prefect_home: Path) -> bool:
    """Stop the server `start_server` started; False if none was running."""
    state = _read_state(prefect_home)
    (prefect_home / STATE_FILE).unlink(missing_ok=True)
    if state is None or not process_alive(state["pid"]):
        return False
    _kill_group(state["pid"])
    return True


def _read_state(prefect_home: Path) -> dict | None:
    try:
        return json.loads((prefect_home / STATE_FILE).read_text())
    except (OSError, ValueError):
        return None


def _healthy(api_url: str, timeout: float) -> bool:
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=timeout) as response:
            return response.status == 200
    except OSError:
        return False


def _kill_group(pid: int, grace_s: float = 10) -> None:
    """SIGTERM the server's process group, then SIGKILL whatever is left."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline:
            try:
                waited, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                waited = pid if not process_alive(pid) else 0
            if waited == pid:
                return
            time.sleep(0.2)
