"""Listings: what a film is made of shot by shot (`storyflow shots FILM`), and what a run
generated versus reused (`storyflow catalog run ID`).

`film_shots(catalog, path)` finds the film (by path or by content, like provenance) and
returns a JSON-able tree: the film, then its shots in order, each with the segments the film
plays (path, parent, end parent, strategy, seconds, seam score, drift) and the narration
lines it speaks.

`run_detail(catalog, run_id)` lists the rows a run made (clips, narration lines, audio
tracks, films: every row whose run_id is the run) and the rows its film links to that
another run made (reused). Storyboards and prompts carry no run id, so they are not
listed; the run's `generations` tally counts them. Both are read-only; the command line
renders them (storyflow.cli.text).

`checked_film` and `check_film_parts` say whether a film and what it plays are intact, for an
unchanged rerun (storyflow.stages.unchanged); through a `StatCheck` they hash only the files
whose size, mtime, inode or device changed since an earlier check recorded them intact.
"""

from __future__ import annotations

import stat
import time
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from storyflow.catalog.provenance import Walk, find_file, seam_dict
from storyflow.core.hashing import short
from storyflow.catalog.schema import (
    AudioRow,
    ClipRow,
    FileRow,
    FilmAudioRow,
    FilmClipRow,
    FilmNarrationRow,
    FilmRow,
    NarrationRow,
    RunRow,
    StoryboardRow,
    StoryRow,
)
from storyflow.core.errors import CatalogError
from storyflow.core.models import SEAM_WARN_RATIO

if TYPE_CHECKING:
    from storyflow.catalog.store import Store
    from storyflow.core.models import Film


def film_shots(catalog: Store, path: Path) -> dict:
    """The film at `path` shot by shot; CatalogError (with a fix) if `path` is not a film the catalog knows."""
    with catalog.reading() as s:
        # 1. the film: its mp4, or any file made beside it (poster, subtitles, stems)
        record, asked, matched_by = find_file(catalog, s, Path(path))
        film = s.get(FilmRow, record.owner_id) if record.owner_table == "films" else None
        if film is None:
            raise CatalogError(
                f"{path} is a {record.kind} file, not a film: it has no shots of its own",
                fix="pass the film's .mp4 (`storyflow catalog films` lists them), or use "
                "`storyflow provenance` for a single clip or track",
            )
        walk = Walk(catalog, s)

        # 2. the clips the film plays, in order, and what each one was conditioned on
        played = list(
            s.scalars(
                select(ClipRow)
                .join(FilmClipRow, FilmClipRow.clip_id == ClipRow.id)
                .where(FilmClipRow.film_id == film.id)
                .order_by(FilmClipRow.position)
            )
        )
        related = {c.parent_clip_id for c in played} | {c.end_parent_clip_id for c in played}
        paths = {c.id: walk.path(c.path) for c in s.scalars(select(ClipRow).where(ClipRow.id.in_(related - {None})))}
        lines = walk.film_narration(film)

        # 3. shots in storyboard order, each with its segments and narration
        shots = []
        for shot in walk.shots_of(film.storyboard):
            data = shot.data
            shots.append(
                {
                    "shot_key": shot.shot_key,
                    "camera": data.get("camera", ""),
                    "seconds": data.get("duration"),
                    "continues_previous": data.get("continues_previous", False),
                    "loop": data.get("loop", False),
                    "segments": [
                        _segment(walk, clip, film, paths) for clip in played if clip.shot_key == shot.shot_key
                    ],
                    "narration": [
                        {
                            "text": line.text,
                            "offset": line.offset,
                            "seconds": line.seconds,
                            "voice": line.voice,
                            "rate": line.rate,
                        }
                        for line in lines
                        if line.shot_key == shot.shot_key
                    ],
                }
            )
        return {
            "film": {
                "id": film.id,
                "path": walk.path(film.path),
                "sha256": film.sha256,
                "duration": film.num_frames / film.fps,
                "loudness_lufs": film.loudness_lufs,
                "run_id": film.run_id,
            },
            "home": str(catalog.home),
            "file": {"path": str(asked), "matched_by": matched_by},
            "seam_warn_ratio": SEAM_WARN_RATIO,
            "shots": shots,
        }


def _segment(walk: Walk, clip: ClipRow, film: FilmRow, paths: dict[int, str]) -> dict:
    """One segment the film plays, with where its frames came from and how its seam looks."""
    return {
        "segment": clip.segment,
        "path": walk.path(clip.path),
        "sha256": clip.sha256,
        "parent_sha256": clip.parent_sha256,
        "parent_path": paths.get(clip.parent_clip_id),
        "end_parent_sha256": clip.end_parent_sha256,
        "end_parent_path": paths.get(clip.end_parent_clip_id),
        "strategy": clip.strategy,
        "seconds": clip.num_frames / clip.fps,
        "seam": seam_dict(clip),
        "end_seam": seam_dict(clip, "end_seam"),
        "drift": clip.drift,
        "backend": clip.backend,
        # made by an earlier run than the film's own: this render reused it
        "reused": None if film.run_id is None else clip.run_id != film.run_id,
    }


# ---------------------------------------------------------------- storyflow catalog run ID


def run_detail(catalog: Store, run_id: int) -> dict:
    """The run, what it generated (rows with its run id) and what its film reused (rows an other run made)."""
    from storyflow.catalog.store import NO_COST, run_costs, run_dict

    with catalog.reading() as s:
        run = s.get(RunRow, run_id)
        if run is None:
            raise CatalogError(
                f"no run #{run_id} in the catalog {catalog.display_url}",
                fix="pick a run id from `storyflow catalog runs`",
            )

        # 1. generated: every row that names this run as its maker
        generated = [_clip_item(c) for c in s.scalars(
            select(ClipRow).where(ClipRow.run_id == run_id).order_by(ClipRow.shot_key, ClipRow.segment, ClipRow.id))]
        generated += [_narration_item(n) for n in s.scalars(
            select(NarrationRow).where(NarrationRow.run_id == run_id).order_by(NarrationRow.shot_key, NarrationRow.id))]
        generated += [_audio_item(a) for a in s.scalars(
            select(AudioRow).where(AudioRow.run_id == run_id).order_by(AudioRow.id))]
        made_films = list(s.scalars(select(FilmRow).where(FilmRow.run_id == run_id).order_by(FilmRow.id)))
        generated += [_film_item(f) for f in made_films]  # fmt: skip

        # 2. reused: the film the run ended with (if another run made it), and what its films play
        films = {f.id: f for f in made_films}
        if run.film_id is not None and run.film_id not in films:
            films[run.film_id] = s.get(FilmRow, run.film_id)
        reused = [_film_item(f) for f in films.values() if f is not None and f.run_id != run_id]
        for film_id in sorted(i for i, f in films.items() if f is not None):
            reused += [_clip_item(c) for c in s.scalars(
                select(ClipRow).join(FilmClipRow, FilmClipRow.clip_id == ClipRow.id)
                .where(FilmClipRow.film_id == film_id).order_by(FilmClipRow.position)) if c.run_id != run_id]
            reused += [_narration_item(n) for n in s.scalars(
                select(NarrationRow).join(FilmNarrationRow, FilmNarrationRow.narration_id == NarrationRow.id)
                .where(FilmNarrationRow.film_id == film_id).order_by(NarrationRow.shot_key, NarrationRow.id))
                if n.run_id != run_id]
            reused += [_audio_item(a) for a in s.scalars(
                select(AudioRow).join(FilmAudioRow, FilmAudioRow.audio_id == AudioRow.id)
                .where(FilmAudioRow.film_id == film_id).order_by(AudioRow.id)) if a.run_id != run_id]  # fmt: skip
        reused = list({(item["table"], item["id"]): item for item in reused}.values())  # once each

        board = s.get(StoryboardRow, run.storyboard_id) if run.storyboard_id is not None else None
        return {
            "run": run_dict(run) | run_costs(s, [run_id]).get(run_id, NO_COST),  # what it paid, as `catalog runs`
            "storyboard": None if board is None else {
                "id": board.id, "sha256": short(board.sha256), "shots": len(board.data.get("shots", []))},
            "generations": run.generations,
            "generated": generated,
            "reused": reused,
            "counts": {"generated": _count(generated), "reused": _count(reused)},
        }  # fmt: skip


def _clip_item(clip: ClipRow) -> dict:
    return {"kind": "clip", "table": "clips", "id": clip.id, "shot_key": clip.shot_key, "segment": clip.segment,
            "path": clip.path, "sha256": short(clip.sha256), "made_by_run": clip.run_id}  # fmt: skip


def _narration_item(line: NarrationRow) -> dict:
    return {"kind": "narration", "table": "narration_lines", "id": line.id, "shot_key": line.shot_key,
            "path": line.path, "sha256": short(line.sha256), "made_by_run": line.run_id,
            "cost_usd": line.cost_usd}  # fmt: skip


def _audio_item(track: AudioRow) -> dict:
    # an audio track of kind "narration" is the film-length narration stem, not one spoken line
    kind = "narration stem" if track.kind == "narration" else track.kind
    return {"kind": kind, "table": "audio_tracks", "id": track.id, "path": track.path,
            "sha256": short(track.sha256), "made_by_run": track.run_id}  # fmt: skip


def _film_item(film: FilmRow) -> dict:
    return {"kind": "film", "table": "films", "id": film.id, "path": film.path, "sha256": short(film.sha256),
            "made_by_run": film.run_id}  # fmt: skip


def _count(items: list[dict]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in items:
        counts[item["kind"]] = counts.get(item["kind"], 0) + 1
    return counts


def clips_made_by_run(catalog: Store, run_id: int, keys: list[str]) -> set[str]:
    """Which of the clips under `keys` the run made (on whichever machine: its shots may be made by workers)."""
    with catalog.reading() as s:
        return set(s.scalars(select(ClipRow.cache_key).where(ClipRow.run_id == run_id, ClipRow.cache_key.in_(keys))))


def run_outcome(catalog: Store, flow_run_id: str) -> dict | None:
    """A film run found by its Prefect flow run id, as the nightly report lists it: it may have run on another
    machine (a worker of the pool), so what it made is read from the catalog every machine shares."""
    from storyflow.catalog.store import run_costs

    with catalog.reading() as s:
        run = s.scalar(select(RunRow).where(RunRow.prefect_flow_run_id == flow_run_id))
        if run is None:
            return None
        film = s.get(FilmRow, run.film_id) if run.film_id is not None else None
        story = s.get(StoryRow, run.story_id) if run.story_id is not None else None
        cost = run_costs(s, [run.id])[run.id]["cost_usd"]
        made = run.generations or {}
        return {
            "run_id": run.id, "status": run.status, "error": run.error, "title": story.title if story else None,
            "film": str(catalog.absolute_path(film.path)) if film else None,
            # where every machine finds it: in the shared storage (STORYFLOW_STORAGE_URL), if there is one
            "film_url": catalog.storage.url(film.path) if film and catalog.storage and not Path(film.path).is_absolute()
            else None,
            "duration_s": round(film.num_frames / film.fps, 3) if film else None,
            "clips_generated": run.clips_generated, "clips_reused": run.clips_reused, "cost_usd": cost,
            "film_made": made.get("film", {}).get("made", 0) > 0, "host": run.hostname,
        }  # fmt: skip


def newest_finished_run(catalog: Store, story_sha256: str) -> dict | None:
    """The newest completed run of the story with this content that names a film: its id, params, film and tally."""
    with catalog.reading() as s:
        run = s.scalar(select(RunRow).join(StoryRow, RunRow.story_id == StoryRow.id)
                       .where(StoryRow.sha256 == story_sha256, RunRow.status == "completed",
                              RunRow.film_id.is_not(None)).order_by(RunRow.id.desc()).limit(1))  # fmt: skip
        if run is None:
            return None
        return {"id": run.id, "params": run.params, "film_id": run.film_id, "story_id": run.story_id,
                "storyboard_id": run.storyboard_id, "generations": run.generations or {},
                "film_key": s.scalar(select(FilmRow.cache_key).where(FilmRow.id == run.film_id))}  # fmt: skip


# A file modified this shortly before a check may be modified again within the same tick of its mtime (a
# filesystem's clock is coarser than a nanosecond: 2 s on FAT): its stat would not show it, so it is not
# recorded as checked, and the next check hashes it again (git's "racily clean" entries).
CHECKED_MARGIN_NS = 2_000_000_000


class StatCheck:
    """Checks files against their recorded size and sha256, hashing only what may have changed since an earlier
    check: a file whose size, mtime (to the nanosecond), inode and device are exactly what `checked` (an earlier
    StatCheck's `checked`) records for it, under the sha256 the catalog records now, is taken as intact without
    reading it, as make and rsync do. Anything else in `checked` (missing, damaged, another file's, an older
    sha256) only means that file is hashed. Each path is looked at once per check. (`catalog verify` hashes all.)"""

    def __init__(self, catalog: Store, checked: object = None, *, vouched: bool = False) -> None:
        self.catalog = catalog
        self.vouched = vouched  # the caller has just made or verified every file: record their stat, read none
        self.trusted = checked if isinstance(checked, dict) else {}
        # each file found intact, by stored path: "size mtime_ns inode device sha256" (JSON-able), for the next
        # check to trust while its stat stays exactly that (files modified within CHECKED_MARGIN_NS left out)
        self.checked: dict[str, str] = {}
        self._recent = time.time_ns() - CHECKED_MARGIN_NS
        self._found: dict[tuple[str, int | None, str | None], bool] = {}

    def intact(self, stored: str, size: int | None, sha256: str | None) -> bool:
        """True if the file is there with this size (where recorded) and sha256 (where recorded)."""
        key = (stored, size, sha256)
        if key not in self._found:
            self._found[key] = self._intact(stored, size, sha256)
        return self._found[key]

    def _intact(self, stored: str, size: int | None, sha256: str | None) -> bool:
        from storyflow.media import sha256_file

        path = self.catalog.absolute_path(stored)
        try:
            # 1. the stat first (a file modified while it is hashed then shows a new stat next time)
            info = path.stat()
            if not stat.S_ISREG(info.st_mode) or (size is not None and info.st_size != size):
                return False
            if sha256 is None:
                return True  # recorded before its hash was kept: existence is all that can be checked
            # 2. hashed unless the earlier check found these very bytes under this very stat
            seen = f"{info.st_size} {info.st_mtime_ns} {info.st_ino} {info.st_dev} {sha256}"
            if self.trusted.get(stored) != seen and not self.vouched and sha256_file(path) != sha256:
                return False
        except OSError:
            return False
        if info.st_mtime_ns < self._recent:
            self.checked[stored] = seen
        return True


def check_film_parts(catalog: Store, film_id: int, files: StatCheck) -> list[str]:
    """The files of the clips, tracks and lines a film plays that are not in place with their recorded size and
    sha256 (what the flow would make again), by `files` (hashing only what its stat cannot vouch for)."""
    parts = []
    with catalog.reading() as s:
        for table, link, column in ((ClipRow, FilmClipRow, FilmClipRow.clip_id),
                                    (AudioRow, FilmAudioRow, FilmAudioRow.audio_id),
                                    (NarrationRow, FilmNarrationRow, FilmNarrationRow.narration_id)):  # fmt: skip
            parts += s.execute(select(table.path, table.bytes, table.sha256).join(link, column == table.id)
                               .where(link.film_id == film_id)).all()  # fmt: skip
    return [str(catalog.absolute_path(stored)) for stored, size, sha256 in parts
            if not files.intact(stored, size, sha256)]  # fmt: skip


def vouched_record(catalog: Store, film_id: int) -> dict[str, str]:
    """The stat record (StatCheck.checked) of a film's files and parts, without reading them, for a flow run that
    has just made or verified each one by its sha256 (every reuse is verified): its first unchanged rerun then
    hashes only what changed since, or was written within CHECKED_MARGIN_NS of the end (the film itself)."""
    files = StatCheck(catalog, vouched=True)
    checked_film(catalog, film_id, files)
    check_film_parts(catalog, film_id, files)
    return files.checked


def checked_film(catalog: Store, film_id: int, files: StatCheck) -> Film | None:
    """The film's record when it is the newest row under its cache key and every file it names (mp4, subtitles,
    poster, contact sheet, storyboard JSON, stems) is intact, by `files` (hashing only what its stat cannot vouch
    for). None otherwise: then `catalog.lookup(FILM, key)` is the judge (it fetches from storage, warns, and
    falls back to an older row under the key)."""
    from storyflow.catalog.kinds import FILM, row_files, row_record

    with catalog.reading() as s:
        row = s.get(FilmRow, film_id)
        if row is None or row.cache_key is None or \
                s.scalar(select(func.max(FilmRow.id)).where(FilmRow.cache_key == row.cache_key)) != film_id:
            return None
        owned = s.scalars(select(FileRow).where(FileRow.owner_table == FILM.owner, FileRow.owner_id == film_id))
        claims = row_files(FILM, row, list(owned))
        record = row_record(FILM, row, catalog.absolute_path, claims)
    return record if all(files.intact(c.stored, c.bytes, c.sha256) for c in claims) else None
