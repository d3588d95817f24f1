"""What a film will cost before anything is paid, and a run that stops asking once its budget is spent.

`estimate(board, backend, door, prompts)` walks every shot's chain as the generate stage will
make it (storyflow.stages.generate.segment_requests: the segments of storyflow.stages.extend,
each request snapped to the backend's rules by storyflow.stages.conform) and prices each
segment the catalog does not hold yet:

    seconds billed = the frames conform asks the backend for / its rate
                     (Veo bills 8 s for an 8 s clip even when 5 s are kept)
    usd            = seconds billed x VideoCapabilities.cost_per_second

Clips the catalog holds are reused for free, so a rerun of an unchanged story costs 0. A
segment conditioned on its parent's file has a cache key that holds the parent's sha256,
unknown until the parent is made: it is counted as new unless every clip it hangs from is
already in the catalog. An estimate may be high, never low: where a backend's clips come in
fixed lengths (a hosted API), a continuation and a loop's closing clip are counted at its
longest clip, as some make those features at full length only (Veo extends by 7 s and
interpolates at 8 s, whatever the segment keeps). A segment that cannot be asked for (conform
refuses it, or the shot cannot be planned) fails before its call and costs nothing.

`Budget` is the run's purse, shared by every generate task: before each paid
call `reserve` (or `reserve_segment`) raises BudgetExceeded when what was spent and what is
reserved for clips being made, plus the next clip, would pass the budget; `settle` books what
the clip really cost. A call that failed keeps its reservation for the rest of the run: the
provider may have billed it. The money is counted in a `Purse`: in this process's memory, or
on the run's catalog row (RunPurse), where the tasks of a run spread over several processes or
machines share it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from storyflow.backends.base import VideoBackend, VideoCapabilities
from storyflow.catalog import CLIP, Generations
from storyflow.core.errors import BudgetExceeded, GenerationError, InputError
from storyflow.core.hashing import derive_seed
from storyflow.core.models import ClipRequest, ShotPrompt, Storyboard
from storyflow.stages.conform import conform
from storyflow.stages.generate import clip_cache_key, frames_read_from_parent, segment_requests, take_seed

log = logging.getLogger("storyflow.stages.budget")

# Strategies some fixed-length backends make at their longest clip only (native extension, interpolation).
FULL_LENGTH_STRATEGIES = ("continue_video", "loop_close")
_EPSILON = 1e-4  # a hundredth of a cent: what rounding each clip's price may add up to


@dataclass(frozen=True)
class ShotCost:
    """One shot's share of the estimate: the segments to make, the seconds billed for them, their price."""

    shot_id: str
    segments: int
    seconds: float
    usd: float


@dataclass(frozen=True)
class Estimate:
    """What making a storyboard's clips through one backend would cost, clips the catalog holds excluded."""

    backend: str
    price_per_second: float  # USD per second of video the backend makes
    shots: tuple[ShotCost, ...]
    reused: int  # segments the catalog holds: free
    total_usd: float

    @property
    def segments(self) -> int:
        """New clips (segments) to pay for."""
        return sum(shot.segments for shot in self.shots)

    @property
    def seconds(self) -> float:
        """Seconds of video the backend would bill."""
        return round(sum(shot.seconds for shot in self.shots), 3)

    def describe(self) -> str:
        """'about $4.80 (2 new clips, 12 s billed by veo at $0.40/s)'."""
        clips = f"{self.segments} new clip{'' if self.segments == 1 else 's'}"
        return (f"about {usd(self.total_usd)} ({clips}, {self.seconds:g} s billed by {self.backend} at "
                f"{usd(self.price_per_second)}/s)")  # fmt: skip


def estimate(
    board: Storyboard,
    backend: VideoBackend,
    door: Generations | None = None,
    prompts: Mapping[str, ShotPrompt] | None = None,
    candidates: int = 1,
) -> Estimate:
    """The cost of the clips `board` still needs from `backend`: every segment `door`'s catalog does
    not hold, priced at the seconds the backend makes for it, for each of a shot's `candidates`
    takes. Without `prompts` (not written yet) nothing can be looked up and every segment counts as new."""
    caps = backend.capabilities
    price = caps.cost_per_second
    door = door or Generations.in_memory()
    # the last clip of each shot, as the next shot in its chain starts from it: its sha256 when
    # the catalog holds it, None when it is still to be made (or when the scorer will choose among
    # several takes: which one is not known yet); a shot that cannot be made is absent
    ends: dict[str, str | None] = {}
    seeds: dict[str, int] = {}
    shots: list[ShotCost] = []
    reused = 0
    for position, shot in enumerate(board.shots):
        prompt = (prompts or {}).get(shot.id) or ShotPrompt(shot_id=shot.id, prompt=shot.action)
        before = board.shots[position - 1].id if shot.continues_previous and position > 0 else None
        if before is not None and before not in ends:
            shots.append(ShotCost(shot.id, 0, 0.0, 0.0))  # it continues a shot that fails: it fails too
            continue
        continuing = before is not None
        seeds[shot.id] = seed = seeds[before] if continuing else derive_seed(board.seed, prompt.prompt)
        try:
            segments = [segment_requests(shot, prompt, board, caps, continuing=continuing, seed=take_seed(seed, take))
                        for take in range(candidates)]  # fmt: skip
        except GenerationError:
            shots.append(ShotCost(shot.id, 0, 0.0, 0.0))  # it fails before any call
            continue
        lookups = prompts is not None and shot.id in prompts and not door.forced(shot.id)
        made, seconds, cost, failed, end = 0, 0.0, 0.0, False, None
        for take, requests in enumerate(segments):
            parent: str | None = ends[before] if continuing else None  # sha256 of the clip a segment continues
            first: str | None = None
            for plan, request in requests:
                context = frames_read_from_parent(plan, caps.context_frames)
                loop_end = plan.strategy == "loop_close"
                known = lookups and (not context or parent is not None) and (not loop_end or first is not None)
                found = None
                if known:
                    key = clip_cache_key(backend, request, parent_sha256=parent if context else None,
                                         context=context, end_parent_sha256=first if loop_end else None,
                                         end_context=caps.context_frames)  # fmt: skip
                    found = door.store.lookup(CLIP, key)
                if found is not None:
                    reused += 1
                    sha256 = found[1].sha256
                else:
                    billed = billed_seconds(caps, request, backend.name)
                    if billed is None:
                        failed = True  # conform refuses it: the shot fails here, before its call
                        break
                    made, seconds, cost = made + 1, seconds + billed, cost + billed * price
                    sha256 = None
                if plan.index == 0:
                    first = sha256
                parent = sha256
            if failed:
                break
            end = parent if candidates == 1 else None
        shots.append(ShotCost(shot.id, made, round(seconds, 3), round(cost, 6)))
        if not failed:
            ends[shot.id] = end
    total = round(sum(shot.usd for shot in shots), 4)
    return Estimate(backend.name, price, tuple(shots), reused, total)


def billed_seconds(caps: VideoCapabilities, request: ClipRequest, backend: str) -> float | None:
    """The seconds `backend` makes (and bills) for `request`, at most; None when conform refuses it
    (it is never sent)."""
    try:
        fit = conform(request, caps, backend)
    except GenerationError:
        return None
    seconds = fit.frames / fit.fps
    if caps.durations and request.strategy in FULL_LENGTH_STRATEGIES:
        seconds = max(seconds, max(caps.durations))
    return seconds


def segment_cost(backend: VideoBackend, request: ClipRequest) -> float:
    """What asking `backend` for `request` is expected to cost, in USD (0 for a local backend)."""
    caps = backend.capabilities
    if not caps.cost_per_second:
        return 0.0
    return round((billed_seconds(caps, request, backend.name) or 0.0) * caps.cost_per_second, 6)


def check(plan: Estimate, budget_usd: float | None) -> None:
    """InputError (exit code 2) when the plan would cost more than the budget: nothing is asked for."""
    if budget_usd is None or plan.total_usd <= budget_usd + _EPSILON:
        return
    raise InputError(
        f"the plan would cost {plan.describe()}; the budget is {usd(budget_usd)}",
        fix=f"raise --budget to at least {usd(plan.total_usd)}, or lower the film's length/size (clips already "
        "made are reused for free)",
    )


class Purse(Protocol):
    """Where a run's money is counted: in this process (MemoryPurse), or on the run's catalog row, shared
    by every process that makes its clips (storyflow.catalog.Store.purse_*)."""

    def reserve(self, usd_: float, limit_usd: float | None) -> tuple[float, float] | None: ...
    def settle(self, reserved: float, cost_usd: float) -> None: ...
    def state(self) -> tuple[float, float]: ...


class MemoryPurse:
    """A purse in this process, shared by its threads."""

    def __init__(self) -> None:
        self._spent = 0.0
        self._reserved = 0.0
        self._lock = threading.Lock()

    def reserve(self, usd_: float, limit_usd: float | None) -> tuple[float, float] | None:
        """Set `usd_` aside unless it would pass `limit_usd`: None, else (spent, set aside) as they stand."""
        with self._lock:
            if limit_usd is not None and self._spent + self._reserved + usd_ > limit_usd:
                return self._spent, self._reserved
            self._reserved += usd_
            return None

    def settle(self, reserved: float, cost_usd: float) -> None:
        with self._lock:
            self._reserved = max(0.0, self._reserved - reserved)
            self._spent += cost_usd

    def state(self) -> tuple[float, float]:
        with self._lock:
            return self._spent, self._reserved


class RunPurse:
    """The purse on a run's catalog row: a budget that holds across processes and machines."""

    def __init__(self, store: Any, run_id: int) -> None:
        self.store, self.run_id = store, run_id

    def reserve(self, usd_: float, limit_usd: float | None) -> tuple[float, float] | None:
        return self.store.purse_reserve(self.run_id, usd_, limit_usd)

    def settle(self, reserved: float, cost_usd: float) -> None:
        self.store.purse_settle(self.run_id, reserved, cost_usd)

    def state(self) -> tuple[float, float]:
        return self.store.purse(self.run_id)


class Budget:
    """The run's purse: no paid call is made that would take it past `limit_usd` (None: no limit)."""

    def __init__(self, limit_usd: float | None = None, purse: Purse | None = None) -> None:
        if limit_usd is not None and limit_usd < 0:
            raise InputError(f"a budget of {limit_usd} USD is negative", fix="give --budget 0 or more")
        self.limit_usd = limit_usd
        self.purse = purse or MemoryPurse()

    @property
    def spent_usd(self) -> float:
        """What the clips made so far cost."""
        return round(self.purse.state()[0], 6)

    @property
    def reserved_usd(self) -> float:
        """What is set aside for clips being made now (and for calls that failed: they may have been billed)."""
        return round(self.purse.state()[1], 6)

    def reserve(self, usd_: float) -> float:
        """Set `usd_` aside for the next paid call; BudgetExceeded (nothing set aside) when it would pass the budget."""
        limit = self.limit_usd + _EPSILON if self.limit_usd is not None else None
        refused = self.purse.reserve(usd_, limit)
        if refused is not None:
            spent, reserved = refused
            being_made = f" and {usd(reserved)} set aside for clips being made" if reserved else ""
            raise BudgetExceeded(
                f"the budget of {usd(self.limit_usd or 0)} is spent: {usd(spent)} spent so far{being_made}; "
                f"the next clip would cost {usd(usd_)}",
                fix="raise --budget, or lower the film's length/size; what was made is kept and reused for free",
            )
        return usd_

    def reserve_segment(self, backend: VideoBackend, request: ClipRequest) -> float:
        """Reserve what asking `backend` for `request` is expected to cost; a free call reserves nothing."""
        cost = segment_cost(backend, request)
        return self.reserve(cost) if cost > 0 else 0.0

    def settle(self, reserved: float, cost_usd: float | None) -> None:
        """A clip is made: its reservation becomes what it really cost (the reservation, when it does not say)."""
        self.purse.settle(reserved, reserved if cost_usd is None else cost_usd)


def usd(amount: float) -> str:
    """$4.80, or $0.0125 where cents would hide it."""
    return f"${amount:.2f}" if round(amount, 2) == round(amount, 6) else f"${amount:.4f}".rstrip("0")
