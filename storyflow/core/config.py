"""Settings: every knob in one flat, documented place.

Each field can be set by an environment variable with the prefix STORYFLOW_
(for example STORYFLOW_HOME=/data/films) or by a `.env` file in the working folder.
Command-line options override these for a single run.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="STORYFLOW_", env_file=".env", extra="ignore")

    # Where everything storyflow writes goes: films, clips, audio, the catalog, Prefect's
    # own state. Nothing is written outside this folder.
    home: Path = Field(default=Path("outputs"))

    # SQLAlchemy URL of the shot catalog; empty means SQLite at $STORYFLOW_HOME/catalog.db.
    catalog_url: str = ""

    # Default backends, by registry name (see `storyflow backends`).
    llm: str = "embedded"
    video_backend: str = "animatic"
    music_backend: str = "procedural"
    speech_backend: str = "espeak"
    effects_backend: str = "procedural"

    # Narration: the voice (a speech-backend voice name; empty keeps the backend's default)
    # and what happens when a line is longer than its shot: "stretch" lengthens the shot
    # (more extension segments), "pace" first speaks faster (up to 1.3x), then stretches;
    # "auto" paces when the story asks for a film length, else stretches.
    voice: str = ""
    narration_fit: str = "auto"

    # The film's sound is normalised to this integrated loudness (LUFS, ITU-R BS.1770).
    target_lufs: float = Field(default=-16.0, ge=-40.0, le=-6.0)

    # Draw the subtitles into the picture too (re-encodes every frame).
    burn_subtitles: bool = False

    # Sign every film with C2PA Content Credentials. The certificate and key come from
    # STORYFLOW_C2PA_CERT / STORYFLOW_C2PA_KEY (PEM files); without them storyflow makes a
    # local signing CA under $STORYFLOW_HOME/c2pa (valid, but trusted on this machine only).
    credentials: bool = True
    # ...and every clip as it is made (each then says it was generated, by which model).
    sign_clips: bool = False

    # How many shots are generated at once. A backend may lower it (its max_concurrency).
    max_concurrency: int = Field(default=2, ge=1, le=64)

    # How clips are joined: "smart" stream-copies clip bodies and re-encodes only
    # transitions; "moviepy" re-encodes the whole film through moviepy.
    stitch: str = "smart"

    # Show full tracebacks and Prefect's own logs.
    debug: bool = False

    @field_validator("stitch")
    @classmethod
    def _known_stitch(cls, value: str) -> str:
        if value not in ("smart", "moviepy"):
            raise ValueError("stitch must be 'smart' or 'moviepy'")
        return value

    @field_validator("narration_fit")
    @classmethod
    def _known_fit(cls, value: str) -> str:
        if value not in ("auto", "stretch", "pace"):
            raise ValueError("narration_fit must be 'auto', 'stretch' or 'pace'")
        return value

    @property
    def resolved_catalog_url(self) -> str:
        return self.catalog_url or f"sqlite:///{(self.home / 'catalog.db').resolve()}"

    @property
    def prefect_home(self) -> Path:
        """Prefect keeps its database and settings here, inside our output folder."""
        return self.home / ".prefect"


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment, with explicit overrides (None means 'not given')."""
    from pydantic import ValidationError

    from storyflow.core.errors import InputError

    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**given)
    except ValidationError as exc:
        problems = "; ".join(
            f"STORYFLOW_{'_'.join(str(p) for p in err['loc']).upper()}: {err['msg']}"
            for err in exc.errors()
        )
        raise InputError(
            f"invalid setting: {problems}",
            fix="correct or unset that environment variable (or the line in .env)",
        ) from None
