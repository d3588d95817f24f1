"""The shot catalog: SQLAlchemy tables, migrations, the Catalog API and provenance queries.

    from storyflow.catalog import open_catalog
    with open_catalog() as catalog:          # $STORYFLOW_HOME/catalog.db, upgraded to head
        run_id = catalog.start_run("stories/lighthouse.md", {"seed": 7})
        ...
        print(format_provenance(catalog.provenance("outputs/lighthouse/lighthouse.mp4")))
        print(format_shots(catalog.film_shots("outputs/lighthouse/lighthouse.mp4")))

Importing this package is cheap: SQLAlchemy and Alembic load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from storyflow.catalog.listing import format_shots
    from storyflow.catalog.provenance import format_provenance
    from storyflow.catalog.store import Catalog, canonical_json, canonical_sha256, open_catalog

__all__ = ["Catalog", "canonical_json", "canonical_sha256", "format_provenance", "format_shots", "open_catalog"]


def __getattr__(name: str) -> Any:
    if name in ("Catalog", "open_catalog", "canonical_json", "canonical_sha256"):
        from storyflow.catalog import store

        return getattr(store, name)
    if name == "format_provenance":
        from storyflow.catalog.provenance import format_provenance

        return format_provenance
    if name == "format_shots":
        from storyflow.catalog.listing import format_shots

        return format_shots
    raise AttributeError(f"module 'storyflow.catalog' has no attribute {name!r}")
