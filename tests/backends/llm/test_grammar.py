"""The shot grammar of the embedded planner and rewriter: framing, angle, moves and effects,
written or inferred, events told in sequence, and prompts written in the video model's shape."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from storyflow.backends.base import LLMTask, PromptShape
from storyflow.backends.llm.embedded import EmbeddedLLM, plan_story
from storyflow.core.models import (
    CameraAngle,
    CameraMove,
    Character,
    ClipRequest,
    Framing,
    LensEffect,
    PromptAnswer,
    Story,
    Storyboard,
)
from storyflow.core.templates import PromptFolder
from storyflow.core.vocabulary import CAMERA_PHRASES, CHANGE_HOLD_SECONDS

SEEDS = Path(__file__).resolve().parents[2] / "data" / "videopoet_prompts.txt"
CHARACTERS = (
    Character(name="Mara", description="a tall woman in a red raincoat with a grey braid"),
    Character(name="Tom", description="a stocky fisherman in a blue cap"),
)


def plan(body: str, seed: int = 0) -> Storyboard:
    return plan_story(Story(title="Test", slug="test", text=body, seed=seed, characters=CHARACTERS))


def only_shot(body: str):
    board = plan(body)
    assert len(board.shots) == 1, [s.narration for s in board.shots]
    return board.shots[0]


def shot_with(board: Storyboard, words: str):
    found = [shot for shot in board.shots if words in shot.narration]
    assert len(found) == 1, f"{words!r} is in {len(found)} shots"
    return found[0]


# ---------------------------------------------------------------- written directives


WRITTEN = [
    ("Extreme wide shot.", "framing", Framing.EXTREME_WIDE),
    ("Wide shot.", "framing", Framing.WIDE),
    ("Establishing shot.", "framing", Framing.WIDE),
    ("Full shot.", "framing", Framing.MEDIUM_WIDE),
    ("Medium wide shot.", "framing", Framing.MEDIUM_WIDE),
    ("Medium shot.", "framing", Framing.MEDIUM),
    ("Medium close-up.", "framing", Framing.MEDIUM_CLOSE_UP),
    ("MCU.", "framing", Framing.MEDIUM_CLOSE_UP),
    ("Close-up.", "framing", Framing.CLOSE_UP),
    ("Close up.", "framing", Framing.CLOSE_UP),
    ("Closeup.", "framing", Framing.CLOSE_UP),
    ("CU.", "framing", Framing.CLOSE_UP),
    ("Extreme close-up.", "framing", Framing.EXTREME_CLOSE_UP),
    ("ECU.", "framing", Framing.EXTREME_CLOSE_UP),
    ("Eye level.", "angle", CameraAngle.EYE_LEVEL),
    ("Low angle.", "angle", CameraAngle.LOW),
    ("Low-angle shot.", "angle", CameraAngle.LOW),
    ("High angle.", "angle", CameraAngle.HIGH),
    ("Overhead shot.", "angle", CameraAngle.OVERHEAD),
    ("Bird's-eye view.", "angle", CameraAngle.OVERHEAD),
    ("Dutch angle.", "angle", CameraAngle.DUTCH),
    ("Tilt shift.", "effects", (LensEffect.TILT_SHIFT,)),
    ("Slow motion.", "effects", (LensEffect.SLOW_MOTION,)),
    ("Slo-mo.", "effects", (LensEffect.SLOW_MOTION,)),
    ("Time-lapse.", "effects", (LensEffect.TIME_LAPSE,)),
    ("Timelapse.", "effects", (LensEffect.TIME_LAPSE,)),
    ("Rack focus.", "effects", (LensEffect.RACK_FOCUS,)),
]


@pytest.mark.parametrize(("written", "field", "value"), WRITTEN)
def test_every_framing_angle_and_effect_can_be_written(written, field, value):
    board = plan(f"The harbour wakes up slowly.\n\n{written} Tom mends a net on the quay.\n")
    shot = shot_with(board, "Tom mends a net on the quay.")
    assert getattr(shot, field) == value
    assert shot.narration == "Tom mends a net on the quay."  # a directive-only sentence is not narrated


def test_every_framing_angle_and_effect_is_covered():
    covered = {value for _, field, value in WRITTEN if field != "effects"}
    covered |= {effect for _, field, value in WRITTEN if field == "effects" for effect in value}
    assert covered == set(Framing) | set(CameraAngle) | set(LensEffect)


def test_several_directives_in_one_shot_are_all_kept_in_order():
    board = plan("The harbour wakes up slowly.\n\nClose-up, low angle, slow motion. Arc shot then zoom in. Mara lifts the lantern.\n")
    shot = shot_with(board, "Mara lifts the lantern.")
    assert (shot.framing, shot.angle) == (Framing.CLOSE_UP, CameraAngle.LOW)
    assert (shot.camera, shot.more_moves) == (CameraMove.ARC_SHOT, (CameraMove.ZOOM_IN,))
    assert shot.effects == (LensEffect.SLOW_MOTION,) and shot.camera_from_text
    assert shot.directives == ("close-up", "low angle", "arc shot", "zoom in", "slow motion")
    assert shot.narration == "Mara lifts the lantern."


def test_directives_inside_a_prompt_line_are_all_kept_and_the_line_stays():
    shot = only_shot("A family of raccoons living in a small cabin, tilt shift, arc shot, slow motion.")
    assert shot.camera is CameraMove.ARC_SHOT and shot.effects == (LensEffect.TILT_SHIFT, LensEffect.SLOW_MOTION)
    assert "raccoons" in shot.narration
    assert "tilt shift" not in shot.action and "arc shot" not in shot.action


def test_a_close_up_of_something_is_read_and_the_sentence_stays_narration():
    board = plan("The harbour wakes up slowly.\n\nA close-up of her hands as Mara ties the knot.\n")
    shot = shot_with(board, "A close-up of her hands")
    assert shot.framing is Framing.CLOSE_UP
    assert shot.narration == "A close-up of her hands as Mara ties the knot."
    assert "close-up" not in shot.action.lower() and "hands" in shot.action


def test_a_directive_closing_a_paragraph_joins_its_shot_if_it_has_none_of_its_kind():
    board = plan("The harbour wakes up slowly.\n\nClose-up. Tom counts the coins. Slow motion.\n")
    shot = shot_with(board, "Tom counts the coins.")
    assert shot.framing is Framing.CLOSE_UP and shot.effects == (LensEffect.SLOW_MOTION,)


# Ordinary prose: none of these writes a directive, and each stays narration.
PROSE = [
    "Tom walks close to the water.",
    "The river is wide and slow.",
    "The sun is low over the hills.",
    "The flowers close up at night.",
    "Mara moves slowly along the wall.",
    "It was a long shot, but Tom tried.",
    "The lamp overhead flickers.",
    "Ms. Lee waits by the door.",
    "A voice calls from below.",
    "Tom stands at the wide window.",
    "Mara shifts the tilt of her hat.",
    "The tide turns and the focus of the town is the harbour.",
]


@pytest.mark.parametrize("sentence", PROSE)
def test_ordinary_prose_writes_no_directive(sentence):
    board = plan(f"The harbour wakes up slowly.\n\n{sentence}\n")
    shot = shot_with(board, sentence)
    assert not shot.camera_from_text and not shot.continues_previous
    assert shot.narration == sentence
    # nothing written: the angle and effects come only from the inference rules, and these imply none
    assert shot.effects == () and shot.angle in (None, CameraAngle.LOW)


# ---------------------------------------------------------------- inferred grammar


INFERRED = [
    ("Mara whispers his name, tears in her eyes.", "framing", Framing.EXTREME_CLOSE_UP),
    ("Tom holds the brass key up to the light.", "framing", Framing.CLOSE_UP),
    ("Mara reads a letter by the window.", "framing", Framing.CLOSE_UP),
    ("Tom eats his soup in silence.", "framing", Framing.MEDIUM_CLOSE_UP),
    ("The wolves chase the deer across the frozen lake.", "camera", CameraMove.TRACKING_SHOT),
    ("The wolves chase the deer across the frozen lake.", "framing", Framing.WIDE),  # a new place: established
    ("Tom runs along the quay.", "framing", Framing.MEDIUM_WIDE),
    ("A gull soars over the rooftops.", "camera", CameraMove.FPV_DRONE),
    ("The giant statue looms over the square.", "angle", CameraAngle.LOW),
    ("Far below lies a tiny village.", "angle", CameraAngle.HIGH),
    ("Seen from above, the boats form a circle.", "angle", CameraAngle.OVERHEAD),
    ("Tom, dizzy, leans on the rail.", "angle", CameraAngle.DUTCH),
    ("A feather slowly drifts to the floor.", "effects", (LensEffect.SLOW_MOTION,)),
    ("Over the hours the tide rolls out.", "effects", (LensEffect.TIME_LAPSE,)),
    ("The toy-like houses shine in the sun.", "effects", (LensEffect.TILT_SHIFT,)),
    ("Mara dances on the pier.", "camera", CameraMove.ARC_SHOT),
]


@pytest.mark.parametrize(("sentence", "field", "value"), INFERRED)
def test_inferred_grammar_fits_the_words(sentence, field, value):
    board = plan(f"The harbour wakes up slowly.\n\n{sentence}\n")
    shot = shot_with(board, sentence)
    assert getattr(shot, field) == value
    assert not shot.camera_from_text


def test_effects_and_angles_are_conservative_and_every_shot_has_a_framing():
    board = plan(
        "The harbour wakes up slowly.\n\nTom ties the rope.\n\nMara counts the boats.\n\n"
        "The kettle hums.\n\nTom folds a map.\n\nA pumpkin explodes.\n"
    )
    assert all(shot.framing is not None for shot in board.shots)
    assert all(shot.effects == () for shot in board.shots)
    assert sum(shot.angle is not None for shot in board.shots) == 0


def test_a_scene_opens_with_an_establishing_wide_and_a_new_place_gets_one_too():
    board = plan(
        "# Dawn\n\nThe boats rest in the harbour.\n\nTom ties the rope.\n\nMara walks into the forest.\n"
    )
    first, middle, forest = board.shots
    establishing = (CameraMove.CRANE_SHOT, CameraMove.PAN_LEFT, CameraMove.PAN_RIGHT)
    assert first.framing in (Framing.WIDE, Framing.EXTREME_WIDE) and first.camera in establishing
    assert middle.framing not in (Framing.WIDE, Framing.EXTREME_WIDE)
    assert forest.framing in (Framing.WIDE, Framing.EXTREME_WIDE)


def videopoet_prompts() -> list[str]:
    """The one-line prompts of the VideoPoet page (from the seed text, kept in tests/data)."""
    lines = SEEDS.read_text(encoding="utf-8").splitlines()
    return [line for line in lines if line.strip() and not line.startswith("#")]


def test_one_line_prompts_get_varied_fitting_cameras():
    prompts = videopoet_prompts()
    assert len(prompts) >= 40
    shots = {p: plan(p).shots[0] for p in prompts}
    inferred = [shot for shot in shots.values() if not shot.camera_from_text]
    moves = Counter(shot.camera for shot in inferred)
    framings = Counter(shot.framing for shot in shots.values())
    # 1. varied: no single move for more than a third of them, no framing for more than half
    assert max(moves.values()) <= len(inferred) / 3, moves
    assert len(moves) >= 6 and max(framings.values()) <= len(shots) / 2, framings
    # 2. fitting, where the words say what fits
    assert shots["An astronaut riding a galloping horse."].camera is CameraMove.TRACKING_SHOT
    assert shots["Flying through a nebula with many twinkling stars."].camera is CameraMove.FPV_DRONE
    assert shots["A woman yawning."].framing is Framing.CLOSE_UP
    assert shots["A raccoon dancing in Times Square."].camera is CameraMove.ARC_SHOT
    assert shots["A magical snow-covered forest of dense pine trees."].framing in (Framing.WIDE, Framing.EXTREME_WIDE)
    assert shots["A massive explosion on the surface of the earth."].framing is Framing.EXTREME_WIDE
    assert shots["A pumpkin exploding, slow motion."].effects == (LensEffect.SLOW_MOTION,)
    assert shots["A tree walking through the forest, tilt shift."].effects == (LensEffect.TILT_SHIFT,)
    assert shots["A lion with a mane made out of yellow dandelion petals roars."].angle is CameraAngle.LOW
    # 3. written directives are kept
    assert shots["A family of raccoons living in a small cabin, tilt shift, arc shot."].camera is CameraMove.ARC_SHOT
    assert shots["Closeup of an adorable rusty broken-down steampunk robot covered in moss moist and budding "
                 "vegetation, surrounded by tall grass."].framing is Framing.CLOSE_UP  # fmt: skip


def test_inferred_grammar_is_deterministic_for_a_story_and_seed():
    body = "\n\n".join(videopoet_prompts()[:12])
    assert plan(body, seed=3) == plan(body, seed=3)


# ---------------------------------------------------------------- events in sequence


def test_events_of_one_subject_in_one_place_make_one_evolving_shot():
    shot = only_shot("A man walks into the room, sits down, and then picks up a book.")
    assert shot.action == "A man walks into the room."  # what is seen from the start
    assert [change.text for change in shot.prompt_changes] == ["The man sits down.", "The man picks up a book."]
    times = [change.at for change in shot.prompt_changes]
    assert times[0] >= 2.0 and times[1] - times[0] == times[0]  # evenly spread, each event at least ~2 s
    assert shot.duration >= times[-1] + CHANGE_HOLD_SECONDS
    assert shot.narration == "A man walks into the room, sits down, and then picks up a book."


def test_sentences_in_sequence_make_one_evolving_shot():
    shot = only_shot("The dog runs to the door. Then it barks. Finally it lies down.")
    assert shot.action == "The dog runs to the door."
    assert [change.text for change in shot.prompt_changes] == ["The dog barks.", "The dog lies down."]
    assert shot.duration >= shot.prompt_changes[-1].at + CHANGE_HOLD_SECONDS


def test_a_change_of_place_cuts_a_sequence_into_several_shots():
    board = plan("Tom leaves the cottage, walks to the harbour and then rows out to sea.")
    assert [shot.action for shot in board.shots] == [
        "Tom leaves the cottage.", "Tom walks to the harbour.", "Tom rows out to sea.",
    ]
    assert not any(shot.prompt_changes for shot in board.shots)
    assert not any(shot.continues_previous for shot in board.shots)  # a new place is a cut, not a continuation
    assert all(shot.characters == ("Tom",) for shot in board.shots)


def test_more_events_than_one_shot_holds_continue_in_a_next_shot():
    board = plan("The dog runs to the door. Then it barks. Then it scratches the wood. Then it whines. Finally it lies down.")
    first, second = board.shots
    assert len(first.prompt_changes) == 2 and len(second.prompt_changes) == 1
    assert second.continues_previous and second.action == "The dog whines."


def test_sentences_without_a_sequence_word_are_not_events():
    shot = only_shot("Tom unties the rope. The engine coughs twice.")
    assert shot.prompt_changes == ()


def test_written_timing_markers_win_over_the_sequence_rule():
    shot = only_shot("A man walks in, sits down, and then reads. [at 5s] The lamp goes out.")
    assert [(c.at, c.text) for c in shot.prompt_changes] == [(5.0, "The lamp goes out.")]


# ---------------------------------------------------------------- the rewriter


def rewrite(body: str, shape: PromptShape | None = None):
    board = plan(body)
    task = LLMTask(instructions="", answer=PromptAnswer, templates=PromptFolder(), shape=shape)
    return board, [EmbeddedLLM().rewrite(shot, board, task) for shot in board.shots]


def test_the_prompt_phrases_every_directive_of_the_shot():
    board, prompts = rewrite("Close-up, low angle, slow motion, rack focus. Arc shot then zoom in. Mara lifts the lantern.")
    shot, prompt = board.shots[0], prompts[0]
    assert len(shot.directives) == 6
    for value in shot.directives:
        assert value in prompt.prompt
    for directive in (shot.framing, shot.angle, *shot.moves, *shot.effects):
        assert CAMERA_PHRASES[directive] in prompt.prompt
    assert f"Mara: {board.character('Mara').description}" in prompt.prompt
    assert "\n" not in prompt.prompt


def test_every_grammar_member_has_a_phrase_that_starts_with_its_value():
    for member in (*Framing, *CameraAngle, *CameraMove, *LensEffect):
        assert CAMERA_PHRASES[member].startswith(member.value)


def test_the_prompt_follows_the_shapes_order_and_keeps_every_part():
    body = "Low angle. Mara climbs the stairs of the lighthouse at dusk."
    board, prompts = rewrite(body, PromptShape(order=("camera", "composition", "action", "style")))
    shot, text = board.shots[0], prompts[0].prompt
    camera, composition = text.index(CAMERA_PHRASES[shot.camera]), text.index(CAMERA_PHRASES[shot.framing])
    action, style = text.index(shot.action), text.index(board.style.style)
    assert camera < composition < action < style
    # the parts the order leaves out still come, after it: the character bible word for word above all
    subject = text.index(f"Mara: {board.character('Mara').description}")
    assert subject > style and shot.setting in text and shot.mood in text
    _, default = rewrite(body)
    assert default[0].prompt.index("Mara: ") < default[0].prompt.index(shot.action)  # subject leads by default


def test_no_negative_prompt_when_the_shape_takes_none():
    _, with_negative = rewrite("Tom rows.", PromptShape())
    _, without = rewrite("Tom rows.", PromptShape(negative_prompt=False))
    assert with_negative[0].negative_prompt and without[0].negative_prompt == ""
    assert without[0].prompt == with_negative[0].prompt


def test_the_shapes_template_is_rendered(tmp_path):
    folder = tmp_path / "prompts"
    folder.mkdir()
    for name in ("negative_prompt.j2", "caption.j2"):
        (folder / name).write_text((PromptFolder().path / name).read_text(encoding="utf-8"), encoding="utf-8")
    (folder / "short.j2").write_text("{{ directives | join(', ') }} | {{ order | join(' ') }}\n", encoding="utf-8")
    board = plan("Close-up. Tom rows.")
    task = LLMTask(instructions="", answer=PromptAnswer, templates=PromptFolder(folder),
                   shape=PromptShape(template="short.j2", order=("action", "camera")))  # fmt: skip
    prompt = EmbeddedLLM().rewrite(board.shots[0], board, task)
    assert prompt.template == "short.j2"
    assert prompt.prompt.startswith(CAMERA_PHRASES[Framing.CLOSE_UP]) and prompt.prompt.endswith("| action camera")


def test_an_evolving_shot_from_events_gets_a_prompt_per_event():
    board, prompts = rewrite("The dog runs to the door. Then it barks. Finally it lies down.")
    prompt = prompts[0]
    assert [c.at for c in prompt.changes] == [c.at for c in board.shots[0].prompt_changes]
    assert "The dog barks." in prompt.prompt_at(prompt.changes[0].at) and "The dog barks." not in prompt.prompt


# ---------------------------------------------------------------- the animatic draws the effect


def test_the_animatic_draws_the_tilt_shift_effect_like_the_legacy_camera_value():
    from storyflow.backends.video.animatic import AnimaticBackend

    backend = AnimaticBackend(AnimaticBackend.Options(caption=False, labels=False, camera_tag=False))
    common = dict(prompt="a village on a hill at noon, a harbour with boats", seed=1, width=160, height=96, fps=12,
                  num_frames=1)  # fmt: skip

    def frame(**fields) -> np.ndarray:
        return next(iter(backend.generate(ClipRequest(**common, **fields)).frames)).astype(np.float32)

    def sharpness(image: np.ndarray) -> float:  # of the bottom band: out of focus in the miniature look
        band = image[int(image.shape[0] * 0.9) :]
        return float(np.abs(np.diff(band, axis=1)).mean() + np.abs(np.diff(band, axis=0)).mean())

    plain = sharpness(frame(camera=CameraMove.STATIC))
    assert sharpness(frame(camera=CameraMove.STATIC, effects=(LensEffect.TILT_SHIFT,))) < plain / 2
    assert sharpness(frame(camera=CameraMove.TILT_SHIFT)) < plain / 2  # storyboards written before LensEffect
