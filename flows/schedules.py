"""Nightly schedules: Prefect deployments of the nightly flow, run by a Prefect process worker.

`storyflow schedule STORIES_DIR --cron "0 2 * * *"` creates (or updates) a deployment of
flows/nightly.py in a process work pool ("storyflow" unless told otherwise), with an explicit
time zone; `storyflow serve` starts a worker for that pool, which starts a process per
nightly run (any machine whose worker polls the pool can take it). The deployment names its
flow by module path (flows.nightly:nightly_flow), so a worker needs storyflow installed, not
a copy of the code. Schedules live in a Prefect server (`storyflow ui start`, or
PREFECT_API_URL): a temporary server would forget them.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import sys
from pathlib import Path
from typing import Any

from flows import pools
from storyflow.core.config import FilmChoices
from storyflow.core.errors import InputError

FLOW_NAME = "storyflow-nightly"
DEFAULT_POOL = "storyflow"
SCHEDULE_TAG = "storyflow-nightly"


def local_timezone() -> str:
    """This machine's IANA time zone name (TZ, /etc/timezone, /etc/localtime), else UTC."""
    candidates = [os.environ.get("TZ", "").lstrip(":")]
    try:
        candidates.append(Path("/etc/timezone").read_text().strip())
    except OSError:
        pass
    try:
        candidates.append(str(Path("/etc/localtime").resolve()).split("zoneinfo/", 1)[1])
    except (OSError, IndexError):
        pass
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    for name in candidates:
        try:
            if name and ZoneInfo(name):
                return name
        except (ZoneInfoNotFoundError, ValueError):
            continue
    return "UTC"


def next_runs(cron: str, timezone: str, count: int = 1) -> list[str]:
    """The next `count` times `cron` fires in `timezone`, as ISO text with the zone's offset; InputError if invalid."""
    import asyncio

    from pydantic import ValidationError
    from prefect.server.schemas.schedules import CronSchedule

    try:
        schedule = CronSchedule(cron=cron, timezone=timezone)
    except ValidationError as exc:
        said = "; ".join(str(error["msg"]).removeprefix("Value error, ") for error in exc.errors())
        raise InputError(f"--cron {cron!r} --timezone {timezone}: {said}",
                         fix='give five cron fields and an IANA zone, e.g. --cron "0 2 * * *" --timezone Europe/Paris')  # fmt: skip
    return [date.isoformat() for date in asyncio.run(schedule.get_dates(n=count))]


def schedule_name(folder: Path) -> str:
    """The deployment name for a folder of stories: nightly-<folder>."""
    return "nightly-" + (re.sub(r"[^a-z0-9]+", "-", folder.resolve().name.lower()).strip("-") or "stories")


def create(folder: Path, cron: str, timezone: str, choices: FilmChoices, *, name: str | None = None,
           pool: str = DEFAULT_POOL, spread: bool = False) -> dict[str, Any]:  # fmt: skip
    """Create or update the nightly deployment of `folder`; the work pool is made if missing. `spread`: each
    film is a run of its own on the pool, so the pool's workers share the night."""
    from prefect.deployments.runner import EntrypointType
    from prefect.schedules import Cron

    from flows.nightly import nightly_flow, stories_in

    # 1. check everything before anything is created
    folder = folder.resolve()
    stories_in(folder)
    upcoming = next_runs(cron, timezone, 2)
    name = name or schedule_name(folder)
    # 2. the process work pool its runs go to (a worker started by `storyflow serve` polls it)
    pools.ensure_pool(pool)
    # 3. the deployment: the flow by module path, the folder and film choices as parameters (never a secret)
    with contextlib.redirect_stdout(io.StringIO()):  # Prefect's own table and hints: storyflow says what it did
        deployment_id = nightly_flow.deploy(
            name=name, work_pool_name=pool, build=False, push=False, schedule=Cron(cron, timezone=timezone),
            parameters={"stories": str(folder), "choices": choices.model_dump(mode="json"),
                        "pool": pool if spread else None},
            entrypoint_type=EntrypointType.MODULE_PATH, tags=[SCHEDULE_TAG], print_next_steps=False,
            ignore_warnings=True, description=f"storyflow: render every story in {folder}",
        )  # fmt: skip
    return {"name": name, "deployment": f"{FLOW_NAME}/{name}", "id": str(deployment_id), "folder": str(folder),
            "cron": cron, "timezone": timezone, "pool": pool, "spread": spread, "next_runs": upcoming}  # fmt: skip


def listing() -> list[dict[str, Any]]:
    """Every nightly schedule: name, folder, cron and time zone, paused or not, its next run, its pool."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    with get_client(sync_client=True) as client:
        deployments = client.read_deployments(flow_filter=FlowFilter(name=FlowFilterName(any_=[FLOW_NAME])))
    found = []
    for deployment in sorted(deployments, key=lambda d: d.name):
        crons = [s.schedule for s in deployment.schedules if getattr(s.schedule, "cron", None)]
        cron, timezone = (crons[0].cron, crons[0].timezone or "UTC") if crons else (None, None)
        found.append({"name": deployment.name, "deployment": f"{FLOW_NAME}/{deployment.name}",
                      "folder": (deployment.parameters or {}).get("stories"), "cron": cron, "timezone": timezone,
                      "paused": bool(deployment.paused), "pool": deployment.work_pool_name,
                      "next_run": next_runs(cron, timezone)[0] if cron and not deployment.paused else None})  # fmt: skip
    return found


def pause(name: str) -> None:
    """Pause a nightly schedule (its deployment): no run is made until it is resumed."""
    _deployment(name, lambda client, deployment: client.pause_deployment(deployment.id))


def resume(name: str) -> None:
    """Resume a paused nightly schedule."""
    _deployment(name, lambda client, deployment: client.resume_deployment(deployment.id))


def remove(name: str) -> None:
    """Remove a nightly schedule (its deployment); the films and reports it made stay."""
    _deployment(name, lambda client, deployment: client.delete_deployment(deployment.id))


def run_now(name: str) -> str:
    """Start a run of a nightly schedule now (a worker of its pool takes it); returns the flow run's id."""
    found: list[str] = []

    def start(client, deployment) -> None:
        found.append(str(client.create_flow_run_from_deployment(deployment.id, tags=[SCHEDULE_TAG]).id))

    _deployment(name, start)
    return found[0]


def _deployment(name: str, action) -> None:
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            deployment = client.read_deployment_by_name(f"{FLOW_NAME}/{name.removeprefix(FLOW_NAME + '/')}")
        except ObjectNotFound:
            known = ", ".join(entry["name"] for entry in listing()) or "none yet"
            raise InputError(f"no nightly schedule named {name!r} (schedules: {known})",
                             fix="see `storyflow schedules`; make one with `storyflow schedule STORIES_DIR --cron ...`") from None  # fmt: skip
        action(client, deployment)


def worker_command(pool: str, limit: int | None = None) -> list[str]:
    """The command of a Prefect process worker for `pool`: each run it takes is a process of its own."""
    command = [sys.executable, "-m", "prefect", "worker", "start", "--pool", pool, "--type", "process"]
    return command + (["--limit", str(limit)] if limit else [])
