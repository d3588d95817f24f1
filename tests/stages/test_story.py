"""Story files: front matter, defaults, and errors that name the line and the fix."""

from __future__ import annotations

import pytest

from storyflow.core.errors import StoryError
from storyflow.stages.story import parse_story, read_story, slugify

GOOD = """---
title: The Lighthouse Keeper
style: hand-painted watercolor
aspect: 9:16
resolution: 480p
fps: 12
duration: 30
seed: 7
title_card: false
characters:
  Mara: a tall woman in a red raincoat
  Pip: a small grey cat
---
# The Lighthouse Keeper

Mara climbs the stairs. Arc shot.
"""


def test_front_matter_fields_reach_the_story(write_story):
    story = read_story(write_story(GOOD))
    assert story.title == "The Lighthouse Keeper"
    assert story.slug == "the-lighthouse-keeper"
    assert (story.aspect, story.width, story.height, story.fps) == ("9:16", 480, 854, 12)
    assert story.duration == 30.0 and story.seed == 7 and story.title_card is False
    assert [c.name for c in story.characters] == ["Mara", "Pip"]
    assert story.characters[0].description == "a tall woman in a red raincoat"
    assert story.text.startswith("# The Lighthouse Keeper")
    assert story.body_line == 14  # errors about the text can point at file lines
    assert len(story.sha256) == 64


def test_plain_text_without_front_matter_gets_defaults(write_story):
    story = read_story(write_story("A fox runs through the snow.\n", name="snow_fox.txt"))
    assert story.title == "Snow Fox"  # from the file name
    assert (story.width, story.height, story.fps, story.seed) == (640, 360, 24, 0)


def test_explicit_size_implies_aspect():
    story = parse_story(b"---\nresolution: 360x640\n---\nA tall tower.\n")
    assert (story.aspect, story.width, story.height) == ("9:16", 360, 640)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", "is empty"),
        (b"   \n\n", "is empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "binary file"),
        (b"caf\xe9 au lait", "not UTF-8 text (line 1"),
        (b"---\ntitle: x\nno closing line\n", "never closed"),
        (b"---\ntitle: [unclosed\n---\nText.\n", "malformed front matter at line 2"),
        (b"---\n- a\n- b\n---\nText.\n", "must be 'field: value' lines"),
        (b"---\ntitle: x\nstlye: noir\n---\nText.\n", "line 3: unknown front matter field 'stlye'"),
        (b"---\nfps: fast\n---\nText.\n", "line 2: front matter field 'fps' must be a whole number"),
        (b"---\nfps: 500\n---\nText.\n", "'fps' is out of range"),
        (b"---\naspect: 4:3\n---\nText.\n", "'aspect' is not a known aspect ratio (got 4:3)"),
        (b"---\nresolution: 641x360\n---\nText.\n", "needs even sides"),
        (b"---\nduration: -4\n---\nText.\n", "'duration' must be a number of seconds"),
        (b"---\ncharacters:\n  Mara: 3\n---\nText.\n", "character 'Mara' needs a visual description"),
        (b"---\ntitle: Only front matter\n---\n\n", "has front matter but no story text"),
    ],
)
def test_bad_stories_name_the_problem_and_the_fix(data, expected):
    with pytest.raises(StoryError) as info:
        parse_story(data, source="bad.md")
    assert expected in str(info.value)
    assert info.value.fix, "every story error tells the user how to fix it"
    assert info.value.exit_code == 2


def test_unknown_field_lists_the_known_ones():
    with pytest.raises(StoryError) as info:
        parse_story(b"---\ncolour: red\n---\nText.\n")
    assert "title" in info.value.fix and "characters" in info.value.fix


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(StoryError, match="not found"):
        read_story(tmp_path / "nope.md")
    with pytest.raises(StoryError, match="is a folder"):
        read_story(tmp_path)


def test_a_pipe_nobody_writes_is_refused_instead_of_waited_on(tmp_path):
    import os

    os.mkfifo(tmp_path / "story.md")
    with pytest.raises(StoryError, match="is a pipe, not a story file") as refused:
        read_story(tmp_path / "story.md")  # opening it would wait for a writer forever
    assert refused.value.fix == "save the story to a file and pass that file"


@pytest.mark.parametrize(
    ("title", "slug"),
    [
        ("The Lighthouse Keeper", "the-lighthouse-keeper"),
        ("../../etc/passwd", "etc-passwd"),
        ("/absolute/path", "absolute-path"),
        ("..", "film"),
        ("Café Ünïcode — 2", "cafe-unicode-2"),
        ("!!!", "film"),
        ("x" * 200, "x" * 60),
    ],
)
def test_slugs_stay_inside_the_output_folder(title, slug):
    assert slugify(title) == slug
    assert "/" not in slug and ".." not in slug


def test_title_steers_no_write_outside(tmp_path):
    story = parse_story(b"---\ntitle: ../../../../tmp/evil\n---\nText.\n")
    target = (tmp_path / "outputs" / story.slug).resolve()
    assert target.is_relative_to((tmp_path / "outputs").resolve())


# ---------------------------------------------------------------- hostile stories: bounded, refused by shape


def test_a_story_is_read_only_up_to_its_size_limit(tmp_path):
    from storyflow.core.config import Limits

    big = tmp_path / "big.md"
    big.write_bytes(b"Mara walks. " * 20)
    with pytest.raises(StoryError, match="larger than 100 bytes") as caught:
        read_story(big, Limits(max_story_bytes=100))
    assert "STORYFLOW_MAX_STORY_BYTES" in caught.value.fix
    assert read_story(big, Limits(max_story_bytes=1000)).text.startswith("Mara walks.")
    with pytest.raises(StoryError, match="larger than 1,000,000 bytes"):  # endless: read in one bounded gulp
        read_story("/dev/zero")


@pytest.mark.parametrize(
    ("front_matter", "expected"),
    [
        ("a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\ntitle: [*b, *b, *b, *b, *b]",
         r"line 3: front matter uses a YAML alias \(\*a\)"),
        ("characters:\n  Mara: [[[[[[[[[x]]]]]]]]]", "nests deeper than 4 levels"),
        ("title: One\nfps: 12\ntitle: Two", r"line 4: front matter field 'title' is given twice \(first on line 2\)"),
        ('title: "Bad \\ud800 half"', r"holds \\ud800, half of a UTF-16 pair"),
        ("fps: [" + ", ".join(["1"] * 5000) + "]", r"must be a whole number \(got a list of 5000 items\)"),
        ("fps: " + "9" * 5000, "a front matter value cannot be read: Exceeds the limit"),
        ("fps: " + "9" * 300, r"out of range \(got 9{59}…\)"),
    ],
    ids=["alias-bomb", "deep-nesting", "duplicate-key", "lone-surrogate", "huge-list", "huge-number", "long-number"],
)
def test_hostile_front_matter_is_refused_by_its_shape(front_matter, expected):
    with pytest.raises(StoryError, match=expected) as caught:
        parse_story(f"---\n{front_matter}\n---\nMara walks.\n".encode())
    assert len(str(caught.value)) < 400  # built from the input's shape, never its expanded value


def test_a_title_over_the_limit_is_refused_with_the_setting_that_raises_it():
    from storyflow.core.config import Limits

    with pytest.raises(StoryError, match="the title is 201 characters long, more than the 200 allowed") as caught:
        parse_story(("# " + "T" * 201 + "\n\nMara walks.\n").encode())
    assert "STORYFLOW_MAX_TITLE_CHARS" in caught.value.fix
    assert parse_story(("# " + "T" * 201 + "\n\nMara walks.\n").encode(), limits=Limits(max_title_chars=300))


def test_control_characters_never_reach_the_story():
    story = parse_story("---\ntitle: \"Red\\e[31m Sea\\a\"\n---\nMara\u202e walks.\x1b]0;pwned\x07 Then\tshe stops.\n".encode())
    assert story.title == "Red[31m Sea"  # ESC and BEL gone: nothing left that a terminal obeys
    assert story.text == "Mara walks.]0;pwned Then\tshe stops."
