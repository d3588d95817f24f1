"""Shot placement in whole frames: title card, crossfade overlaps, fades."""

from __future__ import annotations

from storyflow.core.models import Shot, Storyboard, StyleBible, Transition
from storyflow.core.timeline import film_timeline


def board(durations, transitions, fps=24, title_card=False):
    shots = tuple(
        Shot(id=f"s{i + 1:02d}", index=i, beat=i, story_text="t", action="a", duration=d, transition=tr)
        for i, (d, tr) in enumerate(zip(durations, transitions))
    )
    return Storyboard(
        title="T", slug="t", story_sha256="0" * 64, style=StyleBible(style="s"), shots=shots,
        width=64, height=36, fps=fps, seed=0, title_card=title_card,
    )  # fmt: skip


def test_cuts_lay_shots_end_to_end():
    tl = film_timeline(board([2.0, 3.0, 1.5], [Transition.CUT] * 3))
    assert [p.start for p in tl.placements] == [0, 48, 120]
    assert tl.total_frames == 156 and tl.seconds == 6.5


def test_crossfades_overlap_and_shorten_the_film():
    tl = film_timeline(board([2.0, 2.0, 2.0], [Transition.CROSSFADE, Transition.CROSSFADE, Transition.CUT]))
    # each crossfade overlaps 0.5 s = 12 frames
    assert [p.start for p in tl.placements] == [0, 36, 72]
    assert tl.total_frames == 144 - 24
    assert tl.placements[1].overlap_in == 12 and tl.placements[1].overlap_out == 12
    assert tl.span_seconds("s02") == (1.75, 3.25)  # each crossfade split at its middle


def test_crossfade_never_takes_more_than_half_a_short_shot():
    tl = film_timeline(board([0.5, 2.0], [Transition.CROSSFADE, Transition.CUT]))
    assert tl.placements[1].overlap_in == 6  # half of the 12-frame first shot


def test_title_card_comes_first_and_fades_into_the_first_shot():
    tl = film_timeline(board([2.0, 2.0], [Transition.CUT, Transition.FADE], title_card=True))
    assert tl.title_frames == 72 and tl.title_fade == 12
    assert tl.placements[0].start == 72 and tl.placements[0].fade_in == 12
    assert tl.placements[1].fade_out == 12  # the film ends on a fade to black
    assert tl.total_frames == 72 + 96


def test_real_clip_lengths_override_the_plan():
    b = board([2.0, 2.0], [Transition.CUT, Transition.CUT])
    assert film_timeline(b, {"s01": 50}).total_frames == 50 + 48
