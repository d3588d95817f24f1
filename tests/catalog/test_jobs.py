"""Paid jobs: a hosted provider's job is written down before anyone waits for it, and found by the next run."""

from __future__ import annotations

import pytest

from storyflow.catalog import Generations, open_catalog


@pytest.fixture
def catalog(storyflow_home):
    with open_catalog() as opened:
        yield opened


def test_a_job_left_in_flight_by_a_killed_run_is_pending_for_the_next_one(catalog):
    first_run = Generations(catalog, run_id=catalog.start_run("story.md", {}))
    ledger = first_run.jobs("key-1", "veo", "veo-3.0-generate-001")
    assert ledger.pending() is None  # nothing paid for yet: create one
    ledger.started("models/veo/operations/abc", cost_usd=3.2)
    # ...the run is killed here, while polling. The next run, same clip:
    again = Generations(catalog, run_id=catalog.start_run("story.md", {})).jobs("key-1", "veo", "veo-3.0-generate-001")
    assert again.pending() == "models/veo/operations/abc"  # resume it: no second paid job
    again.finished("models/veo/operations/abc", "done")
    assert again.pending() is None
    [job] = catalog.jobs()
    assert (job["status"], job["cost_usd"], job["run_id"]) == ("done", 3.2, 1) and job["finished_at"] is not None


def test_jobs_are_kept_per_clip_and_per_backend_and_failures_keep_their_reasons(catalog):
    door = Generations(catalog, run_id=catalog.start_run("story.md", {}))
    door.jobs("key-1", "veo", "m").started("op-1")
    door.jobs("key-2", "veo", "m").started("op-2")
    assert door.jobs("key-1", "other", "m").pending() is None
    door.jobs("key-2", "veo", "m").finished("op-2", "filtered", detail="celebrity likeness")
    assert door.jobs("key-1", "veo", "m").pending() == "op-1" and door.jobs("key-2", "veo", "m").pending() is None
    filtered = [job for job in catalog.jobs(run_id=door.refs["run"]) if job["status"] == "filtered"]
    assert [job["detail"] for job in filtered] == ["celebrity likeness"]


def test_a_door_without_a_catalog_keeps_jobs_while_it_lives():
    door = Generations.in_memory()
    door.jobs("k", "veo", "m").started("op-9")
    assert door.jobs("k", "veo", "m").pending() == "op-9"
    door.jobs("k", "veo", "m").finished("op-9", "failed", detail="quota")
    assert door.jobs("k", "veo", "m").pending() is None
