"""Paid jobs: a hosted provider's job is written down before anyone waits for it, and found by the next run."""

from __future__ import annotations

import logging

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


def _started_ago(catalog, job_id: str, **age) -> None:
    """Backdate a job's start: the run that started it was killed that long ago."""
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import update

    from storyflow.catalog.schema import JobRow

    with catalog.writing() as s:
        s.execute(update(JobRow).where(JobRow.job_id == job_id).values(created_at=datetime.now(UTC) - timedelta(**age)))


def test_a_job_older_than_its_provider_keeps_results_is_expired_not_resumed(catalog, caplog):
    from storyflow.backends.video.replicate import ReplicateBackend
    from storyflow.backends.video.veo import VeoBackend

    killed = Generations(catalog, run_id=catalog.start_run("story.md", {}))
    killed.jobs("key-1", "veo", "m", VeoBackend.job_lifetime_s).started("operations/old", cost_usd=3.2,
                                                                          detail="m text 8 s billed at 720p")
    killed.jobs("key-2", "veo", "m", VeoBackend.job_lifetime_s).started("operations/young", cost_usd=3.2)
    killed.jobs("key-3", "replicate", "k", ReplicateBackend.job_lifetime_s).started("prediction-old", cost_usd=1.4)
    _started_ago(catalog, "operations/old", days=3)  # Veo keeps a video two days: it is gone
    _started_ago(catalog, "operations/young", hours=40)  # still there
    _started_ago(catalog, "prediction-old", minutes=90)  # Replicate keeps an output an hour

    door = Generations(catalog, run_id=catalog.start_run("story.md", {}))
    with caplog.at_level(logging.WARNING, logger="storyflow.catalog"):
        assert door.jobs("key-1", "veo", "m", VeoBackend.job_lifetime_s).pending() is None  # make a new one
        assert door.jobs("key-3", "replicate", "k", ReplicateBackend.job_lifetime_s).pending() is None
        assert door.jobs("key-2", "veo", "m", VeoBackend.job_lifetime_s).pending() == "operations/young"
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 2 and "veo job operations/old for this clip was started 3 days ago" in warned[0]
    assert "veo keeps a job's result 2 days, so it is not resumed" in warned[0] and "1 h" in warned[1]
    old, young, gone = catalog.jobs()
    assert (old["status"], young["status"], gone["status"]) == ("expired", "running", "expired")
    assert old["detail"].startswith("m text 8 s billed at 720p; expired: started 3 days ago, and veo keeps")
    assert old["cost_usd"] == 3.2 and old["finished_at"] is not None  # it may have been billed: still counted
    # the new job is what the next run resumes; without a known lifetime nothing expires
    door.jobs("key-1", "veo", "m", VeoBackend.job_lifetime_s).started("operations/new")
    assert Generations(catalog).jobs("key-1", "veo", "m", VeoBackend.job_lifetime_s).pending() == "operations/new"
    _started_ago(catalog, "operations/young", days=30)
    assert Generations(catalog).jobs("key-2", "veo", "m").pending() == "operations/young"


def test_a_door_without_a_catalog_expires_old_jobs_too():
    door = Generations.in_memory()
    door.jobs("k", "replicate", "m").started("p-1")
    assert door.jobs("k", "replicate", "m", lifetime_s=3600).pending() == "p-1"
    assert door.jobs("k", "replicate", "m", lifetime_s=0).pending() is None  # older than a result is kept
    [job] = door.store.jobs()
    assert job["status"] == "expired" and "not resumed, a new job is made" in job["detail"]
