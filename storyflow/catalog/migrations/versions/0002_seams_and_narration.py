"""seams and narration: seam scores, drift and end parents on clips; narration lines; film loudness

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28

Issue 3 (long shots by extension, the film's sound):
- clips: the seam into each segment (jump, median, ratio) and, for a loop's closing segment,
  the seam out of it into its end parent; the drift found and corrected,
  and the clip a loop or backward segment ends leading into (end_parent_*);
- narration_lines: one shot's narration, spoken (speech file, offset in the shot, voice,
  rate, word timings), and film_narration: which lines a film speaks;
- films: the integrated loudness of the film's sound (LUFS), measured.

Written out explicitly, like 0001. Columns are added in batch mode: on SQLite a foreign key
cannot be added by ALTER TABLE, so batch mode rebuilds `clips` (data copied); on PostgreSQL
the same operations are plain ALTER TABLE statements.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # 1. clips: the end parent, the seam into the clip, and the drift corrected in it
    with op.batch_alter_table("clips") as batch:
        batch.add_column(sa.Column("end_parent_sha256", sa.String(64), nullable=True))
        batch.add_column(sa.Column("end_parent_clip_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("seam_jump", sa.Float(), nullable=True))
        batch.add_column(sa.Column("seam_median", sa.Float(), nullable=True))
        batch.add_column(sa.Column("seam_ratio", sa.Float(), nullable=True))
        batch.add_column(sa.Column("end_seam_jump", sa.Float(), nullable=True))
        batch.add_column(sa.Column("end_seam_median", sa.Float(), nullable=True))
        batch.add_column(sa.Column("end_seam_ratio", sa.Float(), nullable=True))
        # NOT NULL on a table with rows needs a default the database fills in
        batch.add_column(sa.Column("drift", sa.Text(), nullable=False, server_default=""))
        batch.create_foreign_key(
            "fk_clips_end_parent_clip_id_clips", "clips", ["end_parent_clip_id"], ["id"], ondelete="SET NULL"
        )
        batch.create_index("ix_clips_end_parent_clip_id", ["end_parent_clip_id"])

    # 2. narration lines, one per spoken shot line
    op.create_table(
        "narration_lines",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cache_key", sa.String(128), nullable=False),
        sa.Column("storyboard_id", sa.Integer(), nullable=False),
        sa.Column("shot_key", sa.String(32), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("offset", sa.Float(), nullable=False),
        sa.Column("rate", sa.Float(), nullable=False),
        sa.Column("voice", sa.String(100), nullable=False),
        sa.Column("backend", sa.String(100), nullable=False),
        sa.Column("words", sa.JSON(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("wall_s", sa.Float(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_narration_lines"),
        sa.UniqueConstraint("cache_key", name="uq_narration_lines_cache_key"),
        sa.ForeignKeyConstraint(
            ["storyboard_id"], ["storyboards.id"], name="fk_narration_lines_storyboard_id_storyboards"
        ),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name="fk_narration_lines_run_id_runs"),
    )
    op.create_index("ix_narration_lines_storyboard_id", "narration_lines", ["storyboard_id"])
    op.create_index("ix_narration_lines_sha256", "narration_lines", ["sha256"])
    op.create_index("ix_narration_lines_run_id", "narration_lines", ["run_id"])

    # 3. which lines a film speaks
    op.create_table(
        "film_narration",
        sa.Column("film_id", sa.Integer(), nullable=False),
        sa.Column("narration_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("film_id", "narration_id", name="pk_film_narration"),
        sa.ForeignKeyConstraint(["film_id"], ["films.id"], name="fk_film_narration_film_id_films", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["narration_id"], ["narration_lines.id"], name="fk_film_narration_narration_id_narration_lines"
        ),
    )
    op.create_index("ix_film_narration_narration_id", "film_narration", ["narration_id"])

    # 4. films: the loudness of the film's sound (no foreign key: a plain ADD COLUMN everywhere)
    with op.batch_alter_table("films") as batch:
        batch.add_column(sa.Column("loudness_lufs", sa.Float(), nullable=True))


def downgrade() -> None:
    # files rows of narration lines and stems point at rows 0001 does not know: drop them too
    op.execute("DELETE FROM files WHERE owner_table = 'narration_lines' OR kind = 'stem'")
    with op.batch_alter_table("films") as batch:
        batch.drop_column("loudness_lufs")
    op.drop_index("ix_film_narration_narration_id", table_name="film_narration")
    op.drop_table("film_narration")
    for index in ("ix_narration_lines_run_id", "ix_narration_lines_sha256", "ix_narration_lines_storyboard_id"):
        op.drop_index(index, table_name="narration_lines")
    op.drop_table("narration_lines")
    with op.batch_alter_table("clips") as batch:
        batch.drop_index("ix_clips_end_parent_clip_id")
        batch.drop_constraint("fk_clips_end_parent_clip_id_clips", type_="foreignkey")
        for column in (
            "drift", "end_seam_ratio", "end_seam_median", "end_seam_jump", "seam_ratio", "seam_median",
            "seam_jump", "end_parent_clip_id", "end_parent_sha256",
        ):  # fmt: skip
            batch.drop_column(column)
