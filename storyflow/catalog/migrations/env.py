"""Alembic's entry point for the catalog's migrations.

storyflow runs migrations in code (see storyflow.catalog.migrations.upgrade): it passes an
open connection, already inside one write transaction, in `config.attributes["connection"]`.
The `alembic` command line works too, with storyflow/catalog/alembic.ini and a
`sqlalchemy.url` (e.g. `alembic -c storyflow/catalog/alembic.ini -x url=sqlite:///outputs/catalog.db current`).
"""

from __future__ import annotations

from alembic import context

from storyflow.catalog.db import make_engine, writer
from storyflow.catalog.schema import Base

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    return context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")


def run_offline() -> None:
    """Write the SQL to stdout instead of running it (`alembic upgrade head --sql`)."""
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    """Run the migrations on the given connection, or on a new one to `sqlalchemy.url`."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    # Foreign keys off while tables are rebuilt (SQLite batch mode); checked afterwards.
    engine = make_engine(_url(), foreign_keys=False)
    try:
        with writer(engine).begin() as connection:
            _run(connection)
    finally:
        engine.dispose()


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite cannot ALTER most things; batch mode rebuilds the table
        transactional_ddl=True,  # our SQLite connections emit their own BEGIN, so DDL is transactional
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
