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

A backend keeps the scenery it drew for the last shots it rendered (`Scenery`: the layers'
pictures and where they go each frame), so a shot's later clips start on its drawn layers:
every clip after a shot's first is one of its continuations (clips are at most 4 s).

Which frames each strategy reads:
    text_to_video, extend_backward    start from the prompt (`conditioning` is ignored)
    image_to_video, last_frame_i2v    start on conditioning[-1] (returned as frame 0)
    continue_video, loop_close        continue after conditioning[-1]
    any, when end_conditioning given  lead into end_conditioning[0] (required by
                                      extend_backward and loop_close)
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import cv2
import numpy as np
from PIL import Image, ImageDraw
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
    Extent,
    Flock,
    Grade,
    Lightning,
    TiltShift,
    Weather,
    caption_sprite,
    label_sprite,
    lay,
    premultiplied,
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
SUBPIXEL = 1 / 256  # a move this close to whole pixels is a copy (8-bit pixels cannot show the rest)
PHASES = 4  # a pure move snaps to this fraction of a pixel, from copies of the picture moved by each (see _composite)
PHASE_MEMORY = 32 << 20  # bytes of such copies one renderer keeps; past that, moves blend their fraction per frame
SEAM_DETAIL_SECONDS = 0.5  # the given frame's picture dissolves into the scene over this
SEAM_COLOUR_SECONDS = 1.0  # its overall colour and brightness over this
SHOTS_KEPT = 2  # drawn shots a backend keeps: the shot it makes, and its loop's closing lap or another take
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
    # 5: composited in numpy with OpenCV: premultiplied flats (cleaner edges), the wind's sway in each flat's warp,
    #    round joints drawn as discs, tilt shift from two halvings.
    # 6: seams joined by OpenCV: the given frame's detail moved by a bilinear warp at 1/32 pixel, its colour by a table.
    version = "6"
    description = "embedded procedural previz renderer: no weights, no GPU, deterministic"
    # A preview of what a real model will make: its prompts are written as a text-to-video
    # model of today reads them best (the animatic itself picks scenery and figures from their words).
    prompt_shape = PromptShape(max_words=120)

    class Options(BackendOptions):
        caption: bool = Field(True, description="burn the shot's caption into a band at the bottom")
        labels: bool = Field(True, description="write each figure's name above it")
        camera_tag: bool = Field(True, description="a small top-left tag naming the camera move")

    def __init__(self, options: BackendOptions | None = None) -> None:
        super().__init__(options)
        self.sceneries = Sceneries()  # one backend makes one shot's clips and takes (flows.shots.make_shot)

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
            frames=_clip_frames(request, scene, options, metadata, self.sceneries),
            context_frames=1 if request.strategy in STARTS_ON_GIVEN else 0,
            metadata=metadata,
        )


class Sceneries:
    """The scenery a backend drew for the last shots it rendered (SHOTS_KEPT of them), by shot."""

    def __init__(self) -> None:
        self._kept: OrderedDict[str, Scenery] = OrderedDict()  # the newest last
        self._lock = threading.Lock()  # a backend may serve several threads (the flows make one per shot)

    @staticmethod
    def shot_of(request: ClipRequest) -> str:
        """What the clip's shot is drawn from: every field but those about the clip alone (a field added later
        to ClipRequest then only misses), and the shot's length and lap (a loop's closing clip has its own camera)."""
        shot = request.model_dump_json(exclude={"num_frames", "shot_offset_frames", "shot_total_frames", "strategy",
                                                "conditioning", "end_conditioning", "caption", "negative_prompt"})  # fmt: skip
        return f"{shot} {shot_lap(request)}"

    def __len__(self) -> int:
        return len(self._kept)

    def find(self, shot: str) -> Scenery | None:
        with self._lock:
            scenery = self._kept.get(shot)
            if scenery is not None:
                self._kept.move_to_end(shot)
            return scenery

    def keep(self, shot: str, scenery: Scenery) -> None:
        with self._lock:
            self._kept[shot] = scenery
            self._kept.move_to_end(shot)
            while len(self._kept) > SHOTS_KEPT:
                self._kept.popitem(last=False)


def shot_lap(request: ClipRequest) -> tuple[int, int | None]:
    """The clip's shot: its length in frames, and where a loop's closing clip starts handing its camera and
    blocking over to the next lap (frame 0's at the wrap; None for any other clip)."""
    total = request.shot_total_frames or request.shot_offset_frames + request.num_frames
    return total, request.shot_offset_frames if request.strategy == "loop_close" else None


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


def _clip_frames(request: ClipRequest, scene: Scene, options: AnimaticBackend.Options, metadata: dict[str, Any],
                 sceneries: Sceneries) -> Iterator[np.ndarray]:  # fmt: skip
    """The clip's frames, one at a time; seams join them to the given frames where there are some."""
    shot = Sceneries.shot_of(request)
    renderer = ShotRenderer(request, scene, options, scenery=sceneries.find(shot))
    sceneries.keep(shot, renderer.scenery)
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
        residual = cv2.subtract(given, renderer.frame(anchor, flashes=False), dtype=cv2.CV_32F)
        self.colour = np.array(cv2.mean(residual)[:3], np.float32)
        self.detail = residual
        self.detail -= self.colour
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

    def weights(self, k: int) -> tuple[float, float]:
        """(detail, colour): how much of the given frame's difference frame `k` takes."""
        distance = abs(k - self.anchor)
        return self.weight(distance, self.detail_frames), self.weight(distance, self.colour_frames)

    @staticmethod
    def join_all(seams: list[Seam], frame: np.ndarray, k: int) -> np.ndarray:
        """Frame `k` with every nearby seam's difference added (a clip between two anchors blends both).

        The colour offsets go through a per-channel table, and the moved detail is added by one
        OpenCV sum that rounds and saturates as it writes uint8: 2 ms a frame where numpy's
        float passes and PIL's channel-by-channel warps took 14."""
        near = [(seam, *seam.weights(k)) for seam in seams if seam.touches(k)]
        if not near:
            return frame
        offset = np.zeros(3, np.float32)
        for seam, _, colour in near:
            offset += colour * seam.colour
        table = np.clip(np.rint(np.arange(256, dtype=np.float32)[:, None] + offset), 0, 255).astype(np.uint8)
        shifted = cv2.LUT(frame, table.reshape(256, 1, 3))
        moved = [(seam, detail) for seam, detail, _ in near if detail > 0.0]
        if not moved:
            return shifted
        if len(moved) == 1:
            [(seam, weight)] = moved
            return cv2.addWeighted(shifted, 1.0, seam.detail_at(k), weight, 0.0, dtype=cv2.CV_8U)
        added = sum(seam.detail_at(k) * weight for seam, weight in moved)
        return cv2.addWeighted(shifted, 1.0, added, 1.0, 0.0, dtype=cv2.CV_8U)

    def detail_at(self, k: int) -> np.ndarray:
        """The residual's detail moved the way the camera moved the figures' plane since the anchor."""
        if not self.follow_camera:
            return self.detail
        move = self.renderer.figure_matrix(k) @ np.linalg.inv(self.renderer.figure_matrix(self.anchor))
        if np.allclose(move, np.eye(3), atol=1e-4):
            return self.detail
        h, w = self.detail.shape[:2]
        # no difference comes in from past the given frame's edges
        return _warped(self.detail, np.linalg.inv(move), (0, 0), (w, h), border=cv2.BORDER_CONSTANT)


# ---------------------------------------------------------------- the renderer


@dataclass
class LayerGroup:
    """Neighbouring layers the camera moves alike, drawn once on one canvas and moved as one.

    A layer the wind bends is a group of its own: the wind shears its picture through the
    group's matrix every frame (a bounded set of wind levels, the one nearest each frame's
    wind), which the warp that moves it does at no extra cost; nothing swayed is stored.
    Pictures are premultiplied colour + clearness (effects.premultiplied).
    """

    layers: list[LayerSpec]
    matrices: np.ndarray  # world -> screen, with the wind's sway, one per frame of the renderer's span
    base: bool  # the opaque backdrop (sky or back wall)
    canvas: Canvas | None = None  # the geometry of the picture (world box, density)
    picture: np.ndarray | None = None  # (h, w, 4) premultiplied, graded
    sway: float = 0.0  # the shear the wind gives it at full wind (0: still)
    level_of: np.ndarray | None = None  # each frame's wind level; None: nothing sways
    level_wind: np.ndarray | None = None  # the wind at each level
    phases: dict[tuple[int, int], np.ndarray] = field(default_factory=dict)  # the picture moved by fractions
    content: tuple[float, float, float, float] | None = None  # world box holding something visible
    boxes: list[tuple[float, float, float, float]] = field(default_factory=list)  # world boxes holding all of it
    solid_from: float | None = None  # world y below which the canvas is opaque everywhere
    cover: LayerGroup | None = None  # the foreground drawn into this group, kept apart to lay over the figures
    # per frame of the span, worked out once for all of them (ShotRenderer._place), not again every frame:
    to_canvas: np.ndarray | None = None  # (n, 3, 3) screen -> canvas pixels
    pure_move: np.ndarray | None = None  # (n,) bool: the picture only moves (no scaling, no turning)
    whole_pixels: np.ndarray | None = None  # (n,) bool: ... and by whole pixels
    solid_rows: list[int | None] = field(default_factory=list)  # the screen row from which it is opaque (None: turned)
    screen_bounds: np.ndarray | None = None  # (n, boxes, 4) int: where `boxes` land on the screen (bottoms unclipped)


@dataclass(frozen=True)
class Scenery:
    """A shot's layer groups as drawn, the same for every clip of the shot: their pictures and, per frame of the
    shot, where each one goes. Nothing in them changes once drawn, so renderers share them."""

    groups: tuple[LayerGroup, ...]
    in_front: int  # how many of the last groups go over the figures (the foreground, unless drawn into the backdrop)

    def fresh(self) -> tuple[list[LayerGroup], list[LayerGroup]]:
        """(behind the figures, in front of them): copies sharing the pictures, without copies moved by fractions of
        a pixel yet. A renderer makes those as its frames ask, within its own PHASE_MEMORY, so a clip's frames never
        depend on the clips rendered before it."""

        def own(group: LayerGroup) -> LayerGroup:
            return replace(group, phases={}, cover=None if group.cover is None else own(group.cover))

        groups = [own(group) for group in self.groups]
        split = len(groups) - self.in_front
        return groups[:split], groups[split:]


class ShotRenderer:
    """Renders any frame of one shot: layers drawn once, then per frame camera + figures + effects."""

    def __init__(self, request: ClipRequest, scene: Scene, options: AnimaticBackend.Options,
                 scenery: Scenery | None = None):  # fmt: skip
        """`scenery`: the shot's layers as an earlier clip of the same shot drew them (else they are drawn)."""
        self.width, self.height, self.scene = request.width, request.height, scene
        total, loop_from = shot_lap(request)
        self.clock = ShotClock(request.fps, total, loop_from=loop_from)
        self.move = request.camera
        self.phase_bytes = 0  # what the pictures' copies moved by fractions of a pixel take (see _phase)
        self.reach: dict[int, tuple[float, float, float, float]] = {}  # figure -> its last drawn box, about its feet, in sizes
        self.blocking = Blocking(scene.figures, self.move, self.clock, self.width, self.height)
        self.ctx = Ctx(scene, self.width, self.height, horizon_of(scene) * self.height, GROUND_LINE * self.height)
        # tilt shift: the lens effect (LensEffect.TILT_SHIFT), or the camera value of older storyboards
        self.miniature = self.move is CameraMove.TILT_SHIFT or LensEffect.TILT_SHIFT in request.effects
        self.grade = Grade(scene, saturation=1.4 if self.miniature else 1.0)

        # 1. the camera over the whole shot (and a frame either side, where seams anchor)
        self.span = np.arange(-2, total + 2)
        self.first = int(self.span[0])  # the span's first shot frame (frame k is self.span[k - self.first])
        self.poses = camera_poses(self.move, self.clock, self.span, self.blocking)
        self.figure_matrices = layer_matrices(self.poses, 1.0, self.width, self.height)
        # A rolling camera rotates everything alike: compose a larger frame without the roll (still flats are
        # then whole-pixel crops, and what nearer flats hide is whole rows), then rotate it once.
        self.roll = self.poses.roll
        most = float(np.abs(self.roll).max())
        mx = math.ceil((self.width * (math.cos(most) - 1) + self.height * math.sin(most)) / 2) + 1 if most > 0 else 0
        my = math.ceil((self.width * math.sin(most) + self.height * (math.cos(most) - 1)) / 2) + 1 if most > 0 else 0
        self.margin = (mx, my)
        self.work_size = (self.width + 2 * mx, self.height + 2 * my)
        self.to_work = np.array([[1.0, 0, mx], [0, 1.0, my], [0, 0, 1.0]])
        self.unrolled = replace(self.poses, roll=np.zeros_like(self.roll))
        self.figure_work_matrices = self.to_work @ layer_matrices(self.unrolled, 1.0, self.width, self.height)
        self.figure_scales = np.sqrt(np.abs(np.linalg.det(self.figure_work_matrices[:, :2, :2]))).tolist()
        self.tracks = self.blocking.tracks(self.span)  # every figure's place, pose and rhythm over the span

        # 2. the layers, grouped by identical motion, each group drawn once on a canvas. Without parallax
        # (static, pan, tilt, zoom) still layers move with the backdrop: they are drawn into its picture, so a
        # frame moves few pictures; a still foreground drawn in is laid again only where figures stand (`cover`).
        if scenery is None:
            groups = self._groups(layers_for(scene), base=True)
            folded = len(groups[-1].layers) > 1
            for group in groups:
                self._draw(group, foreground_apart=folded and group is groups[-1])
            scenery = Scenery(tuple(groups), 0 if folded else 1)
        self.scenery = scenery
        self.back, self.front = scenery.fresh()

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
        """Neighbouring still layers with one camera motion share a group: with no parallax (static, pan, tilt,
        zoom) and no wind the whole backdrop is one picture, moved once per frame. A swaying layer is its own."""
        groups: list[LayerGroup] = []
        for layer in layers:
            m = self._layer_matrices(layer)
            still = not self._sway(layer) and not (groups and any(self._sway(other) for other in groups[-1].layers))
            if groups and still and np.allclose(groups[-1].matrices, m, rtol=0, atol=1e-9):
                groups[-1].layers.append(layer)
            else:
                groups.append(LayerGroup([layer], m, base=base and not groups))
        return groups

    def _sway(self, layer: LayerSpec) -> float:
        """How far the wind bends a layer (its shear at full wind); 0 without wind."""
        return SWAY_SHEAR * layer.sway if layer.sway and "wind" in self.scene.weather else 0.0

    def _draw(self, group: LayerGroup, foreground_apart: bool = False) -> None:
        """Draw a group's layers onto a picture covering every view of it in the shot (`foreground_apart`: its
        last layer is the foreground, also drawn on its own to lay over the figures)."""
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
        group.sway = max(self._sway(layer) for layer in group.layers)  # one layer, if any sways
        reach = max(abs(y0 - self.ctx.ground_line), abs(y1 - self.ctx.ground_line))  # the farthest row from the roots
        bend = group.sway * reach  # world px the wind moves that row at most
        x0, x1 = max(x0 - bend, cx - 12 * self.width), min(x1 + bend, cx + 12 * self.width)
        density = min(1.0, math.sqrt(MAX_LAYER_PIXELS / max(1.0, (x1 - x0) * (y1 - y0))))
        if density == 1.0:  # canvas pixels on the screen's grid: a still camera copies them, resampling nothing
            x0, y0 = math.floor(x0), math.floor(y0)

        # 2. draw the layers, back to front (the foreground apart on its own canvas when asked)
        look = self.scene.look
        runs = [group.layers[:-1], group.layers[-1:]] if foreground_apart else [group.layers]
        pictures = []
        for index, layers in enumerate(runs):
            mode = "RGB" if group.base and index == 0 else "RGBA"
            canvas = Canvas((x0, y0, x1, y1), density, mode, look.sky_horizon, self.scene.world_seed)
            for layer in layers:
                layer.draw(canvas, self.ctx)
            picture = premultiplied(canvas.image, self.grade)
            if "watercolor" in self.scene.styles:  # soft edges (premultiplied: no dark fringes)
                picture = cv2.GaussianBlur(picture, (0, 0), 1.2 * self.ctx.u * density)
            pictures.append(picture)
            group.canvas = canvas
        group.picture = pictures[0] if len(pictures) == 1 else _over(*pictures)

        # 3. the wind levels: as many as keep each step under SWAY_STEP_PX; the sway joins the matrices
        if group.sway > 0.0:
            wind = wind_sway(self.clock, self.span, 1.0)
            low, high = float(wind.min()), float(wind.max())
            steps = math.ceil(group.sway * (high - low) * reach * density / SWAY_STEP_PX)
            count = max(2, min(steps + 1, MAX_SWAY_LEVELS))
            group.level_wind = np.linspace(low, high, count)
            group.level_of = np.rint((wind - low) / max(high - low, 1e-12) * (count - 1)).astype(int)
            shear = group.sway * group.level_wind[group.level_of]
            sway = np.zeros_like(group.matrices)
            sway[:, 0, 0] = sway[:, 1, 1] = sway[:, 2, 2] = 1.0
            sway[:, 0, 1], sway[:, 0, 2] = -shear, shear * self.ctx.ground_line  # x -= shear * (y - roots)
            group.matrices = group.matrices @ sway

        # 4. what per-frame compositing needs: where the content is, which rows are opaque
        if foreground_apart:
            group.cover = LayerGroup(group.layers[-1:], group.matrices, base=False, canvas=group.canvas,
                                     picture=pictures[-1])  # fmt: skip
            self._coverage(group.cover)
            self._place(group.cover)
        if group.base:
            group.content = (x0, y0, x1, y1)
            group.solid_from = y0
        else:
            self._coverage(group)
        self._place(group)

    @staticmethod
    def _coverage(group: LayerGroup) -> None:
        """Where a transparent group's content is (a few boxes holding all of it) and below which row it is opaque."""
        assert group.canvas is not None and group.picture is not None
        x0, y0, density = group.canvas.x0, group.canvas.y0, group.canvas.r
        alpha = 255 - group.picture[..., 3]
        opaque_rows = np.flatnonzero(~(alpha == 255).all(axis=1))
        last_open = opaque_rows[-1] + 1 if len(opaque_rows) else 0
        if last_open < alpha.shape[0]:
            group.solid_from = y0 + (last_open + 1) / density
        boxes = _content_boxes(alpha > 0)
        group.boxes = [(x0 + l / density, y0 + t / density, x0 + r / density, y0 + b / density) for l, t, r, b in boxes]
        if boxes:
            l, t, r, b = np.array(group.boxes).T
            group.content = (float(l.min()), float(t.min()), float(r.max()), float(b.max()))

    def _place(self, group: LayerGroup) -> None:
        """Work out at once, for every frame of the span, what compositing needs of the group's matrix: the
        screen -> canvas map, whether it only moves the picture, the first opaque row, where its boxes land."""
        cv, m = group.canvas, group.matrices
        assert cv is not None
        to_pixels = np.array([[cv.r, 0, -cv.x0 * cv.r], [0, cv.r, -cv.y0 * cv.r], [0, 0, 1]])
        a = group.to_canvas = to_pixels @ np.linalg.inv(m)
        unturned = (np.abs(a[:, 0, 1]) < 1e-12) & (np.abs(a[:, 1, 0]) < 1e-12)
        group.pure_move = unturned & (np.abs(a[:, 0, 0] - 1) < 1e-9) & (np.abs(a[:, 1, 1] - 1) < 1e-9)
        group.whole_pixels = (np.abs(a[:, :2, 2] - np.round(a[:, :2, 2])) < SUBPIXEL).all(axis=1)
        if group.solid_from is not None:  # below it, an unturned frame's rows are all opaque
            rows = np.ceil(m[:, 1, 1] * group.solid_from + m[:, 1, 2]) + 1
            turns = m[:, 1, 0].tolist()
            group.solid_rows = [int(row) if turn == 0 else None for row, turn in zip(rows.tolist(), turns)]
        else:
            group.solid_rows = [None] * len(m)
        if group.boxes:
            group.screen_bounds = _screen_bounds(group.boxes, m, self.work_size[0])

    def _phase(self, group: LayerGroup, phase_x: int, phase_y: int) -> np.ndarray | None:
        """The group's picture, its content moved left / up by `phase_x` / `phase_y` PHASES of a pixel (made
        once): a pure move then crops whole pixels, resampling nothing per frame. None once PHASE_MEMORY is spent."""
        picture = group.picture
        assert picture is not None
        if not (phase_x or phase_y):
            return picture
        moved = group.phases.get((phase_x, phase_y))
        if moved is None:
            if self.phase_bytes + picture.nbytes > PHASE_MEMORY:
                return None
            self.phase_bytes += picture.nbytes
            h, w = picture.shape[:2]
            shift = np.array([[1.0, 0, phase_x / PHASES], [0, 1.0, phase_y / PHASES], [0, 0, 1]])
            moved = group.phases[(phase_x, phase_y)] = _warped(picture, shift, (0, 0), (w, h))
        return moved

    # -- per frame

    def _index(self, k: int) -> int:
        return min(max(k - self.first, 0), len(self.span) - 1)

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
            solid = group.solid_rows[i]
            if solid is not None:
                limit = min(limit, max(0, solid))
        image = np.empty((self.work_size[1], self.work_size[0], 3), np.uint8)
        image[limit:] = 0  # under the backdrop's hidden rows (a nearer flat covers them)
        view = self._view(float(self.roll[i]))
        for group, bottom in zip(self.back, reversed(hidden_below)):
            self._composite(group, i, image, bottom, within=view)

        # 2. the figures, the foreground, the camera's roll, weather, overlays
        anchors, boxes = self._figures(image, k)
        cover = self.back[-1].cover
        for box in boxes if cover is not None else []:
            self._composite(cover, i, image, within=_meet(box, view))
        for group in self.front:
            self._composite(group, i, image, within=view)
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
        return image

    def _view(self, roll: float) -> tuple[int, int, int, int]:
        """The part of the working frame that the output frame, turned by `roll`, shows (with a pixel to spare for
        its bilinear samples): the rest of the working frame is never looked at."""
        ww, wh = self.work_size
        cos, sin = abs(math.cos(roll)), abs(math.sin(roll))
        hx, hy = (self.width * cos + self.height * sin) / 2 + 2, (self.width * sin + self.height * cos) / 2 + 2
        return max(0, math.floor(ww / 2 - hx)), max(0, math.floor(wh / 2 - hy)), min(ww, math.ceil(ww / 2 + hx)), min(wh, math.ceil(wh / 2 + hy))

    def _roll(self, image: np.ndarray, roll: float, anchors: list[tuple[float, float]]) -> tuple[np.ndarray, list[tuple[float, float]]]:
        """Rotate the larger working frame by the camera's roll into the output frame."""
        mx, my = self.margin
        cx, cy = self.width / 2, self.height / 2
        cos, sin = math.cos(roll), math.sin(roll)
        # output q -> working p = c_work + R(-roll) (q - c)
        back = np.array([[cos, sin, cx + mx - cos * cx - sin * cy], [-sin, cos, cy + my + sin * cx - cos * cy], [0, 0, 1]])
        out = _warped(image, back, (0, 0), (self.width, self.height))
        moved = []
        for x, y in anchors:
            dx, dy = x - cx - mx, y - cy - my
            moved.append((cx + cos * dx - sin * dy, cy + sin * dx + cos * dy))
        return out, moved

    def _composite(self, group: LayerGroup, i: int, frame: np.ndarray, bottom: int | None = None,
                   within: tuple[int, int, int, int] | None = None) -> None:  # fmt: skip
        """Move a group's picture to frame index `i` and lay it on `frame` (the backdrop fills it), in place.

        Rows from `bottom` down are hidden by nearer flats and are left out; `within` limits it to a screen box.
        Only the screen boxes its content covers are resampled and laid (a foreground is mostly clear)."""
        w, h = self.work_size
        h = h if bottom is None else min(h, bottom)
        if group.content is None or h <= 0:
            return
        assert group.picture is not None and group.to_canvas is not None
        # screen -> canvas pixels, then per box the cheapest resampling that is exact
        to_canvas, move, whole = group.to_canvas[i], group.pure_move[i], group.whole_pixels[i]
        solid = group.solid_rows[i]
        solid = h if solid is None else solid
        boxes = [(0, 0, w, h)] if group.base else _disjoint(group.screen_bounds[i].tolist(), h) if group.boxes else []
        for sx0, sy0, sx1, sy1 in boxes:
            if within is not None:
                sx0, sy0, sx1, sy1 = _meet((sx0, sy0, sx1, sy1), within)
            if sx1 <= sx0 or sy1 <= sy0:
                continue
            size = (sx1 - sx0, sy1 - sy0)
            pixels = None
            # a pure move (a pan, a tracking shot, parallax without zoom) of a still picture snaps to 1/PHASES of a
            # pixel: whole-pixel crops of the picture or of its copy moved by that fraction (off by at most half a
            # phase); a swaying picture is sheared, so it is resampled
            if move and not group.sway:
                px, py = round(PHASES * (to_canvas[0, 2] + sx0)), round(PHASES * (to_canvas[1, 2] + sy0))
                moved = self._phase(group, px % PHASES, py % PHASES)
                pixels = None if moved is None else _crop(moved, px // PHASES, py // PHASES, size)
            if pixels is None and move and whole:
                pixels = _crop(group.picture, round(to_canvas[0, 2]) + sx0, round(to_canvas[1, 2]) + sy0, size)
            if pixels is None:
                pixels = _warped(group.picture, to_canvas, (sx0, sy0), size)
            # rows where the picture is opaque are copied; only the others are laid over what is there
            split = sy0 if group.base else min(sy1, max(sy0, solid))
            if split > sy0:
                lay(frame[sy0:split, sx0:sx1], pixels[: split - sy0])
            if split < sy1:
                cv2.cvtColor(pixels[split - sy0 :], cv2.COLOR_RGBA2RGB, dst=frame[split:sy1, sx0:sx1])

    def _figures(self, image: np.ndarray, k: int) -> tuple[list[tuple[float, float]], list[tuple[int, int, int, int]]]:
        """Draw every figure at frame `k`; return where each one's label goes, and the screen box it was drawn in."""
        if not self.scene.figures:
            return [], []
        i = self._index(k)
        m = self.figure_work_matrices[i]
        ww, wh = self.work_size
        scale = self.figure_scales[i]
        roll = math.atan2(m[1, 0], m[0, 0])
        anchors = []
        drawn = [math.inf, math.inf, -math.inf, -math.inf]
        for index, (spec, palette) in enumerate(zip(self.scene.figures, self.palettes)):
            track = self.tracks[index]
            feet = m @ np.array([track.x[i], self.ctx.ground_line - track.lift[i], 1.0])
            size = PERSON_HEIGHT * self.height * spec.height * scale
            if not (-size < feet[0] < ww + size and -size < feet[1] < wh + 2 * size):
                anchors.append((math.nan, math.nan))
                continue
            shade = None
            if track.lift[i] < 1.0 and spec.kind != "bird":  # a shadow on the ground beneath
                x, y = int(min(max(feet[0], 0), ww - 1)), int(min(max(feet[1] + 1, 0), wh - 1))
                shade = tuple(int(v * 0.6) for v in image[y, x].tolist())
            # drawn on a copy of the part of the frame it reached last frame (and a little more); if it reaches
            # past that, it is drawn again on what it did reach
            l, t, r, b = (v * size for v in self.reach.get(index, (-0.8, -1.5, 0.8, 0.3)))
            box = (feet[0] + l - 0.1 * size, feet[1] + t - 0.1 * size, feet[0] + r + 0.1 * size, feet[1] + b + 0.1 * size)
            while True:
                left, top = max(0, math.floor(box[0])), max(0, math.floor(box[1]))
                right, bottom = max(left + 1, min(ww, math.ceil(box[2]))), max(top + 1, min(wh, math.ceil(box[3])))
                patch = Image.fromarray(image[top:bottom, left:right]) if right <= ww and bottom <= wh else Image.new("RGB", (1, 1))
                draw = Extent(ImageDraw.Draw(patch))
                fx, fy = feet[0] - left, feet[1] - top
                if shade is not None:
                    draw.ellipse((fx - 0.16 * size, fy - 0.025 * size, fx + 0.16 * size, fy + 0.025 * size), fill=shade)
                pose = Pose(x=float(fx), y=float(fy), size=size, roll=roll, facing=float(track.facing[i]),
                            phase=float(track.phase[i]), t=float(track.t[i]), action=self.blocking.actions[index])  # fmt: skip
                top_x, top_y = draw_figure(draw, spec, palette, pose)  # type: ignore[arg-type]
                x0, y0, x1, y1 = draw.box[0] + left, draw.box[1] + top, draw.box[2] + left, draw.box[3] + top
                inside = (x0 >= left or left == 0) and (y0 >= top or top == 0) and (x1 <= right or right == ww) and (y1 <= bottom or bottom == wh)
                if inside or x1 <= 0 or y1 <= 0 or x0 >= ww or y0 >= wh:
                    break
                box = (x0, y0, x1, y1)
            if inside and patch.size == (right - left, bottom - top):
                image[top:bottom, left:right] = np.asarray(patch)
            self.reach[index] = ((x0 - feet[0]) / size, (y0 - feet[1]) / size, (x1 - feet[0]) / size, (y1 - feet[1]) / size)
            anchors.append((top_x + left, top_y + top))
            drawn = [min(drawn[0], x0), min(drawn[1], y0), max(drawn[2], x1), max(drawn[3], y1)]
        x0, y0, x1, y1 = drawn
        return anchors, [(math.floor(x0), math.floor(y0), math.ceil(x1), math.ceil(y1))] if x0 < x1 else []

    def _overlays(self, image: np.ndarray, anchors: list[tuple[float, float]]) -> None:
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


# ---------------------------------------------------------------- resampling and boxes


def _meet(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    """The overlap of two boxes (empty if they do not meet)."""
    return max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])


def _warped(pixels: np.ndarray, a: np.ndarray, origin: tuple[int, int], size: tuple[int, int],
            border: int = cv2.BORDER_REPLICATE) -> np.ndarray:
    """Bilinear samples of `pixels` at `a` (output -> input, continuous coordinates) of every pixel of the `size`
    rect at `origin`. OpenCV's fixed-point warp costs a fraction of PIL's resampling; it does not smooth a
    shrink, and no camera move here shrinks a layer by much (a dolly zoom's foreground the most, to 3/4)."""
    # continuous coordinates (PIL's) -> pixel centres (OpenCV's): centre q + 1/2 maps to p + 1/2
    m = a @ np.array([[1.0, 0, origin[0] + 0.5], [0, 1.0, origin[1] + 0.5], [0, 0, 1]])
    m[:2, 2] -= 0.5
    return cv2.warpAffine(pixels, m[:2], size, flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=border)


def _crop(picture: np.ndarray, x: int, y: int, size: tuple[int, int]) -> np.ndarray | None:
    """The `size` window of `picture` whose corner is at whole pixel (x, y); None if it reaches past the picture."""
    h, w = picture.shape[:2]
    if x < 0 or y < 0 or x + size[0] > w or y + size[1] > h:
        return None
    return picture[y : y + size[1], x : x + size[0]]


def _over(under: np.ndarray, over: np.ndarray) -> np.ndarray:
    """Premultiplied `over` laid on premultiplied `under` (both (h, w, 4)): a new picture."""
    clear = np.ascontiguousarray(over[..., 3])
    out = cv2.multiply(under, cv2.merge([clear] * 4), scale=1 / 255)  # colour and clearness both pass `over`
    colour = over.copy()
    colour[..., 3] = 0
    return cv2.add(out, colour)


BOX_BAND = 16  # canvas rows per band when looking for where a picture's content is
BOX_GAP = 24  # columns of nothing that part two boxes (narrower gaps cost less to resample than a box does)
MAX_BOXES = 6
BOX_COST = 6000  # a box's fixed cost (calls, matrices), in pixels of resampling


def _content_boxes(seen: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Disjoint canvas-pixel boxes (l, t, r, b) that together hold every True of `seen` with little else: columns
    of content above a row (tree trunks, posts) and one box below it (grass, rocks), the row that costs least."""
    rows = np.flatnonzero(seen.any(axis=1))
    if not len(rows):
        return []
    top, bottom = int(rows[0]), int(rows[-1]) + 1
    starts = np.arange(top, bottom, BOX_BAND)
    bands = np.logical_or.reduceat(seen[top:bottom], starts - top, axis=0)  # (bands, width): a band's columns
    above = np.logical_or.accumulate(bands, axis=0)  # columns with content in bands 0..j
    below = np.logical_or.accumulate(bands[::-1], axis=0)[::-1]  # in bands j..
    best: tuple[float, list[tuple[int, int, int, int]]] | None = None
    for split in range(len(starts) + 1):  # bands before `split` as columns, the rest as one box
        y = int(starts[split]) if split < len(starts) else bottom
        boxes = [(l, top, r, y) for l, r in _column_runs(above[split - 1])] if split else []
        if split < len(starts):
            cols = np.flatnonzero(below[split])
            boxes.append((int(cols[0]), y, int(cols[-1]) + 1, bottom))
        if len(boxes) > MAX_BOXES:
            continue
        cost = sum((r - l) * (b - t) + BOX_COST for l, t, r, b in boxes)
        if best is None or cost < best[0]:
            best = (cost, boxes)
    assert best is not None  # split 0 is one box
    # each column box starts where its own content does
    return [(l, t + int(np.flatnonzero(seen[t:b, l:r].any(axis=1))[0]), r, b) if b > t and seen[t:b, l:r].any() else (l, t, r, b)
            for l, t, r, b in best[1] if b > t]  # fmt: skip


def _column_runs(columns: np.ndarray) -> list[tuple[int, int]]:
    """(l, r) of the runs of True in `columns`, runs parted by fewer than BOX_GAP False joined."""
    cols = np.flatnonzero(columns)
    if not len(cols):
        return []
    breaks = np.flatnonzero(np.diff(cols) > BOX_GAP)
    lefts = np.concatenate([[cols[0]], cols[breaks + 1]])
    rights = np.concatenate([cols[breaks], [cols[-1]]]) + 1
    return [(int(l), int(r)) for l, r in zip(lefts, rights)]


def _screen_bounds(boxes: list[tuple[float, float, float, float]], m: np.ndarray, w: int) -> np.ndarray:
    """Where world `boxes` land on a screen `w` wide under each of matrices `m` (n, 3, 3): (n, boxes, 4) whole-pixel
    (left, top, right, bottom), the bottoms not yet cut at the screen's (or the hidden rows') edge."""
    b = np.array(boxes)
    xs, ys = b[:, [0, 2, 0, 2]], b[:, [1, 1, 3, 3]]
    row = m[:, :2, :, None, None]  # (n, 2, 3, 1, 1): each row's terms, to meet every corner of every box
    sx, sy = row[:, 0, 0] * xs + row[:, 0, 1] * ys + row[:, 0, 2], row[:, 1, 0] * xs + row[:, 1, 1] * ys + row[:, 1, 2]
    # a bilinear sample reaches a pixel past the content (a little more on a shrinking flat)
    left, top = np.maximum(np.floor(sx.min(axis=2)) - 2, 0), np.maximum(np.floor(sy.min(axis=2)) - 2, 0)
    right, bottom = np.minimum(np.ceil(sx.max(axis=2)) + 2, w), np.ceil(sy.max(axis=2)) + 2
    return np.stack([left, top, right, bottom], axis=-1).astype(int)


def _disjoint(bounds: list[list[int]], h: int) -> list[tuple[int, int, int, int]]:
    """Disjoint screen boxes covering `bounds` (one frame's _screen_bounds) above row `h` (a pixel laid twice would
    be laid darker: where two overlap, the later one keeps only what the earlier ones leave)."""
    out: list[tuple[int, int, int, int]] = []
    for left, top, right, bottom in bounds:
        box = (left, top, right, min(bottom, h))
        pieces = [box] if box[0] < box[2] and box[1] < box[3] else []
        for taken in out:
            pieces = [part for piece in pieces for part in _without(piece, taken)]
        out += pieces
    return out


def _without(box: tuple[int, int, int, int], taken: tuple[int, int, int, int]) -> list[tuple[int, int, int, int]]:
    """The parts of `box` outside `taken` (up to four boxes; none if empty)."""
    x0, y0, x1, y1 = box
    tx0, ty0, tx1, ty1 = taken
    if x0 >= x1 or y0 >= y1:
        return []
    if tx0 >= x1 or tx1 <= x0 or ty0 >= y1 or ty1 <= y0:
        return [box]
    parts = [(x0, y0, x1, ty0), (x0, ty1, x1, y1), (x0, max(y0, ty0), tx0, min(y1, ty1)), (tx1, max(y0, ty0), x1, min(y1, ty1))]
    return [p for p in parts if p[0] < p[2] and p[1] < p[3]]
