"""Peak memory and wall time against the film's length, and an unchanged rerun against the first run.

For each length (1 and 5 minutes of film by default; BENCH_LENGTHS="1,5,15,30" for the long
ones, which take about as long to render as they last), a story of that length at 640x360
(the sample stories' paragraphs, repeated with a new scene each, `duration:` set) is made with
`storyflow film` against a running Prefect server, then made again unchanged. Each command is
a process of its own; its peak memory is its maximum resident set (os.wait4), the film's
Python process alone (ffmpeg children and the server are not counted).

The rerun is answered from the catalog (storyflow.stages.unchanged); the same rerun through
the flow (`--flow`) is measured beside it: the obvious alternative, and what every rerun cost
before. The first run is also made by the code at the baseline commit (bench.common.DEFAULT_BASELINE,
where issue 12 started; BENCH_BASELINE=<commit> picks another, BENCH_BASELINE= skips it) for the
lengths up to BENCH_BASELINE_MAX_MIN (5 by default: its memory grew with the film, about 11 MB a
second, so its long films would not fit this machine).

Usage: python -m bench length    (BENCH_LENGTHS=1,5,15,30 for the full table)
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import baseline_commit, checkout, free_port, print_table, save_results

REPO = Path(__file__).resolve().parent.parent
SECONDS_PER_PARAGRAPH = 8  # about what the planner gives a paragraph of the samples


def story_of(minutes: float) -> str:
    """A story of `minutes` of film: the samples' paragraphs in turn, each a scene of its own."""
    paragraphs = []
    for path in sorted((REPO / "stories").glob("*.md")):
        body = path.read_text().split("---", 2)[2]
        paragraphs += [p.strip() for p in re.split(r"\n\s*\n", body) if p.strip() and not p.startswith("#")]
    wanted = max(1, round(minutes * 60 / SECONDS_PER_PARAGRAPH))
    chosen = [paragraphs[i % len(paragraphs)] for i in range(wanted)]
    return (f"---\ntitle: A Film of {minutes:g} Minutes\nstyle: flat previz colours\nresolution: 640x360\nfps: 24\n"
            f"duration: {round(minutes * 60)}\nseed: 11\ncharacters:\n  Mara: a tall woman in a red raincoat\n"
            "  Finn: a small boy in a yellow sou'wester\n---\n" + "\n\n".join(chosen) + "\n")  # fmt: skip


def film_command(story: Path, home: Path, env: dict[str, str], *args: str, code: Path = REPO) -> tuple[float, float]:
    """(wall seconds, peak resident memory in MB) of one `storyflow film STORY` by the code in `code`."""
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "storyflow.cli", "film", str(story), "--json", *args],
                               env={**env, "STORYFLOW_HOME": str(home), "PYTHONPATH": str(code)}, cwd=code,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"storyflow film {story.name} failed:\n{process.stderr.read().decode()[-2000:]}")
    return wall, usage.ru_maxrss / 1024  # KB on Linux


def main() -> None:
    lengths = [float(x) for x in os.environ.get("BENCH_LENGTHS", "1,5").split(",")]
    env = {**os.environ, "DO_NOT_TRACK": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    baseline, baseline_max = baseline_commit(), float(os.environ.get("BENCH_BASELINE_MAX_MIN", "5"))
    rows = []
    with tempfile.TemporaryDirectory(prefix="storyflow-bench-") as tmp:
        tmp_path = Path(tmp)
        old_code = checkout(baseline, tmp_path / "baseline") if baseline else None
        from flows.server import start_server, stop_server

        prefect_home = tmp_path / "prefect"
        server = start_server(prefect_home, port=free_port(), wait_s=120)
        env["PREFECT_API_URL"] = server["api_url"]
        try:
            for minutes in lengths:
                story = tmp_path / f"film-{minutes:g}-minutes.md"
                story.write_text(story_of(minutes))
                home = tmp_path / f"home-{minutes:g}"
                first_s, first_mb = film_command(story, home, env)
                answered_s, answered_mb = film_command(story, home, env)
                flow_s, flow_mb = film_command(story, home, env, "--flow")
                before_s = before_mb = None
                if old_code is not None and minutes <= baseline_max:
                    before_s, before_mb = film_command(story, tmp_path / f"old-home-{minutes:g}", env, code=old_code)
                row = {"film min": minutes, "first run s": round(first_s, 1), "first peak MB": round(first_mb)}
                if old_code is not None:  # the baseline's columns, empty past BENCH_BASELINE_MAX_MIN
                    row[f"first run s (before, {baseline})"] = before_s and round(before_s, 1)
                    row[f"first peak MB (before, {baseline})"] = before_mb and round(before_mb)
                rows.append({**row, "rerun s (catalog)": round(answered_s, 2), "rerun s (--flow)": round(flow_s, 2),
                             "rerun peak MB (catalog)": round(answered_mb),
                             "rerun peak MB (--flow)": round(flow_mb)})  # fmt: skip
        finally:
            stop_server(prefect_home)
    print_table("a film's cost against its length, 640x360 animatic, Prefect server running (peak: the film's "
                "own process)", rows)  # fmt: skip
    save_results("length", rows, {"cores": os.cpu_count(), "baseline": baseline})


if __name__ == "__main__":
    main()
