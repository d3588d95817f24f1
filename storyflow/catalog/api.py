"""The Catalog: the store with its read-only queries on top, behind one object.

Store (store.py) records and finds generations of every kind through two generic calls,
`record(kind, item, ...)` and `lookup(kind, key)`; provenance, listings and integrity are
queries over it (provenance.py, listing.py, integrity.py). This class puts them behind
one object, so `catalog.provenance(path)` reads as what it does, and names the typed
shorthands a caller who holds one record wants (`catalog.find_clip(key)`): each is the
generic call with its kind filled in, nothing more.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from storyflow.catalog.integrity import verify
from storyflow.catalog.kinds import AUDIO, CLIP, FILM, NARRATION, PROMPT, STORYBOARD
from storyflow.catalog.listing import film_shots, run_detail
from storyflow.catalog.picks import film_for_pick, picks, record_pick, takes_made
from storyflow.catalog.provenance import provenance
from storyflow.catalog.store import Store, _database_errors
from storyflow.core.models import AudioTrack, Clip, Film, NarrationLine, ShotPrompt, Storyboard

if TYPE_CHECKING:
    from storyflow.media.storage import Storage


class Catalog(Store):
    """The shot catalog: one database (any SQLAlchemy URL) and the output folder it describes."""

    # ------------------------------------------------------------ queries

    @_database_errors
    def provenance(self, path: Path | str) -> dict:
        """How the file at `path` was made, back to the story, as a JSON-able tree."""
        return provenance(self, Path(path))

    @_database_errors
    def film_shots(self, path: Path | str) -> dict:
        """The shots of the film at `path` (or with its content), each with its segments and narration."""
        return film_shots(self, Path(path))

    @_database_errors
    def run_detail(self, run_id: int) -> dict:
        """One run (as runs() gives it) with what it generated and what its film reused from earlier runs."""
        return run_detail(self, run_id)

    @_database_errors
    def verify(self, repair: bool = False) -> dict:
        """Check every row against its file and every file under home against the rows; repair=True fixes.

        See storyflow.catalog.integrity for the rules (what is storyflow's own metadata, what cascades).
        The caller holds the output folder's lock exclusively (storyflow.core.locks.hold(home)) while repairing.
        """
        return verify(self, repair=repair)

    # ------------------------------------------------------------ takes

    @_database_errors
    def picks(self, storyboard_id: int) -> dict[str, dict[str, Any]]:
        """Which take each shot of a storyboard plays, and who chose it (storyflow.catalog.picks)."""
        return picks(self, storyboard_id)

    @_database_errors
    def record_pick(self, storyboard_id: int, shot_key: str, take: int, *, picked_by: str, scorer: str = "",
                    scores: list[dict[str, Any]] | None = None) -> None:  # fmt: skip
        """Record which take a shot plays: a person's pick is never replaced by a scorer's choice."""
        record_pick(self, storyboard_id, shot_key, take, picked_by=picked_by, scorer=scorer, scores=scores)

    @_database_errors
    def film_for_pick(self, ref: str) -> dict[str, Any]:
        """The film `ref` names (id, file or story folder), its storyboard and its run's parameters."""
        return film_for_pick(self, ref)

    @_database_errors
    def takes_made(self, storyboard_id: int, shot_key: str) -> list[int]:
        """The takes of a shot the catalog holds clips of."""
        return takes_made(self, storyboard_id, shot_key)

    # ------------------------------------------------------------ one kind at a time

    def find_storyboard(self, cache_key: str) -> Storyboard | None:
        return self.find(STORYBOARD, cache_key)

    def record_storyboard(self, story_id: int, board: Storyboard, *, llm: str, options: dict, wall_s: float,
                          cache_key: str | None = None, origin: str = "planned") -> int:  # fmt: skip
        return self.record(STORYBOARD, board, key=cache_key, refs={"story": story_id},
                           facts={"llm": llm, "llm_options": options, "wall_s": float(wall_s), "origin": origin})  # fmt: skip

    def find_prompt(self, cache_key: str) -> ShotPrompt | None:
        return self.find(PROMPT, cache_key)

    def record_prompt(self, shot_row_id: int, prompt: ShotPrompt, *, wall_s: float, cache_key: str | None = None) -> int:
        return self.record(PROMPT, prompt, key=cache_key, refs={"shot": shot_row_id}, facts={"wall_s": float(wall_s)})

    def find_clip(self, cache_key: str) -> Clip | None:
        return self.find(CLIP, cache_key)

    def record_clip(self, clip: Clip, *, prompt_id: int, run_id: int | None, cost_usd: float | None = None) -> int:
        if cost_usd is not None:
            clip = clip.model_copy(update={"cost_usd": cost_usd})
        return self.record(CLIP, clip, refs={"prompt": prompt_id, "run": run_id})

    def find_narration(self, cache_key: str) -> NarrationLine | None:
        return self.find(NARRATION, cache_key)

    def record_narration(self, line: NarrationLine, *, storyboard_id: int, run_id: int | None) -> int:
        return self.record(NARRATION, line, refs={"storyboard": storyboard_id, "run": run_id})

    def find_audio(self, cache_key: str) -> AudioTrack | None:
        return self.find(AUDIO, cache_key)

    def record_audio(self, track: AudioTrack, *, storyboard_id: int, run_id: int | None) -> int:
        return self.record(AUDIO, track, refs={"storyboard": storyboard_id, "run": run_id})

    def find_film(self, cache_key: str) -> Film | None:
        """The newest film under `cache_key` whose every file (mp4, subtitles, stills, storyboard, stems) is intact."""
        return self.find(FILM, cache_key)

    def film_id(self, cache_key: str) -> int | None:
        """The row id of the film find_film(cache_key) returns, or None."""
        found = self.lookup(FILM, cache_key)
        return found[0] if found is not None else None

    def record_film(self, film: Film, *, storyboard_id: int, run_id: int | None, clip_keys: list[str],
                    audio_keys: list[str], narration_keys: Iterable[str] = (), cache_key: str | None = None,
                    credentials: dict | None = None) -> int:  # fmt: skip
        """Record a stitched film and what it plays; a film found by find_film is the row it was found as."""
        if credentials is not None:
            film = film.model_copy(update={"credentials": credentials})
        return self.record(FILM, film, key=cache_key, refs={"storyboard": storyboard_id, "run": run_id},
                           links={"clips": clip_keys, "audio": audio_keys, "narration": list(narration_keys)})  # fmt: skip


def open_catalog(settings: Any | None = None) -> Catalog:
    """The catalog the settings name: STORYFLOW_CATALOG_URL, else $STORYFLOW_HOME/catalog.db; with the
    storage STORYFLOW_STORAGE_URL names, if any."""
    if settings is None:
        from storyflow.core.config import load_settings

        settings = load_settings()
    return Catalog.open(settings.resolved_catalog_url, settings.home, storage=open_storage(settings))


def open_storage(settings: Any) -> Storage | None:
    """The storage STORYFLOW_STORAGE_URL names (with STORYFLOW_STORAGE_OPTIONS), or None when it is unset."""
    if not settings.storage_url:
        return None
    from storyflow.media.storage import Storage

    return Storage.open(settings.storage_url, settings.storage_options)
