"""Where did this file come from? Walk the catalog back from any output to its story.

    story (hash) -> storyboard -> shot -> prompt version -> clips (with their parents,
                 seams and drift) and narration lines -> audio tracks -> film (loudness,
                 stems, cache key, C2PA credentials), and the run that made it (with what
                 it generated versus reused)

`provenance(catalog, path)` finds the file by its path, or failing that by its content
(sha256), so a moved or copied file still resolves, and returns a JSON-able tree (the
command line renders it: storyflow.cli.text.format_provenance). Read-only.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from storyflow.catalog.kinds import AUDIO, CLIP, FILM, NARRATION, OWNERS, Kind
from storyflow.catalog.schema import (
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
)
from storyflow.core.errors import CatalogError
from storyflow.core.hashing import short
from storyflow.core.models import SEAM_WARN_RATIO
from storyflow.media import sha256_file

if TYPE_CHECKING:
    from storyflow.catalog.store import Store

MAX_PARENTS = 10_000  # a chain longer than this is a loop in the data, not a film


# ---------------------------------------------------------------- the walk


def provenance(catalog: Store, path: Path) -> dict:
    """The provenance tree of the file at `path`; CatalogError (with a fix) if the catalog does not know it."""
    path = Path(path)
    with catalog.reading() as s:
        # 1. which file row: by path first, then by content
        record, asked, matched_by = find_file(catalog, s, path)
        walk = Walk(catalog, s)
        # 2. the tree of the row that made it (poster, subtitles... belong to their film)
        kind = OWNERS.get(record.owner_table)
        row = s.get(kind.table, record.owner_id) if kind is not None else None
        if row is None:
            raise CatalogError(
                f"the catalog says {record.path} was made by {record.owner_table} #{record.owner_id}, "
                "but that row is gone",
                fix="run `storyflow catalog verify --repair`, then make the film again",
            )
        tree = walk.film(row) if kind is FILM else walk.generation(kind, row)
        tree["file"] = _file_dict(catalog, record, asked, matched_by)
        return tree


def find_file(catalog: Store, s: Session, path: Path) -> tuple[FileRow, Path, str]:
    """The files row for `path` (looked up by path, then by sha256), the file asked for, and how it matched."""
    candidates = [path] if path.is_absolute() else [Path.cwd() / path, catalog.home / path]
    candidates = list(dict.fromkeys(Path(os.path.abspath(c)) for c in candidates))
    for candidate in candidates:
        record = s.scalar(select(FileRow).where(FileRow.path == catalog.stored_path(candidate)))
        if record is not None:
            return record, candidate, "path"
    existing = next((c for c in candidates if c.is_file()), None)
    if existing is None:
        raise CatalogError(
            f"{path} does not exist, and the catalog has no file recorded at that path",
            fix="check the path (`storyflow catalog films` lists every film the catalog knows)",
        )
    sha256 = sha256_file(existing)
    record = s.scalar(select(FileRow).where(FileRow.sha256 == sha256).order_by(FileRow.id.desc()).limit(1))
    if record is None:
        raise CatalogError(
            f"the catalog {catalog.url} has no record of {path} (sha256 {short(sha256)}): no file it "
            "recorded has that path or that content",
            fix="pass a file storyflow made, unchanged; if another output folder made it, set "
            "STORYFLOW_HOME (or STORYFLOW_CATALOG_URL) to the catalog of that folder",
        )
    return record, existing, "sha256"


def _file_dict(catalog: Store, record: FileRow, asked: Path, matched_by: str) -> dict:
    """The file asked about: where it was recorded, how it matched, and whether it is still intact."""
    if not asked.is_file():
        on_disk = "missing"
    elif matched_by == "sha256" or sha256_file(asked) == record.sha256:
        on_disk = "ok"
    else:
        on_disk = "changed"
    return {
        "kind": record.kind,
        "path": str(asked),
        "recorded_path": str(catalog.absolute_path(record.path)),
        "sha256": record.sha256,
        "bytes": record.bytes,
        "matched_by": matched_by,
        "on_disk": on_disk,
    }


class Walk:
    """Turns rows into the JSON-able pieces of a provenance tree, inside one read transaction."""

    def __init__(self, catalog: Store, session: Session) -> None:
        self.catalog = catalog
        self.s = session

    def path(self, stored: str) -> str:
        return str(self.catalog.absolute_path(stored))

    # ------------------------------------------------------------ the three kinds of tree

    def film(self, film: FilmRow) -> dict:
        """A film: its story, storyboard, every shot with its prompt and clips, its audio and run."""
        board = film.storyboard
        used = self.s.execute(
            select(ClipRow)
            .join(FilmClipRow, FilmClipRow.clip_id == ClipRow.id)
            .where(FilmClipRow.film_id == film.id)
            .order_by(FilmClipRow.position)
        ).scalars().all()
        lines = self.film_narration(film)
        shots = []
        for shot in self.shots_of(board):
            clips = [c for c in used if c.shot_key == shot.shot_key]
            prompt = self.s.get(PromptRow, clips[0].prompt_id) if clips else self.latest_prompt(shot)
            shots.append(
                self.shot(shot)
                | {
                    "prompt": self.prompt(prompt),
                    "clips": [self.piece(CLIP, c) for c in clips],
                    "narration_lines": [self.piece(NARRATION, n) for n in lines if n.shot_key == shot.shot_key],
                }
            )
        audio = self.s.scalars(
            select(AudioRow)
            .join(FilmAudioRow, FilmAudioRow.audio_id == AudioRow.id)
            .where(FilmAudioRow.film_id == film.id)
            .order_by(AudioRow.id)
        ).all()
        stems = self.s.scalars(
            select(FileRow).where(FileRow.owner_table == "films", FileRow.owner_id == film.id, FileRow.kind == "stem")
            .order_by(FileRow.path)
        ).all()  # fmt: skip
        kinds = {track.sha256: track.kind for track in audio}
        costs = [c.cost_usd for c in used if c.cost_usd is not None]
        return {
            "kind": "film",
            "id": film.id,
            "path": self.path(film.path),
            "sha256": film.sha256,
            "duration": film.num_frames / film.fps,
            "size": f"{film.width}x{film.height}",
            "fps": film.fps,
            "num_frames": film.num_frames,
            "stitch": film.stitch_strategy,
            "loudness_lufs": film.loudness_lufs,
            "cache_key": film.cache_key,
            "credentials": film.credentials,  # C2PA: signer, issuer, self_made_ca, manifest_label
            "wall_s": film.wall_s,
            "cost_usd": sum(costs) if costs else None,
            "created": film.created_at.isoformat(),
            "outputs": {
                "subtitles": {"path": self.path(film.subtitles_path), "sha256": film.subtitles_sha256},
                "poster": {"path": self.path(film.poster_path), "sha256": film.poster_sha256},
                "contact_sheet": {"path": self.path(film.contact_sheet_path), "sha256": film.contact_sheet_sha256},
                "storyboard_json": {"path": self.path(film.storyboard_json_path)},
            },
            # stem files beside the film, named by the track they copy (else by file name)
            "stems": [
                {"kind": kinds.get(f.sha256, Path(f.path).stem), "path": self.path(f.path), "sha256": f.sha256}
                for f in stems
            ],
            "story": self.story(board.story),
            "storyboard": self.storyboard(board),
            "shots": shots,
            "audio": [self.piece(AUDIO, a) for a in audio],
            "run": self.run(film.run_id),
        }

    def generation(self, kind: Kind, row: Any) -> dict:
        """A clip, a narration line or an audio track: what made it, back to the story, and the films using it.

        A clip also shows its parents up the chain and the clip it ends leading into.
        """
        prompt = row.prompt_row if kind is CLIP else None
        board = prompt.shot.storyboard if prompt is not None else self.s.get(StoryboardRow, row.storyboard_id)
        link = next(link for link in FILM.links.values() if link.kind == kind.name)
        films = self.s.scalars(  # IN, not DISTINCT: PostgreSQL cannot compare films' JSON columns for DISTINCT
            select(FilmRow).where(FilmRow.id.in_(select(link.table.film_id).where(getattr(link.table, link.column) == row.id)))
            .order_by(FilmRow.id)
        ).all()  # fmt: skip
        tree: dict[str, Any] = {"kind": kind.name, "path": self.path(row.path), "sha256": row.sha256,
                                kind.name: self.piece(kind, row)}  # fmt: skip
        if kind is CLIP:
            tree["parents"] = self.parents(row)
            tree["end_parent"] = self.piece(CLIP, row.end_parent) if row.end_parent is not None else None
        if hasattr(row, "shot_key"):
            shot = prompt.shot if prompt is not None else self.s.scalar(
                select(ShotRow).where(ShotRow.storyboard_id == board.id, ShotRow.shot_key == row.shot_key))  # fmt: skip
            tree["shot"] = self.shot(shot) if shot is not None else None
        if kind is CLIP:
            tree["prompt"] = self.prompt(prompt)
        return tree | {
            "storyboard": self.storyboard(board),
            "story": self.story(board.story),
            "films": [self.film_ref(f) for f in films],
            "run": self.run(row.run_id),
        }

    def piece(self, kind: Kind, row: Any) -> dict:
        """One generation's row as JSON-able facts, by rule: every column (paths absolute, times in ISO
        8601, a seam as one object), plus its length in seconds and its size where it has frames."""
        facts: dict[str, Any] = {}
        for column in kind.columns:
            value = getattr(row, column)
            if column == "path" or column.endswith("_path"):
                value = self.path(value)
            elif isinstance(value, datetime):
                value = value.isoformat()
            facts[column] = value
        for group, model in kind.nested.items():  # a seam's three columns as one object
            for part in model.model_fields:
                facts.pop(f"{group}_{part}", None)
            facts[group] = seam_dict(row, group)
        if "corrections" in facts:
            facts["corrections"] = list(facts["corrections"] or ())
        if {"num_frames", "fps"} <= facts.keys():
            facts |= {"seconds": row.num_frames / row.fps, "size": f"{row.width}x{row.height}"}
        if "finished_at" in facts:
            facts["finished"] = facts["finished_at"]
        return facts

    # ------------------------------------------------------------ pieces

    def film_narration(self, film: FilmRow) -> list[NarrationRow]:
        """The narration lines the film speaks, in shot order then time order."""
        return list(
            self.s.scalars(
                select(NarrationRow)
                .join(FilmNarrationRow, FilmNarrationRow.narration_id == NarrationRow.id)
                .where(FilmNarrationRow.film_id == film.id)
                .order_by(NarrationRow.shot_key, NarrationRow.offset, NarrationRow.id)
            )
        )

    def shots_of(self, board: StoryboardRow) -> list[ShotRow]:
        return list(self.s.scalars(select(ShotRow).where(ShotRow.storyboard_id == board.id).order_by(ShotRow.position)))

    def latest_prompt(self, shot: ShotRow) -> PromptRow | None:
        return self.s.scalar(select(PromptRow).where(PromptRow.shot_id == shot.id).order_by(PromptRow.id.desc()))

    def parents(self, clip: ClipRow) -> list[dict]:
        """The clips this one was conditioned on, nearest first, up to the chain's first segment."""
        chain: list[dict] = []
        seen = {clip.id}
        current = clip
        while current.parent_sha256 and len(chain) < MAX_PARENTS:
            parent = self.s.get(ClipRow, current.parent_clip_id) if current.parent_clip_id else None
            if parent is None:  # conditioned on frames the catalog never recorded as a clip
                chain.append({"sha256": current.parent_sha256, "recorded": False})
                break
            if parent.id in seen:
                break
            seen.add(parent.id)
            chain.append(self.piece(CLIP, parent))
            current = parent
        return chain

    def story(self, story: StoryRow) -> dict:
        return {
            "id": story.id,
            "title": story.title,
            "source": story.source,
            "sha256": story.sha256,
            "slug": story.slug,
            "front_matter": story.front_matter,
            "created": story.created_at.isoformat(),
        }

    def storyboard(self, board: StoryboardRow) -> dict:
        data = board.data
        return {
            "id": board.id,
            "sha256": board.sha256,
            "llm": board.llm,
            "llm_options": board.llm_options,
            "planner": data.get("planner", ""),
            "planner_model": board.planner_model,
            "origin": board.origin,
            "coverage": board.coverage,
            "usage": board.usage,
            "seed": board.seed,
            "shots": len(data.get("shots", [])),
            "size": f"{data.get('width')}x{data.get('height')}",
            "fps": data.get("fps"),
            "style": (data.get("style") or {}).get("style", ""),
            "wall_s": board.wall_s,
            "created": board.created_at.isoformat(),
        }

    def shot(self, shot: ShotRow) -> dict:
        data = shot.data
        return {
            "shot_key": shot.shot_key,
            "position": shot.position,
            "sha256": shot.sha256,
            "camera": data.get("camera", ""),
            "directives": [d for d in (data.get("framing"), data.get("angle"), data.get("camera"),
                                       *(data.get("more_moves") or ()), *(data.get("effects") or ())) if d],
            "span": data.get("span"),
            "duration": data.get("duration"),
            "action": data.get("action", ""),
            "narration": data.get("narration", ""),
            "mood": data.get("mood", ""),
            "transition": data.get("transition", ""),
            "continues_previous": data.get("continues_previous", False),
            "loop": data.get("loop", False),
        }

    def prompt(self, prompt: PromptRow | None) -> dict | None:
        if prompt is None:
            return None
        return {
            "id": prompt.id,
            "text": prompt.prompt,
            "negative": prompt.negative_prompt,
            "caption": prompt.caption,
            "template": prompt.template,
            "template_sha256": prompt.template_sha256,
            "llm": prompt.llm,
            "model": prompt.model,
            "usage": prompt.usage,
            "sha256": prompt.sha256,
            "wall_s": prompt.wall_s,
        }

    def film_ref(self, film: FilmRow) -> dict:
        return {
            "id": film.id,
            "path": self.path(film.path),
            "sha256": film.sha256,
            "created": film.created_at.isoformat(),
        }

    def run(self, run_id: int | None) -> dict | None:
        from storyflow.catalog.store import run_dict

        run = self.s.get(RunRow, run_id) if run_id is not None else None
        return run_dict(run) if run is not None else None


def seam_dict(clip: ClipRow, which: str = "seam") -> dict | None:
    """A clip's seam as {jump, median, ratio, visible}: "seam" into it, "end_seam" out of it
    into its end parent (a loop's wrap-around); None where there is none."""
    ratio = getattr(clip, f"{which}_ratio")
    if ratio is None:
        return None
    return {
        "jump": getattr(clip, f"{which}_jump"),
        "median": getattr(clip, f"{which}_median"),
        "ratio": ratio,
        "visible": ratio > SEAM_WARN_RATIO,
    }
