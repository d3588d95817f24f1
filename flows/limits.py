"""Limits that hold across processes and machines: Prefect global concurrency limits.

A backend names the limits its calls share with every other run (storyflow.backends.base.
SharedLimit): a GPU slot per device for an open model, a hosted provider's jobs in flight and
jobs started a minute. Here each becomes a Prefect global concurrency limit, created with
the backend's number the first time it is needed and never changed afterwards (a person may
raise or lower it in the UI's Concurrency page, or with `prefect gcl update`, and storyflow
keeps theirs). Every call to the backend holds a slot of each (a rate limit takes one that
decays over the minute), so two runs at once, in two processes or on two machines against
one Prefect server, never put two pipelines on one GPU nor exceed a provider's limits.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager

from storyflow.backends.base import Backend, SharedLimit

LEASE_S = 60  # a slot's lease, renewed while it is held: a killed run's slot comes back within a minute


def ensure(limits: Sequence[SharedLimit]) -> None:
    """Create the limits the server does not have yet (an existing one keeps the number it has)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    with get_client(sync_client=True) as client:
        for limit in limits:
            try:
                client.read_global_concurrency_limit_by_name(limit.name)
            except ObjectNotFound:
                try:
                    client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(
                        name=limit.name, limit=limit.limit,
                        slot_decay_per_second=limit.limit / 60 if limit.per_minute else 0.0))  # fmt: skip
                except ObjectAlreadyExists:  # another run made it first
                    pass


def guard(limits: Sequence[SharedLimit]) -> Callable[[], AbstractContextManager[None]]:
    """What a task holds around each call to the backend: a slot of every limit (rates first: they are
    taken, not held)."""
    from prefect.concurrency.sync import concurrency, rate_limit

    rates = [limit.name for limit in limits if limit.per_minute]
    slots = [limit.name for limit in limits if not limit.per_minute]

    @contextmanager
    def held() -> Iterator[None]:
        if rates:
            rate_limit(rates, strict=True)
        if not slots:
            yield
            return
        with concurrency(slots, strict=True, lease_duration=LEASE_S):
            yield

    return held


_ensured: set[tuple[str, str]] = set()


@contextmanager
def holding(backend: Backend) -> Iterator[None]:
    """A slot of every limit `backend` shares with other runs, held around one use of it: an open LLM, voice
    or music model takes its device's slot as a video model does, so two runs never load two pipelines
    onto one GPU. A backend that shares nothing holds nothing."""
    from prefect.settings import PREFECT_API_URL

    shared = backend.shared_limits()
    if not shared:
        yield
        return
    server = str(PREFECT_API_URL.value())
    missing = [limit for limit in shared if (server, limit.name) not in _ensured]
    if missing:
        ensure(missing)
        _ensured.update((server, limit.name) for limit in missing)
    with guard(shared)():
        yield

