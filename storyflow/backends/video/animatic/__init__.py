"""The embedded video backend: a procedural previz renderer (no weights, no GPU).

`AnimaticBackend` draws what the prompt's words say (animatic_scene), as flat layers of
scenery (animatic_layers) with moving figures (animatic_figures), filmed by a camera
that performs the shot's directive with parallax (animatic_camera), graded and overlaid
with weather, labels and the caption (animatic_effects). Same request -> same frames.

Frames are rendered one at a time from their index inside the *shot*, so:
- a clip is any run of a shot's frames: three 4 s clips of a 12 s pan join seamlessly;
- "image_to_video" starts on the given frame and dissolves into the scene;
- "continue_video" picks up at the next frame of the shot and fades out the difference
  between the given tail and what the renderer would have drawn there (a `Seam`).
A seam is anchored at one shot frame and fades with distance from it, in either
direction, so the other ends of a clip only need another anchor:
- "extend_backward" renders the shot's frames *before* a given head: its seam stands at
  the head's first frame (just after the clip) and fades out toward the clip's start,
  which is the pure render of the earlier moment (a pan's earlier position);
- "loop_close" continues a tail (a seam at the start) and leads into the chain's first
  frame (a seam at the end, standing at frame `shot_total_frames`, which a loop shows as
  frame 0 again); the two blend in the middle. So that the picture does not have to
  cross-fade a whole camera move at the wrap, the clip's *staging* (camera, figures, the
  rhythm of their limbs) is handed over from this lap of the shot to the next one
  (animatic_camera.ShotClock.next_lap): a pan that eases back to where it began, a zoom
  that breathes back out, a pacing figure that drifts back to her first spot. Only the
  closing clip knows the shot loops (the chain's earlier clips are ordinary requests), so
  the return happens inside it.
`end_conditioning`, when given, is honoured by every strategy (`last_frame` capability).

Which frames each strategy reads:
    text_to_video, extend_backward    start from the prompt (`conditioning` is ignored)
    image_to_video, last_frame_i2v    start on conditioning[-1] (returned as frame 0)
    continue_video, loop_close        continue after conditioning[-1]
    any, when end_conditioning given  lead into end_conditioning[0] (required by
                                      extend_backward and loop_close)
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import cv2
import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageStat
from pydantic import Field

from storyflow.backends.base import (
    BackendOptions,
    GeneratedVideo,
    PromptShape,
    VideoBackend,
    VideoCapabilities,
)
from storyflow.backends.video.animatic.camera import (
    GROUND_LINE,
    PERSON_HEIGHT,
    Blocking,
    ShotClock,
    camera_poses,
    layer_matrices,
    wind_sway,
)
from storyflow.backends.video.animatic.effects import (
    Flock,
    Grade,
    Lightning,
    TiltShift,
    Weather,
    caption_sprite,
    label_sprite,
    tag_sprite,
)
from storyflow.backends.video.animatic.figures import Palette, Pose, draw_figure
from storyflow.backends.video.animatic.layers import (
    Canvas,
    Ctx,
    LayerSpec,
    horizon_of,
    layers_for,
)
from storyflow.backends.video.animatic.scene import Scene, read_scene
from storyflow.core.errors import GenerationError
from storyflow.core.models import CameraMove, ClipRequest, LensEffect

CAPABILITIES = VideoCapabilities(
    max_clip_seconds=4.0,
    text_to_video=True,
    image_to_video=True,
    last_frame=True,  # leads into given frames: backward extension, loops
    extend_from_video=True,
    extend_backward=True,
    context_frames=1,  # a continuation reads the tail's last frame
    seed=True,
    native_audio=False,
    cost_per_second=0.0,
    max_concurrency=2,
)
MIN_FPS, MAX_FPS = 8, 60
MIN_SIDE, MAX_SIDE = 16, 4096
MAX_LAYER_PIXELS = 8_000_000  # wider layers (very long moves) are drawn at a lower density
SWAY_SHEAR = 0.035  # how far the wind bends a layer of sway 1 at full wind (x per unit of height above the roots)
SWAY_STEP_PX = 0.4  # the wind's levels differ by at most this at the farthest row from the roots
MAX_SWAY_LEVELS = 32
SWAY_MEMORY = 32 << 20  # bytes of swayed pictures one renderer keeps, however long its clip
SUBPIXEL = 1 / 256  # a move this close to whole pixels is a copy (8-bit pixels cannot show the rest)
PHASES = 4  # a pure move snaps to this fraction of a pixel, from copies of the picture moved by each (see _composite)
PHASE_MEMORY = 32 << 20  # bytes of such copies one renderer keeps; past that, moves blend their fraction per frame
SEAM_DETAIL_SECONDS = 0.5  # the given frame's picture dissolves into the scene over this
SEAM_COLOUR_SECONDS = 1.0  # its overall colour and brightness over this
STARTS_ON_GIVEN = ("image_to_video", "last_frame_i2v")  # frame 0 is conditioning[-1]
CONTINUES_GIVEN = ("continue_video", "loop_close")  # frame 0 follows conditioning[-1]
LEADS_INTO_GIVEN = ("extend_backward", "loop_close")  # the frame after the last is end_conditioning[0]


class AnimaticBackend(VideoBackend):
    """Procedural previz: scenery, figures and camera moves from the prompt's words."""

    name = "animatic"
    # The version is part of every clip's cache key: bump it whenever the frames change.
    # 2: continuing shots dissolve in place; no lightning flash next to a seam.
    # 3: faster: the wind's sway in cached steps, rain and snow scrolled from sheets, cheaper roll and tilt shift.
    # 4: zooms, parallax and the roll warped by OpenCV (bilinear at 1/32 pixel, no smoothing of a slight shrink).
    version = "4"
    description = "embedded procedural previz renderer: no weights, no GPU, deterministic"
    # A preview of what a real model will make: its prompts are written as a text-to-video
    # model of today reads them best (the animatic itself picks scenery and figures from their words).
    prompt_shape = PromptShape(max_words=120)

    class Options(BackendOptions):
        caption: bool = Field(True, description="burn the shot's caption into a band at the bottom")
        labels: bool = Field(True, description="write each figure's name above it")
        camera_tag: bool = Field(True, description="a small top-left tag naming the camera move")

    @property
    def capabilities(self) -> VideoCapabilities:
        return CAPABILITIES

    def generate(self, request: ClipRequest) -> GeneratedVideo:
        """Render `request.num_frames` frames (plus the given first frame for image-to-video), lazily."""
        # 1. check inputs now, before any frame is asked for
        check_request(request)
        options: AnimaticBackend.Options = self.options  # type: ignore[assignment]

        # 2. read the scene from the words (cheap); the drawing waits for the first frame
        scene = read_scene(request.prompt, request.subjects, request.seed)
        # what the animatic understood; "seam" / "end_seam" are added once the first frame is drawn
        metadata: dict[str, Any] = {
            "scene": scene.summary(),
            "strategy": request.strategy,
            "shot_frames": [request.shot_offset_frames, request.shot_offset_frames + request.num_frames],
        }
        if request.conditioning is not None and request.strategy in ("text_to_video", "extend_backward"):
            metadata["conditioning"] = f"ignored: {request.strategy} starts from the prompt alone"
        if request.strategy == "loop_close":
            metadata["loop"] = {
                "returns_from_frame": request.shot_offset_frames,
                "wraps_at_frame": request.shot_total_frames,
                "staging": "camera and figures handed over to the next lap: frame 0's at the wrap",
            }
        return GeneratedVideo(
            frames=_clip_frames(request, scene, options, metadata),
            context_frames=1 if request.strategy in STARTS_ON_GIVEN else 0,
            metadata=metadata,
        )


# ---------------------------------------------------------------- checking requests


def check_request(request: ClipRequest) -> None:
    """Raise GenerationError, naming the argument and the fix, for anything the animatic cannot render."""
    w, h, fps, n = request.width, request.height, request.fps, request.num_frames
    if w % 2 or h % 2:
        raise GenerationError(f"frame size {w}x{h} has an odd side", fix="use even widths and heights, e.g. 640x360")
    if min(w, h) < MIN_SIDE or max(w, h) > MAX_SIDE:
        raise GenerationError(
            f"frame size {w}x{h} is outside {MIN_SIDE}..{MAX_SIDE} pixels per side",
            fix="pick a resolution such as 640x360 or 1920x1080",
        )
    if not MIN_FPS <= fps <= MAX_FPS:
        raise GenerationError(f"fps {fps} is outside {MIN_FPS}..{MAX_FPS}", fix="set fps between 8 and 60 (24 is usual)")
    most = math.floor(CAPABILITIES.max_clip_seconds * fps)
    if n > most:
        raise GenerationError(
            f"num_frames {n} is {n / fps:.2f} s, longer than the animatic's {CAPABILITIES.max_clip_seconds:g} s clips "
            f"({most} frames at {fps} fps)",
            fix=f"split the shot into clips of at most {most} frames (storyflow.stages.extend.plan_segments does) and "
            "pass shot_offset_frames and shot_total_frames so the camera move spans them",
        )
    offset, total = request.shot_offset_frames, request.shot_total_frames
    if offset < 0 or total < 0:
        raise GenerationError(
            f"shot_offset_frames {offset} / shot_total_frames {total} is negative",
            fix="give the clip's first frame inside its shot (0 for the first clip) and the shot's length (or 0)",
        )
    if total and offset + n > total:
        raise GenerationError(
            f"the clip's frames {offset}..{offset + n - 1} run past the shot's {total} frames",
            fix="set shot_total_frames to the whole shot's length, or 0 when this clip is the whole shot",
        )
    strategy = request.strategy
    if strategy in STARTS_ON_GIVEN + CONTINUES_GIVEN:
        if request.conditioning is None:
            raise GenerationError(
                f"strategy '{strategy}' needs conditioning frames, got none",
                fix="pass the previous clip's last frames as conditioning (N, H, W, 3) uint8, "
                "e.g. storyflow.media.last_frames(path, 1), or use 'text_to_video'",
            )
        _check_frames("conditioning", request.conditioning, w, h, "storyflow.media.last_frames(path, 1)")
    if strategy in LEADS_INTO_GIVEN and request.end_conditioning is None:
        head = "the chain's first segment" if strategy == "loop_close" else "the clip it leads into"
        raise GenerationError(
            f"strategy '{strategy}' needs end_conditioning frames (the first frames of {head}), got none",
            fix="pass them as end_conditioning (N, H, W, 3) uint8, e.g. storyflow.media.first_frames(path, 1)",
        )
    if request.end_conditioning is not None:
        _check_frames("end_conditioning", request.end_conditioning, w, h, "storyflow.media.first_frames(path, 1)")

    # where the given head stands in the shot: right after the clip
    if strategy == "extend_backward" and not offset + n < total:
        raise GenerationError(
            f"extend_backward leads into frames that start at shot frame {offset + n}, but "
            + (f"the shot has only {total} frames" if total else "shot_total_frames is not given"),
            fix="place both clips in one shot: shot_offset_frames and num_frames for the new clip, and "
            "shot_total_frames covering the clip it leads into as well (e.g. 0, 24 and 48 before a 24-frame clip)",
        )
    if strategy == "loop_close" and (not total or offset + n != total):
        raise GenerationError(
            f"loop_close must be the last clip of its shot, but its frames {offset}..{offset + n - 1} "
            + (f"end before the shot's {total} frames" if total else "come with no shot_total_frames"),
            fix="make the loop_close clip the chain's last segment: shot_offset_frames + num_frames == "
            "shot_total_frames (the frame after it is the shot's frame 0 again)",
        )


def _check_frames(argument: str, frames: Any, w: int, h: int, example: str) -> None:
    """Raise GenerationError naming `argument` unless `frames` is uint8 (N, h, w, 3)."""
    if not isinstance(frames, np.ndarray) or frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) == 0:
        shape = getattr(frames, "shape", type(frames).__name__)
        raise GenerationError(
            f"{argument} must be an array of frames (N, H, W, 3), got {shape}",
            fix=f"stack the frames with numpy, e.g. {example}",
        )
    if frames.dtype != np.uint8:
        raise GenerationError(f"{argument} frames are {frames.dtype}, not uint8", fix="pass 8-bit RGB frames")
    if frames.shape[1:3] != (h, w):
        raise GenerationError(
            f"{argument} frames are {frames.shape[2]}x{frames.shape[1]} but the clip is {w}x{h}",
            fix=f"resize the frames to {w}x{h} (storyflow.media.fit_frame) or request the clip at "
            f"{frames.shape[2]}x{frames.shape[1]}",
        )


# ---------------------------------------------------------------- the clip


def _clip_frames(request: ClipRequest, scene: Scene, options: AnimaticBackend.Options, metadata: dict[str, Any]) -> Iterator[np.ndarray]:
    """The clip's frames, one at a time; seams join them to the given frames where there are some."""
    renderer = ShotRenderer(request, scene, options)
    first, count = request.shot_offset_frames, request.num_frames
    seams: list[Seam] = []

    # 1. a given tail stands at the moment just before this clip's first frame
    if request.strategy in STARTS_ON_GIVEN + CONTINUES_GIVEN:
        given = np.ascontiguousarray(request.conditioning[-1])
        # A continuation's given frame is this shot, seen a moment ago: its difference moves
        # with the camera. A continuing shot starts from another shot's picture, framed by
        # another camera move: moving that picture with the new camera would fling it about
        # (an FPV drone's speed), so it dissolves in place.
        follow = request.strategy in CONTINUES_GIVEN
        seams.append(Seam(renderer, given, anchor=first - 1, clip_frames=count, follow_camera=follow))
        metadata["seam"] = seams[-1].describe()
    # 2. a given head stands at the moment just after its last frame (frame 0 again in a loop)
    if request.end_conditioning is not None:
        head = np.ascontiguousarray(request.end_conditioning[0])
        seams.append(Seam(renderer, head, anchor=first + count, clip_frames=count))
        metadata["end_seam"] = seams[-1].describe()

    if request.strategy in STARTS_ON_GIVEN:
        yield given.copy()  # frame 0 is the given frame itself (context_frames=1: the caller drops it)
    for k in range(first, first + count):
        yield Seam.join_all(seams, renderer.frame(k), k)


class Seam:
    """Joins rendered frames to a given frame standing at shot frame `anchor`.

    The difference between the given frame and what the renderer draws at `anchor` is
    added back to nearby frames and fades with distance: its detail over half a second
    (following the camera, so a dissolve moves with the shot), its mean colour over a
    second. Far from the anchor the frames are the pure render: a chain of
    continuations cannot drift, because every clip ends on what the prompt looks like.
    """

    def __init__(self, renderer: ShotRenderer, given: np.ndarray, anchor: int, clip_frames: int,
                 follow_camera: bool = True):  # fmt: skip
        self.renderer, self.anchor, self.follow_camera = renderer, anchor, follow_camera
        # The reference leaves out lightning: a flash that happens to fall on the anchor frame
        # would otherwise be "corrected" away into a second of darkness after the seam.
        residual = given.astype(np.float32) - renderer.frame(anchor, flashes=False).astype(np.float32)
        self.colour = residual.mean(axis=(0, 1))
        self.detail = residual - self.colour
        fps = renderer.clock.fps
        self.detail_frames = max(1, min(round(SEAM_DETAIL_SECONDS * fps), clip_frames))
        self.colour_frames = max(self.detail_frames, min(round(SEAM_COLOUR_SECONDS * fps), clip_frames))

    def describe(self) -> dict[str, Any]:
        return {
            "anchor_frame": self.anchor,
            "detail_fade_frames": self.detail_frames,
            "colour_fade_frames": self.colour_frames,
            "colour_offset": [round(float(v), 2) for v in self.colour],
        }

    @staticmethod
    def weight(distance: int, length: int) -> float:
        """1 at the anchor, easing to 0 at `length` frames away."""
        return 0.5 * (1.0 + math.cos(math.pi * distance / length)) if distance < length else 0.0

    def touches(self, k: int) -> bool:
        """Whether frame `k` is near enough to the anchor to be changed."""
        return abs(k - self.anchor) < self.colour_frames

    def add_to(self, out: np.ndarray, k: int) -> None:
        """Add this seam's share of the given frame's difference to frame `k` (float32, in place)."""
        distance = abs(k - self.anchor)
        detail, colour = self.weight(distance, self.detail_frames), self.weight(distance, self.colour_frames)
        out += colour * self.colour
        if detail > 0.0:
            out += detail * self._detail_at(k)

    def join(self, frame: np.ndarray, k: int) -> np.ndarray:
        """Frame `k` of the render, joined to the given frame."""
        return Seam.join_all([self], frame, k)

    @staticmethod
    def join_all(seams: list[Seam], frame: np.ndarray, k: int) -> np.ndarray:
        """Frame `k` with every nearby seam's difference added (a clip between two anchors blends both)."""
        near = [seam for seam in seams if seam.touches(k)]
        if not near:
            return frame
        out = frame.astype(np.float32)
        for seam in near:
            seam.add_to(out, k)
        return np.clip(np.rint(out), 0, 255).astype(np.uint8)

    def _detail_at(self, k: int) -> np.ndarray:
        """The residual's detail moved the way the camera moved the figures' plane since the anchor."""
        if not self.follow_camera:
            return self.detail
        move = self.renderer.figure_matrix(k) @ np.linalg.inv(self.renderer.figure_matrix(self.anchor))
        if np.allclose(move, np.eye(3), atol=1e-4):
            return self.detail
        back = np.linalg.inv(move)
        data = tuple(back[:2].reshape(-1))
        h, w = self.detail.shape[:2]
        channels = [
            np.asarray(Image.fromarray(np.ascontiguousarray(self.detail[..., c])).transform((w, h), Image.Transform.AFFINE, data, Image.Resampling.BILINEAR))
            for c in range(3)
        ]
        return np.stack(channels, axis=-1)


# ---------------------------------------------------------------- the renderer


@dataclass
class LayerGroup:
    """Neighbouring layers the camera moves alike, drawn once and moved as one.

    Layers the wind bends are drawn apart and sheared to a bounded set of wind levels (the
    sway repeats every few seconds, so a long clip only revisits them); a frame shows the
    level nearest its wind.
    """

    layers: list[LayerSpec]
    matrices: np.ndarray  # world -> screen without the sway, one per frame of the renderer's span
    base: bool  # the opaque backdrop (sky or back wall)
    canvas: Canvas | None = None  # the geometry of every picture below (world box, density)
    runs: list[tuple[float, Image.Image]] = field(default_factory=list)  # (sway, graded picture), back to front
    level_of: np.ndarray | None = None  # each frame's wind level; None: nothing sways
    level_wind: np.ndarray | None = None  # the wind at each level
    pictures: dict[int, tuple[Image.Image, Image.Image | None]] = field(default_factory=dict)  # level -> (rgb, alpha)
    phases: dict[tuple[int, int, int], tuple[Image.Image, Image.Image | None]] = field(default_factory=dict)  # moved by fractions
    arrays: dict[int, np.ndarray] = field(default_factory=dict)  # level -> its picture as RGB or RGBA pixels, to warp
    content: tuple[float, float, float, float] | None = None  # world box holding something visible
    solid_from: float | None = None  # world y below which the canvas is opaque everywhere
    cover: LayerGroup | None = None  # the foreground drawn into this group, kept apart to lay over the figures
    owner: LayerGroup | None = None  # (of a cover) the group whose pictures it is part of


class ShotRenderer:
    """Renders any frame of one shot: layers drawn once, then per frame camera + figures + effects."""

    def __init__(self, request: ClipRequest, scene: Scene, options: AnimaticBackend.Options):
        self.width, self.height, self.scene = request.width, request.height, scene
        total = request.shot_total_frames or request.shot_offset_frames + request.num_frames
        # a loop's closing clip hands its camera and blocking over to the next lap (frame 0's at the wrap)
        loop_from = request.shot_offset_frames if request.strategy == "loop_close" else None
        self.clock = ShotClock(request.fps, total, loop_from=loop_from)
        self.move = request.camera
        self.phase_bytes = 0  # what the pictures' copies moved by fractions of a pixel take (see _phase)
        self.blocking = Blocking(scene.figures, self.move, self.clock, self.width, self.height)
        self.ctx = Ctx(scene, self.width, self.height, horizon_of(scene) * self.height, GROUND_LINE * self.height)
        # tilt shift: the lens effect (LensEffect.TILT_SHIFT), or the camera value of older storyboards
        self.miniature = self.move is CameraMove.TILT_SHIFT or LensEffect.TILT_SHIFT in request.effects
        self.grade = Grade(scene, saturation=1.4 if self.miniature else 1.0)

        # 1. the camera over the whole shot (and a frame either side, where seams anchor)
        self.span = np.arange(-2, total + 2)
        self.poses = camera_poses(self.move, self.clock, self.span, self.blocking)
        self.figure_matrices = layer_matrices(self.poses, 1.0, self.width, self.height)
        # A rolling camera rotates everything alike: compose a larger frame without the roll
        # (fast axis-aligned resampling per layer), then rotate it once.
        self.roll = self.poses.roll
        most = float(np.abs(self.roll).max())
        mx = math.ceil((self.width * (math.cos(most) - 1) + self.height * math.sin(most)) / 2) + 1 if most > 0 else 0
        my = math.ceil((self.width * math.sin(most) + self.height * (math.cos(most) - 1)) / 2) + 1 if most > 0 else 0
        self.margin = (mx, my)
        self.work_size = (self.width + 2 * mx, self.height + 2 * my)
        self.to_work = np.array([[1.0, 0, mx], [0, 1.0, my], [0, 0, 1.0]])
        self.unrolled = replace(self.poses, roll=np.zeros_like(self.roll))
        self.figure_work_matrices = self.to_work @ layer_matrices(self.unrolled, 1.0, self.width, self.height)

        # 2. the layers, grouped by identical motion, each group drawn once on a canvas. Without parallax
        # (static, pan, tilt, zoom) the foreground moves with the backdrop: it is drawn into the backdrop's
        # picture, so a frame moves one picture, and laid again only where figures stand (`cover`).
        layers = layers_for(scene)
        groups = self._groups(layers, base=True)
        folded = len(groups[-1].layers) > 1
        self.back, self.front = (groups, []) if folded else (groups[:-1], groups[-1:])
        swaying = sum(any(self._sway(layer) for layer in group.layers) for group in groups)
        for group in groups:
            self._draw(group, SWAY_MEMORY // max(1, swaying), foreground_apart=folded and group is groups[-1])

        # 3. figures' colours, weather, overlays
        look = scene.look
        self.palettes = [
            Palette(
                body=self.grade.colour(look.lit(f.colour, 1.0)),
                body2=self.grade.colour(look.lit(f.colour2, 1.0)),
                skin=self.grade.colour(look.lit(f.skin, 1.0)),
                hair=self.grade.colour(look.lit(f.hair, 1.0)),
                dark=self.grade.colour(look.lit((45, 40, 40), 1.0)),
                glow=self.grade.colour(look.glow((120, 220, 255) if f.kind == "robot" else (255, 215, 130), 1.0)),
            )
            for f in scene.figures
        ]
        self.weather = Weather(scene, self.width, self.height, self.grade)
        self.flock = Flock(scene, self.width, self.height, self.grade)
        # No flash near a place where clips meet: a seam joins pictures, and a flash on it
        # reads as a jump (and gets "corrected" into darkness). Every clip end may be joined
        # (the next segment, a continuing shot, a loop); a clip start is joined unless it is
        # the shot's own first frame made from the prompt alone.
        quiet_frames = round(SEAM_DETAIL_SECONDS * request.fps)
        first, end = request.shot_offset_frames, request.shot_offset_frames + request.num_frames
        quiet = [range(end - quiet_frames, end)]
        if first > 0 or request.strategy != "text_to_video":
            quiet.append(range(first, first + quiet_frames))
        self.lightning = Lightning(scene, request.fps, self.width, self.height, quiet=tuple(quiet))
        self.tilt_shift = TiltShift(self.width, self.height) if self.miniature else None
        self.labels = [label_sprite(f.name, self.width, self.height) for f in scene.figures] if options.labels else []
        self.tag = tag_sprite(self.move.value.upper(), self.width, self.height) if options.camera_tag else None
        self.caption = caption_sprite(request.caption, self.width, self.height) if options.caption else None

    # -- set-up

    def _layer_matrices(self, layer: LayerSpec) -> np.ndarray:
        """World -> screen for one layer over the span, with the water's bob (the wind's sway is per group)."""
        m = self.to_work @ layer_matrices(self.unrolled, layer.depth, self.width, self.height)
        if layer.bob:
            t = self.clock.time(self.span)
            m[:, 1, 2] += layer.bob * self.ctx.u * np.sin(2 * math.pi * t / 2.3)
        return m

    def _groups(self, layers: list[LayerSpec], base: bool) -> list[LayerGroup]:
        """Neighbouring layers with one camera motion share a group: with no parallax (static, pan, tilt, zoom)
        the whole backdrop is one picture, moved once per frame."""
        groups: list[LayerGroup] = []
        for layer in layers:
            m = self._layer_matrices(layer)
            if groups and np.allclose(groups[-1].matrices, m, rtol=0, atol=1e-9):
                groups[-1].layers.append(layer)
            else:
                groups.append(LayerGroup([layer], m, base=base and not groups))
        return groups

    def _sway(self, layer: LayerSpec) -> float:
        """How far the wind bends a layer (its shear at full wind); 0 without wind."""
        return SWAY_SHEAR * layer.sway if layer.sway and "wind" in self.scene.weather else 0.0

    def _draw(self, group: LayerGroup, sway_budget: int, foreground_apart: bool = False) -> None:
        """Draw a group's layers onto pictures covering every view of it in the shot (`foreground_apart`: its
        last layer is the foreground, drawn on its own canvas to lay over the figures too)."""
        # 1. the world box every frame of the span sees through this group (and what the wind adds)
        inverse = np.linalg.inv(group.matrices)
        ww, wh = self.work_size
        corners = np.array([[0, 0, 1], [ww, 0, 1], [0, wh, 1], [ww, wh, 1]], float).T
        seen = inverse @ corners  # (n, 3, 4)
        pad = 4.0
        x0, x1 = seen[:, 0].min() - pad, seen[:, 0].max() + pad
        y0, y1 = seen[:, 1].min() - pad, seen[:, 1].max() + pad
        cx, cy = self.width / 2, self.height / 2
        y0, y1 = max(y0, cy - 4 * self.height), min(y1, cy + 4 * self.height)
        most_sway = max(self._sway(layer) for layer in group.layers)
        reach = max(abs(y0 - self.ctx.ground_line), abs(y1 - self.ctx.ground_line))  # the farthest row from the roots
        bend = most_sway * reach  # world px the wind moves that row at most
        x0, x1 = max(x0 - bend, cx - 12 * self.width), min(x1 + bend, cx + 12 * self.width)
        density = min(1.0, math.sqrt(MAX_LAYER_PIXELS / max(1.0, (x1 - x0) * (y1 - y0))))
        if density == 1.0:  # canvas pixels on the screen's grid: a still camera copies them, resampling nothing
            x0, y0 = math.floor(x0), math.floor(y0)

        # 2. draw every layer, back to front: still layers together, each swaying layer on its own
        look = self.scene.look
        runs: list[tuple[float, list[LayerSpec]]] = []
        for layer in group.layers:
            sway = self._sway(layer)
            apart = foreground_apart and layer is group.layers[-1]
            if runs and sway == 0.0 and runs[-1][0] == 0.0 and not apart:
                runs[-1][1].append(layer)
            else:
                runs.append((sway, [layer]))
        for index, (sway, layers) in enumerate(runs):
            mode = "RGB" if group.base and index == 0 else "RGBA"
            canvas = Canvas((x0, y0, x1, y1), density, mode, look.sky_horizon, self.scene.world_seed)
            for layer in layers:
                layer.draw(canvas, self.ctx)
            image = canvas.image
            if "watercolor" in self.scene.styles:
                image = image.filter(ImageFilter.GaussianBlur(1.2 * self.ctx.u * density))
            image = self.grade.image(image)
            if mode == "RGBA":
                group.runs.append((sway, *_matte(image)))
            else:
                group.runs.append((sway, image, None))
            group.canvas = canvas

        # 3. the wind levels: as many as keep each step under SWAY_STEP_PX, as memory allows
        if most_sway > 0.0:
            wind = wind_sway(self.clock, self.span, 1.0)
            low, high = float(wind.min()), float(wind.max())
            steps = math.ceil(most_sway * (high - low) * reach * density / SWAY_STEP_PX)
            w, h = group.runs[0][1].size
            fits = sway_budget // (w * h * (4 if group.base else 5) + (w * h * 5 if foreground_apart else 0))
            count = max(2, min(steps + 1, MAX_SWAY_LEVELS, fits))
            group.level_wind = np.linspace(low, high, count)
            group.level_of = np.rint((wind - low) / max(high - low, 1e-12) * (count - 1)).astype(int)

        # 4. what per-frame compositing needs: where the content is, which rows are opaque
        if foreground_apart:
            sway, rgb, alpha = group.runs[-1]
            group.cover = LayerGroup(group.layers[-1:], group.matrices, base=False, canvas=group.canvas,
                                     runs=[(sway, rgb, alpha)], level_of=group.level_of, level_wind=group.level_wind,
                                     owner=group)  # fmt: skip
            self._coverage(group.cover, bend if sway else 0.0)
        if group.base:
            group.content = (x0, y0, x1, y1)
            group.solid_from = y0
            return
        self._coverage(group, bend)

    @staticmethod
    def _coverage(group: LayerGroup, bend: float) -> None:
        """Where a transparent group's content is (widened by `bend`, the wind's reach) and below which row it is opaque."""
        assert group.canvas is not None
        x0, y0, density = group.canvas.x0, group.canvas.y0, group.canvas.r
        alpha = np.maximum.reduce([np.asarray(run_alpha) for _, _, run_alpha in group.runs if run_alpha is not None])
        opaque_rows = np.flatnonzero(~(alpha == 255).all(axis=1))
        last_open = opaque_rows[-1] + 1 if len(opaque_rows) else 0
        if last_open < alpha.shape[0]:
            group.solid_from = y0 + (last_open + 1) / density
        cols, rows = np.flatnonzero(alpha.any(axis=0)), np.flatnonzero(alpha.any(axis=1))
        if len(cols):
            l, t, r, b = cols[0], rows[0], cols[-1] + 1, rows[-1] + 1
            spread = bend * density  # a swaying layer's content moves sideways
            l, r = max(0, l - spread), min(alpha.shape[1], r + spread)
            group.content = (x0 + l / density, y0 + t / density, x0 + r / density, y0 + b / density)

    def _phase(self, group: LayerGroup, i: int, phase_x: int, phase_y: int) -> tuple[Image.Image, Image.Image | None] | None:
        """The picture at frame index `i`, its content moved left / up by `phase_x` / `phase_y` PHASES of a pixel
        (made once): a pure move then crops whole pixels, blending nothing per frame. None once PHASE_MEMORY is spent."""
        picture = self._picture(group, i)
        if not (phase_x or phase_y):
            return picture
        key = (0 if group.level_of is None else int(group.level_of[i]), phase_x, phase_y)
        moved = group.phases.get(key)
        if moved is None:
            size = picture[0].width * picture[0].height * (4 + (picture[1] is not None))  # PIL keeps RGB in 4 bytes
            if self.phase_bytes + size > PHASE_MEMORY:
                return None
            self.phase_bytes += size
            rgb, alpha = (None if im is None else _shifted(im, phase_x / PHASES, phase_y / PHASES, im.size) for im in picture)
            assert rgb is not None
            moved = group.phases[key] = (rgb, alpha)
        return moved

    def _pixels(self, group: LayerGroup, i: int) -> np.ndarray:
        """The group's picture at frame index `i` as RGB (a backdrop) or RGBA pixels, made once per wind level."""
        level = 0 if group.level_of is None else int(group.level_of[i])
        pixels = group.arrays.get(level)
        if pixels is None:
            rgb, alpha = self._picture(group, i)
            pixels = group.arrays[level] = np.asarray(rgb if alpha is None else Image.merge("RGBA", (*rgb.split(), alpha)))
        return pixels

    def _picture(self, group: LayerGroup, i: int) -> tuple[Image.Image, Image.Image | None]:
        """The group's (rgb, alpha) picture at frame index `i`: its wind level's, made on first use."""
        level = 0 if group.level_of is None else int(group.level_of[i])
        picture = group.pictures.get(level)
        if picture is not None:
            return picture
        if group.owner is not None and group.level_of is not None:
            self._picture(group.owner, i)  # makes this level of its foreground too
            return group.pictures[level]
        assert group.canvas is not None
        wind = 0.0 if group.level_wind is None else float(group.level_wind[level])
        rgb: Image.Image | None = None
        alpha: Image.Image | None = None
        for index, (sway, run_rgb, run_alpha) in enumerate(group.runs):
            if sway and wind:
                run_rgb = _sheared(run_rgb, sway * wind, group.canvas, self.ctx.ground_line)
                run_alpha = None if run_alpha is None else _sheared(run_alpha, sway * wind, group.canvas, self.ctx.ground_line)
                if group.cover is not None and index == len(group.runs) - 1:
                    group.cover.pictures[level] = (run_rgb, run_alpha)  # the same foreground, laid over the figures
            if rgb is None:
                rgb, alpha = run_rgb, run_alpha
                continue
            if any(rgb is stored for _, stored, _ in group.runs):
                rgb = rgb.copy()  # the drawn pictures stay as they are, for the other levels
            rgb.paste(run_rgb, (0, 0), run_alpha)
            if alpha is not None and run_alpha is not None:
                alpha = ImageChops.lighter(alpha, run_alpha)
        assert rgb is not None
        group.pictures[level] = (rgb, alpha)
        if group.level_of is None:
            group.runs = []  # a still group needs only its one picture
        return rgb, alpha

    # -- per frame

    def _index(self, k: int) -> int:
        return int(np.clip(k - self.span[0], 0, len(self.span) - 1))

    def figure_matrix(self, k: int) -> np.ndarray:
        """World -> screen for the figures' plane (depth 1) at shot frame `k`."""
        return self.figure_matrices[self._index(k)]

    def frame(self, k: int, flashes: bool = True) -> np.ndarray:
        """Shot frame `k` as uint8 (H, W, 3); `flashes=False` leaves out lightning (a seam's reference)."""
        i = self._index(k)
        # 1. scenery behind the figures; what a nearer opaque flat hides is never resampled
        hidden_below = []
        limit = self.work_size[1]
        for group in reversed(self.back):
            hidden_below.append(limit)
            m = group.matrices[i]
            if group.solid_from is not None and m[1, 0] == 0:
                limit = min(limit, max(0, math.ceil(m[1, 1] * group.solid_from + m[1, 2]) + 1))
        image: Image.Image | None = None
        for group, bottom in zip(self.back, reversed(hidden_below)):
            image = self._composite(group, i, image, bottom)
        assert image is not None

        # 2. the figures, the foreground, the camera's roll, weather, overlays
        anchors, boxes = self._figures(image, k)
        cover = self.back[-1].cover
        for box in boxes if cover is not None else []:
            image = self._composite(cover, i, image, within=box)
        for group in self.front:
            image = self._composite(group, i, image)
        if self.work_size != (self.width, self.height):
            image, anchors = self._roll(image, float(self.roll[i]), anchors)
        t = k / self.clock.fps
        m = self.figure_matrices[i]
        shift = (m[0, 0] * self.width / 2 + m[0, 1] * self.height / 2 + m[0, 2] - self.width / 2,
                 m[1, 0] * self.width / 2 + m[1, 1] * self.height / 2 + m[1, 2] - self.height / 2)  # fmt: skip
        self.flock.draw(image, t, shift)
        self.weather.draw(image, t, shift)
        if flashes:
            image = self.lightning.apply(image, k)
        if self.tilt_shift is not None:
            image = self.tilt_shift.apply(image)
        self._overlays(image, anchors)
        return np.array(image)

    def _roll(self, image: Image.Image, roll: float, anchors: list[tuple[float, float]]) -> tuple[Image.Image, list[tuple[float, float]]]:
        """Rotate the larger working frame by the camera's roll into the output frame."""
        mx, my = self.margin
        cx, cy = self.width / 2, self.height / 2
        cos, sin = math.cos(roll), math.sin(roll)
        # output q -> working p = c_work + R(-roll) (q - c)
        back = np.array([[cos, sin, cx + mx - cos * cx - sin * cy], [-sin, cos, cy + my + sin * cx - cos * cy], [0, 0, 1]])
        out = Image.fromarray(_warped(np.asarray(image), back, (0, 0), (self.width, self.height)))
        moved = []
        for x, y in anchors:
            dx, dy = x - cx - mx, y - cy - my
            moved.append((cx + cos * dx - sin * dy, cy + sin * dx + cos * dy))
        return out, moved

    def _composite(self, group: LayerGroup, i: int, under: Image.Image | None, bottom: int | None = None,
                   within: tuple[int, int, int, int] | None = None) -> Image.Image:  # fmt: skip
        """Move a group's picture to frame index `i` and lay it over `under` (the backdrop makes a new frame).

        Rows from `bottom` down are hidden by nearer flats and are left out; `within` limits it to a screen box.
        """
        w, h = self.work_size
        h = h if bottom is None else min(h, bottom)
        m = group.matrices[i]
        if group.content is None:
            assert under is not None
            return under
        # 1. the part of the screen the group's content covers this frame
        if group.base:
            sx0, sy0, sx1, sy1 = 0, 0, w, max(1, h)
        else:
            l, t, r, b = group.content
            pts = m @ np.array([[l, r, l, r], [t, t, b, b], [1, 1, 1, 1]], float)
            sx0, sy0 = max(0, math.floor(pts[0].min())), max(0, math.floor(pts[1].min()))
            sx1, sy1 = min(w, math.ceil(pts[0].max())), min(h, math.ceil(pts[1].max()))
        if within is not None:
            sx0, sy0, sx1, sy1 = max(sx0, within[0]), max(sy0, within[1]), min(sx1, within[2]), min(sy1, within[3])
        if sx1 <= sx0 or sy1 <= sy0:
            assert under is not None
            return under
        # 2. screen -> canvas pixels, then the cheapest resampling that is exact
        cv = group.canvas
        assert cv is not None
        to_canvas = np.array([[cv.r, 0, -cv.x0 * cv.r], [0, cv.r, -cv.y0 * cv.r], [0, 0, 1]]) @ np.linalg.inv(m)
        size = (sx1 - sx0, sy1 - sy0)
        # a pure move (a pan, a tracking shot, parallax without zoom) of a still picture snaps to 1/PHASES of a
        # pixel: whole-pixel crops of the picture or of its copy moved by that fraction (off by at most half a
        # phase). A swaying picture changes every few frames: it blends its fraction.
        px, py = round(PHASES * (to_canvas[0, 2] + sx0)), round(PHASES * (to_canvas[1, 2] + sy0))
        moved = self._phase(group, i, px % PHASES, py % PHASES) if group.level_of is None and _is_move(to_canvas) else None
        if moved is not None:
            rgb, alpha = (None if im is None else _shifted(im, px // PHASES, py // PHASES, size) for im in moved)
            assert rgb is not None
        elif _is_move(to_canvas) and all(abs(v - round(v)) < SUBPIXEL for v in to_canvas[:2, 2]):  # a crop
            x, y = round(to_canvas[0, 2]) + sx0, round(to_canvas[1, 2]) + sy0
            rgb, alpha = (None if im is None else _shifted(im, x, y, size) for im in self._picture(group, i))
            assert rgb is not None
        else:
            rgb, alpha = _resample(self._pixels(group, i), to_canvas, (sx0, sy0), size)
        if under is None:
            if size == self.work_size:
                return rgb
            under = Image.new("RGB", self.work_size)
        under.paste(rgb, (sx0, sy0), alpha)
        return under

    def _figures(self, image: Image.Image, k: int) -> tuple[list[tuple[float, float]], list[tuple[int, int, int, int]]]:
        """Draw every figure at frame `k`; return where each one's label goes, and the screen box it was drawn in."""
        if not self.scene.figures:
            return [], []
        draw = _Extent(ImageDraw.Draw(image))
        m = self.figure_work_matrices[self._index(k)]
        ww, wh = self.work_size
        scale = math.sqrt(abs(np.linalg.det(m[:2, :2])))
        roll = math.atan2(m[1, 0], m[0, 0])
        anchors = []
        for index, (spec, palette) in enumerate(zip(self.scene.figures, self.palettes)):
            track = self.blocking.track(index, np.array([k]))
            feet = m @ np.array([track.x[0], self.ctx.ground_line - track.lift[0], 1.0])
            size = PERSON_HEIGHT * self.height * spec.height * scale
            if not (-size < feet[0] < ww + size and -size < feet[1] < wh + 2 * size):
                anchors.append((math.nan, math.nan))
                continue
            if track.lift[0] < 1.0 and spec.kind != "bird":  # a shadow on the ground beneath
                x, y = int(np.clip(feet[0], 0, ww - 1)), int(np.clip(feet[1] + 1, 0, wh - 1))
                ground = image.getpixel((x, y))
                shade = tuple(int(v * 0.6) for v in ground)  # type: ignore[union-attr]
                draw.ellipse((feet[0] - 0.16 * size, feet[1] - 0.025 * size, feet[0] + 0.16 * size, feet[1] + 0.025 * size), fill=shade)
            pose = Pose(x=float(feet[0]), y=float(feet[1]), size=size, roll=roll, facing=float(track.facing[0]),
                        phase=float(track.phase[0]), t=float(track.t[0]), action=self.blocking.actions[index])  # fmt: skip
            anchors.append(draw_figure(draw, spec, palette, pose))  # type: ignore[arg-type]
        return anchors, draw.boxes()

    def _overlays(self, image: Image.Image, anchors: list[tuple[float, float]]) -> None:
        """Names above figures, the camera tag, the caption band."""
        for sprite, (x, top) in zip(self.labels, anchors):
            if math.isnan(x):
                continue
            lx = min(max(0.0, x - sprite.size[0] / 2), self.width - sprite.size[0])
            ly = min(max(0.0, top - sprite.size[1] - 0.01 * self.height), self.height - sprite.size[1])
            sprite.paste(image, lx, ly)
        if self.tag is not None:
            margin = max(2, round(0.015 * self.height))
            self.tag.paste(image, margin, margin)
        if self.caption is not None:
            sprite, top = self.caption
            sprite.paste(image, 0, top)


# ---------------------------------------------------------------- resampling


def _resample(pixels: np.ndarray, a: np.ndarray, origin: tuple[int, int],
              size: tuple[int, int]) -> tuple[Image.Image, Image.Image | None]:  # fmt: skip
    """Sample a picture's RGB or RGBA `pixels` through screen->canvas matrix `a` for the screen rect at `origin`:
    (rgb, alpha), the alpha being the same RGBA image (PIL pastes through its alpha band) or None."""
    out = _warped(pixels, a, origin, size)
    if out.shape[2] == 3:
        return Image.fromarray(out), None
    image = Image.frombuffer("RGBA", size, out, "raw", "RGBA", 0, 1)
    return image, image


def _warped(pixels: np.ndarray, a: np.ndarray, origin: tuple[int, int], size: tuple[int, int]) -> np.ndarray:
    """Bilinear samples of `pixels` at `a` (output -> input, continuous coordinates) of every pixel of the `size`
    rect at `origin`. OpenCV's fixed-point warp costs a fraction of PIL's resampling; it does not smooth a
    shrink, and no camera move here shrinks a layer by much (a dolly zoom's foreground the most, to 3/4)."""
    # continuous coordinates (PIL's) -> pixel centres (OpenCV's): centre q + 1/2 maps to p + 1/2
    m = a @ np.array([[1.0, 0, origin[0] + 0.5], [0, 1.0, origin[1] + 0.5], [0, 0, 1]])
    m[:2, 2] -= 0.5
    return cv2.warpAffine(pixels, m[:2], size, flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REPLICATE)  # fmt: skip


def _is_move(a: np.ndarray) -> bool:
    """Whether affine `a` only moves (no scaling, no turning)."""
    return abs(a[0, 1]) < 1e-12 and abs(a[1, 0]) < 1e-12 and abs(a[0, 0] - 1) < 1e-9 and abs(a[1, 1] - 1) < 1e-9


def _shifted(image: Image.Image, x: float, y: float, size: tuple[int, int]) -> Image.Image:
    """The `size` window of `image` whose corner is at (x, y): whole-pixel crops, blended for the fraction
    (what bilinear resampling does for a pure move, for a fraction of its cost)."""
    ix, iy = math.floor(x + SUBPIXEL), math.floor(y + SUBPIXEL)
    fx, fy = x - ix, y - iy
    fx, fy = (0.0 if abs(f) < SUBPIXEL else f for f in (fx, fy))
    w, h = size

    def row(top: int) -> Image.Image:
        left = image.crop((ix, top, ix + w, top + h))
        return Image.blend(left, image.crop((ix + 1, top, ix + 1 + w, top + h)), fx) if fx else left

    upper = row(iy)
    return Image.blend(upper, row(iy + 1), fy) if fy else upper


def _sheared(image: Image.Image, shear: float, canvas: Canvas, base_y: float) -> Image.Image:
    """A canvas's picture bent by the wind: every row moved by -shear * its height above `base_y` (world)."""
    data = (1.0, shear, shear * (canvas.y0 - base_y) * canvas.r, 0.0, 1.0, 0.0)
    return _supersampled(image, image.size, data, (2, 1))  # rows stay rows: only x needs the finer samples


def _supersampled(image: Image.Image, size: tuple[int, int], data: tuple[float, ...],
                  factor: tuple[int, int] = (2, 2)) -> Image.Image:  # fmt: skip
    """An affine resample (output -> input `data`, as Image.transform takes it) made of nearest samples on a
    finer grid averaged down: smooth edges and half-pixel steps at a third of the cost of PIL's bilinear."""
    fx, fy = factor
    a, b, c, d, e, f = data
    fine = image.transform((size[0] * fx, size[1] * fy), Image.Transform.AFFINE,
                           (a / fx, b / fy, c, d / fx, e / fy, f), Image.Resampling.NEAREST)  # fmt: skip
    return fine.reduce(factor)


def _matte(image: Image.Image) -> tuple[Image.Image, Image.Image]:
    """An RGBA picture as (rgb, alpha), its transparent pixels in its visible pixels' mean colour (no dark
    fringes when resampled)."""
    rgb, alpha = image.convert("RGB"), image.getchannel("A")
    solid = alpha.point([0] + [255] * 255)
    if solid.getbbox() is not None:
        mean = ImageStat.Stat(rgb, solid).mean
        rgb.paste(tuple(int(v) for v in mean), mask=ImageChops.invert(solid))
    return rgb, alpha


class _Extent:
    """An ImageDraw that remembers the screen box of what it drew (where the foreground lies again over figures)."""

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

    def boxes(self) -> list[tuple[int, int, int, int]]:
        """The whole-pixel box around everything drawn (none if nothing was)."""
        x0, y0, x1, y1 = self.box
        return [(math.floor(x0), math.floor(y0), math.ceil(x1), math.ceil(y1))] if x0 < x1 else []
