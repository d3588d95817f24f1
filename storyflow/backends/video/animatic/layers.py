"""The animatic's scenery: flat layers at depths, drawn once per clip in world coordinates.

A setting is a stack of layers, like the flats of a theatre or a multiplane camera:
the sky (or a back wall), far silhouettes, mid elements (trees, buildings, waves), the
ground the figures stand on, and a sparse foreground. Each layer's drawing is a function
of *world* position only (elements are placed per world cell from the scene's seed), so
the same place looks the same whatever part of it a camera move reveals, in every clip
of a shot and in every shot that shares the setting and seed.

World coordinates are the screen's pixels at rest (camera at its start pose, zoom 1);
`Canvas` maps them to the layer image, which may cover more than the screen and may be
drawn at a lower density when a long camera move needs a very wide layer.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from storyflow.backends.video.animatic.scene import RGB, Look, Scene, _mix

# Depths of the flats. Depth 1 is where the figures stand.
SKY = math.inf
FAR = 7.0
MID = 2.6
GROUND = 1.0
FRONT = 0.55


@dataclass(frozen=True)
class Ctx:
    """What every drawing function needs: the scene, its light, and the frame's geometry."""

    scene: Scene
    width: int
    height: int
    horizon: float  # world y where land meets sky
    ground_line: float  # world y of the figures' feet

    @property
    def look(self) -> Look:
        return self.scene.look

    @property
    def u(self) -> float:
        """One 'unit': a pixel at 360 lines, so shapes keep their proportions at any size."""
        return self.height / 360.0

    def lit(self, albedo: RGB, depth: float) -> RGB:
        return self.look.lit(albedo, depth)

    def glow(self, colour: RGB, depth: float) -> RGB:
        return self.look.glow(colour, depth)

    def accent(self, index: int, fallback: RGB) -> RGB:
        accents = self.scene.accents
        return accents[index % len(accents)] if accents else fallback


@dataclass(frozen=True)
class LayerSpec:
    """One flat: its name, depth, how it is drawn, and how the wind and water move it."""

    name: str
    depth: float
    draw: Callable[[Canvas, Ctx], None]
    sway: float = 0.0  # how much the wind bends it (shear)
    bob: float = 0.0  # vertical bobbing, in units (waves)


# ---------------------------------------------------------------- canvas


class Canvas:
    """A layer image addressed in world coordinates."""

    def __init__(self, bounds: tuple[float, float, float, float], density: float, mode: str, fill: RGB, seed: int):
        self.x0, self.y0, self.x1, self.y1 = bounds
        self.r = density
        size = (max(1, math.ceil((self.x1 - self.x0) * density)), max(1, math.ceil((self.y1 - self.y0) * density)))
        colour = fill if mode == "RGB" else (*fill, 0)  # transparent pixels keep a matte colour: no dark fringes
        self.image = Image.new(mode, size, colour)
        self.draw = ImageDraw.Draw(self.image)
        self.seed = seed

    # coordinates
    def p(self, x: float, y: float) -> tuple[float, float]:
        return ((x - self.x0) * self.r, (y - self.y0) * self.r)

    def row_y(self) -> np.ndarray:
        """World y of every pixel row's centre."""
        return self.y0 + (np.arange(self.image.height) + 0.5) / self.r

    def col_x(self) -> np.ndarray:
        return self.x0 + (np.arange(self.image.width) + 0.5) / self.r

    def xs(self, step: float, margin: float = 0.0) -> np.ndarray:
        """World x samples across the canvas, aligned to a world grid (same points in every clip)."""
        first = math.floor((self.x0 - margin) / step) - 1
        last = math.ceil((self.x1 + margin) / step) + 1
        return np.arange(first, last + 1) * step

    # shapes
    def polygon(self, points: list[tuple[float, float]], fill: RGB) -> None:
        self.draw.polygon([self.p(x, y) for x, y in points], fill=fill)

    def rect(self, x0: float, y0: float, x1: float, y1: float, fill: RGB) -> None:
        (a, b), (c, d) = self.p(x0, y0), self.p(x1, y1)
        if c - a > 0.25 and d - b > 0.25:  # PIL's corners are inclusive
            self.draw.rectangle((a, b, max(a, c - 1), max(b, d - 1)), fill=fill)

    def ellipse(self, cx: float, cy: float, rx: float, ry: float, fill: RGB) -> None:
        (a, b), (c, d) = self.p(cx - rx, cy - ry), self.p(cx + rx, cy + ry)
        if c - a >= 1 and d - b >= 1:
            self.draw.ellipse((a, b, c, d), fill=fill)

    def line(self, points: list[tuple[float, float]], fill: RGB, width: float) -> None:
        self.draw.line([self.p(x, y) for x, y in points], fill=fill, width=max(1, round(width * self.r)))

    def fill_below(self, xs: np.ndarray, ys: np.ndarray, fill: RGB) -> None:
        """Fill from a silhouette line down to the canvas bottom."""
        bottom = self.y1 + 2
        points = list(zip(xs.tolist(), ys.tolist())) + [(float(xs[-1]), bottom), (float(xs[0]), bottom)]
        self.polygon(points, fill)

    def cells(self, spacing: float, key: str, margin: float) -> Iterator[tuple[float, np.random.Generator]]:
        """A random generator per world cell of `spacing` pixels that touches the canvas."""
        salt = _salt(self.seed, key)
        first = math.floor((self.x0 - margin) / spacing)
        last = math.ceil((self.x1 + margin) / spacing)
        for index in range(first, last + 1):
            yield index * spacing, np.random.default_rng([salt, index + (1 << 40)])


def _salt(seed: int, key: str) -> int:
    data = f"{seed}\x1f{key}".encode()
    return int.from_bytes(hashlib.sha256(data).digest()[:8], "big")


def hash01(seed: int, key: str, index: np.ndarray) -> np.ndarray:
    """Uniform [0, 1) values, one per integer index, stable for a seed and key (splitmix64)."""
    z = np.asarray(index, dtype=np.int64).view(np.uint64) + np.uint64(_salt(seed, key))
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def noise1d(seed: int, key: str, xs: np.ndarray, wavelength: float, sharp: bool = False) -> np.ndarray:
    """Smooth value noise in [0, 1] along world x; `sharp` makes peaks (mountains)."""
    pos = xs / wavelength
    index = np.floor(pos).astype(np.int64)
    f = pos - index
    a, b = hash01(seed, key, index), hash01(seed, key, index + 1)
    if not sharp:
        f = f * f * (3 - 2 * f)
    return a + (b - a) * f


def ridge(cv: Canvas, key: str, base: float, amp: float, wavelength: float, sharp: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """A silhouette line: y = base - amp * noise, with a finer second octave."""
    step = max(2.0 / cv.r, wavelength / 20)
    xs = cv.xs(step, margin=wavelength)
    n = 0.72 * noise1d(cv.seed, key, xs, wavelength, sharp) + 0.28 * noise1d(cv.seed, key + "+", xs, wavelength / 3.3, sharp)
    return xs, base - amp * n


# ---------------------------------------------------------------- sky


def paint_sky(cv: Canvas, cx: Ctx) -> None:
    """Gradient, stars, sun or moon, clouds: the sky at infinity (or a space backdrop)."""
    look = cx.look
    # 1. gradient from the horizon colour up to the zenith colour
    y = cv.row_y()
    f = np.clip((cx.horizon - y) / (cx.horizon + 0.5 * cx.height), 0.0, 1.0) ** 0.75
    top, hor = np.array(look.sky_top, float), np.array(look.sky_horizon, float)
    rows = hor[None, :] + (top - hor)[None, :] * f[:, None]
    pixels = np.repeat(rows[:, None, :], cv.image.width, axis=1)

    # 2. stars: one candidate per world cell, kept by the night's star density
    if look.stars > 0:
        cell = 9.0 * cx.u
        xs, ys = cv.col_x(), y
        gx, gy = np.floor(xs / cell).astype(np.int64), np.floor(ys / cell).astype(np.int64)
        ids = gy[:, None] * 100003 + gx[None, :]
        chance = hash01(cv.seed, "stars", ids)
        spot = hash01(cv.seed, "star-spot", ids)
        centre_x = (gx[None, :] + 0.2 + 0.6 * spot) * cell
        centre_y = (gy[:, None] + 0.2 + 0.6 * (1 - spot)) * cell
        near = (np.abs(xs[None, :] - centre_x) < 0.6 * cx.u + 0.5 / cv.r) & (np.abs(ys[:, None] - centre_y) < 0.6 * cx.u + 0.5 / cv.r)
        above = (ys < cx.horizon - 0.02 * cx.height)[:, None]
        star = near & above & (chance < 0.16 * look.stars)
        bright = 150 + 105 * hash01(cv.seed, "star-bright", ids)
        pixels = np.where(star[..., None], np.maximum(pixels, bright[..., None]), pixels)

    # 3. the sun's glow and disc
    if look.sun is not None:
        sx, elevation, colour, radius = look.sun
        centre = (sx * cx.width, cx.horizon - elevation * cx.height)
        pixels = _glow(cv, pixels, centre, radius * cx.height, 0.45 * cx.height, colour, 0.55)
    if look.moon is not None or "moon" in cx.scene.props:
        mx, elevation = look.moon or (0.25, 0.35)
        strength = 0.25 if look.night else 0.08
        centre = (mx * cx.width, cx.horizon - elevation * cx.height)
        pixels = _glow(cv, pixels, centre, 0.045 * cx.height, 0.16 * cx.height, (235, 235, 215), strength)
    cv.image.paste(Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)))

    # 4. clouds, then the moon: one the prompt names shows through them
    if look.clouds > 0:
        draw_clouds(cv, cx)
    if look.moon is not None or "moon" in cx.scene.props:
        mx, elevation = look.moon or (0.25, 0.35)
        r = 0.045 * cx.height
        x, y0 = mx * cx.width, cx.horizon - elevation * cx.height
        cv.ellipse(x, y0, r, r, (235, 235, 215))
        for dx, dy, s in ((-0.3, -0.2, 0.22), (0.25, 0.15, 0.3), (-0.1, 0.4, 0.18)):
            cv.ellipse(x + dx * r, y0 + dy * r, s * r, s * r, (205, 205, 190))


def _glow(cv: Canvas, pixels: np.ndarray, centre: tuple[float, float], disc: float, reach: float, colour: RGB, strength: float) -> np.ndarray:
    """A disc with a soft halo, blended into sky pixels (only the box it reaches is touched)."""
    xs, ys = cv.col_x(), cv.row_y()
    most = max(disc, reach)
    cols, rows = np.flatnonzero(np.abs(xs - centre[0]) <= most), np.flatnonzero(np.abs(ys - centre[1]) <= most)
    if not len(cols) or not len(rows):
        return pixels
    box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    d = np.hypot(xs[None, box[1]] - centre[0], ys[box[0], None] - centre[1])
    halo = strength * np.clip(1 - d / reach, 0, 1) ** 2
    halo = np.where(d <= disc, 1.0, halo)
    region = pixels[box]
    pixels[box] = region + (np.array(colour, float) - region) * halo[..., None]
    return pixels


def draw_clouds(cv: Canvas, cx: Ctx) -> None:
    look, u = cx.look, cx.u
    shadow = _mix(look.cloud_colour, look.sky_top, 0.35)
    for x, rng in cv.cells(0.2 * cx.width, "clouds", margin=0.2 * cx.width):
        if rng.random() > look.clouds:
            continue
        y = cx.horizon - cx.height * (0.18 + 0.3 * rng.random())
        size = (18 + 26 * rng.random()) * u * (1.6 if look.clouds > 0.6 else 1.0)
        puffs = [(rng.uniform(-1.6, 1.6) * size, rng.uniform(-0.5, 0.2) * size, rng.uniform(0.5, 1.0) * size) for _ in range(5)]
        for dx, dy, r in puffs:
            cv.ellipse(x + dx, y + dy + 0.18 * size, r * 1.3, r * 0.7, shadow)
        for dx, dy, r in puffs:
            cv.ellipse(x + dx, y + dy, r * 1.3, r * 0.68, look.cloud_colour)


# ---------------------------------------------------------------- elements


def conifer(cv: Canvas, x: float, base: float, h: float, leaf: RGB, trunk: RGB) -> None:
    cv.rect(x - 0.035 * h, base - 0.18 * h, x + 0.035 * h, base, trunk)
    for i, (w, top) in enumerate(((0.42, 0.55), (0.33, 0.78), (0.22, 1.0))):
        low = base - (0.12 + 0.25 * i) * h
        cv.polygon([(x - w * h, low), (x + w * h, low), (x, base - top * h)], leaf)


def broadleaf(cv: Canvas, x: float, base: float, h: float, leaf: RGB, trunk: RGB) -> None:
    cv.polygon([(x - 0.05 * h, base), (x + 0.05 * h, base), (x + 0.03 * h, base - 0.6 * h), (x - 0.03 * h, base - 0.6 * h)], trunk)
    dark = tuple(int(c * 0.82) for c in leaf)
    cv.ellipse(x - 0.16 * h, base - 0.62 * h, 0.22 * h, 0.18 * h, dark)  # type: ignore[arg-type]
    cv.ellipse(x + 0.15 * h, base - 0.66 * h, 0.22 * h, 0.19 * h, dark)  # type: ignore[arg-type]
    cv.ellipse(x, base - 0.8 * h, 0.26 * h, 0.22 * h, leaf)


def tree_row(cv: Canvas, cx: Ctx, key: str, base: float, height: float, spacing: float, depth: float,
             chance: float = 0.85, kind: str = "mixed") -> None:  # fmt: skip
    leaf_conifer, leaf_broad = cx.lit((40, 90, 55), depth), cx.lit((70, 125, 55), depth)
    trunk = cx.lit((80, 55, 35), depth)
    if kind == "mixed" and "pines" in cx.scene.props:  # the prompt names the kind of tree
        kind = "conifer"
    elif kind == "mixed" and "leafy" in cx.scene.props:
        kind = "broadleaf"
    if "snow" in cx.scene.weather:
        leaf_conifer = cx.lit((170, 185, 190), depth)
    for x, rng in cv.cells(spacing, key, margin=height):
        if rng.random() > chance:
            continue
        h = height * rng.uniform(0.7, 1.2)
        xx = x + rng.uniform(0, spacing)
        b = base + rng.uniform(0, 0.02) * cx.height
        pick_conifer = kind == "conifer" or (kind == "mixed" and rng.random() < 0.55)
        if pick_conifer:
            conifer(cv, xx, b, h, leaf_conifer, trunk)
        else:
            broadleaf(cv, xx, b, h, leaf_broad, trunk)


def windows(cv: Canvas, cx: Ctx, rng: np.random.Generator, x0: float, y0: float, x1: float, y1: float,
            depth: float, size: float) -> None:  # fmt: skip
    """A grid of windows: lit at night, dark glass by day."""
    look = cx.look
    w, h, gap = size, size * 1.3, size * 0.9
    cols, rows = int((x1 - x0 - gap) // (w + gap)), int((y1 - y0 - gap) // (h + gap))
    glass = cx.lit((60, 75, 95), depth)
    for row in range(max(0, rows)):
        for col in range(max(0, cols)):
            wx, wy = x0 + gap + col * (w + gap), y0 + gap + row * (h + gap)
            if look.night and rng.random() < 0.45:
                colour = cx.glow(look.glow_colours[int(rng.integers(len(look.glow_colours)))], depth)
            elif look.night:
                colour = cx.lit((25, 25, 35), depth)
            else:
                colour = glass
            cv.rect(wx, wy, wx + w, wy + h, colour)


def building(cv: Canvas, cx: Ctx, rng: np.random.Generator, x: float, base: float, w: float, h: float, depth: float) -> None:
    wall = cx.lit(tuple(int(v) for v in rng.choice([[90, 95, 110], [120, 110, 100], [75, 85, 100], [140, 130, 120]])), depth)  # type: ignore[arg-type]
    cv.rect(x, base - h, x + w, base + 2, wall)
    if rng.random() < 0.3:  # antenna or water tower
        cv.rect(x + w * 0.45, base - h - 0.15 * h, x + w * 0.5, base - h, wall)
    windows(cv, cx, rng, x, base - h, x + w, base - 0.05 * h, depth, size=max(1.5, 3.2 * cx.u * (MID / depth) ** 0.5))


def house(cv: Canvas, cx: Ctx, rng: np.random.Generator, x: float, base: float, w: float, depth: float) -> None:
    h = w * rng.uniform(0.6, 0.85)
    wall = cx.lit(tuple(int(v) for v in rng.choice([[225, 210, 180], [200, 190, 170], [235, 225, 205], [190, 160, 130]])), depth)  # type: ignore[arg-type]
    roof = cx.lit(cx.accent(int(rng.integers(4)), tuple(int(v) for v in rng.choice([[150, 60, 45], [110, 70, 50], [80, 80, 90]]))), depth)  # type: ignore[arg-type]
    cv.rect(x, base - h, x + w, base + 2, wall)
    cv.polygon([(x - 0.08 * w, base - h), (x + 1.08 * w, base - h), (x + 0.5 * w, base - h - 0.55 * w)], roof)
    door = cx.lit((90, 60, 40), depth)
    cv.rect(x + 0.42 * w, base - 0.45 * h, x + 0.58 * w, base, door)
    lit = cx.look.night
    glass = cx.glow((255, 200, 110), depth) if lit else cx.lit((80, 100, 120), depth)
    for wx in (0.15, 0.68):
        cv.rect(x + wx * w, base - 0.75 * h, x + (wx + 0.17) * w, base - 0.5 * h, glass)


def rock(cv: Canvas, x: float, base: float, size: float, colour: RGB, rng: np.random.Generator) -> None:
    points = []
    for i in range(7):
        a = math.pi * i / 6
        r = size * rng.uniform(0.7, 1.1)
        points.append((x - math.cos(a) * r * 1.3, base - math.sin(a) * r * 0.8))
    cv.polygon(points, colour)


def grass_tufts(cv: Canvas, cx: Ctx, key: str, top: float, bottom: float, colour: RGB, spacing: float, size: float) -> None:
    """Small blades scattered over the ground so its motion reads on screen."""
    for x, rng in cv.cells(spacing, key, margin=size):
        for _ in range(2):
            xx, yy = x + rng.uniform(0, spacing), rng.uniform(top, bottom)
            s = size * (0.6 + 0.8 * (yy - top) / max(1.0, bottom - top))
            cv.polygon([(xx - s * 0.5, yy), (xx - s * 0.15, yy - s * 1.3), (xx, yy), (xx + s * 0.2, yy - s * 1.1), (xx + s * 0.5, yy)], colour)


def ground_band(cv: Canvas, cx: Ctx, top: np.ndarray | float, colour: RGB, far_colour: RGB | None = None) -> None:
    """The near ground: from its (possibly wavy) top edge down, lighter with distance."""
    if isinstance(top, float | int):
        xs = cv.xs(max(4.0 / cv.r, 8.0))
        ys = np.full(xs.shape, float(top))
    else:
        xs, ys = top  # type: ignore[misc]
    cv.fill_below(xs, ys, far_colour or colour)
    y_top = float(np.max(ys))
    steps = 8
    for i in range(1, steps + 1):
        y = y_top + (cx.height * 1.05 - y_top) * i / steps
        cv.rect(cv.x0 - 2, y - 1, cv.x1 + 2, cv.y1 + 2, _mix(far_colour or colour, colour, i / steps))


# ---------------------------------------------------------------- settings


def layers_for(scene: Scene) -> list[LayerSpec]:
    """The stack of flats for a scene's setting, back to front (the sky first)."""
    builder = SETTING_LAYERS.get(scene.setting, generic_layers)
    return builder(scene)


def horizon_of(scene: Scene) -> float:
    """Where the horizon sits, as a fraction of the frame height."""
    return {"sea": 0.55, "interior": 0.68, "space": 0.66, "cave": 0.66, "river": 0.57}.get(scene.setting, 0.6)


def sky_layer() -> LayerSpec:
    return LayerSpec("sky", SKY, paint_sky)


def front_grass(cv: Canvas, cx: Ctx) -> None:
    colour = cx.lit((55, 100, 45) if "snow" not in cx.scene.weather else (200, 205, 215), FRONT)
    for x, rng in cv.cells(0.18 * cx.width, "front-grass", margin=0.1 * cx.width):
        if rng.random() < 0.5:
            continue
        xx = x + rng.uniform(0, 0.18 * cx.width)
        for i in range(6):
            h = (25 + 35 * rng.random()) * cx.u
            bx = xx + (i - 3) * 4 * cx.u
            cv.polygon([(bx - 2.5 * cx.u, cx.height * 1.02), (bx + rng.uniform(-8, 8) * cx.u, cx.height * 1.02 - h), (bx + 2.5 * cx.u, cx.height * 1.02)], colour)
        if cx.scene.accents or cx.scene.setting in ("meadow",):
            flower = cx.lit(cx.accent(int(rng.integers(4)), (230, 200, 60)), FRONT)
            cv.ellipse(xx, cx.height * 1.02 - 30 * cx.u, 4 * cx.u, 4 * cx.u, flower)


def front_rocks(cv: Canvas, cx: Ctx) -> None:
    colour = cx.lit((85, 80, 75) if cx.scene.setting != "space" else (110, 105, 100), FRONT)
    if cx.scene.setting == "space" and cx.scene.variant == "mars":
        colour = cx.lit((150, 70, 40), FRONT)
    for x, rng in cv.cells(0.45 * cx.width, "front-rocks", margin=0.2 * cx.width):
        if rng.random() < 0.45:
            rock(cv, x + rng.uniform(0, 0.45 * cx.width), cx.height * 1.04, (30 + 30 * rng.random()) * cx.u, colour, rng)


# -- forest
def forest_layers(scene: Scene) -> list[LayerSpec]:
    def far(cv: Canvas, cx: Ctx) -> None:
        xs, ys = ridge(cv, "far-hills", cx.horizon, 0.16 * cx.height, 0.5 * cx.width)
        cv.fill_below(xs, ys, cx.lit((50, 80, 70), FAR))
        tree_row(cv, cx, "far-trees", cx.horizon - 0.02 * cx.height, 0.07 * cx.height, 9 * cx.u, FAR, 0.9, "conifer")

    def mid(cv: Canvas, cx: Ctx) -> None:
        base = cx.horizon + 0.05 * cx.height
        cv.rect(cv.x0 - 2, base - 2, cv.x1 + 2, cv.y1 + 2, cx.lit(_ground_albedo(cx, (60, 85, 45)), MID))
        tree_row(cv, cx, "mid-trees", base, 0.42 * cx.height, 0.075 * cx.width, MID, 0.8)

    def ground(cv: Canvas, cx: Ctx) -> None:
        top = ridge(cv, "ground-edge", cx.horizon + 0.12 * cx.height, 0.03 * cx.height, 0.4 * cx.width)
        ground_band(cv, cx, top, cx.lit(_ground_albedo(cx, (70, 80, 40)), GROUND), cx.lit(_ground_albedo(cx, (70, 80, 40)), 2.0))
        grass_tufts(cv, cx, "ground-ferns", cx.horizon + 0.15 * cx.height, cx.height, cx.lit(_ground_albedo(cx, (50, 95, 40)), GROUND), 0.05 * cx.width, 7 * cx.u)
        _props_on_ground(cv, cx)

    def front(cv: Canvas, cx: Ctx) -> None:
        bark = cx.lit((70, 50, 35), FRONT)
        for x, rng in cv.cells(0.85 * cx.width, "front-trunks", margin=0.2 * cx.width):
            if rng.random() < 0.55:
                xx, w = x + rng.uniform(0, 0.85 * cx.width), (0.05 + 0.04 * rng.random()) * cx.width
                cv.rect(xx, -cx.height * 2, xx + w, cx.height * 2, bark)
        front_grass(cv, cx)

    return [sky_layer(), LayerSpec("far", FAR, far), LayerSpec("mid", MID, mid, sway=0.5),
            LayerSpec("ground", GROUND, ground), LayerSpec("front", FRONT, front, sway=1.0)]  # fmt: skip


# -- city
def city_layers(scene: Scene) -> list[LayerSpec]:
    def far(cv: Canvas, cx: Ctx) -> None:
        base = cx.horizon
        cv.rect(cv.x0 - 2, base, cv.x1 + 2, cv.y1 + 2, cx.lit((70, 75, 90), FAR))
        for x, rng in cv.cells(0.05 * cx.width, "skyline", margin=0.1 * cx.width):
            w, h = rng.uniform(0.04, 0.07) * cx.width, rng.uniform(0.12, 0.38) * cx.height
            building(cv, cx, rng, x, base + 1, w, h, FAR)

    def mid(cv: Canvas, cx: Ctx) -> None:
        base = cx.horizon + 0.08 * cx.height
        cv.rect(cv.x0 - 2, base, cv.x1 + 2, cv.y1 + 2, cx.lit((95, 95, 100), MID))
        for x, rng in cv.cells(0.16 * cx.width, "buildings", margin=0.2 * cx.width):
            if rng.random() < 0.85:
                w, h = rng.uniform(0.1, 0.15) * cx.width, rng.uniform(0.3, 0.55) * cx.height
                building(cv, cx, rng, x + rng.uniform(0, 0.03) * cx.width, base, w, h, MID)
        pole = cx.lit((45, 45, 50), MID)
        for x, _ in cv.cells(0.22 * cx.width, "lamps", margin=0.1 * cx.width):
            cv.rect(x, base - 0.22 * cx.height, x + 2 * cx.u, base, pole)
            light = cx.glow((255, 220, 150), MID) if cx.look.night else cx.lit((200, 200, 190), MID)
            cv.ellipse(x + cx.u, base - 0.22 * cx.height, 5 * cx.u, 3 * cx.u, light)

    def ground(cv: Canvas, cx: Ctx) -> None:
        top = cx.horizon + 0.14 * cx.height
        wet = "rain" in cx.scene.weather
        ground_band(cv, cx, top, cx.lit((60, 60, 66) if wet else (78, 78, 82), GROUND))
        cv.rect(cv.x0 - 2, top, cv.x1 + 2, top + 0.05 * cx.height, cx.lit((130, 128, 122), GROUND))  # pavement
        mark = cx.lit((225, 215, 160), GROUND)
        lane = cx.height * 0.9
        for x, _ in cv.cells(0.12 * cx.width, "lane", margin=0.1 * cx.width):
            cv.rect(x, lane, x + 0.06 * cx.width, lane + 3 * cx.u, mark)
        _props_on_ground(cv, cx)

    def front(cv: Canvas, cx: Ctx) -> None:
        post = cx.lit((40, 40, 45), FRONT)
        for x, rng in cv.cells(0.9 * cx.width, "front-posts", margin=0.2 * cx.width):
            if rng.random() < 0.5:
                xx = x + rng.uniform(0, 0.9 * cx.width)
                cv.rect(xx, cx.height * 0.1, xx + 9 * cx.u, cx.height * 1.1, post)

    return [sky_layer(), LayerSpec("far", FAR, far), LayerSpec("mid", MID, mid),
            LayerSpec("ground", GROUND, ground), LayerSpec("front", FRONT, front)]  # fmt: skip


# -- sea, beach, harbour, lighthouse
def sea_layers(scene: Scene) -> list[LayerSpec]:
    def far(cv: Canvas, cx: Ctx) -> None:
        water_far, water_near = cx.lit((40, 90, 140), FAR), cx.lit((35, 80, 125), MID)
        xs = cv.xs(8.0)
        cv.fill_below(xs, np.full(xs.shape, cx.horizon), water_far)
        for i in range(1, 7):
            y = cx.horizon + (cx.height - cx.horizon) * i / 6
            cv.rect(cv.x0 - 2, y, cv.x1 + 2, cv.y1 + 2, _mix(water_far, water_near, i / 6))
        xs, ys = ridge(cv, "headland", cx.horizon, 0.07 * cx.height, 0.35 * cx.width)
        land = np.where(noise1d(cv.seed, "headland-mask", xs, 1.2 * cx.width) > 0.6, ys, cx.horizon + 1)
        cv.polygon(list(zip(xs.tolist(), land.tolist())) + [(float(xs[-1]), cx.horizon + 1), (float(xs[0]), cx.horizon + 1)], cx.lit((60, 75, 70), FAR))
        if cx.look.sun is not None or cx.look.moon is not None:  # glitter under the sun or moon
            sx = (cx.look.sun or (cx.look.moon[0], 0, (0, 0, 0), 0))[0] * cx.width  # type: ignore[index]
            glint = cx.glow((255, 235, 190) if cx.look.sun else (200, 205, 215), FAR)
            for x, rng in cv.cells(6 * cx.u, "glitter", 0):
                if abs(x - sx) < 0.08 * cx.width and rng.random() < 0.5:
                    y = cx.horizon + rng.uniform(0.01, 0.12) * cx.height
                    cv.rect(x, y, x + rng.uniform(3, 9) * cx.u, y + cx.u, glint)

    def mid(cv: Canvas, cx: Ctx) -> None:
        crest = cx.lit((200, 220, 230), MID)
        for row in range(5):
            y = cx.horizon + (0.03 + 0.035 * row) * cx.height
            for x, rng in cv.cells((30 + 12 * row) * cx.u, f"waves-{row}", 0):
                if rng.random() < 0.6:
                    w = (8 + 6 * row) * cx.u
                    cv.line([(x, y + 2 * cx.u), (x + w / 2, y), (x + w, y + 2 * cx.u)], crest, (1 + 0.4 * row) * cx.u)
        if scene.variant == "lighthouse" or "lighthouse" in scene.props:
            lighthouse(cv, cx, 0.78 * cx.width, cx.horizon + 0.08 * cx.height)
        if scene.variant == "harbour" or "boat" in scene.props:
            for x, rng in cv.cells(0.3 * cx.width, "boats", 0.1 * cx.width):
                if rng.random() < 0.6:
                    boat(cv, cx, x + rng.uniform(0, 0.2) * cx.width, cx.horizon + rng.uniform(0.05, 0.12) * cx.height, rng)

    def ground(cv: Canvas, cx: Ctx) -> None:
        top = ridge(cv, "shore", cx.horizon + 0.2 * cx.height, 0.025 * cx.height, 0.5 * cx.width)
        if scene.variant == "harbour":
            planks = cx.lit((110, 80, 55), GROUND)
            ground_band(cv, cx, top, planks)
            seam = cx.lit((80, 58, 40), GROUND)
            for i in range(8):
                y = cx.horizon + 0.24 * cx.height + i * 0.06 * cx.height
                cv.rect(cv.x0 - 2, y, cv.x1 + 2, y + cx.u, seam)
            for x, _ in cv.cells(0.25 * cx.width, "bollards", 0.1 * cx.width):
                cv.rect(x, cx.horizon + 0.14 * cx.height, x + 6 * cx.u, cx.horizon + 0.22 * cx.height, seam)
        else:
            foam = cx.lit((225, 230, 230), GROUND)
            xs, ys = top
            cv.polygon(list(zip(xs.tolist(), (ys - 3 * cx.u).tolist())) + list(zip(xs[::-1].tolist(), (ys[::-1] + 2 * cx.u).tolist())), foam)
            ground_band(cv, cx, (xs, ys + 2 * cx.u), cx.lit(_ground_albedo(cx, (215, 190, 140)), GROUND))
            grass_tufts(cv, cx, "sand-marks", float(ys.max()) + 8 * cx.u, cx.height, cx.lit(_ground_albedo(cx, (190, 165, 120)), GROUND), 0.06 * cx.width, 4 * cx.u)
        _props_on_ground(cv, cx)

    return [sky_layer(), LayerSpec("far", FAR, far), LayerSpec("mid", MID, mid, bob=1.5),
            LayerSpec("ground", GROUND, ground), LayerSpec("front", FRONT, front_rocks)]  # fmt: skip


def lighthouse(cv: Canvas, cx: Ctx, x: float, base: float) -> None:
    u, h = cx.u, 0.38 * cx.height
    rock(cv, x, base + 6 * u, 40 * u, cx.lit((70, 70, 72), MID), np.random.default_rng(7))
    white, red = cx.lit((235, 235, 230), MID), cx.lit((190, 45, 40), MID)
    w0, w1 = 16 * u, 10 * u
    for i in range(5):
        y0, y1 = base - h * i / 5, base - h * (i + 1) / 5
        a, b = w0 + (w1 - w0) * i / 5, w0 + (w1 - w0) * (i + 1) / 5
        cv.polygon([(x - a, y0), (x + a, y0), (x + b, y1), (x - b, y1)], white if i % 2 == 0 else red)
    lamp = cx.glow((255, 240, 170), MID) if cx.look.night or cx.look.fog else cx.lit((220, 220, 200), MID)
    cv.rect(x - 8 * u, base - h - 12 * u, x + 8 * u, base - h, lamp)
    cv.polygon([(x - 11 * u, base - h - 12 * u), (x + 11 * u, base - h - 12 * u), (x, base - h - 22 * u)], cx.lit((40, 40, 45), MID))
    if cx.look.night:
        beam = cx.glow((255, 245, 190), MID)
        cv.polygon([(x, base - h - 6 * u), (x - 0.5 * cx.width, base - h - 30 * u), (x - 0.5 * cx.width, base - h + 12 * u)], _mix(beam, cx.look.sky_horizon, 0.6))


def boat(cv: Canvas, cx: Ctx, x: float, y: float, rng: np.random.Generator) -> None:
    u = cx.u
    hull = cx.lit(cx.accent(int(rng.integers(4)), (150, 60, 45)), MID)
    cv.polygon([(x - 22 * u, y - 6 * u), (x + 22 * u, y - 6 * u), (x + 15 * u, y + 2 * u), (x - 15 * u, y + 2 * u)], hull)
    cv.rect(x - u, y - 40 * u, x + u, y - 6 * u, cx.lit((80, 60, 40), MID))
    cv.polygon([(x + 2 * u, y - 38 * u), (x + 2 * u, y - 9 * u), (x + 20 * u, y - 9 * u)], cx.lit((235, 230, 215), MID))


# -- mountains
def mountain_layers(scene: Scene) -> list[LayerSpec]:
    def far(cv: Canvas, cx: Ctx) -> None:
        xs, ys = ridge(cv, "peaks", cx.horizon - 0.02 * cx.height, 0.42 * cx.height, 0.32 * cx.width, sharp=True)
        cv.fill_below(xs, ys, cx.lit((95, 105, 125), FAR))
        # snow caps: from the ridge down to a ragged snow line
        snow_line = cx.horizon - (0.25 + 0.05 * noise1d(cv.seed, "snow-line", xs, 0.03 * cx.width, sharp=True)) * cx.height
        caps = np.minimum(ys, snow_line)
        cv.polygon(list(zip(xs.tolist(), caps.tolist())) + list(zip(xs[::-1].tolist(), snow_line[::-1].tolist())), cx.lit((240, 242, 248), FAR))

    def mid(cv: Canvas, cx: Ctx) -> None:
        xs, ys = ridge(cv, "mid-ridge", cx.horizon + 0.06 * cx.height, 0.22 * cx.height, 0.45 * cx.width, sharp=True)
        cv.fill_below(xs, ys, cx.lit(_ground_albedo(cx, (70, 85, 70)), MID))
        tree_row(cv, cx, "ridge-pines", cx.horizon + 0.07 * cx.height, 0.14 * cx.height, 0.035 * cx.width, MID, 0.6, "conifer")

    def ground(cv: Canvas, cx: Ctx) -> None:
        top = ridge(cv, "ground-edge", cx.horizon + 0.15 * cx.height, 0.04 * cx.height, 0.5 * cx.width)
        ground_band(cv, cx, top, cx.lit(_ground_albedo(cx, (105, 115, 75)), GROUND), cx.lit(_ground_albedo(cx, (105, 115, 75)), 2.0))
        stone = cx.lit((120, 115, 110), GROUND)
        for x, rng in cv.cells(0.14 * cx.width, "stones", 0.05 * cx.width):
            if rng.random() < 0.5:
                rock(cv, x, rng.uniform(0.75, 1.0) * cx.height, (5 + 8 * rng.random()) * cx.u, stone, rng)
        _props_on_ground(cv, cx)

    return [sky_layer(), LayerSpec("far", FAR, far), LayerSpec("mid", MID, mid),
            LayerSpec("ground", GROUND, ground), LayerSpec("front", FRONT, front_rocks)]  # fmt: skip


# -- desert
def desert_layers(scene: Scene) -> list[LayerSpec]:
    def far(cv: Canvas, cx: Ctx) -> None:
        xs, ys = ridge(cv, "mesas", cx.horizon, 0.2 * cx.height, 0.3 * cx.width)
        flat = np.where(ys < cx.horizon - 0.1 * cx.height, cx.horizon - 0.14 * cx.height, ys)  # flat tops
        cv.fill_below(xs, flat, cx.lit((190, 120, 80), FAR))

    def mid(cv: Canvas, cx: Ctx) -> None:
        xs, ys = ridge(cv, "dunes", cx.horizon + 0.06 * cx.height, 0.1 * cx.height, 0.5 * cx.width)
        cv.fill_below(xs, ys, cx.lit((225, 180, 120), MID))
        cactus = cx.lit((70, 120, 70), MID)
        for x, rng in cv.cells(0.3 * cx.width, "cacti", 0.1 * cx.width):
            if rng.random() < 0.55:
                xx, h = x + rng.uniform(0, 0.3) * cx.width, rng.uniform(0.1, 0.18) * cx.height
                base = cx.horizon + 0.09 * cx.height
                cv.rect(xx - 3 * cx.u, base - h, xx + 3 * cx.u, base, cactus)
                cv.rect(xx - 11 * cx.u, base - 0.7 * h, xx - 8 * cx.u, base - 0.35 * h, cactus)
                cv.rect(xx - 11 * cx.u, base - 0.4 * h, xx, base - 0.35 * h, cactus)

    def ground(cv: Canvas, cx: Ctx) -> None:
        top = ridge(cv, "ground-dune", cx.horizon + 0.14 * cx.height, 0.05 * cx.height, 0.6 * cx.width)
        ground_band(cv, cx, top, cx.lit((235, 195, 140), GROUND), cx.lit((235, 195, 140), 2.0))
        ripple = cx.lit((210, 170, 115), GROUND)
        for x, rng in cv.cells(0.07 * cx.width, "ripples", 0.05 * cx.width):
            y = rng.uniform(0.78, 1.0) * cx.height
            cv.line([(x, y), (x + 0.05 * cx.width, y - 2 * cx.u)], ripple, 1.5 * cx.u)
        _props_on_ground(cv, cx)

    return [sky_layer(), LayerSpec("far", FAR, far), LayerSpec("mid", MID, mid),
            LayerSpec("ground", GROUND, ground), LayerSpec("front", FRONT, front_rocks)]  # fmt: skip


# -- meadow, field, garden
def meadow_layers(scene: Scene) -> list[LayerSpec]:
    def far(cv: Canvas, cx: Ctx) -> None:
        xs, ys = ridge(cv, "rolling", cx.horizon, 0.1 * cx.height, 0.6 * cx.width)
        cv.fill_below(xs, ys, cx.lit(_ground_albedo(cx, (90, 140, 80)), FAR))
        if "castle" in scene.props:
            castle(cv, cx, 0.72 * cx.width, float(np.interp(0.72 * cx.width, xs, ys)) + 2)

    def mid(cv: Canvas, cx: Ctx) -> None:
        base = cx.horizon + 0.05 * cx.height
        cv.rect(cv.x0 - 2, base, cv.x1 + 2, cv.y1 + 2, cx.lit(_ground_albedo(cx, (100, 150, 70)), MID))
        tree_row(cv, cx, "meadow-trees", base, 0.3 * cx.height, 0.22 * cx.width, MID, 0.55, "broadleaf")
        fence = cx.lit((130, 100, 70), MID)
        y = base + 0.04 * cx.height
        cv.rect(cv.x0 - 2, y - 10 * cx.u, cv.x1 + 2, y - 8 * cx.u, fence)
        for x, _ in cv.cells(0.05 * cx.width, "fence", 0):
            cv.rect(x, y - 14 * cx.u, x + 2 * cx.u, y, fence)

    def ground(cv: Canvas, cx: Ctx) -> None:
        top = ridge(cv, "ground-edge", cx.horizon + 0.13 * cx.height, 0.025 * cx.height, 0.5 * cx.width)
        green = _ground_albedo(cx, (95, 150, 65))
        ground_band(cv, cx, top, cx.lit(green, GROUND), cx.lit(green, 2.0))
        grass_tufts(cv, cx, "meadow-grass", cx.horizon + 0.16 * cx.height, cx.height, cx.lit(_ground_albedo(cx, (70, 125, 50)), GROUND), 0.04 * cx.width, 6 * cx.u)
        for x, rng in cv.cells(0.03 * cx.width, "flowers", 0):
            if rng.random() < (0.7 if scene.variant == "garden" else 0.35):
                colour = cx.lit(cx.accent(int(rng.integers(4)), tuple(int(v) for v in rng.choice([[230, 80, 90], [240, 210, 70], [240, 240, 240], [160, 100, 210]]))), GROUND)  # type: ignore[arg-type]
                r = 2.5 * cx.u
                cv.ellipse(x, rng.uniform(0.72, 1.0) * cx.height, r, r, colour)
        _props_on_ground(cv, cx)

    return [sky_layer(), LayerSpec("far", FAR, far), LayerSpec("mid", MID, mid, sway=0.4),
            LayerSpec("ground", GROUND, ground), LayerSpec("front", FRONT, front_grass, sway=1.0)]  # fmt: skip


def castle(cv: Canvas, cx: Ctx, x: float, base: float) -> None:
    stone, u = cx.lit((120, 115, 125), FAR), cx.u
    cv.rect(x - 40 * u, base - 30 * u, x + 40 * u, base + 4 * u, stone)
    for tx in (-44, -6, 30):
        cv.rect(x + tx * u, base - 55 * u, x + (tx + 14) * u, base, stone)
        for m in range(3):
            cv.rect(x + (tx + m * 5) * u, base - 60 * u, x + (tx + m * 5 + 3) * u, base - 55 * u, stone)


# -- village, town
def village_layers(scene: Scene) -> list[LayerSpec]:
    def far(cv: Canvas, cx: Ctx) -> None:
        xs, ys = ridge(cv, "village-hills", cx.horizon - 0.02 * cx.height, 0.14 * cx.height, 0.55 * cx.width)
        cv.fill_below(xs, ys, cx.lit(_ground_albedo(cx, (80, 120, 80)), FAR))
        tree_row(cv, cx, "village-far-trees", cx.horizon, 0.06 * cx.height, 10 * cx.u, FAR, 0.6)

    def mid(cv: Canvas, cx: Ctx) -> None:
        base = cx.horizon + 0.08 * cx.height
        cv.rect(cv.x0 - 2, base, cv.x1 + 2, cv.y1 + 2, cx.lit(_ground_albedo(cx, (110, 140, 80)), MID))
        for x, rng in cv.cells(0.17 * cx.width, "houses", 0.2 * cx.width):
            if rng.random() < 0.8:
                house(cv, cx, rng, x + rng.uniform(0, 0.04) * cx.width, base, rng.uniform(0.09, 0.13) * cx.width, MID)
        # a church steeple, somewhere in every village
        for x, rng in cv.cells(1.3 * cx.width, "steeple", 0.2 * cx.width):
            sx = x + rng.uniform(0.3, 0.9) * cx.width
            stone = cx.lit((200, 195, 185), MID)
            cv.rect(sx, base - 0.3 * cx.height, sx + 0.035 * cx.width, base, stone)
            cv.polygon([(sx - 3 * cx.u, base - 0.3 * cx.height), (sx + 0.035 * cx.width + 3 * cx.u, base - 0.3 * cx.height), (sx + 0.0175 * cx.width, base - 0.45 * cx.height)], cx.lit((90, 90, 100), MID))

    def ground(cv: Canvas, cx: Ctx) -> None:
        top = cx.horizon + 0.15 * cx.height
        ground_band(cv, cx, top, cx.lit(_ground_albedo(cx, (150, 140, 120)), GROUND), cx.lit(_ground_albedo(cx, (150, 140, 120)), 2.0))
        cobble = cx.lit(_ground_albedo(cx, (120, 112, 100)), GROUND)
        for x, rng in cv.cells(0.04 * cx.width, "cobbles", 0):
            for _ in range(3):
                y = rng.uniform(top + 6 * cx.u, cx.height)
                s = (2 + 4 * (y - top) / cx.height) * cx.u
                cv.ellipse(x + rng.uniform(0, 0.04) * cx.width, y, 1.6 * s, s, cobble)
        _props_on_ground(cv, cx)

    return [sky_layer(), LayerSpec("far", FAR, far), LayerSpec("mid", MID, mid),
            LayerSpec("ground", GROUND, ground), LayerSpec("front", FRONT, front_grass, sway=1.0)]  # fmt: skip


# -- river, lake
def river_layers(scene: Scene) -> list[LayerSpec]:
    def far(cv: Canvas, cx: Ctx) -> None:
        xs, ys = ridge(cv, "river-hills", cx.horizon - 0.01 * cx.height, 0.12 * cx.height, 0.5 * cx.width)
        cv.fill_below(xs, ys, cx.lit(_ground_albedo(cx, (70, 110, 80)), FAR))
        tree_row(cv, cx, "bank-trees", cx.horizon, 0.12 * cx.height, 12 * cx.u, FAR, 0.8)

    def mid(cv: Canvas, cx: Ctx) -> None:
        water = cx.lit(_mix(cx.look.sky_horizon, (40, 80, 110), 0.55), MID)
        top = cx.horizon + 0.01 * cx.height
        cv.rect(cv.x0 - 2, top, cv.x1 + 2, cv.y1 + 2, water)
        shine = _mix(water, cx.look.sky_horizon, 0.5)
        for x, rng in cv.cells(10 * cx.u, "ripples", 0):
            if rng.random() < 0.5:
                y = rng.uniform(top + 3 * cx.u, cx.horizon + 0.17 * cx.height)
                cv.rect(x, y, x + rng.uniform(6, 18) * cx.u, y + cx.u, shine)
        if "bridge" in scene.props:
            deck = cx.lit((120, 100, 80), MID)
            bx = 0.5 * cx.width
            cv.rect(bx - 0.35 * cx.width, top - 0.08 * cx.height, bx + 0.35 * cx.width, top - 0.06 * cx.height, deck)
            for px in (-0.3, -0.1, 0.1, 0.3):
                cv.rect(bx + px * cx.width, top - 0.07 * cx.height, bx + px * cx.width + 4 * cx.u, top + 0.05 * cx.height, deck)
        if "boat" in scene.props:
            boat(cv, cx, 0.3 * cx.width, top + 0.08 * cx.height, np.random.default_rng(3))

    def ground(cv: Canvas, cx: Ctx) -> None:
        top = ridge(cv, "bank", cx.horizon + 0.19 * cx.height, 0.03 * cx.height, 0.45 * cx.width)
        ground_band(cv, cx, top, cx.lit(_ground_albedo(cx, (95, 130, 60)), GROUND))
        grass_tufts(cv, cx, "bank-grass", cx.horizon + 0.22 * cx.height, cx.height, cx.lit(_ground_albedo(cx, (70, 110, 45)), GROUND), 0.05 * cx.width, 6 * cx.u)
        _props_on_ground(cv, cx)

    def front(cv: Canvas, cx: Ctx) -> None:
        reed = cx.lit((95, 110, 55), FRONT)
        for x, rng in cv.cells(0.3 * cx.width, "reeds", 0.1 * cx.width):
            if rng.random() < 0.5:
                for i in range(5):
                    bx = x + i * 5 * cx.u
                    h = rng.uniform(0.2, 0.35) * cx.height
                    cv.line([(bx, cx.height * 1.02), (bx + rng.uniform(-6, 6) * cx.u, cx.height * 1.02 - h)], reed, 2.5 * cx.u)
                    cv.ellipse(bx, cx.height * 1.02 - h, 2.5 * cx.u, 7 * cx.u, cx.lit((110, 75, 45), FRONT))

    return [sky_layer(), LayerSpec("far", FAR, far), LayerSpec("mid", MID, mid, bob=0.8),
            LayerSpec("ground", GROUND, ground), LayerSpec("front", FRONT, front, sway=1.0)]  # fmt: skip


# -- interiors: room, kitchen, library, cinema, cabin, hall
WALLS: dict[str, RGB] = {"library": (120, 85, 60), "kitchen": (225, 220, 200), "cinema": (90, 30, 35),
                         "cabin": (140, 95, 60), "hall": (170, 165, 160), "": (205, 190, 165)}  # fmt: skip
WALL = 3.2
INSIDE_FAR = 2.6
INSIDE_MID = 1.6


def interior_layers(scene: Scene) -> list[LayerSpec]:
    variant = scene.variant

    def wall(cv: Canvas, cx: Ctx) -> None:
        colour = cx.lit(WALLS.get(variant, WALLS[""]), WALL)
        cv.rect(cv.x0 - 2, cv.y0 - 2, cv.x1 + 2, cv.y1 + 2, colour)
        u = cx.u
        if variant == "cabin":  # log wall
            for i in range(-12, 20):
                y = cx.horizon - i * 14 * u
                cv.rect(cv.x0 - 2, y, cv.x1 + 2, y + 2 * u, cx.lit((100, 65, 40), WALL))
        if variant == "cinema":  # the screen glows with a picture of its own
            cv.rect(0.15 * cx.width, 0.08 * cx.height, 0.85 * cx.width, 0.5 * cx.height, cx.glow((225, 230, 240), WALL))
            cv.rect(0.2 * cx.width, 0.3 * cx.height, 0.8 * cx.width, 0.46 * cx.height, cx.glow((120, 150, 190), WALL))
            return
        # windows onto the time of day
        for x, rng in cv.cells(0.55 * cx.width, "windows", 0.2 * cx.width):
            if variant == "library" or rng.random() < 0.35:
                continue
            wx, wy, ww, wh = x + 0.15 * cx.width, 0.16 * cx.height, 0.2 * cx.width, 0.32 * cx.height
            frame = cx.lit((235, 230, 220), WALL)
            cv.rect(wx - 4 * u, wy - 4 * u, wx + ww + 4 * u, wy + wh + 4 * u, frame)
            for i in range(8):
                cv.rect(wx, wy + wh * i / 8, wx + ww, wy + wh * (i + 1) / 8 + 1, _mix(cx.look.sky_top, cx.look.sky_horizon, i / 7))
            if cx.look.night:
                cv.ellipse(wx + 0.7 * ww, wy + 0.3 * wh, 6 * u, 6 * u, (230, 230, 210))
            if "rain" in cx.scene.weather or "snow" in cx.scene.weather:
                streak = _mix(cx.look.sky_horizon, (235, 235, 240), 0.5)
                for j in range(14):
                    sx, sy = wx + ww * rng.random(), wy + wh * rng.random()
                    cv.line([(sx, sy), (sx - 2 * u, sy + 8 * u)], streak, u)
            cv.rect(wx + ww / 2 - u, wy, wx + ww / 2 + u, wy + wh, frame)
            cv.rect(wx, wy + wh / 2 - u, wx + ww, wy + wh / 2 + u, frame)
        cv.rect(cv.x0 - 2, cx.horizon - 0.12 * cx.height, cv.x1 + 2, cx.horizon - 0.11 * cx.height, cx.lit((150, 120, 95), WALL))

    def far(cv: Canvas, cx: Ctx) -> None:
        u, base = cx.u, cx.horizon
        if variant == "library":
            wood = cx.lit((90, 60, 40), INSIDE_FAR)
            for x, rng in cv.cells(0.2 * cx.width, "shelves", 0.1 * cx.width):
                cv.rect(x, 0.02 * cx.height, x + 0.19 * cx.width, base + 2, wood)
                for shelf in range(6):
                    y1 = base - shelf * 0.1 * cx.height - 4 * u
                    bx = x + 4 * u
                    while bx < x + 0.19 * cx.width - 6 * u:
                        w = rng.uniform(3, 7) * u
                        colour = cx.lit(tuple(int(v) for v in rng.choice([[140, 40, 40], [40, 70, 120], [50, 100, 60], [160, 130, 60], [90, 50, 90]])), INSIDE_FAR)  # type: ignore[arg-type]
                        cv.rect(bx, y1 - rng.uniform(0.06, 0.085) * cx.height, bx + w, y1, colour)
                        bx += w + u
                    cv.rect(x, y1, x + 0.19 * cx.width, y1 + 3 * u, wood)
        elif variant == "kitchen":
            for x, rng in cv.cells(0.3 * cx.width, "counters", 0.1 * cx.width):
                cv.rect(x, base - 0.2 * cx.height, x + 0.3 * cx.width, base + 2, cx.lit((180, 160, 130), INSIDE_FAR))
                cv.rect(x, base - 0.22 * cx.height, x + 0.3 * cx.width, base - 0.2 * cx.height, cx.lit((90, 90, 95), INSIDE_FAR))
                cv.rect(x + 0.02 * cx.width, 0.1 * cx.height, x + 0.28 * cx.width, 0.28 * cx.height, cx.lit((170, 150, 120), INSIDE_FAR))
                cv.ellipse(x + 0.15 * cx.width, base - 0.26 * cx.height, 12 * u, 6 * u, cx.lit(cx.accent(0, (60, 60, 65)), INSIDE_FAR))
        elif variant == "cabin" or (variant == "" and "campfire" in scene.props):
            fx = 0.5 * cx.width
            cv.rect(fx - 0.12 * cx.width, base - 0.3 * cx.height, fx + 0.12 * cx.width, base + 2, cx.lit((110, 100, 95), INSIDE_FAR))
            cv.rect(fx - 0.08 * cx.width, base - 0.18 * cx.height, fx + 0.08 * cx.width, base + 2, (25, 15, 10))
            fire(cv, cx, fx, base, 0.1 * cx.height, INSIDE_FAR)
        elif variant == "hall":
            for x, _ in cv.cells(0.25 * cx.width, "columns", 0.1 * cx.width):
                cv.rect(x, 0.0, x + 0.05 * cx.width, base + 2, cx.lit((200, 195, 185), INSIDE_FAR))
                cv.rect(x - 4 * u, base - 8 * u, x + 0.05 * cx.width + 4 * u, base + 2, cx.lit((170, 165, 155), INSIDE_FAR))
        elif variant == "":
            for x, rng in cv.cells(0.6 * cx.width, "furniture", 0.2 * cx.width):
                sx = x + 0.05 * cx.width
                cv.rect(sx, base - 0.12 * cx.height, sx + 0.25 * cx.width, base + 2, cx.lit(cx.accent(0, (120, 70, 60)), INSIDE_FAR))
                cv.rect(sx, base - 0.2 * cx.height, sx + 0.25 * cx.width, base - 0.12 * cx.height, cx.lit(cx.accent(0, (140, 85, 70)), INSIDE_FAR))
                lamp_x = sx + 0.32 * cx.width
                cv.rect(lamp_x, base - 0.3 * cx.height, lamp_x + 2 * u, base, cx.lit((60, 60, 60), INSIDE_FAR))
                shade = cx.glow((255, 215, 150), INSIDE_FAR) if cx.look.night else cx.lit((230, 210, 170), INSIDE_FAR)
                cv.polygon([(lamp_x - 12 * u, base - 0.3 * cx.height), (lamp_x + 14 * u, base - 0.3 * cx.height), (lamp_x + 8 * u, base - 0.38 * cx.height), (lamp_x - 6 * u, base - 0.38 * cx.height)], shade)

    def mid(cv: Canvas, cx: Ctx) -> None:
        u, floor = cx.u, cx.horizon + 0.08 * cx.height
        if variant == "cinema":
            seat = cx.lit((110, 30, 35), INSIDE_MID)
            for row in range(2):
                y = floor + row * 0.08 * cx.height
                for x, _ in cv.cells(0.07 * cx.width, f"seats-{row}", 0):
                    cv.ellipse(x + 0.035 * cx.width, y - 0.05 * cx.height, 0.03 * cx.width, 0.05 * cx.height, seat)
        elif variant in ("", "kitchen", "library"):
            wood = cx.lit((130, 90, 55), INSIDE_MID)
            for x, rng in cv.cells(0.8 * cx.width, "tables", 0.3 * cx.width):
                tx = x + rng.uniform(0.1, 0.5) * cx.width
                cv.rect(tx, floor - 0.12 * cx.height, tx + 0.22 * cx.width, floor - 0.1 * cx.height, wood)
                for lx in (0.01, 0.2):
                    cv.rect(tx + lx * cx.width, floor - 0.1 * cx.height, tx + lx * cx.width + 3 * u, floor, wood)
                cv.ellipse(tx + 0.06 * cx.width, floor - 0.135 * cx.height, 6 * u, 3 * u, cx.lit(cx.accent(1, (230, 230, 225)), INSIDE_MID))

    def ground(cv: Canvas, cx: Ctx) -> None:
        top = cx.horizon
        floor = {"cinema": (70, 30, 35), "hall": (180, 170, 160), "kitchen": (190, 185, 175)}.get(variant, (150, 105, 70))
        ground_band(cv, cx, float(top), cx.lit(floor, GROUND), cx.lit(floor, WALL))
        seam = cx.lit(tuple(int(c * 0.8) for c in floor), GROUND)  # type: ignore[arg-type]
        for i in range(1, 9):  # boards or tiles running towards the camera
            y = top + (cx.height - top) * (i / 8) ** 1.4
            cv.rect(cv.x0 - 2, y, cv.x1 + 2, y + max(1.0, cx.u), seam)
        for x, _ in cv.cells(0.08 * cx.width, "boards", 0):
            cv.line([(x, top), (cx.width / 2 + (x - cx.width / 2) * 1.8, cx.height * 1.05)], seam, cx.u)
        _props_on_ground(cv, cx)

    def front(cv: Canvas, cx: Ctx) -> None:
        if variant == "cinema":
            seat = cx.lit((90, 25, 30), FRONT)
            for x, _ in cv.cells(0.1 * cx.width, "front-seats", 0):
                cv.ellipse(x + 0.05 * cx.width, cx.height * 1.03, 0.045 * cx.width, 0.09 * cx.height, seat)
        else:
            leaf = cx.lit((50, 110, 55), FRONT)
            for x, rng in cv.cells(1.1 * cx.width, "plants", 0.3 * cx.width):
                if rng.random() < 0.5:
                    px = x + rng.uniform(0, 1.1) * cx.width
                    cv.rect(px - 14 * cx.u, cx.height * 0.9, px + 14 * cx.u, cx.height * 1.1, cx.lit((160, 90, 60), FRONT))
                    for i in range(5):
                        a = math.pi * (0.15 + 0.7 * i / 4)
                        cv.ellipse(px - math.cos(a) * 30 * cx.u, cx.height * 0.9 - math.sin(a) * 40 * cx.u, 8 * cx.u, 18 * cx.u, leaf)

    return [LayerSpec("wall", WALL, wall), LayerSpec("far", INSIDE_FAR, far), LayerSpec("mid", INSIDE_MID, mid),
            LayerSpec("ground", GROUND, ground), LayerSpec("front", 0.6, front)]  # fmt: skip


def fire(cv: Canvas, cx: Ctx, x: float, base: float, size: float, depth: float) -> None:
    """A campfire or hearth: always glowing, brighter than anything lit."""
    for scale, colour in ((1.0, (230, 90, 30)), (0.7, (250, 160, 40)), (0.4, (255, 230, 120))):
        s = size * scale
        cv.polygon([(x - 0.5 * s, base), (x + 0.5 * s, base), (x + 0.15 * s, base - 0.7 * s), (x, base - 1.2 * s), (x - 0.2 * s, base - 0.6 * s)], cx.glow(colour, depth))


# -- space, planets, mars
def space_layers(scene: Scene) -> list[LayerSpec]:
    mars = scene.variant == "mars"

    def sky(cv: Canvas, cx: Ctx) -> None:
        paint_sky(cv, cx)
        if mars:
            return
        nebula = Image.new("RGB", (max(1, cv.image.width // 8), max(1, cv.image.height // 8)), (0, 0, 0))
        small = ImageDraw.Draw(nebula)
        for x, rng in cv.cells(0.7 * cx.width, "nebula", 0.3 * cx.width):
            colour = tuple(int(v) for v in rng.choice([[90, 30, 110], [30, 60, 120], [110, 40, 70]]))
            px, py = (x - cv.x0) * cv.r / 8, (rng.uniform(0.1, 0.5) * cx.height - cv.y0) * cv.r / 8
            rx, ry = 0.2 * cx.width * cv.r / 8, 0.1 * cx.height * cv.r / 8
            small.ellipse((px - rx, py - ry, px + rx, py + ry), fill=colour)  # type: ignore[arg-type]
        glow = nebula.filter(ImageFilter.GaussianBlur(max(1.0, 6 * cx.u * cv.r / 8))).resize(cv.image.size, Image.Resampling.BILINEAR)
        cv.image.paste(Image.fromarray(np.clip(np.asarray(cv.image, np.int16) + np.asarray(glow, np.int16) // 2, 0, 255).astype(np.uint8)))

    def far(cv: Canvas, cx: Ctx) -> None:
        if mars:
            xs, ys = ridge(cv, "mars-mesas", cx.horizon, 0.15 * cx.height, 0.4 * cx.width)
            cv.fill_below(xs, np.where(ys < cx.horizon - 0.08 * cx.height, cx.horizon - 0.1 * cx.height, ys), cx.lit((170, 90, 60), FAR))
            return
        px, py, r = 0.28 * cx.width, 0.3 * cx.height, 0.16 * cx.height
        planet = cx.lit(cx.accent(0, (90, 140, 200)), FAR)
        cv.ellipse(px, py, r, r, planet)
        cv.ellipse(px + 0.35 * r, py - 0.2 * r, 0.85 * r, 0.9 * r, tuple(int(c * 1.15) for c in planet))  # type: ignore[arg-type]
        cv.line([(px - 1.7 * r, py + 0.35 * r), (px + 1.7 * r, py - 0.35 * r)], cx.lit((200, 190, 160), FAR), 3 * cx.u)

    def mid(cv: Canvas, cx: Ctx) -> None:
        colour = cx.lit((150, 80, 50) if mars else (95, 90, 88), MID)
        for x, rng in cv.cells(0.2 * cx.width, "asteroids" if not mars else "mars-rocks", 0.1 * cx.width):
            if rng.random() < 0.5:
                y = (cx.horizon + 0.06 * cx.height) if mars else rng.uniform(0.1, 0.5) * cx.height
                rock(cv, x + rng.uniform(0, 0.2) * cx.width, y, (8 + 14 * rng.random()) * cx.u, colour, rng)

    def ground(cv: Canvas, cx: Ctx) -> None:
        top = ridge(cv, "surface", cx.horizon + 0.08 * cx.height, 0.03 * cx.height, 0.5 * cx.width)
        surface = (190, 100, 60) if mars else (150, 148, 145)
        ground_band(cv, cx, top, cx.lit(surface, GROUND), cx.lit(surface, 2.0))
        crater = cx.lit(tuple(int(c * 0.75) for c in surface), GROUND)  # type: ignore[arg-type]
        for x, rng in cv.cells(0.12 * cx.width, "craters", 0.05 * cx.width):
            if rng.random() < 0.6:
                y = rng.uniform(0.78, 1.0) * cx.height
                s = (6 + 14 * rng.random()) * cx.u * (y / cx.height)
                cv.ellipse(x, y, 2.2 * s, s * 0.7, crater)
        _props_on_ground(cv, cx)

    return [LayerSpec("sky", SKY, sky), LayerSpec("far", FAR, far), LayerSpec("mid", MID, mid),
            LayerSpec("ground", GROUND, ground), LayerSpec("front", FRONT, front_rocks)]  # fmt: skip


# -- caves
def cave_layers(scene: Scene) -> list[LayerSpec]:
    def back(cv: Canvas, cx: Ctx) -> None:
        cv.rect(cv.x0 - 2, cv.y0 - 2, cv.x1 + 2, cv.y1 + 2, cx.lit((60, 52, 48), WALL))
        blotch = cx.lit((75, 66, 60), WALL)
        for x, rng in cv.cells(0.1 * cx.width, "cave-blotches", 0.05 * cx.width):
            for _ in range(3):
                cv.ellipse(x, rng.uniform(-0.5, 1.2) * cx.height, rng.uniform(10, 30) * cx.u, rng.uniform(6, 18) * cx.u, blotch)
        # the mouth of the cave, with the day (or night) outside
        mx, my = 0.62 * cx.width, cx.horizon - 0.12 * cx.height
        for i, f in enumerate((1.0, 0.8, 0.6)):
            colour = _mix(cx.look.sky_horizon, cx.look.sky_top, i / 3)
            cv.ellipse(mx, my, 0.13 * cx.width * f, 0.2 * cx.height * f, colour)

    def far(cv: Canvas, cx: Ctx) -> None:
        stone = cx.lit((80, 70, 62), INSIDE_FAR)
        for x, rng in cv.cells(0.35 * cx.width, "pillars", 0.1 * cx.width):
            if rng.random() < 0.5:
                w = rng.uniform(0.04, 0.08) * cx.width
                cv.polygon([(x - w, cx.horizon + 4), (x + w, cx.horizon + 4), (x + 0.4 * w, -cx.height), (x - 0.5 * w, -cx.height)], stone)
        cv.rect(cv.x0 - 2, cx.horizon, cv.x1 + 2, cv.y1 + 2, stone)

    def mid(cv: Canvas, cx: Ctx) -> None:
        stone = cx.lit((95, 82, 72), INSIDE_MID)
        for x, rng in cv.cells(0.09 * cx.width, "stalactites", 0.05 * cx.width):
            w, tip = rng.uniform(6, 16) * cx.u, rng.uniform(0.1, 0.3) * cx.height
            cv.polygon([(x - w, cv.y0 - 2), (x + w, cv.y0 - 2), (x, tip)], stone)
        for x, rng in cv.cells(0.12 * cx.width, "stalagmites", 0.05 * cx.width):
            if rng.random() < 0.6:
                w, h = rng.uniform(6, 14) * cx.u, rng.uniform(0.05, 0.16) * cx.height
                base = cx.horizon + 0.06 * cx.height
                cv.polygon([(x - w, base), (x + w, base), (x, base - h)], stone)
        for x, rng in cv.cells(0.3 * cx.width, "crystals", 0.05 * cx.width):
            if rng.random() < 0.5:
                colour = cx.glow(cx.accent(0, (120, 200, 255)), INSIDE_MID)
                base = cx.horizon + 0.07 * cx.height
                for i in range(3):
                    cv.polygon([(x + i * 5 * cx.u, base), (x + (i * 5 + 4) * cx.u, base), (x + (i * 5 + 1) * cx.u, base - (12 + 6 * i) * cx.u)], colour)

    def ground(cv: Canvas, cx: Ctx) -> None:
        top = ridge(cv, "cave-floor", cx.horizon + 0.12 * cx.height, 0.04 * cx.height, 0.4 * cx.width)
        ground_band(cv, cx, top, cx.lit((90, 80, 70), GROUND), cx.lit((90, 80, 70), INSIDE_FAR))
        pebble = cx.lit((70, 62, 55), GROUND)
        for x, rng in cv.cells(0.1 * cx.width, "pebbles", 0.05 * cx.width):
            if rng.random() < 0.6:
                rock(cv, x, rng.uniform(0.78, 1.0) * cx.height, (4 + 7 * rng.random()) * cx.u, pebble, rng)
        _props_on_ground(cv, cx)

    return [LayerSpec("wall", WALL, back), LayerSpec("far", INSIDE_FAR, far), LayerSpec("mid", INSIDE_MID, mid),
            LayerSpec("ground", GROUND, ground), LayerSpec("front", FRONT, front_rocks)]  # fmt: skip


# -- anywhere else: a generic landscape
def generic_layers(scene: Scene) -> list[LayerSpec]:
    def far(cv: Canvas, cx: Ctx) -> None:
        xs, ys = ridge(cv, "generic-hills", cx.horizon, 0.18 * cx.height, 0.45 * cx.width)
        cv.fill_below(xs, ys, cx.lit(_ground_albedo(cx, (85, 120, 95)), FAR))
        if "castle" in scene.props:
            castle(cv, cx, 0.7 * cx.width, float(np.interp(0.7 * cx.width, xs, ys)) + 2)

    def mid(cv: Canvas, cx: Ctx) -> None:
        xs, ys = ridge(cv, "generic-mid", cx.horizon + 0.07 * cx.height, 0.06 * cx.height, 0.5 * cx.width)
        cv.fill_below(xs, ys, cx.lit(_ground_albedo(cx, (100, 140, 80)), MID))
        tree_row(cv, cx, "generic-trees", cx.horizon + 0.07 * cx.height, 0.26 * cx.height, 0.18 * cx.width, MID, 0.5)

    def ground(cv: Canvas, cx: Ctx) -> None:
        top = ridge(cv, "generic-ground", cx.horizon + 0.14 * cx.height, 0.03 * cx.height, 0.5 * cx.width)
        colour = _ground_albedo(cx, (110, 145, 75))
        ground_band(cv, cx, top, cx.lit(colour, GROUND), cx.lit(colour, 2.0))
        grass_tufts(cv, cx, "generic-grass", cx.horizon + 0.17 * cx.height, cx.height, cx.lit(_ground_albedo(cx, (80, 120, 55)), GROUND), 0.05 * cx.width, 6 * cx.u)
        _props_on_ground(cv, cx)

    return [sky_layer(), LayerSpec("far", FAR, far), LayerSpec("mid", MID, mid, sway=0.4),
            LayerSpec("ground", GROUND, ground), LayerSpec("front", FRONT, front_grass, sway=1.0)]  # fmt: skip


SETTING_LAYERS: dict[str, Callable[[Scene], list[LayerSpec]]] = {
    "forest": forest_layers, "city": city_layers, "sea": sea_layers, "mountain": mountain_layers,
    "desert": desert_layers, "meadow": meadow_layers, "village": village_layers, "river": river_layers,
    "interior": interior_layers, "space": space_layers, "cave": cave_layers,
}  # fmt: skip


def _ground_albedo(cx: Ctx, colour: RGB) -> RGB:
    """Snow covers the ground."""
    return _mix(colour, (235, 240, 248), 0.8) if "snow" in cx.scene.weather else colour


def _props_on_ground(cv: Canvas, cx: Ctx) -> None:
    """Props that stand on the near ground: a campfire, a tent."""
    props, u = cx.scene.props, cx.u
    if "campfire" in props and cx.scene.setting != "interior":
        x, y = 0.5 * cx.width + 0.22 * cx.width, cx.ground_line - 0.02 * cx.height
        for i in range(5):
            a = math.pi * i / 4
            cv.ellipse(x + math.cos(a) * 14 * u, y + 2 * u, 5 * u, 3 * u, cx.lit((100, 95, 90), GROUND))
        fire(cv, cx, x, y, 0.07 * cx.height, GROUND)
    if "tent" in props:
        x, y = 0.5 * cx.width - 0.3 * cx.width, cx.ground_line - 0.06 * cx.height
        canvas = cx.lit(cx.accent(0, (200, 120, 50)), GROUND)
        cv.polygon([(x - 40 * u, y), (x + 40 * u, y), (x, y - 50 * u)], canvas)
        cv.polygon([(x - 8 * u, y), (x + 8 * u, y), (x, y - 30 * u)], cx.lit((60, 40, 30), GROUND))
