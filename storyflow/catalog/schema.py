"""The catalog's tables, as SQLAlchemy 2.0 typed ORM classes.

Read in pipeline order: Story -> StoryboardRow -> ShotRow -> PromptRow -> ClipRow (-> parent
ClipRow, -> end parent ClipRow) -> NarrationRow, AudioRow -> FilmRow, plus RunRow (one
`storyflow film` invocation) and FileRow (one row per file storyflow wrote, so "which row
made this file?" is one lookup).

Every artifact carries its sha256; every derived row points at its inputs. Paths are stored
relative to STORYFLOW_HOME (posix) when inside it, absolute otherwise. Columns use portable
types only (no SQLite or PostgreSQL specifics), so the same schema runs on either.

This module is the ORM's view of the schema; the migrations under migrations/versions/
create and change it. A test checks that the two agree.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Named constraints: Alembic needs names to alter or drop a constraint later (and SQLite's
# batch mode needs them to rebuild a table), so every constraint gets a predictable one.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

SHA256 = String(64)
RUN_STATUSES = ("running", "completed", "failed", "crashed", "cancelled")
FILE_KINDS = ("clip", "audio", "narration", "film", "subtitles", "poster", "contact_sheet", "storyboard", "stem")


def utcnow() -> datetime:
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator):
    """A timezone-aware UTC timestamp on every database (SQLite drops the zone; we put it back)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the catalog; use datetime.now(UTC)")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dict[str, Any]: JSON, datetime: UtcDateTime}


class StoryRow(Base):
    """A story file's content, once per distinct content (sha256 of the file's bytes)."""

    __tablename__ = "stories"

    id: Mapped[int] = mapped_column(primary_key=True)
    sha256: Mapped[str] = mapped_column(SHA256, unique=True)
    title: Mapped[str] = mapped_column(Text)
    slug: Mapped[str] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(Text)  # the path it was first read from
    text: Mapped[str] = mapped_column(Text)
    front_matter: Mapped[dict[str, Any]]  # style, aspect, size, fps, seed, characters...
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class StoryboardRow(Base):
    """A planned storyboard; content-addressed by the sha256 of its canonical JSON."""

    __tablename__ = "storyboards"

    id: Mapped[int] = mapped_column(primary_key=True)
    story_id: Mapped[int] = mapped_column(ForeignKey("stories.id"), index=True)
    sha256: Mapped[str] = mapped_column(SHA256, unique=True)
    cache_key: Mapped[str | None] = mapped_column(SHA256, index=True)  # of the plan call's inputs
    llm: Mapped[str] = mapped_column(Text)
    llm_options: Mapped[dict[str, Any]]
    planner_model: Mapped[str] = mapped_column(Text, default="", server_default="")  # the model and revision
    # "planned" by the LLM, or read from a storyboard file: "from a file, as planned" / "edited by hand"
    origin: Mapped[str] = mapped_column(Text, default="planned", server_default="planned")
    coverage: Mapped[float | None] = mapped_column(Float)  # the share of the story's words in some shot
    usage: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # the LLM's calls, tokens, latency, cost
    seed: Mapped[int] = mapped_column(BigInteger)  # stories allow seeds up to 2**32
    data: Mapped[dict[str, Any]]  # the whole Storyboard, as JSON
    wall_s: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    story: Mapped[StoryRow] = relationship()


class ShotRow(Base):
    """One shot of a storyboard."""

    __tablename__ = "shots"
    __table_args__ = (UniqueConstraint("storyboard_id", "shot_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    storyboard_id: Mapped[int] = mapped_column(ForeignKey("storyboards.id"))
    shot_key: Mapped[str] = mapped_column(String(32))  # "s01"
    position: Mapped[int]
    sha256: Mapped[str] = mapped_column(SHA256, index=True)  # of the shot's canonical JSON
    data: Mapped[dict[str, Any]]

    storyboard: Mapped[StoryboardRow] = relationship()


class PromptRow(Base):
    """One version of a shot's prompt (a shot may be rewritten by several LLMs or templates)."""

    __tablename__ = "prompts"
    __table_args__ = (UniqueConstraint("shot_id", "sha256"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    shot_id: Mapped[int] = mapped_column(ForeignKey("shots.id"))
    sha256: Mapped[str] = mapped_column(SHA256)  # of the ShotPrompt's canonical JSON
    cache_key: Mapped[str | None] = mapped_column(SHA256, index=True)  # of the rewrite call's inputs
    prompt: Mapped[str] = mapped_column(Text)
    negative_prompt: Mapped[str] = mapped_column(Text)
    caption: Mapped[str] = mapped_column(Text)
    template: Mapped[str] = mapped_column(Text)
    template_sha256: Mapped[str] = mapped_column(String(64))
    llm: Mapped[str] = mapped_column(Text)
    model: Mapped[str] = mapped_column(Text, default="", server_default="")  # the LLM's model and revision
    usage: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # the LLM's calls, tokens, latency, cost
    # an evolving shot's later prompts: [{"at": seconds, "prompt": text}, ...]
    changes: Mapped[list | None] = mapped_column(JSON)
    # "" when rewritten from the shot; else how it came to be ("rephrased after a safety filter refused: ...") (0007)
    origin: Mapped[str] = mapped_column(Text, default="", server_default="")
    wall_s: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    shot: Mapped[ShotRow] = relationship()


class RunRow(Base):
    """One invocation of the pipeline: what it was asked, how it ended, what it did."""

    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    story_source: Mapped[str] = mapped_column(Text)
    story_id: Mapped[int | None] = mapped_column(ForeignKey("stories.id"))
    storyboard_id: Mapped[int | None] = mapped_column(ForeignKey("storyboards.id"))
    # runs <-> films point at each other; this side is added after both tables exist.
    film_id: Mapped[int | None] = mapped_column(ForeignKey("films.id", use_alter=True))
    status: Mapped[str] = mapped_column(String(16), index=True)  # one of RUN_STATUSES
    pid: Mapped[int]
    hostname: Mapped[str] = mapped_column(String(255))
    params: Mapped[dict[str, Any]]
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    clips_generated: Mapped[int] = mapped_column(default=0)
    clips_reused: Mapped[int] = mapped_column(default=0)
    error: Mapped[str | None] = mapped_column(Text)
    timings: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    prefect_flow_run_id: Mapped[str | None] = mapped_column(String(64))
    # What the run made versus found made: {"clip": {"made": 2, "reused": 7}, "film": {...}, ...}
    generations: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # The run's purse (0009), shared by every process making its clips: what they cost, and what is
    # set aside for clips being made (storyflow.stages.budget).
    spent_usd: Mapped[float] = mapped_column(default=0.0, server_default="0")
    reserved_usd: Mapped[float] = mapped_column(default=0.0, server_default="0")


class HomeRow(Base):
    """An output folder (on a host) that has run films against this catalog (0008): a catalog on a server may
    be shared by several, each holding its own files; `catalog verify --repair` never deletes another's rows."""

    __tablename__ = "homes"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(Text, unique=True)  # "<host>:<absolute path>"
    host: Mapped[str] = mapped_column(String(255))
    path: Mapped[str] = mapped_column(Text)
    first_seen: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(default=utcnow)


class JobRow(Base):
    """A job a hosted provider accepted (and bills for), recorded before anyone waits for it.

    Keyed by the cache key of the generation it makes: a run killed while the job was in
    flight finds it "running" here and resumes polling it instead of paying for a new one.
    """

    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    cache_key: Mapped[str] = mapped_column(String(128), index=True)
    backend: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(Text)
    job_id: Mapped[str] = mapped_column(Text)  # the provider's own id (an operation name, a request id)
    # running, done, failed, filtered; or expired: left running longer than the provider keeps results
    status: Mapped[str] = mapped_column(String(16), index=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"))
    cost_usd: Mapped[float | None] = mapped_column(Float)
    detail: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]


class ClipRow(Base):
    """One generated video file: one backend call. Keyed by the hash of what determined it."""

    __tablename__ = "clips"

    id: Mapped[int] = mapped_column(primary_key=True)
    cache_key: Mapped[str] = mapped_column(String(128), unique=True)
    prompt_id: Mapped[int] = mapped_column(ForeignKey("prompts.id"), index=True)
    shot_key: Mapped[str] = mapped_column(String(32))
    segment: Mapped[int]
    prompt: Mapped[str] = mapped_column(Text)  # the text in force for this segment
    path: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(SHA256, index=True)
    bytes: Mapped[int] = mapped_column(BigInteger)
    num_frames: Mapped[int]
    fps: Mapped[int]
    width: Mapped[int]
    height: Mapped[int]
    strategy: Mapped[str] = mapped_column(String(32))
    backend: Mapped[str] = mapped_column(String(100))
    model: Mapped[str] = mapped_column(Text)
    seed: Mapped[int] = mapped_column(BigInteger)
    options: Mapped[dict[str, Any]]
    parent_sha256: Mapped[str | None] = mapped_column(SHA256)
    parent_clip_id: Mapped[int | None] = mapped_column(
        ForeignKey("clips.id", ondelete="SET NULL"), index=True
    )
    conditioning: Mapped[str] = mapped_column(Text)  # which frames of the parent, e.g. "last 1 frame"
    # A loop's closing segment or a backward extension ends leading into this clip's head.
    end_parent_sha256: Mapped[str | None] = mapped_column(SHA256)
    end_parent_clip_id: Mapped[int | None] = mapped_column(ForeignKey("clips.id", ondelete="SET NULL"), index=True)
    # The seam into this clip from the one played before it (SeamScore); null for a first segment.
    seam_jump: Mapped[float | None] = mapped_column(Float)
    seam_median: Mapped[float | None] = mapped_column(Float)
    seam_ratio: Mapped[float | None] = mapped_column(Float)
    # The seam out of this clip into its end parent's head (a loop's wrap-around); else null.
    end_seam_jump: Mapped[float | None] = mapped_column(Float)
    end_seam_median: Mapped[float | None] = mapped_column(Float)
    end_seam_ratio: Mapped[float | None] = mapped_column(Float)
    drift: Mapped[str] = mapped_column(Text, default="", server_default="")  # drift found and corrected
    # What the check before generation changed so the backend could make it (0004): frames
    # snapped, picture resized or cropped, frame rate changed; null or [] when nothing was.
    corrections: Mapped[list | None] = mapped_column(JSON)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"), index=True)
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime]
    wall_s: Mapped[float] = mapped_column(Float)
    cost_usd: Mapped[float | None] = mapped_column(Float)
    take: Mapped[int] = mapped_column(default=0, server_default="0")  # which of the shot's takes (0007)

    prompt_row: Mapped[PromptRow] = relationship()
    parent: Mapped[ClipRow | None] = relationship(remote_side=[id], foreign_keys=[parent_clip_id])
    end_parent: Mapped[ClipRow | None] = relationship(remote_side=[id], foreign_keys=[end_parent_clip_id])


class PickRow(Base):
    """Which take of a shot a film plays (--candidates): the scorer's choice, or a person's (`storyflow pick`).

    One row per storyboard and shot. A person's pick stands until they pick again: the scorer
    never overrides it. `scores` keeps every take's score and measures, as the scorer saw them.
    """

    __tablename__ = "picks"
    __table_args__ = (UniqueConstraint("storyboard_id", "shot_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    storyboard_id: Mapped[int] = mapped_column(ForeignKey("storyboards.id"), index=True)
    shot_key: Mapped[str] = mapped_column(String(32))
    take: Mapped[int]
    picked_by: Mapped[str] = mapped_column(String(16))  # "scorer" or "person"
    scorer: Mapped[str] = mapped_column(Text, default="", server_default="")
    scores: Mapped[list[Any] | None] = mapped_column(JSON)  # [{"take": 0, "score": .., "measures": {..}}, ...]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class NarrationRow(Base):
    """One shot's narration line, spoken: the speech file and where it sits inside its shot."""

    __tablename__ = "narration_lines"

    id: Mapped[int] = mapped_column(primary_key=True)
    cache_key: Mapped[str] = mapped_column(String(128), unique=True)
    storyboard_id: Mapped[int] = mapped_column(ForeignKey("storyboards.id"), index=True)
    shot_key: Mapped[str] = mapped_column(String(32))
    text: Mapped[str] = mapped_column(Text)
    path: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(SHA256, index=True)
    bytes: Mapped[int] = mapped_column(BigInteger)
    seconds: Mapped[float] = mapped_column(Float)  # length of the speech
    offset: Mapped[float] = mapped_column(Float)  # seconds from the shot's first frame to the first word
    rate: Mapped[float] = mapped_column(Float)  # words per minute
    voice: Mapped[str] = mapped_column(String(100))
    backend: Mapped[str] = mapped_column(String(100))
    model: Mapped[str] = mapped_column(Text, default="", server_default="")  # the model and revision (0004)
    words: Mapped[list[Any]] = mapped_column(JSON)  # [[start, end, word], ...] inside the speech
    cost_usd: Mapped[float | None] = mapped_column(Float)  # what a hosted speech service charged (0007)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"), index=True)
    wall_s: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AudioRow(Base):
    """One generated audio file (music bed, narration, effects or the final mix)."""

    __tablename__ = "audio_tracks"

    id: Mapped[int] = mapped_column(primary_key=True)
    cache_key: Mapped[str] = mapped_column(String(128), unique=True)
    storyboard_id: Mapped[int] = mapped_column(ForeignKey("storyboards.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    path: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(SHA256, index=True)
    bytes: Mapped[int] = mapped_column(BigInteger)
    seconds: Mapped[float] = mapped_column(Float)
    sample_rate: Mapped[int]
    backend: Mapped[str] = mapped_column(String(100))
    model: Mapped[str] = mapped_column(Text, default="", server_default="")  # the model and revision (0004)
    options: Mapped[dict[str, Any]]
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"), index=True)
    wall_s: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class FilmRow(Base):
    """A stitched film and the files made beside it."""

    __tablename__ = "films"

    id: Mapped[int] = mapped_column(primary_key=True)
    storyboard_id: Mapped[int] = mapped_column(ForeignKey("storyboards.id"), index=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"), index=True)
    slug: Mapped[str] = mapped_column(String(200), default="", server_default="")  # the story's folder (0004)
    path: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(SHA256, index=True)
    subtitles_path: Mapped[str] = mapped_column(Text)
    subtitles_sha256: Mapped[str] = mapped_column(SHA256)
    poster_path: Mapped[str] = mapped_column(Text)
    poster_sha256: Mapped[str] = mapped_column(SHA256)
    contact_sheet_path: Mapped[str] = mapped_column(Text)
    contact_sheet_sha256: Mapped[str] = mapped_column(SHA256)
    storyboard_json_path: Mapped[str] = mapped_column(Text)
    storyboard_json_sha256: Mapped[str | None] = mapped_column(SHA256)  # null for films recorded before 0003
    num_frames: Mapped[int]
    fps: Mapped[int]
    width: Mapped[int]
    height: Mapped[int]
    stitch_strategy: Mapped[str] = mapped_column(Text)
    loudness_lufs: Mapped[float | None] = mapped_column(Float)  # integrated loudness of its sound, measured
    # The hash of everything the film is made from; not unique: a film remade under the same
    # key (its files went missing or changed) is a new row, and several runs may reuse one row.
    cache_key: Mapped[str | None] = mapped_column(String(128), index=True)
    # C2PA Content Credentials it carries: signer, issuer, self_made_ca, manifest_label (never a key)
    credentials: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Its stems by name: {"music": {"path": ..., "sha256": ..., "bytes": ...}}; null before 0003
    stems: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    wall_s: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    storyboard: Mapped[StoryboardRow] = relationship()


class FilmClipRow(Base):
    """Which clips a film plays, in order."""

    __tablename__ = "film_clips"

    film_id: Mapped[int] = mapped_column(ForeignKey("films.id", ondelete="CASCADE"), primary_key=True)
    position: Mapped[int] = mapped_column(primary_key=True)
    clip_id: Mapped[int] = mapped_column(ForeignKey("clips.id"), index=True)


class FilmAudioRow(Base):
    """Which audio tracks a film carries."""

    __tablename__ = "film_audio"

    film_id: Mapped[int] = mapped_column(ForeignKey("films.id", ondelete="CASCADE"), primary_key=True)
    audio_id: Mapped[int] = mapped_column(ForeignKey("audio_tracks.id"), primary_key=True, index=True)


class FilmNarrationRow(Base):
    """Which narration lines a film speaks."""

    __tablename__ = "film_narration"

    film_id: Mapped[int] = mapped_column(ForeignKey("films.id", ondelete="CASCADE"), primary_key=True)
    narration_id: Mapped[int] = mapped_column(ForeignKey("narration_lines.id"), primary_key=True, index=True)


class FileRow(Base):
    """One file storyflow wrote: where it is, what it hashes to, and which row made it."""

    __tablename__ = "files"
    __table_args__ = (Index(None, "owner_table", "owner_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    path: Mapped[str] = mapped_column(Text, unique=True)
    sha256: Mapped[str] = mapped_column(SHA256, index=True)
    bytes: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(32))  # one of FILE_KINDS
    owner_table: Mapped[str] = mapped_column(String(32))  # "clips", "audio_tracks", "narration_lines" or "films"
    owner_id: Mapped[int]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
