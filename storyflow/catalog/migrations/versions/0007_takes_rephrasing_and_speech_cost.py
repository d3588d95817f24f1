"""takes, rephrased prompts and the cost of hosted speech

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06

Issue 10 (hosted generators): `--candidates N` makes N takes of a shot, so a clip records
which take it belongs to (`clips.take`, 0 for every clip made before) and `picks` records
which take each shot plays, chosen by the scorer or by a person (`storyflow pick`). A prompt
rewritten after a provider's safety filter refused the first says so (`prompts.origin`).
Hosted narration is billed: `narration_lines.cost_usd`.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("clips") as batch:
        batch.add_column(sa.Column("take", sa.Integer(), nullable=False, server_default="0"))
    with op.batch_alter_table("prompts") as batch:
        batch.add_column(sa.Column("origin", sa.Text(), nullable=False, server_default=""))
    with op.batch_alter_table("narration_lines") as batch:
        batch.add_column(sa.Column("cost_usd", sa.Float(), nullable=True))
    op.create_table(
        "picks",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("storyboard_id", sa.Integer(), sa.ForeignKey("storyboards.id"), nullable=False),
        sa.Column("shot_key", sa.String(32), nullable=False),
        sa.Column("take", sa.Integer(), nullable=False),
        sa.Column("picked_by", sa.String(16), nullable=False),
        sa.Column("scorer", sa.Text(), nullable=False, server_default=""),
        sa.Column("scores", sa.JSON(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("storyboard_id", "shot_key"),
    )
    op.create_index("ix_picks_storyboard_id", "picks", ["storyboard_id"])


def downgrade() -> None:
    op.drop_index("ix_picks_storyboard_id", table_name="picks")
    op.drop_table("picks")
    with op.batch_alter_table("narration_lines") as batch:
        batch.drop_column("cost_usd")
    with op.batch_alter_table("prompts") as batch:
        batch.drop_column("origin")
    with op.batch_alter_table("clips") as batch:
        batch.drop_column("take")
