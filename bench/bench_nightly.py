"""A three-story nightly batch: its wall time in one process, and spread over one and two workers.

Rows, each on a fresh output folder and catalog (nothing cached), against one Prefect server:
- "one process": the nightly flow renders the stories one after another in its own process
  (what `storyflow schedule` does without --spread): the obvious alternative;
- "pool, N worker(s)": the nightly flow with a pool (`storyflow schedule --spread`): every film
  a deployment run of its own, taken by N `storyflow serve --pool P --limit 1` processes (each
  plays a GPU machine that makes one film at a time), sharing one catalog.

The workers here share this machine's cores, so two workers can only win what one film leaves
idle (its single-threaded stretches: planning, encoding, stitching); on two machines each film
would have a machine of its own.

Usage: python -m bench nightly   (BENCH_NIGHTLY_STORIES=folder picks the stories; default: the first
three of stories/)
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import free_port, print_table, save_results

REPO = Path(__file__).resolve().parent.parent


def serve(pool: str, home: Path, env: dict[str, str]) -> subprocess.Popen:
    """`storyflow serve --pool POOL --limit 1`: a worker that makes one film at a time."""
    return subprocess.Popen([sys.executable, "-m", "storyflow.cli", "serve", "--pool", pool, "--limit", "1"],
                            env={**env, "STORYFLOW_HOME": str(home), "PREFECT_WORKER_QUERY_SECONDS": "1",
                                 "PREFECT_WORKER_PREFETCH_SECONDS": "1"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip


def night(stories: Path, home: Path, pool: str | None) -> dict:
    """One night on a fresh home: the nightly flow's report."""
    from flows.nightly import nightly_flow

    os.environ["STORYFLOW_HOME"] = str(home)
    return nightly_flow(str(stories), pool=pool)


def main() -> None:
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    with tempfile.TemporaryDirectory(prefix="storyflow-bench-") as tmp:
        tmp_path = Path(tmp)
        stories = Path(os.environ.get("BENCH_NIGHTLY_STORIES", "")) if os.environ.get("BENCH_NIGHTLY_STORIES") else None
        if stories is None:
            stories = tmp_path / "stories"
            stories.mkdir()
            for path in sorted((REPO / "stories").glob("*.md"))[:3]:
                shutil.copy(path, stories / path.name)
        from flows.server import start_server, stop_server

        prefect_home = tmp_path / "prefect"
        server = start_server(prefect_home, port=free_port(), wait_s=120)
        rows = []
        try:
            os.environ["PREFECT_HOME"] = str(prefect_home)
            os.environ["PREFECT_API_URL"] = server["api_url"]
            os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")
            env = {**os.environ, "PYTHONPATH": str(REPO)}
            for label, workers in (("one process", 0), ("pool, 1 worker", 1), ("pool, 2 workers", 2)):
                home = tmp_path / f"home-{workers}"
                pool = f"bench-{workers}-{os.getpid()}" if workers else None
                serving = [serve(pool, home, env) for _ in range(workers)] if pool else []
                try:
                    time.sleep(3 if serving else 0)  # the workers poll the pool before the night starts
                    started = time.perf_counter()
                    report = night(stories, home, pool)
                    wall = time.perf_counter() - started
                finally:
                    for worker in serving:
                        os.killpg(worker.pid, signal.SIGTERM)
                    for worker in serving:
                        worker.wait(timeout=60)
                rows.append({"night": label, "stories": len(report["stories"]), "made": report["made"],
                             "failed": report["failed"], "wall_s": round(wall, 1),
                             "film_s": ", ".join(f"{entry['wall_s']:.0f}" for entry in report["stories"])})  # fmt: skip
        finally:
            stop_server(prefect_home)
    base = rows[1]["wall_s"]
    for row in rows:
        row["vs 1 worker"] = f"{base / row['wall_s']:.2f}x"
    print_table(f"a nightly batch of {rows[0]['stories']} stories, nothing cached (wall seconds; film_s: each "
                f"film run's own running time, queue left out)", rows)  # fmt: skip
    save_results("nightly", rows, {"cores": os.cpu_count()})


if __name__ == "__main__":
    main()
