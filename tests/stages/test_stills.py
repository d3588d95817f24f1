"""Stills: the title card frame, the poster and the contact sheet, read back as pixels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from storyflow import media
from storyflow.core.models import (
    Clip,
    ClipChain,
    Shot,
    Storyboard,
    StyleBible,
    Transition,
)
from storyflow.core.timeline import film_timeline
from storyflow.stages.stills import (
    contact_sheet_layout,
    title_card_frame,
    write_contact_sheet,
    write_poster,
)

FPS = 12
COLOURS = [(200, 40, 40), (40, 200, 40), (40, 40, 200), (200, 200, 40), (40, 200, 200)]


def flat(colour, w, h, n):
    return [np.full((h, w, 3), colour, np.uint8) for _ in range(n)]


def stripes(w, h, n):
    """Black and white vertical stripes: by far the most contrasted picture."""
    frame = np.zeros((h, w, 3), np.uint8)
    frame[:, (np.arange(w) // 8) % 2 == 0] = 255
    return [frame] * n


def make(tmp_path: Path, pictures: list[list[np.ndarray]], w: int, h: int):
    """A storyboard with one shot (one clip) per list of frames, and its chains."""
    shots, chains = [], {}
    for i, frames in enumerate(pictures):
        sid = f"s{i + 1:02d}"
        path = tmp_path / f"{sid}.mp4"
        media.write_video(path, frames, w, h, FPS)
        clip = Clip(
            shot_id=sid,
            segment=0,
            path=path,
            sha256="",
            cache_key=sid,
            num_frames=len(frames),
            fps=FPS,
            width=w,
            height=h,
            strategy="text_to_video",
            backend="t",
            model="t",
            seed=0,
        )
        chains[sid] = ClipChain(shot_id=sid, clips=(clip,))
        shots.append(
            Shot(
                id=sid,
                index=i,
                beat=i,
                story_text="x",
                action=f"a lighthouse keeper climbs stair {i}",
                duration=len(frames) / FPS,
                narration="The lamp must not go out.",
                transition=Transition.CUT,
            )
        )
    board = Storyboard(
        title="The Lamp",
        slug="the-lamp",
        story_sha256="",
        style=StyleBible(style="s"),
        shots=tuple(shots),
        width=w,
        height=h,
        fps=FPS,
        seed=0,
    )
    return board, chains


def bright(pixels: np.ndarray, level: int = 200) -> int:
    return int((pixels.max(axis=-1) > level).sum())


def test_title_card_is_bright_text_on_dark() -> None:
    shot = Shot(id="s01", index=0, beat=0, story_text="x", action="x", duration=1.0)
    board = Storyboard(
        title="A Very Long Title That Must Still Fit On The Card Somehow",
        slug="x",
        story_sha256="",
        style=StyleBible(style="s"),
        shots=(shot,),
        width=320,
        height=180,
        fps=FPS,
        seed=0,
    )
    card = title_card_frame(board)
    assert card.shape == (180, 320, 3) and card.dtype == np.uint8
    assert np.median(card) < 30 and bright(card) > 100
    # the text stays inside the frame with a margin on every side
    ys, xs = np.nonzero(card.max(axis=2) > 200)
    assert xs.min() > 8 and xs.max() < 320 - 8 and ys.min() > 8 and ys.max() < 180 - 8


def test_poster_is_the_most_contrasted_shot_with_the_title(tmp_path: Path) -> None:
    w, h = 320, 180
    board, chains = make(
        tmp_path,
        [flat((90, 90, 90), w, h, 12), stripes(w, h, 12), flat((160, 40, 40), w, h, 12)],
        w,
        h,
    )
    path = write_poster(board, film_timeline(board), chains, tmp_path / "poster.png")

    poster = np.asarray(Image.open(path).convert("RGB"))
    assert poster.shape == (h, w, 3)
    # above the title band the picture is the striped shot's
    top = poster[: int(h * 0.6)]
    assert np.abs(top.astype(int) - stripes(w, h, 1)[0][: int(h * 0.6)].astype(int)).mean() < 12
    # the band across the lower third is darkened and carries bright text
    band = poster[int(h * 0.7) : int(h * 0.88)]
    assert band.mean() < 0.6 * top.mean()
    assert bright(band, 220) > 50


def test_poster_ties_go_to_the_earlier_shot(tmp_path: Path) -> None:
    w, h = 160, 90
    board, chains = make(
        tmp_path, [flat((30, 30, 30), w, h, 6), stripes(w, h, 6), stripes(w, h, 6)], w, h
    )
    frames = {
        "s01": flat((30, 30, 30), w, h, 1)[0],
        "s02": stripes(w, h, 1)[0],
        "s03": stripes(w, h, 1)[0] // 2 + 120,
    }
    # s03 is the same stripes at half contrast: s02 must win over both
    path = write_poster(board, film_timeline(board), chains, tmp_path / "poster.png", frames=frames)
    top = np.asarray(Image.open(path).convert("RGB"))[:40]
    assert top.max() == 255 and top.min() == 0


@pytest.mark.parametrize(("w", "h", "shots"), [(160, 90, 5), (90, 160, 3)])
def test_contact_sheet_has_a_numbered_captioned_tile_per_shot(
    tmp_path: Path, w: int, h: int, shots: int
) -> None:
    board, chains = make(tmp_path, [flat(c, w, h, 12) for c in COLOURS[:shots]], w, h)
    path = write_contact_sheet(board, chains, tmp_path / "sheet.png", columns=4)
    sheet = np.asarray(Image.open(path).convert("RGB"))
    layout = contact_sheet_layout(shots, w, h, columns=4)

    assert sheet.shape == (layout.height, layout.width, 3)
    rows = {y for _, y in layout.thumbs}
    assert len(rows) == -(-shots // 4) and len(layout.thumbs) == shots
    assert (layout.thumb_w > layout.thumb_h) == (w > h)  # thumbnails keep the film's shape

    seen = []
    for index, colour in enumerate(COLOURS[:shots]):
        left, top, right, bottom = layout.thumb_box(index)
        thumb = sheet[top:bottom, left:right].astype(int)
        # the thumbnail is the shot's picture (away from the number badge) ...
        body = thumb[thumb.shape[0] // 2 :, thumb.shape[1] // 3 :]
        assert np.abs(body.mean(axis=(0, 1)) - colour).max() < 12
        seen.append(tuple(body.mean(axis=(0, 1)).round()))
        # ... its top-left corner carries the shot number on a dark badge ...
        badge = thumb[:20, :30]
        assert (badge.max(axis=2) < 40).sum() > 100 and bright(badge, 150) > 5
        # ... and the caption below it has text on the dark sheet
        caption = sheet[bottom : bottom + layout.caption_h, left:right]
        assert bright(caption, 140) > 40
    assert len(set(seen)) == shots  # every tile differs
    # the header carries the title
    assert bright(sheet[: layout.header]) > 50
