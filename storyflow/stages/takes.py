"""Takes: several tries at one shot (--candidates N), each scored, one played, all kept.

Hosted and open models alike give a different clip for another seed, and some tries are
plainly better than others: sharper, steadier, better joined to the shot before. A take is
the shot's whole chain of segments made from its own seed (storyflow.stages.generate.
take_seed: take 0 keeps the shot's seed, so one candidate is the film as ever). Every take is
recorded in the catalog (clips.take); the film plays the one the scorer rates best, or the one
a person picked (`storyflow pick FILM SHOT TAKE`), which no scorer overrides.

A scorer is any callable `(shot, takes, previous) -> [TakeScore, ...]`, one per take, higher
is better; `previous` is the chain a continuing shot starts from (None after a cut). Built in:

- "measures" (the default) needs no model. Read from a small grey copy of each take:
  sharpness (variance of the Laplacian: detail, not mush), motion (the median change
  between frames: alive, not frozen), flicker (jumps of overall brightness from frame to
  frame) and, for a continuing shot, continuity (how far its first frame is from the last
  frame it continues). Each is divided by its largest value among the takes, and
      score = sharpness + 0.5 * motion - flicker - continuity
- "first" always plays take 0 (the takes are made and kept, to pick among by hand).

Your own: `--scorer package.module:function` (importable where the run runs).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING

from storyflow import media
from storyflow.core.errors import InputError
from storyflow.core.models import Clip, ClipChain, Shot, ShotPrompt, ShotTakes, Storyboard, TakeScore
from storyflow.stages.generate import Budget, generate_chain

if TYPE_CHECKING:
    import numpy as np

    from storyflow.backends.base import VideoBackend
    from storyflow.catalog import Generations

Scorer = Callable[[Shot, Sequence[ClipChain], ClipChain | None], Sequence[TakeScore]]

# How the "measures" scorer weighs what it reads (each measure divided by its largest among the takes).
WEIGHTS = {"sharpness": 1.0, "motion": 0.5, "flicker": -1.0, "continuity": -1.0}
PROBE_WIDTH = 96  # pixels: the grey copy the measures are read from
PROBE_FRAMES = 48  # frames read per take, spread over its length


def make_takes(
    shot: Shot,
    prompt: ShotPrompt,
    board: Storyboard,
    backend: VideoBackend,
    out_dir: Path,
    door: Generations | None = None,
    previous: ClipChain | None = None,
    *,
    candidates: int = 1,
    scorer: str = "measures",
    picked: int | None = None,
    finish: Callable[[Path, str], None] | None = None,
    budget: Budget | None = None,
    reuse_only: bool = False,
    guard: Callable[[], AbstractContextManager[object]] | None = None,
    run_segment: Callable[[str, Callable[[], Clip]], Clip] | None = None,
) -> ShotTakes:
    """Make (or reuse) `candidates` takes of one shot and choose the one the film plays: `picked`, a
    person's choice, when given (that take is made too if it is past `candidates`), else the scorer's.
    `reuse_only`: make nothing; a clip the catalog does not hold is an InputError (`storyflow pick`);
    `guard` is held around each call to the backend, and `run_segment` makes each new segment
    (storyflow.stages.generate.generate_chain)."""
    # 1. every take, each its own chain of segments from its own seed
    count = max(candidates, (picked or 0) + 1)
    takes = tuple(generate_chain(shot, prompt, board, backend, out_dir, door, previous, finish=finish,
                                 budget=budget, take=take, reuse_only=reuse_only, guard=guard,
                                 run_segment=run_segment)
                  for take in range(count))  # fmt: skip
    if count == 1:
        return ShotTakes(shot_id=shot.id, takes=takes, prompt=prompt)

    # 2. score them, and play the best (or the person's pick)
    scores = tuple(load_scorer(scorer)(shot, takes, previous if shot.continues_previous else None))
    if [score.take for score in scores] != list(range(count)):
        raise InputError(f"the scorer '{scorer}' answered for takes {[score.take for score in scores]}, "
                         f"not for each of the {count} takes in order",
                         fix="return one TakeScore per take, in take order (see storyflow.stages.takes)")  # fmt: skip
    best = max(range(count), key=lambda take: (scores[take].score, -take))
    chosen, picked_by = (picked, "person") if picked is not None else (best, "scorer")
    return ShotTakes(shot_id=shot.id, takes=takes, chosen=chosen, picked_by=picked_by, scorer=scorer, scores=scores,
                     prompt=prompt)  # fmt: skip


def load_scorer(name: str) -> Scorer:
    """A scorer by name: "measures", "first", or "package.module:function"; InputError naming the fix."""
    if name in BUILT_IN:
        return BUILT_IN[name]
    module_name, _, attribute = name.partition(":")
    if not module_name or not attribute:
        raise InputError(f"--scorer {name}: no such scorer",
                         fix=f"use one of {', '.join(BUILT_IN)}, or your own as package.module:function")  # fmt: skip
    try:
        found = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise InputError(f"--scorer {name}: cannot load it ({exc})",
                         fix="check the module is importable here (PYTHONPATH) and defines that function") from None  # fmt: skip
    if not callable(found):
        raise InputError(f"--scorer {name} is not a function", fix="name a callable: package.module:function")
    return found


# ---------------------------------------------------------------- built-in scorers


def first_take(shot: Shot, takes: Sequence[ClipChain], previous: ClipChain | None) -> list[TakeScore]:
    """Always play take 0."""
    return [TakeScore(take=take, score=1.0 if take == 0 else 0.0) for take in range(len(takes))]


def measured(shot: Shot, takes: Sequence[ClipChain], previous: ClipChain | None) -> list[TakeScore]:
    """Sharpness, motion, flicker and continuity, each relative to the best of the takes (see the module doc)."""
    before = _grey(media.last_frames(previous.last.path, 1)[0]) if previous is not None else None
    raw = [take_measures(chain, before) for chain in takes]
    largest = {name: max(measures[name] for measures in raw) for name in raw[0]}
    scores = []
    for take, measures in enumerate(raw):
        score = sum(WEIGHTS[name] * (value / largest[name] if largest[name] > 0 else 0.0)
                    for name, value in measures.items())  # fmt: skip
        scores.append(TakeScore(take=take, score=round(score, 4), measures={k: round(v, 4) for k, v in measures.items()}))
    return scores


def take_measures(chain: ClipChain, before: np.ndarray | None = None) -> dict[str, float]:
    """One take's measures, read from a small grey copy of its frames (`before`: the frame it continues)."""
    import numpy as np

    frames = np.stack(list(_probe(chain)))
    laplacian = (frames[:, 1:-1, 1:-1] * 4 - frames[:, :-2, 1:-1] - frames[:, 2:, 1:-1]
                 - frames[:, 1:-1, :-2] - frames[:, 1:-1, 2:])  # fmt: skip
    steps = np.abs(np.diff(frames, axis=0)).mean(axis=(1, 2)) if len(frames) > 1 else np.zeros(1)
    brightness = frames.mean(axis=(1, 2))
    flicker = np.abs(np.diff(brightness, n=2)).mean() if len(frames) > 2 else 0.0
    measures = {"sharpness": float(laplacian.var(axis=(1, 2)).mean()), "motion": float(np.median(steps)),
                "flicker": float(flicker)}  # fmt: skip
    if before is not None:
        measures["continuity"] = float(np.abs(frames[0] - before).mean())
    return measures


def _probe(chain: ClipChain):
    """Up to PROBE_FRAMES grey frames spread evenly over the take, each PROBE_WIDTH pixels wide."""
    total = chain.num_frames
    every = max(1, total // PROBE_FRAMES)
    for clip in chain.clips:
        for index, frame in enumerate(media.read_frames(clip.path)):
            if index % every == 0:
                yield _grey(frame)


def _grey(frame: np.ndarray) -> np.ndarray:
    import numpy as np

    stride = max(1, frame.shape[1] // PROBE_WIDTH)
    return frame[::stride, ::stride].astype(np.float32).mean(axis=2)


BUILT_IN: dict[str, Scorer] = {"measures": measured, "first": first_take}
