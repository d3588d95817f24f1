"""ShotPrompt -> ClipChain: make (or reuse) every segment of one shot through a video backend.

Each segment is looked up by its cache key first; only a miss calls the backend. The
frames a segment is conditioned on are always decoded from its parent's file, so a
chain built from cached parents is the same as one built fresh. Every new segment that
continues another is scored at its seam and guarded against colour drift (seams.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from storyflow import media
from storyflow.backends.base import GeneratedVideo, VideoBackend
from storyflow.catalog.door import GenerationStore
from storyflow.core import progress
from storyflow.core.errors import GenerationError
from storyflow.core.hashing import cache_key, derive_seed
from storyflow.core.models import (
    Clip,
    ClipChain,
    ClipRequest,
    Shot,
    ShotPrompt,
    Storyboard,
)
from storyflow.stages import seams
from storyflow.stages.extend import SegmentPlan, plan_segments

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger("storyflow.stages.generate")

# New frames measured against the parent's last frames to detect drift at a seam.
DRIFT_PROBE_FRAMES = 2


def generate_chain(
    shot: Shot,
    prompt: ShotPrompt,
    board: Storyboard,
    backend: VideoBackend,
    out_dir: Path,
    store: GenerationStore,
    previous: ClipChain | None = None,
    *,
    force: bool = False,
    finish: Callable[[Path], None] | None = None,
) -> ClipChain:
    """Make one shot's clips in order; a continuing shot starts from `previous`'s last frame.

    `force` makes every segment again even where an earlier one is on file. `finish` is
    called on each new clip file before it is hashed and recorded (to sign it, say).
    """
    # 1. plan the chain from the shot's length, its prompt changes and what the backend can do
    caps = backend.capabilities
    fps = board.fps
    continuing = shot.continues_previous and previous is not None
    plans = plan_segments(
        shot.frames(fps), fps, caps, continues_previous=continuing,
        change_frames=[round(change.at * fps) for change in shot.prompt_changes], loop=shot.loop,
    )  # fmt: skip
    # A continuing shot keeps its chain's seed: the same world, seen on from the same moment.
    seed = previous.last.seed if continuing else derive_seed(board.seed, prompt.prompt)
    subjects = tuple(board.character(name) for name in shot.characters)

    # 2. make or reuse each segment, each conditioned on the one before
    parent = previous.last if continuing else None
    clips: list[Clip] = []
    for plan in plans:
        context = _context_frames(plan, caps.context_frames)
        cond_parent = parent if context else None
        end_parent = clips[0] if plan.strategy == "loop_close" else None
        request = ClipRequest(
            prompt=prompt.prompt_at(plan.offset / fps),
            negative_prompt=prompt.negative_prompt,
            seed=seed,
            width=board.width,
            height=board.height,
            fps=fps,
            num_frames=plan.frames,
            camera=shot.camera,
            subjects=subjects,
            caption=prompt.caption,
            shot_offset_frames=plan.offset,
            shot_total_frames=shot.frames(fps),
            strategy=plan.strategy,
        )
        key = clip_cache_key(
            backend, request,
            parent_sha256=cond_parent.sha256 if cond_parent else None, context=context,
            end_parent_sha256=end_parent.sha256 if end_parent else None, end_context=caps.context_frames,
        )  # fmt: skip
        clip = None if force else store.find_clip(key)
        if clip is not None:
            clip = clip.model_copy(update={"shot_id": shot.id, "segment": plan.index, "reused": True})
        else:
            clip = _generate_segment(
                request, plan, shot, backend, out_dir, key, cond_parent, context, end_parent, caps.context_frames,
                finish,
            )
            store.save_clip(clip)
        _report(shot, plan, len(plans), clip)
        clips.append(clip)
        parent = clip
    return ClipChain(shot_id=shot.id, clips=tuple(clips))


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
        backend=backend.name,
        model=backend.model,
        options=backend.options_dict(),
        request=request.model_dump(mode="json", exclude={"conditioning", "end_conditioning"}),
        conditioning={"parent_sha256": parent_sha256, "last_frames": context} if parent_sha256 else None,
        end_conditioning=(
            {"parent_sha256": end_parent_sha256, "first_frames": end_context} if end_parent_sha256 else None
        ),
    )


def _context_frames(plan: SegmentPlan, continuation_context: int) -> int:
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
    finish: Callable[[Path], None] | None = None,
) -> Clip:
    """Call the backend once and encode exactly `plan.frames` new frames to the segment's file."""
    # 1. the frames it is conditioned on, decoded from the parents' files
    parent_tail = media.last_frames(parent.path, max(context, DRIFT_PROBE_FRAMES)) if parent else None
    updates = {}
    if parent_tail is not None:
        updates["conditioning"] = parent_tail[-context:]
    if end_parent is not None:
        updates["end_conditioning"] = media.first_frames(end_parent.path, max(1, end_context))
    request = request.model_copy(update=updates)

    # 2. generate, guard against drift at the seam, encode
    started = time.perf_counter()
    result = backend.generate(request)
    frames = _new_frames(result, request)
    correction = None
    if parent is not None and _drift_guarded(plan, request, parent):
        frames, correction = _guard_drift(frames, parent_tail[-DRIFT_PROBE_FRAMES:])
    path = out_dir / "clips" / shot.id / f"{plan.index:02d}-{key[:12]}.mp4"
    with media.VideoWriter(path, request.width, request.height, request.fps) as out:
        for frame in frames:
            if out.frames_written == plan.frames:
                raise GenerationError(
                    f"{backend.name} returned more than the {plan.frames} frames asked for shot {shot.id}",
                    fix="this is a backend bug; pick another backend with --video-backend",
                )
            out.write(frame)
        if out.frames_written != plan.frames:
            raise GenerationError(
                f"{backend.name} returned {out.frames_written} frames for shot {shot.id}, expected {plan.frames}",
                fix="this is a backend bug; pick another backend with --video-backend",
            )
    if finish is not None:
        finish(path)
    wall = time.perf_counter() - started

    # 3. how visible its seams are, measured on the files as they will be played
    seam = seams.score_files(parent.path, path, request.fps) if parent else None
    end_seam = seams.score_files(path, end_parent.path, request.fps) if end_parent else None
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
        sha256=media.sha256_file(path),
        cache_key=key,
        num_frames=plan.frames,
        fps=request.fps,
        width=request.width,
        height=request.height,
        strategy=plan.strategy,
        backend=backend.label,
        model=backend.model,
        seed=request.seed,
        options=backend.options_dict(),
        prompt=request.prompt,
        parent_sha256=parent.sha256 if parent else None,
        conditioning=f"last {context} frame{'s' if context > 1 else ''}" if parent else "",
        end_parent_sha256=end_parent.sha256 if end_parent else None,
        seam=seam,
        end_seam=end_seam,
        drift=correction.describe() if correction else "",
        wall_s=wall,
    )


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


def _new_frames(result: GeneratedVideo, request: ClipRequest) -> Iterator[np.ndarray]:
    """The backend's frames at the requested size, without the conditioning it echoed back."""
    if result.frames is not None:
        frames = iter(result.frames)
    elif result.path is not None:
        frames = media.read_frames(Path(result.path))
    else:
        raise GenerationError("the backend returned neither frames nor a file", fix="pick another backend")
    for index, frame in enumerate(frames):
        if index < result.context_frames:
            continue
        if frame.shape[:2] != (request.height, request.width):
            frame = media.fit_frame(frame, request.width, request.height)
        yield frame
