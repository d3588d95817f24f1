"""Advisory file locks: one run per film folder at a time, and repairs only while no run is on.

Runs of the same story take the film folder's lock exclusively, so a second run waits and
then finds everything the first one made (it reuses it). Every run also holds the output
folder's lock shared, and `storyflow catalog verify --repair` takes that one exclusively:
it never moves files while a run is writing them. The operating system drops a lock when
its process dies, SIGKILL included, so a crashed run never leaves a stale lock behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

LOCK_NAME = ".lock"


@contextlib.contextmanager
def hold(folder: Path, *, shared: bool = False, on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold `folder`/.lock; if another process has it, call `on_wait` once (with its note) and wait."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        mode = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait is not None:
                on_wait(_holder(path))
            fcntl.flock(fd, mode)
        if not shared:  # who holds it, for the next process that has to wait
            os.ftruncate(fd, 0)
            os.write(fd, f"pid {os.getpid()} since {time.strftime('%H:%M:%S')}\n".encode())
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _holder(path: Path) -> str:
    try:
        return path.read_text().strip() or "another process"
    except OSError:
        return "another process"
