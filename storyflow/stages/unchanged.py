"""An unchanged request answered from the catalog: no Prefect, no flow, nothing made.

Every film run records the fingerprint of what it was asked (`fingerprint`): the story file's
bytes, the seed, the choices that shape the film (not where or how fast it is made: the
concurrency, task runner, pool, budget), a storyboard file's bytes, the prompt templates and
storyflow's version. When the newest finished run of the same story asked exactly that, and
its film is intact (every file checked against its sha256, every clip, track and line it
plays still in place), a rerun has nothing to do: `answer` records a run that reused
everything, shows the film under its plain names again and returns the summary that run
wrote, brought up to date. Anything else (a changed story, option or template, a take picked
since, a missing or changed file, --force) is the flow's, which makes only what is missing.
This keeps a night of unchanged stories, or a `make film` of a finished one, to a fraction of
a second each instead of a Prefect server's start.

The film's files and its parts (clips, tracks, lines: hundreds of files, gigabytes, for a long
film) are hashed once: the story's summary.json keeps, under "checked_parts", the size, mtime,
inode and device each had when it was last found intact, and a rerun hashes only those whose
stat is no longer that (as make and rsync decide; storyflow.catalog.listing.StatCheck). A
missing or damaged record only means hashing them all. The flow writes the first record
(listing.vouched_record: it has just made or verified every file), so even the first rerun
reads only the film it wrote last. `storyflow catalog verify` still hashes all.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from storyflow.catalog import FILM, open_catalog
from storyflow.catalog.listing import StatCheck, check_film_parts, checked_film, newest_finished_run
from storyflow.core import locks
from storyflow.core.config import FilmChoices, Settings
from storyflow.core.hashing import canonical_sha256
from storyflow.core.templates import PromptFolder
from storyflow.media import atomic_write_text, sha256_bytes
from storyflow.stages.film import publish_film
from storyflow.stages.story import read_story

# Choices that change where or how fast a film is made, never what it is.
OPERATIONAL = frozenset({"max_concurrency", "task_runner", "dask_address", "shot_pool", "budget_usd"})
# The key of summary.json under which a rerun keeps the stat of each file (the film's, its parts') it found intact.
CHECKED = "checked_parts"


def fingerprint(story_bytes: bytes, choices: FilmChoices, *, seed: int | None, prompts_sha256: str,
                storyboard_bytes: bytes | None = None, reuse_only: bool = False) -> str:  # fmt: skip
    """What a film request asks, as one hash: equal fingerprints ask for the same film."""
    from storyflow import __version__

    return canonical_sha256({
        "story": sha256_bytes(story_bytes), "seed": seed, "prompts": prompts_sha256, "version": __version__,
        "choices": choices.model_dump(mode="json", exclude=set(OPERATIONAL)),
        "storyboard": sha256_bytes(storyboard_bytes) if storyboard_bytes is not None else None,
        "reuse_only": reuse_only,
    })  # fmt: skip


def answer(story: str | Path, choices: FilmChoices, settings: Settings, *, seed: int | None = None) -> dict | None:
    """The summary of the film the catalog already holds for this very request, with a run recorded that made
    nothing; None when there is anything to make (or to check that only the flow can)."""
    started = time.perf_counter()
    # 1. what is asked, and does a catalog exist at all (a first run creates none here)
    if not settings.catalog_url.get_secret_value() and not (settings.home / "catalog.db").is_file():
        return None
    path = Path(story)
    parsed = read_story(path, settings.limits())
    asked = fingerprint(path.read_bytes(), choices, seed=seed, prompts_sha256=PromptFolder.of(settings.prompts_dir).sha256())
    home = settings.home.resolve()
    out_dir = home / parsed.slug
    with locks.hold(home, shared=True), open_catalog(settings) as catalog:
        # 2. the newest finished run of this story asked the same, and its film is intact, parts included
        last = newest_finished_run(catalog, parsed.sha256)
        if last is None or last["params"].get("fingerprint") != asked or not last["film_key"]:
            return None
        summary_file = out_dir / "summary.json"
        try:
            summary: dict[str, Any] = json.loads(summary_file.read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(summary, dict) or summary.get("film_id") != last["film_id"]:
            return None
        # its files and parts: hashed where their stat changed since the record summary.json keeps (the flow's or
        # the last rerun's); a film file in doubt goes to the catalog's own lookup (it fetches from storage)
        files = StatCheck(catalog, summary.pop(CHECKED, None))
        film = checked_film(catalog, last["film_id"], files)
        if film is None:
            found = catalog.lookup(FILM, last["film_key"])
            if found is None or found[0] != last["film_id"]:
                return None
            film = found[1]
        if check_film_parts(catalog, last["film_id"], files):
            return None
        # 3. show it under its plain names again, and record a run that reused everything
        publish_film(film, parsed.slug, out_dir)
        reused = {kind: {"made": 0, "reused": counts.get("made", 0) + counts.get("reused", 0)}
                  for kind, counts in last["generations"].items()}  # fmt: skip
        clips = reused.get("clip", {"reused": summary.get("clips_generated", 0) + summary.get("clips_reused", 0)})
        made_by = last["params"].get("answered_from_run", last["id"])  # the run that made the film
        request = {"story": str(story), "seed": seed, "force": False, "force_shots": [], "storyboard": None,
                   "reuse_only": False, "fingerprint": asked, "answered_from_run": made_by}  # fmt: skip
        run_id = catalog.start_run(str(story), {**request, **choices.model_dump(mode="json")})
        wall = time.perf_counter() - started
        catalog.finish_run(run_id, "completed", story_id=last["story_id"], storyboard_id=last["storyboard_id"],
                           film_id=last["film_id"], clips_generated=0, clips_reused=clips["reused"],
                           timings={"total": wall}, generations=reused)  # fmt: skip
    # 4. the summary that run wrote, brought up to date: this run made nothing and paid nothing
    summary.update({
        "run_id": run_id, "clips_generated": 0, "clips_reused": clips["reused"], "generations": reused,
        # what this run paid and was estimated to: nothing (None where nothing is priced: local backends)
        "estimate_usd": None if summary.get("estimate_usd") is None else 0.0, "budget_usd": choices.budget_usd,
        "cost_usd": None if summary.get("film_cost_usd") is None else 0.0,
        "narration_cost_usd": None if summary.get("narration_cost_usd") is None else 0.0, "film_reused": True, "wall_s": round(wall, 3),
        "timings": {"total": round(wall, 3)}, "prefect_flow_run_id": None, "answered_from_catalog": True,
        "answered_from_run": made_by,
        "shots": [shot | {"clips_generated": 0, "clips_reused": shot["clips_generated"] + shot["clips_reused"],
                          "segments": [segment | {"reused": True} for segment in shot["segments"]]}
                  for shot in summary.get("shots", [])],
    })  # fmt: skip
    # summary.json keeps what this check found intact, for the next rerun
    atomic_write_text(summary_file, json.dumps(summary | {CHECKED: files.checked}, indent=2, default=str) + "\n")
    return summary
