"""The embedded LLM backend: a rule-based planner and prompt rewriter, offline and deterministic.

It reads a story the way a storyboard artist skims one, with written rules instead of a
model: no network, no weights, and the same story and seed always give the same storyboard.

How a story is planned
1. Beats. Paragraphs (separated by blank lines) are beats. Markdown headings and
   horizontal rules are not narration: each starts a new scene, and a heading's words
   (e.g. "## The harbour at dawn") set the scene's place and time. Emphasis, links and
   images are stripped.
2. Shots. A paragraph becomes one shot, or several when it is long: shots of at most
   3 sentences and 18 words (about 2.5 to 8 s). A directive (rule 4), "Continuous.",
   "Cut to", "Fade to black." and "Seamless loop." also start a new shot. A paragraph
   with a timing marker (rule 10) is always ONE shot, however long. A sentence going on
   with a sequence of events ("Then it barks.", rule 12) stays with the shot before it.
3. Continuing shots. A shot split out of the same paragraph as the shot before it
   continues that shot (same moment, joined by a cut) unless its text writes its own
   directive (rule 4): then it is a new angle, still joined by a cut. "Continuous." or a
   paragraph opening with "(continuous)" makes a shot continue the previous one, across
   paragraphs too. The first shot never continues anything, and nothing continues a
   loop (rule 11): a shot marked continuous after one starts afresh, with a warning.
4. The shot grammar: every shot has a framing (extreme wide ... extreme close-up), one or
   more camera moves, and may have a camera angle (eye level, low, high, overhead, dutch)
   and lens or speed effects (tilt shift, slow motion, time-lapse, rack focus).
   a. Written directives win, all of them (phrases in embedded_text.DIRECTIVE_PHRASES:
      "close-up", "close up", "closeup", "CU", "ECU", "wide shot", "low angle", "bird's-eye
      view", "dutch angle", "slow motion", "time-lapse", "tilt shift", "rack focus", "arc
      shot", "pan left"...): the first framing and the first angle written, every move in
      the order written (the first is Shot.camera, the others Shot.more_moves) and every
      effect: "Close-up, low angle, slow motion. Arc shot then zoom in." keeps all five.
      Ordinary words alone are never directives: "close", "wide", "low", "slow".
      camera_from_text says the shot's moves were written. A sentence that is only
      directives applies to the next sentence of its paragraph; at a paragraph's end to
      the shot before it (if that has none of their kinds yet); alone in a paragraph to
      the next paragraph. It is dropped from the narration; a directive inside a longer
      sentence ("A close-up of her hands.") is read and the sentence stays.
   b. What is not written is inferred from the shot's words (embedded_rules.infer_grammar;
      each list below: first match wins). The framing and angle are read from what is
      seen at the shot's start, the moves and effects from all of its text.
      Establishing: the first shot of a scene (unless the story is a single shot: a
      one-line prompt shows its subject), or a shot whose words move to a new large
      place (a coast, a forest, a harbour, a city...), is a wide shot (extreme wide for a
      vast place: sea, mountains, desert, sky...) with a crane shot or a pan (the seed
      picks), unless a rule below names the move.
      Framing: eyes, a tear, a drop -> extreme close-up; a face, hands, a whisper, a
      small object held or looked at ("holds the key", "reads a letter") -> close-up
      (both win over establishing); then establishing -> wide / extreme wide; a vast
      view with nobody in it -> extreme wide; eating, drinking, talking, typing, a
      selfie -> medium close-up; running, chasing, riding, dancing, walking along ->
      medium wide; flying, an explosion, a storm -> wide; else a vast word -> extreme
      wide; else a medium shot.
      Move: running/chasing/galloping/riding/skating/walking along -> tracking shot;
      flying/soaring/diving -> FPV drone shot; shock/suddenly/realises -> dolly zoom;
      looks up/climbs/towers -> tilt up; looks down/descends -> tilt down; dancing/
      spinning/playing an instrument or cards -> arc shot; reveals/emerges -> zoom out;
      then establishing -> crane or pan (seeded); a close-up -> zoom in (static after a
      shot that zoomed in); else a seeded pick among calm moves that suit the framing
      (medium: static, zoom in, arc, pans; wide: pans, zoom out, static, crane), never
      the previous shot's move. The seed and the shot's own words make the pick, so
      one-line stories do not all get the same move.
      Angle, only where the words imply one: from above/bird's-eye/top-down -> overhead;
      towering/looms/giant/heroic/roars/from below -> low angle; tiny/far below/a village/
      looks down on -> high angle; dizzy/off-kilter/disoriented -> dutch angle. Else none.
      Effects, only where the words clearly imply them: slowly falling/drifting/floating/
      sinking, suspended in mid-air -> slow motion; over hours/days/the seasons, day
      turning to night -> time-lapse; miniature/toy-like/small world -> tilt shift. Rack
      focus only when written.
5. Narration: the shot's sentences without directive-only sentences and markers; dialogue
   kept. A shot cut out of the middle of a sentence of events (rule 12) narrates its events
   as sentences of their own ("Tom walks to the harbour."). The
   texts of timed changes (rule 10) are narrated too, in their place: "A walking figure
   made out of water. Lightning flashes in the background. Purple smoke emits from it."
6. Transitions (out of each shot): into a continuing shot, a cut; into a new scene, a
   jump in time ("Later,", "Years later", "The next morning") or after "Fade to black",
   a fade; "Cut to", a cut; into a new paragraph, a crossfade; within a paragraph, a
   cut. The last shot fades out.
7. Durations: a length written in the paragraph ("[12s]", rule 10) wins; otherwise reading
   speed (2.6 words/s + 1 s, clamped to 2.5-12 s), raised to the last timed change + 2 s
   (rule 10's written changes and rule 12's events alike).
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
12. Events in sequence: a shot whose text tells events one after another, with a sequence
   word ("A man walks into the room, sits down, and then picks up a book."; "The dog runs
   to the door. Then it barks. Finally it lies down."), is cut into events
   (embedded_text.split_events: one per sentence, and one per clause of a sentence holding
   "then"). Events of one subject at one place, at most MAX_EVENTS_PER_SHOT (3), make ONE
   evolving shot: its action is the first event, and each next event is a timed change
   (Shot.prompt_changes) spread evenly, at least EVENT_SECONDS (2.5 s) apart, the shot
   lasting the last change + 2 s at least. The subject left out is put back ("The man
   sits down.", "The dog barks."). A new place (an event naming another place) or
   another named character taking over cuts to a new shot (a cut, not a continuation);
   a fourth event starts a new shot that continues this one. A paragraph with timing
   markers (rule 10) is never cut this way: what is written wins.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from storyflow.backends.base import LLMBackend, LLMTask, PromptShape
from storyflow.backends.llm.embedded.rules import (
    MAX_SHOT_SENTENCES,
    MAX_SHOT_WORDS,
    MIN_CHANGE_HOLD_SECONDS,
    SceneState,
    action_of,
    characters_in,
    big_place_of,
    event_sentence,
    infer_grammar,
    lighting_of,
    mood_of,
    place_of,
    reading_seconds,
    soften,
    sound_of,
    subject_of,
    uses_pronoun,
)
from storyflow.backends.llm.embedded.text import (
    SEQUENCE_OPENER,
    TIME_LIKE,
    TIME_SKIP,
    Block,
    Directive,
    Marker,
    Sentence,
    classify,
    find_markers,
    split_at_markers,
    split_blocks,
    split_events,
    split_sentences,
    word_count,
)
from storyflow.core.durations import fit_to_duration
from storyflow.core.errors import LLMOutputError, StoryError
from storyflow.core.models import (
    CameraAngle,
    CameraMove,
    Framing,
    LensEffect,
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
    palette_of,
    CAMERA_PHRASES,
    CHANGE_HOLD_SECONDS,
    DEFAULT_NEGATIVE,
)

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)

# Events told in sequence (rule 12): at most this many in one evolving shot, each this long at least.
MAX_EVENTS_PER_SHOT = 3
EVENT_SECONDS = 2.5

NEGATIVE_TEMPLATE = "negative_prompt.j2"
CAPTION_TEMPLATE = "caption.j2"
REPHRASE_TASK = "rephrased_prompt"  # the LLMTask.name storyflow.stages.rephrase asks with


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
        """Render the shot through the task's shot template, negative_prompt.j2 and caption.j2.

        The video backend's prompt shape (`task.shape`, a PromptShape; the default one when
        None) picks the shot template, the order of the prompt's parts (subject, context,
        action, style, camera, composition, ambience) and whether a negative prompt is written.
        Every directive of the shot's grammar (framing, angle, moves, effects) is phrased as
        storyflow.core.vocabulary.CAMERA_PHRASES says. A shot with timed changes gets one more
        prompt per change, rendered through the same template with the change texts in force
        by then: the prompt evolves, VideoPoet style. Asked to rephrase a prompt a safety filter
        refused (a task named REPHRASE_TASK), it writes the same prompt with the words filters
        commonly flag in the scene said plainly or left out (rules.SOFTER): deterministic, and
        the prompt it refused again when the scene has none of them.
        """
        shape = task.shape or PromptShape()
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
            "moves": [move.value for move in shot.moves],
            "move_phrases": [CAMERA_PHRASES[move] for move in shot.moves],
            "framing": shot.framing.value if shot.framing else "",
            "framing_phrase": CAMERA_PHRASES[shot.framing] if shot.framing else "",
            "angle": shot.angle.value if shot.angle else "",
            "angle_phrase": CAMERA_PHRASES[shot.angle] if shot.angle else "",
            "effects": [effect.value for effect in shot.effects],
            "effect_phrases": [CAMERA_PHRASES[effect] for effect in shot.effects],
            "directives": [CAMERA_PHRASES[_directive(value)] for value in shot.directives],
            "order": list(shape.order),
            "mood": shot.mood,
            "lighting": lighting_of(shot.setting, shot.mood),
            "narration": shot.narration,
            "changes": [],  # the timed change texts in force: none at the shot's start
            "loop": shot.loop,
        }
        texts = [change.text for change in shot.prompt_changes]
        # 3. asked again after a video provider's safety filter refused the prompt: the same scene said
        #    plainly (rules.soften); the characters, style and camera stay word for word
        if task.name == REPHRASE_TASK:
            variables.update(action=soften(shot.action), setting=soften(shot.setting), narration=soften(shot.narration))
            texts = [soften(text) for text in texts]
        # 4. render: the prompt and caption on one line, the negative prompt as unique terms
        template = task.templates.load(shape.template)
        # 5. an evolving shot: the prompt from each change on, with every change so far added
        changes = tuple(
            TimedPrompt(at=change.at, prompt=_one_line(template.render(**{**variables, "changes": texts[: n + 1]})))
            for n, change in enumerate(shot.prompt_changes)
        )
        negative = ""
        if shape.negative_prompt:
            negative = _unique_terms(task.templates.load(NEGATIVE_TEMPLATE).render(**variables))
        return ShotPrompt(
            shot_id=shot.id,
            prompt=_one_line(template.render(**variables)),
            negative_prompt=negative,
            caption=_one_line(task.templates.load(CAPTION_TEMPLATE).render(**variables)),
            template=template.name,
            template_sha256=template.sha256,
            llm=self.label,
            changes=changes,
        )


def _directive(value: str) -> CameraMove | Framing | CameraAngle | LensEffect:
    """The grammar member a Shot.directives entry names (its CAMERA_PHRASES key)."""
    for kind in (Framing, CameraAngle, CameraMove, LensEffect):
        try:
            return kind(value)
        except ValueError:
            continue
    raise ValueError(value)


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
    grammar: list[Directive] = field(default_factory=list)  # directives written in the story, in order
    forced_continue: bool = False  # "Continuous." / "(continuous)"
    sequel: bool = False  # a later part of a sequence of events cut into several shots: it continues
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

    @property
    def camera(self) -> CameraMove | None:
        """The first camera move written for it."""
        return next((d for d in self.grammar if isinstance(d, CameraMove)), None)


def _add(have: list[Directive], new: Collection[Directive]) -> list[Directive]:
    """`have` with the directives of `new` it lacks appended, in order."""
    return list(dict.fromkeys([*have, *new]))


def _fits(have: list[Directive], new: Collection[Directive]) -> bool:
    """Can directives closing a paragraph join a shot? Only if it has none of their kinds yet."""
    return bool(new) and not ({type(d) for d in new} & {type(d) for d in have})


def plan_story(story: Story, planner: str = "embedded 1") -> Storyboard:
    """Story -> Storyboard by the embedded rules (deterministic for a story and seed)."""
    # 1. read the body into paragraphs, each knowing its scene and its timing markers
    paragraphs = _read_paragraphs(story)
    # 2. cut the paragraphs into shots, events told in sequence into evolving shots
    drafts = _draft_shots(paragraphs)
    drafts = [part for draft in drafts for part in _sequence_shots(draft, story)]
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
                    or (not narration_follows and (sentence.loop or _fits(current.grammar, sentence.directives)))
                )
                if sentence.fade_out and previous is not None:
                    previous.fade_out = True
                    previous.sentences.append(sentence)
                    new_shot_next = True
                elif attach and current is not None:
                    # "... Tilt up." / "... Seamless loop." closing a paragraph
                    current.grammar = _add(current.grammar, sentence.directives)
                    current.loop |= sentence.loop
                    current.sentences.append(sentence)
                else:
                    waiting.append(sentence)
                continue
            # 2. a narration sentence: join the current shot or start a new one
            written = _add([d for s in waiting for d in s.directives], sentence.directives)
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
                    or bool(written)
                    or continues
                    or cut_in
                    or (
                        # the next event of a sequence ("Then it barks.") stays with it: rule 12 cuts sequences
                        not SEQUENCE_OPENER.match(sentence.text)
                        and (
                            len(current.lines) >= MAX_SHOT_SENTENCES
                            or word_count(current.narration) + word_count(sentence.text) > MAX_SHOT_WORDS
                        )
                    )
                )
            if starts_new:
                first = current is None
                current = _Draft(
                    beat=paragraph.beat,
                    first_in_paragraph=first,
                    opens_scene=first and paragraph.opens_scene,
                    heading=paragraph.heading if first else "",
                    time_skip=first and paragraph.time_skip,
                    grammar=written,
                    forced_continue=continues,
                    cut_in=cut_in,
                )
                drafts.append(current)
            assert current is not None
            current.grammar = _add(current.grammar, written)  # only a one-shot paragraph gets here with some set
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
        trailing = [d for s in waiting for d in s.directives]
        if _fits(last.grammar, trailing) or not last.grammar:
            last.grammar = _add(last.grammar, trailing)
        last.fade_out |= any(s.fade_out for s in waiting)
        last.loop |= any(s.loop for s in waiting)
        last.sentences += waiting
    return drafts


def _sequence_shots(draft: _Draft, story: Story) -> list[_Draft]:
    """A shot whose text tells events in sequence, as an evolving shot or several (rule 12).

    Events of one subject at one place, at most MAX_EVENTS_PER_SHOT of them, make one shot
    whose prompt changes at each next event (timed changes, spread evenly, each event on
    screen at least EVENT_SECONDS). A change of place, or another named character taking
    over, cuts to a new shot; so does an event past MAX_EVENTS_PER_SHOT (that shot continues
    the one before). A shot with a written length or timed changes is left as written.
    """
    if draft.changes or draft.length is not None:
        return [draft]
    narrated = [s for s in draft.sentences if s.is_narration]
    events = split_events([s.text for s in narrated])
    if not events:
        return [draft]
    # 1. every event as a sentence of its own, its subject put back where the story left it out
    names = [character.name for character in story.characters]
    subject, texts = "", []
    for event in events:
        subject = subject_of(event.text, names) or subject
        texts.append(event_sentence(event, subject))
    # 2. events into shots: a new place, a new named character or one event too many starts one
    groups: list[list[int]] = []
    sequels: list[bool] = []  # per group: it only goes on with the same events (one too many)
    place, who = "", ""
    for n, event in enumerate(events):
        named = characters_in(event.text, names)
        event_place, event_who = place_of(event.text), (named[0] if named and not event.opens_with_verb else "")
        new_place = bool(event_place) and bool(place) and event_place != place
        new_who = bool(event_who) and bool(who) and event_who != who
        if not groups or new_place or new_who or len(groups[-1]) >= MAX_EVENTS_PER_SHOT:
            groups.append([])
            sequels.append(bool(groups[:-1]) and not (new_place or new_who))
            if new_place or new_who:
                place, who = "", ""
        groups[-1].append(n)
        place, who = place or event_place, who or event_who
    if len(groups) == 1:
        draft.opening = [texts[0]]
        step = _event_seconds(draft.narration, len(events))
        draft.changes = [_Change(at=step * m, sentences=[Sentence(e.text, texts[m])]) for m, e in enumerate(events) if m]
        return [draft]
    # 3. each group a draft; an event that starts another shot mid-sentence is narrated as its own sentence
    drafts: list[_Draft] = []
    for g, group in enumerate(groups):
        whole = {events[n].sentence for n in group}
        split_sentence = {i for i in whole if any(e.sentence == i for m, e in enumerate(events) if m not in group)}
        sentences: list[Sentence] = []
        for n in group:
            i = events[n].sentence
            if i in split_sentence:
                sentences.append(Sentence(events[n].text, texts[n]))
            elif not sentences or sentences[-1] is not narrated[i]:
                sentences.append(narrated[i])
        first, last = g == 0, g == len(groups) - 1
        before = [s for s in draft.sentences[: draft.sentences.index(narrated[0])]] if first else []
        after = [s for s in draft.sentences[draft.sentences.index(narrated[-1]) + 1 :]] if last else []
        part = _Draft(
            beat=draft.beat,
            sentences=before + sentences + after,
            first_in_paragraph=draft.first_in_paragraph if first else False,
            opens_scene=draft.opens_scene if first else False,
            heading=draft.heading if first else "",
            time_skip=draft.time_skip if first else False,
            grammar=list(draft.grammar),
            forced_continue=draft.forced_continue if first else False,
            sequel=sequels[g],
            cut_in=draft.cut_in if first else not sequels[g],
            fade_out=draft.fade_out if last else False,
            loop=draft.loop if last else False,
        )
        part.opening = [texts[group[0]]]
        if len(group) > 1:
            step = _event_seconds(part.narration, len(group))
            part.changes = [
                _Change(at=step * m, sentences=[Sentence(events[n].text, texts[n])]) for m, n in enumerate(group[1:], 1)
            ]
        drafts.append(part)
    return drafts


def _event_seconds(narration: str, events: int) -> float:
    """How far apart the events of an evolving shot are: the narration spread over them, at least
    EVENT_SECONDS each, in half seconds."""
    return max(EVENT_SECONDS, math.ceil(reading_seconds(narration) / events * 2) / 2)


def _describe_shots(drafts: list[_Draft], story: Story) -> list[Shot]:
    names = [character.name for character in story.characters]
    continues = [_continues(k, drafts) for k in range(len(drafts))]
    state = SceneState()
    shots: list[Shot] = []
    camera: CameraMove | None = None
    big_place = ""  # the large place the story is at (a harbour, a forest...), for establishing shots
    characters: list[str] = []
    mood: str | None = None
    for k, draft in enumerate(drafts):
        text = draft.narration  # a timed change is narrated too, where the story tells it
        seen_first = " ".join(draft.opening) if draft.opening else text  # what is seen from 0 s
        # 1. the shot grammar: written, else inferred; a scene's first shot (of several) and a
        #    shot at a new large place establish it
        here = big_place_of(f"{draft.heading} {seen_first}")
        establishing = not continues[k] and (
            (draft.opens_scene and len(drafts) > 1) or (bool(here) and here != big_place)
        )
        big_place = here or ("" if draft.opens_scene else big_place)
        grammar = infer_grammar(
            draft.grammar, text, seen_first, establishing, camera, _rng(story.seed, "camera", k, text)
        )
        camera = grammar.moves[0]
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
                action=action_of(draft.opening or draft.lines, characters),
                setting=setting,
                framing=grammar.framing,
                angle=grammar.angle,
                camera=camera,
                more_moves=grammar.moves[1:],
                effects=grammar.effects,
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
    if draft.sequel:
        return not drafts[k - 1].fade_out
    split_from_same_paragraph = not draft.first_in_paragraph
    return split_from_same_paragraph and not draft.grammar and not draft.cut_in and not drafts[k - 1].fade_out


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
