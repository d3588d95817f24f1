"""ShotPrompt -> ClipChain: make (or reuse) every segment of one shot through a video backend.

Each segment goes through the catalog's door (storyflow.catalog.Generations): reused when
its cache key is recorded and its file intact, else made. Before a segment is made, the
check of storyflow.stages.conform decides what the backend is asked for (the nearest rate,
size and length its rules allow) and every correction is recorded on the clip. The frames
a segment is conditioned on are always decoded from its parent's file, so a chain built
from cached parents is the same as one built fresh. Every new segment that continues
another is scored at its seam and guarded against colour drift (seams.py).
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from storyflow import media
from storyflow.backends.base import GeneratedVideo, PaidJobs, VideoBackend, VideoCapabilities
from storyflow.catalog import CLIP, Generations
from storyflow.core import progress
from storyflow.core.errors import GenerationError, InputError
from storyflow.core.hashing import cache_key, derive_seed
from storyflow.core.models import Clip, ClipChain, ClipRequest, Shot, ShotPrompt, Storyboard
from storyflow.stages import seams
from storyflow.stages.conform import Conform, Conformed, conform, warn_once
from storyflow.stages.extend import SegmentPlan, plan_segments

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger("storyflow.stages.generate")

# New frames measured against the parent's last frames to detect drift at a seam.
DRIFT_PROBE_FRAMES = 2


class Budget(Protocol):
    """The run's purse (storyflow.stages.budget.Budget), asked before each paid call."""

    def reserve_segment(self, backend: VideoBackend, request: ClipRequest) -> float: ...

    def settle(self, reserved: float, cost_usd: float | None) -> None: ...


def generate_chain(
    shot: Shot,
    prompt: ShotPrompt,
    board: Storyboard,
    backend: VideoBackend,
    out_dir: Path,
    door: Generations | None = None,
    previous: ClipChain | None = None,
    *,
    finish: Callable[[Path, str], None] | None = None,
    budget: Budget | None = None,
    take: int = 0,
    reuse_only: bool = False,
    guard: Callable[[], AbstractContextManager[object]] | None = None,
    run_segment: Callable[[str, Callable[[], Clip]], Clip] | None = None,
) -> ClipChain:
    """Make one shot's clips in order; a continuing shot starts from `previous`'s last frame.

    `finish(path, name)` is called on each new clip file before it is hashed and recorded (to sign it, say):
    the file is still under a temporary name, `name` is the one it will have.
    `budget` (storyflow.stages.budget) is asked before each paid call: BudgetExceeded when spent.
    `take` numbers another try at the same shot (storyflow.stages.takes): its own seed, its own clips.
    `reuse_only`: make nothing; a segment the catalog does not hold is an InputError naming it.
    `guard` is held while a segment is made (the flows hold the backend's shared limits there: its GPU
    slot, a provider's jobs in flight and rate); a reused segment asks for nothing, and a segment another
    run made while this one waited for the guard is reused too (storyflow.catalog.Generations).
    `run_segment(name, make)` makes each new segment (the flows make it a task run of its own, named
    "segment-s03-2", so the UI shows every segment generated).
    """
    door = door or Generations.in_memory()
    # 1. plan the chain from the shot's length, its prompt changes and what the backend can do
    caps = backend.capabilities
    continuing = shot.continues_previous and previous is not None
    # A continuing shot keeps its chain's seed: the same world, seen on from the same moment.
    seed = take_seed(previous.last.seed if continuing else derive_seed(board.seed, prompt.prompt), take)

    # 2. make or reuse each segment, each conditioned on the one before
    parent = previous.last if continuing else None
    clips: list[Clip] = []
    plans = segment_requests(shot, prompt, board, caps, continuing=continuing, seed=seed)
    for plan, request in plans:
        context = frames_read_from_parent(plan, caps.context_frames)
        cond_parent = parent if context else None
        end_parent = clips[0] if plan.strategy == "loop_close" else None
        key = clip_cache_key(
            backend, request,
            parent_sha256=cond_parent.sha256 if cond_parent else None, context=context,
            end_parent_sha256=end_parent.sha256 if end_parent else None, end_context=caps.context_frames,
        )  # fmt: skip

        def make(request=request, plan=plan, key=key, cond_parent=cond_parent, context=context,
                 end_parent=end_parent) -> Clip:  # fmt: skip
            if reuse_only:
                raise InputError(
                    f"shot {shot.id}, take {take}, segment {plan.index + 1} is not in the catalog: swapping takes "
                    f"would make it" + (" (it continues the shot before, whose take changed)" if continuing else ""),
                    fix="run `storyflow film STORY` (with the same options) to make it: the pick is recorded and kept",
                )
            jobs = door.jobs(key, backend.name, backend.model_ref, backend.job_lifetime_s) if backend.resumable_jobs \
                else None
            reserved = budget.reserve_segment(backend, request) if budget is not None else 0.0
            clip = _generate_segment(request, plan, shot, backend, out_dir, key, cond_parent, context, end_parent,
                                     caps.context_frames, finish, jobs).model_copy(update={"take": take})  # fmt: skip
            if budget is not None:
                budget.settle(reserved, clip.cost_usd)
            return clip

        if run_segment is not None:
            name = f"segment-{shot.id}-{plan.index + 1}" + (f"-take{take}" if take else "")
            make = functools.partial(run_segment, name, make)
        clip = door.reuse_or_make(CLIP, key, make, shot=shot.id, holding=guard)
        if clip.reused:
            clip = clip.model_copy(update={"shot_id": shot.id, "segment": plan.index, "take": take})
        _report(shot, plan, len(plans), clip)
        clips.append(clip)
        parent = clip
    return ClipChain(shot_id=shot.id, clips=tuple(clips))


def take_seed(seed: int, take: int) -> int:
    """The seed of a shot's take: the shot's own for the first (so --candidates 1 is the film as ever), a
    seed derived from it for each other."""
    return seed if take == 0 else derive_seed(seed, f"take {take}")


def segment_requests(
    shot: Shot, prompt: ShotPrompt, board: Storyboard, caps: VideoCapabilities, *, continuing: bool, seed: int
) -> list[tuple[SegmentPlan, ClipRequest]]:
    """The segments of a shot's chain (its length, prompt changes and what the backend can do) and the
    request each is made from; the budget's estimate reads the same."""
    fps = board.fps
    plans = plan_segments(
        shot.frames(fps), fps, caps, continues_previous=continuing,
        change_frames=[round(change.at * fps) for change in shot.prompt_changes], loop=shot.loop,
    )  # fmt: skip
    subjects = tuple(board.character(name) for name in shot.characters)
    return [(plan, ClipRequest(
        prompt=prompt.prompt_at(plan.offset / fps),
        negative_prompt=prompt.negative_prompt,
        seed=seed,
        width=board.width,
        height=board.height,
        fps=fps,
        num_frames=plan.frames,
        camera=shot.camera,
        effects=shot.effects,
        subjects=subjects,
        caption=prompt.caption,
        shot_offset_frames=plan.offset,
        shot_total_frames=shot.frames(fps),
        strategy=plan.strategy,
    )) for plan in plans]  # fmt: skip


def clip_cache_key(
    backend: VideoBackend,
    request: ClipRequest,
    *,
    parent_sha256: str | None,
    context: int,
    end_parent_sha256: str | None = None,
    end_context: int = 0,
) -> str:
    """Everything that determines a segment's pixels, and nothing else."""
    return cache_key(
        "clip",
        **backend.identity(),
        request=request.model_dump(mode="json", exclude={"conditioning", "end_conditioning"}),
        conditioning={"parent_sha256": parent_sha256, "last_frames": context} if parent_sha256 else None,
        end_conditioning=(
            {"parent_sha256": end_parent_sha256, "first_frames": end_context} if end_parent_sha256 else None
        ),
    )


def frames_read_from_parent(plan: SegmentPlan, continuation_context: int) -> int:
    """How many of the parent's last frames a segment reads."""
    if plan.strategy in ("continue_video", "loop_close"):
        return max(1, continuation_context)
    if plan.strategy in ("image_to_video", "last_frame_i2v"):
        return 1
    return 0


def _generate_segment(
    request: ClipRequest,
    plan: SegmentPlan,
    shot: Shot,
    backend: VideoBackend,
    out_dir: Path,
    key: str,
    parent: Clip | None,
    context: int,
    end_parent: Clip | None,
    end_context: int,
    finish: Callable[[Path, str], None] | None = None,
    jobs: PaidJobs | None = None,
) -> Clip:
    """Call the backend once and encode exactly `plan.frames` new frames to the segment's file.

    A hosted backend gets `jobs`, the catalog's ledger for this clip: it records its paid job
    there before polling, and resumes the job a killed run left in flight."""
    # 1. what the backend is asked for (its rules), and the frames it is conditioned on, from the parents' files
    fit = conform(request, backend.capabilities, backend.name)
    parent_tail = media.last_frames(parent.path, max(context, DRIFT_PROBE_FRAMES)) if parent else None
    asked = _asked(request, fit, parent_tail[-context:] if parent_tail is not None else None,
                   media.first_frames(end_parent.path, max(1, end_context)) if end_parent is not None else None)  # fmt: skip

    # 2. generate, conform to the film, guard against drift at the seam, encode
    started = time.perf_counter()
    result = backend.generate(asked, jobs=jobs) if jobs is not None else backend.generate(asked)
    answer = Conformed(_new_frames(result), fit, request, backend.name)
    frames: Iterator[np.ndarray] = iter(answer)
    correction = None
    if parent is not None and _drift_guarded(plan, request, parent):
        frames, correction = _guard_drift(frames, parent_tail[-DRIFT_PROBE_FRAMES:])
    path = out_dir / "clips" / shot.id / f"{plan.index:02d}-{key[:12]}.mp4"
    # The clip takes its name last, once signed, scored and hashed: a run stopped before the clip is recorded
    # leaves a temporary file (the next run sweeps it), not a finished clip that the catalog does not know.
    with media.atomic_path(path) as made:
        with media.VideoWriter(made, request.width, request.height, request.fps) as out:
            out.write_all(frames)
            answer.check(shot.id)
        if finish is not None:
            finish(made, path.name)
        wall = time.perf_counter() - started
        # 3. how visible its seams are, measured on the files as they will be played
        seam = seams.score_files(parent.path, made, request.fps) if parent else None
        end_seam = seams.score_files(made, end_parent.path, request.fps) if end_parent else None
        sha256 = media.sha256_file(made)

    # 4. what was corrected, said once per run and recorded on the clip
    corrections = (*fit.corrections, *answer.extra)
    for kind, sentence in corrections:
        warn_once(backend.name, kind, sentence)
    for where, score in (("start", seam), ("end", end_seam)):
        if score is not None and score.visible:
            log.warning("shot %s segment %d: visible seam at its %s (jump %.1f, %.1fx the motion around it)",
                        shot.id, plan.index, where, score.jump, score.ratio)  # fmt: skip
    if correction is not None:
        log.warning("shot %s segment %d: %s", shot.id, plan.index, correction.describe())
    return Clip(
        shot_id=shot.id,
        segment=plan.index,
        path=path.resolve(),
        sha256=sha256,
        cache_key=key,
        num_frames=plan.frames,
        fps=request.fps,
        width=request.width,
        height=request.height,
        strategy=plan.strategy,
        backend=backend.label,
        model=backend.model_ref,
        seed=request.seed,
        options=backend.options_dict(),
        prompt=request.prompt,
        parent_sha256=parent.sha256 if parent else None,
        conditioning=f"last {context} frame{'s' if context > 1 else ''}" if parent else "",
        end_parent_sha256=end_parent.sha256 if end_parent else None,
        seam=seam,
        end_seam=end_seam,
        drift=correction.describe() if correction else "",
        corrections=tuple(sentence for _, sentence in corrections),
        cost_usd=_cost(backend, fit, result),
        wall_s=wall,
    )


def _asked(request: ClipRequest, fit: Conform, conditioning: np.ndarray | None, end: np.ndarray | None) -> ClipRequest:
    """The request as the backend can make it: its rate, size and frame count, conditioning frames at its size."""

    def sized(frames: np.ndarray | None) -> np.ndarray | None:
        import numpy as np

        if frames is None or frames.shape[1:3] == (fit.height, fit.width):
            return frames
        return np.stack([media.fit_frame(frame, fit.width, fit.height) for frame in frames])

    scale = fit.fps / request.fps
    return request.model_copy(update={
        "fps": fit.fps, "width": fit.width, "height": fit.height, "num_frames": fit.frames,
        "shot_offset_frames": round(request.shot_offset_frames * scale),
        "shot_total_frames": round(request.shot_total_frames * scale),
        "conditioning": sized(conditioning), "end_conditioning": sized(end),
    })  # fmt: skip


def _cost(backend: VideoBackend, fit: Conform, result: GeneratedVideo) -> float | None:
    """What the clip cost: what the backend says it charged, else its price per second for what it made."""
    if "cost_usd" in result.metadata:
        return float(result.metadata["cost_usd"])
    price = backend.capabilities.cost_per_second
    return round(price * fit.frames / fit.fps, 6) if price else None


def _drift_guarded(plan: SegmentPlan, request: ClipRequest, parent: Clip) -> bool:
    """Guard a plain continuation only: same prompt as its parent, nothing asked to change.

    A new prompt at the seam (an evolving shot, a continuing shot) may rightly change the
    picture's colour; a loop's closing clip is anchored at both ends, and one correction
    from its head would pull its tail away from the frame it must lead back into.
    """
    return plan.strategy in ("continue_video", "last_frame_i2v") and request.prompt == parent.prompt


def _guard_drift(
    frames: Iterator[np.ndarray], reference: np.ndarray
) -> tuple[Iterator[np.ndarray], seams.ColourMatch | None]:
    """Compare the first new frames with the parent's last ones; correct every frame if drifted."""
    import itertools

    import numpy as np

    head = list(itertools.islice(frames, DRIFT_PROBE_FRAMES))
    if not head:
        return iter(()), None
    correction = seams.drift_correction(reference, np.stack(head))
    rest = itertools.chain(head, frames)
    if correction is None:
        return rest, None
    return (correction.apply(frame) for frame in rest), correction


def _report(shot: Shot, plan: SegmentPlan, segments: int, clip: Clip) -> None:
    progress.report(
        "clip", shot=shot.id, segment=plan.index, segments=segments, strategy=plan.strategy,
        reused=clip.reused, seconds=clip.seconds, wall_s=clip.wall_s,
        seam=clip.seam.ratio if clip.seam else None, drift=bool(clip.drift),
    )  # fmt: skip


def _new_frames(result: GeneratedVideo) -> Iterator[np.ndarray]:
    """The backend's frames, without the conditioning it echoed back (conform fits their size)."""
    if result.frames is not None:
        frames = iter(result.frames)
    elif result.path is not None:
        frames = media.read_frames(Path(result.path))
    else:
        raise GenerationError("the backend returned neither frames nor a file", fix="pick another backend")
    for index, frame in enumerate(frames):
        if index >= result.context_frames:
            yield frame
