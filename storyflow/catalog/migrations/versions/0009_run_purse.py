"""runs.spent_usd, runs.reserved_usd: a run's budget kept where every process can see it

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06

Issue 11 (more than one machine): the shots of one film may be made by several processes
(a Dask cluster, workers on other machines). The run's purse (storyflow.stages.budget) is
kept on its row so that a budget holds across all of them: one conditional UPDATE sets money
aside only while what was spent and set aside stays within the limit.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("spent_usd", sa.Float(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("reserved_usd", sa.Float(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("reserved_usd")
        batch.drop_column("spent_usd")
