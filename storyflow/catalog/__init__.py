"""The shot catalog: SQLAlchemy tables, migrations, the Catalog API and provenance queries.

    from storyflow.catalog import open_catalog
    with open_catalog() as catalog:          # $STORYFLOW_HOME/catalog.db, upgraded to head
        run_id = catalog.start_run("stories/lighthouse.md", {"seed": 7})
        ...
        print(format_provenance(catalog.provenance("outputs/lighthouse/lighthouse.mp4")))
        print(format_shots(catalog.film_shots("outputs/lighthouse/lighthouse.mp4")))
        print(format_run_detail(catalog.run_detail(run_id)))
        print(format_verify(catalog.verify()))

Importing this package is cheap: SQLAlchemy and Alembic load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from storyflow.catalog.integrity import format_verify
    from storyflow.catalog.listing import format_run_detail, format_shots
    from storyflow.catalog.provenance import format_provenance
    from storyflow.catalog.store import Catalog, canonical_json, canonical_sha256, open_catalog

__all__ = [
    "Catalog",
    "canonical_json",
    "canonical_sha256",
    "format_provenance",
    "format_run_detail",
    "format_shots",
    "format_verify",
    "open_catalog",
]


def __getattr__(name: str) -> Any:
    if name in ("Catalog", "open_catalog", "canonical_json", "canonical_sha256"):
        from storyflow.catalog import store

        return getattr(store, name)
    if name == "format_provenance":
        from storyflow.catalog.provenance import format_provenance

        return format_provenance
    if name in ("format_shots", "format_run_detail"):
        from storyflow.catalog import listing

        return getattr(listing, name)
    if name == "format_verify":
        from storyflow.catalog.integrity import format_verify

        return format_verify
    raise AttributeError(f"module 'storyflow.catalog' has no attribute {name!r}")
