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

Usage: python -m bench stages
"""

from __future__ import annotations

import json
import os
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


def main() -> None:
    env = {**os.environ, "DO_NOT_TRACK": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    baseline = baseline_commit()
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
                for label, code in codes.items():
                    timings, wall, peak_mb = make_film(code, story, tmp_path / f"home-{label[:6]}-{story.stem}", env)
                    row = {"story": story.stem, "code": label, "wall s": round(wall, 1)}
                    row |= {f"{stage} s": round(timings.get(stage, 0.0), 2) for stage in STAGES}
                    row["sound / generate"] = f"{100 * timings['audio'] / timings['generate']:.0f}%"
                    row["peak MB"] = round(peak_mb)
                    rows.append(row)
        finally:
            stop_server(tmp_path / "prefect")
    print_table("stage split of the sample films (embedded backends at each story's size, nothing cached, "
                "a Prefect server running; sound = the audio stage: what is left of effects, music and mix "
                "after the last clip)", rows)  # fmt: skip
    save_results("stages", rows, {"cores": os.cpu_count(), "baseline": baseline})


if __name__ == "__main__":
    main()
