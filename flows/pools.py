"""Work pools and the deployments their workers run: a night's films, a film's shots.

A process work pool (`storyflow serve --pool NAME` starts a worker for it, one per machine)
runs deployments that name their flow by module path, so a worker needs storyflow installed,
not a copy of the code. `deploy_on_pool` deploys a flow under the pool's name the first time a
run needs it (flows/nightly.py: the film flow, for a night spread over the pool; flows/shots.py:
the shot flow, for a film's shots).
"""

from __future__ import annotations

import contextlib
import io
from typing import Any


def ensure_pool(pool: str) -> None:
    """The process work pool `pool`, made if missing (a worker started by `storyflow serve --pool` polls it)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            client.read_work_pool(pool)
        except ObjectNotFound:
            with contextlib.suppress(ObjectAlreadyExists):  # another run made it first
                client.create_work_pool(WorkPoolCreate(name=pool, type="process",
                                                       description="storyflow: films, shots and nightly batches"))  # fmt: skip


_deployed: set[tuple[str, str, str]] = set()


def deploy_on_pool(flow: Any, pool: str, description: str) -> str:
    """Deploy `flow` (by module path) on the work pool `pool` under the pool's name, once per process and
    server; the deployment's name (flow/pool)."""
    from prefect.deployments.runner import EntrypointType
    from prefect.settings import PREFECT_API_URL

    where = (str(PREFECT_API_URL.value()), flow.name, pool)
    if where not in _deployed:
        ensure_pool(pool)
        with contextlib.redirect_stdout(io.StringIO()):  # Prefect's own table and hints
            flow.deploy(name=pool, work_pool_name=pool, build=False, push=False, print_next_steps=False,
                        entrypoint_type=EntrypointType.MODULE_PATH, ignore_warnings=True, description=description)  # fmt: skip
        _deployed.add(where)
    return f"{flow.name}/{pool}"
