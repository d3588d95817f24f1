"""ShotPrompt -> ClipChain: make (or reuse) every segment of one shot through a video backend.

Each segment is looked up by its cache key first; only a miss calls the backend. The
frames a segment is conditioned on are always decoded from its parent's file, so a
chain built from cached parents is the same as one built fresh.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from storyflow import media, progress
from storyflow.backends.base import GeneratedVideo, VideoBackend
from storyflow.cache import GenerationStore, cache_key, derive_seed
from storyflow.errors import GenerationError
from storyflow.extend import SegmentPlan, plan_segments
from storyflow.models import Clip, ClipChain, ClipRequest, Shot, ShotPrompt, Storyboard

if TYPE_CHECKING:
    from collections.abc import Iterator

    import numpy as np


def generate_chain(
    shot: Shot,
    prompt: ShotPrompt,
    board: Storyboard,
    backend: VideoBackend,
    out_dir: Path,
    store: GenerationStore,
    previous: ClipChain | None = None,
) -> ClipChain:
    """Make one shot's clips in order; a continuing shot starts from `previous`'s last frame."""
    # 1. plan the chain from the shot's length and what the backend can do
    caps = backend.capabilities
    continuing = shot.continues_previous and previous is not None
    plans = plan_segments(shot.frames(board.fps), board.fps, caps, continues_previous=continuing)
    seed = derive_seed(board.seed, prompt.prompt)
    subjects = tuple(board.character(name) for name in shot.characters)

    # 2. make or reuse each segment, each conditioned on the one before
    parent = previous.last if continuing else None
    clips: list[Clip] = []
    for plan in plans:
        context = _context_frames(plan, caps.context_frames)
        cond_parent = parent if context else None
        request = ClipRequest(
            prompt=prompt.prompt,
            negative_prompt=prompt.negative_prompt,
            seed=seed,
            width=board.width,
            height=board.height,
            fps=board.fps,
            num_frames=plan.frames,
            camera=shot.camera,
            subjects=subjects,
            caption=prompt.caption,
            shot_offset_frames=plan.offset,
            shot_total_frames=shot.frames(board.fps),
            strategy=plan.strategy,
        )
        key = clip_cache_key(backend, request, cond_parent.sha256 if cond_parent else None, context)
        clip = store.find_clip(key)
        if clip is not None:
            clip = clip.model_copy(update={"shot_id": shot.id, "segment": plan.index, "reused": True})
        else:
            if cond_parent is not None:
                request = request.model_copy(update={"conditioning": media.last_frames(cond_parent.path, context)})
            clip = _generate_segment(request, plan, shot, backend, out_dir, key, cond_parent, context)
            store.save_clip(clip)
        progress.report(
            "clip", shot=shot.id, segment=plan.index, segments=len(plans),
            strategy=plan.strategy, reused=clip.reused, seconds=clip.seconds, wall_s=clip.wall_s,
        )  # fmt: skip
        clips.append(clip)
        parent = clip
    return ClipChain(shot_id=shot.id, clips=tuple(clips))


def clip_cache_key(
    backend: VideoBackend, request: ClipRequest, parent_sha256: str | None, context: int
) -> str:
    """Everything that determines a segment's pixels, and nothing else."""
    return cache_key(
        "clip",
        backend=backend.name,
        model=backend.model,
        options=backend.options_dict(),
        request=request.model_dump(mode="json", exclude={"conditioning"}),
        conditioning={"parent_sha256": parent_sha256, "last_frames": context} if parent_sha256 else None,
    )


def _context_frames(plan: SegmentPlan, continuation_context: int) -> int:
    """How many of the parent's last frames a segment reads."""
    if plan.strategy == "continue_video":
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
) -> Clip:
    """Call the backend once and encode exactly `plan.frames` new frames to the segment's file."""
    started = time.perf_counter()
    result = backend.generate(request)
    path = out_dir / "clips" / shot.id / f"{plan.index:02d}-{key[:12]}.mp4"
    with media.VideoWriter(path, request.width, request.height, request.fps) as out:
        for frame in _new_frames(result, request):
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
        wall_s=time.perf_counter() - started,
    )


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
