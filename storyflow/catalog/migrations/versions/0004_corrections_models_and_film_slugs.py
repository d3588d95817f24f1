"""corrections, models and film slugs: what was corrected on a clip, the model behind a track, a film's slug

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06

Issue 7 (one door to the catalog, contracts real models can fill):
- clips: `corrections`, every correction the check before generation made so a backend could
  make the clip (frames snapped to its frame rule, picture resized or cropped, frame rate
  changed), as a JSON list of sentences; never silent;
- audio_tracks, narration_lines: `model`, the model and revision that made the sound (the
  backend's label alone does not tell two models apart);
- films: `slug`, the story's folder name, so a film row maps to its record on its own
  (filled in from each film's storyboard for films recorded before 0004).

Nullable or with a server default, so rows written before 0004 keep their values. No
foreign keys are added: batch mode emits plain ALTER TABLE ... ADD COLUMN everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # 1. clips: the corrections made so the backend could make them
    with op.batch_alter_table("clips") as batch:
        batch.add_column(sa.Column("corrections", sa.JSON(), nullable=True))

    # 2. the model behind every sound
    for table in ("audio_tracks", "narration_lines"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("model", sa.Text(), nullable=False, server_default=""))

    # 3. films: their slug, copied from the storyboard each was made from
    with op.batch_alter_table("films") as batch:
        batch.add_column(sa.Column("slug", sa.String(200), nullable=False, server_default=""))
    connection = op.get_bind()
    films = sa.table("films", sa.column("id", sa.Integer), sa.column("storyboard_id", sa.Integer),
                     sa.column("slug", sa.String))  # fmt: skip
    boards = sa.table("storyboards", sa.column("id", sa.Integer), sa.column("data", sa.JSON))
    rows = connection.execute(
        sa.select(films.c.id, boards.c.data).join(boards, films.c.storyboard_id == boards.c.id)
    ).all()
    for film_id, data in rows:
        slug = (data or {}).get("slug", "") if isinstance(data, dict) else ""
        if slug:
            connection.execute(sa.update(films).where(films.c.id == film_id).values(slug=slug))


def downgrade() -> None:
    with op.batch_alter_table("films") as batch:
        batch.drop_column("slug")
    for table in ("narration_lines", "audio_tracks"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("model")
    with op.batch_alter_table("clips") as batch:
        batch.drop_column("corrections")
