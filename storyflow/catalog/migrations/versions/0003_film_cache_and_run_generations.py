"""film cache and run generations: a film's cache key, credentials, stems and storyboard hash; a run's tally

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05

Issue 4 (the catalog as source of truth):
- films: `cache_key`, the hash of everything the film is made from, so an unchanged film is
  found again instead of stitched again (indexed, NOT unique: a film remade under the same
  key after its files went missing is a new row); `credentials`, the facts about the C2PA
  Content Credentials it carries (signer, issuer, self_made_ca, manifest_label; never a
  key); `stems`, its stem files by name with their hashes; `storyboard_json_sha256`, so
  every file of a film can be checked before it is reused;
- runs: `generations`, what the run made versus reused, per kind:
  {"clip": {"made": 2, "reused": 7}, "film": {"made": 0, "reused": 1}, ...};
- prompts: `changes`, an evolving shot's timed prompts ([{"at": 4.0, "prompt": ...}]), so a
  reused prompt carries them (without them every later segment's cache key would change).

Every new column is nullable: rows written before 0003 keep their values and read as
"not recorded". Written out explicitly, like 0001 and 0002. No foreign keys are added, so
batch mode emits plain ALTER TABLE ... ADD COLUMN on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # 1. films: the cache key (and its index), credentials, stems, the storyboard file's hash
    with op.batch_alter_table("films") as batch:
        batch.add_column(sa.Column("storyboard_json_sha256", sa.String(64), nullable=True))
        batch.add_column(sa.Column("cache_key", sa.String(128), nullable=True))
        batch.add_column(sa.Column("credentials", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("stems", sa.JSON(), nullable=True))
    op.create_index("ix_films_cache_key", "films", ["cache_key"])

    # 2. runs: what each run generated versus reused, per kind
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("generations", sa.JSON(), nullable=True))

    # 3. prompts: the timed prompts of an evolving shot
    with op.batch_alter_table("prompts") as batch:
        batch.add_column(sa.Column("changes", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("prompts") as batch:
        batch.drop_column("changes")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("generations")
    op.drop_index("ix_films_cache_key", table_name="films")
    with op.batch_alter_table("films") as batch:
        for column in ("stems", "credentials", "cache_key", "storyboard_json_sha256"):
            batch.drop_column(column)
