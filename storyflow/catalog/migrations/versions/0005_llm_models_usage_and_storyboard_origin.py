"""LLM models, usage and storyboard origin: who planned and wrote what, at what cost, edited or not

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06

Issue 8 (real LLMs plan the storyboard and write the prompts):
- storyboards: `planner_model`, the model (and revision) that planned it; `origin`, "planned"
  by the LLM or read from a storyboard file ("from a file, as planned" / "edited by hand");
  `coverage`, the share of the story's words some shot covers; `usage`, the LLM's calls,
  repairs, tokens, latency and cost where the server reported them;
- prompts: `model`, the LLM's model that wrote the prompt (its template and the template's
  sha256 were recorded already); `usage`, as for storyboards.

Nullable or with a server default, so rows written before 0005 keep their values (a storyboard
recorded before was planned: its origin is "planned").
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("storyboards") as batch:
        batch.add_column(sa.Column("planner_model", sa.Text(), nullable=False, server_default=""))
        batch.add_column(sa.Column("origin", sa.Text(), nullable=False, server_default="planned"))
        batch.add_column(sa.Column("coverage", sa.Float(), nullable=True))
        batch.add_column(sa.Column("usage", sa.JSON(), nullable=True))
    with op.batch_alter_table("prompts") as batch:
        batch.add_column(sa.Column("model", sa.Text(), nullable=False, server_default=""))
        batch.add_column(sa.Column("usage", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("prompts") as batch:
        batch.drop_column("usage")
        batch.drop_column("model")
    with op.batch_alter_table("storyboards") as batch:
        for column in ("usage", "coverage", "origin", "planner_model"):
            batch.drop_column(column)
