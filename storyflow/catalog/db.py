"""Engines and sessions for the catalog: any SQLAlchemy URL, SQLite tuned for several writers.

SQLite is the default (`$STORYFLOW_HOME/catalog.db`). Several processes may write to it at
once (two `storyflow film` runs, Prefect task threads), so every SQLite connection gets:

- WAL journal: readers never block the writer and the writer never blocks readers;
- a busy timeout: a writer waits for another writer's short transaction instead of failing;
- foreign keys on: a row can never point at a row that does not exist;
- explicit BEGIN: pysqlite's own implicit transactions are turned off and we emit BEGIN
  ourselves, BEGIN IMMEDIATE for writing sessions. A deferred transaction that reads and
  then writes can fail at once with "database is locked" (SQLite cannot wait when a read
  snapshot must upgrade to a write lock); taking the write lock up front makes it wait.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool, StaticPool

from storyflow.core.errors import CatalogError

BUSY_TIMEOUT_S = 30.0
WRITE_OPTION = "storyflow_write"  # execution option: this connection's transactions write


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def sqlite_file(url: str) -> Path | None:
    """The database file of a SQLite URL, or None for an in-memory database or another backend."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database or ""
    if database in ("", ":memory:") or database.startswith("file:") or parsed.query.get("mode") == "memory":
        return None
    return Path(database)


def make_engine(url: str, *, foreign_keys: bool = True, busy_timeout_s: float = BUSY_TIMEOUT_S) -> Engine:
    """An engine for `url`; for SQLite, with the pragmas above and its folder created."""
    # 1. parse the URL, with an error that says what a valid one looks like
    try:
        parsed = make_url(url)
    except Exception as exc:  # sqlalchemy.exc.ArgumentError and friends
        raise CatalogError(
            f"catalog URL {url!r} is not a SQLAlchemy URL ({exc})",
            fix="set STORYFLOW_CATALOG_URL to e.g. sqlite:////abs/path/catalog.db or "
            "postgresql+psycopg://user@host/dbname, or unset it to use $STORYFLOW_HOME/catalog.db",
        ) from None
    if parsed.get_backend_name() != "sqlite":
        try:
            return create_engine(parsed, pool_pre_ping=True)
        except Exception as exc:
            raise CatalogError(
                f"cannot open catalog {parsed.render_as_string(hide_password=True)}: {exc}",
                fix="install the database driver the URL names (e.g. pip install 'psycopg[binary]') "
                "or unset STORYFLOW_CATALOG_URL to use SQLite",
            ) from None

    # 2. SQLite: create the file's folder; an in-memory database is shared by all sessions
    file = sqlite_file(url)
    kwargs: dict[str, Any] = {}
    if file is not None:
        try:
            file.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CatalogError(
                f"cannot create the catalog's folder {file.parent}: {exc.strerror}",
                fix="set STORYFLOW_HOME (or STORYFLOW_CATALOG_URL) to a folder you can write",
            ) from None
    else:
        kwargs = {"poolclass": StaticPool, "connect_args": {"check_same_thread": False}}
    engine = create_engine(parsed, **kwargs)

    # 3. pragmas on every new connection; busy_timeout first, so switching to WAL can wait too
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves (see "begin" below)
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
        if file is not None:
            _switch_to_wal(cursor, busy_timeout_s)
        cursor.execute(f"PRAGMA foreign_keys = {'ON' if foreign_keys else 'OFF'}")
        cursor.close()

    # 4. BEGIN IMMEDIATE for writing sessions, a plain (deferred) BEGIN for readers
    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        write = connection.get_execution_options().get(WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def _switch_to_wal(cursor: Any, timeout_s: float) -> None:
    """PRAGMA journal_mode = WAL, retried while another process holds the new file.

    Switching the journal mode needs the file to itself, and SQLite answers "database is
    locked" at once instead of waiting for the busy timeout when a second process is
    creating the same new catalog. The mode is stored in the file, so this only ever waits
    on a brand-new catalog.
    """
    import sqlite3
    import time

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def writer(engine: Engine) -> Engine:
    """The same engine (same pool), marked so that its transactions take the write lock up front."""
    return engine.execution_options(**{WRITE_OPTION: True})


@contextmanager
def write_session(engine: Engine) -> Iterator[Session]:
    """A session in one short write transaction: committed on success, rolled back on error."""
    with Session(writer(engine), expire_on_commit=False) as session, session.begin():
        yield session


@contextmanager
def read_session(engine: Engine) -> Iterator[Session]:
    """A session in one read transaction (a consistent snapshot); never takes the write lock."""
    with Session(engine, expire_on_commit=False) as session, session.begin():
        yield session


@contextmanager
def server_lock(url: str, name: str, on_wait: Callable[[str], None] | None = None) -> Iterator[bool]:
    """Hold the lock `name` in the catalog's database server for as long as the block runs, for every machine
    that shares the catalog (a PostgreSQL session advisory lock, on a connection of its own; the server drops
    it when that connection ends, so a killed run never leaves it behind). If another run holds it, call
    `on_wait` once and wait. Yields False, holding nothing, for a SQLite catalog: it lives on one machine,
    whose file locks (storyflow.core.locks) already exclude its other processes."""
    if make_url(url).get_backend_name() != "postgresql":
        yield False
        return
    import hashlib

    from sqlalchemy import text

    key = int.from_bytes(hashlib.sha256(f"storyflow:{name}".encode()).digest()[:8], "big", signed=True)
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            connection = connection.execution_options(isolation_level="AUTOCOMMIT")
            if not connection.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": key}):
                if on_wait is not None:
                    on_wait("a run on a machine sharing the catalog")
                connection.scalar(text("SELECT pg_advisory_lock(:key)"), {"key": key})
            try:
                yield True
            finally:
                connection.scalar(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
    finally:
        engine.dispose()
