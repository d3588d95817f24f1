"""The shot catalog: where every generation is recorded, found again, and traced back.

    api.py          Catalog: the store plus its queries, behind one object; open_catalog()
    door.py         the door the stages go through: reuse what is recorded, or make and record
    store.py        runs, generations and their files: one short transaction per call
    ledger.py       the paid jobs of hosted providers: what a job's record says
    picks.py        which take of each shot a film plays (--candidates, `storyflow pick`)
    provenance.py   from any file back to its story (read-only)
    listing.py      a film shot by shot; what a run made and reused (read-only)
    integrity.py    do the rows and the files agree? (and the repair)
    schema.py, db.py, migrations/   the tables, engines and sessions, named Alembic migrations

    from storyflow.catalog import open_catalog
    with open_catalog() as catalog:          # $STORYFLOW_HOME/catalog.db, upgraded to head
        tree = catalog.provenance("outputs/lighthouse/lighthouse.mp4")

Everyone outside this package imports only the names below (an import-linter contract).
The catalog may import storyflow.core and storyflow.media: never a stage, a backend,
flows or Prefect. Importing this package is cheap: SQLAlchemy and Alembic load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from storyflow.catalog.api import Catalog, open_catalog, open_storage
    from storyflow.catalog.db import server_lock
    from storyflow.catalog.door import Generations
    from storyflow.catalog.kinds import AUDIO, CLIP, FILM, NARRATION, PROMPT, STORYBOARD, Kind

__all__ = ["AUDIO", "CLIP", "FILM", "NARRATION", "PROMPT", "STORYBOARD", "Catalog", "Generations", "Kind",
           "open_catalog", "open_storage", "server_lock"]  # fmt: skip

_WHERE = {
    "Catalog": "api",
    "open_catalog": "api",
    "open_storage": "api",
    "Generations": "door",
    "server_lock": "db",
    **dict.fromkeys(("AUDIO", "CLIP", "FILM", "NARRATION", "PROMPT", "STORYBOARD", "Kind"), "kinds"),
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(f"storyflow.catalog.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'storyflow.catalog' has no attribute {name!r}")
