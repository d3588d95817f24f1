"""Do the catalog and the files agree? The check (and repair) behind `storyflow catalog verify [--repair]`.

A row *claims* a file when it points at it: a files row, a clip, an audio track, a narration
line, and a film (its mp4, subtitles, poster, contact sheet, storyboard JSON and each stem).
`verify(catalog)` reads every claim in one short read transaction, then, outside any
transaction, checks each claimed file and walks the output folder (STORYFLOW_HOME):

- rows_without_files: a claimed file is gone (one entry per file, naming every row claiming it);
- hash_mismatches: a claimed file is there but its size or sha256 is not what was recorded.
  The files row of a path is the newest word on it (record_* rewrite it): an older row that
  recorded other content at the same path was superseded, and is listed, for information
  only, under `superseded`;
- file_rows_without_owner: a files row whose owner row (clip, track, line, film) is gone;
- files_without_rows: a file under home that no row claims;
- partial_files: temporaries a killed process left: files named ".*.partial*"
  (storyflow.media.partial_path) and stitch scratch folders ".stitch-*" (storyflow.stages.stitch);
- ok: all five lists are empty.

Storyflow's own metadata, never reported as a file without rows:
- home/.prefect/ (Prefect's database), home/c2pa/ (the local signing CA and keys),
  home/nightly/ (the nightly reports: flows/nightly.py), home/.orphans/ (what earlier repairs
  moved aside);
- the catalog's SQLite file (home/catalog.db or the URL's file) and its -wal, -shm, -journal;
- lock files (".lock", "*.lock": storyflow.core.locks) and ".gitkeep";
- `summary.json` in any folder holding a recorded film (at any depth: the flow writes it in
  the story's folder, above films/<key>/);
- published copies: a file that is a hard link to, or a byte-identical copy of, a claimed
  file that is intact (the flow shows a film under plain names, <slug>.mp4, stems/<kind>.wav,
  as hard links to the content-addressed files the catalog records).

A catalog on a server may be shared by several homes (machines, or folders), each holding
its own files at the same relative paths. Once another home has run a film against it
(the `homes` table; never for a home's own SQLite file), a file missing here is counted under
`not_here`, not as a problem: it may be in another home, and repair never deletes a row.

With a storage (STORYFLOW_STORAGE_URL, storyflow.media.storage), a claimed file missing here
that storage holds with the recorded size is counted under `in_storage`, not as a problem: a
run that needs it fetches it (and checks its sha256). Repair never deletes its row, nor the
row of another file that only looks stale beside it. Only files inside home are in storage;
`files_without_rows` is still found by walking home alone.

repair=True, which must run while no film run writes to home (the CLI holds
storyflow.core.locks.hold(home) exclusively):
1. rows: every row claiming a missing or changed file is deleted, so the next run makes it
   again. A deleted film takes its files rows and links (film_clips, film_audio,
   film_narration) with it, and runs that named it name no film. Its other files then have
   no row: they are moved aside (step 2), and so are other rows' claims that only a deleted
   row kept valid (repeated until nothing changes). A deleted clip's children keep their
   parent_sha256 but lose the link to its row. A film that plays a deleted clip, track or
   line keeps its row and its files (it is still the user's film, and intact), but loses its
   links to the deleted rows and its cache_key: find_film never offers it for reuse again.
   A files row whose owner is gone is deleted.
2. files: changed files, files without rows, and published copies of files moved aside go
   to home/.orphans/<UTC timestamp>/<path relative to home> (a file outside home under
   .../external/<absolute path>): nothing the user may want is ever deleted.
3. partial files and scratch folders are deleted: they are never complete.
Each row's deletion is its own short transaction; rows go before files move, so a crash in
between leaves only files without rows, which the next verify finds and moves.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select, update

from storyflow.catalog.db import sqlite_file
from storyflow.catalog.kinds import FILM, KINDS, OWNERS, row_files
from storyflow.catalog.schema import ClipRow, FileRow, FilmRow, RunRow
from storyflow.media import sha256_file

if TYPE_CHECKING:
    from storyflow.catalog.store import Store

log = logging.getLogger("storyflow.catalog")

ORPHANS = ".orphans"
HOME_METADATA_FOLDERS = {".prefect", "c2pa", "nightly", ORPHANS}  # top-level folders of home that are not outputs
CATALOG_SUFFIXES = ("", "-wal", "-shm", "-journal")
PARTIAL = re.compile(r"^\..+\.partial")  # storyflow.media.partial_path: ".<stem>.<random>.partial<suffix>"
SCRATCH = re.compile(r"^\.stitch-")  # storyflow.stages.stitch's scratch folder
SUMMARY = "summary.json"
# The links from films to what they play, by the table of what they play: (link table, its column).
LINKS = {KINDS[link.kind].owner: (link.table, getattr(link.table, link.column)) for link in FILM.links.values()}

Row = tuple[str, int]  # (table, id)


@dataclass(frozen=True)
class Claim:
    """One row pointing at one file, with what it recorded there."""

    unit: Row  # the row that stands or falls with this claim (a files row goes with its owner)
    row: Row  # the row itself, as reported
    kind: str
    sha256: str | None  # None: nothing recorded but the path (a pre-0003 film's storyboard JSON)
    bytes: int | None
    newest: bool  # a files row: the newest word on what this path holds


@dataclass
class OnDisk:
    """What a claimed path holds now."""

    exists: bool
    bytes: int | None = None
    sha256: str | None = None
    inode: tuple[int, int] | None = None


@dataclass
class Claims:
    """Every claim in the catalog, by absolute path, and what the repair needs to cascade."""

    by_path: dict[Path, list[Claim]] = field(default_factory=dict)
    paths_of_unit: dict[Row, set[Path]] = field(default_factory=dict)
    owner_gone: list[tuple[Row, Path, Row]] = field(default_factory=list)  # (files row, its path, its owner)
    links: dict[Row, set[int]] = field(default_factory=dict)  # clip/track/line -> ids of films linking it
    film_folders: dict[int, Path] = field(default_factory=dict)  # film id -> the folder of its mp4

    def add(self, path: Path, claim: Claim) -> None:
        self.by_path.setdefault(path, []).append(claim)
        self.paths_of_unit.setdefault(claim.unit, set()).add(path)


# ---------------------------------------------------------------- the check


def verify(catalog: Store, repair: bool = False) -> dict:
    """The integrity report of `catalog` against its files (JSON-able); with repair=True, also the fixes."""
    home = Path(os.path.abspath(catalog.home))

    # 1. every claim, in one read transaction; then the files, outside any transaction
    claims = read_claims(catalog)
    disk = {path: look(path, any(c.sha256 for c in cs)) for path, cs in claims.by_path.items()}

    # 2. each claimed path: there, and holding what its newest claim recorded?
    missing: list[Path] = []
    changed: list[Path] = []
    superseded: list[dict] = []
    for path, path_claims in sorted(claims.by_path.items()):
        state = disk[path]
        if not state.exists:
            missing.append(path)
        elif not holds_claimed_content(path_claims, state):
            changed.append(path)
        else:
            superseded += [
                {"path": catalog.stored_path(path), "row": _row_name(c.row), "sha256": c.sha256}
                for c in path_claims
                if c.sha256 is not None and c.sha256 != state.sha256
            ]

    # 3. a file missing here that storage holds (its recorded size) is fetched when a run needs it: no
    #    problem. A catalog other homes share (a server several machines use): a file missing here may be in
    #    another home, so its row is not a problem here, and no row is ever deleted from here
    stored_elsewhere, missing = in_storage(catalog, claims, missing)
    others = catalog.other_homes()
    elsewhere, missing = (missing, []) if others else ([], missing)

    # 4. the output folder: files no row claims, temporaries a killed process left
    unclaimed, partials, copies, summaries = scan_home(catalog, home, claims, disk)

    report: dict[str, Any] = {
        "home": str(home),
        "catalog": catalog.display_url,
        "checked_files": len(claims.by_path),
        "rows_without_files": [_problem(catalog, p, claims.by_path[p]) for p in missing],
        "hash_mismatches": [
            _problem(catalog, p, claims.by_path[p]) | _mismatch(claims.by_path[p], disk[p]) for p in changed
        ],
        "file_rows_without_owner": [
            {"path": catalog.stored_path(p), "row": _row_name(row), "owner": _row_name(owner)}
            for row, p, owner in claims.owner_gone
        ],
        "files_without_rows": [{"path": catalog.stored_path(p), "bytes": size} for p, size in unclaimed],
        "partial_files": [
            {"path": catalog.stored_path(p), "bytes": size, "folder": p.is_dir()} for p, size in partials
        ],
        "superseded": superseded,
        "published_copies": len(copies),
        "running_runs": _running_runs(catalog),
        # other homes sharing the catalog, and how many claimed files are not in this one (theirs, maybe)
        "other_homes": others,
        "not_here": len(elsewhere),
        # STORYFLOW_STORAGE_URL (no credentials shown), and how many claimed files missing here it holds
        "storage": catalog.storage.display if catalog.storage is not None else None,
        "in_storage": len(stored_elsewhere),
    }
    problems = ("rows_without_files", "hash_mismatches", "file_rows_without_owner", "files_without_rows",
                "partial_files")  # fmt: skip
    report["ok"] = not any(report[key] for key in problems)
    if repair:
        report["repaired"] = Repair(catalog, home, claims, disk, keep=set(stored_elsewhere)).run(
            missing, changed, [p for p, _ in unclaimed], [p for p, _ in partials], copies, summaries,
            keep_rows=bool(others),
        )
        report["repaired"] += [{"action": "marked crashed", "row": f"runs #{run_id}",
                                "reason": "its process on this machine is gone"}
                               for run_id in catalog.mark_crashed_runs()]  # fmt: skip
    return report


def read_claims(catalog: Store) -> Claims:
    """Every row that points at a file, in one read transaction."""
    claims = Claims()

    def at(stored: str) -> Path:
        return Path(os.path.abspath(catalog.absolute_path(stored)))

    with catalog.reading() as s:
        alive = {table: set(s.scalars(select(kind.table.id))) for table, kind in OWNERS.items()}
        files_by_owner: dict[Row, list[FileRow]] = {}
        for f in s.scalars(select(FileRow).order_by(FileRow.id)):
            owner = (f.owner_table, f.owner_id)
            if f.owner_id not in alive.get(f.owner_table, set()):
                claims.owner_gone.append((("files", f.id), at(f.path), owner))
                continue
            files_by_owner.setdefault(owner, []).append(f)
            claims.add(at(f.path), Claim(owner, ("files", f.id), f.kind, f.sha256, f.bytes, newest=True))
        for table, kind in OWNERS.items():
            for row in s.scalars(select(kind.table)):
                for f in row_files(kind, row, files_by_owner.get((table, row.id), [])):
                    claims.add(at(f.stored), Claim((table, row.id), (table, row.id), f.what, f.sha256, f.bytes,
                                                   newest=False))  # fmt: skip
                if kind is FILM:
                    claims.film_folders[row.id] = at(row.path).parent
        for table, (link, column) in LINKS.items():
            for film_id, target in s.execute(select(link.film_id, column)):
                claims.links.setdefault((table, target), set()).add(film_id)
    return claims


def in_storage(catalog: Store, claims: Claims, missing: list[Path]) -> tuple[list[Path], list[Path]]:
    """Split the claimed paths missing here into those storage holds with the recorded size (or, where no
    size was recorded, at all) and the rest. Only files inside home are kept in storage."""
    if catalog.storage is None:
        return [], missing
    held: list[Path] = []
    rest: list[Path] = []
    for path in missing:
        stored = catalog.stored_path(path)
        size = None if Path(stored).is_absolute() else catalog.storage.has(stored)
        judges = [c for c in claims.by_path[path] if c.newest] or claims.by_path[path]
        recorded = {c.bytes for c in judges if c.bytes is not None}
        (held if size is not None and (not recorded or size in recorded) else rest).append(path)
    return held, rest


def look(path: Path, hash_it: bool) -> OnDisk:
    """Whether `path` is a file, its size, sha256 (when a claim recorded one) and inode."""
    try:
        stat = path.stat()
    except OSError:
        return OnDisk(exists=False)
    if not path.is_file():
        return OnDisk(exists=False)
    return OnDisk(True, stat.st_size, sha256_file(path) if hash_it else None, (stat.st_dev, stat.st_ino))


def holds_claimed_content(path_claims: Iterable[Claim], state: OnDisk) -> bool:
    """True if the file holds what its newest claim (its files row) recorded; without one, what any claim did."""
    path_claims = list(path_claims)
    newest = [c for c in path_claims if c.newest]
    judges = newest or path_claims
    if all(c.sha256 is None for c in judges):
        return True  # only the path was recorded: being there is all that can be checked
    return any(c.sha256 == state.sha256 and (c.bytes is None or c.bytes == state.bytes) for c in judges)


def scan_home(
    catalog: Store, home: Path, claims: Claims, disk: dict[Path, OnDisk]
) -> tuple[list[tuple[Path, int]], list[tuple[Path, int]], dict[Path, Path], list[Path]]:
    """Files under home no row claims, leftover temporaries, published copies (copy -> the file it
    shows), and the summary.json files kept because a recorded film sits below them."""
    skip_files = _catalog_files(catalog, home)
    intact = {p: s for p, s in disk.items() if s.exists and holds_claimed_content(claims.by_path[p], s)}
    by_inode = {s.inode: p for p, s in intact.items()}
    by_size: dict[int, list[Path]] = {}
    for p, s in intact.items():
        by_size.setdefault(s.bytes, []).append(p)
    summary_folders = _summary_folders(claims.film_folders.values())

    unclaimed: list[tuple[Path, int]] = []
    partials: list[tuple[Path, int]] = []
    copies: dict[Path, Path] = {}
    summaries: list[Path] = []
    for folder, dirs, names in os.walk(home):
        here = Path(folder)
        # 1. folders that are not outputs: storyflow's own at the top, scratch folders anywhere
        if here == home:
            dirs[:] = [d for d in dirs if d not in HOME_METADATA_FOLDERS]
        for name in [d for d in dirs if SCRATCH.match(d)]:
            dirs.remove(name)
            partials.append((here / name, _folder_size(here / name)))
        dirs.sort()
        # 2. files: metadata, temporaries, claimed, copies of claimed ones; the rest has no row
        for name in sorted(names):
            path = here / name
            if path in claims.by_path or path in skip_files or _is_bookkeeping(name):
                continue
            if name == SUMMARY and here in summary_folders:
                summaries.append(path)
                continue
            try:
                stat = path.lstat()
            except OSError:
                continue  # gone meanwhile
            if PARTIAL.match(name):
                partials.append((path, stat.st_size))
                continue
            shown = _published_from(path, by_inode, by_size, intact)
            if shown is not None:
                copies[path] = shown
                continue
            unclaimed.append((path, stat.st_size))
    return unclaimed, partials, copies, summaries


def _summary_folders(film_folders: Iterable[Path]) -> set[Path]:
    """The folders where a summary.json is storyflow's: a recorded film's folder and every folder above it."""
    return {folder for film in film_folders for folder in (film, *film.parents)}


def _published_from(
    path: Path, by_inode: dict, by_size: dict[int, list[Path]], intact: dict[Path, OnDisk]
) -> Path | None:
    """The claimed, intact file `path` is a hard link to or a byte-identical copy of, or None."""
    try:
        stat = path.stat()
    except OSError:
        return None
    linked = by_inode.get((stat.st_dev, stat.st_ino))
    if linked is not None:
        return linked
    same_size = by_size.get(stat.st_size, [])
    if not same_size:
        return None
    sha256 = sha256_file(path)
    for candidate in same_size:
        if intact[candidate].sha256 == sha256:
            return candidate
    return None


def _catalog_files(catalog: Store, home: Path) -> set[Path]:
    """The catalog's own SQLite file (home/catalog.db and the URL's file) with its journal files."""
    bases = [home / "catalog.db"]
    database = sqlite_file(catalog.url)
    if database is not None:
        bases.append(Path(os.path.abspath(database)))
    return {Path(f"{base}{suffix}") for base in bases for suffix in CATALOG_SUFFIXES}


def _is_bookkeeping(name: str) -> bool:
    """Lock files (storyflow.core.locks) and the placeholder that keeps an empty outputs/ in git."""
    return name == ".lock" or name.endswith(".lock") or name == ".gitkeep"


def _folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _running_runs(catalog: Store) -> list[int]:
    with catalog.reading() as s:
        return list(s.scalars(select(RunRow.id).where(RunRow.status == "running").order_by(RunRow.id)))


def _row_name(row: Row) -> str:
    return f"{row[0]} #{row[1]}"


def _problem(catalog: Store, path: Path, path_claims: list[Claim]) -> dict:
    kinds = [c.kind for c in path_claims if not c.newest] or [c.kind for c in path_claims]
    return {
        "path": catalog.stored_path(path),
        "kind": kinds[0],
        "rows": sorted({_row_name(c.row) for c in path_claims}),
    }


def _mismatch(path_claims: list[Claim], state: OnDisk) -> dict:
    judge = next((c for c in path_claims if c.newest), path_claims[-1])
    return {"expected_sha256": judge.sha256, "actual_sha256": state.sha256, "expected_bytes": judge.bytes,
            "actual_bytes": state.bytes}  # fmt: skip


# ---------------------------------------------------------------- the repair


class Repair:
    """Applies the rules in the module docstring; returns the list of what it did."""

    def __init__(self, catalog: Store, home: Path, claims: Claims, disk: dict[Path, OnDisk],
                 keep: set[Path] | None = None) -> None:  # fmt: skip
        self.catalog = catalog
        self.home = home
        self.claims = claims
        self.disk = disk
        self.keep = keep or set()  # missing here but in storage: never a reason to delete a row
        self.done: list[dict] = []
        self._orphans: Path | None = None

    def run(self, missing: list[Path], changed: list[Path], unclaimed: list[Path], partials: list[Path],
            copies: dict[Path, Path], summaries: list[Path], keep_rows: bool = False) -> list[dict]:  # fmt: skip
        """Fix rows, then move files aside, then delete temporaries. `keep_rows`: the catalog is shared with
        other homes, whose files the rows may describe: only this home's files are moved or deleted."""
        # 1. which rows go: those claiming a bad file, and those only a deleted row kept valid
        doomed, freed, stale = self.rows_to_delete(missing + changed) if not keep_rows else (set(), set(), set())
        reason = {p: "file missing" for p in missing} | {p: "file changed" for p in changed}
        reason |= {p: "only an older row recorded it, and the newer one was removed" for p in stale}

        # 2. delete them, one short transaction per row; films that used them are no longer reusable
        for path in [*missing, *changed, *stale]:
            rows = sorted({c.unit for c in self.claims.by_path[path] if c.unit in doomed})
            if rows:
                self.done.append({"action": "deleted rows", "path": self.catalog.stored_path(path),
                                  "reason": reason[path], "rows": [_row_name(r) for r in rows]})  # fmt: skip
        played: dict[int, list[Row]] = {}  # film id -> the removed rows it plays
        for unit in sorted(doomed):
            for film_id in self.claims.links.get(unit, set()):
                if ("films", film_id) not in doomed:
                    played.setdefault(film_id, []).append(unit)
        for film_id in sorted(played):  # first: a crash midway never leaves a reusable film short of a row
            self.unlink_film(film_id, played[film_id])
        for unit in sorted(doomed):
            self.delete_row(unit)
        for files_row, path, owner in self.claims.owner_gone:
            self.delete_row(files_row)
            self.done.append({"action": "deleted row", "row": _row_name(files_row),
                              "path": self.catalog.stored_path(path),
                              "reason": f"its owner {_row_name(owner)} is gone"})  # fmt: skip
            if path not in self.claims.by_path and (self.disk.get(path) or look(path, False)).exists:
                freed.add(path)

        # 3. move aside what no row claims any more, and copies showing what was moved
        moves = {p: "file changed" for p in [*changed, *stale] if self.disk[p].exists}
        moves |= {p: "no row claimed it" for p in unclaimed}
        moves |= {p: "its rows were removed" for p in freed if p not in moves}
        moves |= {copy: "a copy of a file that was moved aside" for copy, shown in copies.items() if shown in moves}
        kept = _summary_folders(f for i, f in self.claims.film_folders.items() if ("films", i) not in doomed)
        moves |= {p: "the summary of a film that was removed" for p in summaries if p.parent not in kept}
        for path in sorted(moves):
            self.move_aside(path, moves[path])

        # 4. temporaries are never complete: delete them
        for path in partials:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            self.done.append({"action": "deleted", "path": self.catalog.stored_path(path),
                              "reason": "unfinished temporary left by a killed run"})  # fmt: skip
        return self.done

    def rows_to_delete(self, bad: list[Path]) -> tuple[set[Row], set[Path], set[Path]]:
        """Rows claiming a bad path, repeated for paths that only a deleted row kept valid.

        Returns the rows, the intact paths no surviving row claims (to move aside), and the
        paths whose surviving claims no longer match the file (stale: also moved aside).
        """
        doomed: set[Row] = set()
        freed: set[Path] = set()
        stale: set[Path] = set()
        queue = list(bad)
        seen = set(bad)
        while queue:
            path = queue.pop()
            for claim in self.claims.by_path[path]:
                if claim.unit in doomed:
                    continue
                doomed.add(claim.unit)
                for other in self.claims.paths_of_unit.get(claim.unit, ()):
                    if other in seen or other in self.keep:
                        continue
                    survivors = [c for c in self.claims.by_path[other] if c.unit not in doomed]
                    if not survivors:
                        freed.add(other)
                    elif not holds_claimed_content(survivors, self.disk[other]):
                        seen.add(other)
                        stale.add(other)
                        freed.discard(other)
                        queue.append(other)
        return doomed, {p for p in freed if p not in seen and self.disk[p].exists}, stale

    def delete_row(self, unit: Row) -> None:
        """Delete one row and what depends on it, in one short transaction (portable SQL only)."""
        table, row_id = unit
        with self.catalog.writing() as s:
            if table == "files":
                s.execute(delete(FileRow).where(FileRow.id == row_id))
                return
            if table == "films":
                s.execute(update(RunRow).where(RunRow.film_id == row_id).values(film_id=None))
                for link in FILM.links.values():
                    s.execute(delete(link.table).where(link.table.film_id == row_id))
            else:
                link, column = LINKS[table]
                s.execute(delete(link).where(column == row_id))
            if table == "clips":  # children keep parent_sha256; only the link to this row goes
                s.execute(update(ClipRow).where(ClipRow.parent_clip_id == row_id).values(parent_clip_id=None))
                s.execute(update(ClipRow).where(ClipRow.end_parent_clip_id == row_id).values(end_parent_clip_id=None))
            s.execute(delete(FileRow).where(FileRow.owner_table == table, FileRow.owner_id == row_id))
            model = OWNERS[table].table
            s.execute(delete(model).where(model.id == row_id))

    def unlink_film(self, film_id: int, removed: list[Row]) -> None:
        """A film that plays removed rows: kept (its files are intact), but never offered for reuse again."""
        with self.catalog.writing() as s:
            s.execute(update(FilmRow).where(FilmRow.id == film_id).values(cache_key=None))
        names = ", ".join(_row_name(row) for row in removed)
        self.done.append({"action": "film no longer reusable", "row": f"films #{film_id}",
                          "reason": f"it plays {names}, removed: its links to them and its cache key are gone"})

    def move_aside(self, path: Path, reason: str) -> None:
        """Move `path` to home/.orphans/<UTC timestamp>/<its path relative to home>."""
        try:
            relative = path.relative_to(self.home)
        except ValueError:
            relative = Path("external", *path.parts[1:])
        target = self.orphans() / relative
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(path), str(target))
        except FileNotFoundError:
            return  # gone meanwhile: nothing left to keep
        self.done.append({"action": "moved", "path": self.catalog.stored_path(path),
                          "to": self.catalog.stored_path(target), "reason": reason})  # fmt: skip
        log.warning("moved %s to %s (%s)", path, target, reason)

    def orphans(self) -> Path:
        """This repair's own folder under home/.orphans, made on first use."""
        if self._orphans is None:
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
            folder = self.home / ORPHANS / stamp
            number = 1
            while folder.exists():
                number += 1
                folder = self.home / ORPHANS / f"{stamp}-{number}"
            folder.mkdir(parents=True)
            self._orphans = folder
        return self._orphans
