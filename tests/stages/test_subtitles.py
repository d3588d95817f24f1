"""Subtitles: narration becomes SRT cues timed to where each shot is on screen."""

from __future__ import annotations

from pathlib import Path

import pytest

from storyflow.core.models import Shot, Storyboard, StyleBible, Transition
from storyflow.core.timeline import film_timeline
from storyflow.stages.subtitles import (
    LINE_CHARS,
    MAX_LINES,
    MIN_CUE_SECONDS,
    Cue,
    format_time,
    parse_srt,
    split_cue,
    write_cues,
    write_srt,
)

STORIES = Path(__file__).resolve().parents[2] / "stories"

LONG = (
    "The ferry leaves at midnight, and nobody on the quay remembers who bought the last "
    "ticket, or why the captain keeps looking back at the lighthouse as the engines start."
)


def board(
    narrations: list[str],
    transitions: list[Transition],
    *,
    fps: int = 10,
    title: bool = False,
    seconds: float = 3.0,
) -> Storyboard:
    shots = tuple(
        Shot(
            id=f"s{i + 1:02d}",
            index=i,
            beat=i,
            story_text="x",
            action="x",
            duration=seconds,
            narration=text,
            transition=transition,
        )
        for i, (text, transition) in enumerate(zip(narrations, transitions))
    )
    return Storyboard(
        title="Ferry",
        slug="ferry",
        story_sha256="",
        style=StyleBible(style="s"),
        shots=shots,
        width=160,
        height=90,
        fps=fps,
        seed=0,
        title_card=title,
    )


def test_one_cue_per_narrated_shot_timed_to_the_span_it_owns(tmp_path: Path) -> None:
    # 3 s shots at 10 fps; shot 1 crossfades into shot 2 (5 frames), shot 2 cuts to shot 3
    b = board(
        ["Dawn breaks.", "", "The gulls wake."],
        [Transition.CROSSFADE, Transition.CUT, Transition.CUT],
    )
    path = write_srt(b, film_timeline(b), tmp_path / "film.srt")
    cues = parse_srt(path)

    assert [text for _, _, text in cues] == ["Dawn breaks.", "The gulls wake."]  # shot 2 is silent
    # shot 1 owns the film until the middle of its crossfade into shot 2 (2.5-3.0 s); shot 3
    # starts after shot 2 (which began at 2.5 s and ran 3 s) and runs 3 s
    assert cues[0][:2] == pytest.approx((0.0, 2.75))
    assert cues[1][:2] == pytest.approx((5.5, 8.5))


def test_title_card_delays_every_cue(tmp_path: Path) -> None:
    b = board(["Dawn breaks."], [Transition.CUT], title=True)
    cues = parse_srt(write_srt(b, film_timeline(b), tmp_path / "film.srt"))
    assert cues[0][:2] == pytest.approx((3.0, 6.0))  # after the 3 s title card


def test_long_narration_is_wrapped_and_split_across_the_span(tmp_path: Path) -> None:
    b = board([LONG], [Transition.CUT], seconds=8.0)
    cues = parse_srt(write_srt(b, film_timeline(b), tmp_path / "film.srt"))

    assert len(cues) >= 2
    for _, _, text in cues:
        lines = text.split("\n")
        assert len(lines) <= 2 and all(len(line) <= 42 for line in lines)
    # every word, in order, once; the cues tile the shot's 8 s with no gap or overlap
    assert " ".join(t.replace("\n", " ") for _, _, t in cues) == LONG
    assert cues[0][0] == 0.0 and cues[-1][1] == pytest.approx(8.0)
    assert all(one[1] == pytest.approx(two[0]) for one, two in zip(cues, cues[1:]))
    # each cue's share of the span follows its length (to the millisecond the file keeps)
    per_char = 8.0 / sum(len(t) for _, _, t in cues)
    for start, end, text in cues:
        assert end - start == pytest.approx(len(text) * per_char, abs=0.002)


def words_of(cues) -> str:
    """The cues' text as one line, the way a viewer reads it."""
    return " ".join(cue[2].replace("\n", " ") for cue in cues)


def assert_readable(cues, start: float, end: float) -> None:
    """Every cue fits the screen, and together they tile [start, end] in order."""
    for cue in cues:
        lines = cue[2].split("\n")
        assert len(lines) <= MAX_LINES and all(len(line) <= LINE_CHARS for line in lines), cue
    assert cues[0][0] == pytest.approx(start) and cues[-1][1] == pytest.approx(end)
    assert all(one[1] == pytest.approx(two[0]) for one, two in zip(cues, cues[1:]))
    assert all(cue[0] < cue[1] for cue in cues)


def test_two_sentences_too_long_for_one_cue_are_split_between_them() -> None:
    """The lighthouse's opening shot used to end its first cue on 'gather over' and flash
    'the sea.' for 0.41 s."""
    first = "The lighthouse stands alone on a rocky coast at dusk."
    second = "Storm clouds gather over the sea."
    cues = split_cue(3.0, 7.458, f"{first} {second}")

    assert [cue.text.replace("\n", " ") for cue in cues] == [first, second]
    assert_readable(cues, 3.0, 7.458)
    assert min(cue.end - cue.start for cue in cues) > 1.5  # both stay up long enough to read
    # timed in proportion to their length
    assert (cues[0].end - cues[0].start) / (cues[1].end - cues[1].start) == pytest.approx(
        len(first) / len(second)
    )


def test_long_sentence_is_split_at_its_comma_into_balanced_cues() -> None:
    sentence = (
        "The old ferryman rows slowly across the wide grey river at dawn, singing softly "
        "to the gulls that circle above his little wooden boat."
    )
    cues = split_cue(0.0, 6.0, sentence)

    assert len(cues) == 2
    assert cues[0].text.replace("\n", " ").endswith("at dawn,")  # not mid-clause
    assert words_of(cues) == sentence
    assert_readable(cues, 0.0, 6.0)
    shorter, longer = sorted(len(cue.text) for cue in cues)
    assert shorter / longer > 0.75


def test_sentence_without_punctuation_is_split_evenly_with_no_orphan_words() -> None:
    sentence = (
        "The storm has passed and the harbour lies quiet under a pale morning sky while "
        "the gulls settle on the masts"
    )
    cues = split_cue(0.0, 6.0, sentence)

    assert len(cues) == 2 and words_of(cues) == sentence
    assert_readable(cues, 0.0, 6.0)
    shorter, longer = sorted(len(cue.text) for cue in cues)
    assert shorter / longer > 0.8  # about half each, not a full cue and a word or two


def test_a_short_sentence_still_stays_up_for_a_second() -> None:
    """By length alone 'Rain begins to fall.' would get 0.96 s of this 4.5 s span."""
    text = (
        "Fishing boats race for the harbour as the camera pans left across the bay. "
        "Rain begins to fall."
    )
    cues = split_cue(10.0, 14.5, text)

    assert [cue.text.replace("\n", " ") for cue in cues] == [text[:74], text[75:]]
    assert_readable(cues, 10.0, 14.5)
    assert cues[1].end - cues[1].start == pytest.approx(MIN_CUE_SECONDS)


def test_sentences_are_merged_when_the_span_is_too_short_for_one_cue_each() -> None:
    text = (
        "Rain hammers on the old tin roof above the kitchen. Mara lights the lamp and sets "
        "two cups on the table. Far away a ship sounds its horn twice in the dark."
    )
    roomy = split_cue(0.0, 9.0, text)
    tight = split_cue(0.0, 2.5, text)

    assert len(roomy) == 3  # one sentence per cue (no two fit one cue) when there is time
    assert len(tight) == 2  # three cues would last 0.83 s each: two that hold it all
    assert words_of(tight) == text
    assert_readable(tight, 0.0, 2.5)
    assert min(cue.end - cue.start for cue in tight) >= MIN_CUE_SECONDS


def test_narration_that_fits_one_cue_stays_one_cue() -> None:
    cues = split_cue(0.0, 4.0, "Dawn breaks. The gulls wake and the sea turns gold.")
    assert len(cues) == 1 and cues[0][:2] == (0.0, 4.0)
    assert len(cues[0].text.split("\n")) == 2  # two lines, broken near the middle


@pytest.mark.parametrize("story", sorted(p.name for p in STORIES.glob("*.md")))
def test_sample_stories_get_no_cue_shorter_than_a_second(story: str, tmp_path: Path) -> None:
    from storyflow.backends.registry import load_backend
    from storyflow.stages.plan import plan_storyboard
    from storyflow.stages.story import read_story

    b = plan_storyboard(read_story(STORIES / story), load_backend("llm", "embedded"))
    timeline = film_timeline(b)
    cues = parse_srt(write_srt(b, timeline, tmp_path / "film.srt"))
    spans = [timeline.span_seconds(shot.id) for shot in b.shots if shot.narration.strip()]

    assert cues
    # every cue: readable, long enough, and inside one narrated shot's span (the file keeps
    # milliseconds, hence the tolerance)
    for start, end, text in cues:
        lines = text.split("\n")
        assert len(lines) <= MAX_LINES and all(len(line) <= LINE_CHARS for line in lines)
        assert end - start >= MIN_CUE_SECONDS - 0.001, (start, end, text)
        assert any(lo - 0.001 <= start and end <= hi + 0.001 for lo, hi in spans), (start, end)
    assert all(one[1] <= two[0] for one, two in zip(cues, cues[1:]))  # never overlapping
    narration = " ".join(" ".join(shot.narration.split()) for shot in b.shots)
    assert words_of(cues) == " ".join(narration.split())  # every word, in order, once


def test_srt_format_and_round_trip(tmp_path: Path) -> None:
    cues = [Cue(0.0, 1.25, "Café — naïve"), Cue(3661.5, 3662.0, "two\nlines")]
    path = write_cues(cues, tmp_path / "x.srt")
    raw = path.read_bytes().decode("utf-8")

    assert raw.startswith("1\n00:00:00,000 --> 00:00:01,250\nCafé — naïve\n\n2\n")
    assert "01:01:01,500 --> 01:01:02,000" in raw
    assert parse_srt(path) == [(0.0, 1.25, "Café — naïve"), (3661.5, 3662.0, "two\nlines")]
    assert format_time(59.9996) == "00:01:00,000"  # rounds to the millisecond, carrying over


def test_split_cue_without_words_gives_no_cue() -> None:
    assert split_cue(0.0, 1.0, "   ") == []


def test_empty_narration_gives_an_empty_but_valid_file(tmp_path: Path) -> None:
    b = board(["", ""], [Transition.CUT, Transition.CUT])
    path = write_srt(b, film_timeline(b), tmp_path / "film.srt")
    assert path.exists() and parse_srt(path) == []
