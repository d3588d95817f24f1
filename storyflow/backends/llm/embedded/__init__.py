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
   "Cut to", "Fade to black." and "Seamless loop." also start a new shot. A paragraph
   with a timing marker (rule 10) is always ONE shot, however long.
3. Continuing shots. A shot split out of the same paragraph as the shot before it
   continues that shot (same moment, joined by a cut) unless its text names its own
   camera move: then it is a new angle, still joined by a cut. "Continuous." or a
   paragraph opening with "(continuous)" makes a shot continue the previous one, across
   paragraphs too. The first shot never continues anything, and nothing continues a
   loop (rule 11): a shot marked continuous after one starts afresh, with a warning.
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
5. Narration: the shot's sentences without directives and markers; dialogue kept. The
   texts of timed changes (rule 10) are narrated too, in their place: "A walking figure
   made out of water. Lightning flashes in the background. Purple smoke emits from it."
6. Transitions (out of each shot): into a continuing shot, a cut; into a new scene, a
   jump in time ("Later,", "Years later", "The next morning") or after "Fade to black",
   a fade; "Cut to", a cut; into a new paragraph, a crossfade; within a paragraph, a
   cut. The last shot fades out.
7. Durations: a length written in the paragraph ("[12s]", rule 10) wins; otherwise reading
   speed (2.6 words/s + 1 s, clamped to 2.5-12 s), raised to the last timed change + 2 s.
   With a target `duration`, the shots without a written length are scaled so the film
   (title card included, crossfade overlaps taken off, see storyflow.core.timeline) lands
   within 2% of it (a factor from a fixed grid: an edit to one shot leaves the others'
   lengths alone), no shot under 1 s nor under its last change + 2 s; if the written
   lengths alone leave no room for that, a warning says so. Every duration is a whole
   number of frames (a written length that is not is rounded, with a warning).
8. Characters: the front-matter names a shot mentions; if it names none but says
   he/she/they/his/her..., the previous shot's characters.
9. Setting (place, time of day, weather), mood and sound cue: lexicons in
   embedded_rules, carried from shot to shot until the text changes them. A shot with
   timed changes takes its setting from what is seen at its start (the changes carry
   over to the next shot); its mood, sound and characters from all of its text.
10. Timing markers, in square brackets anywhere in a paragraph (never narrated):
      A walking figure made out of water. [12s]
      [at 4s] Lightning flashes in the background. [at 8s] Purple smoke emits from it.
   "[12s]" (also "[12 s]", "[12.5s]", "[12 sec]") is the shot's length in seconds.
   "[at 4s] text" is a timed change: from 4 s into the shot, the text up to the next
   "[at ...]" (or the paragraph's end) is added to what is seen (Shot.prompt_changes; the
   rewriter turns each into a full prompt, ShotPrompt.changes). The shot's `action` is
   what is seen before the first change. Changes come in increasing time order, after
   0 s, each with text; the shot lasts at least the last change + 2 s, and a written
   length that leaves the last change under 1 s is an error. Anything else in brackets
   that looks like a time ("[at four]", "[3 min]", "[12]") is an error naming its line.
11. Loops: a sentence that is only "Seamless loop." / "Loop." (also "Looping.") sets
   Shot.loop: the shot's last frame leads back to its first. It is not narrated, and
   attaches like a camera directive (rule 4): to the next sentence of its paragraph, at
   a paragraph's end to the shot before it.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from storyflow.backends.base import LLMBackend, LLMTask
from storyflow.backends.llm.embedded.rules import (
    MAX_SHOT_SENTENCES,
    MAX_SHOT_WORDS,
    MIN_CHANGE_HOLD_SECONDS,
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
from storyflow.backends.llm.embedded.text import (
    TIME_LIKE,
    TIME_SKIP,
    Block,
    Marker,
    Sentence,
    classify,
    find_markers,
    split_at_markers,
    split_blocks,
    split_sentences,
    word_count,
)
from storyflow.core.durations import fit_to_target, on_target, with_frames
from storyflow.core.errors import LLMOutputError, StoryError
from storyflow.core.models import (
    CameraMove,
    PromptChange,
    Shot,
    ShotPrompt,
    Story,
    Storyboard,
    StyleBible,
    TimedPrompt,
    Transition,
)
from storyflow.core.vocabulary import (
    CAMERA_PHRASES,
    CHANGE_HOLD_SECONDS,
    DEFAULT_NEGATIVE,
)

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

    def plan(self, story: Story, task: LLMTask) -> Storyboard:
        """Break a story into shots by the rules in this module's docstring (no model: the task's
        instructions are for chat LLMs)."""
        return plan_story(story, planner=self.label)

    def rewrite(self, shot: Shot, board: Storyboard, task: LLMTask) -> ShotPrompt:
        """Render the shot through the task's shot_prompt.j2, negative_prompt.j2 and caption.j2.

        A shot with timed changes gets one more prompt per change, rendered through the same
        template with the change texts in force by then: the prompt evolves, VideoPoet style.
        """
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
            "changes": [],  # the timed change texts in force: none at the shot's start
            "loop": shot.loop,
        }
        # 3. render: the prompt and caption on one line, the negative prompt as unique terms
        template = task.templates.load(SHOT_TEMPLATE)
        # 4. an evolving shot: the prompt from each change on, with every change so far added
        texts = [change.text for change in shot.prompt_changes]
        changes = tuple(
            TimedPrompt(at=change.at, prompt=_one_line(template.render(**{**variables, "changes": texts[: n + 1]})))
            for n, change in enumerate(shot.prompt_changes)
        )
        return ShotPrompt(
            shot_id=shot.id,
            prompt=_one_line(template.render(**variables)),
            negative_prompt=_unique_terms(task.templates.load(NEGATIVE_TEMPLATE).render(**variables)),
            caption=_one_line(task.templates.load(CAPTION_TEMPLATE).render(**variables)),
            template=template.name,
            template_sha256=template.sha256,
            llm=self.label,
            changes=changes,
        )


# ---------------------------------------------------------------- planning


@dataclass
class _Change:
    """A timed change written in the story: "[at 4s] Lightning flashes in the background."."""

    at: float  # seconds into the shot
    sentences: list[Sentence]

    @property
    def lines(self) -> list[str]:
        return [s.text for s in self.sentences if s.is_narration]


@dataclass
class _Paragraph:
    beat: int  # 1-based paragraph number
    sentences: list[Sentence]  # every sentence, the timed changes' included, in reading order
    opens_scene: bool  # the first paragraph of the story or after a heading / rule
    heading: str  # the heading(s) right above it
    time_skip: bool  # opens with "Later," "Years later", "The next morning"...
    text: str = ""  # as written (markdown removed), markers included
    length: float | None = None  # "[12s]": the shot's length, written
    changes: list[_Change] = field(default_factory=list)  # "[at 4s] ...", in time order
    opening: list[str] = field(default_factory=list)  # narration before the first change

    @property
    def one_shot(self) -> bool:
        """A paragraph with a written length or timed changes is one shot, never split."""
        return self.length is not None or bool(self.changes)


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
    loop: bool = False  # "Seamless loop."
    length: float | None = None  # "[12s]"
    changes: list[_Change] = field(default_factory=list)  # "[at 4s] ..."
    opening: list[str] = field(default_factory=list)  # narration seen from 0 s, when there are changes
    written: str = ""  # story_text when it differs from the sentences (markers kept)

    @property
    def lines(self) -> list[str]:
        return [s.text for s in self.sentences if s.is_narration]

    @property
    def narration(self) -> str:
        return " ".join(self.lines)


def plan_story(story: Story, planner: str = "embedded 1") -> Storyboard:
    """Story -> Storyboard by the embedded rules (deterministic for a story and seed)."""
    # 1. read the body into paragraphs, each knowing its scene and its timing markers
    paragraphs = _read_paragraphs(story)
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
        target_seconds=story.duration,
        planner=planner,
    )
    if story.duration is not None:
        written = {shot.id for shot in board.shots if shot.fixed_duration}
        board = fit_to_duration(board, story.duration, fixed=written)
    return board


def _read_paragraphs(story: Story) -> list[_Paragraph]:
    paragraphs: list[_Paragraph] = []
    opens_scene, headings = True, []
    for block in split_blocks(story.text):
        if block.kind != "paragraph":  # a heading or a rule: the next paragraph opens a scene
            opens_scene = True
            if block.text:
                headings.append(block.text)
            continue
        paragraph = _timed_paragraph(block, story)
        paragraph.beat = len(paragraphs) + 1
        paragraph.opens_scene, paragraph.heading = opens_scene, " ".join(headings)
        paragraphs.append(paragraph)
        opens_scene, headings = False, []
    return paragraphs


def _timed_paragraph(block: Block, story: Story) -> _Paragraph:
    """A paragraph's sentences, its written length ("[12s]") and its timed changes ("[at 4s]")."""
    markers = find_markers(block.text)

    def error(marker: Marker, problem: str, fix: str) -> StoryError:
        line = block.line_of(TIME_LIKE, marker.nth)
        return StoryError(f"{story.source or 'the story'}, line {story.body_line + line - 1}: {problem}", fix=fix)

    # 1. every bracketed time is a well-formed marker, with at most one length per paragraph
    for marker in markers:
        if marker.kind == "bad":
            raise error(
                marker, f"{marker.written} is not a timing marker",
                fix="write a shot's length as [12s] and a timed change as [at 4s] (in seconds)",
            )
    lengths = [marker for marker in markers if marker.kind == "length"]
    if len(lengths) > 1:
        raise error(
            lengths[1], f"a second shot length {lengths[1].written} in one paragraph ({lengths[0].written} came first)",
            fix="keep one [Ns] per paragraph; start a new paragraph (a blank line) for another shot",
        )
    length = lengths[0] if lengths else None
    if length is not None and length.seconds <= 0:
        raise error(length, f"the shot length {length.written} is not more than 0 s", fix="write a length such as [6s]")
    # 2. the text seen from the start, then each change in increasing time order, none empty
    opening_text, timed = split_at_markers(block.text, markers)
    opening = [classify(s) for s in split_sentences(opening_text)]
    changes: list[_Change] = []
    for marker, text in timed:
        change = _Change(marker.seconds, [classify(s) for s in split_sentences(text)])
        if marker.seconds <= 0:
            raise error(
                marker, f"the change {marker.written} does not come after the shot starts",
                fix="write what is seen from the start before the first [at] marker, and changes from [at 1s] on",
            )
        if changes and marker.seconds <= changes[-1].at:
            raise error(
                marker, f"the change {marker.written} comes after [at {changes[-1].at:g}s]",
                fix="write a paragraph's changes in increasing time order: [at 4s] ... [at 8s] ...",
            )
        if not change.lines:
            raise error(
                marker, f"the change {marker.written} has no text after it",
                fix=f"write what is added to the picture after it: '{marker.written} Lightning flashes.'",
            )
        changes.append(change)
    sentences = opening + [s for change in changes for s in change.sentences]
    if markers and not any(s.is_narration for s in opening):
        raise error(
            markers[0], f"{markers[0].written} stands in a paragraph with no story text seen from the shot's start",
            fix="start the paragraph with what is seen, e.g. 'A figure made of water walks. [12s] [at 4s] ...'",
        )
    # 3. a written length leaves the last change at least a second on screen
    if length is not None and changes and length.seconds < changes[-1].at + MIN_CHANGE_HOLD_SECONDS:
        shortest = changes[-1].at + MIN_CHANGE_HOLD_SECONDS
        raise error(
            length, f"the shot lasts {length.written} but its last change comes at {changes[-1].at:g} s",
            fix=f"make the shot at least [{shortest:g}s] long, or move its last change earlier",
        )
    return _Paragraph(
        beat=0,
        sentences=sentences,
        opens_scene=False,
        heading="",
        time_skip=bool(TIME_SKIP.match(next((s.text for s in sentences if s.text), ""))),
        text=block.text,
        length=length.seconds if length else None,
        changes=changes,
        opening=[s.text for s in opening if s.is_narration],
    )


def _draft_shots(paragraphs: list[_Paragraph]) -> list[_Draft]:
    drafts: list[_Draft] = []
    waiting: list[Sentence] = []  # directive / marker sentences for the next shot
    for paragraph in paragraphs:
        current: _Draft | None = None
        new_shot_next = False
        carried_in = [s.source for s in waiting]  # directives from earlier paragraphs
        for position, sentence in enumerate(paragraph.sentences):
            # 1. sentences that are only a directive or a marker attach to a shot
            if not sentence.is_narration:
                narration_follows = any(s.is_narration for s in paragraph.sentences[position + 1 :])
                previous = current or (drafts[-1] if drafts else None)
                attach = current is not None and (
                    paragraph.one_shot  # never split: everything after its first sentence is its shot's
                    or (not narration_follows and (sentence.loop or (sentence.camera and current.camera is None)))
                )
                if sentence.fade_out and previous is not None:
                    previous.fade_out = True
                    previous.sentences.append(sentence)
                    new_shot_next = True
                elif attach and current is not None:
                    # "... Tilt up." / "... Seamless loop." closing a paragraph
                    current.camera = current.camera or sentence.camera
                    current.loop |= sentence.loop
                    current.sentences.append(sentence)
                else:
                    waiting.append(sentence)
                continue
            # 2. a narration sentence: join the current shot or start a new one
            camera = next((s.camera for s in waiting if s.camera), None) or sentence.camera
            continues = sentence.continues or any(s.continues for s in waiting)
            cut_in = sentence.cut_in or any(s.cut_in for s in waiting)
            loop = any(s.loop for s in waiting)
            if paragraph.one_shot:
                starts_new = current is None
            else:
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
            current.camera = current.camera or camera  # only a one-shot paragraph gets here with one set
            current.loop |= loop
            current.sentences += [*waiting, sentence]
            current.fade_out |= sentence.fade_out
            waiting, new_shot_next = [], sentence.fade_out
        # 3. a one-shot paragraph: its written length and timed changes, its text as written
        if paragraph.one_shot and current is not None:
            current.length, current.changes, current.opening = paragraph.length, paragraph.changes, paragraph.opening
            current.written = " ".join([*carried_in, paragraph.text])
    # 4. directives after the last sentence belong to the last shot
    if drafts and waiting:
        last = drafts[-1]
        last.camera = last.camera or next((s.camera for s in waiting if s.camera), None)
        last.fade_out |= any(s.fade_out for s in waiting)
        last.loop |= any(s.loop for s in waiting)
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
        text = draft.narration  # a timed change is narrated too, where the story tells it
        seen_first = " ".join(draft.opening) if draft.changes else text  # what is seen from 0 s
        # 1. camera: written, else inferred
        if draft.camera is not None:
            camera = draft.camera
        else:
            camera = infer_camera(text, draft.opens_scene, camera, _rng(story.seed, "camera", k))
        # 2. who is in it: named, else carried over through a pronoun
        named = characters_in(text, names)
        characters = named or (characters if uses_pronoun(text) else [])
        # 3. where and when (as the shot opens: its changes carry over to the next shot), how it feels and sounds
        if draft.heading:
            state.update(draft.heading)
        state.update(seen_first)
        setting = state.describe()
        for change in draft.changes:
            state.update(" ".join(change.lines))
        mood = mood_of(text, mood)
        # 4. what is seen from the start, and what each timed change adds
        shot_id = f"s{k + 1:02d}"
        changes = tuple(
            PromptChange(at=change.at, text=action_of(change.lines, characters)) for change in draft.changes
        )
        shots.append(
            Shot(
                id=shot_id,
                index=k,
                beat=draft.beat,
                story_text=draft.written or " ".join(s.source for s in draft.sentences),
                action=action_of(draft.opening if draft.changes else draft.lines, characters),
                setting=setting,
                camera=camera,
                camera_from_text=draft.camera is not None,
                duration=_shot_seconds(shot_id, draft, story.fps),
                characters=tuple(characters),
                narration=text,
                mood=mood,
                sound_cue=sound_of(text, setting),
                transition=_transition(k, drafts, continues),
                continues_previous=continues[k],
                prompt_changes=changes,
                loop=draft.loop,
                fixed_duration=draft.length is not None,
            )
        )
    return shots


def _shot_seconds(shot_id: str, draft: _Draft, fps: int) -> float:
    """A written length ("[12s]"), else reading speed, held past the last timed change; whole frames."""
    last_change = draft.changes[-1].at if draft.changes else 0.0
    if draft.length is not None:
        seconds = _whole_frames(draft.length, fps)
        if abs(seconds - draft.length) > 1e-9:
            log.warning(
                "shot %s: [%gs] is not a whole number of frames at %d fps; it lasts %.3f s (%d frames)",
                shot_id, draft.length, fps, seconds, round(seconds * fps),
            )
        if draft.changes and seconds < last_change + CHANGE_HOLD_SECONDS:
            log.warning(
                "shot %s: its last change (at %g s) is on screen for only %.2f s of its written [%gs]",
                shot_id, last_change, seconds - last_change, draft.length,
            )
        return seconds
    seconds = reading_seconds(draft.narration)
    if draft.changes:
        seconds = max(seconds, last_change + CHANGE_HOLD_SECONDS)
    return _whole_frames(seconds, fps)


def _continues(k: int, drafts: list[_Draft]) -> bool:
    """Does shot k continue shot k-1? (rule 3 of the module docstring)"""
    draft = drafts[k]
    if k == 0:
        return False
    if drafts[k - 1].loop:  # a loop ends on its own first frame: nothing can carry on from it
        if draft.forced_continue:
            log.warning("shot s%02d is marked continuous, but shot s%02d before it loops; it starts afresh", k + 1, k)
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


def fit_to_duration(board: Storyboard, target: float, fixed: Collection[str] = ()) -> Storyboard:
    """Scale the shots so the film's timeline lasts `target` seconds (within storyflow.core.durations' tolerance).

    Shots named in `fixed` (a length written in the story, "[12s]") keep their length; the
    others share what is left. No shot goes under MIN_FITTED_SECONDS, nor a shot with timed
    changes under its last change + CHANGE_HOLD_SECONDS.
    """
    from storyflow.core.timeline import film_timeline

    fps = board.fps
    target_frames = round(target * fps)
    frames = [shot.frames(fps) for shot in board.shots]
    floors = [_shortest_frames(shot, fps) for shot in board.shots]
    # 1. the written lengths alone may already be too long for the target
    shortest = [count if shot.id in fixed else floor for shot, count, floor in zip(board.shots, frames, floors)]
    too_long = bool(fixed) and film_timeline(with_frames(board, shortest)).total_frames > target_frames
    if too_long:
        written = sum(count for shot, count in zip(board.shots, frames) if shot.id in fixed)
        log.warning(
            "the shots with a written length ([Ns]) last %.2f s together; with the title card and the other "
            "shots at their shortest (%.1f s each), the film cannot last the %.2f s asked for",
            written / fps, MIN_FITTED_SECONDS, target,
        )
    # 2. scale the free shots
    board = fit_to_target(board, target, floors, fixed)
    reached = film_timeline(board).total_frames
    if not on_target(reached, target_frames) and not too_long:
        log.warning(
            "the storyboard lasts %.2f s, not the %.2f s asked for: %d shots need at least %.1f s each "
            "(a shot with timed changes, its last change + %.1f s)",
            reached / fps, target, len(frames), MIN_FITTED_SECONDS, CHANGE_HOLD_SECONDS,
        )
    return board


def _shortest_frames(shot: Shot, fps: int) -> int:
    """The fewest frames fitting may leave a shot: a second, or its last change held on screen."""
    seconds = MIN_FITTED_SECONDS
    if shot.prompt_changes:
        seconds = max(seconds, shot.prompt_changes[-1].at + CHANGE_HOLD_SECONDS)
    return max(1, math.ceil(seconds * fps - 1e-9))


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
