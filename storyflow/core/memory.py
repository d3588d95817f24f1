"""Keeping a long run's resident memory to what it uses: fewer malloc arenas, freed memory given back.

glibc's malloc gives each thread that allocates at once an arena of its own (up to 8 per core),
and each arena keeps its own free memory: a film's worker threads, decoding and encoding in
turn, spread their windows over many arenas that all stay large. Two arenas are plenty for
threads that mostly wait on ffmpeg and numpy with the GIL released. And glibc keeps what a
stage freed (thousands of numpy windows and decoded frames, each under its mmap threshold) for
reuse, so the resident size after a stage is the stage's high-water mark, and a later stage's
large buffers (the C2PA signer holds the whole film) come on top of it: malloc_trim(0) returns
the free pages to the system. Elsewhere (macOS, musl) both do nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

M_ARENA_MAX = -8  # glibc's mallopt() parameter (malloc.h)
ARENAS = 2


def limit_malloc_arenas() -> None:
    """Two malloc arenas for the whole process (as MALLOC_ARENA_MAX=2 would): call it before threads start."""
    libc = _libc()
    if libc is not None and hasattr(libc, "mallopt"):
        libc.mallopt(M_ARENA_MAX, ARENAS)


def release_freed_memory() -> None:
    """Return the memory this process has freed to the operating system (glibc), so resident size is what is in use."""
    libc = _libc()
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)


@functools.cache
def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
