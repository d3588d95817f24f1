"""The kinds of generation, and how a row maps to its record: by rules, not field by field.

Every arrow of the data path makes a generation of one of the KINDS below: a storyboard, a
shot's prompt, a clip segment, a narration line, an audio track (music, effects, a mix or
one of its stems), a film. A kind names its record (storyflow.core.models), its table
(schema.py), the rows it must point at, the files it owns, and how it is identified:

- "content": one row per distinct content (storyboards, prompts: the sha256 of the record),
  found again by the cache key of the call that made it;
- "key": one row per cache key (clips, narration, audio), replaced when the same key is
  made again because its file went missing or changed;
- "history": a new row every time (films): a film made again under the same key is a new
  film, and the older one stays traceable.

A row and its record map onto each other by these rules:

- a record field and a column of the same name hold the same value (dicts and lists as
  JSON); the record's `shot_id` is the column `shot_key` (or, for a prompt, its shot row's);
- the record's `path` is the row's own file: columns `path` (stored relative to
  STORYFLOW_HOME), `sha256` and `bytes`; another Path field `x` is kept in `x_path` and
  `x_sha256`; a dict of Paths `x` (a film's stems) in the JSON column `x` as
  {name: {"path", "sha256", "bytes"}};
- a nested record `x` (a SeamScore) is kept flat in `x_<field>` columns, all null for None;
- a record kept whole (a storyboard) is the row's `data` column;
- every other column comes from the rows the generation points at (`<ref>_id`), from
  facts the caller adds (an LLM's options, the wall time), or is derived by the store.
"""

from __future__ import annotations

import functools
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel

from storyflow.catalog.schema import (
    AudioRow,
    Base,
    ClipRow,
    FileRow,
    FilmAudioRow,
    FilmClipRow,
    FilmNarrationRow,
    FilmRow,
    NarrationRow,
    PromptRow,
    StoryboardRow,
)
from storyflow.core.models import AudioTrack, Clip, Film, NarrationLine, ShotPrompt, Storyboard

T = TypeVar("T", bound=BaseModel)


@dataclass(frozen=True)
class Link:
    """A film's link to generations it is made of: one row per item in a link table."""

    table: type[Base]
    column: str  # the link table's column naming the item, e.g. "clip_id"
    kind: str  # the item's kind, e.g. "clip"
    ordered: bool = False  # the link table keeps the items' order in `position`


@dataclass(frozen=True)
class Kind(Generic[T]):
    """One kind of generation: its record, its table, what it points at and owns."""

    name: str  # what tallies, progress and messages call it: "clip"
    record: type[T]
    table: type[Base]
    refs: tuple[str, ...] = ()  # rows it must point at, by foreign key: ("prompt",) -> prompt_id
    files: Mapping[str, str] = field(default_factory=dict)  # record field -> kind of its files row
    identity: Literal["content", "key", "history"] = "key"
    links: Mapping[str, Link] = field(default_factory=dict)  # {"clips": Link(...)}: what a film plays

    @property
    def owner(self) -> str:
        """The name a files row gives its owner table."""
        return self.table.__tablename__

    @functools.cached_property
    def columns(self) -> frozenset[str]:
        return frozenset(column.key for column in self.table.__table__.columns)

    @property
    def whole(self) -> bool:
        """The record is kept whole in the row's `data` column."""
        return "data" in self.columns

    @functools.cached_property
    def nested(self) -> dict[str, type[BaseModel]]:
        """The record's nested records (a clip's `seam`, `end_seam`) kept flat in `<name>_<field>` columns."""
        found = {name: _nested_model(self.record, name) for name in self.record.model_fields}
        return {name: model for name, model in found.items()
                if model is not None and all(f"{name}_{sub}" in self.columns for sub in model.model_fields)}  # fmt: skip

    def __repr__(self) -> str:
        return f"Kind({self.name})"


STORYBOARD = Kind("storyboard", Storyboard, StoryboardRow, refs=("story",), identity="content")
PROMPT = Kind("prompt", ShotPrompt, PromptRow, refs=("shot",), identity="content")
CLIP = Kind("clip", Clip, ClipRow, refs=("prompt",), files={"path": "clip"})
NARRATION = Kind("narration", NarrationLine, NarrationRow, refs=("storyboard",), files={"path": "narration"})
AUDIO = Kind("audio", AudioTrack, AudioRow, refs=("storyboard",), files={"path": "audio"})
FILM = Kind(
    "film",
    Film,
    FilmRow,
    refs=("storyboard",),
    files={"path": "film", "subtitles": "subtitles", "poster": "poster", "contact_sheet": "contact_sheet",
           "storyboard_json": "storyboard", "stems": "stem"},  # fmt: skip
    identity="history",
    links={
        "clips": Link(FilmClipRow, "clip_id", "clip", ordered=True),
        "audio": Link(FilmAudioRow, "audio_id", "audio"),
        "narration": Link(FilmNarrationRow, "narration_id", "narration"),
    },
)
KINDS = {kind.name: kind for kind in (STORYBOARD, PROMPT, CLIP, NARRATION, AUDIO, FILM)}
OWNERS = {kind.owner: kind for kind in KINDS.values() if kind.files}  # tables whose rows own files


# ---------------------------------------------------------------- record -> columns


@dataclass(frozen=True)
class FileClaim:
    """One file a row points at, with what was recorded of it."""

    what: str  # for people: "clip", "poster", "music stem"
    file_kind: str  # the kind its files row has
    stored: str  # as the catalog stores it (relative to home when inside it)
    sha256: str | None  # None: recorded before its hash was kept (existence is all that can be checked)
    bytes: int | None
    shared: bool = False  # may be another generation's file (a film's stem is its track's): that one owns it


def record_columns(kind: Kind, item: BaseModel) -> dict[str, Any]:
    """The columns a record fills by itself (files and refs excluded: the store adds those)."""
    columns = kind.columns
    values: dict[str, Any] = {}
    if kind.whole:
        values["data"] = item.model_dump(mode="json")
    for name in type(item).model_fields:
        value = getattr(item, name)
        if name == "shot_id" or name in kind.files:
            if name == "shot_id" and "shot_key" in columns:
                values["shot_key"] = value
            continue
        if name in columns and name not in ("id", "data"):
            values[name] = _plain(value)
            continue
        if name in kind.nested:
            for sub in kind.nested[name].model_fields:
                values[f"{name}_{sub}"] = getattr(value, sub) if value is not None else None
    return values


def file_columns(
    kind: Kind, item: BaseModel, stored: Callable[[Path], str], look: Callable[[Path, str | None], tuple[str, int]]
) -> tuple[dict[str, Any], list[FileClaim]]:
    """The columns that point at a record's files, and the files they claim.

    `look(path, sha256)` gives a file's (sha256, bytes): the record's own hash where it has
    one (its maker hashed what it wrote), else the file's, hashed now.
    """
    columns: dict[str, Any] = {}
    claims: list[FileClaim] = []
    for name, file_kind in kind.files.items():
        value = getattr(item, name)
        if name == "path":
            sha256, size = look(Path(value), getattr(item, "sha256", None))
            columns |= {"path": stored(value), "sha256": sha256} | ({"bytes": size} if "bytes" in kind.columns else {})
            claims.append(FileClaim(file_kind, file_kind, stored(value), sha256, size, shared=False))
        elif isinstance(value, Mapping):
            entries = {}
            for entry, path in sorted(value.items()):
                sha256, size = look(Path(path), None)
                entries[entry] = {"path": stored(path), "sha256": sha256, "bytes": size}
                claims.append(FileClaim(f"{entry} {file_kind}", file_kind, stored(path), sha256, size, shared=True))
            columns[name] = entries
        else:
            sha256, size = look(Path(value), None)
            columns |= {f"{name}_path": stored(value), f"{name}_sha256": sha256}
            claims.append(FileClaim(file_kind, file_kind, stored(value), sha256, size, shared=False))
    return columns, claims


# ---------------------------------------------------------------- row -> record


def row_record(kind: Kind[T], row: Any, absolute: Callable[[str], Path], files: list[FileClaim] | None = None) -> T:
    """The record a row holds (reused=True where the record has the flag)."""
    fields = kind.record.model_fields
    if kind.whole:
        return kind.record.model_validate(row.data)
    columns = kind.columns
    data: dict[str, Any] = {}
    for name, info in fields.items():
        if name == "shot_id":
            data[name] = row.shot_key if "shot_key" in columns else row.shot.shot_key
        elif name in kind.files:
            data[name] = _file_value(kind, row, name, absolute, files)
        elif name in columns:
            value = getattr(row, name)
            if value is not None or _nullable(info.annotation):
                data[name] = value
        elif name in kind.nested:
            subs = {sub: getattr(row, f"{name}_{sub}") for sub in kind.nested[name].model_fields}
            data[name] = None if all(v is None for v in subs.values()) else subs
    if "reused" in fields:
        data["reused"] = True
    return kind.record.model_validate(data)


def item_paths(kind: Kind, item: BaseModel) -> list[Path]:
    """The files a record points at (a film's stems included)."""
    paths: list[Path] = []
    for name in kind.files:
        value = getattr(item, name, None)
        paths += [Path(v) for v in value.values()] if isinstance(value, dict) else [Path(value)] if value else []
    return paths


def row_files(kind: Kind, row: Any, owned: Iterable[FileRow]) -> list[FileClaim]:
    """Every file a row points at, with its recorded hash and size (sizes from its files rows).

    Rows recorded before 0003 kept less: a film's storyboard JSON without its hash (taken from
    its files row where there is one) and its stems only as files rows of kind "stem".
    """
    by_path = {f.path: f for f in owned}

    def size(stored: str, sha256: str | None) -> int | None:
        record = by_path.get(stored)
        return record.bytes if record is not None and record.sha256 == sha256 else None

    claims: list[FileClaim] = []
    for name, file_kind in kind.files.items():
        if name == "path":
            recorded = getattr(row, "bytes", None)
            claims.append(FileClaim(file_kind, file_kind, row.path, row.sha256,
                                    recorded if recorded is not None else size(row.path, row.sha256)))  # fmt: skip
        elif _is_path_dict(kind.record, name):
            entries = getattr(row, name)
            if entries is None:  # before 0003: the files rows of that kind, named by file
                legacy = sorted((f for f in owned if f.kind == file_kind), key=lambda f: f.path)
                entries = {PurePosixPath(f.path).stem: {"path": f.path, "sha256": f.sha256, "bytes": f.bytes}
                           for f in legacy}  # fmt: skip
            claims += [FileClaim(f"{entry} {file_kind}", file_kind, e["path"], e["sha256"], e.get("bytes"), shared=True)
                       for entry, e in sorted(entries.items())]  # fmt: skip
        else:
            stored = getattr(row, f"{name}_path")
            sha256 = getattr(row, f"{name}_sha256", None)
            if sha256 is None and stored in by_path:
                sha256 = by_path[stored].sha256
            claims.append(FileClaim(file_kind, file_kind, stored, sha256, size(stored, sha256)))
    return claims


def _file_value(kind: Kind, row: Any, name: str, absolute: Callable[[str], Path], files: list[FileClaim] | None) -> Any:
    if name == "path":
        return absolute(row.path)
    if _is_path_dict(kind.record, name):
        suffix = f" {kind.files[name]}"
        claims = files if files is not None else row_files(kind, row, ())
        return {c.what.removesuffix(suffix): absolute(c.stored) for c in claims if c.file_kind == kind.files[name]}
    return absolute(getattr(row, f"{name}_path"))


# ---------------------------------------------------------------- types


def _plain(value: Any) -> Any:
    """A value as a column holds it: records and tuples as JSON-able data."""
    from pydantic_core import to_jsonable_python

    if isinstance(value, BaseModel | tuple | list | dict):
        return to_jsonable_python(value)
    return value


def _annotation(model: type[BaseModel], name: str) -> Any:
    return _type_hints(model).get(name)


@functools.cache
def _type_hints(model: type[BaseModel]) -> dict[str, Any]:
    """A record's resolved field types, once per record type (resolving them costs about 0.2 ms)."""
    return {name: hint for name, hint in typing.get_type_hints(model).items() if name in model.model_fields}


def _nested_model(model: type[BaseModel], name: str) -> type[BaseModel] | None:
    """The record type of a field like `seam: SeamScore | None`, else None."""
    for candidate in (_annotation(model, name), *typing.get_args(_annotation(model, name))):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _is_path_dict(model: type[BaseModel], name: str) -> bool:
    annotation = _annotation(model, name)
    return typing.get_origin(annotation) is dict and typing.get_args(annotation)[1:] == (Path,)


def _nullable(annotation: Any) -> bool:
    return annotation is None or type(None) in typing.get_args(annotation) or (
        isinstance(annotation, types.UnionType) and type(None) in annotation.__args__
    )
