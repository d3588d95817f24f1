"""The stages' door to the catalog: look a generation up by its cache key, or record it.

(transitional: GenerationStore protocol, NoStore, CatalogStore)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from storyflow.core.models import AudioTrack, Clip, NarrationLine

if TYPE_CHECKING:
    from storyflow.catalog import Catalog


class GenerationStore(Protocol):
    """Where stages look up finished generations and record new ones (the catalog)."""

    def find_clip(self, cache_key: str) -> Clip | None: ...

    def save_clip(self, clip: Clip) -> None: ...

    def find_audio(self, cache_key: str) -> AudioTrack | None: ...

    def save_audio(self, track: AudioTrack) -> None: ...

    def find_narration(self, cache_key: str) -> NarrationLine | None: ...

    def save_narration(self, line: NarrationLine) -> None: ...


class NoStore:
    """Generate everything and remember nothing: for stage tests and one-off renders."""

    def find_clip(self, cache_key: str) -> Clip | None:
        return None

    def save_clip(self, clip: Clip) -> None:
        return None

    def find_audio(self, cache_key: str) -> AudioTrack | None:
        return None

    def save_audio(self, track: AudioTrack) -> None:
        return None

    def find_narration(self, cache_key: str) -> NarrationLine | None:
        return None

    def save_narration(self, line: NarrationLine) -> None:
        return None


class CatalogStore:
    """The catalog as a GenerationStore for one run: new rows point at this run.

    With `force`, nothing is looked up (every generation is made again, and its new rows
    replace the old ones under the same keys).

    Narration is spoken while the storyboard is still being fitted to it, so lines made
    before `attach_storyboard` wait here and are recorded the moment the storyboard is.
    """

    def __init__(self, catalog: Catalog, *, run_id: int, force: bool = False) -> None:
        self.catalog = catalog
        self.run_id = run_id
        self.force = force  # trust no earlier result: every lookup misses
        self.storyboard_id: int | None = None
        self.prompt_ids: dict[str, int] = {}  # shot id -> prompt row
        self._waiting: list[NarrationLine] = []

    def attach_storyboard(self, storyboard_id: int) -> None:
        self.storyboard_id = storyboard_id
        waiting, self._waiting = self._waiting, []
        for line in waiting:
            self.save_narration(line)

    def attach_prompts(self, prompt_ids: dict[str, int]) -> None:
        self.prompt_ids = prompt_ids

    def find_clip(self, cache_key: str) -> Clip | None:
        return None if self.force else self.catalog.find_clip(cache_key)

    def save_clip(self, clip: Clip) -> None:
        self.catalog.record_clip(clip, prompt_id=self.prompt_ids[clip.shot_id], run_id=self.run_id)

    def find_audio(self, cache_key: str) -> AudioTrack | None:
        return None if self.force else self.catalog.find_audio(cache_key)

    def save_audio(self, track: AudioTrack) -> None:
        self.catalog.record_audio(track, storyboard_id=self._storyboard(), run_id=self.run_id)

    def find_narration(self, cache_key: str) -> NarrationLine | None:
        return None if self.force else self.catalog.find_narration(cache_key)

    def save_narration(self, line: NarrationLine) -> None:
        if self.storyboard_id is None:
            self._waiting.append(line)
        else:
            self.catalog.record_narration(line, storyboard_id=self.storyboard_id, run_id=self.run_id)

    def _storyboard(self) -> int:
        if self.storyboard_id is None:
            raise RuntimeError("record the storyboard (attach_storyboard) before audio tracks")
        return self.storyboard_id
