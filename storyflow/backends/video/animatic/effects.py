"""What goes over the scenery: colour grading, rain and snow, lightning, the tilt-shift
blur, and the previz overlays (figure labels, the camera tag, the caption band).

Grading is applied once to each layer and to each figure's colours, never per frame;
particles (scrolled from sheets drawn once), flashes and overlays are laid per frame in
screen space, on the frame as a numpy array (OpenCV's 8-bit arithmetic: a frame is a few
vectorised passes, not a per-pixel loop). Pictures laid over a frame are kept
*premultiplied* (see `premultiplied`), so laying one is a multiply and an add.
"""

from __future__ import annotations

import math
from functools import cached_property
from typing import Any

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from storyflow.backends.video.animatic.scene import RGB, Scene, _digest_int

# ---------------------------------------------------------------- pixels


def premultiplied(image: Image.Image, grade: Grade | None = None) -> np.ndarray:
    """An RGB or RGBA picture (graded by `grade`, if given) as (h, w, 4) uint8: its colour times its opacity, then
    its clearness (255 - alpha).

    Bilinear resampling of such pixels is exact at the edges (no fringes from the colour of
    transparent pixels), and laying them over a frame is frame * clearness / 255 + colour (`lay`)."""
    rgb = image.convert("RGB")
    if grade is not None and not grade.identity:
        rgb = rgb.convert("RGB", matrix=grade.matrix)  # one pass in C, clipped and rounded
    colour = np.asarray(rgb)
    if image.mode != "RGBA":
        return cv2.merge([colour, np.zeros(colour.shape[:2], np.uint8)])
    alpha = np.asarray(image.getchannel("A"))
    return cv2.merge([cv2.multiply(colour, cv2.cvtColor(alpha, cv2.COLOR_GRAY2RGB), scale=1 / 255), 255 - alpha])


def lay(under: np.ndarray, picture: np.ndarray) -> None:
    """Lay premultiplied `picture` (h, w, 4) over `under` (h, w, 3), in place (`under` may be a view into a frame)."""
    clear = cv2.cvtColor(cv2.extractChannel(picture, 3), cv2.COLOR_GRAY2RGB)
    cv2.multiply(under, clear, dst=under, scale=1 / 255)
    cv2.add(under, cv2.cvtColor(picture, cv2.COLOR_RGBA2RGB), dst=under)


class Extent:
    """An ImageDraw that remembers the box of what it drew (figures: where the foreground lies again over them)."""

    def __init__(self, draw: ImageDraw.ImageDraw):
        self.draw = draw
        self.box = [math.inf, math.inf, -math.inf, -math.inf]

    def _grow(self, xs: Any, ys: Any, reach: float) -> None:
        box = self.box
        box[0], box[1] = min(box[0], min(xs) - reach), min(box[1], min(ys) - reach)
        box[2], box[3] = max(box[2], max(xs) + reach), max(box[3], max(ys) + reach)

    def polygon(self, xy: Any, fill: Any = None) -> None:
        self._grow(*zip(*xy), 1.0)  # figures draw with lists of (x, y) points
        self.draw.polygon(xy, fill=fill)

    def line(self, xy: Any, fill: Any = None, width: int = 1) -> None:
        self._grow(*zip(*xy), width / 2 + 1.0)
        self.draw.line(xy, fill=fill, width=width)

    def ellipse(self, xy: Any, fill: Any = None) -> None:
        x0, y0, x1, y1 = xy
        self._grow((x0, x1), (y0, y1), 1.0)
        self.draw.ellipse(xy, fill=fill)


def draw_on(frame: np.ndarray, shapes: Any) -> None:
    """Run `shapes(draw)` (ImageDraw calls) on a numpy frame, in place (for rare overlays: birds, bolts)."""
    image = Image.fromarray(frame)
    shapes(ImageDraw.Draw(image))
    frame[:] = np.asarray(image)


# ---------------------------------------------------------------- grading


class Grade:
    """The palette words as a colour transform: tint, saturation, pastel, neon, sepia, noir."""

    def __init__(self, scene: Scene, saturation: float = 1.0):
        self.styles = scene.styles
        self.tint = scene.tint
        self.saturation = saturation
        if "neon" in self.styles:
            self.saturation *= 1.35
        if "pastel" in self.styles:
            self.saturation *= 0.6
        if "muted" in self.styles:
            self.saturation *= 0.7
        if "vivid" in self.styles:
            self.saturation *= 1.25

    @property
    def identity(self) -> bool:
        return not self.styles and self.tint is None and self.saturation == 1.0

    def array(self, rgb: np.ndarray) -> np.ndarray:
        """Grade uint8 pixels (..., 3); returns uint8."""
        if self.identity:
            return rgb
        return np.clip(self._unclipped(rgb.astype(np.float32)), 0, 255).astype(np.uint8)

    def _unclipped(self, out: np.ndarray) -> np.ndarray:
        """The grade's steps on float pixels, before clipping: each is affine, so together they are one matrix."""
        if self.tint is not None:
            colour, strength = self.tint
            multiplier = np.array(colour, np.float32) / max(1.0, float(np.mean(colour)))
            out *= 1.0 - strength + strength * multiplier
        if self.saturation != 1.0:
            luma = _luma(out)[..., None]
            out = luma + (out - luma) * self.saturation
        if "pastel" in self.styles:
            out = 0.7 * out + 0.3 * 238.0
        if "watercolor" in self.styles:
            out = 0.85 * out + 0.15 * 250.0
        if "neon" in self.styles:
            out *= np.array([1.1, 0.88, 1.15], np.float32)
        if "sepia" in self.styles:
            luma = (_luma(out) - 128.0) * 1.1 + 128.0
            out = luma[..., None] * np.array([1.07, 0.86, 0.62], np.float32)
        if "noir" in self.styles:
            luma = (_luma(out) - 128.0) * 1.3 + 128.0
            out = np.repeat(luma[..., None], 3, axis=-1)
        return out

    @cached_property
    def matrix(self) -> tuple[float, ...]:
        """The grade as Image.convert's 12-number RGB matrix (rows of 3 weights and an offset)."""
        points = np.array([[0, 0, 0], [100, 0, 0], [0, 100, 0], [0, 0, 100]], np.float64)
        graded = self._unclipped(points)
        offset, weights = graded[0], (graded[1:] - graded[0]).T / 100.0
        return tuple(float(v) for v in np.column_stack([weights, offset]).reshape(-1))

    def colour(self, colour: RGB) -> RGB:
        graded = self.array(np.array([[colour]], np.uint8))
        return tuple(int(v) for v in graded[0, 0])  # type: ignore[return-value]

    def image(self, image: Image.Image) -> Image.Image:
        """Grade an RGB or RGBA image (alpha untouched)."""
        if self.identity:
            return image
        graded = image.convert("RGB").convert("RGB", matrix=self.matrix)  # one pass in C, clipped and rounded
        if image.mode == "RGBA":
            graded.putalpha(image.getchannel("A"))
        return graded


def _luma(pixels: np.ndarray) -> np.ndarray:
    return pixels[..., 0] * 0.299 + pixels[..., 1] * 0.587 + pixels[..., 2] * 0.114


# ---------------------------------------------------------------- rain and snow

PIXEL = np.dtype((np.void, 3))  # an RGB pixel as one item


class Weather:
    """Falling rain or snow: particles that live in the shot's time, drawn in screen space.

    Drops of about the same nearness fall at one speed, so each such band of drops is drawn
    once on a sheet that tiles the screen; a frame shows every sheet scrolled to its place
    (snowflakes also share their sway's rhythm within a band), which costs a few copies
    instead of hundreds of strokes.
    """

    RAIN_BANDS = 6  # nearness bands of rain
    SNOW_BANDS, SNOW_RHYTHMS = 3, 3  # nearness bands x phases of the flakes' sway

    def __init__(self, scene: Scene, width: int, height: int, grade: Grade):
        self.width, self.height = width, height
        weather = scene.weather
        self.kind = "snow" if "snow" in weather else "rain" if "rain" in weather else None
        if scene.setting in ("interior", "cave", "space"):
            self.kind = None  # indoors the weather is only seen through windows
        self.windy = "wind" in weather
        if self.kind is None:
            return
        heavy = "storm" in weather  # the same number of drops at any size: the same picture
        count = (420 if heavy else 260) if self.kind == "rain" else 300
        rng = np.random.default_rng(_digest_int("animatic-particles", scene.world_seed, self.kind) % (1 << 63))
        near = rng.uniform(0.35, 1.0, count)  # 1: close to the camera, bigger, faster, brighter
        x0, y0 = rng.random(count), rng.random(count)
        sway = rng.uniform(0, 2 * math.pi, count)
        look = scene.look
        if self.kind == "rain":
            self.colour = grade.colour(look.lit((200, 210, 230), 1.0))
            self.colour = tuple(max(v, 90) for v in self.colour)  # type: ignore[assignment]
            self.slant = 0.28 if self.windy else 0.08
        else:
            self.colour = grade.colour(tuple(max(150, round(255 * min(1.0, v + 0.35))) for v in look.light))  # type: ignore[arg-type]
            self.slant = 0.0
        self.mask = np.zeros((height, width), np.uint8)
        self.paint = np.array(self.colour, np.uint16) * np.arange(256, dtype=np.uint16)[:, None] + 127  # by coverage
        self.sheets = self._sheets(near, x0, y0, sway)

    def _sheets(self, near: np.ndarray, x0: np.ndarray, y0: np.ndarray, sway: np.ndarray) -> list[tuple[np.ndarray, float, float]]:
        """(sheet tiled 2 x 2, its nearness, its sway phase) per band of particles."""
        h, u = self.height, self.height / 360
        bands = self.RAIN_BANDS if self.kind == "rain" else self.SNOW_BANDS
        edges = np.linspace(0.35, 1.0, bands + 1)
        band = np.clip(np.searchsorted(edges, near, side="right") - 1, 0, bands - 1)
        rhythms = 1 if self.kind == "rain" else self.SNOW_RHYTHMS
        rhythm = np.floor(sway / (2 * math.pi) * rhythms).astype(int) % rhythms
        sheets = []
        for b in range(bands):
            for r in range(rhythms):
                chosen = (band == b) & (rhythm == r)
                if not chosen.any():
                    continue
                depth = float(near[chosen].mean())
                span_x, span_y = self._span(depth)
                sheet = Image.new("L", (span_x, span_y), 0)
                pen = ImageDraw.Draw(sheet)
                for n, xs, ys in zip(near[chosen].tolist(), (x0[chosen] * span_x).tolist(), (y0[chosen] * span_y).tolist()):
                    for dx, dy in ((0, 0), (-span_x, 0), (0, -span_y), (-span_x, -span_y)):  # wrapped across the edges
                        x, y = xs + dx, ys + dy
                        if self.kind == "rain":
                            length = (0.03 + 0.06 * n) * h
                            y -= 0.5 * length
                            reach = (x, y, x + self.slant * length, y + length)
                            if _off_sheet(reach, span_x, span_y, margin=2 + 2 * u):  # most wrapped copies
                                continue
                            pen.line([reach[:2], reach[2:]], fill=int(70 + 130 * n), width=max(1, round(n * 1.6 * u)))
                        else:
                            radius = max(0.7, (0.6 + 1.8 * n) * u)
                            reach = (x - radius, y - radius, x + radius, y + radius)
                            if not _off_sheet(reach, span_x, span_y, margin=2):
                                pen.ellipse(reach, fill=int(120 + 135 * n))
                sheets.append((np.tile(np.asarray(sheet), (2, 2)), depth, (r + 0.5) / rhythms * 2 * math.pi))
        return sheets

    def _span(self, near: float) -> tuple[int, int]:
        """The period of a band's pattern across and down the screen, in whole pixels."""
        w, h = self.width, self.height
        if self.kind == "rain":
            return round(w + 0.3 * h), round(h + (0.03 + 0.06 * near) * h)
        return round(w + 0.1 * h), round(h + 0.05 * h)

    def draw(self, frame: np.ndarray, t: float, shift: tuple[float, float]) -> None:
        """Draw the particles on `frame` (in place) at `t` seconds; `shift` is the camera's screen motion at the ground."""
        if self.kind is None:
            return
        w, h = self.width, self.height
        mask = self.mask
        mask.fill(0)
        for sheet, near, phase in self.sheets:
            if self.kind == "rain":
                speed = (1.1 + 0.9 * near) * h
                x = self.slant * speed * t + shift[0] * near - 0.15 * h
                y = speed * t + shift[1] * near
            else:
                speed = (0.05 + 0.11 * near) * h
                drift = (0.08 * w if self.windy else 0.0) * t
                x = drift * near + 0.02 * w * near * math.sin(1.3 * t + phase) + shift[0] * near - 0.05 * h
                y = speed * t + shift[1] * near - 0.025 * h
            span_y, span_x = sheet.shape[0] // 2, sheet.shape[1] // 2
            top, left = round(-y) % span_y, round(-x) % span_x  # screen (0, 0) on the sheet
            cv2.max(mask, sheet[top : top + h, left : left + w], dst=mask)
        # frame + (colour - frame) * mask / 255, on the few pixels a particle covers (a twentieth of them)
        where = np.flatnonzero(mask > 0)  # (a boolean mask is found ten times faster)
        cover = mask.reshape(-1)[where].astype(np.uint16)
        pixels = frame.reshape(-1).view(PIXEL)  # a pixel as one item: gathered and scattered at once
        lit = pixels[where].view(np.uint8).reshape(-1, 3).astype(np.uint16)
        lit *= (255 - cover)[:, None]
        lit += self.paint[cover]
        lit //= 255
        pixels[where] = lit.astype(np.uint8).view(PIXEL).reshape(-1)


def _off_sheet(reach: tuple[float, float, float, float], width: int, height: int, margin: float) -> bool:
    """Whether a stroke from (x0, y0) to (x1, y1) (or an ellipse in that box) lies wholly off a width x height sheet,
    farther than `margin` (more than the pen's width) from its edges."""
    x0, y0, x1, y1 = reach
    off_x = max(x0, x1) < -margin or min(x0, x1) > width + margin
    return off_x or max(y0, y1) < -margin or min(y0, y1) > height + margin


# ---------------------------------------------------------------- birds


class Flock:
    """Birds circling high in the sky when the prompt mentions gulls, crows or a flock."""

    def __init__(self, scene: Scene, width: int, height: int, grade: Grade):
        self.active = "birds" in scene.props and scene.setting not in ("interior", "cave", "space")
        self.width, self.height = width, height
        rng = np.random.default_rng(_digest_int("animatic-flock", scene.world_seed) % (1 << 63))
        count = 6
        self.centre = np.stack([rng.uniform(0.25, 0.75, count) * width, rng.uniform(0.1, 0.3, count) * height], axis=1)
        self.radius = rng.uniform(0.05, 0.12, count) * width
        self.speed = rng.uniform(0.35, 0.6, count) * rng.choice([-1.0, 1.0], count)
        self.offset = rng.uniform(0, 2 * math.pi, count)
        self.colour = grade.colour(scene.look.lit((45, 45, 52), 3.0))

    def draw(self, frame: np.ndarray, t: float, shift: tuple[float, float]) -> None:
        if not self.active:
            return
        size = 0.012 * self.height

        def birds(pen: ImageDraw.ImageDraw) -> None:
            for (cx, cy), r, w, a in zip(self.centre.tolist(), self.radius.tolist(), self.speed.tolist(), self.offset.tolist()):
                angle = w * t + a
                x, y = cx + r * math.cos(angle) + 0.3 * shift[0], cy + 0.35 * r * math.sin(angle) + 0.3 * shift[1]
                flap = math.sin(2 * math.pi * 2.5 * t + 3 * a)
                tip = size * (0.2 + 0.6 * flap)
                pen.line([(x - 2 * size, y - tip), (x, y), (x + 2 * size, y - tip)], fill=self.colour, width=max(1, round(size / 2.5)))

        draw_on(frame, birds)


# ---------------------------------------------------------------- lightning


class Lightning:
    """Flashes at moments fixed by the seed (so a seam never moves them), with a bolt."""

    PATTERN = (1.0, 0.35, 0.85, 0.3, 0.1)

    def __init__(self, scene: Scene, fps: int, width: int, height: int, quiet: tuple[range, ...] = ()):
        self.active = "lightning" in scene.weather
        self.quiet = quiet  # shot frames that never flash
        self.seed, self.fps, self.width, self.height = scene.world_seed, fps, width, height
        self.bucket = max(len(self.PATTERN) + 2, round(1.7 * fps))
        self.horizon = 0.6 * height

    def _strike(self, bucket: int) -> tuple[int, np.random.Generator] | None:
        rng = np.random.default_rng([self.seed % (1 << 63), bucket + (1 << 40)])
        if rng.random() > 0.55:
            return None
        start = bucket * self.bucket + int(rng.integers(0, self.bucket - len(self.PATTERN)))
        return start, rng

    def apply(self, image: np.ndarray, k: int) -> np.ndarray:
        """Frame `k` lit up if it falls in a flash (else `image` itself)."""
        if not self.active or any(k in frames for frames in self.quiet):
            return image
        strike = self._strike(k // self.bucket)
        if strike is None:
            return image
        start, rng = strike
        step = k - start
        if not 0 <= step < len(self.PATTERN):
            return image
        strength = self.PATTERN[step]
        flash = np.empty_like(image)
        flash[:] = (225, 230, 255)
        image = cv2.addWeighted(image, 1.0 - 0.5 * strength, flash, 0.5 * strength, 0.0)
        if step in (0, 2):  # the bolt itself
            x, y = self.width * rng.uniform(0.15, 0.85), 0.0
            points = [(x, y)]
            while y < self.horizon * rng.uniform(0.7, 1.0):
                x += self.width * rng.uniform(-0.04, 0.04)
                y += self.height * rng.uniform(0.04, 0.09)
                points.append((x, y))
            draw_on(image, lambda pen: pen.line(points, fill=(250, 250, 255), width=max(1, round(self.height / 180))))
        return image


# ---------------------------------------------------------------- tilt shift


class TiltShift:
    """The miniature look: the top and bottom of the frame fall out of focus."""

    def __init__(self, width: int, height: int):
        rows = np.arange(height, dtype=np.float32) / height
        band = np.clip(np.maximum((0.34 - rows) / 0.22, (rows - 0.66) / 0.22), 0, 1)
        weight = (band * 255).astype(np.uint8)
        self.size = (width, height)
        self.small = (max(1, width // 4), max(1, height // 4))
        # rows wholly blurred are copied from the blurred picture; only the ramps between blend; the middle stays sharp
        whole = weight == 255
        ramp = (weight > 0) & ~whole
        self.copies = _runs(whole)
        self.blends = []
        for top, bottom in _runs(ramp):
            rows = np.repeat(weight[top:bottom, None, None], width, axis=1).repeat(3, axis=2)
            self.blends.append((top, bottom, rows, 255 - rows))

    def apply(self, frame: np.ndarray) -> np.ndarray:
        """Blur the top and bottom of `frame` (in place): a quarter-size picture, enlarged."""
        (w, h), (sw, sh) = self.size, self.small
        if (w, h) == (4 * sw, 4 * sh):  # two halvings: OpenCV's fast path (a 4 x 4 mean, give or take a level)
            half = cv2.resize(frame, (2 * sw, 2 * sh), interpolation=cv2.INTER_AREA)
            small = cv2.resize(half, self.small, interpolation=cv2.INTER_AREA)
        else:
            small = cv2.resize(frame, self.small, interpolation=cv2.INTER_AREA)
        blurred = cv2.resize(small, self.size, interpolation=cv2.INTER_LINEAR)
        for top, bottom in self.copies:
            frame[top:bottom] = blurred[top:bottom]
        for top, bottom, weight, keep in self.blends:  # frame + (blurred - frame) * weight / 255
            rows = frame[top:bottom]
            cv2.multiply(rows, keep, dst=rows, scale=1 / 255)
            cv2.add(rows, cv2.multiply(blurred[top:bottom], weight, scale=1 / 255), dst=rows)
        return frame


def _runs(rows: np.ndarray) -> list[tuple[int, int]]:
    """(start, end) of each run of True in a 1-d mask."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], rows.astype(np.int8), [0]])))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2])]


# ---------------------------------------------------------------- overlays


def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Pillow's bundled scalable font (FreeType), at `size` pixels."""
    return ImageFont.load_default(size=size)


class Sprite:
    """A pre-rendered RGBA picture pasted per frame (text is rendered once)."""

    def __init__(self, image: Image.Image):
        self.picture = premultiplied(image)
        self.size = image.size

    def paste(self, frame: np.ndarray, x: float, y: float) -> None:
        """Lay the sprite on `frame` with its corner at (x, y), cut at the frame's edges."""
        h, w = frame.shape[:2]
        x, y = round(x), round(y)
        left, top, right, bottom = max(0, x), max(0, y), min(w, x + self.size[0]), min(h, y + self.size[1])
        if left < right and top < bottom:
            lay(frame[top:bottom, left:right], self.picture[top - y : bottom - y, left - x : right - x])


def text_size(height: int, width: int, fraction: float, smallest: int) -> int:
    """A font size that scales with the frame (and stays readable on small frames)."""
    return max(smallest, round(fraction * min(height, 1.25 * width)))


def caption_sprite(text: str, width: int, height: int) -> tuple[Sprite, int] | None:
    """The caption in a semi-transparent band; returns the sprite and its top y."""
    text = " ".join(text.split())
    if not text:
        return None
    size = text_size(height, width, 0.045, 10)
    face = font(size)
    lines = wrap(text, face, width * 0.92, max_lines=3)
    line_h = round(size * 1.25)
    pad = max(3, size // 3)
    band_h = line_h * len(lines) + 2 * pad
    band = Image.new("RGBA", (width, band_h), (0, 0, 0, 150))
    pen = ImageDraw.Draw(band)
    for i, line in enumerate(lines):
        x = (width - text_length(face, line)) / 2
        draw_words(pen, (x, pad + i * line_h), line, face, (255, 255, 255, 255))
    return Sprite(band), height - band_h


def tag_sprite(text: str, width: int, height: int) -> Sprite:
    """A small top-left tag naming the camera move, like a previz slate."""
    size = text_size(height, width, 0.032, 9)
    face = font(size)
    pad = max(2, size // 4)
    dot = size * 0.55
    w = round(text_length(face, text) + dot + 3 * pad)
    image = Image.new("RGBA", (w, size + 2 * pad), (0, 0, 0, 140))
    pen = ImageDraw.Draw(image)
    cy = pad + size / 2
    pen.ellipse((pad, cy - dot / 2, pad + dot, cy + dot / 2), fill=(230, 50, 50, 255))
    draw_words(pen, (2 * pad + dot, pad + size * 0.05), text, face, (255, 255, 255, 255))
    return Sprite(image)


def label_sprite(name: str, width: int, height: int) -> Sprite:
    """A figure's name: white with a dark outline, readable on any background."""
    size = text_size(height, width, 0.04, 9)
    face = font(size)
    stroke = max(1, size // 8)
    _, top, _, bottom = face.getbbox(name, stroke_width=stroke)
    image = Image.new("RGBA", (round(text_length(face, name)) + 2 * stroke + 2, bottom - top + 2), (0, 0, 0, 0))
    draw_words(ImageDraw.Draw(image), (1 + stroke, 1 - top), name, face, (255, 255, 255, 255),
               stroke_width=stroke, stroke_fill=(20, 20, 20, 255))  # fmt: skip
    return Sprite(image)


def space_width(face: ImageFont.FreeTypeFont | ImageFont.ImageFont) -> float:
    """A word gap that stays visible at small sizes (hinting squeezes the font's own space)."""
    return max(face.getlength(" "), 0.3 * getattr(face, "size", 10))


def text_length(face: ImageFont.FreeTypeFont | ImageFont.ImageFont, text: str,
                known: dict[str, float] | None = None) -> float:  # fmt: skip
    """The width of `text` drawn by `draw_words`; `known`: widths of words measured before (wrapping measures each
    line again every time it grows a word), filled in as it goes."""
    words = text.split(" ")
    known = {} if known is None else known
    for word in words:
        if word not in known:
            known[word] = face.getlength(word)
    return sum(known[word] for word in words) + space_width(face) * (len(words) - 1)


def draw_words(pen: ImageDraw.ImageDraw, xy: tuple[float, float], text: str,
               face: ImageFont.FreeTypeFont | ImageFont.ImageFont, fill: tuple[int, int, int, int], **style: Any) -> None:  # fmt: skip
    """Draw text word by word with `space_width` gaps (`style`: stroke_width, stroke_fill)."""
    x, y = xy
    for word in text.split(" "):
        pen.text((x, y), word, font=face, fill=fill, **style)
        x += face.getlength(word) + space_width(face)


def wrap(text: str, face: ImageFont.FreeTypeFont | ImageFont.ImageFont, width: float, max_lines: int) -> list[str]:
    """Greedy word wrap to `width` pixels; an ellipsis marks text that did not fit."""
    lines: list[str] = []
    current = ""
    known: dict[str, float] = {}
    for word in text.split():
        trial = f"{current} {word}".strip()
        if text_length(face, trial, known) <= width or not current:
            current = trial
        else:
            lines.append(current)
            current = word
    if current:
        lines.append(current)
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        last = lines[-1]
        while last and text_length(face, last + "…", known) > width:
            last = last[:-1]
        lines[-1] = last.rstrip() + "…"
    return lines
