"""One shot's takes made, wherever that happens: in the film run's task, or on a Prefect work pool.

`make_shot` is the body of the film's generate task: the shot's takes made through the
catalog's door with this process's backends, signed, within the run's budget and the limits
shared with other runs, a prompt refused by a safety filter rephrased once. With a shot pool (`storyflow film --shot-pool gpus`, STORYFLOW_SHOT_POOL), a film's generate
task does not make its shot: it starts a run of the deployment storyflow-shot/<pool> and
waits for it (the UI shows it under the task run, as a subflow named <shot>-of-<film>). A
worker polling the pool (`storyflow serve --pool gpus`, one per GPU machine) takes it and
makes the shot's takes with its own backends, through a catalog every machine shares
(STORYFLOW_CATALOG_URL: PostgreSQL) and, where the machines do not share a disk, object
storage (STORYFLOW_STORAGE_URL). Then the generate task reads the takes back from the catalog
(making nothing: a file this machine lacks is fetched and its sha256 checked), and the film
is stitched here. Shots that continue one another go one after the other; the others go to
whichever worker is free. The run's budget and the providers' limits hold across the workers
(the purse on the run's row, Prefect's global concurrency limits).

The deployment names its flow by module path, so a worker needs storyflow installed, not a
copy of the code; it is created (or updated) by the film run that first needs it.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from typing import Any, TypeVar

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NONE

from flows import limits
from flows.pools import deploy_on_pool
from flows.work import Done, FilmRun, Signer
from storyflow.catalog import CLIP, Generations
from storyflow.core.errors import ContentFiltered, GenerationError, InputError
from storyflow.core.models import Shot, ShotPrompt, ShotTakes, Storyboard
from storyflow.core.templates import PromptFolder
from storyflow.stages import rephrase, takes

SHOT_FLOW = "storyflow-shot"
T = TypeVar("T")


def _shot_run_name() -> str:
    from prefect.runtime import flow_run

    shot, run = flow_run.parameters.get("shot") or {}, flow_run.parameters.get("run") or {}
    shot_id = shot.get("id") if isinstance(shot, dict) else getattr(shot, "id", "shot")
    slug = run.get("slug") if isinstance(run, dict) else getattr(run, "slug", "film")
    return f"{shot_id}-of-{slug}"


@flow(name=SHOT_FLOW, flow_run_name=_shot_run_name, log_prints=False)
def shot_flow(shot: Shot, prompt: ShotPrompt, board: Storyboard, run: FilmRun, previous: ShotTakes | None = None,
              picked: int | None = None) -> dict[str, Any]:  # fmt: skip
    """Make one shot's takes for a film run, on whichever worker took it, into the shared catalog."""
    with run.door() as door:
        before = here(previous, door) if previous is not None else None
        made = make_shot(shot, prompt, board, run, door, before, picked)
        generated = sum(not clip.reused for take in made.takes for clip in take.clips)
        # which worker took it: the worker process starts one process per run it takes
        get_run_logger().info("%s of %s: %d clip(s) made in %s by the worker process %d", shot.id, run.slug,
                              generated, door.store.home_name, os.getppid())  # fmt: skip
    return {"shot": shot.id, "clips_generated": generated, "home": door.store.home_name, "worker_pid": os.getppid()}


def make_shot(shot: Shot, prompt: ShotPrompt, board: Storyboard, run: FilmRun, door: Generations,
              previous: ShotTakes | None, picked: int | None) -> ShotTakes:  # fmt: skip
    """One shot's takes, made through `door` with this process's backends (the body of the generate task)."""
    choices, settings = run.choices, run.settings()
    video = run.backend("video")
    finish = Signer(settings).clip(board.title, shot.id) if choices.sign_clips else None
    shared = () if run.reuse_only else video.shared_limits()
    held = limits.guard(shared) if shared else None
    spending, out_dir = run.budget(door), run.out_dir()
    llm, prompts = run.backend("llm"), PromptFolder.of(settings.prompts_dir)

    def make(prompt: ShotPrompt) -> ShotTakes:
        return takes.make_takes(shot, prompt, board, video, out_dir, door, previous.chain if previous else None,
                                candidates=choices.candidates, scorer=choices.scorer, picked=picked, finish=finish,
                                budget=spending, reuse_only=run.reuse_only, guard=held,
                                run_segment=None if run.reuse_only else segment_task_run)  # fmt: skip

    if not prompt.origin:  # refused before: its rephrasing, not the refused prompt again
        prompt = rephrase.earlier_rephrasing(shot, board, prompt, llm, door, prompts,
                                             video.prompt_shape) or prompt  # fmt: skip
    try:
        made = make(prompt)
    except ContentFiltered as refusal:
        if prompt.origin:
            raise
        rephrased = rephrase.rephrase_after_filter(shot, board, prompt, refusal, llm, door, prompts,
                                                   video.prompt_shape)  # fmt: skip
        get_run_logger().warning("%s: the provider's safety filter refused its prompt (%s); trying once more with "
                                 "it rephrased", shot.id, "; ".join(refusal.reasons) or refusal.message)  # fmt: skip
        try:
            made = make(rephrased)
        except ContentFiltered as again:
            raise ContentFiltered(f"{again.message} (the prompt was rephrased once after the first refusal: "
                                  f"{'; '.join(refusal.reasons) or refusal.message})", again.fix,
                                  reasons=(*refusal.reasons, *again.reasons)) from again  # fmt: skip
    chain = made.chain
    generated = sum(not clip.reused for take in made.takes for clip in take.clips)
    seams = ", ".join(f"{clip.seam.ratio:.2f}" for clip in chain.clips if clip.seam) or "none"
    get_run_logger().info("%s: %d take(s) of %d segment(s), %d clip(s) generated on %s (process %d), playing "
                          "take %d (%s), seam ratios %s", shot.id, len(made.takes), len(chain.clips), generated,
                          socket.gethostname(), os.getpid(), made.chosen, made.picked_by, seams)  # fmt: skip
    return made


def segment_task_run(name: str, make: Callable[[], T]) -> T:
    """Make a segment as a task run of its own (segment-s03-2), under its shot's: the UI shows each one made."""
    return task(make, name="segment", task_run_name=name, cache_policy=NONE)()


def here(made: ShotTakes, door: Generations) -> ShotTakes:
    """A shot's takes with this machine's copy of each clip (the tail of the last one conditions the next
    shot): looked up in the catalog, so a clip made on another machine is fetched from storage."""

    def local(clip):
        found = door.store.find(CLIP, clip.cache_key)
        if found is None:
            raise GenerationError(f"shot {made.shot_id}: clip {clip.cache_key[:12]} is in no storage this machine "
                                  "can see", fix="give every worker the same STORYFLOW_CATALOG_URL and "
                                  "STORYFLOW_STORAGE_URL")  # fmt: skip
        return found

    chains = tuple(chain.model_copy(update={"clips": tuple(local(clip) for clip in chain.clips)})
                   for chain in made.takes)  # fmt: skip
    return made.model_copy(update={"takes": chains})


def made_on_pool(shot: Shot, prompt: ShotPrompt, board: Storyboard, run: FilmRun, previous: ShotTakes | None,
                 picked: int | None) -> Done[ShotTakes]:  # fmt: skip
    """The shot's takes as a worker of the run's shot pool makes them, read back from the catalog. A shot the
    catalog already holds (and that is not to be made again) is read back at once: no worker is asked."""
    if not (run.force or shot.id in run.force_shots):
        try:
            return read_back(shot, prompt, board, run, previous, picked)
        except InputError:  # a clip the catalog does not hold yet
            pass
    run_on_pool(shot, prompt, board, run, previous, picked)
    return read_back(shot, prompt, board, run, previous, picked)


def read_back(shot: Shot, prompt: ShotPrompt, board: Storyboard, run: FilmRun, previous: ShotTakes | None,
              picked: int | None) -> Done[ShotTakes]:  # fmt: skip
    """The shot's takes as the catalog holds them now, making nothing (InputError for a clip it lacks). Never
    forced: what a worker made for this run, --force included, is exactly what is read. A door of its own, so a
    read that finds only part of the shot counts nothing."""
    held = run.model_copy(update={"reuse_only": True, "force": False, "force_shots": ()})
    with held.door() as door:
        made = made_by_workers(make_shot(shot, prompt, board, held, door, previous, picked), door, run.run_id)
        return Done(made, door.receipt())


def run_on_pool(shot: Shot, prompt: ShotPrompt, board: Storyboard, run: FilmRun, previous: ShotTakes | None,
                picked: int | None) -> None:  # fmt: skip
    """Have a worker of the run's shot pool make the shot, and wait for it; GenerationError if it failed."""
    from prefect.deployments import run_deployment

    pool = run.choices.shot_pool
    deploy_on_pool(shot_flow, pool, f"storyflow: one shot of a film, made by a worker of the pool {pool}")
    finished = run_deployment(f"{SHOT_FLOW}/{pool}", timeout=None, as_subflow=True, parameters={
        "shot": shot, "prompt": prompt, "board": board, "run": run, "previous": previous, "picked": picked})  # fmt: skip
    state = finished.state
    if state is None or not state.is_completed():
        why = state.message if state is not None and state.message else "it did not finish"
        raise GenerationError(f"shot {shot.id}: the worker's run {finished.name} ended "
                              f"{state.type.value.lower() if state else 'unknown'}: {why}",
                              fix=f"see that flow run in the Prefect UI; is a worker polling the pool '{pool}' "
                              f"(storyflow serve --pool {pool})?")  # fmt: skip
    get_run_logger().info("%s made by %s", shot.id, finished.name)


def made_by_workers(made: ShotTakes, door: Generations, run_id: int) -> ShotTakes:
    """The takes read back after a worker made them: the clips this run made count as made, not reused."""
    from storyflow.catalog.listing import clips_made_by_run

    keys = [clip.cache_key for take in made.takes for clip in take.clips if clip.reused]
    ours = clips_made_by_run(door.store, run_id, keys) if keys else set()
    if not ours:
        return made
    door.recount(CLIP.name, made=sum(key in ours for key in keys))
    takes = tuple(chain.model_copy(update={"clips": tuple(
        clip.model_copy(update={"reused": False}) if clip.cache_key in ours else clip for clip in chain.clips)})
        for chain in made.takes)  # fmt: skip
    return made.model_copy(update={"takes": takes})
