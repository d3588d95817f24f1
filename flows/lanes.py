"""The sound lane: a film's sound work beside its shots, on the CPU time the shots leave.

A shot's effects need that shot's clips alone, and the score needs only the storyboard, so
neither has to wait for the last shot: a task runner of its own takes them while the flow's
runner makes the shots, and measures the narration and the score for the mix (listen_task).
A video model on a GPU or a hosted one leaves the CPU idle; the embedded animatic does not,
so the lane's threads run at a lower CPU priority (nice +10 on Linux): they take what the
shots leave instead of slowing them. Two threads, so the last shots' effects, which are left
when the picture is done, are made side by side. The lane's tasks are ordinary Prefect task
runs (retries, states, the UI), submitted as task.submit() would.
"""

from __future__ import annotations

import contextlib
import os
import threading

from prefect.task_runners import ThreadPoolTaskRunner

NICENESS = 10  # the lane's threads against the shots' (0): CFS gives them about a tenth of a contended core
THREADS = 2


class SoundLane(ThreadPoolTaskRunner):
    """A Prefect thread-pool task runner whose threads run at a lower CPU priority."""

    def __init__(self) -> None:
        super().__init__(max_workers=THREADS)

    def _register_worker_thread(self) -> None:
        # Prefect's initializer of each of the pool's threads (prefect pinned, constraints.txt): the thread
        # lowers its own priority, which Linux keeps per thread
        super()._register_worker_thread()
        with contextlib.suppress(AttributeError, OSError):  # not Linux, or not allowed: the lane runs at the same priority
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), os.getpriority(os.PRIO_PROCESS, 0) + NICENESS)
