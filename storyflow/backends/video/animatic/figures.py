"""The animatic's actors: people, animals, birds and robots drawn as moving silhouettes.

Each figure is drawn every frame, straight onto the frame as vector shapes (cheap, and
sharp at any zoom), in its own coordinates: x forward (the way it faces), y up, one
unit = an adult's height. A `Pen` maps those to the screen through the figure's place,
size and the camera's roll. The pose comes from the action ("walk", "run", "sit",
"sleep", "fly", "dance", "climb", "stand") and the phase the blocking gives.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from PIL import ImageDraw

from storyflow.backends.video.animatic.scene import RGB, FigureSpec


@dataclass(frozen=True)
class Palette:
    """A figure's colours, already lit and graded for the scene."""

    body: RGB
    body2: RGB
    skin: RGB
    hair: RGB
    dark: RGB
    glow: RGB  # lanterns, robot eyes


@dataclass(frozen=True)
class Pose:
    """Where and how a figure is drawn this frame."""

    x: float  # screen position of the feet
    y: float
    size: float  # pixels per unit (an adult's height at this depth and zoom)
    roll: float  # camera roll, radians
    facing: float  # +1 right, -1 left
    phase: float  # stride or rhythm, radians
    t: float  # seconds into the shot
    action: str


class Pen:
    """Draws in a figure's own coordinates; remembers the highest point for the label."""

    def __init__(self, draw: ImageDraw.ImageDraw, pose: Pose, angle: float = 0.0, lift: tuple[float, float] = (0.0, 0.0)):
        self.draw, self.pose = draw, pose
        self.cos_a, self.sin_a = math.cos(angle), math.sin(angle)  # body rotation (lying, leaning)
        self.cos_r, self.sin_r = math.cos(pose.roll), math.sin(pose.roll)
        self.lift = lift
        self.top = math.inf
        self.top_x = pose.x

    def pt(self, x: float, y: float) -> tuple[float, float]:
        x, y = x * self.cos_a - y * self.sin_a + self.lift[0], x * self.sin_a + y * self.cos_a + self.lift[1]
        sx, sy = self.pose.facing * x * self.pose.size, -y * self.pose.size
        px = self.pose.x + sx * self.cos_r - sy * self.sin_r
        py = self.pose.y + sx * self.sin_r + sy * self.cos_r
        if py < self.top:
            self.top, self.top_x = py, px
        return (px, py)

    def poly(self, points: list[tuple[float, float]], fill: RGB) -> None:
        self.draw.polygon([self.pt(x, y) for x, y in points], fill=fill)

    def circle(self, cx: float, cy: float, r: float, fill: RGB, ry: float | None = None, sides: int = 14) -> None:
        ry = r if ry is None else ry
        self.poly([(cx + r * math.cos(2 * math.pi * i / sides), cy + ry * math.sin(2 * math.pi * i / sides)) for i in range(sides)], fill)

    def limb(self, a: tuple[float, float], b: tuple[float, float], width: float, fill: RGB) -> None:
        px = max(1, round(width * self.pose.size))
        ends = [self.pt(*a), self.pt(*b)]
        self.draw.line(ends, fill=fill, width=px)
        if px >= 4:  # round joints: discs (the same turned any way, so drawn as such, not as polygons)
            r = width / 2 * self.pose.size
            for x, y in ends:
                self.draw.ellipse((x - r, y - r, x + r, y + r), fill=fill)
                if y - r < self.top:
                    self.top, self.top_x = y - r, x


def reach(origin: tuple[float, float], angle: float, length: float) -> tuple[float, float]:
    """The end of a limb hanging from `origin`, swung `angle` radians forward from straight down."""
    return (origin[0] + length * math.sin(angle), origin[1] - length * math.cos(angle))


def draw_figure(draw: ImageDraw.ImageDraw, spec: FigureSpec, colours: Palette, pose: Pose) -> tuple[float, float]:
    """Draw one figure; return the screen point just above its head (for its label)."""
    kind = spec.kind
    if kind == "quadruped":
        pen = _quadruped(draw, spec, colours, pose)
    elif kind == "bird":
        pen = _bird(draw, spec, colours, pose)
    elif kind == "robot":
        pen = _person(draw, spec, colours, pose, robot=True)
    else:
        pen = _person(draw, spec, colours, pose)
    if pose.action == "sleep":
        _zzz(draw, pen, pose, colours)
    return pen.top_x, pen.top


# ---------------------------------------------------------------- people and robots


def _person(draw: ImageDraw.ImageDraw, spec: FigureSpec, c: Palette, pose: Pose, robot: bool = False) -> Pen:
    action, phase, t = pose.action, pose.phase, pose.t
    leg, arm = 0.47, 0.34
    swing = {"walk": 0.42, "run": 0.8, "climb": 0.25}.get(action, 0.0) * math.sin(phase)
    if robot:
        swing *= 0.6
    lean, angle, lift = 0.0, 0.0, (0.0, 0.0)
    hip_y = leg * math.cos(swing)  # the hip drops as the legs open: the walk's bob
    arm_front, arm_back = -0.8 * swing, 0.8 * swing
    legs: list[tuple[tuple[float, float], tuple[float, float], tuple[float, float]]] = []

    # 1. the pose for the action
    if action == "run":
        lean = 0.07
    if action in ("stand", "sit"):
        # breathing, and now and then a gesture with the front arm
        gesture = max(0.0, math.sin(phase)) ** 3
        arm_front = 0.1 + 1.9 * gesture + 0.25 * gesture * math.sin(9 * t)
        arm_back = -0.08
        hip_y = leg + 0.006 * math.sin(2 * math.pi * t / 3.1)
    if action == "dance":
        arm_front = 2.5 + 0.45 * math.sin(phase)
        arm_back = -2.5 + 0.45 * math.sin(phase + math.pi)
        swing = 0.3 * math.sin(phase)
        hip_y = leg * math.cos(swing) + 0.02 * abs(math.sin(phase))
        lift = (0.03 * math.sin(phase / 2), 0.0)
    if action == "climb":
        arm_front = math.pi - 0.35 + 0.4 * math.sin(phase)
        arm_back = -(math.pi - 0.35) + 0.4 * math.sin(phase)
    if action == "fly":
        angle, arm_front, arm_back, swing = -1.15, 2.9, 2.7, 0.08 * math.sin(phase)
        lift = (0.0, 0.0)
    if action == "sleep":
        angle, hip_y, lift = math.pi / 2, leg, (0.0, 0.07)
        arm_front, arm_back = 0.15, -0.15

    pen = Pen(draw, pose, angle=angle, lift=lift)
    hip = (0.0, hip_y)
    top = hip_y + 0.33
    shoulder = (lean, top)
    head = (lean * 1.3, top + 0.1)

    # 2. legs: sitting folds them forward onto a seat
    if action == "sit":
        hip = (0.0, 0.27)
        top, shoulder, head = 0.6, (0.0, 0.6), (0.0, 0.7)
        pen.poly([(-0.14, 0.0), (0.1, 0.0), (0.1, 0.25), (-0.14, 0.25)], c.dark)  # the seat
        knee = (0.21, 0.28)
        legs = [(hip, knee, (0.23, 0.0)), (hip, (knee[0] - 0.03, knee[1]), (0.19, 0.0))]
    else:
        for s in (swing, -swing):
            foot = reach(hip, s, leg)
            knee = reach(hip, s * 0.9 + (0.12 if s < 0 else 0.0), leg * 0.5)
            legs.append((hip, knee, foot))
    leg_colour = c.body2 if not spec.garment else c.dark
    width = 0.085 if robot else 0.065
    for i, (a, k, f) in enumerate(legs):
        colour = leg_colour if i == 0 else _darker(leg_colour)
        pen.limb(a, k, width, colour)
        pen.limb(k, f, width, colour)
        pen.limb(f, (f[0] + 0.05, f[1]), 0.04, c.dark)  # shoe

    # 3. the back arm, the body, the front arm
    hand_back = reach(shoulder, arm_back, arm)
    pen.limb(shoulder, hand_back, 0.06, _darker(c.body))
    if spec.lantern:
        pen.poly([(hand_back[0] - 0.035, hand_back[1] - 0.02), (hand_back[0] + 0.035, hand_back[1] - 0.02),
                  (hand_back[0] + 0.035, hand_back[1] - 0.1), (hand_back[0] - 0.035, hand_back[1] - 0.1)], c.glow)  # fmt: skip
    if robot:
        pen.poly([(-0.12, top), (0.12, top), (0.12, hip[1] - 0.02), (-0.12, hip[1] - 0.02)], c.body)
        pen.poly([(-0.08, top - 0.12), (0.08, top - 0.12), (0.08, top - 0.06), (-0.08, top - 0.06)], c.body2)
    elif spec.garment:
        hem = max(0.22, hip[1] - 0.2) if action != "sit" else 0.18
        pen.poly([(-0.1 + lean, top), (0.1 + lean, top), (0.16, hem), (-0.16, hem)], c.body)
    else:
        pen.poly([(-0.1 + lean, top), (0.1 + lean, top), (0.09, hip[1] - 0.02), (-0.09, hip[1] - 0.02)], c.body)
    hand_front = reach(shoulder, arm_front, arm)
    if action == "climb":  # the rope being climbed (not part of the figure's height)
        reached = (pen.top, pen.top_x)
        pen.limb((hand_front[0], hand_front[1] - 1.2), (hand_front[0], hand_front[1] + 3.0), 0.02, _darker(c.dark))
        pen.top, pen.top_x = reached
    if spec.umbrella and action not in ("fly", "sleep"):
        hand_front = reach(shoulder, 2.3, arm * 0.8)
        pen.limb(shoulder, hand_front, 0.06, c.body)
        stick_top = (hand_front[0] - 0.05, top + 0.42)
        pen.limb(hand_front, stick_top, 0.015, c.dark)
        pen.poly([(stick_top[0] - 0.3 + 0.3 * math.cos(math.pi * i / 10), stick_top[1] - 0.12 + 0.16 * math.sin(math.pi * i / 10) + 0.04) for i in range(11)], c.body2)
    else:
        pen.limb(shoulder, hand_front, 0.06, c.body)

    # 4. the head
    if robot:
        pen.poly([(head[0] - 0.075, head[1] - 0.07), (head[0] + 0.075, head[1] - 0.07),
                  (head[0] + 0.075, head[1] + 0.07), (head[0] - 0.075, head[1] + 0.07)], c.body)  # fmt: skip
        pen.poly([(head[0] - 0.02, head[1]), (head[0] + 0.08, head[1]), (head[0] + 0.08, head[1] + 0.03), (head[0] - 0.02, head[1] + 0.03)], c.glow)
        pen.limb((head[0], head[1] + 0.07), (head[0], head[1] + 0.14), 0.012, c.dark)
        blink = c.glow if math.sin(4 * t) > 0 else c.dark
        pen.circle(head[0], head[1] + 0.15, 0.02, blink)
    else:
        pen.circle(head[0], head[1], 0.075, c.skin)
        pen.poly([(head[0] - 0.08, head[1] - 0.01), (head[0] - 0.06, head[1] + 0.06), (head[0] + 0.0, head[1] + 0.085),
                  (head[0] + 0.07, head[1] + 0.05), (head[0] + 0.02, head[1] + 0.03), (head[0] - 0.04, head[1] + 0.0)], c.hair)  # fmt: skip
        if spec.hat:
            pen.poly([(head[0] - 0.11, head[1] + 0.04), (head[0] + 0.11, head[1] + 0.04), (head[0] + 0.07, head[1] + 0.15), (head[0] - 0.07, head[1] + 0.15)], c.body2)
    return pen


# ---------------------------------------------------------------- animals


def _quadruped(draw: ImageDraw.ImageDraw, spec: FigureSpec, c: Palette, pose: Pose) -> Pen:
    b, action, phase, t = spec.build, pose.action, pose.phase, pose.t
    amp = {"walk": 0.35, "run": 0.65}.get(action, 0.0)
    bob = 0.02 * abs(math.sin(phase)) if action == "run" else 0.0
    if action == "dance":
        bob = 0.04 * abs(math.sin(phase))
    lying = action == "sleep"
    sitting = action == "sit"
    pen = Pen(draw, pose, angle=0.25 if sitting else 0.0, lift=(0.0, bob))
    leg = 0.0 if lying else b.leg
    body_y = (b.body_h * 0.5) if lying else leg + b.body_h * 0.5
    half = b.body_len / 2
    wag = 0.15 * math.sin(7 * t) if action in ("stand", "sit", "dance") else 0.05 * math.sin(phase)

    # 1. the far legs, the tail, the body, the near legs
    hips = ((half * 0.65, body_y - b.body_h * 0.2), (-half * 0.65, body_y - b.body_h * 0.2))
    if not lying:
        for i, (x, y) in enumerate(hips):
            s = amp * math.sin(phase + (math.pi if i == 0 else 0.0))
            if sitting and i == 1:
                continue
            pen.limb((x, y), reach((x, y), s, leg + b.body_h * 0.2), 0.045 * (1 + b.body_h * 2), c.body2)
    tail_root = (-half, body_y + b.body_h * 0.2)
    if b.tail == "bushy":
        pen.poly([tail_root, (-half - 0.22, body_y + 0.05 + wag), (-half - 0.3, body_y + 0.02 + wag),
                  (-half - 0.12, body_y - 0.04)], c.body)  # fmt: skip
        pen.circle(-half - 0.27, body_y + 0.03 + wag, 0.035, (235, 235, 230))
    elif b.tail == "thin":
        pen.limb(tail_root, (-half - 0.12, body_y + 0.15 + wag), 0.02, c.body)
    elif b.tail == "hair":
        pen.limb(tail_root, (-half - 0.1, body_y - 0.15 + wag * 0.3), 0.05, c.dark)
    elif b.tail == "short":
        pen.circle(-half - 0.02, body_y + b.body_h * 0.3, 0.035, c.body)
    pen.circle(0.0, body_y, half, c.body, ry=b.body_h / 2)
    if not lying:
        for i, (x, y) in enumerate(hips):
            s = amp * math.sin(phase + (0.0 if i == 0 else math.pi))
            foot = reach((x, y), s, leg + b.body_h * 0.2)
            if sitting and i == 1:
                foot = (x + 0.1, 0.0)
            pen.limb((x, y), foot, 0.05 * (1 + b.body_h * 2), c.body)

    # 2. neck, head, ears, antlers
    if b.neck:
        head = (half + b.head * 0.6, body_y + b.body_h * 0.5 + 0.22)
        pen.poly([(half * 0.6, body_y + b.body_h * 0.3), (half * 0.95, body_y), (head[0] + 0.02, head[1] - 0.02), (head[0] - 0.08, head[1] + 0.02)], c.body)
    elif lying:
        head = (half + b.head * 0.7, b.head)
    else:
        head = (half + b.head * 0.5, body_y + b.body_h * 0.45 + 0.01 * math.sin(2 * t))
    pen.circle(head[0], head[1], b.head, c.body)
    pen.circle(head[0] + b.head * 0.9, head[1] - b.head * 0.25, b.head * 0.5, c.body, ry=b.head * 0.35)  # snout
    pen.circle(head[0] + b.head * 1.35, head[1] - b.head * 0.2, b.head * 0.14, c.dark)  # nose
    if b.ears == "point":
        for dx in (-0.4, 0.15):
            pen.poly([(head[0] + dx * b.head, head[1] + 0.7 * b.head), (head[0] + (dx + 0.5) * b.head, head[1] + 0.7 * b.head),
                      (head[0] + (dx + 0.2) * b.head, head[1] + 1.6 * b.head)], c.body2)  # fmt: skip
    elif b.ears == "round":
        pen.circle(head[0] - 0.5 * b.head, head[1] + 0.8 * b.head, 0.35 * b.head, c.body2)
    elif b.ears == "long":
        pen.circle(head[0] - 0.2 * b.head, head[1] + 1.6 * b.head, 0.25 * b.head, c.body, ry=0.9 * b.head)
    if b.antlers:
        for dx in (-0.3, 0.3):
            base = (head[0] + dx * b.head, head[1] + 0.8 * b.head)
            tip = (base[0] - 0.05 + dx * 0.1, base[1] + 0.18)
            pen.limb(base, tip, 0.015, c.dark)
            pen.limb((base[0] + (tip[0] - base[0]) * 0.5, base[1] + 0.09), (base[0] + 0.06, base[1] + 0.14), 0.012, c.dark)
    if not lying:
        pen.circle(head[0] + 0.3 * b.head, head[1] + 0.2 * b.head, b.head * 0.13, c.dark)  # eye
    return pen


def _bird(draw: ImageDraw.ImageDraw, spec: FigureSpec, c: Palette, pose: Pose) -> Pen:
    b, t = spec.build, pose.t
    flying = pose.action in ("fly", "walk", "run", "dance", "climb")
    pen = Pen(draw, pose)
    y = max(0.06, b.leg) if not flying else 0.0
    half = b.body_len / 2
    if not flying:  # perched: legs, folded wing
        pen.limb((0.0, y), (0.0, 0.0), 0.01, c.dark)
    flap = math.sin(2 * math.pi * 3.2 * t + pose.phase) if flying else -1.0
    wing = (-0.02, y + b.body_h * 0.3)
    span = b.body_len * 1.1
    tip = (wing[0] - span * 0.3, wing[1] + span * 0.9 * flap)
    if flying:
        pen.poly([wing, (wing[0] + 0.05, wing[1]), tip], c.body2)
    pen.circle(0.0, y + b.body_h / 2, half, c.body, ry=b.body_h / 2)
    pen.poly([(-half * 0.9, y + b.body_h * 0.5), (-half * 1.5, y + b.body_h * 0.8), (-half * 1.5, y + b.body_h * 0.2)], c.body2)  # tail
    head = (half * 0.95, y + b.body_h * 0.85)
    pen.circle(head[0], head[1], b.head, c.body)
    pen.poly([(head[0] + b.head * 0.8, head[1] + b.head * 0.2), (head[0] + b.head * 1.9, head[1]), (head[0] + b.head * 0.8, head[1] - b.head * 0.3)], (230, 170, 50))
    pen.circle(head[0] + b.head * 0.3, head[1] + b.head * 0.3, b.head * 0.2, c.dark)
    if flying:
        pen.poly([(wing[0] + 0.06, wing[1]), (wing[0] + 0.1, wing[1]), (tip[0] + 0.12, tip[1] * 0.95 + wing[1] * 0.05)], c.body)
    else:
        pen.circle(-0.02, y + b.body_h * 0.45, half * 0.7, c.body2, ry=b.body_h * 0.3)
    return pen


def _zzz(draw: ImageDraw.ImageDraw, pen: Pen, pose: Pose, c: Palette) -> None:
    """Little Z's rising from a sleeper."""
    size = pose.size * 0.06
    for i in range(2):
        f = ((pose.t / 1.6) + i * 0.5) % 1.0
        x = pen.top_x + pose.size * (0.08 + 0.1 * f)
        y = pen.top - pose.size * (0.05 + 0.25 * f)
        s = size * (0.6 + 0.6 * f)
        draw.line([(x, y), (x + s, y), (x, y + s), (x + s, y + s)], fill=(235, 235, 240), width=max(1, round(s / 5)))


def _darker(colour: RGB) -> RGB:
    return tuple(int(v * 0.78) for v in colour)  # type: ignore[return-value]
