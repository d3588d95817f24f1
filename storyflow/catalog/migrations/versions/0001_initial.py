"""initial catalog: stories, storyboards, shots, prompts, runs, clips, audio, films, files

Revision ID: 0001
Revises:
Create Date: 2026-11-21

Written out explicitly (not metadata.create_all): this is what version 0001 of the schema
*is*, frozen, whatever schema.py says later. Later changes go into 0002_..., 0003_...
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamp(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _json(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.JSON(), nullable=nullable)


def _fk(table: str, column: str, referred: str, ondelete: str | None = None) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{referred}.id"], name=f"fk_{table}_{column}_{referred}", ondelete=ondelete
    )


def _index(table: str, *columns: str, unique: bool = False) -> None:
    op.create_index(f"ix_{table}_{'_'.join(columns)}", table, list(columns), unique=unique)


def upgrade() -> None:
    # 1. the story and what the LLM planned from it
    op.create_table(
        "stories",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("slug", sa.String(200), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        _json("front_matter"),
        _timestamp("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_stories"),
        sa.UniqueConstraint("sha256", name="uq_stories_sha256"),
    )
    op.create_table(
        "storyboards",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("story_id", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("cache_key", sa.String(64), nullable=True),
        sa.Column("llm", sa.Text(), nullable=False),
        _json("llm_options"),
        sa.Column("seed", sa.BigInteger(), nullable=False),
        _json("data"),
        sa.Column("wall_s", sa.Float(), nullable=False),
        _timestamp("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_storyboards"),
        sa.UniqueConstraint("sha256", name="uq_storyboards_sha256"),
        _fk("storyboards", "story_id", "stories"),
    )
    _index("storyboards", "story_id")
    _index("storyboards", "cache_key")
    op.create_table(
        "shots",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("storyboard_id", sa.Integer(), nullable=False),
        sa.Column("shot_key", sa.String(32), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        _json("data"),
        sa.PrimaryKeyConstraint("id", name="pk_shots"),
        sa.UniqueConstraint("storyboard_id", "shot_key", name="uq_shots_storyboard_id_shot_key"),
        _fk("shots", "storyboard_id", "storyboards"),
    )
    _index("shots", "sha256")
    op.create_table(
        "prompts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("shot_id", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("cache_key", sa.String(64), nullable=True),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("negative_prompt", sa.Text(), nullable=False),
        sa.Column("caption", sa.Text(), nullable=False),
        sa.Column("template", sa.Text(), nullable=False),
        sa.Column("template_sha256", sa.String(64), nullable=False),
        sa.Column("llm", sa.Text(), nullable=False),
        sa.Column("wall_s", sa.Float(), nullable=False),
        _timestamp("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_prompts"),
        sa.UniqueConstraint("shot_id", "sha256", name="uq_prompts_shot_id_sha256"),
        _fk("prompts", "shot_id", "shots"),
    )
    _index("prompts", "cache_key")

    # 2. runs (their film_id foreign key is added once films exists, step 5)
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("story_source", sa.Text(), nullable=False),
        sa.Column("story_id", sa.Integer(), nullable=True),
        sa.Column("storyboard_id", sa.Integer(), nullable=True),
        sa.Column("film_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("hostname", sa.String(255), nullable=False),
        _json("params"),
        _timestamp("started_at"),
        _timestamp("finished_at", nullable=True),
        sa.Column("clips_generated", sa.Integer(), nullable=False),
        sa.Column("clips_reused", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        _json("timings", nullable=True),
        sa.Column("prefect_flow_run_id", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_runs"),
        _fk("runs", "story_id", "stories"),
        _fk("runs", "storyboard_id", "storyboards"),
    )
    _index("runs", "status")

    # 3. generated media: clips (pointing at their parent clip) and audio tracks
    op.create_table(
        "clips",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cache_key", sa.String(128), nullable=False),
        sa.Column("prompt_id", sa.Integer(), nullable=False),
        sa.Column("shot_key", sa.String(32), nullable=False),
        sa.Column("segment", sa.Integer(), nullable=False),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("num_frames", sa.Integer(), nullable=False),
        sa.Column("fps", sa.Integer(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("strategy", sa.String(32), nullable=False),
        sa.Column("backend", sa.String(100), nullable=False),
        sa.Column("model", sa.Text(), nullable=False),
        sa.Column("seed", sa.BigInteger(), nullable=False),
        _json("options"),
        sa.Column("parent_sha256", sa.String(64), nullable=True),
        sa.Column("parent_clip_id", sa.Integer(), nullable=True),
        sa.Column("conditioning", sa.Text(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        _timestamp("started_at"),
        _timestamp("finished_at"),
        sa.Column("wall_s", sa.Float(), nullable=False),
        sa.Column("cost_usd", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_clips"),
        sa.UniqueConstraint("cache_key", name="uq_clips_cache_key"),
        _fk("clips", "prompt_id", "prompts"),
        _fk("clips", "parent_clip_id", "clips", ondelete="SET NULL"),
        _fk("clips", "run_id", "runs"),
    )
    _index("clips", "prompt_id")
    _index("clips", "sha256")
    _index("clips", "parent_clip_id")
    _index("clips", "run_id")
    op.create_table(
        "audio_tracks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cache_key", sa.String(128), nullable=False),
        sa.Column("storyboard_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("sample_rate", sa.Integer(), nullable=False),
        sa.Column("backend", sa.String(100), nullable=False),
        _json("options"),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("wall_s", sa.Float(), nullable=False),
        _timestamp("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_audio_tracks"),
        sa.UniqueConstraint("cache_key", name="uq_audio_tracks_cache_key"),
        _fk("audio_tracks", "storyboard_id", "storyboards"),
        _fk("audio_tracks", "run_id", "runs"),
    )
    _index("audio_tracks", "storyboard_id")
    _index("audio_tracks", "sha256")
    _index("audio_tracks", "run_id")

    # 4. films and what they are made of
    op.create_table(
        "films",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("storyboard_id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("subtitles_path", sa.Text(), nullable=False),
        sa.Column("subtitles_sha256", sa.String(64), nullable=False),
        sa.Column("poster_path", sa.Text(), nullable=False),
        sa.Column("poster_sha256", sa.String(64), nullable=False),
        sa.Column("contact_sheet_path", sa.Text(), nullable=False),
        sa.Column("contact_sheet_sha256", sa.String(64), nullable=False),
        sa.Column("storyboard_json_path", sa.Text(), nullable=False),
        sa.Column("num_frames", sa.Integer(), nullable=False),
        sa.Column("fps", sa.Integer(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("stitch_strategy", sa.Text(), nullable=False),
        sa.Column("wall_s", sa.Float(), nullable=False),
        _timestamp("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_films"),
        _fk("films", "storyboard_id", "storyboards"),
        _fk("films", "run_id", "runs"),
    )
    _index("films", "storyboard_id")
    _index("films", "run_id")
    _index("films", "sha256")
    op.create_table(
        "film_clips",
        sa.Column("film_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("clip_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("film_id", "position", name="pk_film_clips"),
        _fk("film_clips", "film_id", "films", ondelete="CASCADE"),
        _fk("film_clips", "clip_id", "clips"),
    )
    _index("film_clips", "clip_id")
    op.create_table(
        "film_audio",
        sa.Column("film_id", sa.Integer(), nullable=False),
        sa.Column("audio_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("film_id", "audio_id", name="pk_film_audio"),
        _fk("film_audio", "film_id", "films", ondelete="CASCADE"),
        _fk("film_audio", "audio_id", "audio_tracks"),
    )
    _index("film_audio", "audio_id")

    # 5. runs.film_id -> films.id, now that films exists (batch mode: SQLite rebuilds the table)
    with op.batch_alter_table("runs") as batch:
        batch.create_foreign_key("fk_runs_film_id_films", "films", ["film_id"], ["id"])

    # 6. every file storyflow wrote, and which row made it
    op.create_table(
        "files",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("owner_table", sa.String(32), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        _timestamp("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_files"),
        sa.UniqueConstraint("path", name="uq_files_path"),
    )
    _index("files", "sha256")
    _index("files", "owner_table", "owner_id")


def downgrade() -> None:
    # runs <-> films point at each other: break that loop first, then drop in reverse order.
    with op.batch_alter_table("runs") as batch:
        batch.drop_constraint("fk_runs_film_id_films", type_="foreignkey")
    for table in (
        "files", "film_audio", "film_clips", "films", "audio_tracks", "clips",
        "runs", "prompts", "shots", "storyboards", "stories",
    ):  # fmt: skip
        op.drop_table(table)
