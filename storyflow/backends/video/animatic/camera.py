"""Camera and blocking: where the camera and every figure are at each frame of a shot.

Everything here is a function of the frame's index inside its *shot* (not inside the
clip), so a camera move that spans a 12 s shot made of three 4 s clips continues
smoothly across them, and any frame can be rendered on its own (continuations,
backward extension and loops only need another index).

The picture is a stack of flat layers at depths (sky at infinity, far hills, mid trees,
the ground the figures stand on at depth 1, the foreground). A camera pose becomes one
affine matrix per layer, world -> screen, in pixels:

    screen = c + s R (P - c + t)        c: the screen centre, R: the camera's roll
    s = zoom * d / (d - z)              dollying forward by z magnifies near layers more
    t = ((-x/d - yaw) W, (y/d + tilt) H)  moving sideways or up shifts near layers more

so pans and tilts move every layer alike, while tracking, crane, arc, dolly zoom and
drone shots move them with parallax.

Loops. In a loop shot the frame after the last is frame 0 again, but a pan does not
return by itself. The chain's closing clip (the only one that knows the shot loops)
therefore hands its *staging* (the camera's pose, where the figures are, the rhythm of
their limbs) over from this lap to the next one: it blends the shot as it goes on with
the shot as it starts again (`total_frames` earlier), with a smoothstep weight that is 0
where the clip starts and 1 at the wrap. Both ends keep position and speed, so the pan
eases back to where it began, a zoom breathes back out, a pacing figure drifts to its
first spot without walking backwards, and walkers turn to go back. Weather, wind and
lightning keep running forward; the seam blend covers what they leave different.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np

from storyflow.backends.video.animatic.scene import FigureSpec
from storyflow.core.models import CameraMove

PERSON_HEIGHT = 0.30  # of the frame height, for an adult at depth 1 and zoom 1
GROUND_LINE = 0.80  # where figures' feet stand, as a fraction of the frame height
WALK_SPEED = 0.25  # frame heights per second
RUN_SPEED = 0.62
FLY_SPEED = 0.22
MOVING_ACTIONS = ("walk", "run", "fly")
MAX_TRACK_WIDTHS = 5.0  # the farthest a tracking shot travels, in frame widths


@dataclass(frozen=True)
class ShotClock:
    """Frame indices inside a shot -> seconds and eased progress through the shot.

    `loop_from`: set for a loop shot's closing clip, the clip's first frame.
    """

    fps: int
    total_frames: int
    loop_from: int | None = None

    def next_lap(self, k: np.ndarray) -> np.ndarray:
        """How much of frame `k`'s staging is the next lap's (0..1); 0 outside a loop's closing clip."""
        k = np.asarray(k, dtype=np.float64)
        if self.loop_from is None:
            return np.zeros_like(k)
        # from the frame before the clip (the chain's last so far) to the wrap
        start, wrap = self.loop_from - 1, self.total_frames
        s = np.clip((k - start) / (wrap - start), 0.0, 1.0)
        return s * s * (3.0 - 2.0 * s)  # no jolt at either end: zero slope at 0 and 1

    @property
    def seconds(self) -> float:
        return self.total_frames / self.fps

    def time(self, k: np.ndarray) -> np.ndarray:
        return np.asarray(k, dtype=np.float64) / self.fps

    def progress(self, k: np.ndarray) -> np.ndarray:
        """0 at the shot's first frame, 1 at its last; held outside the shot."""
        u = np.asarray(k, dtype=np.float64) / max(1, self.total_frames - 1)
        return np.clip(u, 0.0, 1.0)

    def eased(self, k: np.ndarray) -> np.ndarray:
        """Progress with a gentle ease in and out, the way an operator moves a camera."""
        u = self.progress(k)
        return u + 0.5 * (u * u * (3.0 - 2.0 * u) - u)


@dataclass(frozen=True)
class Poses:
    """Camera poses for a run of frames (arrays, one entry per frame)."""

    x: np.ndarray  # sideways, in frame widths at depth 1
    y: np.ndarray  # up, in frame heights at depth 1
    z: np.ndarray  # forward, in depth units
    yaw: np.ndarray  # turn right, in frame widths
    tilt: np.ndarray  # look up, in frame heights
    zoom: np.ndarray
    roll: np.ndarray  # radians, counter-clockwise on screen


# ---------------------------------------------------------------- blocking


@dataclass(frozen=True)
class FigureTrack:
    """One figure over a run of frames (arrays)."""

    x: np.ndarray  # world x of the feet, pixels
    lift: np.ndarray  # pixels above the ground line
    facing: np.ndarray  # +1 faces right, -1 left
    phase: np.ndarray  # stride or rhythm phase, radians
    t: np.ndarray  # seconds into the shot


class Blocking:
    """Where each figure stands and how it moves, for any frame of the shot."""

    def __init__(self, figures: tuple[FigureSpec, ...], move: CameraMove, clock: ShotClock, width: int, height: int):
        self.figures, self.move, self.clock = figures, move, clock
        self.width, self.height = width, height
        count = len(figures)
        gap = min(0.17 * width, 0.72 * width / max(1, count), 0.5 * height)
        self.homes = [width / 2 + (i - (count - 1) / 2) * gap for i in range(count)]
        # a tracking shot follows a moving subject: standing figures walk
        self.actions = [
            "walk" if move is CameraMove.TRACKING_SHOT and f.action in ("stand", "dance") else f.action
            for f in figures
        ]
        movers = [i for i, a in enumerate(self.actions) if a in MOVING_ACTIONS]
        self.lead = movers[0] if movers else None
        lead_action = self.actions[self.lead] if self.lead is not None else "walk"
        # a very long tracking shot walks slower rather than out of its painted world
        most = MAX_TRACK_WIDTHS * width / max(clock.seconds, 1e-6)
        self.track_speed = min(height * (RUN_SPEED if lead_action == "run" else WALK_SPEED), most)

    def speed(self, index: int) -> float:
        """Walking speed of figure `index`, pixels per second."""
        action = self.actions[index]
        if action == "run":
            return RUN_SPEED * self.height
        if action == "fly":
            return FLY_SPEED * self.height * (1.6 if self.figures[index].kind == "bird" else 1.0)
        return WALK_SPEED * self.height if action == "walk" else 0.0

    def tracks(self, k: np.ndarray) -> list[FigureTrack]:
        return [self.track(i, k) for i in range(len(self.figures))]

    def track(self, index: int, k: np.ndarray) -> FigureTrack:
        """Position, lift, facing and phase of one figure at frames `k` (a loop hands over to its next lap)."""
        k = np.asarray(k, dtype=np.float64)
        here = self._lap_track(index, k)
        w = self.clock.next_lap(k)
        if not w.any():
            return here
        lap = self._lap_track(index, k - self.clock.total_frames)
        # 1. where the feet are: between this lap's path and the next one's
        x = (1 - w) * here.x + w * lap.x
        lift = (1 - w) * here.lift + w * lap.lift
        # 2. facing the way the blended path goes (someone standing keeps theirs)
        step = self._handover_x(index, k + 0.5) - self._handover_x(index, k - 0.5)
        facing = np.where(np.abs(step) > 1e-3, np.sign(step), here.facing)
        # 3. strides follow the distance covered, and the limbs' rhythm meets the next lap's
        phase = here.phase
        stride = self._stride(index)
        if stride:
            phase = 2 * math.pi * self._walked(index, k) / stride
        period = 4 * math.pi  # the longest rhythm a figure draws with (a half-phase sway)
        behind = np.mod(phase - lap.phase + period / 2, period) - period / 2
        return FigureTrack(x=x, lift=lift, facing=facing, phase=phase - w * behind, t=here.t)

    def _handover_x(self, index: int, k: np.ndarray) -> np.ndarray:
        """World x of a figure's feet on a loop's way from this lap to the next."""
        w = self.clock.next_lap(k)
        return (1 - w) * self._lap_track(index, k).x + w * self._lap_track(index, k - self.clock.total_frames).x

    def _walked(self, index: int, k: np.ndarray) -> np.ndarray:
        """Pixels a figure has walked by frames `k`, along the loop's handover where there is one."""
        assert self.clock.loop_from is not None
        start = self.clock.loop_from - 1
        walked = self.walk_speed(index) * self.clock.time(np.minimum(k, start))
        extra = np.zeros_like(walked)
        for i, frame in np.ndenumerate(k):
            if frame > start:
                grid = np.linspace(start, frame, math.ceil(4 * (frame - start)) + 1)
                extra[i] = np.abs(np.diff(self._handover_x(index, grid))).sum()
        return walked + extra

    def walk_speed(self, index: int) -> float:
        """How fast figure `index` moves through the world in this shot, pixels per second."""
        action = self.actions[index]
        if action in MOVING_ACTIONS and self.move is CameraMove.TRACKING_SHOT:
            return self.track_speed
        if action in MOVING_ACTIONS and pan_direction(self.move):
            # walk the way the camera pans, a little slower, so they drift across the frame
            return 0.85 * pan_speed(self.move, self.clock) * self.width
        return self.speed(index)

    def _stride(self, index: int) -> float:
        """Length of one stride cycle in pixels, or 0 for a figure that does not travel."""
        spec, action = self.figures[index], self.actions[index]
        if action not in MOVING_ACTIONS or self.walk_speed(index) <= 0:
            return 0.0
        return PERSON_HEIGHT * self.height * spec.height * (1.6 if action == "run" else 0.85)

    def _lap_track(self, index: int, k: np.ndarray) -> FigureTrack:
        """One figure at frames `k` of the shot played once (no loop)."""
        spec, action = self.figures[index], self.actions[index]
        t = self.clock.time(k)
        home = self.homes[index]
        facing = np.full(t.shape, 1.0 if index % 2 == 0 else -1.0)
        lift = np.zeros_like(t)
        speed = self.walk_speed(index)
        pan = pan_direction(self.move)

        # 1. where the feet are
        if action in MOVING_ACTIONS and self.move is CameraMove.TRACKING_SHOT:
            x = home + speed * t
            facing[:] = 1.0
        elif action in MOVING_ACTIONS and pan:
            x = home + pan * speed * (t - self.clock.seconds / 2)
            facing[:] = pan
        elif action in MOVING_ACTIONS:
            # pace to and fro around home at constant speed; companions keep step side by side
            reach = 0.22 * self.width if spec.kind != "bird" else 0.32 * self.width
            p = speed * t / reach
            x = home + reach * (2 / math.pi) * np.arcsin(np.sin(math.pi / 2 * p))
            facing = np.where(np.cos(math.pi / 2 * p) >= 0, 1.0, -1.0)
        else:
            x = np.full(t.shape, home)

        # 2. how high, and the rhythm of the limbs
        if action == "fly":
            base = 0.35 if spec.kind == "bird" else 0.2
            lift = self.height * (base + 0.03 * np.sin(2 * math.pi * t / 1.7 + index))
        elif action == "climb":
            lift = 0.3 * self.height * self.clock.progress(k)
        stride = self._stride(index)
        if stride:
            phase = 2 * math.pi * speed * t / stride
        elif action == "dance":
            phase = 2 * math.pi * 1.6 * t
            facing = np.where(np.sin(math.pi * t / 1.25 + index) >= 0, 1.0, -1.0)
        elif action == "climb":
            phase = 2 * math.pi * 0.9 * t
        else:
            phase = 2 * math.pi * t / 3.0 + index * 1.3
        return FigureTrack(x=x, lift=lift, facing=facing, phase=phase, t=t)

    def lead_offset(self, k: np.ndarray) -> np.ndarray:
        """How far the tracked subject has moved, in frame widths (the tracking camera's x)."""
        t = self.clock.time(k)
        if self.lead is None:
            return np.minimum(0.12 * self.height * t / self.width, MAX_TRACK_WIDTHS)  # nobody moves: truck slowly
        return self.track_speed * t / self.width


# ---------------------------------------------------------------- camera moves


def pan_direction(move: CameraMove) -> int:
    return {CameraMove.PAN_LEFT: -1, CameraMove.PAN_RIGHT: 1, CameraMove.TILT_SHIFT: 1}.get(move, 0)


def pan_speed(move: CameraMove, clock: ShotClock) -> float:
    """Average pan speed in frame widths per second."""
    if move is CameraMove.TILT_SHIFT:
        return min(0.03 * clock.seconds, 0.4) / clock.seconds
    return min(0.07 * clock.seconds, 1.0) / clock.seconds


def camera_poses(move: CameraMove, clock: ShotClock, k: np.ndarray, blocking: Blocking) -> Poses:
    """The camera's pose at frames `k` of a shot performing `move` (a loop hands over to its next lap)."""
    k = np.asarray(k, dtype=np.float64)
    here = _lap_poses(move, clock, k, blocking)
    w = clock.next_lap(k)
    if not w.any():
        return here
    lap = _lap_poses(move, clock, k - clock.total_frames, blocking)
    return Poses(**{f.name: (1 - w) * getattr(here, f.name) + w * getattr(lap, f.name) for f in fields(Poses)})


def _lap_poses(move: CameraMove, clock: ShotClock, k: np.ndarray, blocking: Blocking) -> Poses:
    """The camera's pose at frames `k` of the shot played once."""
    T, t, e = clock.seconds, clock.time(k), clock.eased(k)
    zero = np.zeros_like(k)
    x, y, z, yaw, tilt, zoom, roll = zero, zero, zero, zero, zero, zero + 1.0, zero

    if move in (CameraMove.PAN_LEFT, CameraMove.PAN_RIGHT, CameraMove.TILT_SHIFT):
        yaw = pan_direction(move) * pan_speed(move, clock) * T * (e - 0.5)
    elif move in (CameraMove.TILT_UP, CameraMove.TILT_DOWN):
        sweep = min(0.06 * T, 0.45)
        tilt = (1 if move is CameraMove.TILT_UP else -1) * sweep * (e - 0.5)
    elif move in (CameraMove.ZOOM_IN, CameraMove.ZOOM_OUT):
        most = min(1.0 + 0.12 * T, 2.2)
        zoom = most ** (e if move is CameraMove.ZOOM_IN else 1.0 - e)
    elif move is CameraMove.DOLLY_ZOOM:
        # pull back while zooming in: the subject plane (depth 1) keeps its size
        z = -min(0.2 * T, 1.0) * e
        zoom = 1.0 - z
    elif move is CameraMove.ARC_SHOT:
        # orbit the subject: slide sideways while turning to keep depth 1 still
        x = min(0.12 * T, 0.8) * (e - 0.5)
        yaw = -x
        roll = math.radians(5.0) * (e - 0.5)
    elif move is CameraMove.CRANE_SHOT:
        y = min(0.08 * T, 0.5) * e
        tilt = -0.5 * y
        zoom = 1.0 - 0.12 * e
    elif move is CameraMove.TRACKING_SHOT:
        x = blocking.lead_offset(k)
    elif move is CameraMove.FPV_DRONE:
        weave = 2 * math.pi * t / 3.1
        z = min(0.12 * T, 0.42) * e
        x = 0.06 * np.sin(weave)
        y = 0.05 * np.sin(2 * math.pi * t / 2.3) + 0.03 * e
        tilt = 0.02 * np.sin(2 * math.pi * t / 1.7)
        roll = math.radians(9.0) * np.sin(weave)
    return Poses(x=x, y=y, z=z, yaw=yaw, tilt=tilt, zoom=zoom, roll=roll)


def layer_matrices(
    poses: Poses, depth: float, width: int, height: int, shear: np.ndarray | None = None, base_y: float = 0.0
) -> np.ndarray:
    """World -> screen affine matrices (n, 3, 3) for a layer at `depth` (math.inf: the sky).

    `shear` sways the layer about the line y = base_y (wind in trees and grass).
    """
    n = poses.zoom.shape[0]
    if math.isinf(depth):
        scale = poses.zoom
        tx, ty = -poses.yaw * width, poses.tilt * height
    else:
        scale = poses.zoom * depth / (depth - poses.z)
        tx = (-poses.x / depth - poses.yaw) * width
        ty = (poses.y / depth + poses.tilt) * height
    cos, sin = np.cos(poses.roll), np.sin(poses.roll)
    cx, cy = width / 2, height / 2
    m = np.zeros((n, 3, 3))
    m[:, 0, 0], m[:, 0, 1] = scale * cos, -scale * sin
    m[:, 1, 0], m[:, 1, 1] = scale * sin, scale * cos
    # b = c + A (t - c)
    dx, dy = tx - cx, ty - cy
    m[:, 0, 2] = cx + m[:, 0, 0] * dx + m[:, 0, 1] * dy
    m[:, 1, 2] = cy + m[:, 1, 0] * dx + m[:, 1, 1] * dy
    m[:, 2, 2] = 1.0
    if shear is not None:
        sway = np.zeros((n, 3, 3))
        sway[:, 0, 0] = sway[:, 1, 1] = sway[:, 2, 2] = 1.0
        sway[:, 0, 1] = -shear
        sway[:, 0, 2] = shear * base_y
        m = m @ sway
    return m


def wind_sway(clock: ShotClock, k: np.ndarray, strength: float) -> np.ndarray:
    """Horizontal shear over time for things the wind bends (two gust rhythms)."""
    t = clock.time(k)
    return strength * (0.6 + 0.4 * np.sin(2 * math.pi * t / 2.7)) * (0.7 + 0.3 * np.sin(2 * math.pi * t / 0.9))
