"""The film flow: plan -> rewrite -> generate (one task per shot, fanned out) -> audio -> stitch -> record.

Stages live in storyflow/ and know nothing of Prefect; this module owns orchestration
policy: task names (they carry the shot id), retries (transient backend errors only),
bounded concurrency, the order of continuing shots, artifacts for the UI, and the run's
row in the catalog. Policy sits on the decorators, not inside the functions.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NONE
from prefect.futures import PrefectFuture
from prefect.runtime import flow_run
from prefect.task_runners import ThreadPoolTaskRunner
from pydantic import BaseModel, ConfigDict

from storyflow import audio, generate, plan, progress, rewrite, stitch
from storyflow.backends.base import LLMBackend, MusicBackend, VideoBackend
from storyflow.backends.registry import load_backend
from storyflow.cache import CatalogStore
from storyflow.catalog import Catalog
from storyflow.errors import TransientError
from storyflow.media import atomic_write_text
from storyflow.models import AudioTrack, ClipChain, Film, Shot, ShotPrompt, Story, Storyboard
from storyflow.story import read_story
from storyflow.timeline import film_timeline


class FilmOptions(BaseModel):
    """What one film run was asked for: the flow's only parameter (shown in the Prefect UI)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    story: str
    llm: str = "embedded"
    llm_options: dict[str, Any] = {}
    video_backend: str = "animatic"
    video_options: dict[str, Any] = {}
    music_backend: str = "procedural"
    music_options: dict[str, Any] = {}
    seed: int | None = None  # overrides the story's seed
    home: str = "outputs"
    catalog_url: str = ""
    max_concurrency: int = 2
    stitch: str = "smart"


def _transient_only(task, task_run, state) -> bool:
    """Retry a task only when its failure is worth retrying (rate limit, timeout, 5xx)."""
    try:
        state.result()
    except TransientError:
        return True
    except Exception:
        return False
    return False


# ---------------------------------------------------------------- tasks


@task(name="plan", cache_policy=NONE, retries=2, retry_delay_seconds=[2, 10], retry_condition_fn=_transient_only)
def plan_task(story: Story, llm: LLMBackend) -> Storyboard:
    """Break the story into a storyboard."""
    return plan.plan_storyboard(story, llm)


@task(
    name="rewrite", task_run_name="rewrite-{shot.id}", cache_policy=NONE,
    retries=2, retry_delay_seconds=[2, 10], retry_condition_fn=_transient_only,
)  # fmt: skip
def rewrite_task(shot: Shot, board: Storyboard, llm: LLMBackend) -> ShotPrompt:
    """Rewrite one shot into a model-ready prompt."""
    return rewrite.rewrite_shot(shot, board, llm)


@task(
    name="generate", task_run_name="generate-{shot.id}", cache_policy=NONE,
    retries=2, retry_delay_seconds=[5, 30], retry_condition_fn=_transient_only,
)  # fmt: skip
def generate_task(
    shot: Shot,
    prompt: ShotPrompt,
    board: Storyboard,
    backend: VideoBackend,
    out_dir: Path,
    store: CatalogStore,
    previous: ClipChain | None = None,
) -> ClipChain:
    """Make (or reuse) one shot's chain of clips."""
    chain = generate.generate_chain(shot, prompt, board, backend, out_dir, store, previous)
    made = sum(not clip.reused for clip in chain.clips)
    get_run_logger().info(
        "%s: %d segment(s), %d generated, %d reused (%s)",
        shot.id, len(chain.clips), made, len(chain.clips) - made, shot.camera.value,
    )  # fmt: skip
    return chain


@task(name="audio", cache_policy=NONE)
def audio_task(board: Storyboard, chains: dict[str, ClipChain], backend: MusicBackend, out_dir: Path,
               store: CatalogStore) -> list[AudioTrack]:  # fmt: skip
    """Score the film and mix its sound, timed to the clips actually made."""
    timeline = film_timeline(board, {shot_id: chain.num_frames for shot_id, chain in chains.items()})
    music = audio.score_film(board, timeline, backend, out_dir, store)
    mix = audio.mix_film([music], timeline.seconds, out_dir, store)
    return [music, mix]


@task(name="stitch", cache_policy=NONE)
def stitch_task(board: Storyboard, chains: dict[str, ClipChain], mix: AudioTrack, out_dir: Path,
                strategy: str, storyboard_json: Path) -> Film:  # fmt: skip
    """Join the clips and the mix into the film, with subtitles, poster and contact sheet."""
    return stitch.stitch_film(board, chains, mix.path, out_dir, strategy=strategy, storyboard_json=storyboard_json)


# ---------------------------------------------------------------- flow


@flow(name="storyflow-film", log_prints=False, task_runner=ThreadPoolTaskRunner(max_workers=2))
def film_flow(options: FilmOptions) -> dict[str, Any]:
    """Make one film from one story file and return its summary."""
    started = time.perf_counter()
    timings: dict[str, float] = {}
    home = Path(options.home).resolve()

    # 1. inputs: the story and the backends (options were validated before the flow started)
    story = read_story(options.story)
    if options.seed is not None:
        story = story.model_copy(update={"seed": options.seed})
    llm = load_backend("llm", options.llm, options.llm_options)
    video = load_backend("video", options.video_backend, options.video_options)
    music = load_backend("music", options.music_backend, options.music_options)
    out_dir = home / story.slug

    catalog = Catalog.open(options.catalog_url or f"sqlite:///{home / 'catalog.db'}", home)
    params = options.model_dump(exclude={"catalog_url"})  # a database URL may hold a password
    run_id = catalog.start_run(options.story, params, prefect_flow_run_id=str(flow_run.id))
    story_id = board_id = None
    try:
        story_id = catalog.record_story(story)

        # 2. plan
        t = time.perf_counter()
        board = plan_task(story, llm)
        timings["plan"] = time.perf_counter() - t
        board_id = catalog.record_storyboard(story_id, board, llm=llm.label, options=llm.options_dict(),
                                             wall_s=timings["plan"])  # fmt: skip
        shot_rows = catalog.record_shots(board_id, board)
        storyboard_json = out_dir / "storyboard.json"
        atomic_write_text(storyboard_json, plan.storyboard_json(board))
        progress.report("plan", title=board.title, shots=len(board.shots), seconds=film_timeline(board).seconds,
                        width=board.width, height=board.height, fps=board.fps)  # fmt: skip

        # 3. rewrite every shot into a prompt, all at once
        t = time.perf_counter()
        prompt_futures = [rewrite_task.submit(shot, board, llm) for shot in board.shots]
        prompts = {f.result().shot_id: f.result() for f in prompt_futures}
        timings["rewrite"] = time.perf_counter() - t
        prompt_rows = {
            shot_id: catalog.record_prompt(shot_rows[shot_id], prompt, wall_s=timings["rewrite"] / len(prompts))
            for shot_id, prompt in prompts.items()
        }
        store = CatalogStore(catalog, run_id=run_id, storyboard_id=board_id, prompt_ids=prompt_rows)

        # 4. generate: chains run in parallel; inside a chain, each shot waits for the one it continues
        t = time.perf_counter()
        futures: dict[str, PrefectFuture] = {}
        for chain in board.chains():
            previous = None
            for shot in chain:
                previous = generate_task.submit(shot, prompts[shot.id], board, video, out_dir, store, previous)
                futures[shot.id] = previous
        chains = {shot_id: future.result() for shot_id, future in futures.items()}
        timings["generate"] = time.perf_counter() - t

        # 5. sound, then 6. stitch
        t = time.perf_counter()
        tracks = audio_task(board, chains, music, out_dir, store)
        timings["audio"] = time.perf_counter() - t
        progress.report("stitch", strategy=options.stitch)
        t = time.perf_counter()
        film = stitch_task(board, chains, tracks[-1], out_dir, options.stitch, storyboard_json)
        timings["stitch"] = time.perf_counter() - t

        # 7. record: the film row only after every file is in place
        t = time.perf_counter()
        clips = [clip for shot in board.shots for clip in chains[shot.id].clips]
        film_id = catalog.record_film(film, storyboard_id=board_id, run_id=run_id,
                                      clip_keys=[c.cache_key for c in clips],
                                      audio_keys=[track.cache_key for track in tracks])  # fmt: skip
        generated = sum(not clip.reused for clip in clips)
        timings["record"] = time.perf_counter() - t
        timings["total"] = time.perf_counter() - started
        timings["orchestration"] = timings["total"] - sum(
            timings[k] for k in ("plan", "rewrite", "generate", "audio", "stitch", "record")
        )
        summary = film_summary(board, prompts, chains, film, film_id, run_id, catalog, options, timings, story)
        catalog.finish_run(run_id, "completed", story_id=story_id, storyboard_id=board_id, film_id=film_id,
                           clips_generated=generated, clips_reused=len(clips) - generated,
                           timings=timings)  # fmt: skip
        _publish(summary)
        return summary
    except BaseException as exc:
        catalog.finish_run(run_id, "failed", story_id=story_id, storyboard_id=board_id,
                           error=f"{type(exc).__name__}: {exc}")  # fmt: skip
        raise
    finally:
        catalog.close()


def film_summary(
    board: Storyboard,
    prompts: dict[str, ShotPrompt],
    chains: dict[str, ClipChain],
    film: Film,
    film_id: int,
    run_id: int,
    catalog: Catalog,
    options: FilmOptions,
    timings: dict[str, float],
    story: Story,
) -> dict[str, Any]:
    """The run's summary: what `--json` prints and summary.json keeps beside the film."""
    timeline = film_timeline(board, {shot_id: chain.num_frames for shot_id, chain in chains.items()})
    shots = []
    for shot in board.shots:
        chain = chains[shot.id]
        start, end = timeline.span_seconds(shot.id)
        shots.append({
            "id": shot.id,
            "camera": shot.camera.value,
            "seconds": round(chain.num_frames / board.fps, 3),
            "starts_at": round(start, 3),
            "ends_at": round(end, 3),
            "continues_previous": shot.continues_previous,
            "transition": shot.transition.value,
            "characters": list(shot.characters),
            "mood": shot.mood,
            "narration": shot.narration,
            "prompt": prompts[shot.id].prompt,
            "segments": [
                {"path": str(c.path), "strategy": c.strategy, "seconds": round(c.seconds, 3),
                 "reused": c.reused, "parent_sha256": c.parent_sha256}  # fmt: skip
                for c in chain.clips
            ],
            "clips_generated": sum(not c.reused for c in chain.clips),
            "clips_reused": sum(c.reused for c in chain.clips),
        })
    generated = sum(s["clips_generated"] for s in shots)
    reused = sum(s["clips_reused"] for s in shots)
    summary = {
        "title": board.title,
        "story": str(Path(story.source).resolve()),
        "film": str(film.path),
        "film_id": film_id,
        "run_id": run_id,
        "shots": shots,
        "clips_generated": generated,
        "clips_reused": reused,
        "duration_s": round(film.duration_s, 3),
        "width": film.width,
        "height": film.height,
        "fps": film.fps,
        "seed": board.seed,
        "llm": options.llm,
        "video_backend": options.video_backend,
        "music_backend": options.music_backend,
        "stitch": film.stitch_strategy,
        "wall_s": round(timings["total"], 3),
        "timings": {k: round(v, 3) for k, v in timings.items()},
        "catalog": catalog.display_url,
        "subtitles": str(film.subtitles),
        "poster": str(film.poster),
        "contact_sheet": str(film.contact_sheet),
        "storyboard": str(film.storyboard_json),
        "prefect_flow_run_id": str(flow_run.id),
    }
    atomic_write_text(film.path.parent / "summary.json", _json(summary))
    return summary


def _publish(summary: dict[str, Any]) -> None:
    """A markdown table of the shots, shown on the flow run's page in the Prefect UI."""
    rows = "\n".join(
        f"| {s['id']} | {s['camera']} | {s['seconds']:.1f} | {len(s['segments'])} | {s['clips_generated']} | "
        f"{s['clips_reused']} | {s['narration'][:60].replace('|', '/')} |"
        for s in summary["shots"]
    )
    create_markdown_artifact(
        key="film-summary",
        markdown=(
            f"# {summary['title']}\n\n{summary['duration_s']:.1f} s, {summary['width']}x{summary['height']} "
            f"@ {summary['fps']} fps, {summary['clips_generated']} clips generated, "
            f"{summary['clips_reused']} reused.\n\n`{summary['film']}`\n\n"
            "| shot | camera | s | segments | generated | reused | narration |\n|---|---|---|---|---|---|---|\n" + rows
        ),
        description=f"storyflow film: {summary['title']}",
    )


def _json(data: Any) -> str:
    import json

    return json.dumps(data, indent=2, default=str) + "\n"


def run_film(options: FilmOptions) -> dict[str, Any]:
    """Run the flow with this run's concurrency bound (the backend's own limit included)."""
    video_caps = load_backend("video", options.video_backend, options.video_options).capabilities
    workers = max(1, min(options.max_concurrency, video_caps.max_concurrency))
    configured = film_flow.with_options(
        task_runner=ThreadPoolTaskRunner(max_workers=workers),
        flow_run_name=f"{Path(options.story).stem}",
    )
    return configured(options)
