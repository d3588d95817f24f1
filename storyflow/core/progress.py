"""Progress events from the stages, for whoever is watching (the CLI, a test).

Stages call `report("clip", shot="s03", segment=1, reused=False)`; the CLI installs a
reporter that prints a line per event. With no reporter installed, events are dropped.
Reporters may be called from several worker threads at once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

Reporter = Callable[[str, dict[str, Any]], None]

_lock = threading.Lock()
_reporter: Reporter | None = None


def set_reporter(reporter: Reporter | None) -> None:
    global _reporter
    with _lock:
        _reporter = reporter


def report(event: str, **fields: Any) -> None:
    with _lock:
        reporter = _reporter
        if reporter is not None:
            reporter(event, fields)
