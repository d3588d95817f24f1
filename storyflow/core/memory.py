"""Keeping a long run's memory cheap: fewer malloc arenas, freed memory given back, no collector passes over
what a process loaded once.

glibc's malloc gives each thread that allocates at once an arena of its own (up to 8 per core),
and each arena keeps its own free memory: a film's worker threads, decoding and encoding in
turn, spread their windows over many arenas that all stay large. Two arenas are plenty for
threads that mostly wait on ffmpeg and numpy with the GIL released. And glibc keeps what a
stage freed (thousands of numpy windows and decoded frames, each under its mmap threshold) for
reuse, so the resident size after a stage is the stage's high-water mark, and a later stage's
large buffers (the C2PA signer holds the whole film) come on top of it: malloc_trim(0) returns
the free pages to the system. Elsewhere (macOS, musl) both do nothing.

The cyclic garbage collector is kept off what a process loads once. A film run imports over a
million objects (Prefect, pydantic, SQLAlchemy, numpy, OpenCV) that live as long as it does, and
every full collection walked them all again: about 1.2 s of a small film's 10 s run, plus about
1.3 s of collections at interpreter exit, for memory the operating system takes back anyway.
"""

from __future__ import annotations

import atexit
import ctypes
import ctypes.util
import functools
import gc

M_ARENA_MAX = -8  # glibc's mallopt() parameter (malloc.h)
ARENAS = 2


def limit_malloc_arenas() -> None:
    """Two malloc arenas for the whole process (as MALLOC_ARENA_MAX=2 would): call it before threads start."""
    libc = _libc()
    if libc is not None and hasattr(libc, "mallopt"):
        libc.mallopt(M_ARENA_MAX, ARENAS)


@functools.cache  # once per process: a lasting one (`storyflow serve`, a test session) freezes only its imports
def exempt_loaded_objects() -> None:
    """Leave every object alive now (imported modules, their classes and functions) out of later garbage
    collections (gc.freeze): call it once the heavy imports are done. What is made afterwards is collected as
    before."""
    gc.freeze()


def no_collection_at_exit() -> None:
    """Skip the collections of interpreter shutdown: call it before any other atexit handler is registered, so
    that it runs after all of them (they run last in, first out). Objects still alive at exit are not finalized
    either way (Python does not promise it); files, servers and temporary folders are closed by their owners."""
    atexit.register(gc.freeze)


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
