"""Frozen records that cross stage boundaries.

Read in pipeline order: Story -> Storyboard (of Shots) -> ShotPrompt -> ClipRequest ->
Clip (one backend call) -> ClipChain (a shot's clips in order) -> AudioTrack -> Film.
Times are seconds on the outside and whole frames on the inside: a shot's duration is
always a whole number of frames at the storyboard's fps, so durations add up exactly.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

ASPECTS = ("16:9", "9:16", "1:1")
Aspect = Literal["16:9", "9:16", "1:1"]

# Transition lengths, in seconds. A crossfade overlaps the two shots (the film gets
# shorter by its length); a fade dips to black inside each shot (no overlap).
CROSSFADE_SECONDS = 0.5
FADE_SECONDS = 0.5
TITLE_CARD_SECONDS = 3.0

# A seam whose jump is this many times the ordinary frame-to-frame change is a visible jump.
SEAM_WARN_RATIO = 3.0


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CameraMove(StrEnum):
    """Camera directives a shot can carry; the value is how prompts and stories say it."""

    STATIC = "static shot"
    PAN_LEFT = "pan left"
    PAN_RIGHT = "pan right"
    TILT_UP = "tilt up"
    TILT_DOWN = "tilt down"
    ZOOM_IN = "zoom in"
    ZOOM_OUT = "zoom out"
    DOLLY_ZOOM = "dolly zoom"
    ARC_SHOT = "arc shot"
    CRANE_SHOT = "crane shot"
    TRACKING_SHOT = "tracking shot"
    FPV_DRONE = "FPV drone shot"
    TILT_SHIFT = "tilt shift"  # kept for storyboards written before LensEffect; planners write the effect


class Framing(StrEnum):
    """How much of the scene the frame holds, widest first."""

    EXTREME_WIDE = "extreme wide shot"
    WIDE = "wide shot"
    MEDIUM_WIDE = "medium wide shot"
    MEDIUM = "medium shot"
    MEDIUM_CLOSE_UP = "medium close-up"
    CLOSE_UP = "close-up"
    EXTREME_CLOSE_UP = "extreme close-up"


class CameraAngle(StrEnum):
    """Where the camera looks from."""

    EYE_LEVEL = "eye level"
    LOW = "low angle"
    HIGH = "high angle"
    OVERHEAD = "overhead shot"
    DUTCH = "dutch angle"


class LensEffect(StrEnum):
    """Lens and speed effects a shot may carry, several at once."""

    TILT_SHIFT = "tilt shift"
    SLOW_MOTION = "slow motion"
    TIME_LAPSE = "time-lapse"
    RACK_FOCUS = "rack focus"


class Transition(StrEnum):
    """How a shot hands over to the next one."""

    CUT = "cut"
    CROSSFADE = "crossfade"
    FADE = "fade"


class Character(Frozen):
    name: str
    description: str


class PromptChange(Frozen):
    """A timed change inside a shot: from `at` seconds on, `text` is added to what is seen."""

    at: float = Field(gt=0)
    text: str


class Story(Frozen):
    """A parsed, validated story file."""

    title: str
    slug: str  # safe folder name derived from the title
    text: str  # the body, front matter removed
    body_line: int = 1  # line number of the body's first line in the file
    style: str = "cinematic previz, soft natural light"
    aspect: Aspect = "16:9"
    width: int = 640
    height: int = 360
    fps: int = 24
    duration: float | None = None  # target film length in seconds
    seed: int = 0
    characters: tuple[Character, ...] = ()
    title_card: bool = True
    source: str = ""  # the path it was read from
    sha256: str = ""  # of the file's bytes


class StyleBible(Frozen):
    """What every shot shares: look, palette, things to avoid."""

    style: str
    palette: str = ""
    negative: str = ""


class Shot(Frozen):
    id: str  # "s01", "s02", ...
    index: int
    beat: int  # which paragraph of the story it comes from
    story_text: str  # the story text this shot covers
    action: str  # what is seen
    setting: str = ""  # where and when: "a pine forest at dawn, light rain"
    # The shot grammar: framing, angle, the camera's moves (the first leads: a backend that can
    # make only one makes that), lens and speed effects. Several may be written; all are kept.
    framing: Framing | None = None
    angle: CameraAngle | None = None
    camera: CameraMove = CameraMove.STATIC
    more_moves: tuple[CameraMove, ...] = ()  # further moves written for the same shot, in order
    effects: tuple[LensEffect, ...] = ()
    camera_from_text: bool = False  # written in the story, rather than inferred
    span: tuple[int, int] | None = None  # [start, end) character offsets of story_text in Story.text
    duration: float  # seconds, a whole number of frames at the storyboard's fps
    characters: tuple[str, ...] = ()
    narration: str = ""
    mood: str = "calm"
    sound_cue: str = ""
    transition: Transition = Transition.CUT  # into the next shot
    continues_previous: bool = False
    prompt_changes: tuple[PromptChange, ...] = ()  # evolving prompt, in time order
    loop: bool = False  # the shot's last frame leads back to its first
    fixed_duration: bool = False  # the story wrote its length ("[12s]"): fitting leaves it alone

    def frames(self, fps: int) -> int:
        return round(self.duration * fps)

    @property
    def moves(self) -> tuple[CameraMove, ...]:
        """Every camera move of the shot, the leading one first."""
        return (self.camera, *self.more_moves)

    @property
    def directives(self) -> tuple[str, ...]:
        """The shot grammar as a prompt says it: framing, angle, moves, effects (only what is set)."""
        parts: list[str] = [self.framing.value] if self.framing else []
        parts += [self.angle.value] if self.angle else []
        return (*parts, *(move.value for move in self.moves), *(effect.value for effect in self.effects))


class Storyboard(Frozen):
    title: str
    slug: str
    story_sha256: str
    style: StyleBible
    characters: tuple[Character, ...] = ()
    shots: tuple[Shot, ...]
    width: int
    height: int
    fps: int
    seed: int
    title_card: bool = True
    target_seconds: float | None = None  # the film length the story asks for, if any
    planner: str = ""  # "<backend> <version>"
    planner_model: str = ""  # the model (and revision) that planned it
    coverage: float | None = None  # the share of the story's words some shot covers (1.0: all)

    def shot(self, shot_id: str) -> Shot:
        for shot in self.shots:
            if shot.id == shot_id:
                return shot
        raise KeyError(shot_id)

    def character(self, name: str) -> Character:
        for character in self.characters:
            if character.name == name:
                return character
        raise KeyError(name)

    def chains(self) -> list[list[Shot]]:
        """Shots grouped into chains: a shot that continues the previous one joins its chain."""
        chains: list[list[Shot]] = []
        for shot in self.shots:
            if shot.continues_previous and chains:
                chains[-1].append(shot)
            else:
                chains.append([shot])
        return chains


class TimedPrompt(Frozen):
    """The prompt in force from `at` seconds into the shot (until the next one)."""

    at: float = Field(ge=0)
    prompt: str


class ShotPrompt(Frozen):
    """A shot rewritten into what a video model reads."""

    shot_id: str
    prompt: str  # the prompt at the shot's start
    negative_prompt: str = ""
    caption: str = ""  # short text burned into previz frames
    template: str = ""  # template file name under prompts/
    template_sha256: str = ""
    llm: str = ""  # "<backend> <version>" that wrote it
    model: str = ""  # the LLM's model (and revision) that wrote it
    changes: tuple[TimedPrompt, ...] = ()  # later prompts of an evolving shot, in time order
    # "" when the rewriter wrote it from the shot; else how it came to be, e.g. "rephrased after a
    # safety filter refused: <the provider's reasons>" (recorded with the prompt in the catalog)
    origin: str = ""

    def prompt_at(self, seconds: float) -> str:
        """The prompt in force at `seconds` into the shot."""
        current = self.prompt
        for change in self.changes:
            if change.at <= seconds + 1e-9:
                current = change.prompt
        return current


class PromptAnswer(Frozen):
    """What a chat LLM answers for one shot (prompts/rewrite_system.md); the stage makes it a ShotPrompt."""

    prompt: str
    negative_prompt: str = ""
    caption: str = ""
    changes: tuple[TimedPrompt, ...] = ()


class PlannedShot(Frozen):
    """One shot as a chat LLM plans it (prompts/plan_system.md); the stage numbers it, finds its
    span in the story and snaps its duration to whole frames."""

    story_text: str = Field(description="the story text this shot covers, copied exactly")
    action: str = Field(description="what is seen, present tense")
    setting: str = ""
    framing: Framing | None = None
    angle: CameraAngle | None = None
    camera: tuple[CameraMove, ...] = Field(default=(), description="camera moves, the leading one first")
    effects: tuple[LensEffect, ...] = ()
    camera_from_text: bool = False
    duration: float = Field(gt=0, description="seconds")
    characters: tuple[str, ...] = ()
    narration: str = ""
    mood: str = "calm"
    sound_cue: str = ""
    transition: Transition = Transition.CUT
    continues_previous: bool = False
    prompt_changes: tuple[PromptChange, ...] = ()
    loop: bool = False


class PlanAnswer(Frozen):
    """What a chat LLM answers for a story: its shots, in story order."""

    shots: tuple[PlannedShot, ...]


class LLMUsage(Frozen):
    """What one answer from an LLM cost: calls (repairs and retries included), tokens, time, money."""

    model: str
    calls: int = 1
    repairs: int = 0  # answers sent back with their validation errors
    prompt_tokens: int | None = None  # None: the server did not say
    completion_tokens: int | None = None
    latency_s: float = 0.0
    cost_usd: float | None = None


SegmentStrategy = Literal[
    "text_to_video",  # from the prompt alone
    "image_to_video",  # from a first frame (the previous shot's last frame)
    "continue_video",  # native continuation from the previous segment's tail frames
    "last_frame_i2v",  # image-to-video from the previous segment's last frame
    "extend_backward",  # what came before: ends leading into a clip's head frames
    "loop_close",  # continues a tail and ends leading into the chain's first frame
]


class ClipRequest(BaseModel):
    """Everything a video backend gets for one call.

    `conditioning` holds frames (uint8 arrays, H x W x 3) the clip must start from or
    continue; the rest is plain data. Backends use what they can and ignore the rest.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    prompt: str
    negative_prompt: str = ""
    seed: int
    width: int
    height: int
    fps: int
    num_frames: int = Field(gt=0)
    camera: CameraMove = CameraMove.STATIC
    effects: tuple[LensEffect, ...] = ()  # the shot's lens and speed effects (Shot.effects)
    subjects: tuple[Character, ...] = ()
    caption: str = ""
    # Where this clip sits inside its shot, so a camera move spans the whole shot.
    shot_offset_frames: int = 0
    shot_total_frames: int = 0
    strategy: SegmentStrategy = "text_to_video"
    conditioning: Any = None  # frames (N, H, W, 3) the clip starts from or continues, or None
    end_conditioning: Any = None  # frames (N, H, W, 3) the clip must lead into, or None


class SeamScore(Frozen):
    """How visible a join is: the jump across it against ordinary frame-to-frame change.

    jump: mean absolute pixel difference (0-255) between the frames either side of the seam;
    median: the median of that difference between consecutive frames inside both clips;
    ratio: jump / median (about 1 means invisible; storyflow warns above SEAM_WARN_RATIO).
    """

    jump: float
    median: float
    ratio: float

    @property
    def visible(self) -> bool:
        return self.ratio > SEAM_WARN_RATIO


class Clip(Frozen):
    """One generated video file: one backend call, or one reuse of an earlier call."""

    shot_id: str
    segment: int  # position in the shot's chain
    path: Path
    sha256: str
    cache_key: str
    num_frames: int
    fps: int
    width: int
    height: int
    strategy: SegmentStrategy
    backend: str
    model: str
    seed: int
    options: dict[str, Any] = {}
    prompt: str = ""
    parent_sha256: str | None = None  # the clip whose frames conditioned this one
    conditioning: str = ""  # which frames of the parent, e.g. "last 1 frame"
    end_parent_sha256: str | None = None  # the clip whose head this one leads into
    seam: SeamScore | None = None  # how visible the join to the previous clip is
    end_seam: SeamScore | None = None  # how visible the join into the end parent is (loops)
    drift: str = ""  # colour/brightness drift found and corrected, if any
    # what the check before generation changed so the backend could make it: frames snapped to
    # its frame rule, picture resized or cropped, frame rate changed (one sentence each)
    corrections: tuple[str, ...] = ()
    cost_usd: float | None = None  # what the backend charged for it, where it says
    take: int = 0  # which of the shot's takes (--candidates) this clip belongs to; 0 is the first
    reused: bool = False
    wall_s: float = 0.0

    @property
    def seconds(self) -> float:
        return self.num_frames / self.fps


class ClipChain(Frozen):
    """A shot's clips in playing order."""

    shot_id: str
    clips: tuple[Clip, ...]

    @property
    def num_frames(self) -> int:
        return sum(clip.num_frames for clip in self.clips)

    @property
    def last(self) -> Clip:
        return self.clips[-1]


class TakeScore(Frozen):
    """What a scorer thinks of one take: higher is better; the measures it read, by name."""

    take: int
    score: float
    measures: dict[str, float] = {}


class ShotTakes(Frozen):
    """A shot's takes (--candidates), in take order, and the one the film plays.

    `picked_by` says who chose: "scorer", "person" (`storyflow pick`) or "only take". `prompt`
    is the prompt the takes were made from (a rephrased one, after a safety filter).
    """

    shot_id: str
    takes: tuple[ClipChain, ...]
    chosen: int = 0
    picked_by: str = "only take"
    scorer: str = ""
    scores: tuple[TakeScore, ...] = ()
    prompt: ShotPrompt | None = None

    @property
    def chain(self) -> ClipChain:
        """The take the film plays."""
        return self.takes[self.chosen]


class NarrationLine(Frozen):
    """One shot's narration, spoken: where the speech sits inside its shot and its file."""

    shot_id: str
    text: str
    path: Path  # WAV of the speech alone
    sha256: str
    cache_key: str
    seconds: float  # length of the speech
    offset: float  # seconds from the shot's first visible frame to the first word
    rate: float  # words per minute it was spoken at
    voice: str
    backend: str
    model: str = ""  # the model and revision that spoke it
    words: tuple[tuple[float, float, str], ...] = ()  # (start, end, word) inside the speech
    cost_usd: float | None = None  # what a hosted speech service charged for it (None: local)
    reused: bool = False
    wall_s: float = 0.0


class AudioTrack(Frozen):
    kind: Literal["music", "narration", "effects", "mix"]
    path: Path
    sha256: str
    cache_key: str
    seconds: float
    sample_rate: int
    backend: str
    model: str = ""  # the model and revision that made it
    options: dict[str, Any] = {}
    reused: bool = False
    wall_s: float = 0.0


class Film(Frozen):
    slug: str
    path: Path
    sha256: str
    subtitles: Path
    poster: Path
    contact_sheet: Path
    storyboard_json: Path
    num_frames: int
    fps: int
    width: int
    height: int
    stitch_strategy: str  # how clips were joined, e.g. "smart: 9 copied, 3 re-encoded"
    wall_s: float = 0.0
    stems: dict[str, Path] = {}  # "narration", "music", "effects" -> WAV beside the film
    loudness_lufs: float | None = None  # integrated loudness of the film's sound, measured
    credentials: dict[str, Any] = {}  # C2PA: who signed it (never a key)
    reused: bool = False  # an identical film made earlier, found intact

    @property
    def duration_s(self) -> float:
        return self.num_frames / self.fps
