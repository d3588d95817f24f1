"""Cancel in the Prefect UI stops a run that `storyflow film` started itself.

A run of a deployment (`serve`, a worker) is stopped by its supervisor: on Cancel it sends the
process SIGTERM, and Prefect's engine moves the run to Cancelled. A run the command line
started has no supervisor, so Prefect would only mark it Cancelling while it went on
rendering all night. `watched` plays the supervisor's part for it: a thread polls the run's
state and, on Cancelling, tells the engine the signal means "cancel" and sends this process
the same SIGTERM. Either way the flow ends through its cleanup: finished clips are kept, the
catalog records the run as cancelled, and the command line prints one line saying so.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from uuid import UUID

POLL_S = 2.0

_requested = threading.Event()


def requested() -> bool:
    """Whether this process's run was cancelled from the Prefect UI (or API)."""
    return _requested.is_set()


@contextmanager
def watched(flow_run_id: str | UUID, *, has_supervisor: bool, every_s: float = POLL_S) -> Iterator[None]:
    """Stop this process's run, as a supervisor would, when the run is cancelled in the Prefect UI."""
    if has_supervisor:  # its runner or worker does this already
        yield
        return
    done = threading.Event()
    watcher = threading.Thread(target=_watch, args=(UUID(str(flow_run_id)), done, every_s),
                               name="storyflow-cancel-watch", daemon=True)  # fmt: skip
    watcher.start()
    try:
        yield
    finally:
        done.set()


def _watch(flow_run_id: UUID, done: threading.Event, every_s: float) -> None:
    from prefect import get_client

    with get_client(sync_client=True) as client:
        while not done.wait(every_s):
            try:
                state = client.read_flow_run(flow_run_id).state
            except Exception:  # noqa: BLE001 - a server that misses a poll is asked again at the next one
                continue
            if state is not None and state.is_cancelling() and not done.is_set():
                _requested.set()
                _stop_as_a_supervisor_would()
                return


def _stop_as_a_supervisor_would() -> None:
    # The intent is what a runner delivers over its control channel before its SIGTERM: with it,
    # Prefect's engine (pinned, see pyproject.toml) moves the run through Cancelling to Cancelled
    # instead of calling it Crashed. tests/test_hostile.py (the cancel test) fails if a Prefect upgrade moves it.
    from prefect._internal.control_listener import _set_intent

    _set_intent("cancel")
    os.kill(os.getpid(), signal.SIGTERM)
