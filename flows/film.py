"""The film flow: plan -> narrate -> rewrite -> generate -> effects -> music -> mix -> stitch -> record.

Stages live in storyflow/ and know nothing of Prefect; this module owns orchestration
policy: task names (they carry the shot id), retries (transient backend errors only),
bounded concurrency, the order of continuing shots, artifacts for the UI, and the run's
row in the catalog. Policy sits on the decorators, not inside the functions.

Narration is spoken right after planning because it can stretch shots; effects and music
wait for the clips (their real lengths and pictures). Everything is looked up in the
catalog first: a run makes only what no earlier run made with the same inputs.
"""

from __future__ import annotations

import logging
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

from storyflow import media
from storyflow.backends.base import (
    EffectsBackend,
    LLMBackend,
    MusicBackend,
    SpeechBackend,
    VideoBackend,
)
from storyflow.backends.registry import load_backend
from storyflow.catalog import Catalog
from storyflow.catalog.door import CatalogStore
from storyflow.core import locks, progress
from storyflow.core.errors import InputError, TransientError
from storyflow.core.hashing import cache_key
from storyflow.core.models import (
    SEAM_WARN_RATIO,
    AudioTrack,
    ClipChain,
    Film,
    NarrationLine,
    Shot,
    ShotPrompt,
    Story,
    Storyboard,
)
from storyflow.core.timeline import film_timeline
from storyflow.media import AUDIO_SAMPLE_RATE, atomic_write_text
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

log = logging.getLogger("storyflow.flow")


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
    speech_backend: str = "espeak"
    speech_options: dict[str, Any] = {}
    effects_backend: str = "procedural"
    effects_options: dict[str, Any] = {}
    narration_fit: str = "auto"  # "stretch", "pace", or "auto": pace when the story sets a length
    target_lufs: float = -16.0
    burn_subtitles: bool = False
    seed: int | None = None  # overrides the story's seed
    force: bool = False  # make everything again, trusting no earlier result
    force_shots: list[str] = []  # make these shots' clips again ("s03"), and what depends on them
    credentials: bool = True  # sign the film with C2PA Content Credentials
    sign_clips: bool = False  # ...and every new clip too
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


RETRY = {"retries": 2, "retry_delay_seconds": [5, 30], "retry_condition_fn": _transient_only}


# ---------------------------------------------------------------- tasks


@task(name="plan", cache_policy=NONE, **RETRY)
def plan_task(story: Story, llm: LLMBackend, catalog: Catalog, force: bool) -> tuple[Storyboard, str, bool]:
    """Break the story into a storyboard (or reuse the plan made for the same story, seed and LLM)."""
    key = plan.plan_cache_key(story, llm)
    found = None if force else catalog.find_storyboard(key)
    if found is not None:
        return found, key, True
    return plan.plan_storyboard(story, llm), key, False


@task(name="narrate", cache_policy=NONE, **RETRY)
def narrate_task(board: Storyboard, speech: SpeechBackend, out_dir: Path, store: CatalogStore,
                 fit: str) -> tuple[Storyboard, list[NarrationLine]]:  # fmt: skip
    """Speak every narration line; stretch (or pace) shots so speech never runs over."""
    fitted, lines = narrate.narrate(board, speech, out_dir, store, fit=fit)  # type: ignore[arg-type]
    for before, after in zip(board.shots, fitted.shots):
        if after.duration != before.duration:
            get_run_logger().info("%s stretched %.2f s -> %.2f s for its narration",
                                  after.id, before.duration, after.duration)  # fmt: skip
    return fitted, lines


@task(name="rewrite", task_run_name="rewrite-{shot.id}", cache_policy=NONE, **RETRY)
def rewrite_task(shot: Shot, board: Storyboard, llm: LLMBackend, catalog: Catalog,
                 force: bool) -> tuple[ShotPrompt, str, bool]:  # fmt: skip
    """Rewrite one shot into a model-ready prompt (or reuse the prompt written for it before)."""
    key = rewrite.rewrite_cache_key(shot, board, llm)
    found = None if force else catalog.find_prompt(key)
    if found is not None:
        return found.model_copy(update={"shot_id": shot.id}), key, True
    return rewrite.rewrite_shot(shot, board, llm), key, False


@task(name="generate", task_run_name="generate-{shot.id}", cache_policy=NONE, **RETRY)
def generate_task(shot: Shot, prompt: ShotPrompt, board: Storyboard, backend: VideoBackend, out_dir: Path,
                  store: CatalogStore, previous: ClipChain | None = None, force: bool = False,
                  sign_home: Path | None = None) -> ClipChain:  # fmt: skip
    """Make (or reuse) one shot's chain of clips (signing each new one when `sign_home` is given)."""
    finish = _clip_signer(sign_home, board.title, shot.id) if sign_home else None
    chain = generate.generate_chain(shot, prompt, board, backend, out_dir, store, previous, force=force,
                                    finish=finish)  # fmt: skip
    made = sum(not clip.reused for clip in chain.clips)
    seams = ", ".join(f"{clip.seam.ratio:.2f}" for clip in chain.clips if clip.seam) or "none"
    get_run_logger().info("%s: %d segment(s), %d generated, %d reused, seam ratios %s",
                          shot.id, len(chain.clips), made, len(chain.clips) - made, seams)  # fmt: skip
    return chain


@task(name="effects", task_run_name="effects-{shot.id}", cache_policy=NONE, **RETRY)
def effects_task(shot: Shot, chain: ClipChain, board: Storyboard, prompt: ShotPrompt, backend: EffectsBackend,
                 out_dir: Path, store: CatalogStore) -> AudioTrack:  # fmt: skip
    """Sound effects derived from one shot's clips."""
    return audio.shot_effects(shot, chain, board, prompt.prompt, backend, out_dir, store)


@task(name="music", cache_policy=NONE, **RETRY)
def music_task(board: Storyboard, chains: dict[str, ClipChain], backend: MusicBackend, out_dir: Path,
               store: CatalogStore) -> AudioTrack:  # fmt: skip
    """Score the film, timed to the clips actually made."""
    return audio.score_film(board, _timeline(board, chains), backend, out_dir, store)


@task(name="mix", cache_policy=NONE)
def mix_task(board: Storyboard, chains: dict[str, ClipChain], lines: list[NarrationLine], music: AudioTrack,
             shot_effects: dict[str, AudioTrack], out_dir: Path, store: CatalogStore,
             target_lufs: float) -> tuple[mix.MixResult, AudioTrack]:  # fmt: skip
    """Lay the effects on the timeline, then mix narration over ducked music over effects."""
    timeline = _timeline(board, chains)
    effects = audio.lay_effects(board, timeline, shot_effects, out_dir, store)
    spoken = narrate.line_times(board, lines, {k: c.num_frames for k, c in chains.items()})
    result = mix.mix_film(
        seconds=timeline.seconds, sample_rate=AUDIO_SAMPLE_RATE, narration=[(t, line.path) for t, line in spoken],
        music=music.path, effects=effects.path, out_dir=out_dir, store=store, target_lufs=target_lufs,
    )  # fmt: skip
    get_run_logger().info("mix: %.1f LUFS (target %.1f), music ducked %.1f dB under speech",
                          result.lufs, target_lufs, result.ducking.music_db)  # fmt: skip
    return result, effects


@task(name="stitch", cache_policy=NONE)
def stitch_task(board: Storyboard, chains: dict[str, ClipChain], lines: list[NarrationLine], sound: mix.MixResult,
                out_dir: Path, options: FilmOptions, storyboard_json: Path, catalog: Catalog,
                key: str) -> tuple[Film, bool]:  # fmt: skip
    """The film (or the identical one made before): clips and mix joined, subtitles timed by the speech,
    poster, contact sheet and stems, in its own folder out_dir/films/<key>/; signed with C2PA."""
    found = None if options.force else catalog.find_film(key)
    if found is not None:
        return found, True
    spoken = narrate.line_times(board, lines, {k: c.num_frames for k, c in chains.items()})
    cues = subtitles.speech_cues(spoken, _timeline(board, chains))
    film_dir = out_dir / "films" / key[:12]
    film = stitch.stitch_film(board, chains, sound.mix.path, film_dir, strategy=options.stitch,
                              storyboard_json=storyboard_json, cues=cues,
                              burn_subtitles=options.burn_subtitles)  # fmt: skip
    stems = {kind: media.publish(track.path, film_dir / "stems" / f"{kind}.wav") for kind, track in sound.stems.items()}
    film = film.model_copy(update={"stems": stems, "loudness_lufs": round(sound.lufs, 2)})
    if options.credentials:
        film = _sign(film, chains, board, Path(options.home))
    return film, False


def _sign(film: Film, chains: dict[str, ClipChain], board: Storyboard, home: Path) -> Film:
    """Embed Content Credentials: made by a generative model, from these clips, by storyflow."""
    from storyflow import __version__
    from storyflow.media import credentials

    clips = [clip.path for chain in chains.values() for clip in chain.clips]
    signed = credentials.sign_media(film.path, home=home, title=board.title, ingredients=clips,
                                    generator_version=__version__)  # fmt: skip
    get_run_logger().info("signed %s: %s", film.path.name, signed.trusted_note)
    return film.model_copy(update={"sha256": signed.sha256, "credentials": signed.as_record()})


def _clip_signer(home: Path, title: str, shot_id: str):
    """Sign a freshly made clip with C2PA before it is hashed and recorded."""
    from storyflow import __version__
    from storyflow.media import credentials

    def sign(path: Path) -> None:
        credentials.sign_media(path, home=home, title=f"{title}, shot {shot_id}: {path.name}",
                               generator_version=__version__)  # fmt: skip

    return sign


def publish_film(film: Film, board: Storyboard, out_dir: Path) -> dict[str, Path]:
    """Show the film under plain names in the story's folder: <slug>.mp4, .srt, poster, sheet, stems.

    They are hard links to the content-addressed copies the catalog records, so earlier
    films stay intact (and traceable) when a new one takes the plain names.
    """
    names = {
        "film": (film.path, out_dir / f"{board.slug}.mp4"),
        "subtitles": (film.subtitles, out_dir / f"{board.slug}.srt"),
        "poster": (film.poster, out_dir / f"{board.slug}.poster.png"),
        "contact_sheet": (film.contact_sheet, out_dir / f"{board.slug}.contact-sheet.png"),
        "storyboard": (film.storyboard_json, out_dir / "storyboard.json"),
        **{f"stem:{kind}": (path, out_dir / "stems" / f"{kind}.wav") for kind, path in film.stems.items()},
    }
    return {name: media.publish(source, dest) for name, (source, dest) in names.items()}


def film_cache_key(board: Storyboard, chains: dict[str, ClipChain], sound: mix.MixResult, lines: list[NarrationLine],
                   options: FilmOptions) -> str:  # fmt: skip
    """Everything the film's files are made from: storyboard, clips, sound, speech, and how they are joined."""
    return cache_key(
        "film", board=board.model_dump(mode="json"),
        clips=[[clip.sha256 for clip in chains[shot.id].clips] for shot in board.shots],
        mix=sound.mix.sha256, stems={kind: track.sha256 for kind, track in sound.stems.items()},
        narration=[(line.shot_id, line.sha256, line.offset) for line in lines],
        stitch=options.stitch, burn_subtitles=options.burn_subtitles, credentials=options.credentials,
    )  # fmt: skip


def _timeline(board: Storyboard, chains: dict[str, ClipChain]):
    return film_timeline(board, {shot_id: chain.num_frames for shot_id, chain in chains.items()})


# ---------------------------------------------------------------- flow


@flow(name="storyflow-film", log_prints=False, task_runner=ThreadPoolTaskRunner(max_workers=2))
def film_flow(options: FilmOptions) -> dict[str, Any]:
    """Make one film from one story file and return its summary."""
    story = read_story(options.story)
    if options.seed is not None:
        story = story.model_copy(update={"seed": options.seed})
    home = Path(options.home).resolve()
    out_dir = home / story.slug

    # One run per film folder at a time (a second run of the story waits, then reuses what
    # the first made); repairs of the output folder wait for every run to finish.
    def waiting(holder: str) -> None:
        progress.report("waiting", what=f"another run of '{story.title}'", holder=holder)

    with locks.hold(home, shared=True), locks.hold(out_dir, on_wait=waiting):
        swept = media.remove_partials(out_dir) + _remove_scratch(out_dir)  # left by a killed run of this story
        if swept:
            log.warning("removed %d unfinished file(s) a killed run left in %s", len(swept), out_dir)
        return _make_film(story, options, home, out_dir)


def _make_film(story: Story, options: FilmOptions, home: Path, out_dir: Path) -> dict[str, Any]:
    started = time.perf_counter()
    timings: dict[str, float] = {}
    made: dict[str, dict[str, int]] = {}

    def timed(stage: str, since: float) -> None:
        timings[stage] = time.perf_counter() - since

    def count(kind: str, reused: bool, n: int = 1) -> None:
        entry = made.setdefault(kind, {"made": 0, "reused": 0})
        entry["reused" if reused else "made"] += n

    # 1. the backends (their options were validated before the flow started)
    llm = load_backend("llm", options.llm, options.llm_options)
    video = load_backend("video", options.video_backend, options.video_options)
    music = load_backend("music", options.music_backend, options.music_options)
    speech = load_backend("speech", options.speech_backend, options.speech_options)
    effects = load_backend("effects", options.effects_backend, options.effects_options)

    catalog = Catalog.open(options.catalog_url or f"sqlite:///{home / 'catalog.db'}", home)
    params = options.model_dump(exclude={"catalog_url"})  # a database URL may hold a password
    run_id = catalog.start_run(options.story, params, prefect_flow_run_id=str(flow_run.id))
    store = CatalogStore(catalog, run_id=run_id, force=options.force)
    story_id = board_id = None
    try:
        story_id = catalog.record_story(story)

        # 2. plan (or reuse the plan), then speak the narration (it may stretch shots) and
        #    record the fitted storyboard: the one the film is made from
        t = time.perf_counter()
        planned, plan_key, plan_reused = plan_task(story, llm, catalog, options.force)
        count("storyboard", plan_reused)
        if not plan_reused:
            catalog.record_storyboard(story_id, planned, llm=llm.label, options=llm.options_dict(),
                                      wall_s=time.perf_counter() - t, cache_key=plan_key)  # fmt: skip
        timed("plan", t)
        t = time.perf_counter()
        board, lines = narrate_task(planned, speech, out_dir, store, options.narration_fit)
        for line in lines:
            count("narration", line.reused)
        timed("narrate", t)
        board_id = catalog.record_storyboard(story_id, board, llm=llm.label, options=llm.options_dict(),
                                             wall_s=timings["plan"])  # fmt: skip
        shot_rows = catalog.record_shots(board_id, board)
        store.attach_storyboard(board_id)
        text = plan.storyboard_json(board)  # kept by content, so earlier films keep theirs
        storyboard_json = media.publish_text(out_dir / "storyboards" / f"{media.sha256_bytes(text.encode())[:12]}.json",
                                             text)  # fmt: skip
        progress.report("plan", title=board.title, shots=len(board.shots), seconds=film_timeline(board).seconds,
                        width=board.width, height=board.height, fps=board.fps)  # fmt: skip

        # 3. rewrite every shot into a prompt (or reuse it), all at once
        t = time.perf_counter()
        rewritten = [rewrite_task.submit(shot, board, llm, catalog, options.force) for shot in board.shots]
        prompts, prompt_rows = {}, {}
        for shot, future in zip(board.shots, rewritten):
            prompt, key, reused = future.result()
            count("prompt", reused)
            prompts[shot.id] = prompt
            prompt_rows[shot.id] = catalog.record_prompt(shot_rows[shot.id], prompt, cache_key=key,
                                                         wall_s=0.0 if reused else time.perf_counter() - t)  # fmt: skip
        timed("rewrite", t)
        store.attach_prompts(prompt_rows)

        # 4. generate: chains in parallel, a continuing shot after the one it continues. Shots
        #    are submitted level by level (every chain's first shot, then every second...):
        #    a task waiting for the shot it continues holds a worker, so it queues behind the
        #    independent work instead of in front of it.
        t = time.perf_counter()
        forced = set(options.force_shots)
        unknown = sorted(forced - {shot.id for shot in board.shots})
        if unknown:
            raise InputError(f"--force-shot {', '.join(unknown)}: the storyboard has no such shot",
                             fix=f"pick among {board.shots[0].id}..{board.shots[-1].id} (see `storyflow plan STORY`)")  # fmt: skip
        generating: dict[str, PrefectFuture] = {}
        chains_of_shots = board.chains()
        for level in range(max(len(chain) for chain in chains_of_shots)):
            for chain in chains_of_shots:
                if level < len(chain):
                    shot = chain[level]
                    previous = generating[chain[level - 1].id] if level else None
                    generating[shot.id] = generate_task.submit(
                        shot, prompts[shot.id], board, video, out_dir, store, previous,
                        force=shot.id in forced, sign_home=home if options.sign_clips else None,
                    )  # fmt: skip
        chains = {shot.id: generating[shot.id].result() for shot in board.shots}
        for chain in chains.values():
            for clip in chain.clips:
                count("clip", clip.reused)
        timed("generate", t)

        # 5. sound: every shot's effects from its clips, music on the real timeline, the mix
        t = time.perf_counter()
        effecting = {
            shot.id: effects_task.submit(shot, chains[shot.id], board, prompts[shot.id], effects, out_dir, store)
            for shot in board.shots
        }
        music_track = music_task(board, chains, music, out_dir, store)
        shot_effects = {shot_id: future.result() for shot_id, future in effecting.items()}
        sound, effects_bed = mix_task(board, chains, lines, music_track, shot_effects, out_dir, store,
                                      options.target_lufs)  # fmt: skip
        count("music", music_track.reused)
        for track in shot_effects.values():
            count("effects", track.reused)
        count("mix", sound.reused)
        timed("audio", t)

        # 6. stitch (or find the identical film made before), then show it under plain names
        progress.report("stitch", strategy=options.stitch)
        t = time.perf_counter()
        key = film_cache_key(board, chains, sound, lines, options)
        film, film_reused = stitch_task(board, chains, lines, sound, out_dir, options, storyboard_json, catalog, key)
        count("film", film_reused)
        timed("stitch", t)

        # 7. record: the film row only after every file is in place; then publish its plain names
        t = time.perf_counter()
        clips = [clip for shot in board.shots for clip in chains[shot.id].clips]
        tracks = [music_track, *shot_effects.values(), effects_bed, sound.mix, *sound.stems.values()]
        if film_reused:
            film_id = catalog.film_id(key)
        else:
            film_id = catalog.record_film(
                film, storyboard_id=board_id, run_id=run_id, clip_keys=[c.cache_key for c in clips],
                audio_keys=list(dict.fromkeys(track.cache_key for track in tracks)),
                narration_keys=[line.cache_key for line in lines], cache_key=key, credentials=film.credentials,
            )  # fmt: skip
        published = publish_film(film, board, out_dir)
        timed("record", t)
        timings["total"] = time.perf_counter() - started
        timings["orchestration"] = timings["total"] - sum(
            timings[k] for k in ("plan", "narrate", "rewrite", "generate", "audio", "stitch", "record")
        )
        summary = film_summary(board, prompts, chains, lines, sound, film, film_id, run_id, catalog, options,
                               timings, story, made, published)  # fmt: skip
        catalog.finish_run(run_id, "completed", story_id=story_id, storyboard_id=board_id, film_id=film_id,
                           clips_generated=made["clip"]["made"], clips_reused=made["clip"]["reused"],
                           timings=timings, generations=made)  # fmt: skip
        _publish(summary)
        return summary
    except BaseException as exc:
        catalog.finish_run(run_id, "failed", story_id=story_id, storyboard_id=board_id,
                           error=f"{type(exc).__name__}: {exc}")  # fmt: skip
        raise
    finally:
        catalog.close()


def _remove_scratch(out_dir: Path) -> list[Path]:
    """Scratch folders of a stitch a killed run never finished."""
    import shutil

    scratch = [path for path in out_dir.rglob(".stitch-*") if path.is_dir()]
    for path in scratch:
        shutil.rmtree(path, ignore_errors=True)
    return scratch


def film_summary(
    board: Storyboard,
    prompts: dict[str, ShotPrompt],
    chains: dict[str, ClipChain],
    lines: list[NarrationLine],
    sound: mix.MixResult,
    film: Film,
    film_id: int,
    run_id: int,
    catalog: Catalog,
    options: FilmOptions,
    timings: dict[str, float],
    story: Story,
    made: dict[str, dict[str, int]],
    published: dict[str, Path],
) -> dict[str, Any]:
    """The run's summary: what `--json` prints and summary.json keeps beside the film.

    Paths are the plain names in the story's folder; `recorded` holds the content-addressed
    files the catalog records (the plain names are links to them).
    """
    timeline = _timeline(board, chains)
    spoken = {line.shot_id: (t, line) for t, line in narrate.line_times(
        board, lines, {k: c.num_frames for k, c in chains.items()})}  # fmt: skip
    shots, seams = [], []
    for shot in board.shots:
        chain = chains[shot.id]
        start, end = timeline.span_seconds(shot.id)
        segments = []
        for c in chain.clips:
            segments.append({
                "path": str(c.path), "strategy": c.strategy, "seconds": round(c.seconds, 3), "reused": c.reused,
                "parent_sha256": c.parent_sha256, "end_parent_sha256": c.end_parent_sha256,
                "prompt": c.prompt, "seam": c.seam.model_dump() if c.seam else None,
                "end_seam": c.end_seam.model_dump() if c.end_seam else None, "drift": c.drift,
            })  # fmt: skip
            for where, score in (("into", c.seam), ("loop", c.end_seam)):
                if score is not None:
                    seams.append({"shot": shot.id, "segment": c.segment, "at": where, **score.model_dump(),
                                  "visible": score.visible})  # fmt: skip
        narration = None
        if shot.id in spoken:
            at, line = spoken[shot.id]
            narration = {"text": line.text, "starts_at": round(at, 3), "ends_at": round(at + line.seconds, 3),
                         "rate_wpm": line.rate, "voice": line.voice, "reused": line.reused}  # fmt: skip
        shots.append({
            "id": shot.id, "camera": shot.camera.value, "seconds": round(chain.num_frames / board.fps, 3),
            "starts_at": round(start, 3), "ends_at": round(end, 3), "continues_previous": shot.continues_previous,
            "loop": shot.loop, "transition": shot.transition.value, "characters": list(shot.characters),
            "mood": shot.mood, "narration": shot.narration, "spoken": narration,
            "prompt": prompts[shot.id].prompt,
            "prompt_changes": [{"at": c.at, "prompt": c.prompt} for c in prompts[shot.id].changes],
            "segments": segments,
            "clips_generated": sum(not c.reused for c in chain.clips),
            "clips_reused": sum(c.reused for c in chain.clips),
        })  # fmt: skip
    visible = [s for s in seams if s["visible"]]
    summary = {
        "title": board.title,
        "story": str(Path(story.source).resolve()),
        "film": str(published["film"]),
        "film_id": film_id,
        "run_id": run_id,
        "shots": shots,
        "clips_generated": sum(s["clips_generated"] for s in shots),
        "clips_reused": sum(s["clips_reused"] for s in shots),
        "duration_s": round(film.duration_s, 3),
        "width": film.width,
        "height": film.height,
        "fps": film.fps,
        "seed": board.seed,
        "llm": options.llm,
        "video_backend": options.video_backend,
        "music_backend": options.music_backend,
        "speech_backend": options.speech_backend,
        "effects_backend": options.effects_backend,
        "stitch": film.stitch_strategy,
        "seams": {
            "count": len(seams),
            "max_ratio": max((s["ratio"] for s in seams), default=None),
            "median_ratio": _median([s["ratio"] for s in seams]),
            "warn_ratio": SEAM_WARN_RATIO,
            "visible": visible,
        },
        "sound": {
            "loudness_lufs": round(sound.lufs, 2),
            "target_lufs": sound.target_lufs,
            "true_peak_dbtp": round(sound.true_peak_dbtp, 2),
            "music_ducked_db": sound.ducking.music_db,
            "narration_lines": len(lines),
        },
        "stems": {name.split(":", 1)[1]: str(path) for name, path in published.items() if name.startswith("stem:")},
        "generations": made,
        "film_reused": film.reused,
        "credentials": film.credentials,
        "wall_s": round(timings["total"], 3),
        "timings": {k: round(v, 3) for k, v in timings.items()},
        "catalog": catalog.display_url,
        "subtitles": str(published["subtitles"]),
        "poster": str(published["poster"]),
        "contact_sheet": str(published["contact_sheet"]),
        "storyboard": str(published["storyboard"]),
        "recorded": {"film": str(film.path), "folder": str(film.path.parent)},
        "prefect_flow_run_id": str(flow_run.id),
    }
    for seam in visible:
        log.warning("visible seam in shot %s (segment %d, %s): jump %.1f is %.1fx the motion around it",
                    seam["shot"], seam["segment"], seam["at"], seam["jump"], seam["ratio"])  # fmt: skip
    atomic_write_text(published["film"].parent / "summary.json", _json(summary))
    return summary


def _median(values: list[float]) -> float | None:
    import statistics

    return round(statistics.median(values), 3) if values else None


def _publish(summary: dict[str, Any]) -> None:
    """A markdown table of the shots, shown on the flow run's page in the Prefect UI."""
    rows = "\n".join(
        f"| {s['id']} | {s['camera']} | {s['seconds']:.1f} | {len(s['segments'])} | {s['clips_generated']} | "
        f"{s['clips_reused']} | {_seam_ratios(s)} | {s['narration'][:60].replace('|', '/')} |"
        for s in summary["shots"]
    )
    create_markdown_artifact(
        key="film-summary",
        markdown=(
            f"# {summary['title']}\n\n{summary['duration_s']:.1f} s, {summary['width']}x{summary['height']} "
            f"@ {summary['fps']} fps, {summary['clips_generated']} clips generated, "
            f"{summary['clips_reused']} reused; sound {summary['sound']['loudness_lufs']:.1f} LUFS.\n\n"
            f"`{summary['film']}`\n\n"
            "| shot | camera | s | segments | generated | reused | seams | narration |\n"
            "|---|---|---|---|---|---|---|---|\n" + rows
        ),
        description=f"storyflow film: {summary['title']}",
    )


def _seam_ratios(shot: dict[str, Any]) -> str:
    return ", ".join(f"{seg['seam']['ratio']:.2f}" for seg in shot["segments"] if seg["seam"]) or "-"


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
