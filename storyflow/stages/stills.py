"""Still images beside the film: the title card frame, a poster frame and a contact sheet.

Every shot is represented by its middle frame (decoded from its clip chain), the frame
least affected by transitions. Text is drawn with PIL's bundled FreeType font.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from storyflow.core.models import ClipChain, Storyboard
from storyflow.core.timeline import Timeline, film_timeline
from storyflow.media import atomic_path, fit_frame

if TYPE_CHECKING:
    import numpy as np
    from PIL import ImageDraw, ImageFont

BACKGROUND = (14, 14, 20)  # the dark of the title card and the contact sheet
TEXT = (240, 238, 230)
MUTED = (150, 150, 160)
ACCENT = (230, 180, 80)


# ---------------------------------------------------------------- frames of shots


def middle_frame(chain: ClipChain) -> np.ndarray:
    """The middle frame of a shot's clip chain, decoded."""
    from storyflow.media import decode_range

    target = chain.num_frames // 2
    for clip in chain.clips:
        if target < clip.num_frames:
            for frame in decode_range(clip.path, target, 1):
                return frame
            break
        target -= clip.num_frames
    from storyflow.core.errors import MediaError

    raise MediaError(
        f"shot {chain.shot_id}: could not decode its middle frame from {chain.last.path}",
        fix="delete the shot's clips and rerun so they are generated again",
    )


class MiddleFrames(Mapping[str, "np.ndarray"]):
    """The middle frame of every shot, in storyboard order, decoded when asked for and not kept:
    a film of any length costs one frame of memory here, not one per shot."""

    def __init__(self, board: Storyboard, chains: dict[str, ClipChain]) -> None:
        self._ids, self._chains = [shot.id for shot in board.shots], chains

    def __getitem__(self, shot_id: str) -> np.ndarray:
        return middle_frame(self._chains[shot_id])

    def __iter__(self) -> Iterator[str]:
        return iter(self._ids)

    def __len__(self) -> int:
        return len(self._ids)


def middle_frames(board: Storyboard, chains: dict[str, ClipChain]) -> Mapping[str, np.ndarray]:
    """The middle frame of every shot, in storyboard order (decoded on access)."""
    return MiddleFrames(board, chains)


def luminance_contrast(frame: np.ndarray) -> float:
    """RMS contrast: the standard deviation of luma (Rec. 601), 0..255."""
    import numpy as np

    rgb = frame.astype(np.float32)
    luma = 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]
    return float(luma.std())


# ---------------------------------------------------------------- text helpers


def font(size: int) -> ImageFont.FreeTypeFont:
    from PIL import ImageFont

    return ImageFont.load_default(size=max(6, size))  # type: ignore[return-value]


def wrap_to_width(text: str, face: ImageFont.FreeTypeFont, width: float) -> list[str]:
    """Greedy word wrap by rendered width (words longer than a line stay whole)."""
    lines: list[str] = []
    for word in text.split():
        if lines and face.getlength(f"{lines[-1]} {word}") <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines


def fit_text(text: str, face: ImageFont.FreeTypeFont, width: float) -> str:
    """Cut text to fit in one line of `width` pixels, ending with an ellipsis if cut."""
    import bisect

    if face.getlength(text) <= width:
        return text
    # the longest prefix that fits with its ellipsis, by bisection: a handful of measurements, however long
    # the text (cutting one character at a time made a 10,000-character title take minutes)
    keep = bisect.bisect_right(range(len(text) + 1), False, key=lambda n: face.getlength(text[:n] + "…") > width)
    return text[: max(0, keep - 1)].rstrip() + "…"


def _fitting_title(title: str, box_w: float, box_h: float, size: int):
    """The largest font (from `size` down) at which the title fits the box in few lines."""
    while True:
        face = font(size)
        lines = wrap_to_width(title, face, box_w)
        line_h = size * 1.2
        widest = max((face.getlength(line) for line in lines), default=0)
        if (widest <= box_w and len(lines) * line_h <= box_h) or size <= 8:
            return face, lines, line_h
        size = int(size * 0.9)


def _draw_centered(draw: ImageDraw.ImageDraw, lines, face, line_h, cx, cy, fill) -> None:
    top = cy - len(lines) * line_h / 2
    for i, line in enumerate(lines):
        draw.text((cx, top + (i + 0.5) * line_h), line, font=face, fill=fill, anchor="mm")


# ---------------------------------------------------------------- burned-in subtitles


def draw_subtitle(frame: np.ndarray, text: str) -> np.ndarray:
    """A subtitle (one or two lines) drawn into a frame: white on a translucent dark box, in
    the lower part of the picture but above where previz captions sit."""
    import numpy as np
    from PIL import Image, ImageDraw

    h, w = frame.shape[:2]
    size = max(10, h // 20)
    face = font(size)
    lines = text.split("\n")
    line_h = size * 1.25
    box_w = max(face.getlength(line) for line in lines) + size
    box_h = len(lines) * line_h + size * 0.4
    bottom = h * 0.86
    image = Image.fromarray(frame).convert("RGBA")
    overlay = Image.new("RGBA", image.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    draw.rectangle([(w - box_w) / 2, bottom - box_h, (w + box_w) / 2, bottom], fill=(0, 0, 0, 150))
    _draw_centered(draw, lines, face, line_h, w / 2, bottom - box_h / 2, (255, 255, 255, 255))
    return np.asarray(Image.alpha_composite(image, overlay).convert("RGB"), dtype=np.uint8).copy()


# ---------------------------------------------------------------- title card


def title_card_frame(board: Storyboard) -> np.ndarray:
    """The film's title, bright on a dark background, at the film's size."""
    import numpy as np
    from PIL import Image, ImageDraw

    w, h = board.width, board.height
    image = Image.new("RGB", (w, h), BACKGROUND)
    draw = ImageDraw.Draw(image)
    face, lines, line_h = _fitting_title(board.title, w * 0.84, h * 0.5, max(12, h // 9))
    _draw_centered(draw, lines, face, line_h, w / 2, h * 0.47, TEXT)
    # A short accent rule under the title gives the card a finished look.
    rule_y = h * 0.47 + len(lines) * line_h / 2 + max(4, h // 40)
    draw.line([(w * 0.42, rule_y), (w * 0.58, rule_y)], fill=ACCENT, width=max(1, h // 180))
    return np.asarray(image, dtype=np.uint8).copy()


# ---------------------------------------------------------------- poster


def write_poster(
    board: Storyboard,
    timeline: Timeline,
    chains: dict[str, ClipChain],
    path: Path,
    *,
    frames: Mapping[str, np.ndarray] | None = None,
) -> Path:
    """A PNG at film size: the most contrasted shot's middle frame with the title in a band."""
    import numpy as np
    from PIL import Image, ImageDraw

    # 1. choose: the middle frame with the highest luminance contrast (ties: the earlier shot)
    frames = frames or middle_frames(board, chains)
    best_id = board.shots[0].id
    best = -1.0
    for placement in timeline.placements:
        contrast = luminance_contrast(frames[placement.shot_id])
        if contrast > best:
            best_id, best = placement.shot_id, contrast
    picture = fit_frame(frames[best_id], board.width, board.height)  # a clip may be off-size

    # 2. darken a band across the lower third and set the title in it
    w, h = board.width, board.height
    canvas = picture.astype(np.float32)
    top, bottom = int(h * 0.66), int(h * 0.9)
    canvas[top:bottom] *= 0.35
    image = Image.fromarray(np.clip(canvas, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    face, lines, line_h = _fitting_title(
        board.title, w * 0.9, (bottom - top) * 0.9, max(10, h // 12)
    )
    _draw_centered(draw, lines, face, line_h, w / 2, (top + bottom) / 2, TEXT)

    path = Path(path)
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")
    return path


# ---------------------------------------------------------------- contact sheet


@dataclass(frozen=True)
class SheetLayout:
    """Where things go on the contact sheet, in pixels."""

    width: int
    height: int
    header: int  # height of the header band
    thumb_w: int
    thumb_h: int
    caption_h: int
    thumbs: tuple[tuple[int, int], ...]  # top-left corner of each shot's thumbnail

    def thumb_box(self, index: int) -> tuple[int, int, int, int]:
        """(left, top, right, bottom) of thumbnail `index`."""
        x, y = self.thumbs[index]
        return x, y, x + self.thumb_w, y + self.thumb_h


def contact_sheet_layout(shots: int, width: int, height: int, columns: int = 4) -> SheetLayout:
    """A grid of `columns` tiles per row, thumbnails keeping the film's aspect."""
    columns = max(1, min(columns, shots))
    longest = 256  # the thumbnail's longer side
    if width >= height:
        thumb_w, thumb_h = longest, round(longest * height / width)
    else:
        thumb_w, thumb_h = round(longest * width / height), longest
    margin, gap, header, caption_h = 20, 14, 64, 62
    rows = -(-shots // columns)
    tile_h = thumb_h + caption_h
    sheet_w = 2 * margin + columns * thumb_w + (columns - 1) * gap
    sheet_h = header + margin + rows * tile_h + (rows - 1) * gap + margin
    thumbs = tuple(
        (
            margin + (i % columns) * (thumb_w + gap),
            header + margin + (i // columns) * (tile_h + gap),
        )
        for i in range(shots)
    )
    return SheetLayout(sheet_w, sheet_h, header, thumb_w, thumb_h, caption_h, thumbs)


def _duration_text(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}:{secs:02d}"


def write_contact_sheet(
    board: Storyboard,
    chains: dict[str, ClipChain],
    path: Path,
    columns: int = 4,
    *,
    frames: Mapping[str, np.ndarray] | None = None,
) -> Path:
    """One numbered, captioned thumbnail per shot on a dark sheet under a header."""
    from PIL import Image, ImageDraw

    frames = frames or middle_frames(board, chains)
    layout = contact_sheet_layout(len(board.shots), board.width, board.height, columns)
    sheet = Image.new("RGB", (layout.width, layout.height), BACKGROUND)
    draw = ImageDraw.Draw(sheet)

    # 1. header: title, shot count and the film's running time
    timeline = film_timeline(board, {sid: chain.num_frames for sid, chain in chains.items()})
    title_face, small = font(24), font(13)
    draw.text(
        (20, 14), fit_text(board.title, title_face, layout.width - 40), font=title_face, fill=TEXT
    )
    summary = (
        f"{len(board.shots)} shots · {_duration_text(timeline.seconds)} · "
        f"{board.width}x{board.height} @ {board.fps} fps"
    )
    draw.text((20, 44), summary, font=small, fill=MUTED)

    # 2. one tile per shot: thumbnail, number badge, caption
    badge_face = font(14)
    for index, shot in enumerate(board.shots):
        x, y = layout.thumbs[index]
        thumb = Image.fromarray(frames[shot.id]).resize(
            (layout.thumb_w, layout.thumb_h), Image.LANCZOS
        )
        sheet.paste(thumb, (x, y))
        badge = shot.id
        badge_w = int(badge_face.getlength(badge)) + 10
        draw.rectangle([x, y, x + badge_w, y + 20], fill=BACKGROUND)
        draw.text((x + 5, y + 10), badge, font=badge_face, fill=ACCENT, anchor="lm")
        line1 = f"{shot.camera.value} · {shot.duration:.1f} s · {shot.transition.value}"
        words = wrap_to_width(shot.action or shot.narration, small, layout.thumb_w)
        if len(words) > 2:  # a few words of the action: two lines at most
            words = [words[0], fit_text(" ".join(words[1:]), small, layout.thumb_w)]
        text_y = y + layout.thumb_h + 5
        draw.text((x, text_y), fit_text(line1, small, layout.thumb_w), font=small, fill=ACCENT)
        for row, line in enumerate(words):
            draw.text(
                (x, text_y + 18 * (row + 1)),
                fit_text(line, small, layout.thumb_w),
                font=small,
                fill=TEXT,
            )

    path = Path(path)
    with atomic_path(path) as tmp:
        sheet.save(tmp, format="PNG")
    return path
