"""Narration spoken with the real espeak-ng voice, and fitted inside its shots."""

from __future__ import annotations

import pytest

from storyflow import media
from storyflow.backends.registry import load_backend
from storyflow.catalog import Generations
from storyflow.core import durations
from storyflow.core.models import Shot, Storyboard, StyleBible, Transition
from storyflow.core.timeline import film_timeline
from storyflow.stages import narrate

LONG = ("The keeper climbs the long spiral stairs of the old lighthouse, counting every one of the "
        "two hundred steps while the storm rattles the windows.")  # fmt: skip


def board(*texts, seconds=2.0, transition=Transition.CROSSFADE):
    shots = tuple(
        Shot(id=f"s{i + 1:02d}", index=i, beat=i, story_text=t, action="a", duration=seconds, narration=t,
             transition=transition)  # fmt: skip
        for i, t in enumerate(texts)
    )
    return Storyboard(title="T", slug="t", story_sha256="0" * 64, style=StyleBible(style="s"), shots=shots,
                      width=64, height=36, fps=12, seed=0, title_card=False)  # fmt: skip


@pytest.fixture(scope="module")
def voice():
    return load_backend("speech", "espeak")


def fits(b, lines):
    timeline = film_timeline(b)
    for line in lines:
        start, end = timeline.span_seconds(line.shot_id)
        assert start + line.offset + line.seconds <= end - narrate.TAIL_S + 1e-6, line.shot_id


def test_a_line_longer_than_its_shot_stretches_the_shot(tmp_path, voice):
    b = board(LONG, "Then silence.")
    b = b.model_copy(update={"shots": (b.shots[0], b.shots[1].model_copy(update={"duration": 3.0}))})
    fitted, lines = narrate.narrate(b, voice, tmp_path, Generations.in_memory())
    assert [line.shot_id for line in lines] == ["s01", "s02"]
    assert lines[0].seconds > 5  # the long line really is long
    assert fitted.shots[0].duration > b.shots[0].duration
    assert fitted.shots[0].duration * 12 == round(fitted.shots[0].duration * 12)  # whole frames
    fits(fitted, lines)
    assert fitted.shots[1].duration == b.shots[1].duration  # the short line fitted as it was
    samples, rate = media.read_wav(lines[0].path)
    assert rate == media.AUDIO_SAMPLE_RATE and abs(len(samples) / rate - lines[0].seconds) < 1e-3


def test_pace_speaks_faster_before_stretching(tmp_path, voice):
    b = board(LONG, seconds=7.0)
    stretched, (plain,) = narrate.narrate(b, voice, tmp_path / "a", Generations.in_memory(), fit="stretch")
    paced, (fast,) = narrate.narrate(b, voice, tmp_path / "b", Generations.in_memory(), fit="pace")
    assert fast.rate > voice.rate and plain.rate == voice.rate
    assert fast.seconds < plain.seconds
    assert paced.shots[0].duration < stretched.shots[0].duration
    fits(paced, [fast])


def test_lines_are_reused_and_placed_after_the_shots_first_visible_frame(tmp_path, voice):
    b = board("A gull cries.", "The waves answer.")
    store = Generations.in_memory()
    first_board, first = narrate.narrate(b, voice, tmp_path, store)
    again_board, again = narrate.narrate(b, voice, tmp_path, store)
    assert store.tally["narration"] == {"made": 2, "reused": 2} and all(line.reused for line in again)
    assert [line.path for line in again] == [line.path for line in first]
    placed = narrate.line_times(again_board, again)
    timeline = film_timeline(again_board)
    for at, line in placed:
        assert at == pytest.approx(timeline.span_seconds(line.shot_id)[0] + narrate.LEAD_IN_S)
    assert len(first[0].words) == 3  # word timings travel with the line (subtitles use them)


def test_with_a_target_length_the_line_is_paced_and_quiet_shots_give_time_back(tmp_path, voice):
    b = board(LONG, "", "", seconds=4.0, transition=Transition.CUT)
    b = b.model_copy(update={"target_seconds": 12.0})
    planned = film_timeline(b).seconds
    fitted, (line,) = narrate.narrate(b, voice, tmp_path, Generations.in_memory())  # fit="auto": pace, a target is set
    assert line.rate > voice.rate  # spoken faster than the voice's own pace...
    assert line.rate <= voice.rate * narrate.MAX_PACE + 1e-6  # ...within the limit
    fits(fitted, [line])
    assert planned == 12.0
    assert durations.on_target(film_timeline(fitted).total_frames, 12 * 12)  # the film keeps its length (within 2%)
    grown = fitted.shots[0].duration - 3.0
    assert grown > 0.5  # the narrated shot grew...
    quiet = [s.duration for s in fitted.shots[1:]]
    assert quiet[0] == quiet[1] and 8.0 - grown - 3 / 12 <= sum(quiet) < 8.0  # ...the quiet ones gave way, alike
    assert min(quiet) >= narrate.MIN_SHOT_S


def test_with_a_target_length_editing_one_line_leaves_the_other_shots_and_lines_alone(tmp_path, voice):
    """Fitting is local: one edited line changes its own shot's length and recording, nothing else."""
    texts = ["The lamps come on along the harbour.", "A gull circles the boats.", "Ada waves from the wall.",
             "The tide turns.", "Boats knock together.", "Rain starts.", "A door slams.", "Night falls."]  # fmt: skip
    b = board(*texts, seconds=3.0, transition=Transition.CUT).model_copy(update={"target_seconds": 24.0})
    store = Generations.in_memory()
    before, _ = narrate.narrate(b, voice, tmp_path, store)
    saved = store.tally["narration"]["made"]
    edited = b.model_copy(update={"shots": (b.shots[0], b.shots[1].model_copy(update={
        "narration": "A grey gull circles the old fishing boats."}), *b.shots[2:])})  # fmt: skip
    after, lines = narrate.narrate(edited, voice, tmp_path, store)
    assert store.tally["narration"]["made"] - saved <= 2  # the edited line (at the voice's rate, and perhaps paced): no other
    assert [line.reused for line in lines] == [True, False, True, True, True, True, True, True]
    assert "grey gull" in lines[1].text
    keep = [0, 2, 3, 4, 5, 6, 7]
    assert [after.shots[i].duration for i in keep] == [before.shots[i].duration for i in keep]  # the rest kept theirs
    assert after.shots[1].duration >= before.shots[1].duration  # the longer line: a longer shot, or paced
    assert durations.on_target(film_timeline(after).total_frames, 24 * 12)


def test_a_written_length_stands_unless_the_speech_needs_more(tmp_path, voice):
    b = board("Short.", "", seconds=3.0, transition=Transition.CUT)
    fixed = b.shots[1].model_copy(update={"duration": 1.0, "fixed_duration": True})
    b = b.model_copy(update={"shots": (b.shots[0], fixed), "target_seconds": 4.0})
    fitted, _ = narrate.narrate(b, voice, tmp_path, Generations.in_memory())
    assert fitted.shots[1].duration == 1.0  # "[1s]" in the story, kept although below MIN_SHOT_S


def test_a_hosted_voice_records_what_each_line_cost_and_the_run_counts_it(storyflow_home, monkeypatch):
    """OpenAI speech against a local server, priced like tts-1: each line's cost, the run's cost, nothing on reuse."""
    from storyflow.catalog import open_catalog
    from tests.catalog.test_catalog import make_story
    from tests.fake_openai import FakeOpenAI

    monkeypatch.setenv("OPENAI_API_KEY", "sk-narrate-test-not-real")
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    texts = ("A gull cries over the harbour.", "The waves answer.")
    story = make_story()
    b = board(*texts).model_copy(update={"story_sha256": story.sha256})
    with FakeOpenAI() as server, open_catalog() as catalog:
        hosted = load_backend("speech", "openai", {"base_url": server.url, "model": "tts-1",
                                                   "price_per_million_chars": 15.0})  # fmt: skip
        door = Generations(catalog, run_id=catalog.start_run("story.md", {}))
        _, lines = narrate.narrate(b, hosted, storyflow_home / "t", door)
        assert [line.cost_usd for line in lines] == [pytest.approx(len(t) * 15.0 / 1e6) for t in texts]
        # the lines wait for the storyboard they fit, then are recorded with what they cost
        board_id = catalog.record_storyboard(catalog.record_story(story), b, llm="embedded 1", options={}, wall_s=0.0)
        door.point_at(storyboard=board_id)
        [run] = catalog.runs()
        paid = sum(line.cost_usd for line in lines)
        assert run["cost_usd"] == pytest.approx(paid) and run["narration_cost_usd"] == pytest.approx(paid)
        assert run["video_cost_usd"] is None
        detail = catalog.run_detail(run["id"])  # `storyflow catalog run ID`: the same, line by line
        assert detail["run"]["cost_usd"] == pytest.approx(paid)
        spoken = [item["cost_usd"] for item in detail["generated"] if item["kind"] == "narration"]
        assert sum(spoken) == pytest.approx(paid)

        # the next run reuses the lines: nothing spoken again, nothing paid
        again = Generations(catalog, run_id=catalog.start_run("story.md", {}))
        again.point_at(storyboard=board_id)
        _, reused = narrate.narrate(b, hosted, storyflow_home / "t", again)
        assert all(line.reused for line in reused) and len(server.requests) == 2
        newest, first = catalog.runs()
        assert newest["cost_usd"] is None and first["cost_usd"] == pytest.approx(paid)
        # and a local voice costs nothing
        _, local = narrate.narrate(board("Night falls."), load_backend("speech", "espeak"), storyflow_home / "e",
                                   Generations.in_memory())  # fmt: skip
        assert local[0].cost_usd is None
