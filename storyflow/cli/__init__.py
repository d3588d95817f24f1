"""The storyflow command line: parse arguments, call a stage or the flow, print, map errors.

The top layer: it may import everything below it (flows, stages, the catalog's public API,
backends, media, core); nothing imports it. Everything it prints for people is formatted in
storyflow.cli.text. Heavy modules (Prefect, numpy, SQLAlchemy, PyAV) are imported inside
the commands, so `storyflow --help` answers at once. Errors print a message and the fix,
and exit non-zero; `--debug` (or STORYFLOW_DEBUG=1) shows the traceback instead.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from storyflow.cli import text
from storyflow.core.errors import InputError, StoryflowError, cause_chain, disk_full, unexpected_failure
from storyflow.core.printable import strip_controls

app = typer.Typer(
    help="Turn a written story into a finished short film.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
ui_app = typer.Typer(help="Run a local Prefect server to watch runs in the Prefect UI.", no_args_is_help=True)
app.add_typer(ui_app, name="ui")
catalog_app = typer.Typer(help="Look into the shot catalog: films, runs, integrity.", no_args_is_help=True)
app.add_typer(catalog_app, name="catalog")
schedules_app = typer.Typer(help="Nightly schedules: list them (no command), pause, resume, remove, run one now.",
                            invoke_without_command=True)  # fmt: skip
app.add_typer(schedules_app, name="schedules")

_debug = False

StoryArg = Annotated[Path, typer.Argument(help="Story file: Markdown or plain text, optional YAML front matter.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object (last on stdout).")]
LLMOpt = Annotated[str | None, typer.Option("--llm", help="LLM backend that plans and writes prompts.")]
MAX_SEED = 2**32 - 1


def _seed_in_range(value: int | None) -> int | None:
    """--seed, checked here so that a seed out of range ends in an error: and fix: line like any bad input."""
    if value is not None and not 0 <= value <= MAX_SEED:
        raise InputError(f"--seed {value}: a seed is a whole number from 0 to {MAX_SEED:,}",
                         fix="pass a smaller seed, or leave it out to use the story's")  # fmt: skip
    return value


SeedOpt = Annotated[int | None, typer.Option("--seed", callback=_seed_in_range,
                                             help=f"Override the story's seed (0 to {MAX_SEED}).")]  # fmt: skip
LLMOptionsOpt = Annotated[
    list[str] | None, typer.Option("--llm-option", help="LLM backend option KEY=VALUE (repeatable).")
]


@app.callback()
def _main(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks and Prefect's own logs.")] = False,
) -> None:
    """storyflow: story -> shot list -> prompts -> clips -> sound -> film, with provenance."""
    global _debug
    _debug = debug or _debug_setting()


@app.command()
def film(
    story: StoryArg,
    video_backend: Annotated[str | None, typer.Option("--video-backend", help="Video backend.")] = None,
    llm: LLMOpt = None,
    seed: SeedOpt = None,
    video_option: Annotated[
        list[str] | None, typer.Option("--video-option", help="Video backend option KEY=VALUE (repeatable).")
    ] = None,
    llm_option: LLMOptionsOpt = None,
    music_backend: Annotated[str | None, typer.Option("--music-backend", help="Music backend.")] = None,
    music_option: Annotated[
        list[str] | None, typer.Option("--music-option", help="Music backend option KEY=VALUE (repeatable).")
    ] = None,
    speech_backend: Annotated[str | None, typer.Option("--speech-backend", help="Narration (TTS) backend.")] = None,
    voice: Annotated[str | None, typer.Option("--voice", help="Narrator voice, e.g. en-gb or en-us+f3.")] = None,
    speech_option: Annotated[
        list[str] | None, typer.Option("--speech-option", help="Speech backend option KEY=VALUE (repeatable).")
    ] = None,
    narration_fit: Annotated[
        str | None, typer.Option("--narration-fit", help="Line longer than its shot: stretch, pace, or auto.")
    ] = None,
    effects_backend: Annotated[str | None, typer.Option("--effects-backend", help="Sound effects backend.")] = None,
    effects_option: Annotated[
        list[str] | None, typer.Option("--effects-option", help="Effects backend option KEY=VALUE (repeatable).")
    ] = None,
    loudness: Annotated[float | None, typer.Option("--loudness", help="Target loudness in LUFS (-16).")] = None,
    burn_subtitles: Annotated[
        bool | None, typer.Option("--burn-subtitles/--no-burn-subtitles", help="Draw subtitles into the picture.")
    ] = None,
    stitch: Annotated[str | None, typer.Option("--stitch", help="smart (stream copy) or moviepy.")] = None,
    concurrency: Annotated[int | None, typer.Option("--concurrency", help="Shots generated at once.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Make everything again; reuse nothing.")] = False,
    force_shot: Annotated[
        list[str] | None, typer.Option("--force-shot", help="Make this shot's clips again, e.g. 3 or s03 (repeatable).")
    ] = None,
    storyboard: Annotated[
        Path | None,
        typer.Option("--storyboard", help="Render this storyboard file (from `storyflow plan --out`) as it is."),
    ] = None,
    credentials: Annotated[
        bool | None, typer.Option("--credentials/--no-credentials", help="Sign the film with C2PA Content Credentials.")
    ] = None,
    sign_clips: Annotated[
        bool | None, typer.Option("--sign-clips/--no-sign-clips", help="Sign every new clip with C2PA too.")
    ] = None,
    budget: Annotated[
        float | None,
        typer.Option("--budget", metavar="USD", help="Spend at most this on hosted video: a plan estimated over it "
                     "is refused before any paid call, and the run stops asking once it is spent."),
    ] = None,
    candidates: Annotated[
        int | None,
        typer.Option("--candidates", metavar="N", help="Make N takes of every shot (each its own seed) and play "
                     "the one the scorer rates best; all are kept (`storyflow pick` swaps one in)."),
    ] = None,
    scorer: Annotated[
        str | None,
        typer.Option("--scorer", help="How takes are rated: measures (sharpness, motion, flicker, continuity), "
                     "first, or package.module:function."),
    ] = None,
    task_runner: Annotated[
        str | None,
        typer.Option("--task-runner", help="Where shots are made: threads (this process) or dask (a local "
                     "cluster of processes, or STORYFLOW_DASK_ADDRESS)."),
    ] = None,
    shot_pool: Annotated[
        str | None,
        typer.Option("--shot-pool", metavar="POOL", help="Have the workers of this Prefect work pool make the "
                     "shots (`storyflow serve --pool POOL` on each machine; a shared PostgreSQL catalog)."),
    ] = None,
    always_flow: Annotated[
        bool, typer.Option("--flow", help="Run the Prefect flow even when nothing changed (to watch it in the UI); "
                           "it still reuses everything.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Make a film from a story: plan, narrate, prompt, generate, score, mix, stitch, record.

    Anything made before from the same inputs is reused (checked against its sha256);
    --force and --force-shot make it again. When nothing changed since the last run of the
    story, the catalog answers at once, with no Prefect flow (--flow runs one anyway).
    """
    from storyflow.backends.registry import load_backend, parse_option_pairs
    from storyflow.stages.story import read_story

    started = time.perf_counter()
    if budget is not None and not budget >= 0:
        raise InputError(f"--budget {budget}: a budget is an amount of US dollars, 0 or more", fix="--budget 5")
    settings = _settings(
        video_backend=video_backend, llm=llm, music_backend=music_backend, speech_backend=speech_backend,
        effects_backend=effects_backend, voice=voice, narration_fit=narration_fit, target_lufs=loudness,
        burn_subtitles=burn_subtitles, stitch=stitch, max_concurrency=concurrency, credentials=credentials,
        sign_clips=sign_clips, budget_usd=budget, candidates=candidates, scorer=scorer, task_runner=task_runner,
        shot_pool=shot_pool, llm_options=parse_option_pairs(llm_option, "--llm-option") or None,
        video_options=parse_option_pairs(video_option, "--video-option") or None,
        speech_options=parse_option_pairs(speech_option, "--speech-option") or None,
        music_options=parse_option_pairs(music_option, "--music-option") or None,
        effects_options=parse_option_pairs(effects_option, "--effects-option") or None,
    )  # fmt: skip
    # 1. validate everything before anything is written or Prefect starts
    parsed = read_story(story, settings.limits())
    if storyboard is not None:
        from storyflow.stages.plan import storyboard_from_file

        storyboard_from_file(storyboard, parsed)
        storyboard = storyboard.resolve()
    forced_shots = [_shot_id(value) for value in force_shot or []]
    choices = settings.choices()

    # 2. nothing to do? An unchanged request is answered from the catalog, with no Prefect at all (and no
    #    backend asked anything: the very same choices made this film before)
    if not (force or forced_shots or storyboard is not None or always_flow):
        from storyflow.stages import unchanged

        summary = unchanged.answer(story, choices, settings, seed=seed)
        if summary is not None:
            sys.stderr.write(f"nothing changed since run {summary['answered_from_run']}: the film and its "
                             f"{summary['clips_reused']} clips are reused from the catalog, intact; no flow was needed\n")
            summary["wall_s"] = round(time.perf_counter() - started, 3)
            _print(summary, as_json, text.format_film_summary)
            return
    from storyflow.stages.takes import load_scorer

    load_scorer(choices.scorer)
    for kind in ("llm", "video", "music", "speech", "effects"):
        load_backend(kind, choices.backend_name(kind), choices.backend_options(kind)).check_available()

    # 3. run the flow (reporting to the UI's server, or to a temporary one that dies with this process;
    #    a shot pool's workers must reach the server, so a temporary one will not do)
    lasting = "a shot pool's workers take shots from a Prefect server" if choices.shot_pool else ""
    summary = _film_flow(settings, story, choices, lasting=lasting, seed=seed, force=force, force_shots=forced_shots,
                         storyboard=storyboard)  # fmt: skip
    summary["wall_s"] = round(time.perf_counter() - started, 3)
    _print(summary, as_json, text.format_film_summary)


@app.command("pick")
def pick(
    film_ref: Annotated[str, typer.Argument(metavar="FILM", help="A film: its id, its file, or its story's folder "
                                            "name (see `storyflow catalog films`).")],  # fmt: skip
    shot: Annotated[str, typer.Argument(help="The shot: 3 or s03.")],
    take: Annotated[int, typer.Argument(help="The take to play (0 is the first; see the film's summary.json).")],
    as_json: JsonOpt = False,
) -> None:
    """Play another take of a shot: recorded as your pick, then the film is stitched again. Nothing is generated.

    The film is made again from the same story and options as the run that made it, reusing every
    clip; a shot that continues the picked one would need making again, and is refused (the pick is
    kept for the next `storyflow film`).
    """
    from storyflow.core.config import FilmChoices

    started = time.perf_counter()
    settings = _settings()
    shot_id = _shot_id(shot, option="SHOT")
    with _open_catalog() as catalog:
        made = catalog.film_for_pick(film_ref)
        shots = [row["id"] for row in made["storyboard"]["shots"]]
        if shot_id not in shots:
            raise InputError(f"film {made['id']} has no shot {shot_id}", fix=f"pick among {shots[0]}..{shots[-1]}")
        takes = catalog.takes_made(made["storyboard_id"], shot_id)
        if take not in takes:
            raise InputError(f"shot {shot_id} of film {made['id']} has no take {take} in the catalog (it has "
                             f"{', '.join(map(str, takes)) or 'none'})",
                             fix="pick one of those, or make more with `storyflow film STORY --candidates N`")  # fmt: skip
        params = made["params"]
        choices = FilmChoices.model_validate({k: v for k, v in params.items() if k in FilmChoices.model_fields})
        story = Path(params["story"])
        if not story.is_file():
            raise InputError(f"the story the film was made from, {story}, is gone", fix="put it back, unchanged")
        catalog.record_pick(made["storyboard_id"], shot_id, take, picked_by="person")
    summary = _film_flow(settings, story, choices, seed=params.get("seed"), storyboard=params.get("storyboard"),
                         reuse_only=True)  # fmt: skip
    summary["wall_s"] = round(time.perf_counter() - started, 3)
    _print(summary, as_json, text.format_film_summary)


@app.command("plan")
def plan_command(
    story: StoryArg,
    llm: LLMOpt = None,
    seed: SeedOpt = None,
    llm_option: LLMOptionsOpt = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Also write the storyboard to this file (.yaml/.yml or .json) to edit.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Plan a story into shots and print the storyboard, with how much of the story it covers.

    The plan is kept in the catalog: `storyflow film` then renders this same plan without
    asking the LLM again. With --out, review and edit the file, then render it as it is with
    `storyflow film STORY --storyboard FILE`.
    """
    from storyflow.backends.registry import load_backend, parse_option_pairs
    from storyflow.catalog import Generations, open_catalog
    from storyflow.core.templates import PromptFolder
    from storyflow.stages.plan import YAML_SUFFIXES, plan_storyboard, save_storyboard, storyboard_json
    from storyflow.stages.story import read_story

    if out is not None and out.suffix.lower() not in (*YAML_SUFFIXES, ".json"):
        raise InputError(f"--out {out}: the file must end in .yaml, .yml or .json", fix=f"--out {out.stem}.yaml")
    settings = _settings(llm=llm, llm_options=parse_option_pairs(llm_option, "--llm-option") or None)
    parsed = read_story(story, settings.limits())
    if seed is not None:
        parsed = parsed.model_copy(update={"seed": seed})
    backend = load_backend("llm", settings.llm, settings.llm_options)
    backend.check_available()
    with open_catalog(settings) as catalog:
        door = Generations(catalog)
        door.point_at(story=catalog.record_story(parsed))
        board = plan_storyboard(parsed, backend, door, prompts=PromptFolder.of(settings.prompts_dir))
    if out is not None:
        save_storyboard(board, out)
        print(text.wrote_storyboard(out, story), file=sys.stderr)
    print(storyboard_json(board) if as_json else text.format_plan(board), end="")


@app.command()
def provenance(
    file: Annotated[Path, typer.Argument(help="Any file storyflow made: film, clip, audio, poster, subtitles.")],
    as_json: JsonOpt = False,
) -> None:
    """Show how a file was made, back to the story: prompts, models, seeds, parents, corrections."""
    with _open_catalog(file) as catalog:
        tree = catalog.provenance(file)
    _print(tree, as_json, text.format_provenance)


@app.command()
def shots(
    film: Annotated[Path, typer.Argument(help="A film storyflow made (or its poster, subtitles, stems).")],
    as_json: JsonOpt = False,
) -> None:
    """List a film's shots and their segments: path, parent, strategy, seconds, seam score."""
    with _open_catalog(film) as catalog:
        tree = catalog.film_shots(film)
    _print(tree, as_json, text.format_shots)


@app.command()
def backends(as_json: JsonOpt = False) -> None:
    """List the backends storyflow can use: what they need, what they can do, their options."""
    from storyflow.backends.base import BACKEND_KINDS, VideoBackend
    from storyflow.backends.registry import backend_class, backend_names

    listing: dict[str, list[dict[str, Any]]] = {}
    for kind in BACKEND_KINDS:
        listing[kind] = []
        for name in backend_names(kind):
            entry: dict[str, Any] = {"name": name}
            try:
                cls = backend_class(kind, name)
            except ImportError as exc:
                entry["error"] = f"cannot import: {exc}"
                listing[kind].append(entry)
                continue
            entry.update(version=cls.version, description=cls.description, requires=list(cls.requires),
                         key_env=list(cls.key_env), options={
                key: {"type": getattr(f.annotation, "__name__", str(f.annotation)),
                      "default": None if f.is_required() else f.default, "required": f.is_required(),
                      "help": f.description or ""}
                for key, f in cls.Options.model_fields.items()
            })  # fmt: skip
            if issubclass(cls, VideoBackend):
                entry["capabilities"] = cls().capabilities.as_dict()
            listing[kind].append(entry)
    _print(listing, as_json, text.format_backends)


@catalog_app.command("films")
def catalog_films(as_json: JsonOpt = False) -> None:
    """List the films in the catalog, newest first."""
    with _open_catalog() as catalog:
        films = catalog.films()
    _print(films, as_json, text.format_films)


@catalog_app.command("runs")
def catalog_runs(
    limit: Annotated[int, typer.Option(help="How many of the newest runs.")] = 20, as_json: JsonOpt = False
) -> None:
    """List runs: when, status, how much each generated versus reused, and what it paid hosted providers."""
    with _open_catalog() as catalog:
        runs = catalog.runs(limit)
    _print(runs, as_json, text.format_runs)


@catalog_app.command("run")
def catalog_run(run_id: Annotated[int, typer.Argument(help="A run id (see `storyflow catalog runs`).")],
                as_json: JsonOpt = False) -> None:  # fmt: skip
    """Show what one run generated and what it reused."""
    with _open_catalog() as catalog:
        detail = catalog.run_detail(run_id)
    _print(detail, as_json, text.format_run_detail)


@catalog_app.command("verify")
def catalog_verify(
    repair: Annotated[bool, typer.Option("--repair", help="Fix what is wrong: drop rows whose files are gone or "
                                         "changed, move stray files to .orphans/, delete unfinished files.")] = False,
    as_json: JsonOpt = False,
) -> None:  # fmt: skip
    """Check that every row's file is there and unchanged, and every file has a row. Exit 0 when all is well."""
    from storyflow.core import locks

    home = _settings().home
    with locks.hold(home, on_wait=lambda who: sys.stderr.write(f"waiting for running films to finish ({who})\n")):
        with _open_catalog() as catalog:
            report = catalog.verify(repair=repair)
            after = catalog.verify() if repair else report
    if as_json:
        print(json.dumps({**report, "ok_after": after["ok"]}, indent=2, default=str))
    else:
        print(text.format_verify(report, after=after if repair else None), end="")
    raise typer.Exit(0 if after["ok"] else 1)


@app.command("verify")
def verify_credentials(
    file: Annotated[Path, typer.Argument(help="A film (or clip) to check for C2PA Content Credentials.")],
    as_json: JsonOpt = False,
) -> None:
    """Read and validate a file's C2PA Content Credentials. Exit 0 when they are present and valid."""
    from storyflow.media import credentials

    if not file.exists():
        raise InputError(f"no such file: {file}", fix="pass the path of a film storyflow made")
    report = credentials.verify_media(file, home=_settings().home)
    if as_json:
        print(json.dumps(report.as_record(), indent=2, default=str))
    else:
        print(report.describe())
    raise typer.Exit(0 if report.has_manifest and report.valid else 1)


@app.command("schedule")
def schedule(
    stories: Annotated[Path, typer.Argument(metavar="STORIES_DIR", help="The folder whose stories are rendered.")],
    cron: Annotated[str, typer.Option("--cron", help='When, as five cron fields: "0 2 * * *" is 02:00 every day.')],
    timezone: Annotated[str | None, typer.Option("--timezone", help="IANA time zone the cron is read in "
                                                 "(default: this machine's, said on creation).")] = None,  # fmt: skip
    name: Annotated[str | None, typer.Option("--name", help="Schedule name (default: nightly-<folder>).")] = None,
    pool: Annotated[str, typer.Option("--pool", help="Prefect work pool its runs go to.")] = "storyflow",
    spread: Annotated[bool, typer.Option("--spread/--no-spread", help="Make each film a run of its own on the "
                                         "pool, so every worker of it (one per machine) shares the night.")] = False,
    video_backend: Annotated[str | None, typer.Option("--video-backend", help="Video backend.")] = None,
    video_option: Annotated[list[str] | None, typer.Option("--video-option", help="KEY=VALUE (repeatable).")] = None,
    llm: LLMOpt = None,
    llm_option: LLMOptionsOpt = None,
    speech_backend: Annotated[str | None, typer.Option("--speech-backend", help="Narration backend.")] = None,
    candidates: Annotated[int | None, typer.Option("--candidates", metavar="N", help="Takes per shot.")] = None,
    budget: Annotated[float | None, typer.Option("--budget", metavar="USD", help="Most to spend per film.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Render every story in STORIES_DIR on a schedule (a Prefect deployment); `storyflow serve` runs it.

    Unchanged stories cost nothing (the catalog); a failing story stops no other; each night
    writes a report (a Prefect artifact, and $STORYFLOW_HOME/nightly/<night>.md). Film choices
    are taken from the options here and STORYFLOW_ variables; keys are read by the worker.
    """
    from flows import schedules
    from storyflow.backends.registry import parse_option_pairs

    settings = _settings(video_backend=video_backend, llm=llm, speech_backend=speech_backend, candidates=candidates,
                         budget_usd=budget, video_options=parse_option_pairs(video_option, "--video-option") or None,
                         llm_options=parse_option_pairs(llm_option, "--llm-option") or None)  # fmt: skip
    zone = timezone or schedules.local_timezone()
    with _prefect(settings, lasting=SCHEDULES_NEED):  # first: Prefect reads where its server is when it is imported
        schedules.next_runs(cron, zone)  # a bad cron or zone is an error before the server is asked
        made = schedules.create(stories, cron, zone, settings.choices(), name=name, pool=pool, spread=spread)
    _print(made, as_json, text.format_schedule_made)


@schedules_app.callback()
def schedules_list(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List the nightly schedules: folder, cron and time zone, paused or not, next run."""
    if ctx.invoked_subcommand is not None:
        return
    from flows import schedules

    with _prefect(_settings(), lasting=SCHEDULES_NEED):
        found = schedules.listing()
    _print(found, as_json, text.format_schedules)


@schedules_app.command("pause")
def schedules_pause(name: Annotated[str, typer.Argument(help="Schedule name (see `storyflow schedules`).")]) -> None:
    """Pause a schedule: no run is started until it is resumed."""
    from flows import schedules

    with _prefect(_settings(), lasting=SCHEDULES_NEED):
        schedules.pause(name)
    print(f"paused {name}")


@schedules_app.command("resume")
def schedules_resume(name: Annotated[str, typer.Argument(help="Schedule name.")]) -> None:
    """Resume a paused schedule."""
    from flows import schedules

    with _prefect(_settings(), lasting=SCHEDULES_NEED):
        schedules.resume(name)
    print(f"resumed {name}")


@schedules_app.command("remove")
def schedules_remove(name: Annotated[str, typer.Argument(help="Schedule name.")]) -> None:
    """Remove a schedule; the films and reports it made stay."""
    from flows import schedules

    with _prefect(_settings(), lasting=SCHEDULES_NEED):
        schedules.remove(name)
    print(f"removed {name}")


@schedules_app.command("run")
def schedules_run(name: Annotated[str, typer.Argument(help="Schedule name.")]) -> None:
    """Start a run of a schedule now (a worker of its pool takes it: `storyflow serve`)."""
    from flows import schedules

    with _prefect(_settings(), lasting=SCHEDULES_NEED):
        flow_run_id = schedules.run_now(name)
    print(f"started a run of {name}: flow run {flow_run_id}")


@app.command("serve")
def serve(
    pool: Annotated[str, typer.Option("--pool", help="The Prefect work pool to take runs from.")] = "storyflow",
    limit: Annotated[int | None, typer.Option("--limit", help="Most runs at once (default: no limit).")] = None,
) -> None:
    """Run scheduled renders: a Prefect process worker for the pool, until stopped (Ctrl-C).

    Start one per machine that should render (GPU machines, say), all against the same
    Prefect server and catalog; each run it takes is a process of its own.
    """
    import signal
    import subprocess

    from flows import schedules

    settings = _settings()
    with _prefect(settings, lasting=SCHEDULES_NEED):
        command = schedules.worker_command(pool, limit)
        sys.stderr.write(f"serving the work pool '{pool}' on {os.environ['PREFECT_API_URL']} (Ctrl-C stops)\n")
        # Prefect's worker stops by sending itself SIGINT: one started with SIGINT ignored (as a script's
        # background job is) would never stop. A handled signal is reset to its default in the worker.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        worker = subprocess.Popen(command, env={**os.environ, "STORYFLOW_HOME": str(settings.home.resolve())})
        # `kill PID` of this command stops its worker too (Ctrl-C reaches both through the terminal)
        signal.signal(signal.SIGTERM, lambda *_: worker.terminate())
        try:
            code = worker.wait()
        except KeyboardInterrupt:
            worker.wait()
            code = 0
    if code not in (0, -2, -15, 130, 143):
        raise StoryflowError(f"the Prefect worker ended with code {code}", fix="rerun with --debug to see its logs")


@ui_app.command("start")
def ui_start(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 4200,
) -> None:
    """Start a Prefect server on 127.0.0.1 and print the UI address."""
    from flows.server import start_server

    state = start_server(_settings().prefect_home, port=port)
    print(f"Prefect UI: {state['ui_url']}  (pid {state['pid']})")
    print("Runs of `storyflow film` / `make film` report there now. Stop it with `make ui-stop`.")


@ui_app.command("stop")
def ui_stop() -> None:
    """Stop the server `storyflow ui start` started."""
    from flows.server import stop_server

    print("stopped" if stop_server(_settings().prefect_home) else "no storyflow Prefect server was running")


@ui_app.command("status")
def ui_status() -> None:
    """Say whether the server is running, and where."""
    from flows.server import running_server

    state = running_server(_settings().prefect_home)
    print(f"running: {state['ui_url']} (pid {state['pid']})" if state else "not running (start it with `make ui`)")
    raise typer.Exit(0 if state else 1)


# ---------------------------------------------------------------- helpers


def _settings(**overrides: Any) -> Any:
    """The settings (every STORYFLOW_ variable, storyflow.core.config) with this command's options over them."""
    from storyflow.core.config import load_settings

    return load_settings(**overrides)


def _debug_setting() -> bool:
    """STORYFLOW_DEBUG, read through the settings; unreadable settings say so later, with their fix."""
    try:
        return _settings().debug
    except StoryflowError:
        return False


def _open_catalog(file: Path | None = None) -> Any:
    """The catalog (that knows `file`): refuses early, with the fix, when there is none yet."""
    from storyflow.catalog import Catalog, open_storage

    settings = _settings()
    if file is not None and not file.exists():
        raise InputError(f"no such file: {file}", fix="pass the path of a file storyflow wrote under outputs/")
    catalog_file = settings.home / "catalog.db"
    if not settings.catalog_url.get_secret_value() and not catalog_file.exists():
        raise InputError(
            f"no catalog at {catalog_file}",
            fix="make a film first (make film STORY=...), or set STORYFLOW_HOME to the folder that holds catalog.db",
        )
    return Catalog.open(settings.resolved_catalog_url, settings.home.resolve(), storage=open_storage(settings))


def _print(data: Any, as_json: bool, formatter: Any) -> None:
    """One JSON object on stdout, or the formatter's text."""
    if as_json:
        print(json.dumps(data, indent=2, default=str, ensure_ascii=True))  # \u escapes: inert on a terminal
    else:
        print(strip_controls(formatter(data)), end="")


SCHEDULES_NEED = "schedules live in a Prefect server"


@contextlib.contextmanager
def _prefect(settings: Any, *, lasting: str = "") -> Iterator[None]:
    """Point Prefect at our output folder and at a server, before Prefect is imported.

    A server `make ui` keeps running (or PREFECT_API_URL) is used as it is; without one, a
    temporary server runs for this command alone and dies with it, however it ends. `lasting`
    says why a temporary server will not do (a schedule must outlive the command; workers on
    other machines must reach the server), and makes its absence an error.
    """
    from flows.server import prefect_env, running_server, temporary_server

    settings.prefect_home.mkdir(parents=True, exist_ok=True)  # Prefect warns if it cannot create it
    os.environ.update(prefect_env(settings.prefect_home, keep_home=True))
    if not _debug:
        os.environ.setdefault("PREFECT_SERVER_LOGGING_LEVEL", "CRITICAL")  # a server's shutdown noise
        # A log line Prefect cannot deliver (its API down, the disk full) would print "--- Error logging to
        # API ---" and half a sentence before our error line; Python's switch for production silences it.
        import logging

        logging.raiseExceptions = False
    if os.environ.get("PREFECT_API_URL"):
        yield
        return
    server = running_server(settings.prefect_home)
    if server:
        os.environ["PREFECT_API_URL"] = server["api_url"]
        sys.stderr.write(f"reporting to the Prefect UI at {server['ui_url']}\n")
        yield
        return
    if lasting:
        raise StoryflowError(f"{lasting}, and none is running",
                             fix="start one with `storyflow ui start` (or `make ui`), or set PREFECT_API_URL")  # fmt: skip
    sys.stderr.write("starting a temporary Prefect server for this run (`make ui` keeps one running)\n")
    with temporary_server(settings.prefect_home) as api_url:
        os.environ["PREFECT_API_URL"] = api_url
        yield


def _film_flow(settings: Any, story: str | Path, choices: Any, *, lasting: str = "", **run: Any) -> dict:
    """Run the film flow in this process (see `_prefect` for its server and `lasting`), its progress on the
    terminal; `run`: run_film's keyword arguments. Returns the film's summary."""
    with _prefect(settings, lasting=lasting):
        from flows.film import run_film
        from storyflow.core import progress
        from storyflow.core.memory import exempt_loaded_objects

        exempt_loaded_objects()  # Prefect and the flows are in: the collector leaves them be
        _quiet_prefect_run_logs()
        progress.set_reporter(text.TerminalProgress(sys.stderr))
        try:
            return run_film(story, choices, **run)
        finally:
            progress.set_reporter(None)


def _quiet_prefect_run_logs() -> None:
    """Prefect's flow and task run logs (a failed task's ERROR line and traceback among them) go to
    its API, where the UI shows them, and not to the terminal: there storyflow's own progress,
    warnings and error:/fix: lines say what matters. `--debug` shows them too."""
    import logging

    if not _debug:
        for name in ("prefect.flow_runs", "prefect.task_runs"):
            logging.getLogger(name).propagate = False


def _shot_id(value: str, option: str = "--force-shot") -> str:
    """'3', 's3' or 's03' -> 's03' (shot ids are 's' and a two-digit number)."""
    import re

    match = re.fullmatch(r"s?(\d+)", value.strip().lower())
    if not match or int(match.group(1)) < 1:
        raise InputError(f"{option} expects a shot number or id, got '{value}'",
                         fix=f"pass it as {option} 3 or {option} s03 (see `storyflow plan STORY`)"
                         if option.startswith("--") else "give the shot as 3 or s03 (see the film's summary.json)")  # fmt: skip
    return f"s{int(match.group(1)):02d}"


def main() -> None:
    """Entry point: run the app; turn StoryflowError into a message and an exit code."""
    import signal

    from storyflow.core.memory import limit_malloc_arenas, no_collection_at_exit

    limit_malloc_arenas()  # before any thread starts (see storyflow/core/memory.py)
    no_collection_at_exit()  # first registered: the last atexit handler to run
    for stream in (sys.stdout, sys.stderr):  # a terminal or pipe that cannot show a title's characters gets escapes
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    # SIGTERM (a scheduler, `kill PID`) ends a run as Ctrl-C does: through its cleanup, not mid-write
    signal.signal(signal.SIGTERM, _terminate)
    try:
        app()
    except StoryflowError as exc:
        if _debug:
            raise
        home = _home_for_errors()
        if not isinstance(exc, InputError) and disk_full(home):  # the failure behind the failure
            exc = unexpected_failure(exc, home)
        _fail(exc)
    except (KeyboardInterrupt, SystemExit) as exc:  # typer turns Ctrl-C into exit 130
        if isinstance(exc, SystemExit) and not (
            exc.code == 130 and any(isinstance(cause, KeyboardInterrupt) for cause in cause_chain(exc))
        ):
            raise
        _stopped(terminated=_terminated)
    except Exception as exc:  # anything else still ends in an error line, not a traceback (--debug shows it)
        if _debug:
            raise
        _fail(unexpected_failure(exc, _home_for_errors()))
    except BaseException as exc:  # Prefect's own SIGTERM bridge, armed while a flow runs, raises TerminationSignal
        if getattr(exc, "signal", None) != signal.SIGTERM or _debug:
            raise
        _stopped(terminated=True)


_terminated = False


KEPT = "what it finished (clips, narration, music) is kept and reused"


def _fail(error: StoryflowError, exit_code: int | None = None) -> None:
    """The error's two lines on stderr, terminal-safe, and its exit code."""
    print(strip_controls(f"error: {error.message}"), file=sys.stderr)
    if error.fix:
        print(strip_controls(f"  fix: {error.fix}"), file=sys.stderr)
    sys.exit(error.exit_code if exit_code is None else exit_code)


def _stopped(*, terminated: bool) -> None:
    """A run stopped by Cancel in the Prefect UI (delivered as a supervisor's SIGTERM: flows/cancel.py), by
    SIGTERM (exit 143) or by Ctrl-C (exit 130), as the shell counts signals."""
    from flows import cancel

    if cancel.requested():
        _fail(StoryflowError("the run was cancelled in the Prefect UI", fix=f"run the same command again: {KEPT}"))
    how = "terminated (SIGTERM)" if terminated else "interrupted (Ctrl-C)"
    _fail(StoryflowError(f"{how} before it finished", fix=f"run the same command again: {KEPT}"),
          exit_code=143 if terminated else 130)  # fmt: skip


def _terminate(signum: int, frame: Any) -> None:
    global _terminated
    _terminated = True
    raise KeyboardInterrupt


def _home_for_errors() -> Path | None:
    try:
        return _settings().home
    except StoryflowError:
        return None


if __name__ == "__main__":
    main()
