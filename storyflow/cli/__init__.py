"""The storyflow command line: parse arguments, call a stage or the flow, print, map errors.

The top layer: it may import everything below it (flows, stages, the catalog's public API,
backends, media, core); nothing imports it. Heavy modules (Prefect, numpy, SQLAlchemy,
PyAV) are imported inside the commands, so `storyflow --help` answers at once. Errors print
a message and the fix, and exit non-zero; `--debug` (or STORYFLOW_DEBUG=1) shows the
traceback instead.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from storyflow.core.errors import InputError, StoryflowError

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

_debug = False

StoryArg = Annotated[Path, typer.Argument(help="Story file: Markdown or plain text, optional YAML front matter.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object (last on stdout).")]
LLMOpt = Annotated[str | None, typer.Option("--llm", help="LLM backend that plans and writes prompts.")]
SeedOpt = Annotated[int | None, typer.Option("--seed", help="Override the story's seed.")]
LLMOptionsOpt = Annotated[
    list[str] | None, typer.Option("--llm-option", help="LLM backend option KEY=VALUE (repeatable).")
]


@app.callback()
def _main(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks and Prefect's own logs.")] = False,
) -> None:
    """storyflow: story -> shot list -> prompts -> clips -> sound -> film, with provenance."""
    global _debug
    _debug = debug or os.environ.get("STORYFLOW_DEBUG", "") not in ("", "0", "false")


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
    speech_backend: Annotated[str | None, typer.Option("--speech-backend", help="Narration (TTS) backend.")] = None,
    voice: Annotated[str | None, typer.Option("--voice", help="Narrator voice, e.g. en-gb or en-us+f3.")] = None,
    speech_option: Annotated[
        list[str] | None, typer.Option("--speech-option", help="Speech backend option KEY=VALUE (repeatable).")
    ] = None,
    narration_fit: Annotated[
        str | None, typer.Option("--narration-fit", help="Line longer than its shot: stretch, pace, or auto.")
    ] = None,
    effects_backend: Annotated[str | None, typer.Option("--effects-backend", help="Sound effects backend.")] = None,
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
    credentials: Annotated[
        bool | None, typer.Option("--credentials/--no-credentials", help="Sign the film with C2PA Content Credentials.")
    ] = None,
    sign_clips: Annotated[
        bool | None, typer.Option("--sign-clips/--no-sign-clips", help="Sign every new clip with C2PA too.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Make a film from a story: plan, narrate, prompt, generate, score, mix, stitch, record.

    Anything made before from the same inputs is reused (checked against its sha256);
    --force and --force-shot make it again.
    """
    from storyflow.backends.registry import load_backend, parse_option_pairs
    from storyflow.core.config import load_settings
    from storyflow.stages.story import read_story

    started = time.perf_counter()
    settings = load_settings(
        video_backend=video_backend, llm=llm, music_backend=music_backend, speech_backend=speech_backend,
        effects_backend=effects_backend, voice=voice, narration_fit=narration_fit, target_lufs=loudness,
        burn_subtitles=burn_subtitles, stitch=stitch, max_concurrency=concurrency, credentials=credentials,
        sign_clips=sign_clips,
    )  # fmt: skip
    # 1. validate everything before anything is written or Prefect starts
    read_story(story)
    forced_shots = [_shot_id(value) for value in force_shot or []]
    video_options = parse_option_pairs(video_option, "--video-option")
    llm_options = parse_option_pairs(llm_option, "--llm-option")
    speech_options = parse_option_pairs(speech_option, "--speech-option")
    if settings.voice:
        speech_options.setdefault("voice", settings.voice)
    for kind, name, options in (
        ("llm", settings.llm, llm_options),
        ("video", settings.video_backend, video_options),
        ("music", settings.music_backend, {}),
        ("speech", settings.speech_backend, speech_options),
        ("effects", settings.effects_backend, {}),
    ):
        load_backend(kind, name, options).check_available()

    # 2. run the flow
    _prefect_environment(settings)
    from flows.film import FilmOptions, run_film
    from storyflow.core import progress

    options = FilmOptions(
        story=str(story), llm=settings.llm, llm_options=llm_options, video_backend=settings.video_backend,
        video_options=video_options, music_backend=settings.music_backend, speech_backend=settings.speech_backend,
        speech_options=speech_options, effects_backend=settings.effects_backend,
        narration_fit=settings.narration_fit, target_lufs=settings.target_lufs,
        burn_subtitles=settings.burn_subtitles, seed=seed, home=str(settings.home.resolve()),
        force=force, force_shots=forced_shots, credentials=settings.credentials, sign_clips=settings.sign_clips,
        catalog_url=settings.catalog_url, max_concurrency=settings.max_concurrency, stitch=settings.stitch,
    )  # fmt: skip
    progress.set_reporter(_TerminalProgress())
    try:
        summary = run_film(options)
    finally:
        progress.set_reporter(None)
    summary["wall_s"] = round(time.perf_counter() - started, 3)
    if as_json:
        print(json.dumps(summary, indent=2))
    else:
        _print_film_summary(summary)


@app.command("plan")
def plan_command(story: StoryArg, llm: LLMOpt = None, seed: SeedOpt = None, llm_option: LLMOptionsOpt = None,
                 as_json: JsonOpt = False) -> None:  # fmt: skip
    """Plan a story into shots and print the storyboard (writes nothing)."""
    from storyflow.backends.registry import load_backend, parse_option_pairs
    from storyflow.core.config import load_settings
    from storyflow.core.timeline import film_timeline
    from storyflow.stages.plan import plan_storyboard, storyboard_json
    from storyflow.stages.story import read_story

    settings = load_settings(llm=llm)
    parsed = read_story(story)
    if seed is not None:
        parsed = parsed.model_copy(update={"seed": seed})
    backend = load_backend("llm", settings.llm, parse_option_pairs(llm_option, "--llm-option"))
    backend.check_available()
    board = plan_storyboard(parsed, backend)
    if as_json:
        print(storyboard_json(board))
        return
    timeline = film_timeline(board)
    print(f"{board.title}: {len(board.shots)} shots, {timeline.seconds:.1f} s, "
          f"{board.width}x{board.height} @ {board.fps} fps, seed {board.seed}")  # fmt: skip
    for shot in board.shots:
        link = "↳ " if shot.continues_previous else "  "
        who = ", ".join(shot.characters) or "-"
        notes = ([f"{len(shot.prompt_changes)} change(s) at " + ", ".join(f"{c.at:g}s" for c in shot.prompt_changes)]
                 if shot.prompt_changes else []) + (["loop"] if shot.loop else [])  # fmt: skip
        extra = f"  [{'; '.join(notes)}]" if notes else ""
        print(f"{link}{shot.id}  {shot.camera.value:<15} {shot.duration:5.1f} s  {shot.mood:<11} "
              f"{shot.transition.value:<9} {who:<16} {_clip(shot.narration or shot.action, 60)}{extra}")  # fmt: skip


@app.command()
def provenance(
    file: Annotated[Path, typer.Argument(help="Any file storyflow made: film, clip, audio, poster, subtitles.")],
    as_json: JsonOpt = False,
) -> None:
    """Show how a file was made, back to the story: prompts, models, seeds, parents."""
    from storyflow.catalog.provenance import format_provenance

    with _open_catalog(file) as catalog:
        tree = catalog.provenance(file)
    print(json.dumps(tree, indent=2, default=str) if as_json else format_provenance(tree))


def _open_catalog(file: Path | None = None) -> Any:
    """The catalog (that knows `file`): refuses early, with the fix, when there is none yet."""
    from storyflow.catalog import Catalog
    from storyflow.core.config import load_settings

    settings = load_settings()
    if file is not None and not file.exists():
        raise InputError(f"no such file: {file}", fix="pass the path of a file storyflow wrote under outputs/")
    catalog_file = settings.home / "catalog.db"
    if not settings.catalog_url and not catalog_file.exists():
        raise InputError(
            f"no catalog at {catalog_file}",
            fix="make a film first (make film STORY=...), or set STORYFLOW_HOME to the folder that holds catalog.db",
        )
    return Catalog.open(settings.resolved_catalog_url, settings.home.resolve())


@app.command()
def shots(
    film: Annotated[Path, typer.Argument(help="A film storyflow made (or its poster, subtitles, stems).")],
    as_json: JsonOpt = False,
) -> None:
    """List a film's shots and their segments: path, parent, strategy, seconds, seam score."""
    from storyflow.catalog import format_shots

    with _open_catalog(film) as catalog:
        tree = catalog.film_shots(film)
    print(json.dumps(tree, indent=2, default=str) if as_json else format_shots(tree))


@app.command()
def backends(as_json: JsonOpt = False) -> None:
    """List the backends storyflow can use, with their capabilities and options."""
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
            entry.update(version=cls.version, description=cls.description, options={
                key: {"type": getattr(f.annotation, "__name__", str(f.annotation)), "default": f.default,
                      "help": f.description or ""}
                for key, f in cls.Options.model_fields.items()
            })  # fmt: skip
            if issubclass(cls, VideoBackend):
                entry["capabilities"] = cls().capabilities.as_dict()
            listing[kind].append(entry)
    if as_json:
        print(json.dumps(listing, indent=2, default=str))
        return
    for kind, entries in listing.items():
        print(f"{kind}:")
        for entry in entries:
            print(f"  {entry['name']:<12} {entry.get('description') or entry.get('error', '')}")
            caps = entry.get("capabilities")
            if caps:
                can = [k for k in ("text_to_video", "image_to_video", "extend_from_video", "extend_backward",
                                   "last_frame", "native_audio") if caps[k]]  # fmt: skip
                print(f"  {'':<12} clips up to {caps['max_clip_seconds']:g} s; {', '.join(can)}")
            for key, opt in entry.get("options", {}).items():
                print(f"  {'':<12} option {key} ({opt['type']}, default {opt['default']!r}) {opt['help']}")


@catalog_app.command("films")
def catalog_films(as_json: JsonOpt = False) -> None:
    """List the films in the catalog, newest first."""
    with _open_catalog() as catalog:
        films = catalog.films()
    if as_json:
        print(json.dumps(films, indent=2, default=str))
        return
    for film in films:
        print(f"#{film['id']:<4} {film.get('created', '')!s:<26} {film.get('duration', 0) or 0:6.1f} s  "
              f"{film.get('title', '')}  {film.get('path', '')}")  # fmt: skip
    if not films:
        print("no films yet: make one with `make film STORY=stories/lighthouse.md`")


@catalog_app.command("runs")
def catalog_runs(
    limit: Annotated[int, typer.Option(help="How many of the newest runs.")] = 20, as_json: JsonOpt = False
) -> None:
    """List runs: when, status, and how much each generated versus reused."""
    with _open_catalog() as catalog:
        runs = catalog.runs(limit)
    if as_json:
        print(json.dumps(runs, indent=2, default=str))
        return
    for run in runs:
        made = run.get("generations") or {}
        tally = ", ".join(f"{kind} {n['made']}+{n['reused']}r" for kind, n in made.items()) or (
            f"clips {run.get('clips_generated', 0)} made, {run.get('clips_reused', 0)} reused")
        print(f"#{run['id']:<4} {run.get('status', ''):<9} {run.get('started_at', '')!s:<26} "
              f"{run.get('story_source') or ''}  {tally}")  # fmt: skip


@catalog_app.command("run")
def catalog_run(run_id: Annotated[int, typer.Argument(help="A run id (see `storyflow catalog runs`).")],
                as_json: JsonOpt = False) -> None:  # fmt: skip
    """Show what one run generated and what it reused."""
    with _open_catalog() as catalog:
        detail = catalog.run_detail(run_id)
    if as_json:
        print(json.dumps(detail, indent=2, default=str))
        return
    run = detail["run"]
    print(f"run #{run['id']}  {run.get('status')}  {run.get('story_source') or ''}  started {run.get('started_at')}")
    for what in ("generated", "reused"):
        items = detail.get(what, [])
        print(f"{what}: {len(items)}")
        for item in items:
            where = f"{item.get('shot_key', '')} {item.get('segment', '')}".strip()
            print(f"  {item.get('kind', ''):<10} {where:<8} {item.get('path', '')}")


@catalog_app.command("verify")
def catalog_verify(
    repair: Annotated[bool, typer.Option("--repair", help="Fix what is wrong: drop rows whose files are gone or "
                                         "changed, move stray files to .orphans/, delete unfinished files.")] = False,
    as_json: JsonOpt = False,
) -> None:  # fmt: skip
    """Check that every row's file is there and unchanged, and every file has a row. Exit 0 when all is well."""
    from storyflow.core import locks
    from storyflow.core.config import load_settings

    home = load_settings().home
    with locks.hold(home, on_wait=lambda who: sys.stderr.write(f"waiting for running films to finish ({who})\n")):
        with _open_catalog() as catalog:
            report = catalog.verify(repair=repair)
            after = catalog.verify() if repair else report
    if as_json:
        print(json.dumps({**report, "ok_after": after["ok"]}, indent=2, default=str))
    else:
        _print_verify(report, repair)
        if repair:
            print("all is well now" if after["ok"] else "some problems remain: run `storyflow catalog verify`")
    raise typer.Exit(0 if after["ok"] else 1)


def _print_verify(report: dict[str, Any], repair: bool) -> None:
    labels = {
        "rows_without_files": "rows whose file is gone",
        "hash_mismatches": "files changed since they were recorded",
        "files_without_rows": "files no row claims",
        "partial_files": "unfinished files left by a killed run",
    }
    if report["ok"]:
        print("catalog and files agree: every row has its file, every file its row, all hashes match")
        return
    for key, label in labels.items():
        items = report.get(key, [])
        if items:
            print(f"{label}: {len(items)}")
            for item in items[:20]:
                print(f"  {item.get('path', item) if isinstance(item, dict) else item}")
            if len(items) > 20:
                print(f"  ... and {len(items) - 20} more")
    if repair:
        print(f"repaired: {len(report.get('repaired', []))} item(s)")
    else:
        print("fix: run `storyflow catalog verify --repair` (it moves stray files to .orphans/, never deletes them)")


@app.command("verify")
def verify_credentials(
    file: Annotated[Path, typer.Argument(help="A film (or clip) to check for C2PA Content Credentials.")],
    as_json: JsonOpt = False,
) -> None:
    """Read and validate a file's C2PA Content Credentials. Exit 0 when they are present and valid."""
    from storyflow.core.config import load_settings
    from storyflow.media import credentials

    if not file.exists():
        raise InputError(f"no such file: {file}", fix="pass the path of a film storyflow made")
    report = credentials.verify_media(file, home=load_settings().home)
    if as_json:
        print(json.dumps(report.as_record(), indent=2, default=str))
    else:
        print(report.describe())
    raise typer.Exit(0 if report.has_manifest and report.valid else 1)


@ui_app.command("start")
def ui_start(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 4200,
) -> None:
    """Start a Prefect server on 127.0.0.1 and print the UI address."""
    from flows.server import start_server
    from storyflow.core.config import load_settings

    state = start_server(load_settings().prefect_home, port=port)
    print(f"Prefect UI: {state['ui_url']}  (pid {state['pid']})")
    print("Runs of `storyflow film` / `make film` report there now. Stop it with `make ui-stop`.")


@ui_app.command("stop")
def ui_stop() -> None:
    """Stop the server `storyflow ui start` started."""
    from flows.server import stop_server
    from storyflow.core.config import load_settings

    print("stopped" if stop_server(load_settings().prefect_home) else "no storyflow Prefect server was running")


@ui_app.command("status")
def ui_status() -> None:
    """Say whether the server is running, and where."""
    from flows.server import running_server
    from storyflow.core.config import load_settings

    state = running_server(load_settings().prefect_home)
    print(f"running: {state['ui_url']} (pid {state['pid']})" if state else "not running (start it with `make ui`)")
    raise typer.Exit(0 if state else 1)


# ---------------------------------------------------------------- helpers


def _prefect_environment(settings: Any) -> None:
    """Point Prefect at our output folder and at the running UI server, before importing it."""
    from flows.server import prefect_env, running_server

    settings.prefect_home.mkdir(parents=True, exist_ok=True)  # Prefect warns if it cannot create it
    for key, value in prefect_env(settings.prefect_home).items():
        if key == "PREFECT_HOME" and os.environ.get("PREFECT_HOME"):
            continue  # the user chose where Prefect keeps its state
        os.environ[key] = value
    if not os.environ.get("PREFECT_API_URL"):
        server = running_server(settings.prefect_home)
        if server:
            os.environ["PREFECT_API_URL"] = server["api_url"]
            sys.stderr.write(f"reporting to the Prefect UI at {server['ui_url']}\n")
        else:
            sys.stderr.write("starting a temporary Prefect server for this run (`make ui` keeps one running)\n")
    if not _debug:
        # our own progress lines replace Prefect's console log; the UI still gets every log
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_FLOW_RUNS_LEVEL", "WARNING")
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_TASK_RUNS_LEVEL", "WARNING")
        # a temporary server's event services may log a cancelled flush as it shuts down after
        # a short run: noise about the server, not the film (`--debug` shows it)
        os.environ.setdefault("PREFECT_SERVER_LOGGING_LEVEL", "CRITICAL")


class _TerminalProgress:
    """Prints one line per progress event on stderr (stdout stays clean for --json)."""

    def __call__(self, event: str, fields: dict[str, Any]) -> None:
        line = self.format(event, fields)
        if line:
            # write, not print: inside a flow run Prefect may capture print() as log records
            sys.stderr.write(line + "\n")
            sys.stderr.flush()

    @staticmethod
    def format(event: str, f: dict[str, Any]) -> str:
        if event == "plan":
            return (f"planned '{f['title']}': {f['shots']} shots, {f['seconds']:.1f} s, "
                    f"{f['width']}x{f['height']} @ {f['fps']} fps")  # fmt: skip
        if event == "clip":
            what = "reused   " if f["reused"] else f"generated in {f['wall_s']:.1f} s"
            part = f" [{f['segment'] + 1}/{f['segments']}]" if f["segments"] > 1 else ""
            seam = f"  seam {f['seam']:.2f}" if f.get("seam") is not None else ""
            drift = "  drift corrected" if f.get("drift") else ""
            return f"  {f['shot']}{part:<7} {f['strategy']:<15} {f['seconds']:4.1f} s  {what}{seam}{drift}"
        if event == "narration":
            return f"  {f['shot']:<14} narration {f['seconds']:.1f} s {'reused' if f['reused'] else 'spoken'}"
        if event == "audio":
            return f"  {f['kind']:<14} {'reused' if f['reused'] else 'composed'}"
        if event == "stitch":
            return f"stitching ({f['strategy']})"
        if event == "waiting":
            return f"waiting for {f['what']} to finish ({f['holder']}); it then reuses everything that run made"
        return ""


def _print_film_summary(summary: dict[str, Any]) -> None:
    print(f"\n{summary['title']}: {summary['duration_s']:.1f} s, {summary['width']}x{summary['height']} "
          f"@ {summary['fps']} fps, {len(summary['shots'])} shots")  # fmt: skip
    for shot in summary["shots"]:
        link = "↳" if shot["continues_previous"] else " "
        state = f"{shot['clips_generated']} generated" if shot["clips_generated"] else "reused"
        print(f" {link}{shot['id']}  {shot['camera']:<15} {shot['seconds']:5.1f} s  "
              f"{len(shot['segments'])} seg  {state:<12} {_clip(shot['narration'], 50)}")  # fmt: skip
    seams, sound = summary["seams"], summary["sound"]
    print(f"\nclips: {summary['clips_generated']} generated, {summary['clips_reused']} reused; "
          f"{summary['stitch']}; {summary['wall_s']:.1f} s")  # fmt: skip
    if seams["count"]:
        print(f"seams: {seams['count']}, median ratio {seams['median_ratio']:.2f}, max {seams['max_ratio']:.2f}"
              + (f"; {len(seams['visible'])} VISIBLE" if seams["visible"] else "; none visible"))  # fmt: skip
    print(f"sound: {sound['loudness_lufs']:.1f} LUFS (target {sound['target_lufs']:g}), "
          f"{sound['narration_lines']} narration lines, music ducked {sound['music_ducked_db']:g} dB under speech")
    for key in ("film", "subtitles", "poster", "contact_sheet", "catalog"):
        print(f"  {key:<14} {summary[key]}")
    if summary["stems"]:
        print(f"  {'stems':<14} {Path(next(iter(summary['stems'].values()))).parent}/")


def _shot_id(value: str) -> str:
    """'3', 's3' or 's03' -> 's03' (shot ids are 's' and a two-digit number)."""
    import re

    match = re.fullmatch(r"s?(\d+)", value.strip().lower())
    if not match or int(match.group(1)) < 1:
        raise InputError(f"--force-shot expects a shot number or id, got '{value}'",
                         fix="pass it as --force-shot 3 or --force-shot s03 (see `storyflow plan STORY`)")  # fmt: skip
    return f"s{int(match.group(1)):02d}"


def _clip(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def main() -> None:
    """Entry point: run the app; turn StoryflowError into a message and an exit code."""
    try:
        app()
    except StoryflowError as exc:
        if _debug:
            raise
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.fix:
            print(f"  fix: {exc.fix}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        print("interrupted; finished clips are kept and will be reused", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
