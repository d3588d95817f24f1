"""Where a film's time goes: the stage split of every sample story, today's code beside the baseline's.

Each sample story (stories/*.md, embedded backends, nothing cached) is made with `storyflow film`
against one running Prefect server, by today's code and by the code at the baseline commit
(bench.common.DEFAULT_BASELINE, where issue 12 started; BENCH_BASELINE=<commit> picks another,
BENCH_BASELINE= skips it), one after the other in the same run on the same machine. The stage
times are the ones each film's summary.json records; "sound" is the audio stage, shown as a share of
the generate stage (the animatic's clips). Narration is its own stage, spoken before the clips because it
can stretch shots. Since the sound lane (flows/lanes.py) the score and most shots' effects are made while
the clips are, on a lower CPU priority, so the audio stage is what is left once the last clip is made (the
last shots' effects, the score laid, the mix); on this CPU-only machine that work shares the cores with
the animatic, so compare the films' whole wall times as well as the split.

Single runs on a shared machine differ by 10-20% (a stage of half a second by a tenth of one): BENCH_REPEAT=N
makes each film N times, today's and the baseline's in turn, and reports each figure's median over the N runs,
with the lowest and highest share of the N.

Usage: python -m bench stages   (BENCH_REPEAT=5 python -m bench stages)
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

from bench.bench_length import film_command
from bench.common import REPO, baseline_commit, checkout, free_port, print_table, save_results

STAGES = ("plan", "narrate", "rewrite", "generate", "audio", "stitch")


def make_film(code: Path, story: Path, home: Path, env: dict[str, str]) -> tuple[dict, float, float]:
    """(summary timings, wall seconds, peak resident MB of the film's process) of one `storyflow film` by `code`."""
    wall, peak_mb = film_command(story, home, env, code=code)
    return json.loads(next(home.glob("*/summary.json")).read_text())["timings"], wall, peak_mb


def _row(story: str, label: str, runs: list[dict]) -> dict:
    """One table row: each figure's median over the runs (the share's range too, when there are several)."""
    def median(name: str) -> float:
        return statistics.median(run.get(name, 0.0) for run in runs)

    row = {"story": story, "code": label, "wall s": round(median("wall"), 1)}
    row |= {f"{stage} s": round(median(stage), 2) for stage in STAGES}
    row["sound / generate"] = f"{100 * median('share'):.0f}%"
    if len(runs) > 1:
        shares = sorted(run["share"] for run in runs)
        row["share range"] = f"{100 * shares[0]:.0f}-{100 * shares[-1]:.0f}%"
    row["peak MB"] = round(median("peak"))
    return row


def main() -> None:
    env = {**os.environ, "DO_NOT_TRACK": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    baseline = baseline_commit()
    repeat = max(1, int(os.environ.get("BENCH_REPEAT", "1")))
    rows = []
    with tempfile.TemporaryDirectory(prefix="storyflow-bench-stages-") as tmp:
        tmp_path = Path(tmp)
        codes = {"today": REPO}
        if baseline:
            codes[f"before ({baseline})"] = checkout(baseline, tmp_path / "baseline")
        sys.path.insert(0, str(REPO))
        from flows.server import start_server, stop_server

        server = start_server(tmp_path / "prefect", port=free_port(), wait_s=120)
        env["PREFECT_API_URL"] = server["api_url"]
        try:
            for story in sorted((REPO / "stories").glob("*.md")):
                runs: dict[str, list[dict]] = {label: [] for label in codes}
                for run in range(repeat):  # the codes in turn, so a slow spell of the machine falls on both
                    for label, code in codes.items():
                        home = tmp_path / f"home-{label[:6]}-{story.stem}-{run}"
                        timings, wall, peak_mb = make_film(code, story, home, env)
                        runs[label].append({**timings, "wall": wall, "peak": peak_mb,
                                            "share": timings["audio"] / timings["generate"]})  # fmt: skip
                for label, made in runs.items():
                    rows.append(_row(story.stem, label, made))
        finally:
            stop_server(tmp_path / "prefect")
    print_table("stage split of the sample films (embedded backends at each story's size, nothing cached, "
                "a Prefect server running; sound = the audio stage: what is left of effects, music and mix "
                f"after the last clip; medians of {repeat} run{'s' if repeat > 1 else ''})", rows)  # fmt: skip
    save_results("stages", rows, {"cores": os.cpu_count(), "baseline": baseline, "repeat": repeat})


if __name__ == "__main__":
    main()
