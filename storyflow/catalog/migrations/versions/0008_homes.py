"""homes: every output folder that has written to this catalog

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06

Issue 11 (more than one machine): a catalog on a server (PostgreSQL) may be shared by several
homes, each with its own files at the same relative paths. `catalog verify --repair` run from
one of them must never delete rows whose files live in another: it reads here which homes
(host and folder) have run films against this catalog.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "homes",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.Text(), nullable=False, unique=True),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("homes")
