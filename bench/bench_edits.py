"""What a one-word edit costs: how many other shots change length (and so are generated again).

For every sample story with a target `duration`, one word is added to each paragraph in
turn; the story is planned and its narration spoken and fitted (the real espeak voice),
and the shots outside the edited paragraph whose length changed are counted: each of
those is a chain of clips made again. Two fitting rules, side by side:
- storyflow's: on target within 2%, one scale factor from a fixed grid (storyflow.core.durations);
- the obvious alternative: every shot scaled so the film lands on its target to the frame.

Usage: python -m bench edits
"""

from __future__ import annotations

import logging
import re
import tempfile
from pathlib import Path
from statistics import mean

from bench.common import print_table, save_results, timer

REPO = Path(__file__).resolve().parent.parent
EDIT_WORD = "there"  # neutral: no camera, mood, weather or time word


def _edits(text: str) -> list[tuple[int, str]]:
    """(paragraph number, story) for one word added to each paragraph's first sentence of 4+ words.

    Four words or more: a directive ("Arc shot.") with a word added would be narration.
    """
    head, sep, body = text.partition("\n---\n")
    paragraphs = body.split("\n\n")
    out = []
    for i, paragraph in enumerate(paragraphs):
        sentence = next((m for m in re.finditer(r"[^.!?]+[.!?]", paragraph) if len(m.group().split()) >= 4), None)
        if paragraph.lstrip().startswith("#") or sentence is None:
            continue
        end = sentence.end() - 1
        edited = paragraphs.copy()
        edited[i] = f"{paragraph[:end]} {EDIT_WORD}{paragraph[end:]}"
        out.append((i, head + sep + "\n\n".join(edited)))
    return out


def _fitted_frames(text: str, folder: Path, store, llm, voice) -> tuple[list[tuple[str, int]], float]:
    """Each shot's (story text, frames) and the film's seconds, after planning and narration."""
    from storyflow.core.timeline import film_timeline
    from storyflow.stages import narrate
    from storyflow.stages.plan import plan_storyboard
    from storyflow.stages.story import read_story

    path = folder / "story.md"
    path.write_text(text)
    board, _ = narrate.narrate(plan_storyboard(read_story(path), llm), voice, folder, store)
    return [(shot.story_text, shot.frames(board.fps)) for shot in board.shots], film_timeline(board).seconds


def main() -> None:
    from storyflow.backends.registry import load_backend
    from storyflow.core import durations
    from storyflow.stages.story import read_story

    logging.getLogger("storyflow").setLevel(logging.ERROR)  # edits that tip a film past its target warn; expected
    from storyflow.catalog import Generations

    # one in-memory door for the whole benchmark: each distinct line is spoken once
    llm, voice, store = load_backend("llm", "embedded"), load_backend("speech", "espeak"), Generations.in_memory()
    rules = {"storyflow: within 2%, grid factor": durations.TARGET_TOLERANCE, "exact: to the frame": 0.0}
    rows = []
    with tempfile.TemporaryDirectory() as tmp, timer() as took:
        for story_path in sorted((REPO / "stories").glob("*.md")):
            story = read_story(story_path)
            if not story.duration:
                continue
            text = story_path.read_text()
            for rule, tolerance in rules.items():
                durations.TARGET_TOLERANCE = tolerance
                try:
                    before, _ = _fitted_frames(text, Path(tmp), store, llm, voice)
                    others, errors = [], []
                    for _, edited in _edits(text):
                        after, seconds = _fitted_frames(edited, Path(tmp), store, llm, voice)
                        errors.append(abs(seconds - story.duration))
                        if len(after) != len(before):
                            others.append(len(after))  # the shot list itself changed: count it all
                            continue
                        edited_shots = {i for i, (a, b) in enumerate(zip(before, after)) if a[0] != b[0]}
                        others.append(sum(a[1] != b[1] for i, (a, b) in enumerate(zip(before, after))
                                          if i not in edited_shots))  # fmt: skip
                finally:
                    durations.TARGET_TOLERANCE = rules["storyflow: within 2%, grid factor"]
                rows.append({
                    "story": story_path.stem, "shots": len(before), "rule": rule, "edits": len(others),
                    "other shots re-timed, mean": mean(others), "max": max(others),
                    "edits re-timing no other shot": sum(n == 0 for n in others),
                    "film off target, mean s": mean(errors),
                })  # fmt: skip
    print_table("a one-word edit per paragraph: other shots whose length (and clips) change", rows)
    print(f"({took['s']:.1f} s, narration spoken by espeak-ng and cached across edits)")
    print(f"saved {save_results('edits', rows)}")


if __name__ == "__main__":
    main()
