"""The Catalog: the store (runs, generations, files) with its read-only queries on top.

Store (store.py) records and finds; provenance, listings and integrity are queries over
it (provenance.py, listing.py, integrity.py); this class puts them behind one object, so
`catalog.provenance(path)` reads as what it does and no module below imports this one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from storyflow.catalog.integrity import verify
from storyflow.catalog.listing import film_shots, run_detail
from storyflow.catalog.provenance import provenance
from storyflow.catalog.store import Store, _database_errors


class Catalog(Store):
    """The shot catalog: one database (any SQLAlchemy URL) and the output folder it describes."""

    @_database_errors
    def provenance(self, path: Path | str) -> dict:
        """How the file at `path` was made, back to the story, as a JSON-able tree."""
        return provenance(self, Path(path))

    @_database_errors
    def film_shots(self, path: Path | str) -> dict:
        """The shots of the film at `path` (or with its content), each with its segments and narration."""
        return film_shots(self, Path(path))

    @_database_errors
    def run_detail(self, run_id: int) -> dict:
        """One run (as runs() gives it) with what it generated and what its film reused from earlier runs."""
        return run_detail(self, run_id)

    @_database_errors
    def verify(self, repair: bool = False) -> dict:
        """Check every row against its file and every file under home against the rows; repair=True fixes.

        See storyflow.catalog.integrity for the rules (what is storyflow's own metadata, what cascades).
        The caller holds the output folder's lock exclusively (storyflow.core.locks.hold(home)) while repairing.
        """
        return verify(self, repair=repair)


def open_catalog(settings: Any | None = None) -> Catalog:
    """The catalog the settings name: STORYFLOW_CATALOG_URL, else $STORYFLOW_HOME/catalog.db."""
    if settings is None:
        from storyflow.core.config import load_settings

        settings = load_settings()
    return Catalog.open(settings.resolved_catalog_url, settings.home)
