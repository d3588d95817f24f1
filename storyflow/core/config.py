"""Settings: every STORYFLOW_ variable, in one flat, documented place.

Each field can be set by an environment variable with the prefix STORYFLOW_ (for example
STORYFLOW_HOME=/data/films) or by a `.env` file in the working folder; command-line
options override them for a single run. Nothing in storyflow reads a STORYFLOW_ variable
any other way.

Two parts, one declaration each:
- FilmChoices: what one film run may choose (backends and their options, sound,
  subtitles, stitching, signing, concurrency). Plain, picklable data: the film flow takes
  it as a parameter, so it is shown in the Prefect UI and recorded with the run. It never
  holds a secret.
- Settings: those choices plus what belongs to the machine that runs the film (where
  outputs go, the catalog's URL with its password, the signing key, the prompts folder).
  They are read from the environment inside the run, wherever it runs, and never become a
  Prefect parameter, a log line or an artifact.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class FilmChoices(BaseModel):
    """What one film run may choose; the film flow's parameter (never a secret)."""

    model_config = ConfigDict(extra="forbid")

    # Backends, by registry name (see `storyflow backends`), and their options (KEY=VALUE on
    # the command line, a JSON object in the environment: STORYFLOW_VIDEO_OPTIONS='{"caption": false}').
    llm: str = "embedded"
    llm_options: dict[str, Any] = {}
    video_backend: str = "animatic"
    video_options: dict[str, Any] = {}
    music_backend: str = "procedural"
    music_options: dict[str, Any] = {}
    speech_backend: str = "espeak"
    speech_options: dict[str, Any] = {}
    effects_backend: str = "procedural"
    effects_options: dict[str, Any] = {}

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

    # Sign every film with C2PA Content Credentials (see Settings.c2pa_cert)...
    credentials: bool = True
    # ...and every clip as it is made (each then says it was generated, by which model).
    sign_clips: bool = False

    # How many shots are generated at once. A backend may lower it (its max_concurrency).
    max_concurrency: int = Field(default=2, ge=1, le=64)

    # The most this run may spend on hosted video, in US dollars (None: no limit). The plan's
    # cost is estimated before the first paid call (clips the catalog holds are free) and a
    # plan over it is refused; a run whose real costs run past the estimate stops asking for
    # new clips when it is spent. Local backends cost nothing.
    budget_usd: float | None = Field(default=None, ge=0)

    # Takes: make this many of every shot (each from its own seed) and play the one the scorer
    # rates best; every take is kept in the catalog, and `storyflow pick` swaps one in. The
    # scorer is "measures" (sharpness, motion, flicker, continuity: no model needed), "first",
    # or your own as "package.module:function" (see storyflow.stages.takes).
    candidates: int = Field(default=1, ge=1, le=16)
    scorer: str = "measures"

    # Where the shots are made (each shot's generate task, and its rewrite and effects):
    # "threads" in the run's own process, max_concurrency at once; "dask" on a Dask cluster
    # (prefect-dask): the scheduler at dask_address (tcp://host:8786), else a local cluster of
    # max_concurrency processes started for the run. With shot_pool, a Prefect work pool's name,
    # each shot is made by a deployment run that any worker polling that pool takes (GPU
    # machines sharing one PostgreSQL catalog: flows/shots.py); the film is stitched here.
    task_runner: str = "threads"
    dask_address: str = ""
    shot_pool: str = ""

    # How clips are joined: "smart" stream-copies clip bodies and re-encodes only
    # transitions; "moviepy" re-encodes the whole film through moviepy.
    stitch: str = "smart"

    @field_validator("stitch")
    @classmethod
    def _known_stitch(cls, value: str) -> str:
        if value not in ("smart", "moviepy"):
            raise ValueError("stitch must be 'smart' or 'moviepy'")
        return value

    @field_validator("task_runner")
    @classmethod
    def _known_runner(cls, value: str) -> str:
        if value not in ("threads", "dask"):
            raise ValueError("task_runner must be 'threads' or 'dask'")
        return value

    @field_validator("narration_fit")
    @classmethod
    def _known_fit(cls, value: str) -> str:
        if value not in ("auto", "stretch", "pace"):
            raise ValueError("narration_fit must be 'auto', 'stretch' or 'pace'")
        return value

    def backend_options(self, kind: str) -> dict[str, Any]:
        """The options a backend of `kind` is built with (the voice goes to the speech backend)."""
        options = dict(getattr(self, f"{kind}_options"))
        if kind == "speech" and self.voice:
            options.setdefault("voice", self.voice)
        return options

    def backend_name(self, kind: str) -> str:
        return getattr(self, "llm" if kind == "llm" else f"{kind}_backend")


class Limits(BaseModel):
    """What one story may ask of this machine, checked before any work starts; each a STORYFLOW_MAX_...
    variable, named by the error that a story over it gets. The defaults fit a short-film renderer."""

    max_story_bytes: int = Field(default=1_000_000, ge=1)  # the story file
    max_title_chars: int = Field(default=200, ge=1)
    max_front_matter_depth: int = Field(default=4, ge=1)  # YAML nesting (characters: is 2)
    max_shots: int = Field(default=1000, ge=1)
    max_film_seconds: float = Field(default=7200.0, gt=0)  # two hours of film
    max_segments: int = Field(default=4000, ge=1)  # clips the video backend would be asked for, takes included

    def limits(self) -> Limits:
        return Limits.model_validate(self.model_dump(include=set(Limits.model_fields)))


class Settings(BaseSettings, FilmChoices, Limits):
    """Every STORYFLOW_ variable: the film choices, the limits, and what belongs to this machine."""

    model_config = SettingsConfigDict(env_prefix="STORYFLOW_", env_file=".env", extra="ignore")

    # Where everything storyflow writes goes: films, clips, audio, the catalog, Prefect's
    # own state. Nothing is written outside this folder.
    home: Path = Field(default=Path("outputs"))

    # SQLAlchemy URL of the shot catalog; empty means SQLite at $STORYFLOW_HOME/catalog.db.
    # It may hold a password: it stays in this process (shown everywhere as ***).
    catalog_url: SecretStr = SecretStr("")

    # Object storage shared by several homes, as an fsspec URL (s3://bucket/prefix; install it with
    # `pip install -e '.[storage]'`): every file the catalog records is uploaded there, and a cache
    # hit whose file is not in this home is fetched from it (and its sha256 checked). Empty: none.
    # Its credentials and endpoint are the provider's own variables (AWS_ACCESS_KEY_ID,
    # AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL...), never part of this URL.
    storage_url: str = ""
    # fsspec options for it, a JSON object (STORYFLOW_STORAGE_OPTIONS='{"default_block_size": 8388608}');
    # not secret: a key named like one is refused.
    storage_options: dict[str, Any] = {}

    # Prompt templates are read from this folder instead of the repository's prompts/.
    prompts_dir: Path | None = None

    # Your C2PA signing certificate chain (leaf first, then its CA) and its private key: each a
    # file path or the PEM text itself; the algorithm (es256, es384, es512, ps256, ps384,
    # ps512, ed25519) defaults to what the key is. Without them storyflow makes a local
    # signing CA under $STORYFLOW_HOME/c2pa (valid, but trusted on this machine only).
    c2pa_cert: str = ""
    c2pa_key: SecretStr = SecretStr("")
    c2pa_alg: str = ""

    # Show full tracebacks and Prefect's own logs.
    debug: bool = False

    def choices(self) -> FilmChoices:
        """This run's choices as the film flow's parameter: plain data, no secret."""
        return FilmChoices.model_validate(self.model_dump(include=set(FilmChoices.model_fields)))

    @property
    def resolved_catalog_url(self) -> str:
        return self.catalog_url.get_secret_value() or f"sqlite:///{(self.home / 'catalog.db').resolve()}"

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
            fix="correct or unset that environment variable (or the line in .env, or the option)",
        ) from None
