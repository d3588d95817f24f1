"""The nightly flow: every story in a folder rendered, each on its own, and a report of the night.

Each story is one film flow run (a subflow named after the story), one after another: a
story that fails (a bad file, a refused prompt, a spent budget) is reported and the next one
starts. An unchanged story costs nothing and starts no flow run: the catalog answers it
(storyflow.stages.unchanged). With a pool (`storyflow schedule --spread`), every story is a
deployment run of the film flow on the pool, all started at once: the pool's workers (GPU
machines) share the night. The night ends with a report, as a Prefect artifact on the nightly run (under
the key nightly-<folder>, so the UI keeps one history per folder) and as files under
$STORYFLOW_HOME/nightly/: what was made, reused and failed, with wall time, cost and the
film's files. A night where a story failed ends Failed, after the report, so the UI shows it.

Scheduled by `storyflow schedule STORIES_DIR --cron ...` (flows/schedules.py) and run by a
Prefect worker (`storyflow serve`); the flow's parameters are the folder and the film
choices: plain data, never a secret (keys are read from the worker's environment).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from flows.film import film_flow_for, total_cost
from storyflow.core.config import FilmChoices, load_settings
from storyflow.core.errors import InputError, StoryflowError
from storyflow.media import atomic_write_text
from storyflow.stages import unchanged
from storyflow.stages.story import slugify

STORY_SUFFIXES = (".md", ".markdown", ".txt")


def stories_in(folder: Path) -> list[Path]:
    """The story files of a folder, in name order (hidden files and sub-folders left out)."""
    if not folder.is_dir():
        raise InputError(f"{folder} is not a folder of stories", fix="give the folder the stories are in, e.g. stories/")
    found = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in STORY_SUFFIXES
                   and not p.name.startswith("."))  # fmt: skip
    if not found:
        raise InputError(f"{folder} holds no story ({', '.join(STORY_SUFFIXES)} files)",
                         fix="put story files in it, or give another folder")  # fmt: skip
    return found


def _night_name() -> str:
    """A night's run, as the UI lists it: nightly-<folder>-<date>."""
    from prefect.runtime import flow_run

    folder = Path(str(flow_run.parameters.get("stories") or "stories")).name
    return f"nightly-{slugify(folder, 40)}-{datetime.now(UTC):%Y-%m-%d}"


@flow(name="storyflow-nightly", flow_run_name=_night_name, log_prints=False)
def nightly_flow(stories: str, choices: FilmChoices | None = None, pool: str | None = None) -> dict[str, Any]:
    """Render every story in the folder `stories` (each its own film flow run) and report the night; with
    `pool`, every film is a deployment run that the pool's workers share, all started at once."""
    settings = load_settings()
    choices = choices or settings.choices()
    folder = Path(stories).resolve()
    started_at, started = datetime.now(UTC), time.perf_counter()
    paths = stories_in(folder)
    entries = _render_on_pool(paths, choices, pool) if pool else [_render(path, choices) for path in paths]  # type: ignore[misc]
    report = {
        "folder": str(folder),
        "started_at": started_at.isoformat(timespec="seconds"),
        "wall_s": round(time.perf_counter() - started, 3),
        "made": sum(entry["status"] == "made" for entry in entries),
        "reused": sum(entry["status"] == "reused" for entry in entries),
        "failed": sum(entry["status"] == "failed" for entry in entries),
        "cost_usd": total_cost(entry.get("cost_usd") for entry in entries),
        "stories": entries,
    }
    files = _write_report(report, settings.home.resolve() / "nightly", started_at)
    report["report"] = str(files["md"])
    create_markdown_artifact(key=f"nightly-{slugify(folder.name, 40)}", markdown=report_markdown(report),
                             description=f"storyflow nightly: {folder}")  # fmt: skip
    if report["failed"]:
        failed = [entry for entry in entries if entry["status"] == "failed"]
        raise StoryflowError(f"{len(failed)} of {len(entries)} stories failed tonight: "
                             + "; ".join(f"{Path(e['story']).name}: {e['error']}" for e in failed),
                             fix=f"read the report, {files['md']}; the other films were made and kept")  # fmt: skip
    get_run_logger().info("night done: %d made, %d reused, in %.0f s; report %s", report["made"], report["reused"],
                          report["wall_s"], files["md"])  # fmt: skip
    return report


def _render(story: Path, choices: FilmChoices, *, pool: str | None = None) -> dict[str, Any] | None:
    """One story's film, as a line of the report: answered from the catalog when unchanged, else a film flow
    run here (None with a pool: the pool makes it); a failure is recorded, never raised."""
    started = time.perf_counter()
    entry: dict[str, Any] = {"story": str(story)}
    try:
        summary = unchanged.answer(story, choices, load_settings())  # an unchanged story needs no flow run
        if summary is None and pool:
            return None
        if summary is None:
            state = film_flow_for(story, choices)(str(story), choices, return_state=True)
            summary = state.result(raise_on_failure=True)
    except Exception as exc:  # noqa: BLE001 - a story's failure goes in the report; the night goes on
        why = exc.message if isinstance(exc, StoryflowError) else f"{type(exc).__name__}: {exc}"
        get_run_logger().warning("%s failed: %s", story.name, why)
        return entry | {"status": "failed", "error": why, "fix": getattr(exc, "fix", None),
                        "wall_s": round(time.perf_counter() - started, 3)}  # fmt: skip
    made_anything = summary["clips_generated"] > 0 or not summary["film_reused"]
    return entry | {
        "status": "made" if made_anything else "reused",
        "title": summary["title"],
        "film": summary["film"],
        "summary": str(Path(summary["film"]).parent / "summary.json"),
        "duration_s": summary["duration_s"],
        "clips_generated": summary["clips_generated"],
        "clips_reused": summary["clips_reused"],
        "cost_usd": summary["cost_usd"],
        "run_id": summary["run_id"],
        "flow_run_id": summary["prefect_flow_run_id"],
        "wall_s": round(time.perf_counter() - started, 3),
    }


def _render_on_pool(stories: list[Path], choices: FilmChoices, pool: str) -> list[dict[str, Any]]:
    """Every story's film as a deployment run on `pool`, all started at once (a worker each, as many as the
    pool has free); each line of the report is read from the catalog every worker records into."""
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment

    from flows.film import _film_name, film_flow
    from flows.pools import deploy_on_pool
    from storyflow.catalog import open_catalog
    from storyflow.catalog.listing import run_outcome

    lines = {story: _render(story, choices, pool=pool) for story in stories}  # None: the pool makes it
    deployment = deploy_on_pool(film_flow, pool, f"storyflow: one film, made by a worker of the pool {pool}")
    started = {story: run_deployment(deployment, timeout=0, as_subflow=True, flow_run_name=_film_name(story),
                                     parameters={"story": str(story), "choices": choices.model_dump(mode="json")})
               for story, line in lines.items() if line is None}  # fmt: skip
    finished = {}
    with get_client(sync_client=True) as client:
        while True:
            for story, run in started.items():
                if story not in finished and (now := client.read_flow_run(run.id)).state and now.state.is_final():
                    finished[story] = now
            if len(finished) == len(started):
                break
            time.sleep(2)

    def entry(story: Path) -> dict[str, Any]:
        run = finished[story]
        line: dict[str, Any] = {"story": str(story), "flow_run_id": str(run.id),
                                "wall_s": round(run.total_run_time.total_seconds(), 3)}  # fmt: skip
        with open_catalog(load_settings()) as catalog:
            outcome = run_outcome(catalog, str(run.id))
        if not run.state.is_completed() or outcome is None:
            why = (outcome or {}).get("error") or run.state.message or f"its run ended {run.state.name}"
            get_run_logger().warning("%s failed: %s", story.name, why)
            return line | {"status": "failed", "error": why, "fix": "see its flow run in the Prefect UI"}
        made_anything = outcome["clips_generated"] > 0 or outcome["film_made"]
        return line | {"status": "made" if made_anything else "reused", "title": outcome["title"],
                       "film": outcome["film"], "film_url": outcome["film_url"],
                       "summary": str(Path(outcome["film"]).parents[2] / "summary.json"),  # <film folder>/films/<key>/
                       "duration_s": outcome["duration_s"], "clips_generated": outcome["clips_generated"],
                       "clips_reused": outcome["clips_reused"], "cost_usd": outcome["cost_usd"],
                       "run_id": outcome["run_id"], "host": outcome["host"]}  # fmt: skip

    return [line if line is not None else entry(story) for story, line in lines.items()]


def report_markdown(report: dict[str, Any]) -> str:
    """The night as a table: one line per story, what happened, how long, what it cost, where the film is."""
    rows = []
    for entry in report["stories"]:
        what = entry["status"] if entry["status"] != "failed" else f"**failed**: {entry['error']}"
        clips = f"{entry['clips_generated']} made, {entry['clips_reused']} reused" if "clips_generated" in entry else ""
        cost = f"${entry['cost_usd']:.2f}" if entry.get("cost_usd") is not None else ""
        film = f"[{Path(entry['film']).name}]({_link(entry)})" if entry.get("film") else ""
        rows.append(f"| {Path(entry['story']).name} | {what.replace('|', '/')} | {clips} | {entry['wall_s']:.1f} s | "
                    f"{cost} | {film} |")  # fmt: skip
    cost = f", ${report['cost_usd']:.2f}" if report["cost_usd"] is not None else ""
    return (f"# Nightly: {report['folder']}\n\n{report['started_at']}: {report['made']} made, {report['reused']} "
            f"reused, {report['failed']} failed in {report['wall_s']:.0f} s{cost}.\n\n"
            "| story | tonight | clips | wall | cost | film |\n|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n")


def _link(entry: dict[str, Any]) -> str:
    """Where the report's reader finds a film: here, else in the storage every machine shares."""
    if entry.get("film_url") and not Path(entry["film"]).is_file():
        return entry["film_url"]
    return f"file://{entry['film']}"


def _write_report(report: dict[str, Any], folder: Path, started_at: datetime) -> dict[str, Path]:
    """The report as Markdown (for people) and JSON (for tools), named after the night and the folder."""
    import json

    stem = f"{started_at:%Y-%m-%dT%H%M%SZ}-{slugify(Path(report['folder']).name, 40)}"
    paths = {"md": folder / f"{stem}.md", "json": folder / f"{stem}.json"}
    report = report | {"report": str(paths["md"])}
    atomic_write_text(paths["json"], json.dumps(report, indent=2, default=str) + "\n")
    atomic_write_text(paths["md"], report_markdown(report))
    return paths
