"""A sample film's wall time, split by stage, through Prefect and without it.

Rows:
- the film flow against a running Prefect server (what `make ui` + `make film` do):
  plan / rewrite / generate / audio / stitch / record as the flow measured them, and the
  orchestration overhead (flow total minus the stages);
- the same stages called directly in plain Python with the same worker pool: the
  obvious alternative, so "what does Prefect cost" is one subtraction;
- whole `storyflow film` commands: a first run, then the same story again (every
  generation reused, the film found intact), against the running server and with no server:
  answered from the catalog (no flow), and through the flow (`--flow`; with no server,
  Prefect starts a temporary one) side by side.

Usage: python -m bench film   (BENCH_FILM_STORY=path picks another story than stories/lighthouse.md)
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.common import free_port, print_table, save_results

REPO = Path(__file__).resolve().parent.parent
STAGES = ("plan", "narrate", "rewrite", "generate", "audio", "stitch", "record")


def plain_pipeline(story_path: Path, home: Path, workers: int) -> dict[str, float]:
    """The film made by calling the stages directly: no Prefect, no catalog."""
    from storyflow.backends.registry import load_backend
    from storyflow.catalog import Generations
    from storyflow.core.timeline import film_timeline
    from storyflow.media import AUDIO_SAMPLE_RATE
    from storyflow.stages import (
        audio,
        generate,
        mix,
        narrate,
        plan,
        rewrite,
        stitch,
        subtitles,
    )
    from storyflow.stages.story import read_story

    timings: dict[str, float] = {}
    started = time.perf_counter()
    story = read_story(story_path)
    llm = load_backend("llm", "embedded")
    video = load_backend("video", "animatic")
    music = load_backend("music", "procedural")
    speech = load_backend("speech", "espeak")
    foley = load_backend("effects", "procedural")
    out_dir = home / story.slug
    store = Generations.in_memory()

    t = time.perf_counter()
    board = plan.plan_storyboard(story, llm)
    timings["plan"] = time.perf_counter() - t
    t = time.perf_counter()
    board, lines = narrate.narrate(board, speech, out_dir, store)
    timings["narrate"] = time.perf_counter() - t
    t = time.perf_counter()
    prompts = {shot.id: rewrite.rewrite_shot(shot, board, llm) for shot in board.shots}
    timings["rewrite"] = time.perf_counter() - t

    def make_chain(shots):
        previous, made = None, {}
        for shot in shots:
            previous = generate.generate_chain(shot, prompts[shot.id], board, video, out_dir, store, previous)
            made[shot.id] = previous
        return made

    t = time.perf_counter()
    chains = {}
    with ThreadPoolExecutor(workers) as pool:
        for made in pool.map(make_chain, board.chains()):
            chains.update(made)
    timings["generate"] = time.perf_counter() - t

    t = time.perf_counter()
    frames = {k: c.num_frames for k, c in chains.items()}
    timeline = film_timeline(board, frames)
    with ThreadPoolExecutor(workers) as pool:
        effects = dict(zip(chains, pool.map(
            lambda s: audio.shot_effects(s, chains[s.id], board, prompts[s.id].prompt, foley, out_dir, store),
            board.shots,
        )))  # fmt: skip
    music_track = audio.score_film(board, timeline, music, out_dir, store)
    bed = audio.lay_effects(board, timeline, effects, out_dir, store)
    spoken = narrate.line_times(board, lines, frames)
    sound = mix.mix_film(seconds=timeline.seconds, sample_rate=AUDIO_SAMPLE_RATE,
                         narration=[(at, line.path) for at, line in spoken], music=music_track.path,
                         effects=bed.path, out_dir=out_dir, door=store)  # fmt: skip
    timings["audio"] = time.perf_counter() - t
    t = time.perf_counter()
    storyboard_json = out_dir / "storyboard.json"
    plan.save_storyboard(board, storyboard_json)
    stitch.stitch_film(board, chains, sound.mix.path, out_dir, storyboard_json=storyboard_json,
                       cues=subtitles.speech_cues(spoken, timeline))  # fmt: skip
    timings["stitch"] = time.perf_counter() - t
    timings["record"] = 0.0
    timings["total"] = time.perf_counter() - started
    timings["orchestration"] = timings["total"] - sum(timings[k] for k in STAGES)
    return timings


def cli_seconds(story: Path, home: Path, env: dict[str, str], *args: str, clean: bool = False) -> float:
    """Wall seconds of one `storyflow film STORY` (`clean`: in `env` alone, not this process's environment)."""
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "storyflow.cli", "film", str(story), "--json", *args],
        check=True, capture_output=True, env={**({} if clean else os.environ), **env, "STORYFLOW_HOME": str(home)},
    )  # fmt: skip
    return time.perf_counter() - started


def main() -> None:
    story = Path(os.environ.get("BENCH_FILM_STORY", REPO / "stories" / "lighthouse.md"))
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    workers = 2

    with tempfile.TemporaryDirectory(prefix="storyflow-bench-") as tmp:
        tmp_path = Path(tmp)
        from flows.server import start_server, stop_server

        prefect_home = tmp_path / "prefect"
        server = start_server(prefect_home, port=free_port(), wait_s=120)
        try:
            os.environ["PREFECT_HOME"] = str(prefect_home)
            os.environ["PREFECT_API_URL"] = server["api_url"]
            os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")
            from flows.film import run_film
            from storyflow.core.config import FilmChoices

            flow_home = tmp_path / "flow"
            os.environ["STORYFLOW_HOME"] = str(flow_home)
            summary = run_film(story, FilmChoices(max_concurrency=workers))
            flow = summary["timings"]
            plain = plain_pipeline(story, tmp_path / "plain", workers)

            api = {"PREFECT_API_URL": server["api_url"]}
            cli_home = tmp_path / "cli"
            first_cli = cli_seconds(story, cli_home, api)  # nothing made yet
            with_server = cli_seconds(story, cli_home, api)  # everything reused: answered from the catalog
            flow_with_server = cli_seconds(story, cli_home, api, "--flow")  # the same, through the flow
        finally:
            stop_server(prefect_home)
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        no_server = cli_seconds(story, flow_home, env, clean=True)
        flow_no_server = cli_seconds(story, flow_home, env, "--flow", clean=True)

    rows = [
        {"run": f"{how}", **{k: round(t[k], 2) for k in (*STAGES, "orchestration", "total")}}
        for how, t in (("Prefect flow (server)", flow), ("plain Python, same stages", plain))
    ]
    film_s = summary["duration_s"]
    rows.append({"run": "Prefect cost (flow - plain)", **{
        k: round(flow[k] - plain[k], 2) for k in (*STAGES, "orchestration", "total")
    }})  # fmt: skip
    print_table(f"film wall time by stage, seconds ({story.name}: {len(summary['shots'])} shots, "
                f"{film_s:.1f} s of film at {summary['width']}x{summary['height']})", rows)  # fmt: skip
    cached = [
        {"command": "storyflow film, first run, `make ui` server running", "seconds": round(first_cli, 2)},
        {"command": "unchanged rerun, server running: answered from the catalog", "seconds": round(with_server, 2)},
        {"command": "unchanged rerun, server running: through the flow (--flow)", "seconds": round(flow_with_server, 2)},
        {"command": "unchanged rerun, no server: answered from the catalog", "seconds": round(no_server, 2)},
        {"command": "unchanged rerun, no server: through the flow (--flow), a temporary server",
         "seconds": round(flow_no_server, 2)},
    ]  # fmt: skip
    print_table("whole command: a first run against a fully cached rerun", cached)
    save_results("film", rows + cached, {"story": str(story), "film_seconds": film_s, "workers": workers})


if __name__ == "__main__":
    main()
