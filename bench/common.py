"""Shared by the benchmarks: a monotonic timer, a plain-text table, a JSON result file, an older checkout."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"  # what each run writes (ignored by git)
RECORDED = Path(__file__).parent / "recorded"  # figures of old code measured once, kept in the repository


@contextmanager
def timer() -> Iterator[dict[str, float]]:
    """with timer() as t: ...; t["s"] holds the elapsed wall seconds afterwards."""
    box = {"s": 0.0}
    start = time.perf_counter()
    try:
        yield box
    finally:
        box["s"] = time.perf_counter() - start


def best_of(repeats: int, fn) -> float:
    """The fastest of `repeats` wall-clock timings of fn(): the least disturbed run."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def print_table(title: str, rows: list[dict[str, Any]]) -> None:
    """Print rows (dicts with the same keys) as an aligned table under a title."""
    print(f"\n## {title}\n")
    if not rows:
        print("(no rows)")
        return
    headers = list(rows[0])
    cells = [[_fmt(row.get(h)) for h in headers] for row in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for c in cells:
        print("| " + " | ".join(v.ljust(w) for v, w in zip(c, widths)) + " |")


def save_results(name: str, rows: list[dict[str, Any]], meta: dict[str, Any] | None = None) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"meta": meta or {}, "rows": rows}, indent=2, default=str))
    return path


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
    return "" if value is None else str(value)


def free_port() -> int:
    """A free TCP port on loopback, for a server a benchmark starts."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


REPO = Path(__file__).resolve().parent.parent
# Where issue 12 (flat memory, instant reruns, cheaper sound, faster previews) started: the "before" the
# film benchmarks measure beside today's code in the same run. BENCH_BASELINE=<commit> picks another;
# BENCH_BASELINE= (empty) measures today's code alone.
DEFAULT_BASELINE = "0fe8e43"


def baseline_commit() -> str:
    import os

    return os.environ.get("BENCH_BASELINE", DEFAULT_BASELINE).strip()


def checkout(commit: str, into: Path) -> Path:
    """The repository's files at `commit`, extracted into `into` (git archive: the repository is untouched);
    its code runs on this checkout's virtual environment, so only storyflow itself differs."""
    import io
    import subprocess
    import tarfile

    archive = subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", commit], check=True,
                             capture_output=True).stdout  # fmt: skip
    into.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def module_at(commit: str, path: str, name: str):
    """The module at `path` as it was at `commit` (read with git show), loaded as `name` beside today's: the old
    path of a benchmark, measured in the same run without a copy of it kept in the repository."""
    import subprocess
    import sys
    import types

    source = subprocess.run(["git", "-C", str(REPO), "show", f"{commit}:{path}"], check=True,
                            capture_output=True, text=True).stdout  # fmt: skip
    module = types.ModuleType(name)
    module.__file__ = f"<{path} at {commit}>"
    sys.modules[name] = module  # dataclasses look their module up while the class is made
    exec(compile(source, module.__file__, "exec"), module.__dict__)
    return module
