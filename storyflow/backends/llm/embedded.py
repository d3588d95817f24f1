"""The embedded LLM backend: a rule-based planner and prompt rewriter, offline and deterministic.

It reads a story the way a storyboard artist skims one, with written rules instead of a
model: no network, no weights, and the same story and seed always give the same storyboard.

How a story is planned
1. Beats. Paragraphs (separated by blank lines) are beats. Markdown headings and
   horizontal rules are not narration: each starts a new scene, and a heading's words
   (e.g. "## The harbour at dawn") set the scene's place and time. Emphasis, links and
   images are stripped.
2. Shots. A paragraph becomes one shot, or several when it is long: shots of at most
   3 sentences and 18 words (about 2.5 to 8 s). A camera directive, "Continuous.",
   "Cut to" and "Fade to black." also start a new shot.
3. Continuing shots. A shot split out of the same paragraph as the shot before it
   continues that shot (same moment, joined by a cut) unless its text names its own
   camera move: then it is a new angle, still joined by a cut. "Continuous." or a
   paragraph opening with "(continuous)" makes a shot continue the previous one, across
   paragraphs too. The first shot never continues anything.
4. Cameras. Written directives win (phrases in embedded_text.DIRECTIVE_PHRASES). A
   sentence that is only a directive ("Arc shot.") applies to the next sentence of its
   paragraph; at a paragraph's end to the shot before it (if that has none yet); alone
   in a paragraph to the next paragraph. It is dropped from the narration; a directive
   inside a longer sentence is detected and the sentence stays. Otherwise the camera is
   inferred (embedded_rules.CAMERA_RULES): the first shot of a scene establishes it
   (crane shot or pan, picked by the seed); then, first match wins: running/chasing ->
   tracking shot; flying/soaring/diving -> FPV drone shot; shock/suddenly/realises ->
   dolly zoom; tiny/village/from above -> tilt shift; looks up/climbs/towers -> tilt up;
   looks down/descends -> tilt down; reveals/wide/vast -> zoom out; close/whispers/eyes
   -> zoom in; else a seeded pick among calm moves, never the previous shot's move.
5. Narration: the shot's sentences without directives and markers; dialogue kept.
6. Transitions (out of each shot): into a continuing shot, a cut; into a new scene, a
   jump in time ("Later,", "Years later", "The next morning") or after "Fade to black",
   a fade; "Cut to", a cut; into a new paragraph, a crossfade; within a paragraph, a
   cut. The last shot fades out.
7. Durations: reading speed (2.6 words/s + 1 s, clamped to 2.5-12 s). With a target
   `duration`, all shots are scaled so the film (title card included, crossfade overlaps
   taken off, see storyflow.timeline) lands on it within a frame, no shot under 1 s.
   Every duration is a whole number of frames.
8. Characters: the front-matter names a shot mentions; if it names none but says
   he/she/they/his/her..., the previous shot's characters.
9. Setting (place, time of day, weather), mood and sound cue: lexicons in
   embedded_rules, carried from shot to shot until the text changes them.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from storyflow.backends.base import LLMBackend
from storyflow.backends.llm.embedded_rules import (
    CAMERA_PHRASES,
    DEFAULT_NEGATIVE,
    MAX_SHOT_SENTENCES,
    MAX_SHOT_WORDS,
    MIN_FITTED_SECONDS,
    SceneState,
    action_of,
    characters_in,
    infer_camera,
    lighting_of,
    mood_of,
    palette_of,
    reading_seconds,
    sound_of,
    uses_pronoun,
)
from storyflow.backends.llm.embedded_text import (
    TIME_SKIP,
    Sentence,
    classify,
    split_blocks,
    split_sentences,
    word_count,
)
from storyflow.errors import LLMOutputError, StoryError
from storyflow.models import CameraMove, Shot, ShotPrompt, Story, Storyboard, StyleBible, Transition

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)

SHOT_TEMPLATE = "shot_prompt.j2"
NEGATIVE_TEMPLATE = "negative_prompt.j2"
CAPTION_TEMPLATE = "caption.j2"


class EmbeddedLLM(LLMBackend):
    """Rule-based planner and prompt rewriter: offline, deterministic, no model."""

    name = "embedded"
    version = "1"
    description = "rule-based planner and prompt rewriter (offline, deterministic, no model)"

    def plan(self, story: Story) -> Storyboard:
        """Break a story into shots by the rules in this module's docstring."""
        return plan_story(story, planner=self.label)

    def rewrite(self, shot: Shot, board: Storyboard) -> ShotPrompt:
        """Render the shot through prompts/shot_prompt.j2, negative_prompt.j2 and caption.j2."""
        from storyflow.rewrite import load_template

        # 1. every character in the shot, described exactly as the story describes them
        try:
            characters = [board.character(name) for name in shot.characters]
        except KeyError as exc:
            raise LLMOutputError(
                f"shot {shot.id}: field 'characters' names {exc.args[0]!r}, who is not among "
                "the storyboard's characters",
                fix="add the character under 'characters:' in the story's front matter, or replan",
            ) from None
        # 2. what the templates can use
        variables = {
            "title": board.title,
            "shot": shot,
            "style": board.style,
            "characters": characters,
            "action": shot.action,
            "setting": shot.setting,
            "camera": shot.camera.value,
            "camera_phrase": CAMERA_PHRASES[shot.camera],
            "mood": shot.mood,
            "lighting": lighting_of(shot.setting, shot.mood),
            "narration": shot.narration,
        }
        # 3. render: the prompt and caption on one line, the negative prompt as unique terms
        template = load_template(SHOT_TEMPLATE)
        return ShotPrompt(
            shot_id=shot.id,
            prompt=_one_line(template.render(**variables)),
            negative_prompt=_unique_terms(load_template(NEGATIVE_TEMPLATE).render(**variables)),
            caption=_one_line(load_template(CAPTION_TEMPLATE).render(**variables)),
            template=template.name,
            template_sha256=template.sha256,
            llm=self.label,
        )


# ---------------------------------------------------------------- planning


@dataclass
class _Paragraph:
    beat: int  # 1-based paragraph number
    sentences: list[Sentence]
    opens_scene: bool  # the first paragraph of the story or after a heading / rule
    heading: str  # the heading(s) right above it
    time_skip: bool  # opens with "Later," "Years later", "The next morning"...


@dataclass
class _Draft:
    """A shot being cut out of the story, before anything is inferred."""

    beat: int
    sentences: list[Sentence] = field(default_factory=list)
    first_in_paragraph: bool = False
    opens_scene: bool = False
    heading: str = ""
    time_skip: bool = False
    camera: CameraMove | None = None  # written in the story
    forced_continue: bool = False  # "Continuous." / "(continuous)"
    fade_out: bool = False  # "Fade to black."
    cut_in: bool = False  # "Cut to"

    @property
    def lines(self) -> list[str]:
        return [s.text for s in self.sentences if s.is_narration]

    @property
    def narration(self) -> str:
        return " ".join(self.lines)


def plan_story(story: Story, planner: str = "embedded 1") -> Storyboard:
    """Story -> Storyboard by the embedded rules (deterministic for a story and seed)."""
    # 1. read the body into paragraphs, each knowing its scene
    paragraphs = _read_paragraphs(story.text)
    # 2. cut the paragraphs into shots
    drafts = _draft_shots(paragraphs)
    if not drafts:
        raise StoryError(
            f"{story.source or 'the story'} has headings but no narration to film",
            fix="write at least one paragraph of story text under the heading",
        )
    if drafts[0].forced_continue:
        log.warning("the story's first shot is marked continuous; the first shot cannot continue anything")
    # 3. what each shot shows, shot by shot, carrying state forward
    shots = _describe_shots(drafts, story)
    # 4. the storyboard, with durations fitted to the target length
    board = Storyboard(
        title=story.title,
        slug=story.slug,
        story_sha256=story.sha256,
        style=StyleBible(style=story.style, palette=palette_of(story.style), negative=DEFAULT_NEGATIVE),
        characters=story.characters,
        shots=tuple(shots),
        width=story.width,
        height=story.height,
        fps=story.fps,
        seed=story.seed,
        title_card=story.title_card,
        planner=planner,
    )
    if story.duration is not None:
        board = fit_to_duration(board, story.duration)
    return board


def _read_paragraphs(body: str) -> list[_Paragraph]:
    paragraphs: list[_Paragraph] = []
    opens_scene, headings = True, []
    for block in split_blocks(body):
        if block.kind != "paragraph":  # a heading or a rule: the next paragraph opens a scene
            opens_scene = True
            if block.text:
                headings.append(block.text)
            continue
        sentences = [classify(s) for s in split_sentences(block.text)]
        paragraphs.append(
            _Paragraph(
                beat=len(paragraphs) + 1,
                sentences=sentences,
                opens_scene=opens_scene,
                heading=" ".join(headings),
                time_skip=bool(TIME_SKIP.match(next((s.text for s in sentences if s.text), ""))),
            )
        )
        opens_scene, headings = False, []
    return paragraphs


def _draft_shots(paragraphs: list[_Paragraph]) -> list[_Draft]:
    drafts: list[_Draft] = []
    waiting: list[Sentence] = []  # directive / marker sentences for the next shot
    for paragraph in paragraphs:
        current: _Draft | None = None
        new_shot_next = False
        for position, sentence in enumerate(paragraph.sentences):
            # 1. sentences that are only a directive or a marker attach to a shot
            if not sentence.is_narration:
                narration_follows = any(s.is_narration for s in paragraph.sentences[position + 1 :])
                previous = current or (drafts[-1] if drafts else None)
                if sentence.fade_out and previous is not None:
                    previous.fade_out = True
                    previous.sentences.append(sentence)
                    new_shot_next = True
                elif sentence.camera and current and current.camera is None and not narration_follows:
                    current.camera = sentence.camera  # "... Tilt up." closing a paragraph
                    current.sentences.append(sentence)
                else:
                    waiting.append(sentence)
                continue
            # 2. a narration sentence: join the current shot or start a new one
            camera = next((s.camera for s in waiting if s.camera), None) or sentence.camera
            continues = sentence.continues or any(s.continues for s in waiting)
            cut_in = sentence.cut_in or any(s.cut_in for s in waiting)
            starts_new = (
                current is None
                or new_shot_next
                or bool(waiting)
                or camera is not None
                or continues
                or cut_in
                or len(current.lines) >= MAX_SHOT_SENTENCES
                or word_count(current.narration) + word_count(sentence.text) > MAX_SHOT_WORDS
            )
            if starts_new:
                first = current is None
                current = _Draft(
                    beat=paragraph.beat,
                    first_in_paragraph=first,
                    opens_scene=first and paragraph.opens_scene,
                    heading=paragraph.heading if first else "",
                    time_skip=first and paragraph.time_skip,
                    camera=camera,
                    forced_continue=continues,
                    cut_in=cut_in,
                )
                drafts.append(current)
            assert current is not None
            current.sentences += [*waiting, sentence]
            current.fade_out |= sentence.fade_out
            waiting, new_shot_next = [], sentence.fade_out
    # 3. directives after the last sentence belong to the last shot
    if drafts and waiting:
        last = drafts[-1]
        last.camera = last.camera or next((s.camera for s in waiting if s.camera), None)
        last.fade_out |= any(s.fade_out for s in waiting)
        last.sentences += waiting
    return drafts


def _describe_shots(drafts: list[_Draft], story: Story) -> list[Shot]:
    names = [character.name for character in story.characters]
    continues = [_continues(k, drafts) for k in range(len(drafts))]
    state = SceneState()
    shots: list[Shot] = []
    camera: CameraMove | None = None
    characters: list[str] = []
    mood: str | None = None
    for k, draft in enumerate(drafts):
        text = draft.narration
        # 1. camera: written, else inferred
        if draft.camera is not None:
            camera = draft.camera
        else:
            camera = infer_camera(text, draft.opens_scene, camera, _rng(story.seed, "camera", k))
        # 2. who is in it: named, else carried over through a pronoun
        named = characters_in(text, names)
        characters = named or (characters if uses_pronoun(text) else [])
        # 3. where and when, how it feels and sounds
        if draft.heading:
            state.update(draft.heading)
        state.update(text)
        setting = state.describe()
        mood = mood_of(text, mood)
        shots.append(
            Shot(
                id=f"s{k + 1:02d}",
                index=k,
                beat=draft.beat,
                story_text=" ".join(s.source for s in draft.sentences),
                action=action_of(draft.lines, characters),
                setting=setting,
                camera=camera,
                camera_from_text=draft.camera is not None,
                duration=_whole_frames(reading_seconds(text), story.fps),
                characters=tuple(characters),
                narration=text,
                mood=mood,
                sound_cue=sound_of(text, setting),
                transition=_transition(k, drafts, continues),
                continues_previous=continues[k],
            )
        )
    return shots


def _continues(k: int, drafts: list[_Draft]) -> bool:
    """Does shot k continue shot k-1? (rule 3 of the module docstring)"""
    draft = drafts[k]
    if k == 0:
        return False
    if draft.forced_continue:
        return True
    split_from_same_paragraph = not draft.first_in_paragraph
    return split_from_same_paragraph and draft.camera is None and not draft.cut_in and not drafts[k - 1].fade_out


def _transition(k: int, drafts: list[_Draft], continues: list[bool]) -> Transition:
    """How shot k hands over to shot k+1 (rule 6 of the module docstring)."""
    if k == len(drafts) - 1:
        return Transition.FADE
    draft, following = drafts[k], drafts[k + 1]
    if continues[k + 1]:
        return Transition.CUT
    if draft.fade_out or following.opens_scene or following.time_skip:
        return Transition.FADE
    if following.cut_in:
        return Transition.CUT
    if following.first_in_paragraph:
        return Transition.CROSSFADE
    return Transition.CUT


def _rng(seed: int, *parts: object) -> np.random.Generator:
    """A generator for one decision, derived from the seed with hashlib (stable across processes)."""
    import numpy as np

    key = ":".join(["storyflow.embedded", str(seed), *(str(p) for p in parts)])
    return np.random.default_rng(int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big"))


# ---------------------------------------------------------------- durations


def _whole_frames(seconds: float, fps: int) -> float:
    return max(1, round(seconds * fps)) / fps


def fit_to_duration(board: Storyboard, target: float) -> Storyboard:
    """Scale every shot so the film's timeline lasts `target` seconds, to the frame if possible."""
    from storyflow.timeline import film_timeline

    fps = board.fps
    target_frames = round(target * fps)
    floor = max(1, round(MIN_FITTED_SECONDS * fps))
    frames = [shot.frames(fps) for shot in board.shots]
    # The timeline adds the title card and takes off crossfade overlaps; those change only
    # when shots get very short, so a few rounds always settle.
    for _ in range(8):
        total = film_timeline(_with_frames(board, frames)).total_frames
        if total == target_frames:
            break
        wanted = sum(frames) + target_frames - total
        fitted = _apportion(frames, wanted, floor)
        if fitted == frames:
            break
        frames = fitted
    board = _with_frames(board, frames)
    reached = film_timeline(board).total_frames
    if reached != target_frames:
        log.warning(
            "the storyboard lasts %.2f s, not the %.2f s asked for: %d shots need at least %.1f s each",
            reached / fps, target, len(frames), MIN_FITTED_SECONDS,
        )
    return board


def _with_frames(board: Storyboard, frames: list[int]) -> Storyboard:
    shots = tuple(
        shot.model_copy(update={"duration": count / board.fps}) for shot, count in zip(board.shots, frames, strict=True)
    )
    return board.model_copy(update={"shots": shots})


def _apportion(weights: list[int], total: int, floor: int) -> list[int]:
    """Split `total` frames in proportion to `weights` (largest remainders), none below `floor`."""
    pinned: dict[int, int] = {}
    while True:
        free = [i for i in range(len(weights)) if i not in pinned]
        budget = total - floor * len(pinned)
        if not free or budget <= 0:
            return [pinned.get(i, floor) for i in range(len(weights))]
        weight = sum(weights[i] for i in free)
        exact = {i: weights[i] * budget / weight for i in free}
        share = {i: int(exact[i]) for i in free}
        by_remainder = sorted(free, key=lambda i: (-(exact[i] - share[i]), i))
        for i in by_remainder[: budget - sum(share.values())]:
            share[i] += 1
        too_short = [i for i in free if share[i] < floor]
        if not too_short:
            return [pinned.get(i, share.get(i, 0)) for i in range(len(weights))]
        pinned.update({i: floor for i in too_short})


# ---------------------------------------------------------------- prompt text


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _unique_terms(text: str) -> str:
    """'a, b, a,  c' -> 'a, b, c': comma-separated terms, each once, in first-seen order."""
    terms: list[str] = []
    for term in (" ".join(t.split()) for t in text.split(",")):
        if term and term.lower() not in (seen.lower() for seen in terms):
            terms.append(term)
    return ", ".join(terms)
