"""Property-based fuzz of the story reader (Hypothesis): whatever the bytes, the answer is a Story or a
StoryflowError (never another exception), within a time bound (Hypothesis's deadline) and a memory bound."""

from __future__ import annotations

import tracemalloc

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storyflow.core.errors import StoryflowError
from storyflow.core.models import Story
from storyflow.core.printable import strip_controls
from storyflow.stages.story import FRONT_MATTER_FIELDS, parse_story

MEMORY_BOUND = 64 * 2**20  # a story is at most 1 MB; reading one never needs more than this
FUZZ = settings(max_examples=250, deadline=2000, database=None, suppress_health_check=[HealthCheck.too_slow])

# YAML's own syntax, so the values reach the parser's corners: anchors, aliases, tags, flows, escapes, numbers
YAML_BITS = ["&a ", "*a", "!!str ", "!!python/object:os.system ", "[", "]", "{", "}", ", ", ": ", "- ", "? ", "|",
             ">", "'", '"', "\\ud800", "\\e[31m", "\\x07", "#", "\n  ", "\t", "9" * 5000, "1e999", ".nan", "~",
             "yes", "0x1F", "16:9", "2026-12-06", "&b [*a, *a, *a]", "\u202e", "\x1b]0;x\x07"]  # fmt: skip
values = st.one_of(st.sampled_from(YAML_BITS),  # one piece alone: a bare number, alias, tag...
                   st.lists(st.one_of(st.sampled_from(YAML_BITS), st.text(max_size=12)), max_size=8).map("".join))
fields = st.lists(st.tuples(st.sampled_from([*FRONT_MATTER_FIELDS, "colour", "title"]), values), max_size=9)
front_matter = fields.map(lambda pairs: "\n".join(f"{name}: {value}" for name, value in pairs))
bodies = st.one_of(st.text(max_size=400), st.lists(st.sampled_from(["# T", "Mara walks.", "[12s]", "[at 3s]", "\n\n",
                                                                     "\x1b[2J", "Arc shot."]), max_size=20).map(" ".join))  # fmt: skip


def read_within_bounds(data: bytes) -> Story | StoryflowError:
    tracemalloc.start()
    try:
        try:
            answer: Story | StoryflowError = parse_story(data)
        except StoryflowError as error:
            answer = error
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < MEMORY_BOUND, f"reading {len(data)} bytes took {peak / 2**20:.0f} MB"
    if isinstance(answer, Story):  # what reaches terminals, files and pictures is plain text
        assert answer.title and strip_controls(answer.title) == answer.title and "\n" not in answer.title
        assert answer.slug and set(answer.slug) <= set("abcdefghijklmnopqrstuvwxyz0123456789-")
        assert strip_controls(answer.text) == answer.text
    else:
        assert answer.message and answer.fix and len(str(answer)) < 1000  # built from the input's shape
    return answer


@FUZZ
@given(st.binary(max_size=3000))
def test_any_bytes_read_as_a_story_or_a_clean_error(data):
    assert isinstance(read_within_bounds(data), (Story, StoryflowError))


@FUZZ
@given(front_matter, bodies)
def test_any_front_matter_reads_as_a_story_or_a_clean_error(head, body):
    answer = read_within_bounds(f"---\n{head}\n---\n{body}".encode("utf-8", "surrogatepass"))
    assert isinstance(answer, (Story, StoryflowError))
