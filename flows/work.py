"""What a task needs to do its part of a film run in any process: ids and choices, never a live object.

The tasks the film flow fans out (one per shot: rewrite, generate, effects) may run in a thread
of the flow's process, in a Dask worker's process, or on another machine as a deployment run
(flows/shots.py). Their parameters are pickled, or stored as JSON, so they are plain data: a
`FilmRun` (the run's catalog row, the rows its generations point at, the run's choices) and
the pipeline's pydantic records. Each task opens what it works with for itself, from the
settings of the machine it runs on: the catalog (STORYFLOW_CATALOG_URL: a shared PostgreSQL
catalog when the run spans machines), the output folder, the backends by name (building one is
cheap: an open model is loaded once per process and kept, storyflow.backends.torch_models.WARM).
What a task's door made and reused comes back with its result (`Done`), and the flow adds it
to the run's tally.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from prefect import get_run_logger
from pydantic import BaseModel, ConfigDict

from storyflow.backends.base import Backend
from storyflow.backends.registry import load_backend
from storyflow.catalog import Generations, open_catalog
from storyflow.catalog.door import Receipt
from storyflow.core.config import FilmChoices, Settings, load_settings
from storyflow.core.models import ClipChain, Film, Storyboard
from storyflow.stages.budget import Budget, RunPurse

T = TypeVar("T")


class FilmRun(BaseModel):
    """One film run, as a task sees it: its catalog row, what to make again, the choices, the rows to point at."""

    model_config = ConfigDict(frozen=True)

    run_id: int
    slug: str  # the film's folder under each machine's STORYFLOW_HOME
    choices: FilmChoices
    force: bool = False
    force_shots: tuple[str, ...] = ()
    reuse_only: bool = False  # `storyflow pick`: make no clip
    pointers: dict[str, Any] = {}  # Generations.pointers(): {"refs": {"storyboard": 7, ...}, "by_shot": {...}}

    def settings(self) -> Settings:
        """This machine's settings: where its outputs go, the catalog, the signing key."""
        return load_settings()

    def out_dir(self) -> Path:
        return self.settings().home.resolve() / self.slug

    def backend(self, kind: str) -> Backend:
        """The run's backend of `kind` (checked by the flow before any task started)."""
        return load_backend(kind, self.choices.backend_name(kind), self.choices.backend_options(kind))

    @contextmanager
    def door(self) -> Iterator[Generations]:
        """A door to the catalog for this run, pointing where the run's own door points."""
        catalog = open_catalog(self.settings())
        try:
            door = Generations(catalog, run_id=self.run_id, force=self.force, force_shots=self.force_shots)
            door.adopt(self.pointers)
            yield door
        finally:
            catalog.close()

    def budget(self, door: Generations) -> Budget:
        """The run's budget, counted on its catalog row: it holds across every process making its clips."""
        return Budget(self.choices.budget_usd, RunPurse(door.store, self.run_id))


@dataclass(frozen=True)
class Done(Generic[T]):
    """A task's result and what its door did (the flow absorbs that into the run's tally)."""

    value: T
    receipt: Receipt


class Signer:
    """Content Credentials for what this run makes, with the signing settings of this machine."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.home = settings.home.resolve()

    def clip(self, title: str, shot_id: str):
        """Sign a freshly made clip with C2PA before it is hashed and recorded (`name`: the clip's own, as its
        file is still under a temporary one)."""
        from storyflow import __version__
        from storyflow.media import credentials

        def sign(path: Path, name: str) -> None:
            credentials.sign_media(path, home=self.home, title=f"{title}, shot {shot_id}: {name}",
                                   generator_version=__version__, settings=self.settings)  # fmt: skip

        return sign

    def film(self, board: Storyboard, chains: dict[str, ClipChain]):
        """Embed Content Credentials in a new film: made by a generative model, from these clips, by storyflow."""
        from storyflow import __version__
        from storyflow.media import credentials

        def sign(film: Film) -> Film:
            clips = [clip.path for chain in chains.values() for clip in chain.clips]
            signed = credentials.sign_media(film.path, home=self.home, title=board.title, ingredients=clips,
                                            generator_version=__version__, settings=self.settings)  # fmt: skip
            get_run_logger().info("signed %s: %s", film.path.name, signed.trusted_note)
            return film.model_copy(update={"sha256": signed.sha256, "credentials": signed.as_record()})

        return sign
