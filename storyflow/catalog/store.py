"""The Catalog: what the flows call to record every step, and to reuse what is already made.

Every method is one short transaction. Writers take SQLite's write lock up front and wait
(busy timeout) for another writer instead of failing, so two runs can share one catalog.
A row that points at a file is written only after the caller has put the file in place;
on reuse (find_clip, find_narration, find_audio, find_film) the file's sha256 is checked again
and a missing or changed file is reported as a miss, never trusted. `verify` checks every row
against its file and every file against the rows (see storyflow.catalog.integrity).

Paths are stored relative to STORYFLOW_HOME (posix) when inside it, absolute otherwise,
so a whole output folder can be moved with its catalog; the API hands back absolute Paths.
"""

from __future__ import annotations

import functools
import logging
import os
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from storyflow.catalog import migrations
from storyflow.catalog.db import (
    is_sqlite,
    make_engine,
    read_session,
    sqlite_file,
    write_session,
)
from storyflow.catalog.schema import (
    RUN_STATUSES,
    AudioRow,
    ClipRow,
    FileRow,
    FilmAudioRow,
    FilmClipRow,
    FilmNarrationRow,
    FilmRow,
    NarrationRow,
    PromptRow,
    RunRow,
    ShotRow,
    StoryboardRow,
    StoryRow,
    utcnow,
)
from storyflow.core.errors import CatalogError
from storyflow.core.hashing import canonical_sha256
from storyflow.core.models import (
    AudioTrack,
    Clip,
    Film,
    NarrationLine,
    SeamScore,
    ShotPrompt,
    Story,
    Storyboard,
    TimedPrompt,
)
from storyflow.core.processes import process_alive
from storyflow.core.secrets import guard_secrets, redact
from storyflow.media import sha256_file

log = logging.getLogger("storyflow.catalog")
T = TypeVar("T")

# ---------------------------------------------------------------- errors


def _database_errors(method: Callable[..., T]) -> Callable[..., T]:
    """Turn SQLAlchemy errors into a CatalogError that says what to do."""

    @functools.wraps(method)
    def wrapper(self: Store, *args: Any, **kwargs: Any) -> T:
        try:
            return method(self, *args, **kwargs)
        except SQLAlchemyError as exc:
            first_line = redact(str(getattr(exc, "orig", None) or exc).splitlines()[0])
            if "locked" in first_line or "busy" in first_line:
                fix = "another storyflow process held the catalog for too long; rerun when it is done"
            else:
                fix = "rerun with --debug for details; `storyflow catalog verify` checks the catalog"
            raise CatalogError(f"catalog error in {method.__name__}: {first_line}", fix=fix) from exc

    return wrapper


def _retry_on_conflict(method: Callable[..., T]) -> Callable[..., T]:
    """Run a recording method once more if a concurrent writer inserted the same row first.

    SQLite's up-front write lock serialises writers; PostgreSQL lets two transactions both
    miss a row and both insert it, and the loser's unique constraint fails. Its whole
    transaction was rolled back, so running the method again finds the winner's row.
    """

    @functools.wraps(method)
    def wrapper(self: Store, *args: Any, **kwargs: Any) -> T:
        try:
            return method(self, *args, **kwargs)
        except IntegrityError:
            return method(self, *args, **kwargs)

    return wrapper


class Store:
    """The shot catalog: one database (any SQLAlchemy URL) and the output folder it describes."""

    def __init__(self, engine: Engine, url: str, home: Path) -> None:
        self.engine = engine
        self.url = url
        self.home = home

    # ------------------------------------------------------------ open / close

    @classmethod
    def open(cls, url: str, home: Path) -> Store:
        """Open (creating it if needed) the catalog at `url` and upgrade it to the newest schema."""
        from sqlalchemy.exc import DatabaseError

        # 1. an engine; for SQLite the file's folder is created
        home = Path(os.path.abspath(home))
        engine = make_engine(url)
        # 2. upgrade to head unless it is there already (the common case: one cheap query)
        try:
            head = migrations.head_revision()
            if migrations.current_revision(engine) != head:
                in_memory = is_sqlite(url) and sqlite_file(url) is None
                migrations.upgrade(engine if in_memory else url)
        except DatabaseError as exc:
            engine.dispose()
            if is_sqlite(url):
                fix = ("point STORYFLOW_HOME (or STORYFLOW_CATALOG_URL) at a folder holding a storyflow "
                       "catalog, or move this file aside to start a new one")  # fmt: skip
            else:
                fix = "check that the database server is up and the URL's user, password, host and database are right"
            raise CatalogError(
                f"cannot open the catalog {_safe_url(url)}: {redact(str(exc.orig).splitlines()[0])}", fix=fix
            ) from None
        except CatalogError:
            engine.dispose()
            raise
        return cls(engine, url, home)

    def close(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({_safe_url(self.url)!r}, home={str(self.home)!r})"

    @property
    def display_url(self) -> str:
        """Where the catalog is, for people: the file of a SQLite catalog, else the URL without password."""
        database = sqlite_file(self.url)
        return str(Path(database).resolve()) if database else _safe_url(self.url)

    # ------------------------------------------------------------ paths

    def stored_path(self, path: Path | str) -> str:
        """How `path` is written in the catalog: relative to home (posix) if inside it, else absolute."""
        absolute = Path(os.path.abspath(path))
        for base in (self.home, self.home.resolve()):
            try:
                return absolute.relative_to(base).as_posix()
            except ValueError:
                continue
        return absolute.as_posix()

    def absolute_path(self, stored: str) -> Path:
        """The absolute path of a stored path."""
        path = Path(stored)
        return path if path.is_absolute() else self.home / path

    def _session(self, write: bool = True):
        """One short transaction: a writer (takes the write lock up front) or a reader (a snapshot)."""
        return write_session(self.engine) if write else read_session(self.engine)

    # ------------------------------------------------------------ runs

    @_database_errors
    def start_run(self, story_source: str, params: dict, *, prefect_flow_run_id: str | None = None) -> int:
        """Record that a run started (status 'running'); first mark runs whose process died as crashed."""
        params = guard_secrets(params, "run params")
        self.mark_crashed_runs()
        with self._session() as s:
            run = RunRow(
                story_source=str(story_source),
                status="running",
                pid=os.getpid(),
                hostname=socket.gethostname(),
                params=params,
                started_at=utcnow(),
                clips_generated=0,
                clips_reused=0,
                prefect_flow_run_id=prefect_flow_run_id,
            )
            s.add(run)
            s.flush()
            return run.id

    @_database_errors
    def finish_run(
        self,
        run_id: int,
        status: str,
        *,
        story_id: int | None = None,
        storyboard_id: int | None = None,
        film_id: int | None = None,
        clips_generated: int = 0,
        clips_reused: int = 0,
        error: str | None = None,
        timings: dict | None = None,
        prefect_flow_run_id: str | None = None,
        generations: dict | None = None,
    ) -> None:
        """Record how a run ended: status, what it made, what it reused, its error and timings.

        `generations` tallies every kind of generation: {"clip": {"made": 2, "reused": 7}, ...}.
        """
        if status not in RUN_STATUSES or status == "running":
            raise CatalogError(
                f"unknown final run status {status!r}",
                fix=f"use one of {', '.join(s for s in RUN_STATUSES if s != 'running')}",
            )
        timings = guard_secrets(timings, "run timings") if timings is not None else None
        generations = check_generations(generations) if generations is not None else None
        with self._session() as s:
            run = s.get(RunRow, run_id)
            if run is None:
                raise CatalogError(f"no run #{run_id} in the catalog", fix="pass the id start_run returned")
            run.status = status
            run.finished_at = utcnow()
            run.story_id = story_id if story_id is not None else run.story_id
            run.storyboard_id = storyboard_id if storyboard_id is not None else run.storyboard_id
            run.film_id = film_id if film_id is not None else run.film_id
            run.clips_generated = clips_generated
            run.clips_reused = clips_reused
            run.error = redact(error) if error else None
            run.timings = timings
            if generations is not None:
                run.generations = generations
            if prefect_flow_run_id:
                run.prefect_flow_run_id = prefect_flow_run_id

    @_database_errors
    def mark_crashed_runs(self) -> list[int]:
        """Mark as 'crashed' the runs left 'running' by a process on this machine that no longer exists."""
        host = socket.gethostname()
        with self._session() as s:
            stale = s.scalars(select(RunRow).where(RunRow.status == "running", RunRow.hostname == host)).all()
            crashed = [run for run in stale if not process_alive(run.pid)]
            for run in crashed:
                run.status = "crashed"
                run.finished_at = utcnow()
                run.error = f"process {run.pid} on {host} ended without finishing the run (killed or crashed)"
            return [run.id for run in crashed]

    # ------------------------------------------------------------ story, storyboard, shots, prompts

    @_database_errors
    def record_story(self, story: Story) -> int:
        """The story's row id; recorded once per distinct content (sha256 of the file)."""
        sha256 = story.sha256 or canonical_sha256(story)
        front_matter = story.model_dump(mode="json", exclude={"title", "slug", "text", "source", "sha256", "body_line"})

        def create(s: Session) -> StoryRow:
            return StoryRow(
                sha256=sha256,
                title=story.title,
                slug=story.slug,
                source=str(story.source),
                text=story.text,
                front_matter=guard_secrets(front_matter, "story front matter"),
                created_at=utcnow(),
            )

        return self._get_or_create(lambda s: s.scalar(select(StoryRow).where(StoryRow.sha256 == sha256)), create)

    @_database_errors
    def record_storyboard(
        self,
        story_id: int,
        board: Storyboard,
        *,
        llm: str,
        options: dict,
        wall_s: float,
        cache_key: str | None = None,
    ) -> int:
        """The storyboard's row id; recorded once per distinct board (sha256 of its canonical JSON)."""
        sha256 = canonical_sha256(board)
        options = guard_secrets(options, f"llm options of {llm}")

        def lookup(s: Session) -> StoryboardRow | None:
            row = s.scalar(select(StoryboardRow).where(StoryboardRow.sha256 == sha256))
            if row is not None and cache_key and row.cache_key is None:
                row.cache_key = cache_key  # a later run computed the plan's cache key: keep it
            return row

        def create(s: Session) -> StoryboardRow:
            story = _require(s, StoryRow, story_id, "story", "record_story")
            if board.story_sha256 and board.story_sha256 != story.sha256:
                raise CatalogError(
                    f"storyboard {board.slug!r} was planned from story {board.story_sha256[:12]}, "
                    f"not from story #{story_id} ({story.sha256[:12]})",
                    fix="pass the id record_story returned for the story this board was planned from",
                )
            return StoryboardRow(
                story_id=story_id,
                sha256=sha256,
                cache_key=cache_key,
                llm=llm,
                llm_options=options,
                seed=board.seed,
                data=board.model_dump(mode="json"),
                wall_s=float(wall_s),
                created_at=utcnow(),
            )

        return self._get_or_create(lookup, create)

    @_database_errors
    def find_storyboard(self, cache_key: str) -> Storyboard | None:
        """The storyboard an earlier plan call with this cache key produced, or None."""
        with self._session(write=False) as s:
            row = s.scalar(
                select(StoryboardRow).where(StoryboardRow.cache_key == cache_key).order_by(StoryboardRow.id.desc())
            )
            return Storyboard.model_validate(row.data) if row is not None else None

    @_database_errors
    @_retry_on_conflict
    def record_shots(self, storyboard_id: int, board: Storyboard) -> dict[str, int]:
        """Row ids of the board's shots, by shot id ("s01" -> 7); each shot recorded once."""
        with self._session() as s:
            _require(s, StoryboardRow, storyboard_id, "storyboard", "record_storyboard")
            rows = {r.shot_key: r for r in s.scalars(select(ShotRow).where(ShotRow.storyboard_id == storyboard_id))}
            for shot in board.shots:
                if shot.id not in rows:
                    rows[shot.id] = ShotRow(
                        storyboard_id=storyboard_id,
                        shot_key=shot.id,
                        position=shot.index,
                        sha256=canonical_sha256(shot),
                        data=shot.model_dump(mode="json"),
                    )
                    s.add(rows[shot.id])
            s.flush()
            return {shot.id: rows[shot.id].id for shot in board.shots}

    @_database_errors
    def record_prompt(
        self, shot_row_id: int, prompt: ShotPrompt, *, wall_s: float, cache_key: str | None = None
    ) -> int:
        """The prompt's row id; one row per distinct prompt of a shot."""
        sha256 = canonical_sha256(prompt)

        def lookup(s: Session) -> PromptRow | None:
            row = s.scalar(select(PromptRow).where(PromptRow.shot_id == shot_row_id, PromptRow.sha256 == sha256))
            if row is not None and cache_key and row.cache_key is None:
                row.cache_key = cache_key
            return row

        def create(s: Session) -> PromptRow:
            shot = _require(s, ShotRow, shot_row_id, "shot", "record_shots")
            if shot.shot_key != prompt.shot_id:
                raise CatalogError(
                    f"prompt for shot {prompt.shot_id} given for shot row #{shot_row_id} ({shot.shot_key})",
                    fix="pass the row id record_shots returned for the prompt's shot_id",
                )
            return PromptRow(
                shot_id=shot_row_id,
                sha256=sha256,
                cache_key=cache_key,
                prompt=prompt.prompt,
                negative_prompt=prompt.negative_prompt,
                caption=prompt.caption,
                template=prompt.template,
                template_sha256=prompt.template_sha256,
                llm=prompt.llm,
                changes=[change.model_dump(mode="json") for change in prompt.changes] or None,
                wall_s=float(wall_s),
                created_at=utcnow(),
            )

        return self._get_or_create(lookup, create)

    @_database_errors
    def find_prompt(self, cache_key: str) -> ShotPrompt | None:
        """The prompt an earlier rewrite call with this cache key produced, or None."""
        with self._session(write=False) as s:
            row = s.scalar(select(PromptRow).where(PromptRow.cache_key == cache_key).order_by(PromptRow.id.desc()))
            if row is None:
                return None
            return ShotPrompt(
                shot_id=row.shot.shot_key,
                prompt=row.prompt,
                negative_prompt=row.negative_prompt,
                caption=row.caption,
                template=row.template,
                template_sha256=row.template_sha256,
                llm=row.llm,
                changes=tuple(TimedPrompt.model_validate(change) for change in row.changes or ()),
            )

    # ------------------------------------------------------------ clips

    @_database_errors
    def find_clip(self, cache_key: str) -> Clip | None:
        """The recorded clip for `cache_key` (reused=True), only if its file exists with the recorded sha256."""
        with self._session(write=False) as s:
            row = s.scalar(select(ClipRow).where(ClipRow.cache_key == cache_key))
        if row is None or not self._file_intact(row.path, row.sha256, row.bytes, f"clip {row.shot_key}/{row.segment}"):
            return None
        return Clip(
            shot_id=row.shot_key,
            segment=row.segment,
            path=self.absolute_path(row.path),
            sha256=row.sha256,
            cache_key=row.cache_key,
            num_frames=row.num_frames,
            fps=row.fps,
            width=row.width,
            height=row.height,
            strategy=row.strategy,
            backend=row.backend,
            model=row.model,
            seed=row.seed,
            options=row.options,
            prompt=row.prompt,
            parent_sha256=row.parent_sha256,
            conditioning=row.conditioning,
            end_parent_sha256=row.end_parent_sha256,
            seam=seam_of(row),
            end_seam=seam_of(row, "end_seam"),
            drift=row.drift,
            reused=True,
            wall_s=row.wall_s,
        )

    @_database_errors
    @_retry_on_conflict
    def record_clip(self, clip: Clip, *, prompt_id: int, run_id: int | None, cost_usd: float | None = None) -> int:
        """Record a generated clip (its file must be in place) and its files row; the clip's row id."""
        # 1. check inputs before taking the write lock: no secrets, and the file is really there
        options = guard_secrets(clip.options, f"options of {clip.backend}")
        size = _size_of(clip.path, f"clip {clip.shot_id}/{clip.segment}")
        stored = self.stored_path(clip.path)
        finished = utcnow()
        fields = dict(
            prompt_id=prompt_id,
            shot_key=clip.shot_id,
            segment=clip.segment,
            prompt=clip.prompt,
            path=stored,
            sha256=clip.sha256,
            bytes=size,
            num_frames=clip.num_frames,
            fps=clip.fps,
            width=clip.width,
            height=clip.height,
            strategy=clip.strategy,
            backend=clip.backend,
            model=clip.model,
            seed=clip.seed,
            options=options,
            parent_sha256=clip.parent_sha256,
            conditioning=clip.conditioning,
            end_parent_sha256=clip.end_parent_sha256,
            seam_jump=clip.seam.jump if clip.seam else None,
            seam_median=clip.seam.median if clip.seam else None,
            seam_ratio=clip.seam.ratio if clip.seam else None,
            end_seam_jump=clip.end_seam.jump if clip.end_seam else None,
            end_seam_median=clip.end_seam.median if clip.end_seam else None,
            end_seam_ratio=clip.end_seam.ratio if clip.end_seam else None,
            drift=clip.drift,
            run_id=run_id,
            started_at=finished - timedelta(seconds=clip.wall_s),
            finished_at=finished,
            wall_s=float(clip.wall_s),
            cost_usd=cost_usd,
        )
        with self._session() as s:
            # 2. the rows it points at must exist, and the prompt must be this shot's
            prompt = _require(s, PromptRow, prompt_id, "prompt", "record_prompt")
            if prompt.shot.shot_key != clip.shot_id:
                raise CatalogError(
                    f"clip of shot {clip.shot_id} given prompt #{prompt_id} of shot {prompt.shot.shot_key}",
                    fix="pass the prompt id record_prompt returned for the clip's shot",
                )
            if run_id is not None:
                _require(s, RunRow, run_id, "run", "start_run")
            # 3. the parents: the newest clips with the content it starts from and ends leading into
            fields["parent_clip_id"] = _newest_clip_id(s, clip.parent_sha256)
            fields["end_parent_clip_id"] = _newest_clip_id(s, clip.end_parent_sha256)
            # 4. insert, or replace the row of a clip regenerated under the same key (missing or tampered file)
            return self._save_generation(s, ClipRow, clip.cache_key, fields, clip.reused, stored, size, "clip")

    # ------------------------------------------------------------ narration

    @_database_errors
    def find_narration(self, cache_key: str) -> NarrationLine | None:
        """The recorded line for `cache_key` (reused=True), only if its file exists with the recorded sha256."""
        with self._session(write=False) as s:
            row = s.scalar(select(NarrationRow).where(NarrationRow.cache_key == cache_key))
        if row is None or not self._file_intact(row.path, row.sha256, row.bytes, f"narration of {row.shot_key}"):
            return None
        return NarrationLine(
            shot_id=row.shot_key,
            text=row.text,
            path=self.absolute_path(row.path),
            sha256=row.sha256,
            cache_key=row.cache_key,
            seconds=row.seconds,
            offset=row.offset,
            rate=row.rate,
            voice=row.voice,
            backend=row.backend,
            words=tuple((float(start), float(end), str(word)) for start, end, word in row.words),
            reused=True,
            wall_s=row.wall_s,
        )

    @_database_errors
    @_retry_on_conflict
    def record_narration(self, line: NarrationLine, *, storyboard_id: int, run_id: int | None) -> int:
        """Record a spoken narration line (its file must be in place) and its files row; the line's row id."""
        # 1. check inputs before taking the write lock: the file is really there
        size = _size_of(line.path, f"narration of {line.shot_id}")
        stored = self.stored_path(line.path)
        fields = dict(
            storyboard_id=storyboard_id,
            shot_key=line.shot_id,
            text=line.text,
            path=stored,
            sha256=line.sha256,
            bytes=size,
            seconds=float(line.seconds),
            offset=float(line.offset),
            rate=float(line.rate),
            voice=line.voice,
            backend=line.backend,
            words=[[float(start), float(end), word] for start, end, word in line.words],
            run_id=run_id,
            wall_s=float(line.wall_s),
            created_at=utcnow(),
        )
        with self._session() as s:
            # 2. the rows it points at must exist, and the line's shot must be one of the board's
            board = _require(s, StoryboardRow, storyboard_id, "storyboard", "record_storyboard")
            if run_id is not None:
                _require(s, RunRow, run_id, "run", "start_run")
            if line.shot_id not in {shot.get("id") for shot in board.data.get("shots", [])}:
                raise CatalogError(
                    f"narration of shot {line.shot_id}, but storyboard #{storyboard_id} has no such shot",
                    fix="pass the id record_storyboard returned for the storyboard the line was spoken for",
                )
            # 3. insert, or replace the row of a line spoken again under the same key (missing or tampered file)
            return self._save_generation(s, NarrationRow, line.cache_key, fields, line.reused, stored, size, "narration")

    # ------------------------------------------------------------ audio

    @_database_errors
    def find_audio(self, cache_key: str) -> AudioTrack | None:
        """The recorded track for `cache_key` (reused=True), only if its file exists with the recorded sha256."""
        with self._session(write=False) as s:
            row = s.scalar(select(AudioRow).where(AudioRow.cache_key == cache_key))
        if row is None or not self._file_intact(row.path, row.sha256, row.bytes, f"{row.kind} track"):
            return None
        return AudioTrack(
            kind=row.kind,
            path=self.absolute_path(row.path),
            sha256=row.sha256,
            cache_key=row.cache_key,
            seconds=row.seconds,
            sample_rate=row.sample_rate,
            backend=row.backend,
            options=row.options,
            reused=True,
            wall_s=row.wall_s,
        )

    @_database_errors
    @_retry_on_conflict
    def record_audio(self, track: AudioTrack, *, storyboard_id: int, run_id: int | None) -> int:
        """Record a generated audio track (its file must be in place) and its files row; the track's row id."""
        options = guard_secrets(track.options, f"options of {track.backend}")
        size = _size_of(track.path, f"{track.kind} track")
        stored = self.stored_path(track.path)
        fields = dict(
            storyboard_id=storyboard_id,
            kind=track.kind,
            path=stored,
            sha256=track.sha256,
            bytes=size,
            seconds=float(track.seconds),
            sample_rate=track.sample_rate,
            backend=track.backend,
            options=options,
            run_id=run_id,
            wall_s=float(track.wall_s),
            created_at=utcnow(),
        )
        with self._session() as s:
            _require(s, StoryboardRow, storyboard_id, "storyboard", "record_storyboard")
            if run_id is not None:
                _require(s, RunRow, run_id, "run", "start_run")
            return self._save_generation(s, AudioRow, track.cache_key, fields, track.reused, stored, size, "audio")

    # ------------------------------------------------------------ films

    @_database_errors
    def find_film(self, cache_key: str) -> Film | None:
        """The newest film recorded under `cache_key` whose every file is intact (reused=True), else None.

        Every file is checked against its recorded sha256: the mp4, subtitles, poster, contact
        sheet, storyboard JSON and each stem. A film with a missing or changed file is skipped
        (with a warning naming the file), so the caller stitches it again.
        """
        found = self._intact_film(cache_key)
        return found[1] if found is not None else None

    @_database_errors
    def film_id(self, cache_key: str) -> int | None:
        """The row id of the film find_film(cache_key) returns, or None."""
        found = self._intact_film(cache_key)
        return found[0] if found is not None else None

    def _intact_film(self, cache_key: str) -> tuple[int, Film] | None:
        """(row id, Film) of the newest film under `cache_key` with every file intact, or None."""
        with self._session(write=False) as s:
            rows = s.scalars(select(FilmRow).where(FilmRow.cache_key == cache_key).order_by(FilmRow.id.desc())).all()
            candidates = []
            for row in rows:
                owned = s.scalars(select(FileRow).where(FileRow.owner_table == "films", FileRow.owner_id == row.id))
                candidates.append((row, row.storyboard.data.get("slug", ""), list(owned)))
        for row, slug, owned in candidates:
            files, stems = film_files(row, owned)
            what = f"film #{row.id}"
            if all(self._file_intact(f.stored, f.sha256, f.bytes, f"{what} {f.kind}") for f in files):
                return row.id, Film(
                    slug=slug,
                    path=self.absolute_path(row.path),
                    sha256=row.sha256,
                    subtitles=self.absolute_path(row.subtitles_path),
                    poster=self.absolute_path(row.poster_path),
                    contact_sheet=self.absolute_path(row.contact_sheet_path),
                    storyboard_json=self.absolute_path(row.storyboard_json_path),
                    num_frames=row.num_frames,
                    fps=row.fps,
                    width=row.width,
                    height=row.height,
                    stitch_strategy=row.stitch_strategy,
                    wall_s=row.wall_s,
                    stems={name: self.absolute_path(stored) for name, stored in stems.items()},
                    loudness_lufs=row.loudness_lufs,
                    credentials=row.credentials or {},
                    reused=True,
                )
        if candidates:
            log.warning("film %s: none of its %d recorded film(s) is intact; it will be stitched again",
                        cache_key[:12], len(candidates))  # fmt: skip
        return None

    @_database_errors
    @_retry_on_conflict
    def record_film(
        self,
        film: Film,
        *,
        storyboard_id: int,
        run_id: int | None,
        clip_keys: list[str],
        audio_keys: list[str],
        narration_keys: Iterable[str] = (),
        cache_key: str | None = None,
        credentials: dict | None = None,
    ) -> int:
        """Record a stitched film, the clips, tracks and narration lines it plays, and the files beside it.

        `audio_keys` name every track the film carries, its stems included (kinds narration,
        music, effects, mix); the stem files in `film.stems` are recorded as files of kind
        "stem" unless they are those tracks' own files already. `cache_key` is the hash of
        what the film is made from (find_film looks it up); `credentials` the facts about its
        C2PA manifest (signer, issuer, self_made_ca, manifest_label), never a key (default:
        film.credentials). A film found by find_film (reused=True) recorded again under its
        key is not a new film: the run is pointed at the existing row, whose id is returned.
        """
        # 1. a reused film is the row it was found as (find_film checked its files): point the run at it
        if cache_key and getattr(film, "reused", False):
            with self._session() as s:
                same = s.scalar(
                    select(FilmRow)
                    .where(FilmRow.cache_key == cache_key, FilmRow.sha256 == film.sha256,
                           FilmRow.path == self.stored_path(film.path))
                    .order_by(FilmRow.id.desc()).limit(1)
                )  # fmt: skip
                if same is not None:
                    if run_id is not None:
                        _require(s, RunRow, run_id, "run", "start_run").film_id = same.id
                    return same.id

        # 2. check inputs before taking the write lock: no secrets, every file in place, hashed
        if credentials is None:
            credentials = getattr(film, "credentials", None) or None
        credentials = guard_secrets(credentials, "film credentials") if credentials is not None else None
        outputs = {
            "film": (film.path, film.sha256),
            "subtitles": (film.subtitles, None),
            "poster": (film.poster, None),
            "contact_sheet": (film.contact_sheet, None),
            "storyboard": (film.storyboard_json, None),
        }
        files: dict[str, tuple[str, str, int]] = {}
        for kind, (path, sha256) in outputs.items():
            size = _size_of(path, f"the film's {kind.replace('_', ' ')}")
            files[kind] = (self.stored_path(path), sha256 or sha256_file(path), size)
        stems = {
            name: (self.stored_path(path), sha256_file(path), _size_of(path, f"the film's {name} stem"))
            for name, path in sorted(film.stems.items())
        }

        with self._session() as s:
            # 3. the rows it points at
            _require(s, StoryboardRow, storyboard_id, "storyboard", "record_storyboard")
            if run_id is not None:
                run = _require(s, RunRow, run_id, "run", "start_run")
            clip_ids = _ids_by_key(s, ClipRow, clip_keys, "clip", "record_clip")
            audio_ids = _ids_by_key(s, AudioRow, list(dict.fromkeys(audio_keys)), "audio track", "record_audio")
            narration_ids = _ids_by_key(
                s, NarrationRow, list(dict.fromkeys(narration_keys)), "narration line", "record_narration"
            )
            # 4. the film, then what it is made of
            row = FilmRow(
                storyboard_id=storyboard_id,
                run_id=run_id,
                path=files["film"][0],
                sha256=files["film"][1],
                subtitles_path=files["subtitles"][0],
                subtitles_sha256=files["subtitles"][1],
                poster_path=files["poster"][0],
                poster_sha256=files["poster"][1],
                contact_sheet_path=files["contact_sheet"][0],
                contact_sheet_sha256=files["contact_sheet"][1],
                storyboard_json_path=files["storyboard"][0],
                storyboard_json_sha256=files["storyboard"][1],
                num_frames=film.num_frames,
                fps=film.fps,
                width=film.width,
                height=film.height,
                stitch_strategy=film.stitch_strategy,
                loudness_lufs=film.loudness_lufs,
                cache_key=cache_key,
                credentials=credentials,
                stems={name: {"path": stored, "sha256": sha, "bytes": size}
                       for name, (stored, sha, size) in stems.items()},  # fmt: skip
                wall_s=float(film.wall_s),
                created_at=utcnow(),
            )
            s.add(row)
            s.flush()
            s.add_all(FilmClipRow(film_id=row.id, position=i, clip_id=cid) for i, cid in enumerate(clip_ids))
            s.add_all(FilmAudioRow(film_id=row.id, audio_id=aid) for aid in audio_ids)
            s.add_all(FilmNarrationRow(film_id=row.id, narration_id=nid) for nid in narration_ids)
            for kind, (stored, sha256, size) in files.items():
                self._record_file(s, stored, sha256, size, kind, "films", row.id)
            for stored, sha256, size in stems.values():
                # a stem that is a track's own file stays that track's: its provenance is the track's
                owned = s.scalar(select(FileRow.owner_table).where(FileRow.path == stored))
                if owned not in ("audio_tracks", "narration_lines"):
                    self._record_file(s, stored, sha256, size, "stem", "films", row.id)
            if run_id is not None:
                run.film_id = row.id  # so a run killed before finish_run still names its film
            s.flush()
            return row.id

    # ------------------------------------------------------------ provenance and listings

    @_database_errors
    def films(self) -> list[dict]:
        """Every film, newest first: id, title, path, duration, size, when, which run, cache key, credentials."""
        with self._session(write=False) as s:
            rows = s.execute(
                select(FilmRow, StoryRow.title)
                .join(StoryboardRow, FilmRow.storyboard_id == StoryboardRow.id)
                .join(StoryRow, StoryboardRow.story_id == StoryRow.id)
                .order_by(FilmRow.id.desc())
            ).all()
            return [
                {
                    "id": film.id,
                    "title": title,
                    "path": str(self.absolute_path(film.path)),
                    "sha256": film.sha256,
                    "duration_s": film.num_frames / film.fps,
                    "width": film.width,
                    "height": film.height,
                    "fps": film.fps,
                    "storyboard_id": film.storyboard_id,
                    "run_id": film.run_id,
                    "created_at": film.created_at.isoformat(),
                    "cache_key": film.cache_key,
                    "credentials": film.credentials,
                    "loudness_lufs": film.loudness_lufs,
                    # the names `storyflow catalog films` prints
                    "created": film.created_at.isoformat(),
                    "duration": film.num_frames / film.fps,
                }
                for film, title in rows
            ]

    @_database_errors
    def runs(self, limit: int = 20) -> list[dict]:
        """The newest `limit` runs: status, story, what they generated and reused (per kind), timings."""
        with self._session(write=False) as s:
            rows = s.scalars(select(RunRow).order_by(RunRow.id.desc()).limit(limit)).all()
            return [run_dict(run) for run in rows]

    # ------------------------------------------------------------ helpers

    def _get_or_create(self, lookup: Callable[[Session], Any], create: Callable[[Session], Any]) -> int:
        """The id of the row `lookup` finds, else of the row `create` makes, in one transaction.

        Two writers may both miss and both insert (PostgreSQL lets them; SQLite's up-front
        write lock does not): the loser's unique constraint fails, and its retry finds the row.
        """
        for attempt in range(2):
            try:
                with self._session() as s:
                    row = lookup(s)
                    if row is None:
                        row = create(s)
                        s.add(row)
                        s.flush()
                    return row.id
            except IntegrityError:
                if attempt == 1:
                    raise
        raise AssertionError("unreachable")

    def _save_generation(
        self, s: Session, table: type, cache_key: str, fields: dict, reused: bool, stored: str, size: int, kind: str
    ) -> int:
        """Insert the row for `cache_key`, or replace the row of a thing made again under the same key
        (its file was missing or tampered with); then its files row. Returns the row id."""
        row = s.scalar(select(table).where(table.cache_key == cache_key))
        if row is not None and reused and row.sha256 == fields["sha256"] and row.path == stored:
            return row.id  # a reuse: the row already says all of this
        if row is None:
            row = table(cache_key=cache_key, **fields)
            s.add(row)
        else:
            for name, value in fields.items():
                setattr(row, name, value)
        s.flush()
        self._record_file(s, stored, fields["sha256"], size, kind, table.__tablename__, row.id)
        return row.id

    def _record_file(
        self, s: Session, stored: str, sha256: str, size: int, kind: str, owner: str, owner_id: int
    ) -> None:
        """Upsert the files row for `stored`; drop rows that still claim this owner made another path."""
        row = s.scalar(select(FileRow).where(FileRow.path == stored))
        values = dict(sha256=sha256, bytes=size, kind=kind, owner_table=owner, owner_id=owner_id, created_at=utcnow())
        if row is None:
            s.add(FileRow(path=stored, **values))
        else:
            for name, value in values.items():
                setattr(row, name, value)
        if owner != "films":  # a film owns several files; a clip or track owns exactly one
            stale = select(FileRow).where(
                FileRow.owner_table == owner, FileRow.owner_id == owner_id, FileRow.path != stored
            )
            for row in s.scalars(stale):
                s.delete(row)

    def _file_intact(self, stored: str, sha256: str | None, size: int | None, what: str) -> bool:
        """True if the file exists with the recorded size and sha256 (where recorded); warn (and say why) if not."""
        path = self.absolute_path(stored)
        if not path.is_file():
            log.warning("%s: %s is missing; it will be made again", what, path)
            return False
        if sha256 is None:
            return True  # recorded before its hash was kept: existence is all that can be checked
        if (size is not None and path.stat().st_size != size) or sha256_file(path) != sha256:
            log.warning("%s: %s changed since it was recorded (sha256 no longer %s); it will be made again",
                        what, path, sha256[:12])  # fmt: skip
            return False
        return True


# ---------------------------------------------------------------- module helpers


@dataclass(frozen=True)
class FilmFile:
    """One file of a film row, with the hash (and size, where known) it was recorded with."""

    kind: str  # "film", "subtitles", "poster", "contact_sheet", "storyboard" or "<name> stem"
    stored: str
    sha256: str | None  # None: recorded before 0003 kept it (a storyboard JSON), so unknown
    bytes: int | None


def film_files(row: FilmRow, owned: Iterable[FileRow]) -> tuple[list[FilmFile], dict[str, str]]:
    """Every file a film row points at, and its stems by name (stored paths).

    Sizes come from the film's own files rows where they still describe the same content.
    Films recorded before 0003 have no `stems` column: their stems are the files rows of kind
    "stem", named by file name (stems/music.wav -> "music").
    """
    by_path = {f.path: f for f in owned}

    def size(stored: str, sha256: str | None) -> int | None:
        record = by_path.get(stored)
        return record.bytes if record is not None and record.sha256 == sha256 else None

    storyboard_sha = row.storyboard_json_sha256
    if storyboard_sha is None and row.storyboard_json_path in by_path:
        storyboard_sha = by_path[row.storyboard_json_path].sha256
    files = [
        FilmFile(kind, stored, sha, size(stored, sha))
        for kind, stored, sha in (
            ("film", row.path, row.sha256),
            ("subtitles", row.subtitles_path, row.subtitles_sha256),
            ("poster", row.poster_path, row.poster_sha256),
            ("contact_sheet", row.contact_sheet_path, row.contact_sheet_sha256),
            ("storyboard", row.storyboard_json_path, storyboard_sha),
        )
    ]
    if row.stems is not None:
        stems = {name: entry["path"] for name, entry in row.stems.items()}
        files += [FilmFile(f"{name} stem", e["path"], e["sha256"], e["bytes"]) for name, e in row.stems.items()]
    else:
        recorded = sorted((f for f in owned if f.kind == "stem"), key=lambda f: f.path)
        stems = {PurePosixPath(f.path).stem: f.path for f in recorded}
        files += [FilmFile(f"{PurePosixPath(f.path).stem} stem", f.path, f.sha256, f.bytes) for f in recorded]
    return files, stems


def run_dict(run: RunRow) -> dict:
    """A run row as a JSON-able dict."""
    wall = (run.finished_at - run.started_at).total_seconds() if run.finished_at else None
    return {
        "id": run.id,
        "status": run.status,
        "story_source": run.story_source,
        "story_id": run.story_id,
        "storyboard_id": run.storyboard_id,
        "film_id": run.film_id,
        "pid": run.pid,
        "hostname": run.hostname,
        "params": run.params,
        "started_at": run.started_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "wall_s": wall,
        "clips_generated": run.clips_generated,
        "clips_reused": run.clips_reused,
        "error": run.error,
        "timings": run.timings,
        "generations": run.generations,
        "prefect_flow_run_id": run.prefect_flow_run_id,
    }


def check_generations(generations: dict) -> dict:
    """A run's tally as stored: {kind: {"made": n, "reused": n}}; CatalogError naming what is malformed."""
    checked: dict[str, dict[str, int]] = {}
    for kind, tally in generations.items():
        counts = tally if isinstance(tally, dict) else {}
        if set(counts) != {"made", "reused"} or not all(
            isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in counts.values()
        ):
            raise CatalogError(
                f"generations[{kind!r}] is {tally!r}, not a tally of what was made and reused",
                fix='pass generations as {"clip": {"made": 2, "reused": 7}, ...}: whole numbers, 0 or more',
            )
        checked[str(kind)] = {"made": counts["made"], "reused": counts["reused"]}
    return checked


def seam_of(row: ClipRow, which: str = "seam") -> SeamScore | None:
    """The clip row's seam score ("seam": into it; "end_seam": out of it into its end parent), or None."""
    ratio = getattr(row, f"{which}_ratio")
    if ratio is None:
        return None
    return SeamScore(jump=getattr(row, f"{which}_jump") or 0.0, median=getattr(row, f"{which}_median") or 0.0,
                     ratio=ratio)  # fmt: skip


def _newest_clip_id(s: Session, sha256: str | None) -> int | None:
    """The id of the newest clip row with this content, or None (none given, or never recorded)."""
    if not sha256:
        return None
    return s.scalar(select(ClipRow.id).where(ClipRow.sha256 == sha256).order_by(ClipRow.id.desc()).limit(1))


def _require(s: Session, table: type[T], row_id: int, what: str, maker: str) -> T:
    row = s.get(table, row_id)
    if row is None:
        raise CatalogError(f"no {what} #{row_id} in the catalog", fix=f"pass the id that {maker} returned")
    return row


def _ids_by_key(s: Session, table: Any, keys: Iterable[str], what: str, maker: str) -> list[int]:
    """Row ids for cache keys, in the given order; CatalogError naming any key not recorded."""
    keys = list(keys)
    found = dict(s.execute(select(table.cache_key, table.id).where(table.cache_key.in_(set(keys)))).tuples().all())
    missing = [key for key in keys if key not in found]
    if missing:
        raise CatalogError(
            f"{len(missing)} {what}(s) not in the catalog: {', '.join(k[:16] for k in missing[:5])}",
            fix=f"call {maker} for every {what} before recording the film",
        )
    return [found[key] for key in keys]


def _size_of(path: Path, what: str) -> int:
    """The size of a file that must exist before a row may point at it."""
    try:
        return Path(path).stat().st_size
    except FileNotFoundError:
        raise CatalogError(
            f"{what} {path} does not exist; a catalog row may only point at a file that is in place",
            fix="write the file (atomically) before recording it",
        ) from None


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<catalog URL>"
