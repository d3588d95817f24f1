"""The sound lane: a film's sound work beside its shots, on the CPU time the shots leave.

A shot's effects need that shot's clips alone, and the score needs only the storyboard, so
neither has to wait for the last shot: a one-thread task runner takes them while the flow's
own runner makes the shots. A video model on a GPU or a hosted one leaves the CPU idle; the
embedded animatic does not, so the lane's thread runs at a lower CPU priority (nice +10 on
Linux): it takes what the shots leave instead of slowing them. The lane's tasks are ordinary
Prefect task runs (retries, states, the UI), submitted as task.submit() would.
"""

from __future__ import annotations

import contextlib
import os
import threading
from prefect.task_runners import ThreadPoolTaskRunner

NICENESS = 10  # the lane's thread against the shots' (0): CFS gives it about a tenth of a contended core


class SoundLane(ThreadPoolTaskRunner):
    """A one-thread Prefect task runner whose thread runs at a lower CPU priority."""

    def __init__(self) -> None:
        super().__init__(max_workers=1)

    def __enter__(self) -> SoundLane:
        super().__enter__()
        # the pool's one thread is made by its first job: make it lower its own priority (per thread on Linux)
        self._executor.submit(_lower_priority).result()  # type: ignore[union-attr]
        return self


def _lower_priority() -> None:
    with contextlib.suppress(AttributeError, OSError):  # not Linux, or not allowed: the lane runs at the same priority
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), os.getpriority(os.PRIO_PROCESS, 0) + NICENESS)
