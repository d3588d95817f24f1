"""Read and validate a story file: optional YAML front matter, then Markdown or plain text.

    ---
    title: The Lighthouse Keeper
    style: hand-painted watercolor, muted teal and amber
    aspect: 16:9            # 16:9, 9:16 or 1:1
    resolution: 360p        # 240p..1080p, or WIDTHxHEIGHT
    fps: 24
    duration: 40            # target film length in seconds
    seed: 7
    characters:
      Mara: a tall woman in a red raincoat with a grey braid
    ---
    # The Lighthouse Keeper
    Mara climbs the spiral stairs...

Every error names the field or the line, and how to fix it.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from pathlib import Path
from typing import Any

from storyflow.core.config import Limits
from storyflow.core.errors import StoryError
from storyflow.core.models import ASPECTS, Character, Story
from storyflow.core.printable import strip_controls
FRONT_MATTER_FIELDS = {
    "title": "the film's title (text)",
    "style": "the look of every shot (text)",
    "aspect": "one of 16:9, 9:16, 1:1",
    "resolution": "240p, 360p, 480p, 720p, 1080p, or WIDTHxHEIGHT such as 640x360",
    "fps": "frames per second, a whole number from 8 to 60",
    "duration": "target film length in seconds, a number from 3 to 1800",
    "seed": "a whole number; the same story and seed give the same film",
    "characters": "a mapping of name to visual description",
    "title_card": "true or false: open the film with a title card",
}
RESOLUTIONS = {"240p": 240, "360p": 360, "480p": 480, "720p": 720, "1080p": 1080}
ASPECT_RATIOS = {"16:9": (16, 9), "9:16": (9, 16), "1:1": (1, 1)}


def read_story(path: Path | str, limits: Limits | None = None) -> Story:
    """Read a story file from disk and validate it (never reading more than the size limit allows)."""
    limits = limits or Limits()
    path = Path(path)
    if not path.exists():
        raise StoryError(f"story file not found: {path}", fix="check the path, e.g. stories/lighthouse.md")
    if path.is_dir():
        raise StoryError(f"{path} is a folder, not a story file", fix="pass a .md or .txt file")
    if path.is_fifo() or path.is_socket():  # opening a pipe waits for a writer, and a run reads its story more than once
        raise StoryError(f"{path} is a pipe, not a story file", fix="save the story to a file and pass that file")
    try:
        with open(path, "rb") as handle:
            data = handle.read(limits.max_story_bytes + 1)  # one byte past the limit tells "too big" apart
    except OSError as exc:
        raise StoryError(f"cannot read the story file {path}: {exc.strerror}",
                         fix="check that the file exists and that you may read it") from None  # fmt: skip
    return parse_story(data, source=str(path), limits=limits)


def parse_story(data: bytes, source: str = "<story>", limits: Limits | None = None) -> Story:
    """Validate raw story bytes and return a Story."""
    limits = limits or Limits()
    # 1. it must be non-empty UTF-8 text
    if len(data) > limits.max_story_bytes:
        raise StoryError(
            f"{source} is larger than {limits.max_story_bytes:,} bytes, the most a story may be",
            fix="split the story into several films, or raise STORYFLOW_MAX_STORY_BYTES",
        )
    if b"\x00" in data:
        nul = data.index(b"\x00")
        raise StoryError(
            f"{source} is a binary file, not a story (byte {nul} is NUL)",
            fix="pass a UTF-8 Markdown or plain-text file",
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise StoryError(
            f"{source} is not UTF-8 text (line {line}, byte {exc.start})",
            fix="save the story as UTF-8 Markdown or plain text",
        ) from None
    text = strip_controls(text.replace("\r\n", "\n").replace("\r", "\n"))  # nothing that drives a terminal
    if not text.strip():
        raise StoryError(f"{source} is empty", fix="write the story text in the file (Markdown or plain text)")

    # 2. split off the front matter
    fields, body, body_line = _split_front_matter(text, source, limits)
    if not body.strip():
        raise StoryError(
            f"{source} has front matter but no story text",
            fix=f"write the story below the closing '---' (line {body_line - 1})",
        )

    # 3. validate the fields, each error naming its line
    values = _validate_fields(fields, source)
    title = values.get("title") or _first_heading(body) or _title_from_source(source)
    if len(title) > limits.max_title_chars:
        raise StoryError(
            f"{source}: the title is {len(title):,} characters long, more than the {limits.max_title_chars} allowed",
            fix="shorten the title (front matter 'title:' or the first '# heading'), or raise STORYFLOW_MAX_TITLE_CHARS",
        )
    aspect = values.get("aspect") or _aspect_of(values.get("resolution", "360p"))
    width, height = _frame_size(values.get("resolution", "360p"), aspect, fields, source)
    return Story(
        title=title,
        slug=slugify(title),
        text=body.strip("\n"),
        body_line=body_line + (len(body) - len(body.lstrip("\n"))),
        style=values.get("style", Story.model_fields["style"].default),
        aspect=aspect,
        width=width,
        height=height,
        fps=values.get("fps", 24),
        duration=values.get("duration"),
        seed=values.get("seed", 0),
        characters=values.get("characters", ()),
        title_card=values.get("title_card", True),
        source=source,
        sha256=hashlib.sha256(data).hexdigest(),
    )


def slugify(title: str, max_length: int = 60) -> str:
    """A folder name that can never leave the output folder: [a-z0-9-] only, never empty."""
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_title.lower()).strip("-")
    slug = slug[:max_length].rstrip("-")
    return slug or "film"


# ---------------------------------------------------------------- front matter


class _Field:
    """A front matter value with the line it was written on."""

    def __init__(self, value: Any, line: int, raw: str | None) -> None:
        self.value, self.line = value, line
        self.raw = raw  # the scalar exactly as written (YAML reads 16:9 as a number)


def _split_front_matter(text: str, source: str, limits: Limits) -> tuple[dict[str, _Field], str, int]:
    lines = text.split("\n")
    if lines[0].strip() != "---":
        return {}, text, 1
    for index in range(1, len(lines)):
        if lines[index].strip() in ("---", "..."):
            yaml_text = "\n".join(lines[1:index])
            body = "\n".join(lines[index + 1 :])
            return _parse_yaml(yaml_text, source, limits), body, index + 2
    raise StoryError(
        f"{source}: the front matter opened on line 1 is never closed",
        fix="add a line with just '---' after the last front matter field",
    )


def _parse_yaml(yaml_text: str, source: str, limits: Limits) -> dict[str, _Field]:
    import yaml

    try:
        _check_yaml_shape(yaml_text, source, limits)  # before anything is built from it
        node = yaml.compose(yaml_text, Loader=yaml.SafeLoader)
        values = yaml.safe_load(yaml_text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 2}" if mark is not None else "front matter"
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise StoryError(
            f"{source}: malformed front matter at {where}: {problem}",
            fix="front matter is YAML: one 'field: value' per line, e.g. 'fps: 24'",
        ) from None
    except (ValueError, OverflowError) as exc:  # YAML read it, Python cannot hold it (a 5,000-digit number)
        raise StoryError(f"{source}: a front matter value cannot be read: {_shown(exc, 120)}",
                         fix="write plain values such as 'fps: 24' or 'seed: 7'") from None  # fmt: skip
    if values is None:
        return {}
    if not isinstance(values, dict) or not isinstance(node, yaml.MappingNode):
        raise StoryError(
            f"{source}: front matter must be 'field: value' lines, not a {type(values).__name__}",
            fix="write fields such as 'title: My Film', one per line",
        )
    written: dict[str, tuple[int, str | None]] = {}  # +2: the opening '---' is line 1
    for key, val in node.value:
        line = key.start_mark.line + 2
        if key.value in written:
            raise StoryError(
                f"{source}, line {line}: front matter field '{_shown(key.value)}' is given twice "
                f"(first on line {written[key.value][0]})",
                fix="keep one of the two lines (YAML would silently use the last)",
            )
        written[key.value] = (line, val.value if isinstance(val, yaml.ScalarNode) else None)
    return {str(k): _Field(v, *written.get(str(k), (1, None))) for k, v in values.items()}


def _check_yaml_shape(yaml_text: str, source: str, limits: Limits) -> None:
    """Refuse aliases (a few lines of them can stand for billions of values) and deep nesting, from YAML's
    event stream: nothing is built before the shape is known to be small."""
    import yaml

    depth = 0
    for event in yaml.parse(yaml_text, Loader=yaml.SafeLoader):
        line = event.start_mark.line + 2
        if isinstance(event, yaml.AliasEvent):
            raise StoryError(f"{source}, line {line}: front matter uses a YAML alias (*{_shown(event.anchor)})",
                             fix="write the value out in full where it is used")  # fmt: skip
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > limits.max_front_matter_depth:
                raise StoryError(
                    f"{source}, line {line}: front matter nests deeper than {limits.max_front_matter_depth} levels",
                    fix="front matter is flat 'field: value' lines (characters: one level below); "
                    "or raise STORYFLOW_MAX_FRONT_MATTER_DEPTH",
                )
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1


def _shown(text: object, most: int = 60) -> str:
    """A piece of the input fit to quote in an error: one line, printable, at most `most` characters."""
    flat = "".join(c if c.isprintable() else "\ufffd" for c in str(text))
    return flat if len(flat) <= most else flat[: most - 1] + "…"


def _validate_fields(fields: dict[str, _Field], source: str) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, field in fields.items():
        if name not in FRONT_MATTER_FIELDS:
            known = ", ".join(FRONT_MATTER_FIELDS)
            raise StoryError(
                f"{source}, line {field.line}: unknown front matter field '{_shown(name)}'",
                fix=f"use one of: {known}",
            )
        values[name] = _validate_field(name, field, source)
    return values


def _bad(source: str, name: str, field: _Field, why: str) -> StoryError:
    return StoryError(
        f"{source}, line {field.line}: front matter field '{name}' {why} (got {_described(field)})",
        fix=f"'{name}' must be {FRONT_MATTER_FIELDS[name]}",
    )


def _described(field: _Field) -> str:
    """What a field holds, by its shape: a scalar as written (shortened), a list or mapping by its size."""
    if field.raw is not None:
        return _shown(field.raw)
    if isinstance(field.value, (list, dict)):
        return f"a {'list' if isinstance(field.value, list) else 'mapping'} of {len(field.value)} items"
    return _shown(repr(field.value))


def _validate_field(name: str, field: _Field, source: str) -> Any:
    value = field.value
    if name in ("title", "style"):
        if not isinstance(value, (str, int, float)) or not str(value).strip():
            raise _bad(source, name, field, "must be non-empty text")
        return _plain_text(str(value), source, name, field)
    if name == "aspect":
        text = (field.raw or "").strip().strip("'\"")
        if text not in ASPECTS:
            raise _bad(source, name, field, "is not a known aspect ratio")
        return text
    if name == "resolution":
        text = str(value).strip().lower()
        if text not in RESOLUTIONS and not re.fullmatch(r"\d{2,4}x\d{2,4}", text):
            raise _bad(source, name, field, "is not a resolution")
        return text
    if name in ("fps", "seed"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise _bad(source, name, field, "must be a whole number")
        if name == "fps" and not 8 <= value <= 60:
            raise _bad(source, name, field, "is out of range")
        if name == "seed" and not 0 <= value < 2**32:
            raise _bad(source, name, field, "must be between 0 and 4294967295")
        return value
    if name == "duration":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 3 <= value <= 1800:
            raise _bad(source, name, field, "must be a number of seconds from 3 to 1800")
        return float(value)
    if name == "title_card":
        if not isinstance(value, bool):
            raise _bad(source, name, field, "must be true or false")
        return value
    if name == "characters":
        if value is None:
            return ()
        if not isinstance(value, dict):
            raise _bad(source, name, field, "must be a mapping")
        characters = []
        for char_name, description in value.items():
            if not isinstance(description, str) or not description.strip() or not str(char_name).strip():
                raise StoryError(
                    f"{source}, line {field.line}: character {char_name!r} needs a visual description",
                    fix="write it as '  Name: a tall woman in a red coat'",
                )
            characters.append(Character(name=_plain_text(str(char_name), source, name, field),
                                        description=_plain_text(description, source, name, field)))  # fmt: skip
        return tuple(characters)
    raise AssertionError(name)  # every name in FRONT_MATTER_FIELDS is handled above


def _plain_text(text: str, source: str, name: str, field: _Field) -> str:
    """One line of text: whitespace runs made one space, control characters (terminal escapes, bidi
    overrides) dropped, since the text reaches terminals, subtitles and pictures; a lone UTF-16 surrogate
    (a YAML "\\ud800" escape) is not text at all and is refused."""
    lone = next((c for c in text if "\ud800" <= c <= "\udfff"), None)
    if lone is not None:
        raise _bad(source, name, field, f"holds \\u{ord(lone):04x}, half of a UTF-16 pair, which is not a character")
    return " ".join(strip_controls(text).split())


def _frame_size(resolution: str, aspect: str, fields: dict[str, _Field], source: str) -> tuple[int, int]:
    """Width and height from a resolution and an aspect ratio, both even."""
    rw, rh = ASPECT_RATIOS[aspect]
    if resolution in RESOLUTIONS:
        short = RESOLUTIONS[resolution]
        if rw >= rh:
            height, width = short, short * rw / rh
        else:
            width, height = short, short * rh / rw
        return int(round(width / 2) * 2), int(round(height / 2) * 2)
    width, height = (int(n) for n in resolution.split("x"))
    field = fields["resolution"]
    if width % 2 or height % 2 or not (64 <= width <= 3840 and 64 <= height <= 3840):
        raise _bad(source, "resolution", field, "needs even sides between 64 and 3840")
    if abs(width / height - rw / rh) > 0.02 and "aspect" in fields:
        raise _bad(source, "resolution", field, f"does not match aspect {aspect}")
    return width, height


def _aspect_of(resolution: str) -> str:
    """The aspect ratio closest to an explicit WIDTHxHEIGHT (16:9 for named resolutions)."""
    if "x" not in resolution:
        return "16:9"
    width, height = (int(n) for n in resolution.split("x"))
    return min(ASPECTS, key=lambda a: abs(width / height - ASPECT_RATIOS[a][0] / ASPECT_RATIOS[a][1]))


def _first_heading(body: str) -> str | None:
    for line in body.splitlines():
        match = re.match(r"#\s+(.+)", line.strip())
        if match:
            return match.group(1).strip().strip("#").strip()
    return None


def _title_from_source(source: str) -> str:
    stem = Path(source).stem if source and not source.startswith("<") else "Untitled"
    return stem.replace("_", " ").replace("-", " ").strip().title() or "Untitled"
