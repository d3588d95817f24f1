"""Whether a process is still there: for runs a killed process left "running", and the UI server."""

from __future__ import annotations

import os


def process_alive(pid: int) -> bool:
    """True if a process with this id exists on this machine (ours or someone else's)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, owned by another user
    return True
