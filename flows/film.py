"""The film flow: plan -> narrate -> rewrite -> generate -> effects -> music -> mix -> film -> record.

Stages live in storyflow/stages and know nothing of Prefect; this module owns orchestration
policy: task names (they carry the shot id), retries (transient backend errors only),
bounded concurrency, the order of continuing shots, artifacts for the UI, and the run's
row in the catalog. Policy sits on the decorators, not inside the functions.

The flow's parameters are plain data that any process can resolve: the story's path, the
run's choices (storyflow.core.config.FilmChoices: backends, options, sound...), a seed and
what to make again. What belongs to the machine that runs it (where outputs go, the
catalog's URL and its password, signing keys, API keys) is read from that machine's
environment inside the run, so a worker or `serve` resolves it for itself and no secret is
ever a Prefect parameter, log line or artifact. The tasks it fans out per shot (rewrite,
generate, effects) take plain data too (flows/work.py: a FilmRun of ids and choices), so any
task runner runs them: threads here, a Dask cluster (--task-runner dask), or the workers of a
work pool for the shots themselves (--shot-pool: flows/shots.py).

Narration is spoken right after planning because it can stretch shots; a shot's effects wait
for its clips (their real lengths and pictures). The score, the effects and the measuring of the
narration and score for the mix run in a sound lane beside the shots (flows/lanes.py). Every
generation goes through the catalog's door (storyflow.catalog.Generations): a run makes only what no earlier run made
with the same inputs, and --force / --force-shot are decided there.
"""

import contextlib
import logging
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NONE
from prefect.exceptions import TerminationSignal
from prefect.futures import PrefectFuture, as_completed
from prefect.runtime import deployment, flow_run
from prefect.task_runners import ThreadPoolTaskRunner

from flows import artifacts, cancel, limits
from flows.lanes import SoundLane
from flows.shots import made_on_pool, make_shot
from flows.work import Done, FilmRun, Signer
from storyflow.backends.base import (
    BACKEND_KINDS,
    Backend,
    LLMBackend,
    SpeechBackend,
)
from storyflow.backends.registry import load_backend
from storyflow.catalog import FILM, STORYBOARD, Catalog, Generations, open_catalog, server_lock
from storyflow.catalog.listing import vouched_record
from storyflow.core import locks, progress
from storyflow.core.memory import release_freed_memory
from storyflow.core.config import FilmChoices, Settings, load_settings
from storyflow.core.errors import InputError, ShotsFailed, StoryflowError, TransientError
from storyflow.core.models import (
    SEAM_WARN_RATIO,
    AudioTrack,
    ClipChain,
    Film,
    NarrationLine,
    Shot,
    ShotPrompt,
    ShotTakes,
    Story,
    Storyboard,
)
from storyflow.core.templates import PromptFolder
from storyflow.core.timeline import film_timeline
from storyflow.media import AUDIO_SAMPLE_RATE, atomic_write_text, remove_partials
from storyflow.stages import admission, audio, budget, mix, narrate, plan, rewrite, takes, unchanged
from storyflow.stages.film import make_film, publish_film
from storyflow.stages.mix import MixResult
from storyflow.stages.story import read_story

log = logging.getLogger("storyflow.flow")


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
def plan_task(story: Story, llm: LLMBackend, door: Generations, prompts: PromptFolder) -> Storyboard:
    """Break the story into a storyboard (or reuse the plan made for the same story, seed and LLM)."""
    with limits.holding(llm):
        return plan.plan_storyboard(story, llm, door, prompts)


@task(name="storyboard-file", cache_policy=NONE)
def storyboard_file_task(story: Story, path: str, catalog: Catalog, door: Generations) -> tuple[Storyboard, str]:
    """Read the storyboard file a person reviewed, to render it as it is; and whether they edited it."""
    board = plan.storyboard_from_file(path, story)
    origin = "from a file, as planned" if catalog.holds(STORYBOARD, board) else "edited by hand"
    get_run_logger().info("rendering %s (%s; planned by %s)", path, origin, board.planner or "an unknown planner")
    facts = {"llm": board.planner or "unknown", "llm_options": {}, "origin": origin, "wall_s": 0.0}
    return door.keep(STORYBOARD, board, facts=facts, tally=None), origin


@task(name="narrate", cache_policy=NONE, **RETRY)
def narrate_task(board: Storyboard, speech: SpeechBackend, out_dir: Path, door: Generations,
                 fit: str) -> tuple[Storyboard, list[NarrationLine]]:  # fmt: skip
    """Speak every narration line; stretch (or pace) shots so speech never runs over."""
    with limits.holding(speech):
        fitted, lines = narrate.narrate(board, speech, out_dir, door, fit=fit)  # type: ignore[arg-type]
    for before, after in zip(board.shots, fitted.shots):
        if after.duration != before.duration:
            get_run_logger().info("%s stretched %.2f s -> %.2f s for its narration",
                                  after.id, before.duration, after.duration)  # fmt: skip
    return fitted, lines


@task(name="rewrite", task_run_name="rewrite-{shot.id}", cache_policy=NONE, **RETRY)
def rewrite_task(shot: Shot, board: Storyboard, run: FilmRun) -> Done[ShotPrompt]:
    """Rewrite one shot into a prompt shaped for the video backend (or reuse the prompt written for it before)."""
    llm = run.backend("llm")
    with run.door() as door, limits.holding(llm):
        prompt = rewrite.rewrite_shot(shot, board, llm, door, PromptFolder.of(run.settings().prompts_dir),
                                      run.backend("video").prompt_shape)  # fmt: skip
        return Done(prompt, door.receipt())


@task(name="generate", task_run_name="generate-{shot.id}", cache_policy=NONE, **RETRY)
def generate_task(shot: Shot, prompt: ShotPrompt, board: Storyboard, run: FilmRun,
                  previous: Done[ShotTakes] | None = None, picked: int | None = None) -> Done[ShotTakes]:  # fmt: skip
    """Make (or reuse) one shot's takes, each a chain of clips, and choose the one the film plays.

    `previous` is the shot it continues; `picked` the take a person chose. Each new clip is signed
    (--sign-clips); each paid call asks the run's budget first and holds a slot of the backend's
    limits shared with every other run; a prompt a provider's safety filter refuses is rephrased once
    by the run's LLM, and tried again. With a shot pool, a worker of the pool makes it (flows/shots.py).
    """
    before = previous.value if previous is not None else None
    if run.choices.shot_pool and not run.reuse_only:
        return made_on_pool(shot, prompt, board, run, before, picked)
    with run.door() as door:
        return Done(make_shot(shot, prompt, board, run, door, before, picked), door.receipt())


@task(name="effects", task_run_name="effects-{shot.id}", cache_policy=NONE, **RETRY)
def effects_task(shot: Shot, made: Done[ShotTakes], board: Storyboard, prompt: ShotPrompt,
                 run: FilmRun) -> Done[AudioTrack]:  # fmt: skip
    """Sound effects derived from one shot's clips: those of the take its generate task chose (`made`, that
    task's result), described by the prompt they were made from (a rephrased one, if a filter refused the first)."""
    with run.door() as door:
        effects = run.backend("effects")
        with limits.holding(effects):
            track = audio.shot_effects(shot, made.value.chain, board, (made.value.prompt or prompt).prompt, effects,
                                       run.out_dir(), door)  # fmt: skip
        return Done(track, door.receipt())


@task(name="music", cache_policy=NONE, **RETRY)
def music_task(board: Storyboard, shot_frames: dict[str, int] | None, run: FilmRun) -> Done[AudioTrack]:
    """Score the film: on the planned timeline (`shot_frames` None: while the clips are made), or on the frames
    the clips hold where they differ from the plan (each cue is composed once: the ones that fit are reused)."""
    with run.door() as door:
        music = run.backend("music")
        with limits.holding(music):
            track = audio.score_film(board, film_timeline(board, shot_frames), music, run.out_dir(), door)
        return Done(track, door.receipt())


@task(name="listen", cache_policy=NONE)
def listen_task(board: Storyboard, lines: list[NarrationLine], music: Done[AudioTrack]) -> list[mix.Heard]:
    """The narration on the planned timeline and the score, measured as the mix measures them, while the clips
    are made: the mix then skips them. What the mix is finally given that differs (clips of other lengths, a
    score made again) it measures itself, and what fails here (a line too long, say) it finds and reports."""
    timeline = film_timeline(board)
    try:
        return [mix.hear_narration(narrate.line_times(board, lines), timeline.seconds, AUDIO_SAMPLE_RATE),
                mix.hear_bed(music.value, timeline.seconds, AUDIO_SAMPLE_RATE)]  # fmt: skip
    except (StoryflowError, OSError) as exc:
        get_run_logger().info("measuring the narration and music ahead of the mix: %s (the mix measures them)", exc)
        return []


@task(name="mix", cache_policy=NONE)
def mix_task(board: Storyboard, chains: dict[str, ClipChain], lines: list[NarrationLine], music: AudioTrack,
             shot_effects: dict[str, AudioTrack], out_dir: Path, door: Generations, target_lufs: float,
             heard: list[mix.Heard]) -> tuple[MixResult, AudioTrack]:  # fmt: skip
    """Lay the effects on the timeline (measured as they are written), then mix narration over ducked music over
    effects (what was heard ahead is not measured again)."""
    timeline = _timeline(board, chains)
    with mix.BedMeter(timeline.seconds, AUDIO_SAMPLE_RATE) as metering:
        effects = audio.lay_effects(board, timeline, shot_effects, out_dir, door, tap=metering.feed)
        bed = metering.heard(effects)
    spoken = narrate.line_times(board, lines, {k: c.num_frames for k, c in chains.items()})
    result = mix.mix_film(
        seconds=timeline.seconds, sample_rate=AUDIO_SAMPLE_RATE, narration=spoken, music=music, effects=effects,
        out_dir=out_dir, door=door, target_lufs=target_lufs, heard=[*heard, *([bed] if bed else [])],
    )  # fmt: skip
    get_run_logger().info("mix: %.1f LUFS (target %.1f), music ducked %.1f dB under speech",
                          result.lufs, target_lufs, result.ducking.music_db)  # fmt: skip
    return result, effects


@task(name="stitch", cache_policy=NONE)
def stitch_task(board: Storyboard, chains: dict[str, ClipChain], lines: list[NarrationLine], sound: MixResult,
                tracks: list[AudioTrack], out_dir: Path, door: Generations, choices: FilmChoices,
                signer: Any = None) -> tuple[Film, str]:  # fmt: skip
    """The film (or the identical one made before): clips and mix joined, subtitles timed by the speech,
    poster, contact sheet, storyboard and stems, in its own folder out_dir/films/<key>/; signed with C2PA."""
    return make_film(board, chains, lines, sound, tracks, out_dir, door, strategy=choices.stitch, burn_subtitles=choices.burn_subtitles,
                     sign=signer.film(board, chains) if signer is not None else None)  # fmt: skip


def _timeline(board: Storyboard, chains: dict[str, ClipChain]):
    return film_timeline(board, {shot_id: chain.num_frames for shot_id, chain in chains.items()})


# ---------------------------------------------------------------- flow


@flow(name="storyflow-film", log_prints=False, task_runner=ThreadPoolTaskRunner(max_workers=2))
def film_flow(
    story: str,
    choices: FilmChoices | None = None,
    seed: int | None = None,
    force: bool = False,
    force_shots: list[str] | None = None,
    storyboard: str | None = None,
    reuse_only: bool = False,
) -> dict[str, Any]:
    """Make one film from one story file and return its summary.

    `choices` default to this machine's settings (STORYFLOW_ variables); `seed` overrides the
    story's; `force` makes everything again, `force_shots` ("s03") one shot's clips;
    `storyboard` is a storyboard file (YAML or JSON) to render as it is instead of planning;
    `reuse_only` makes no clip (`storyflow pick`: re-stitch with the takes the catalog holds).
    """
    settings = load_settings()  # this machine's: where outputs go, the catalog, the signing key
    choices = choices or settings.choices()
    parsed = read_story(story, settings.limits())
    if seed is not None:
        parsed = parsed.model_copy(update={"seed": seed})
    home = settings.home.resolve()
    out_dir = home / parsed.slug

    # One run per film at a time (a second run of the story waits, then reuses what the first
    # made): a file lock on the film's folder here, and a lock in the catalog's database server
    # for every machine that shares it; repairs of the output folder wait for every run here.
    def waiting(holder: str) -> None:
        progress.report("waiting", what=f"another run of '{parsed.title}'", holder=holder)

    with locks.hold(home, shared=True), locks.hold(out_dir, on_wait=waiting), \
            server_lock(settings.resolved_catalog_url, f"film:{parsed.slug}", on_wait=waiting):
        swept = remove_partials(out_dir) + _remove_scratch(out_dir)  # left by a killed run of this story
        if swept:
            log.warning("removed %d unfinished file(s) a killed run left in %s", len(swept), out_dir)
        request = {"story": story, "seed": seed, "force": force, "force_shots": list(force_shots or []),
                   "storyboard": storyboard, "reuse_only": reuse_only}  # fmt: skip
        with cancel.watched(flow_run.id, has_supervisor=deployment.id is not None):
            return _make_film(parsed, choices, settings, out_dir, request)


def _make_film(story: Story, choices: FilmChoices, settings: Settings, out_dir: Path,
               request: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    started = time.perf_counter()
    timings: dict[str, float] = {}

    def timed(stage: str, since: float) -> None:
        timings[stage] = time.perf_counter() - since

    # 1. the backends, checked before any work starts (packages, keys, their own checks)
    backends: dict[str, Backend] = {
        kind: load_backend(kind, choices.backend_name(kind), choices.backend_options(kind)) for kind in BACKEND_KINDS
    }
    for kind, backend in backends.items():
        if not (kind == "video" and request["reuse_only"]):  # a re-stitch asks the video backend for nothing
            backend.check_available()
    llm, video, speech = backends["llm"], backends["video"], backends["speech"]  # music and effects: in their tasks
    takes.load_scorer(choices.scorer)
    prompts = PromptFolder.of(settings.prompts_dir)
    signer = Signer(settings) if choices.credentials else None

    catalog = open_catalog(settings)
    asked = unchanged.fingerprint(Path(request["story"]).read_bytes(), choices, seed=request["seed"],
                                  prompts_sha256=prompts.sha256(), reuse_only=request["reuse_only"],
                                  storyboard_bytes=Path(request["storyboard"]).read_bytes() if request["storyboard"]
                                  else None)  # fmt: skip
    run_id = catalog.start_run(request["story"], {**request, **choices.model_dump(mode="json"), "fingerprint": asked},
                               prefect_flow_run_id=str(flow_run.id))  # fmt: skip
    door = Generations(catalog, run_id=run_id, force=request["force"], force_shots=request["force_shots"])
    story_id = board_id = None
    lanes = contextlib.ExitStack()
    try:
        story_id = catalog.record_story(story)
        door.point_at(story=story_id)

        # 2. plan (or reuse the plan), then speak the narration (it may stretch shots) and
        #    record the fitted storyboard: the one the film is made from
        t = time.perf_counter()
        if request["storyboard"] is None:
            planned, origin = plan_task(story, llm, door, prompts), "planned"
        else:
            planned, origin = storyboard_file_task(story, request["storyboard"], catalog, door)
        timed("plan", t)
        #    what was asked must fit this machine's limits and name real shots, before anything is made
        admission.check_storyboard_size(planned, settings.limits(), video.capabilities, choices.candidates)
        unknown = sorted(set(request["force_shots"]) - {shot.id for shot in planned.shots})
        if unknown:
            raise InputError(f"--force-shot {', '.join(unknown)}: the storyboard has no such shot",
                             fix=f"pick among {planned.shots[0].id}..{planned.shots[-1].id} (see `storyflow plan STORY`)")  # fmt: skip
        t = time.perf_counter()
        board, lines = narrate_task(planned, speech, out_dir, door, choices.narration_fit)
        timed("narrate", t)
        admission.check_storyboard_size(board, settings.limits(), video.capabilities, choices.candidates)  # stretched
        board_id = catalog.record_storyboard(story_id, board, llm=board.planner or llm.label, wall_s=timings["plan"],
                                             options=llm.options_dict() if request["storyboard"] is None else {},
                                             origin=origin)  # fmt: skip
        door.point_at(storyboard=board_id, shot=catalog.record_shots(board_id, board))
        progress.report("plan", title=board.title, shots=len(board.shots), seconds=film_timeline(board).seconds,
                        width=board.width, height=board.height, fps=board.fps)  # fmt: skip
        artifacts.storyboard_table(board)

        # 3. rewrite every shot into a prompt (or reuse it), all at once
        t = time.perf_counter()
        run = film_run(run_id, out_dir, choices, request, door)
        rewritten = [rewrite_task.submit(shot, board, run) for shot in board.shots]
        prompts_of = {shot.id: taken(door, future) for shot, future in zip(board.shots, rewritten)}
        timed("rewrite", t)

        #    what the clips still to make would cost (the catalog's are free): a plan over the
        #    budget is refused here, before any paid call; the run then stops asking when it is spent
        estimate = budget.estimate(board, video, door, prompts_of, choices.candidates)
        if estimate.total_usd:
            get_run_logger().info("the clips would cost %s", estimate.describe())
        budget.check(estimate, choices.budget_usd)

        # 4. generate: chains in parallel, a continuing shot after the one it continues. Shots
        #    are submitted level by level (every chain's first shot, then every second...):
        #    a task waiting for the shot it continues holds a worker, so it queues behind the
        #    independent work instead of in front of it.
        t = time.perf_counter()
        lane = lanes.enter_context(SoundLane())  # the score and effects beside the shots (flows/lanes.py)
        generating: dict[str, PrefectFuture] = {}
        person_picks = {shot: pick["take"] for shot, pick in catalog.picks(board_id).items()
                        if pick["picked_by"] == "person"}  # fmt: skip
        limits.ensure(() if request["reuse_only"] else video.shared_limits())  # held across processes and machines
        run = film_run(run_id, out_dir, choices, request, door)  # the prompts' rows: what the clips point at
        #    Sound work runs in its lane beside the shots: the score on the planned timeline at once (conformed
        #    clips hold the planned frames), and a shot's effects as soon as that shot is made.
        scoring = lane.submit(music_task, {"board": board, "shot_frames": None, "run": run})
        listening = lane.submit(listen_task, {"board": board, "lines": lines, "music": scoring})
        chains_of_shots = board.chains()
        for level in range(max(len(chain) for chain in chains_of_shots)):
            for chain in chains_of_shots:
                if level < len(chain):
                    shot = chain[level]
                    previous = generating[chain[level - 1].id] if level else None
                    generating[shot.id] = generate_task.submit(shot, prompts_of[shot.id], board, run, previous,
                                                               person_picks.get(shot.id))  # fmt: skip
        effecting = {shot.id: lane.submit(effects_task, {"shot": shot, "made": generating[shot.id], "board": board,
                                                          "prompt": prompts_of[shot.id], "run": run})
                     for shot in board.shots}  # fmt: skip
        shot_takes = _finished_takes(board, generating, door, artifacts.Progress(
            board, {shot.id: shot.frames(board.fps) * choices.candidates for shot in board.shots}))
        chains = {shot_id: made.chain for shot_id, made in shot_takes.items()}
        prompts_of.update({shot_id: made.prompt for shot_id, made in shot_takes.items() if made.prompt})
        for shot_id, made in shot_takes.items():
            if len(made.takes) > 1:
                catalog.record_pick(board_id, shot_id, made.chosen, picked_by=made.picked_by, scorer=made.scorer,
                                    scores=[score.model_dump() for score in made.scores])  # fmt: skip
        timed("generate", t)
        release_freed_memory()  # each stage starts from what is in use, not from the last one's high-water mark

        # 5. sound: the score and every shot's effects (made in the lane, the score again where a clip's length
        #    differs from the plan), then the mix
        t = time.perf_counter()
        shot_frames = {shot_id: chain.num_frames for shot_id, chain in chains.items()}
        if film_timeline(board, shot_frames) != film_timeline(board):
            scoring = lane.submit(music_task, {"board": board, "shot_frames": shot_frames, "run": run})
        music_track = taken(door, scoring)
        shot_effects = {shot_id: taken(door, future) for shot_id, future in effecting.items()}
        sound, effects_bed = mix_task(board, chains, lines, music_track, shot_effects, out_dir, door,
                                      choices.target_lufs, listening.result())  # fmt: skip
        timed("audio", t)
        release_freed_memory()

        # 6. the film (or the identical one made before), recorded with what it plays
        progress.report("stitch", strategy=choices.stitch)
        t = time.perf_counter()
        tracks = list({track.cache_key: track for track in (music_track, *shot_effects.values(), effects_bed,
                                                            sound.mix, *sound.stems.values())}.values())  # fmt: skip
        film, key = stitch_task(board, chains, lines, sound, tracks, out_dir, door, choices, signer)
        timed("stitch", t)

        # 7. show it under plain names, summarise, finish the run
        t = time.perf_counter()
        film_id = door.row_id(FILM, key)
        published = publish_film(film, board.slug, out_dir)
        timed("record", t)
        timings["total"] = time.perf_counter() - started
        timings["orchestration"] = timings["total"] - sum(
            timings[k] for k in ("plan", "narrate", "rewrite", "generate", "audio", "stitch", "record")
        )
        made = door.tally
        clips = made.get("clip", {"made": 0, "reused": 0})
        summary = film_summary(board, prompts_of, shot_takes, lines, sound, film, film_id, run_id, catalog,
                               choices, timings, story, made, published, estimate)  # fmt: skip
        catalog.finish_run(run_id, "completed", story_id=story_id, storyboard_id=board_id, film_id=film_id,
                           clips_generated=clips["made"], clips_reused=clips["reused"], timings=timings,
                           generations=made)  # fmt: skip
        artifacts.film(summary, board.slug)
        return summary
    except BaseException as exc:
        door.discard_waiting()  # generations whose rows could not be written leave no file behind
        stopped = _stopped_by(exc)
        catalog.finish_run(run_id, "cancelled" if stopped else "failed", story_id=story_id, storyboard_id=board_id,
                           error=stopped or f"{type(exc).__name__}: {exc}", generations=door.tally)  # fmt: skip
        raise
    finally:
        lanes.close()  # the sound lane's tasks end (a failed run's too) before the catalog closes
        catalog.close()


def _stopped_by(exc: BaseException) -> str | None:
    """Who stopped the run, when a person or a scheduler did rather than a failure: Cancel in the Prefect UI
    (or a supervisor's SIGTERM, which Prefect raises as TerminationSignal), or Ctrl-C."""
    if cancel.requested():
        return "cancelled in the Prefect UI"
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted (Ctrl-C)"
    if isinstance(exc, TerminationSignal):
        return "terminated (SIGTERM)"
    return None


def _finished_takes(board: Storyboard, generating: dict[str, PrefectFuture], door: Generations,
                    shown: artifacts.Progress) -> dict[str, ShotTakes]:  # fmt: skip
    """Every shot's takes, waiting for all of them: one shot's failure stops no other shot. Any that
    failed end the run with ShotsFailed, naming each and why, after every other shot is made and kept.
    The UI's progress moves as each shot finishes, in whatever order they do."""
    shot_of = {id(future): shot_id for shot_id, future in generating.items()}
    for future in as_completed(list(generating.values())):
        if not isinstance(future.result(raise_on_failure=False), BaseException):
            shown.shot_finished(shot_of[id(future)])
    chains: dict[str, ShotTakes] = {}
    failures: dict[str, str] = {}
    for shot in board.shots:
        try:
            chains[shot.id] = taken(door, generating[shot.id])
        except Exception as exc:  # noqa: BLE001 - each failure is reported below, with its shot
            before = board.shots[shot.index - 1].id if shot.continues_previous and shot.index else None
            failures[shot.id] = (f"continues {before}, which failed" if before in failures
                                 else exc.message if isinstance(exc, StoryflowError) else f"{type(exc).__name__}: {exc}")  # fmt: skip
    if failures:
        raise ShotsFailed(
            f"{len(failures)} of {len(board.shots)} shots could not be made ({len(chains)} made and kept): "
            + "; ".join(f"{shot_id}: {why}" for shot_id, why in failures.items()),
            fix="fix what each says (a filtered prompt: reword that paragraph), then run again: only what is "
            "missing is made",
        )
    return chains


def film_run(run_id: int, out_dir: Path, choices: FilmChoices, request: dict[str, Any],
             door: Generations) -> FilmRun:  # fmt: skip
    """The run as its tasks see it, in whatever process they run: ids, choices and the rows to point at."""
    return FilmRun(run_id=run_id, slug=out_dir.name, choices=choices, force=request["force"],
                   force_shots=tuple(request["force_shots"]), reuse_only=request["reuse_only"],
                   pointers=door.pointers())  # fmt: skip


def taken(door: Generations, future: PrefectFuture) -> Any:
    """A task's result, its door's work counted as the run's."""
    done: Done = future.result()
    door.absorb(done.receipt)
    return done.value


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
    shot_takes: dict[str, ShotTakes],
    lines: list[NarrationLine],
    sound: MixResult,
    film: Film,
    film_id: int,
    run_id: int,
    catalog: Catalog,
    choices: FilmChoices,
    timings: dict[str, float],
    story: Story,
    made: dict[str, dict[str, int]],
    published: dict[str, Path],
    estimate: budget.Estimate | None = None,
) -> dict[str, Any]:
    """The run's summary: what `--json` prints and summary.json keeps beside the film.

    Paths are the plain names in the story's folder; `recorded` holds the content-addressed
    files the catalog records (the plain names are links to them).
    """
    chains = {shot_id: made.chain for shot_id, made in shot_takes.items()}
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
                "corrections": list(c.corrections), "cost_usd": c.cost_usd,
            })  # fmt: skip
            for where, score in (("into", c.seam), ("loop", c.end_seam)):
                if score is not None:
                    seams.append({"shot": shot.id, "segment": c.segment, "at": where, **score.model_dump(),
                                  "visible": score.visible})  # fmt: skip
        narration = None
        if shot.id in spoken:
            at, line = spoken[shot.id]
            narration = {"text": line.text, "starts_at": round(at, 3), "ends_at": round(at + line.seconds, 3),
                         "rate_wpm": line.rate, "voice": line.voice, "reused": line.reused,
                         "cost_usd": line.cost_usd}  # fmt: skip
        shots.append({
            "id": shot.id, "camera": shot.camera.value, "seconds": round(chain.num_frames / board.fps, 3),
            "starts_at": round(start, 3), "ends_at": round(end, 3), "continues_previous": shot.continues_previous,
            "loop": shot.loop, "transition": shot.transition.value, "characters": list(shot.characters),
            "mood": shot.mood, "narration": shot.narration, "spoken": narration,
            "prompt": prompts[shot.id].prompt,
            "prompt_origin": prompts[shot.id].origin,
            "take": shot_takes[shot.id].chosen,
            "picked_by": shot_takes[shot.id].picked_by,
            "takes": _takes_summary(shot_takes[shot.id]),
            "prompt_changes": [{"at": c.at, "prompt": c.prompt} for c in prompts[shot.id].changes],
            "segments": segments,
            # every take's clips: --candidates 3 makes three chains of the shot
            "clips_generated": sum(not c.reused for take in shot_takes[shot.id].takes for c in take.clips),
            "clips_reused": sum(c.reused for take in shot_takes[shot.id].takes for c in take.clips),
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
        # what hosted services charged: for what this run made (every take, its narration), and for what the
        # film plays (its clips and narration, whichever run made them); `storyflow catalog films` says the same
        "cost_usd": total_cost([*(c.cost_usd for made in shot_takes.values() for take in made.takes for c in take.clips
                              if not c.reused), *(line.cost_usd for line in lines if not line.reused)]),
        "film_cost_usd": total_cost([*(c.cost_usd for chain in chains.values() for c in chain.clips),
                                 *(line.cost_usd for line in lines)]),
        "narration_cost_usd": total_cost(line.cost_usd for line in lines if not line.reused),
        "candidates": choices.candidates,
        # what the clips this run had to make were estimated to cost before any was asked for, and the limit
        "estimate_usd": estimate.total_usd if estimate is not None else None,
        "budget_usd": choices.budget_usd,
        "duration_s": round(film.duration_s, 3),
        "width": film.width,
        "height": film.height,
        "fps": film.fps,
        "seed": board.seed,
        "llm": choices.llm,
        "video_backend": choices.video_backend,
        "music_backend": choices.music_backend,
        "speech_backend": choices.speech_backend,
        "effects_backend": choices.effects_backend,
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
    # what this run made or verified, by stat, for an unchanged rerun to trust (storyflow.stages.unchanged)
    checked = {unchanged.CHECKED: vouched_record(catalog, film_id)}
    atomic_write_text(published["film"].parent / "summary.json", _json(summary | checked))
    return summary


def _takes_summary(made: ShotTakes) -> list[dict[str, Any]]:
    """Every take of a shot: its clips, score and measures, and whether the film plays it."""
    scores = {score.take: score for score in made.scores}
    return [{"take": take, "played": take == made.chosen, "score": scores[take].score if take in scores else None,
             "measures": scores[take].measures if take in scores else {},
             "clips": [str(clip.path) for clip in chain.clips],
             "clips_generated": sum(not clip.reused for clip in chain.clips)}
            for take, chain in enumerate(made.takes)]  # fmt: skip


def total_cost(costs: Iterable[float | None]) -> float | None:
    """The sum of what was charged (None when nothing says what it cost: a local backend)."""
    known = [cost for cost in costs if cost is not None]
    return round(sum(known), 4) if known else None


def _median(values: list[float]) -> float | None:
    import statistics

    return round(statistics.median(values), 3) if values else None


def _json(data: Any) -> str:
    import json

    return json.dumps(data, indent=2, default=str) + "\n"


def run_film(
    story: str | Path,
    choices: FilmChoices | None = None,
    *,
    seed: int | None = None,
    force: bool = False,
    force_shots: list[str] | None = None,
    storyboard: str | Path | None = None,
    reuse_only: bool = False,
) -> dict[str, Any]:
    """Run the flow in this process, with this run's concurrency bound (the backend's own limit included)."""
    choices = choices or load_settings().choices()
    return film_flow_for(story, choices)(str(story), choices, seed=seed, force=force, force_shots=force_shots,
                                         storyboard=str(storyboard) if storyboard is not None else None,
                                         reuse_only=reuse_only)  # fmt: skip


def film_flow_for(story: str | Path, choices: FilmChoices):
    """The film flow for one story: its runs named after the story, shots made as many at once as the run
    and the video backend allow."""
    video = load_backend("video", choices.video_backend, choices.video_options)
    workers = max(1, min(choices.max_concurrency, video.capabilities.max_concurrency))
    return film_flow.with_options(task_runner=task_runner(choices, workers), flow_run_name=_film_name(story))


def task_runner(choices: FilmChoices, workers: int) -> Any:
    """Where the run's shots are made: threads of this process, or a Dask cluster (choices.task_runner)."""
    if choices.task_runner == "threads":
        return ThreadPoolTaskRunner(max_workers=workers)
    try:
        from prefect_dask import DaskTaskRunner
    except ImportError:
        raise InputError("task_runner dask needs prefect-dask, which is not installed",
                         fix="pip install -c constraints.txt -e '.[dask]', or use --task-runner threads") from None  # fmt: skip
    if choices.dask_address:
        return DaskTaskRunner(address=choices.dask_address)
    # a local cluster of processes: each worker makes one shot at a time, as a GPU machine would
    return DaskTaskRunner(cluster_kwargs={"n_workers": workers, "threads_per_worker": 1, "processes": True,
                                          "dashboard_address": None})  # fmt: skip


def _film_name(story: str | Path) -> str:
    """A film run's name in the UI: the film's (its story's slug), or the file's name if it cannot be read."""
    try:
        return read_story(story).slug
    except StoryflowError:
        return Path(story).stem
