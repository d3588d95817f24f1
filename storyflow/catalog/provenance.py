"""Where did this file come from? Walk the catalog back from any output to its story.

    story (hash) -> storyboard -> shot -> prompt version -> clips (with their parents,
                 seams and drift) and narration lines -> audio tracks -> film (loudness,
                 stems, cache key, C2PA credentials), and the run that made it (with what
                 it generated versus reused)

`provenance(catalog, path)` finds the file by its path, or failing that by its content
(sha256), so a moved or copied file still resolves, and returns a JSON-able tree.
`format_provenance(tree)` renders that tree as indented text for the terminal.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

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
from storyflow.core.models import SEAM_WARN_RATIO
from storyflow.media import sha256_file

if TYPE_CHECKING:
    from storyflow.catalog.store import Store

SHORT = 12  # characters of a sha256 shown in text
MAX_PARENTS = 10_000  # a chain longer than this is a loop in the data, not a film
# The table a files row names as its maker -> that table's row class.
OWNERS = {"films": FilmRow, "clips": ClipRow, "audio_tracks": AudioRow, "narration_lines": NarrationRow}


def short(sha256: str | None) -> str:
    return (sha256 or "")[:SHORT]


# ---------------------------------------------------------------- the walk


def provenance(catalog: Store, path: Path) -> dict:
    """The provenance tree of the file at `path`; CatalogError (with a fix) if the catalog does not know it."""
    path = Path(path)
    with catalog._session(write=False) as s:
        # 1. which file row: by path first, then by content
        record, asked, matched_by = find_file(catalog, s, path)
        walk = Walk(catalog, s)
        # 2. the tree of the row that made it (poster, subtitles... belong to their film)
        owner = OWNERS.get(record.owner_table)
        row = s.get(owner, record.owner_id) if owner is not None else None
        if row is None:
            raise CatalogError(
                f"the catalog says {record.path} was made by {record.owner_table} #{record.owner_id}, "
                "but that row is gone",
                fix="run `storyflow catalog verify --repair`, then make the film again",
            )
        if isinstance(row, FilmRow):
            tree = walk.film(row)
        elif isinstance(row, ClipRow):
            tree = walk.clip_tree(row)
        elif isinstance(row, NarrationRow):
            tree = walk.narration_tree(row)
        else:
            tree = walk.audio_tree(row)
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
                    "clips": [self.clip(c) for c in clips],
                    "narration_lines": [self.narration(n) for n in lines if n.shot_key == shot.shot_key],
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
            "audio": [self.audio(a) for a in audio],
            "run": self.run(film.run_id),
        }

    def clip_tree(self, clip: ClipRow) -> dict:
        """A clip: its parents up the chain, its prompt, shot, storyboard, story, and the films using it."""
        prompt = clip.prompt_row
        shot = prompt.shot
        board = shot.storyboard
        # IN, not DISTINCT: PostgreSQL cannot compare films' JSON columns for DISTINCT
        films = self.s.scalars(
            select(FilmRow).where(FilmRow.id.in_(select(FilmClipRow.film_id).where(FilmClipRow.clip_id == clip.id)))
            .order_by(FilmRow.id)
        ).all()  # fmt: skip
        return {
            "kind": "clip",
            "path": self.path(clip.path),
            "sha256": clip.sha256,
            "clip": self.clip(clip),
            "parents": self.parents(clip),
            "end_parent": self.clip(clip.end_parent) if clip.end_parent is not None else None,
            "shot": self.shot(shot),
            "prompt": self.prompt(prompt),
            "storyboard": self.storyboard(board),
            "story": self.story(board.story),
            "films": [self.film_ref(f) for f in films],
            "run": self.run(clip.run_id),
        }

    def audio_tree(self, track: AudioRow) -> dict:
        """An audio track: its storyboard, story, and the films that carry it."""
        board = self.s.get(StoryboardRow, track.storyboard_id)
        films = self.s.scalars(
            select(FilmRow).join(FilmAudioRow, FilmAudioRow.film_id == FilmRow.id)
            .where(FilmAudioRow.audio_id == track.id).order_by(FilmRow.id)
        ).all()  # fmt: skip
        return {
            "kind": "audio",
            "path": self.path(track.path),
            "sha256": track.sha256,
            "audio": self.audio(track),
            "storyboard": self.storyboard(board),
            "story": self.story(board.story),
            "films": [self.film_ref(f) for f in films],
            "run": self.run(track.run_id),
        }

    def narration_tree(self, line: NarrationRow) -> dict:
        """A narration line: its shot, storyboard, story, and the films that speak it."""
        board = self.s.get(StoryboardRow, line.storyboard_id)
        shot = self.s.scalar(
            select(ShotRow).where(ShotRow.storyboard_id == board.id, ShotRow.shot_key == line.shot_key)
        )
        films = self.s.scalars(
            select(FilmRow).join(FilmNarrationRow, FilmNarrationRow.film_id == FilmRow.id)
            .where(FilmNarrationRow.narration_id == line.id).order_by(FilmRow.id)
        ).all()  # fmt: skip
        return {
            "kind": "narration",
            "path": self.path(line.path),
            "sha256": line.sha256,
            "narration": self.narration(line),
            "shot": self.shot(shot) if shot is not None else None,
            "storyboard": self.storyboard(board),
            "story": self.story(board.story),
            "films": [self.film_ref(f) for f in films],
            "run": self.run(line.run_id),
        }

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
            chain.append(self.clip(parent))
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
            "sha256": prompt.sha256,
            "wall_s": prompt.wall_s,
        }

    def clip(self, clip: ClipRow) -> dict:
        return {
            "id": clip.id,
            "shot_key": clip.shot_key,
            "segment": clip.segment,
            "path": self.path(clip.path),
            "sha256": clip.sha256,
            "bytes": clip.bytes,
            "num_frames": clip.num_frames,
            "seconds": clip.num_frames / clip.fps,
            "size": f"{clip.width}x{clip.height}",
            "fps": clip.fps,
            "backend": clip.backend,
            "model": clip.model,
            "seed": clip.seed,
            "strategy": clip.strategy,
            "prompt": clip.prompt,
            "parent_sha256": clip.parent_sha256,
            "conditioning": clip.conditioning,
            "end_parent_sha256": clip.end_parent_sha256,
            "seam": seam_dict(clip),
            "end_seam": seam_dict(clip, "end_seam"),
            "drift": clip.drift,
            "options": clip.options,
            "cache_key": clip.cache_key,
            "wall_s": clip.wall_s,
            "cost_usd": clip.cost_usd,
            "run_id": clip.run_id,
            "finished": clip.finished_at.isoformat(),
        }

    def narration(self, line: NarrationRow) -> dict:
        return {
            "id": line.id,
            "shot_key": line.shot_key,
            "text": line.text,
            "path": self.path(line.path),
            "sha256": line.sha256,
            "seconds": line.seconds,
            "offset": line.offset,
            "rate": line.rate,
            "voice": line.voice,
            "backend": line.backend,
            "words": line.words,
            "cache_key": line.cache_key,
            "wall_s": line.wall_s,
            "run_id": line.run_id,
        }

    def audio(self, track: AudioRow) -> dict:
        return {
            "id": track.id,
            "kind": track.kind,
            "path": self.path(track.path),
            "sha256": track.sha256,
            "seconds": track.seconds,
            "sample_rate": track.sample_rate,
            "backend": track.backend,
            "options": track.options,
            "cache_key": track.cache_key,
            "wall_s": track.wall_s,
            "run_id": track.run_id,
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


# ---------------------------------------------------------------- text


def format_provenance(tree: dict) -> str:
    """The tree as indented text: story -> storyboard -> shots -> prompt -> clips -> audio -> film -> run."""
    out = _Lines()
    kind = tree["kind"]
    file = tree.get("file")
    if file:
        how = "found by path" if file["matched_by"] == "path" else "found by content (sha256)"
        out.add(0, f"provenance of {file['kind']} {file['path']}  ({how}, file {file['on_disk']})")
        if file["recorded_path"] != file["path"]:
            out.add(1, f"recorded at {file['recorded_path']}")
    _story(out, tree["story"])
    _storyboard(out, tree["storyboard"])
    if kind == "film":
        for shot in tree["shots"]:
            _shot(out, shot, 2)
            _prompt(out, shot["prompt"], 3)
            if shot["clips"]:
                out.add(3, "clips")
            for clip in shot["clips"]:
                _clip(out, clip, 4)
            for line in shot.get("narration_lines", []):
                _narration(out, line, 3)
        _audio_list(out, tree["audio"], 1)
        _film(out, tree)
    elif kind == "clip":
        _shot(out, tree["shot"], 2)
        _prompt(out, tree["prompt"], 3)
        out.add(3, "clip")
        _clip(out, tree["clip"], 4)
        if tree.get("end_parent"):
            out.add(4, "ends leading into")
            _clip(out, tree["end_parent"], 5)
        if tree["parents"]:
            out.add(4, "conditioned on, nearest first")
        for parent in tree["parents"]:
            if parent.get("recorded", True):
                _clip(out, parent, 5)
            else:
                out.add(5, f"sha256 {short(parent['sha256'])} (frames the catalog has no clip for)")
        _used_by(out, tree["films"])
    elif kind == "narration":
        if tree["shot"] is not None:
            _shot(out, tree["shot"], 2)
        _narration(out, tree["narration"], 3)
        out.add(4, f"path {tree['narration']['path']}")
        _used_by(out, tree["films"])
    else:
        _audio_list(out, [tree["audio"]], 1)
        _used_by(out, tree["films"])
    _run(out, tree.get("run"))
    return out.text()


class _Lines:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def add(self, depth: int, text: str) -> None:
        self.lines.append("  " * depth + text)

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def _seconds(value: float | None) -> str:
    return f"{value:.2f} s" if value is not None else "? s"


def _options(value: dict | None) -> str:
    from storyflow.core.hashing import canonical_json

    return canonical_json(value) if value else "{}"


def _story(out: _Lines, story: dict) -> None:
    out.add(0, f"story {story['title']!r}  sha256 {short(story['sha256'])}  from {story['source']}")


def _storyboard(out: _Lines, board: dict) -> None:
    out.add(
        1,
        f"storyboard #{board['id']}  planned by {board['planner'] or board['llm']}  llm {board['llm']}  "
        f"seed {board['seed']}  {board['shots']} shots  {board['size']} @ {board['fps']} fps  "
        f"sha256 {short(board['sha256'])}  {_seconds(board['wall_s'])}",
    )
    if board["llm_options"]:
        out.add(2, f"llm options {_options(board['llm_options'])}")


def _shot(out: _Lines, shot: dict, depth: int) -> None:
    extra = "  continues previous" if shot["continues_previous"] else ""
    extra += "  loops" if shot.get("loop") else ""
    out.add(
        depth,
        f"shot {shot['shot_key']}  {shot['camera']}  {_seconds(shot['duration'])}  mood {shot['mood']}  "
        f"-> {shot['transition']}{extra}  sha256 {short(shot['sha256'])}",
    )
    if shot["narration"]:
        out.add(depth + 1, f"narration: {shot['narration']!r}")


def _prompt(out: _Lines, prompt: dict | None, depth: int) -> None:
    if prompt is None:
        out.add(depth, "prompt: none recorded")
        return
    template = "no template"
    if prompt["template"]:
        template = f"template {prompt['template']} (sha256 {short(prompt['template_sha256'])})"
    by = prompt["llm"] or "?"
    out.add(depth, f"prompt  by {by}  {template}  sha256 {short(prompt['sha256'])}  {_seconds(prompt['wall_s'])}")
    out.add(depth + 1, f"text: {prompt['text']!r}")
    if prompt["negative"]:
        out.add(depth + 1, f"negative: {prompt['negative']!r}")


def _clip(out: _Lines, clip: dict, depth: int) -> None:
    cost = f"  ${clip['cost_usd']:.4f}" if clip.get("cost_usd") is not None else ""
    out.add(
        depth,
        f"segment {clip['segment']} of {clip['shot_key']}  {clip['strategy']}  backend {clip['backend']}  "
        f"model {clip['model']}  seed {clip['seed']}  {clip['num_frames']} frames {clip['size']} @ {clip['fps']} fps  "
        f"sha256 {short(clip['sha256'])}  made in {_seconds(clip['wall_s'])}{cost}",
    )
    if clip["parent_sha256"]:
        out.add(depth + 1, f"parent {short(clip['parent_sha256'])}  conditioned on {clip['conditioning'] or '?'}")
    if clip.get("end_parent_sha256"):
        out.add(depth + 1, f"end parent {short(clip['end_parent_sha256'])}  (ends leading into its first frames)")
    if clip.get("seam"):
        out.add(depth + 1, f"seam {format_seam(clip['seam'])}")
    if clip.get("end_seam"):
        out.add(depth + 1, f"end seam (into its end parent) {format_seam(clip['end_seam'])}")
    if clip.get("drift"):
        out.add(depth + 1, f"drift: {clip['drift']}")
    out.add(depth + 1, f"options {_options(clip['options'])}")
    out.add(depth + 1, f"path {clip['path']}")


def format_seam(seam: dict) -> str:
    """'ratio 1.12 (jump 3.40, median 3.04)', with VISIBLE when the jump shows."""
    mark = f"  VISIBLE (over {SEAM_WARN_RATIO:g}x ordinary change)" if seam["ratio"] > SEAM_WARN_RATIO else ""
    return f"ratio {seam['ratio']:.2f} (jump {seam['jump']:.2f}, median {seam['median']:.2f}){mark}"


def _narration(out: _Lines, line: dict, depth: int) -> None:
    out.add(
        depth,
        f"narration line  +{line['offset']:.2f} s into the shot  {_seconds(line['seconds'])} of speech  "
        f"voice {line['voice']}  {line['rate']:g} wpm  backend {line['backend']}  sha256 {short(line['sha256'])}",
    )
    out.add(depth + 1, f"text: {line['text']!r}")


def _audio_list(out: _Lines, tracks: list[dict], depth: int) -> None:
    out.add(depth, "audio" if tracks else "audio: none recorded")
    for track in tracks:
        out.add(
            depth + 1,
            f"{track['kind']}  backend {track['backend']}  {_seconds(track['seconds'])}  {track['sample_rate']} Hz  "
            f"sha256 {short(track['sha256'])}  made in {_seconds(track['wall_s'])}",
        )
        out.add(depth + 2, f"options {_options(track['options'])}")
        out.add(depth + 2, f"path {track['path']}")


def _film(out: _Lines, film: dict) -> None:
    cost = f"  clips cost ${film['cost_usd']:.4f}" if film.get("cost_usd") is not None else ""
    loudness = f"  loudness {film['loudness_lufs']:.1f} LUFS" if film.get("loudness_lufs") is not None else ""
    out.add(
        0,
        f"film {film['path']}  sha256 {short(film['sha256'])}  {_seconds(film['duration'])}  {film['size']} @ "
        f"{film['fps']} fps{loudness}  stitch: {film['stitch']}  made {film['created']} in "
        f"{_seconds(film['wall_s'])}{cost}",
    )
    for name, item in film["outputs"].items():
        sha = f"  sha256 {short(item['sha256'])}" if item.get("sha256") else ""
        out.add(1, f"{name.replace('_', ' ')} {item['path']}{sha}")
    for stem in film.get("stems", []):
        out.add(1, f"{stem['kind']} stem {stem['path']}  sha256 {short(stem['sha256'])}")
    if film.get("cache_key"):
        out.add(1, f"cache key {short(film['cache_key'])}")
    out.add(1, format_credentials(film.get("credentials")))


def format_credentials(credentials: dict | None) -> str:
    """'content credentials (C2PA): signed by X, issued by Y, manifest Z', saying when only this machine trusts them."""
    if not credentials:
        return "content credentials (C2PA): none recorded"
    parts = [f"signed by {credentials.get('signer') or '?'}"]
    if credentials.get("issuer"):
        parts.append(f"issued by {credentials['issuer']}")
    if credentials.get("manifest_label"):
        parts.append(f"manifest {credentials['manifest_label']}")
    if credentials.get("trusted_note"):
        parts.append(credentials["trusted_note"])
    elif credentials.get("self_made_ca"):
        parts.append("by storyflow's own local CA: untrusted outside this machine")
    return "content credentials (C2PA): " + ", ".join(parts)


def _used_by(out: _Lines, films: list[dict]) -> None:
    out.add(0, "used by films" if films else "used by no film yet")
    for film in films:
        out.add(1, f"film #{film['id']} {film['path']}  sha256 {short(film['sha256'])}  made {film['created']}")


def _run(out: _Lines, run: dict | None) -> None:
    if run is None:
        return
    timings = ", ".join(f"{k} {_seconds(v)}" for k, v in (run["timings"] or {}).items() if isinstance(v, int | float))
    out.add(
        0,
        f"run #{run['id']}  {run['status']}  on {run['hostname']} (pid {run['pid']})  started {run['started_at']}  "
        f"{run['clips_generated']} clips generated, {run['clips_reused']} reused",
    )
    if run.get("generations"):
        tally = ", ".join(f"{kind} {n['made']} made / {n['reused']} reused" for kind, n in run["generations"].items())
        out.add(1, f"generations: {tally}")
    if timings:
        out.add(1, f"timings: {timings}")
    if run["error"]:
        out.add(1, f"error: {run['error']}")
