"""Where every shot lands in the film, in whole frames.

One function, `film_timeline`, turns a storyboard into placements; stitching, the score,
the subtitles and the tests all read the same placements, so picture, sound and text
cannot drift apart. A crossfade overlaps two shots; a fade dips to black inside each shot;
the optional title card comes first and fades into the first shot.
"""

from __future__ import annotations

from dataclasses import dataclass

from storyflow.core.models import (
    CROSSFADE_SECONDS,
    FADE_SECONDS,
    TITLE_CARD_SECONDS,
    Storyboard,
    Transition,
)


@dataclass(frozen=True)
class Placement:
    shot_id: str
    start: int  # film frame of the shot's first frame
    frames: int  # the shot's own length
    overlap_in: int = 0  # frames crossfading with the previous shot (at its head)
    overlap_out: int = 0  # frames crossfading with the next shot (at its tail)
    fade_in: int = 0  # frames rising from black at its head
    fade_out: int = 0  # frames falling to black at its tail

    @property
    def end(self) -> int:
        return self.start + self.frames


@dataclass(frozen=True)
class Timeline:
    fps: int
    title_frames: int  # 0 when there is no title card
    title_fade: int  # frames the title card fades out over
    placements: tuple[Placement, ...]
    total_frames: int

    @property
    def seconds(self) -> float:
        return self.total_frames / self.fps

    def placement(self, shot_id: str) -> Placement:
        for placement in self.placements:
            if placement.shot_id == shot_id:
                return placement
        raise KeyError(shot_id)

    def span_seconds(self, shot_id: str) -> tuple[float, float]:
        """The part of the film that belongs to the shot: its frames, each crossfade split at
        its middle (where a cut would be). Its narration, subtitles and music cue live here."""
        p = self.placement(shot_id)
        return (p.start + p.overlap_in / 2) / self.fps, (p.end - p.overlap_out / 2) / self.fps


def film_timeline(board: Storyboard, shot_frames: dict[str, int] | None = None) -> Timeline:
    """Place the storyboard's shots; `shot_frames` overrides planned lengths with real ones."""
    fps = board.fps
    lengths = [
        (shot_frames or {}).get(shot.id, shot.frames(fps)) for shot in board.shots
    ]
    crossfade = round(CROSSFADE_SECONDS * fps)
    fade = round(FADE_SECONDS * fps)

    # 1. overlaps between neighbours: a crossfade never takes more than half of either shot
    overlaps = []
    for i, shot in enumerate(board.shots[:-1]):
        if shot.transition is Transition.CROSSFADE:
            overlaps.append(min(crossfade, lengths[i] // 2, lengths[i + 1] // 2))
        else:
            overlaps.append(0)

    # 2. the title card, then the shots laid end to end minus their overlaps
    title_frames = round(TITLE_CARD_SECONDS * fps) if board.title_card else 0
    title_fade = min(fade, title_frames // 2) if title_frames else 0
    placements = []
    cursor = title_frames
    for i, shot in enumerate(board.shots):
        overlap_in = overlaps[i - 1] if i > 0 else 0
        overlap_out = overlaps[i] if i < len(overlaps) else 0
        start = cursor - overlap_in
        fade_in = 0
        if i == 0 and title_frames:
            fade_in = min(fade, lengths[i] // 2)
        elif i > 0 and board.shots[i - 1].transition is Transition.FADE:
            fade_in = min(fade, lengths[i] // 2)
        fade_out = 0
        last = i == len(board.shots) - 1
        if shot.transition is Transition.FADE or (last and shot.transition is Transition.CROSSFADE):
            fade_out = min(fade, lengths[i] // 2)
        placements.append(
            Placement(shot.id, start, lengths[i], overlap_in, overlap_out, fade_in, fade_out)
        )
        cursor = start + lengths[i]
    return Timeline(fps, title_frames, title_fade, tuple(placements), cursor)
