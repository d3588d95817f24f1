"""The store: runs, and every generation by its cache key, with the files it owns.

Two generic operations serve every kind of generation (storyflow.catalog.kinds):
`lookup(kind, key)` finds the newest row under a cache key whose files are all intact
(each file's size and sha256 checked again: a missing or changed file is a miss, with a
warning, never trusted), and `record(kind, item, ...)` writes the row for a generation whose
files are in place, with a files row per file and the links a film has to what it plays.

Every method is one short transaction. Writers take SQLite's write lock up front and wait
(busy timeout) for another writer instead of failing, so two runs can share one catalog;
on PostgreSQL a writer that lost a race to insert the same row runs once more and finds it.

Paths are stored relative to STORYFLOW_HOME (posix) when inside it, absolute otherwise,
so a whole output folder can be moved with its catalog; the API hands back absolute Paths.

With a storage (STORYFLOW_STORAGE_URL, storyflow.media.storage), homes on several machines
share their files too: `record` uploads each file inside home under its stored path before the
row commits (and before the write lock, so no network I/O holds it), and `lookup` fetches a
file missing here from storage into this home, at the same path, then checks it as any other
(a copy that does not match what was recorded is not used: the generation is made again).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import socket
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Engine, case, func, select
from sqlalchemy import update as sa_update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from storyflow.catalog import migrations
from storyflow.catalog.db import is_sqlite, make_engine, read_session, sqlite_file, write_session
from storyflow.catalog.kinds import KINDS, FileClaim, Kind, file_columns, record_columns, row_files, row_record
from storyflow.catalog.ledger import expired_detail, job_detail
from storyflow.catalog.schema import (
    RUN_STATUSES,
    AudioRow,
    ClipRow,
    FileRow,
    FilmClipRow,
    FilmNarrationRow,
    FilmRow,
    HomeRow,
    JobRow,
    NarrationRow,
    PromptRow,
    RunRow,
    ShotRow,
    StoryboardRow,
    StoryRow,
    utcnow,
)
from storyflow.core.errors import CatalogError
from storyflow.core.hashing import canonical_sha256
from storyflow.core.models import Story, Storyboard
from storyflow.core.processes import process_alive
from storyflow.core.secrets import guard_secrets, redact
from storyflow.media import sha256_file

if TYPE_CHECKING:
    from storyflow.media.storage import Storage

log = logging.getLogger("storyflow.catalog")
T = TypeVar("T")

# The rows a generation may point at, by the name of its foreign key without "_id".
REF_TABLES = {"story": StoryRow, "storyboard": StoryboardRow, "shot": ShotRow, "prompt": PromptRow, "run": RunRow}

# ---------------------------------------------------------------- errors


def _database_errors(method: Callable[..., T]) -> Callable[..., T]:
    """Turn SQLAlchemy errors into a CatalogError that says what to do."""

    @functools.wraps(method)
    def wrapper(self: Store, *args: Any, **kwargs: Any) -> T:
        try:
            return method(self, *args, **kwargs)
        except SQLAlchemyError as exc:
            first_line = redact(str(getattr(exc, "orig", None) or exc).splitlines()[0])
            if "locked" in first_line or "busy" in first_line:
                fix = "another storyflow process held the catalog for too long; rerun when it is done"
            else:
                fix = "rerun with --debug for details; `storyflow catalog verify` checks the catalog"
            raise CatalogError(f"catalog error in {method.__name__}: {first_line}", fix=fix) from exc

    return wrapper


def _retry_on_conflict(method: Callable[..., T]) -> Callable[..., T]:
    """Run a recording method once more if a concurrent writer inserted the same row first.

    SQLite's up-front write lock serialises writers; PostgreSQL lets two transactions both
    miss a row and both insert it, and the loser's unique constraint fails. Its whole
    transaction was rolled back, so running the method again finds the winner's row.
    """

    @functools.wraps(method)
    def wrapper(self: Store, *args: Any, **kwargs: Any) -> T:
        try:
            return method(self, *args, **kwargs)
        except IntegrityError:
            return method(self, *args, **kwargs)

    return wrapper


class Store:
    """The shot catalog: one database (any SQLAlchemy URL) and the output folder it describes."""

    needs_refs = True  # a generation's row points at the rows it belongs to (see storyflow.catalog.door)

    def __init__(self, engine: Engine, url: str, home: Path, storage: Storage | None = None) -> None:
        self.engine = engine
        self.url = url
        self.home = home
        self.storage = storage  # STORYFLOW_STORAGE_URL: where home's files are uploaded, and fetched back from

    # ------------------------------------------------------------ open / close

    @classmethod
    def open(cls, url: str, home: Path, storage: Storage | None = None) -> Store:
        """Open (creating it if needed) the catalog at `url` and upgrade it to the newest schema; `storage`
        holds a copy of every file inside home the catalog records (storyflow.media.storage)."""
        from sqlalchemy.exc import DatabaseError

        # 1. an engine; for SQLite the file's folder is created
        home = Path(os.path.abspath(home))
        engine = make_engine(url)
        # 2. upgrade to head unless it is there already (the common case: one cheap query)
        try:
            head = migrations.head_revision()
            if migrations.current_revision(engine) != head:
                in_memory = is_sqlite(url) and sqlite_file(url) is None
                migrations.upgrade(engine if in_memory else url)
        except DatabaseError as exc:
            engine.dispose()
            if is_sqlite(url):
                fix = ("point STORYFLOW_HOME (or STORYFLOW_CATALOG_URL) at a folder holding a storyflow "
                       "catalog, or move this file aside to start a new one")  # fmt: skip
            else:
                fix = "check that the database server is up and the URL's user, password, host and database are right"
            raise CatalogError(
                f"cannot open the catalog {_safe_url(url)}: {redact(str(exc.orig).splitlines()[0])}", fix=fix
            ) from None
        except CatalogError:
            engine.dispose()
            raise
        return cls(engine, url, home, storage)

    def close(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({_safe_url(self.url)!r}, home={str(self.home)!r})"

    @property
    def display_url(self) -> str:
        """Where the catalog is, for people: the file of a SQLite catalog, else the URL without password."""
        database = sqlite_file(self.url)
        return str(Path(database).resolve()) if database else _safe_url(self.url)

    # ------------------------------------------------------------ homes sharing the catalog

    @property
    def home_name(self) -> str:
        """This output folder as the catalog knows it: '<host>:<absolute path>'."""
        return f"{socket.gethostname()}:{self.home}"

    @property
    def owns_catalog(self) -> bool:
        """Whether the catalog is this home's own SQLite file (inside it): then no other home shares it."""
        database = sqlite_file(self.url)
        return database is not None and Path(os.path.abspath(database)).is_relative_to(self.home)

    def _seen_home(self, s: Session) -> None:
        """Note that this home writes to the catalog (a run starts here). One upsert: two runs of a new home
        starting at once on a shared catalog would otherwise both insert it, and one would fail."""
        from sqlalchemy.dialects import postgresql, sqlite

        now = utcnow()
        insert = (postgresql if s.get_bind().dialect.name == "postgresql" else sqlite).insert
        s.execute(insert(HomeRow).values(name=self.home_name, host=socket.gethostname(), path=str(self.home),
                                         first_seen=now, last_seen=now)
                  .on_conflict_do_update(index_elements=[HomeRow.name], set_={"last_seen": now}))  # fmt: skip

    @_database_errors
    def other_homes(self) -> list[str]:
        """The other homes that have run films against this catalog (none when it is this home's own file)."""
        if self.owns_catalog:
            return []
        with self.reading() as s:
            return sorted(name for name in s.scalars(select(HomeRow.name)) if name != self.home_name)

    # ------------------------------------------------------------ paths

    def discard_unrecorded(self, paths: Sequence[Path], *, since: float) -> None:
        """Remove files written since `since` (epoch seconds) that no row claims: what a generation wrote before
        its record failed, so `catalog verify` never finds it. A file another row claims, an older one, or one
        that cannot be looked up is left alone."""
        for path in paths:
            with contextlib.suppress(Exception):  # best effort, on the way out of a failure already being raised
                if path.is_file() and path.stat().st_mtime >= since:
                    with self.reading() as s:
                        claimed = s.scalar(select(FileRow.id).where(FileRow.path == self.stored_path(path)).limit(1))
                    if claimed is None:
                        path.unlink()

    def stored_path(self, path: Path | str) -> str:
        """How `path` is written in the catalog: relative to home (posix) if inside it, else absolute."""
        absolute = Path(os.path.abspath(path))
        for base in (self.home, self.home.resolve()):
            try:
                return absolute.relative_to(base).as_posix()
            except ValueError:
                continue
        return absolute.as_posix()

    def absolute_path(self, stored: str) -> Path:
        """The absolute path of a stored path."""
        path = Path(stored)
        return path if path.is_absolute() else self.home / path

    def reading(self) -> AbstractContextManager[Session]:
        """One read transaction (a consistent snapshot); never takes the write lock."""
        return read_session(self.engine)

    def writing(self) -> AbstractContextManager[Session]:
        """One short write transaction, committed on success, rolled back on error."""
        return write_session(self.engine)

    # ------------------------------------------------------------ runs

    @_database_errors
    def start_run(self, story_source: str, params: dict, *, prefect_flow_run_id: str | None = None) -> int:
        """Record that a run started (status 'running'); first mark runs whose process died as crashed."""
        params = guard_secrets(params, "run params")
        self.mark_crashed_runs()
        with self.writing() as s:
            self._seen_home(s)
            run = RunRow(
                story_source=str(story_source),
                status="running",
                pid=os.getpid(),
                hostname=socket.gethostname(),
                params=params,
                started_at=utcnow(),
                clips_generated=0,
                clips_reused=0,
                prefect_flow_run_id=prefect_flow_run_id,
            )
            s.add(run)
            s.flush()
            return run.id

    @_database_errors
    def finish_run(
        self,
        run_id: int,
        status: str,
        *,
        story_id: int | None = None,
        storyboard_id: int | None = None,
        film_id: int | None = None,
        clips_generated: int = 0,
        clips_reused: int = 0,
        error: str | None = None,
        timings: dict | None = None,
        prefect_flow_run_id: str | None = None,
        generations: dict | None = None,
    ) -> None:
        """Record how a run ended: status, what it made, what it reused, its error and timings.

        `generations` tallies every kind of generation: {"clip": {"made": 2, "reused": 7}, ...}.
        """
        if status not in RUN_STATUSES or status == "running":
            raise CatalogError(
                f"unknown final run status {status!r}",
                fix=f"use one of {', '.join(s for s in RUN_STATUSES if s != 'running')}",
            )
        timings = guard_secrets(timings, "run timings") if timings is not None else None
        generations = check_generations(generations) if generations is not None else None
        with self.writing() as s:
            run = s.get(RunRow, run_id)
            if run is None:
                raise CatalogError(f"no run #{run_id} in the catalog", fix="pass the id start_run returned")
            run.status = status
            run.finished_at = utcnow()
            run.story_id = story_id if story_id is not None else run.story_id
            run.storyboard_id = storyboard_id if storyboard_id is not None else run.storyboard_id
            run.film_id = film_id if film_id is not None else run.film_id
            run.clips_generated = clips_generated
            run.clips_reused = clips_reused
            run.error = redact(error) if error else None
            run.timings = timings
            if generations is not None:
                run.generations = generations
            if prefect_flow_run_id:
                run.prefect_flow_run_id = prefect_flow_run_id

    # ------------------------------------------------------------ a run's purse (storyflow.stages.budget)

    @_database_errors
    def purse_reserve(self, run_id: int, usd: float, limit_usd: float | None) -> tuple[float, float] | None:
        """Set `usd` aside on the run's row unless spent + set aside + usd would pass `limit_usd`: one
        conditional UPDATE, so processes on several machines never pass the limit together. None when it
        was set aside, else (spent, set aside) as they stood."""
        with self.writing() as s:
            run = RunRow.__table__.c
            fits = sa_update(RunRow).where(run.id == run_id).values(reserved_usd=run.reserved_usd + usd)
            if limit_usd is not None:
                fits = fits.where(run.spent_usd + run.reserved_usd + usd <= limit_usd)
            if s.execute(fits).rowcount == 1:
                return None
            row = s.get(RunRow, run_id)
            if row is None:
                raise CatalogError(f"no run #{run_id} in the catalog", fix="pass the id start_run returned")
            return row.spent_usd, row.reserved_usd

    @_database_errors
    def purse_settle(self, run_id: int, reserved: float, cost_usd: float) -> None:
        """A clip is made: its reservation leaves the run's purse and what it cost is spent."""
        with self.writing() as s:
            run = RunRow.__table__.c
            s.execute(sa_update(RunRow).where(run.id == run_id).values(
                reserved_usd=case((run.reserved_usd > reserved, run.reserved_usd - reserved), else_=0.0),
                spent_usd=run.spent_usd + cost_usd))  # fmt: skip

    @_database_errors
    def purse(self, run_id: int) -> tuple[float, float]:
        """(spent, set aside) of the run's purse."""
        with self.reading() as s:
            row = s.get(RunRow, run_id)
            return (row.spent_usd, row.reserved_usd) if row is not None else (0.0, 0.0)

    @_database_errors
    def mark_crashed_runs(self) -> list[int]:
        """Mark as 'crashed' the runs left 'running' by a process on this machine that no longer exists."""
        host = socket.gethostname()
        with self.writing() as s:
            stale = s.scalars(select(RunRow).where(RunRow.status == "running", RunRow.hostname == host)).all()
            crashed = [run for run in stale if not process_alive(run.pid)]
            for run in crashed:
                run.status = "crashed"
                run.finished_at = utcnow()
                run.error = f"process {run.pid} on {host} ended without finishing the run (killed or crashed)"
            return [run.id for run in crashed]

    # ------------------------------------------------------------ story and shots

    @_database_errors
    @_retry_on_conflict
    def record_story(self, story: Story) -> int:
        """The story's row id; recorded once per distinct content (sha256 of the file)."""
        sha256 = story.sha256 or canonical_sha256(story)
        front_matter = story.model_dump(mode="json", exclude={"title", "slug", "text", "source", "sha256", "body_line"})
        front_matter = guard_secrets(front_matter, "story front matter")
        with self.writing() as s:
            row = s.scalar(select(StoryRow).where(StoryRow.sha256 == sha256))
            if row is None:
                row = StoryRow(sha256=sha256, title=story.title, slug=story.slug, source=str(story.source),
                               text=story.text, front_matter=front_matter, created_at=utcnow())  # fmt: skip
                s.add(row)
                s.flush()
            return row.id

    @_database_errors
    @_retry_on_conflict
    def record_shots(self, storyboard_id: int, board: Storyboard) -> dict[str, int]:
        """Row ids of the board's shots, by shot id ("s01" -> 7); each shot recorded once."""
        with self.writing() as s:
            _require(s, "storyboard", storyboard_id)
            rows = {r.shot_key: r for r in s.scalars(select(ShotRow).where(ShotRow.storyboard_id == storyboard_id))}
            for shot in board.shots:
                if shot.id not in rows:
                    rows[shot.id] = ShotRow(storyboard_id=storyboard_id, shot_key=shot.id, position=shot.index,
                                            sha256=canonical_sha256(shot), data=shot.model_dump(mode="json"))  # fmt: skip
                    s.add(rows[shot.id])
            s.flush()
            return {shot.id: rows[shot.id].id for shot in board.shots}

    # ------------------------------------------------------------ generations

    @_database_errors
    def lookup(self, kind: Kind[T], key: str) -> tuple[int, T] | None:
        """(row id, record) of the newest generation under `key` whose files are all intact, else None."""
        with self.reading() as s:
            rows = s.scalars(select(kind.table).where(kind.table.cache_key == key).order_by(kind.table.id.desc()))
            candidates = []
            for row in rows:
                owned = self._files_rows(s, kind, row.id) if kind.files else []
                claims = row_files(kind, row, owned) if kind.files else []
                candidates.append((row.id, row_record(kind, row, self.absolute_path, claims), claims, _name(kind, row)))
        for row_id, record, claims, name in candidates:
            if all(self._file_intact(c, f"{name} {c.what}" if c.what != kind.name else name) for c in claims):
                return row_id, record
        if len(candidates) > 1:
            log.warning("%s %s: none of its %d recorded versions is intact; it will be made again",
                        kind.name, key[:12], len(candidates))  # fmt: skip
        return None

    # ------------------------------------------------------------ paid jobs (hosted providers)

    def job_pending(self, key: str, backend: str) -> str | None:
        """The provider's id of the newest job for `key` that was started and never finished."""
        with self.reading() as s:
            row = s.scalar(select(JobRow).where(JobRow.cache_key == key, JobRow.backend == backend,
                                                JobRow.status == "running").order_by(JobRow.id.desc()).limit(1))  # fmt: skip
        return row.job_id if row is not None else None

    def job_started(self, key: str, backend: str, model: str, job_id: str, *, run_id: int | None,
                    cost_usd: float | None = None, detail: str = "") -> None:  # fmt: skip
        """Record a job the provider accepted, before anyone polls it (one short transaction: it must stick)."""
        with self.writing() as s:
            s.add(JobRow(cache_key=key, backend=backend, model=model, job_id=job_id, status="running",
                         run_id=run_id, cost_usd=cost_usd, detail=detail))  # fmt: skip

    def job_finished(self, key: str, job_id: str, status: str, *, detail: str = "") -> None:
        """Record how a job ended: "done", "failed" or "filtered" (what was asked stays in the detail)."""
        with self.writing() as s:
            for row in s.scalars(select(JobRow).where(JobRow.cache_key == key, JobRow.job_id == job_id)):
                row.status, row.finished_at = status, utcnow()
                row.detail = job_detail(row.detail, detail)

    def job_expire(self, key: str, backend: str, lifetime_s: float) -> list[tuple[str, float]]:
        """Mark "expired" the jobs for `key` still running after the provider dropped their results
        (older than `lifetime_s`); returns (job id, age in seconds) of each."""
        now = utcnow()
        expired = []
        with self.writing() as s:
            rows = s.scalars(select(JobRow).where(JobRow.cache_key == key, JobRow.backend == backend,
                                                  JobRow.status == "running",
                                                  JobRow.created_at < now - timedelta(seconds=lifetime_s)))  # fmt: skip
            for row in rows:
                age = (now - row.created_at).total_seconds()
                row.status, row.finished_at = "expired", now
                row.detail = job_detail(row.detail, expired_detail(backend, age, lifetime_s))
                expired.append((row.job_id, age))
        return expired

    def jobs(self, run_id: int | None = None) -> list[dict[str, Any]]:
        """Every paid job (of one run), oldest first: what was asked of which provider, how it ended, what it cost."""
        with self.reading() as s:
            query = select(JobRow).order_by(JobRow.id)
            if run_id is not None:
                query = query.where(JobRow.run_id == run_id)
            return [{"cache_key": r.cache_key, "backend": r.backend, "model": r.model, "job_id": r.job_id,
                     "status": r.status, "run_id": r.run_id, "cost_usd": r.cost_usd, "detail": r.detail,
                     "created_at": r.created_at, "finished_at": r.finished_at} for r in s.scalars(query)]  # fmt: skip

    def holds(self, kind: Kind, item: Any) -> bool:
        """Whether a generation with exactly this content is recorded (a storyboard read back from a file)."""
        with self.reading() as s:
            found = s.scalar(select(kind.table.id).where(kind.table.sha256 == canonical_sha256(item)).limit(1))
        return found is not None

    def find(self, kind: Kind[T], key: str) -> T | None:
        """The record of lookup(kind, key), or None."""
        found = self.lookup(kind, key)
        return found[1] if found is not None else None

    @_database_errors
    @_retry_on_conflict
    def record(
        self,
        kind: Kind,
        item: Any,
        *,
        key: str | None = None,
        refs: Mapping[str, int | None] | None = None,
        facts: Mapping[str, Any] | None = None,
        links: Mapping[str, Sequence[str]] | None = None,
    ) -> int:
        """Record a generation whose files are in place; its row id.

        `refs` names the rows it points at ({"prompt": 7, "run": 3}); `facts` adds columns its
        record does not have (an LLM's options, the wall time); `key` is the cache key of the
        call that made a content-identified generation (a storyboard, a prompt); `links`
        names, by cache key, what a film plays ({"clips": [...], "audio": [...]}).
        """
        refs = {name: row_id for name, row_id in (refs or {}).items() if row_id is not None}
        # 1. check inputs before taking the write lock: no secrets, every file in place and hashed
        columns = record_columns(kind, item) | dict(facts or {})
        if key is not None and "cache_key" not in columns:
            columns["cache_key"] = key
        for name, value in columns.items():
            if isinstance(value, dict | list) and name != "data":
                columns[name] = guard_secrets(value, f"{name} of {_label(kind, item)}")
        file_cols, claims = file_columns(kind, item, self.stored_path, self._look)
        columns |= file_cols
        self._upload(claims)  # in storage before the row commits, and before the write lock: no network I/O under it
        if "sha256" in kind.columns and "sha256" not in columns:
            columns["sha256"] = canonical_sha256(item)  # a record without a file is addressed by its content
        missing = [ref for ref in kind.refs if ref not in refs]
        if missing:
            raise CatalogError(f"a {kind.name} is recorded with its {missing[0]}, and none was given",
                               fix=f"record the {missing[0]} first (record_{missing[0]}) and pass its id")  # fmt: skip
        with self.writing() as s:
            # 2. the rows it points at exist and agree with it; what the store derives
            for ref, row_id in refs.items():
                _check_ref(_require(s, ref, row_id), ref, row_id, kind, item)
                if f"{ref}_id" in kind.columns:
                    columns[f"{ref}_id"] = row_id
            columns |= _derived(s, kind, columns)
            # 3. insert, keep or replace the row, by how the kind is identified
            row, written = self._put(s, kind, columns, reused=getattr(item, "reused", False), run_id=refs.get("run"))
            if not written:
                return row.id  # found as it is: nothing more to record
            # 4. its files rows, and what a film plays
            if claims:
                self._own_files(s, kind, row.id, claims)
            for name, link in kind.links.items():
                keys = list((links or {}).get(name, ()))
                targets = _ids_by_key(s, KINDS[link.kind], keys if link.ordered else list(dict.fromkeys(keys)))
                s.add_all(
                    link.table(**{"film_id": row.id, link.column: target, **({"position": i} if link.ordered else {})})
                    for i, target in enumerate(targets)
                )
            s.flush()
            return row.id

    def _put(self, s: Session, kind: Kind, columns: dict[str, Any], *, reused: bool,
             run_id: int | None) -> tuple[Any, bool]:  # fmt: skip
        """The row for `columns` and whether it was written: found by content, by key, or (a film) new
        unless it is the one reused."""
        table = kind.table
        if kind.identity == "content":
            match = [getattr(table, c) == columns[c] for c in ("sha256", *(f"{r}_id" for r in kind.refs))]
            row = s.scalar(select(table).where(*match))
            if row is not None:
                if columns.get("cache_key") and row.cache_key is None:
                    row.cache_key = columns["cache_key"]  # a later run computed the call's cache key: keep it
                return row, False
        elif kind.identity == "key":
            row = s.scalar(select(table).where(table.cache_key == columns["cache_key"]))
            if row is not None:
                if reused and row.sha256 == columns["sha256"] and row.path == columns["path"]:
                    return row, False  # a reuse: the row already says all of this
                for name, value in columns.items():  # made again under the same key: its file was lost
                    setattr(row, name, value)
                s.flush()
                return row, True
        elif reused and columns.get("cache_key"):
            row = s.scalar(
                select(table).where(table.cache_key == columns["cache_key"], table.sha256 == columns["sha256"],
                                    table.path == columns["path"]).order_by(table.id.desc()).limit(1)
            )  # fmt: skip
            if row is not None:
                if run_id is not None:
                    s.get(RunRow, run_id).film_id = row.id  # the run ends with the film it found
                return row, False
        row = table(**columns)
        s.add(row)
        s.flush()
        if kind.identity == "history" and run_id is not None:
            s.get(RunRow, run_id).film_id = row.id  # so a run killed before finish_run still names its film
        return row, True

    def _own_files(self, s: Session, kind: Kind, row_id: int, claims: list[FileClaim]) -> None:
        """Upsert a files row per file the row owns; drop rows that still claim it made another file."""
        kept = set()
        for claim in claims:
            if claim.shared:
                owner = s.scalar(select(FileRow.owner_table).where(FileRow.path == claim.stored))
                if owner not in (None, kind.owner):
                    continue  # a stem that is a track's own file stays that track's: its provenance is the track's
            kept.add(claim.stored)
            record = s.scalar(select(FileRow).where(FileRow.path == claim.stored))
            values = dict(sha256=claim.sha256, bytes=claim.bytes, kind=claim.file_kind, owner_table=kind.owner,
                          owner_id=row_id, created_at=utcnow())  # fmt: skip
            if record is None:
                s.add(FileRow(path=claim.stored, **values))
            else:
                for name, value in values.items():
                    setattr(record, name, value)
        if kind.identity == "key":  # a clip or a track owns exactly its one file
            stale = select(FileRow).where(FileRow.owner_table == kind.owner, FileRow.owner_id == row_id,
                                          FileRow.path.not_in(kept))  # fmt: skip
            for record in s.scalars(stale):
                s.delete(record)

    @staticmethod
    def _files_rows(s: Session, kind: Kind, row_id: int) -> list[FileRow]:
        return list(s.scalars(select(FileRow).where(FileRow.owner_table == kind.owner, FileRow.owner_id == row_id)))

    def _look(self, path: Path, sha256: str | None) -> tuple[str, int]:
        """A file that must be in place before a row may point at it: its sha256 (hashed if not given) and size."""
        try:
            size = Path(path).stat().st_size
        except FileNotFoundError:
            raise CatalogError(
                f"{path} does not exist; a catalog row may only point at a file that is in place",
                fix="write the file (atomically) before recording it",
            ) from None
        return sha256 or sha256_file(path), size

    def _file_intact(self, claim: FileClaim, what: str) -> bool:
        """True if the file exists with the recorded size and sha256 (where recorded); warn (and say why) if not."""
        path = self.absolute_path(claim.stored)
        if not path.is_file() and not self._fetch(claim, path):
            log.warning("%s: %s is missing; it will be made again", what, path)
            return False
        if claim.sha256 is None:
            return True  # recorded before its hash was kept: existence is all that can be checked
        if (claim.bytes is not None and path.stat().st_size != claim.bytes) or sha256_file(path) != claim.sha256:
            log.warning("%s: %s changed since it was recorded (sha256 no longer %s); it will be made again",
                        what, path, claim.sha256[:12])  # fmt: skip
            return False
        return True

    # ------------------------------------------------------------ storage (STORYFLOW_STORAGE_URL)

    def _upload(self, claims: Sequence[FileClaim]) -> None:
        """Put each claimed file inside home in storage (skipped when it is there): another home finds it there."""
        if self.storage is None:
            return
        for stored in dict.fromkeys(c.stored for c in claims):
            if not Path(stored).is_absolute():  # a file outside home has no name other homes share
                self.storage.put(self.absolute_path(stored), stored)

    def _fetch(self, claim: FileClaim, path: Path) -> bool:
        """Fetch a file missing here from storage, if storage holds what the claim recorded (its sha256; its
        size where no hash was recorded: with neither, nothing can vouch for the bytes, and none are fetched)."""
        if self.storage is None or Path(claim.stored).is_absolute():
            return False
        if not self.storage.fetch(claim.stored, path, claim.sha256, size=claim.bytes):
            return False
        log.info("fetched %s from %s", path, self.storage.url(claim.stored))
        return True

    # ------------------------------------------------------------ listings

    @_database_errors
    def films(self) -> list[dict]:
        """Every film, newest first: id, title, path, duration, size, when, which run, cache key, credentials."""
        with self.reading() as s:
            rows = s.execute(
                select(FilmRow, StoryRow.title)
                .join(StoryboardRow, FilmRow.storyboard_id == StoryboardRow.id)
                .join(StoryRow, StoryboardRow.story_id == StoryRow.id)
                .order_by(FilmRow.id.desc())
            ).all()
            costs = film_costs(s, [film.id for film, _ in rows])
            return [
                {
                    "id": film.id,
                    "title": title,
                    "path": str(self.absolute_path(film.path)),
                    "sha256": film.sha256,
                    "duration_s": film.num_frames / film.fps,
                    "width": film.width,
                    "height": film.height,
                    "fps": film.fps,
                    "storyboard_id": film.storyboard_id,
                    "run_id": film.run_id,
                    "created_at": film.created_at.isoformat(),
                    "cache_key": film.cache_key,
                    "credentials": film.credentials,
                    "loudness_lufs": film.loudness_lufs,
                    # what its clips and narration cost, whichever run made them (None: nothing was billed)
                    "cost_usd": costs.get(film.id),
                    # the names `storyflow catalog films` prints
                    "created": film.created_at.isoformat(),
                    "duration": film.num_frames / film.fps,
                }
                for film, title in rows
            ]

    @_database_errors
    def runs(self, limit: int = 20) -> list[dict]:
        """The newest `limit` runs: status, story, what they generated and reused (per kind), timings."""
        with self.reading() as s:
            rows = s.scalars(select(RunRow).order_by(RunRow.id.desc()).limit(limit)).all()
            costs = run_costs(s, [run.id for run in rows])
            # a run that did not finish counts what it made from its rows: killed, it wrote no tally; failed or
            # cancelled, its tally lacks what its tasks made and had not yet handed back
            made = rows_made(s, [run.id for run in rows if run.generations is None or run.status != "completed"])
            return [run_dict(run) | costs.get(run.id, NO_COST) | _counted(made.get(run.id)) for run in rows]

# ---------------------------------------------------------------- module helpers


NO_COST = {"cost_usd": None, "video_cost_usd": None, "narration_cost_usd": None}


def run_costs(s: Session, run_ids: Sequence[int]) -> dict[int, dict[str, float | None]]:
    """What each run paid its hosted providers: every video job it started (filtered, failed and expired
    ones too: they may have been billed) and every narration line a billed service spoke for it."""
    jobs = dict(s.execute(select(JobRow.run_id, func.sum(JobRow.cost_usd))
                          .where(JobRow.run_id.in_(run_ids)).group_by(JobRow.run_id)).all())  # fmt: skip
    spoken = dict(s.execute(select(NarrationRow.run_id, func.sum(NarrationRow.cost_usd))
                            .where(NarrationRow.run_id.in_(run_ids)).group_by(NarrationRow.run_id)).all())  # fmt: skip
    return {run_id: {"cost_usd": _sum_known(jobs.get(run_id), spoken.get(run_id)), "video_cost_usd": jobs.get(run_id),
                     "narration_cost_usd": spoken.get(run_id)} for run_id in run_ids}  # fmt: skip


def rows_made(s: Session, run_ids: Sequence[int]) -> dict[int, dict[str, int]]:
    """For each run: how many clips, narration lines, audio tracks and films name it as their maker."""
    made: dict[int, dict[str, int]] = {}
    for kind, row in (("clip", ClipRow), ("narration", NarrationRow), ("audio", AudioRow), ("film", FilmRow)):
        counts = s.execute(select(row.run_id, func.count()).where(row.run_id.in_(run_ids)).group_by(row.run_id))
        for run_id, count in counts.all():
            made.setdefault(run_id, {})[kind] = count
    return made


def _counted(made: dict[str, int] | None) -> dict:
    """An unfinished run's counts, from its rows."""
    if made is None:
        return {}
    return {"clips_generated": made.get("clip", 0), "made_before_it_ended": made}


def film_costs(s: Session, film_ids: Sequence[int]) -> dict[int, float | None]:
    """What each film's clips and narration lines cost (the takes it does not play are the runs' cost)."""
    clips = dict(s.execute(select(FilmClipRow.film_id, func.sum(ClipRow.cost_usd))
                           .join(ClipRow, FilmClipRow.clip_id == ClipRow.id)
                           .where(FilmClipRow.film_id.in_(film_ids)).group_by(FilmClipRow.film_id)).all())  # fmt: skip
    spoken = dict(s.execute(select(FilmNarrationRow.film_id, func.sum(NarrationRow.cost_usd))
                            .join(NarrationRow, FilmNarrationRow.narration_id == NarrationRow.id)
                            .where(FilmNarrationRow.film_id.in_(film_ids)).group_by(FilmNarrationRow.film_id)).all())  # fmt: skip
    return {film_id: _sum_known(clips.get(film_id), spoken.get(film_id)) for film_id in film_ids}


def _sum_known(*costs: float | None) -> float | None:
    """The sum of the costs that are known (None when none is: nothing billed said what it cost)."""
    known = [cost for cost in costs if cost is not None]
    return round(sum(known), 9) if known else None


def run_dict(run: RunRow) -> dict:
    """A run row as a JSON-able dict."""
    wall = (run.finished_at - run.started_at).total_seconds() if run.finished_at else None
    return {
        "id": run.id,
        "status": run.status,
        "story_source": run.story_source,
        "story_id": run.story_id,
        "storyboard_id": run.storyboard_id,
        "film_id": run.film_id,
        "pid": run.pid,
        "hostname": run.hostname,
        "params": run.params,
        "started_at": run.started_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "wall_s": wall,
        "clips_generated": run.clips_generated,
        "clips_reused": run.clips_reused,
        "error": run.error,
        "timings": run.timings,
        "generations": run.generations,
        "prefect_flow_run_id": run.prefect_flow_run_id,
    }


def check_generations(generations: dict) -> dict:
    """A run's tally as stored: {kind: {"made": n, "reused": n}}; CatalogError naming what is malformed."""
    checked: dict[str, dict[str, int]] = {}
    for kind, tally in generations.items():
        counts = tally if isinstance(tally, dict) else {}
        if set(counts) != {"made", "reused"} or not all(
            isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in counts.values()
        ):
            raise CatalogError(
                f"generations[{kind!r}] is {tally!r}, not a tally of what was made and reused",
                fix='pass generations as {"clip": {"made": 2, "reused": 7}, ...}: whole numbers, 0 or more',
            )
        checked[str(kind)] = {"made": counts["made"], "reused": counts["reused"]}
    return checked


def _require(s: Session, ref: str, row_id: int) -> Any:
    """The row a generation points at; CatalogError naming the call that makes it if there is none."""
    row = s.get(REF_TABLES[ref], row_id)
    if row is None:
        maker = "start_run" if ref == "run" else f"record_{ref}" + ("s" if ref == "shot" else "")
        raise CatalogError(f"no {ref} #{row_id} in the catalog", fix=f"pass the id that {maker} returned")
    return row


def _check_ref(row: Any, ref: str, row_id: int, kind: Kind, item: Any) -> None:
    """A generation agrees with the rows it points at: the same shot, the same story."""
    shot = getattr(item, "shot_id", None)
    shots = {"shot": lambda: {row.shot_key}, "prompt": lambda: {row.shot.shot_key},
             "storyboard": lambda: {s.get("id") for s in row.data.get("shots", [])}}.get(ref)  # fmt: skip
    if shot and shots is not None and shot not in shots():
        theirs = ", ".join(sorted(shots())) or "none"
        raise CatalogError(
            f"{kind.name} of shot {shot} given {ref} #{row_id}, which is of shot(s) {theirs}",
            fix=f"pass the id record_{ref}{'s' if ref == 'shot' else ''} returned for the {ref} the {kind.name} "
            "was made for",
        )
    story = getattr(item, "story_sha256", None)
    if ref == "story" and story and story != row.sha256:
        raise CatalogError(
            f"{kind.name} planned from story {story[:12]}, not from story #{row_id} ({row.sha256[:12]})",
            fix="pass the id record_story returned for the story it was planned from",
        )


def _derived(s: Session, kind: Kind, columns: dict[str, Any]) -> dict[str, Any]:
    """Columns the store works out: the clip a `<x>_sha256` names (`<x>_clip_id`), start and finish times."""
    derived: dict[str, Any] = {}
    for column in kind.columns:
        source = column.removesuffix("_clip_id") + "_sha256"
        if column.endswith("_clip_id") and source in columns:
            sha256 = columns[source]
            derived[column] = s.scalar(
                select(ClipRow.id).where(ClipRow.sha256 == sha256).order_by(ClipRow.id.desc()).limit(1)
            ) if sha256 else None  # fmt: skip
    if {"started_at", "finished_at"} <= kind.columns:
        finished = utcnow()
        derived |= {"finished_at": finished, "started_at": finished - timedelta(seconds=columns.get("wall_s") or 0.0)}
    return derived


def _ids_by_key(s: Session, kind: Kind, keys: list[str]) -> list[int]:
    """Row ids for cache keys, in the given order; CatalogError naming any key not recorded."""
    found = dict(s.execute(select(kind.table.cache_key, kind.table.id).where(kind.table.cache_key.in_(set(keys)))).tuples().all())
    missing = [key for key in keys if key not in found]
    if missing:
        raise CatalogError(
            f"{len(missing)} {kind.name}(s) not in the catalog: {', '.join(k[:16] for k in missing[:5])}",
            fix=f"call record_{kind.name} for every {kind.name} before recording the film",
        )
    return [found[key] for key in keys]


def _name(kind: Kind, row: Any) -> str:
    """How messages name a row: 'clip s01/0 #12', 'music track #4', 'film #3'."""
    if hasattr(row, "segment"):
        return f"{kind.name} {row.shot_key}/{row.segment}"
    if hasattr(row, "shot_key"):
        return f"{kind.name} of {row.shot_key}"
    if kind.name == "audio":
        return f"{row.kind} track"
    return f"{kind.name} #{row.id}"


def _label(kind: Kind, item: Any) -> str:
    return getattr(item, "backend", None) or getattr(item, "llm", None) or kind.name


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<catalog URL>"
