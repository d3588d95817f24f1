"""Run the catalog's Alembic migrations from code: no alembic.ini needed in the working folder.

Migrations are named and ordered (versions/0001_initial.py, 0002_..., ...). Opening a
catalog upgrades it to the newest one, inside one write transaction, so two processes
opening a fresh catalog at once cannot both create it.
"""

from __future__ import annotations

from pathlib import Path

from storyflow.core.errors import CatalogError

MIGRATIONS_DIR = Path(__file__).resolve().parent
MIGRATION_LOCK_ID = 0x5F0_C0DE  # PostgreSQL advisory lock key held while migrating


def alembic_config(connection: object | None = None, url: str | None = None):
    """An Alembic Config pointing at this folder, optionally bound to an open connection."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))  # ConfigParser escaping
    config.attributes["connection"] = connection
    return config


def revisions() -> list[str]:
    """Every revision id, oldest first."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config())
    return [rev.revision for rev in reversed(list(script.walk_revisions("base", "heads")))]


def head_revision() -> str:
    """The newest revision id this version of storyflow knows: its newest file's number. Every revision id is
    its file's 4-digit prefix (tests/catalog/test_migrations.py checks it against Alembic's walk), so opening
    a catalog asks this and current_revision() and imports Alembic (a quarter of a second) only to upgrade."""
    return max(path.name[:4] for path in (MIGRATIONS_DIR / "versions").glob("[0-9][0-9][0-9][0-9]_*.py"))


def current_revision(engine) -> str | None:
    """The revision the database is at (Alembic's alembic_version table), or None for an empty database."""
    from sqlalchemy import inspect, text

    with engine.connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return None
        return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def upgrade(target, revision: str = "head") -> None:
    """Upgrade the catalog at `target` (a URL, or an Engine) to `revision` (default: the newest)."""
    _migrate(target, "upgrade", revision)


def downgrade(target, revision: str) -> None:
    """Downgrade the catalog at `target` (a URL, or an Engine) to `revision` ("base" drops every table)."""
    _migrate(target, "downgrade", revision)


def _migrate(target, direction: str, revision: str) -> None:
    from alembic import command
    from alembic.util import CommandError
    from sqlalchemy.exc import SQLAlchemyError

    from storyflow.catalog.db import make_engine, writer

    # Foreign keys off while SQLite rebuilds tables in batch mode; checked before commit.
    # An Engine is used as it is (an in-memory SQLite database exists only inside its engine).
    own_engine = isinstance(target, str)
    engine = make_engine(target, foreign_keys=False) if own_engine else target
    try:
        with writer(engine).begin() as connection:
            # One migrator at a time: SQLite's BEGIN IMMEDIATE (see db.py) already ensures it;
            # on PostgreSQL a transaction-scoped advisory lock does, released at commit.
            if engine.dialect.name == "postgresql":
                connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_ID})")
            config = alembic_config(connection)
            getattr(command, direction)(config, revision)
            if engine.dialect.name == "sqlite":
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise CatalogError(
                        f"migration to {revision} left {len(broken)} rows pointing at missing rows "
                        f"(first: {tuple(broken[0])}); nothing was changed",
                        fix="report this with the catalog file attached; the catalog is as it was",
                    )
    except CommandError as exc:
        newer = "Can't locate revision" in str(exc)
        raise CatalogError(
            f"cannot migrate the catalog to {revision}: {exc}",
            fix="the catalog was made by a newer storyflow: upgrade storyflow, or point "
            "STORYFLOW_CATALOG_URL (or STORYFLOW_HOME) at another catalog"
            if newer
            else f"pass one of the known revisions: {', '.join(revisions())}, head or base",
        ) from None
    except SQLAlchemyError as exc:
        raise CatalogError(
            f"cannot migrate the catalog: {exc.__class__.__name__}: {str(exc).splitlines()[0]}",
            fix="check that STORYFLOW_CATALOG_URL (or $STORYFLOW_HOME/catalog.db) is a storyflow "
            "catalog you can write, or move it aside to start a new one",
        ) from None
    finally:
        if own_engine:
            engine.dispose()
