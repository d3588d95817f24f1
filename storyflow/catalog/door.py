"""The door every generation goes through: reuse what the catalog holds, or make it and record it.

    door = Generations(catalog, run_id=run_id, force_shots={"s03"})
    clip = door.reuse_or_make(CLIP, key, make_the_clip, shot="s03")

Every arrow of the data path (storyboard, prompt, clip segment, narration line, music,
effects, mix, film) takes the same steps, written once, here:

1. unless forced, look the key up: the newest generation whose files are all intact,
   each checked against its recorded sha256 (storyflow.catalog.store) -> reuse it;
2. else make it: the maker writes its files atomically and hashes what it wrote;
3. record it, pointing at the rows it belongs to: the run, and the rows named with
   `point_at` (the storyboard, the shots) or recorded through this door for the same shot
   (a clip points at its shot's prompt). A generation made before those rows exist
   (narration is spoken before the storyboard it fits is recorded) waits here and is
   recorded the moment they are. A reused storyboard or prompt is recorded too: it is
   addressed by its content, so that only links it to this run's story and shots.

`--force` (everything) and `--force-shot` (one shot's clips) are decided in `forced()`, and
nowhere else. The door tallies, per kind, what it made and what it reused.

A task in another process (a Dask worker, a worker on another machine) works through a door
of its own on the same catalog: `pointers()` hands it the rows to point at, as plain ids, and
its `receipt()` (what it made, reused and recorded) is `absorb`ed back into the run's door.

Without a catalog (`Generations.in_memory()`: stage tests, `storyflow plan`) the same door
remembers what it made for as long as it lives, with the same file checks.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from storyflow.catalog.kinds import item_paths
from storyflow.catalog.ledger import duration_words, expired_detail, job_detail
from storyflow.media import sha256_file

if TYPE_CHECKING:
    from pathlib import Path

    from storyflow.catalog.kinds import Kind
    from storyflow.catalog.store import Store

T = TypeVar("T")
log = logging.getLogger("storyflow.catalog")


class Generations:
    """One run's door to the catalog: reuse or make, record, tally."""

    def __init__(
        self,
        store: Store | MemoryStore,
        *,
        run_id: int | None = None,
        force: bool = False,
        force_shots: Collection[str] = (),
    ) -> None:
        self.store = store
        self.force = force  # trust no earlier result: every lookup misses
        self.force_shots = frozenset(force_shots)  # make these shots' clips again
        self.refs: dict[str, Any] = {"run": run_id}  # the rows generations point at (see point_at)
        self.tally: dict[str, dict[str, int]] = {}  # {"clip": {"made": 2, "reused": 7}, ...}
        self._rows: dict[tuple[str, str], int] = {}  # (kind, key) -> row
        self._by_shot: dict[str, dict[str, int]] = {}  # kind -> shot id -> this run's row for that shot
        self._waiting: list[tuple[Kind, Any, dict[str, Any]]] = []
        self._lock = threading.Lock()  # stages call in from several worker threads
        self._opened = time.time()

    @classmethod
    def in_memory(cls, *, force: bool = False) -> Generations:
        """A door with no catalog behind it: it remembers what it made while it lives."""
        return cls(MemoryStore(), force=force)

    # ------------------------------------------------------------ the one operation

    def reuse_or_make(
        self,
        kind: Kind[T],
        key: str,
        make: Callable[[], T],
        *,
        shot: str | None = None,
        facts: Mapping[str, Any] | None = None,
        links: Mapping[str, Sequence[str]] | None = None,
        tally: str | None = "",
        holding: Callable[[], AbstractContextManager[object]] | None = None,
    ) -> T:
        """The generation under `key`: reused when it is recorded and intact, else made and recorded.

        `shot` names the shot a clip belongs to (for --force-shot); `facts` and `links` go to the
        record (see Store.record); `tally` is what the run's tally counts it as ("": the kind's
        name; None: not counted). `holding` is held while it is made (a limit shared with other
        runs): once it is held, the catalog is asked again, as another run may have made the very
        same generation while this one waited.
        """
        found = self.reuse(kind, key, shot=shot, tally=tally, facts=facts)
        if found is not None:
            return found
        if holding is None:
            return self._make(kind, key, make, facts=facts, links=links, tally=tally)
        with holding():
            found = self.reuse(kind, key, shot=shot, tally=tally, facts=facts)
            return found if found is not None else self._make(kind, key, make, facts=facts, links=links, tally=tally)

    def _make(self, kind: Kind[T], key: str, make: Callable[[], T], *, facts: Mapping[str, Any] | None,
              links: Mapping[str, Sequence[str]] | None, tally: str | None) -> T:  # fmt: skip
        started, since = time.perf_counter(), time.time()
        item = make()
        facts = {"wall_s": time.perf_counter() - started, **(facts or {})}
        try:
            return self.keep(kind, item, key=key, facts=facts, links=links, tally=tally)
        except BaseException:  # not recorded (a full disk, a lost database): what make() wrote goes, so no file lacks its row
            self.store.discard_unrecorded(item_paths(kind, item), since=since)
            raise

    def forced(self, shot: str | None = None) -> bool:
        """Whether an earlier generation may not be reused: --force, or --force-shot of this shot."""
        return self.force or (shot is not None and shot in self.force_shots)

    def reuse(
        self,
        kind: Kind[T],
        key: str,
        *,
        shot: str | None = None,
        tally: str | None = "",
        facts: Mapping[str, Any] | None = None,
        for_shot: str | None = None,
    ) -> T | None:
        """The intact generation recorded under `key` (counted as reused), or None when there is none or it is forced.

        `for_shot`: the shot it is wanted for, when a record found by its content may name another (two shots
        written alike share one prompt): it is then kept for this shot too, so what points at this shot's
        prompt finds it."""
        if self.forced(shot):
            return None
        found = self.store.lookup(kind, key)
        if found is None:
            return None
        row_id, item = found
        if for_shot is not None and getattr(item, "shot_id", for_shot) != for_shot:
            item = item.model_copy(update={"shot_id": for_shot})
        if kind.identity == "content" and self.store.needs_refs:
            # addressed by its content: recording it again links it to this run's rows (it took no time now)
            self.keep(kind, item, key=key, facts={**(facts or {}), "wall_s": 0.0}, tally=None)
        else:
            with self._lock:
                self._remember(kind, key, item, row_id)
        if tally is not None:
            self._count(tally or kind.name, "reused")
        return item

    def keep(
        self,
        kind: Kind[T],
        item: T,
        *,
        key: str | None = None,
        facts: Mapping[str, Any] | None = None,
        links: Mapping[str, Sequence[str]] | None = None,
        tally: str | None = "",
    ) -> T:
        """Record a generation just made (counted as made unless `tally` is None); it waits for the rows it needs."""
        key = key if key is not None else getattr(item, "cache_key", None)
        entry = {"key": key, "facts": {name: value for name, value in (facts or {}).items()
                                       if name in kind.columns and not _has_field(item, name)},
                 "links": links}  # fmt: skip
        with self._lock:
            if self._missing(kind, item):
                self._waiting.append((kind, item, entry))
            else:
                self._record(kind, item, entry)
        if tally is not None:
            self._count(tally or kind.name, "made")
        return item

    def point_at(self, **refs: Any) -> None:
        """Name rows that generations point at from now on (storyboard=7, prompt={"s01": 9}, ...);
        generations that were waiting for them are recorded now."""
        with self._lock:
            self.refs.update(refs)
            waiting, self._waiting = self._waiting, []
            for done, (kind, item, entry) in enumerate(waiting):
                if self._missing(kind, item):
                    self._waiting.append((kind, item, entry))
                    continue
                try:
                    self._record(kind, item, entry)
                except BaseException:  # still waiting, all of those not recorded (see discard_waiting)
                    self._waiting += waiting[done:]
                    raise

    def discard_waiting(self) -> None:
        """The run ends before the rows its generations wait for: the files they wrote since it began go, so
        `catalog verify` finds no file without its row (a file a row claims, or an older one, stays)."""
        with self._lock:
            waiting, self._waiting = self._waiting, []
        for kind, item, _ in waiting:
            self.store.discard_unrecorded(item_paths(kind, item), since=self._opened)

    # ------------------------------------------------------------ doors in other processes

    def pointers(self) -> dict[str, Any]:
        """What a door in another process needs to record as this one would: the rows named with point_at
        and the rows recorded per shot (plain ids: they cross processes as parameters)."""
        with self._lock:
            return {"refs": {k: v for k, v in self.refs.items() if k != "run"},
                    "by_shot": {kind: dict(rows) for kind, rows in self._by_shot.items()}}  # fmt: skip

    def adopt(self, pointers: Mapping[str, Any]) -> None:
        """Point generations where another door does (its `pointers()`)."""
        with self._lock:
            for kind, rows in pointers.get("by_shot", {}).items():
                self._by_shot.setdefault(kind, {}).update(rows)
        self.point_at(**pointers.get("refs", {}))

    def receipt(self) -> Receipt:
        """What this door made, reused and recorded: for the run's door to take in (`absorb`)."""
        with self._lock:
            return Receipt(tally={label: dict(counts) for label, counts in self.tally.items()},
                           rows=dict(self._rows), by_shot={kind: dict(rows) for kind, rows in self._by_shot.items()},
                           waiting=len(self._waiting))  # fmt: skip

    def absorb(self, receipt: Receipt) -> None:
        """Count what a task's door did as this run's, and point at the rows it recorded."""
        if receipt.waiting:
            raise RuntimeError(f"a task's door left {receipt.waiting} generation(s) unrecorded: "
                               "it was not given the rows they point at (Generations.pointers)")  # fmt: skip
        with self._lock:
            for label, counts in receipt.tally.items():
                mine = self.tally.setdefault(label, {"made": 0, "reused": 0})
                for outcome, n in counts.items():
                    mine[outcome] += n
            self._rows.update(receipt.rows)
            for kind, rows in receipt.by_shot.items():
                self._by_shot.setdefault(kind, {}).update(rows)

    def recount(self, label: str, *, made: int) -> None:
        """Count `made` generations found in the catalog as made, not reused: another process made them for this
        run (a worker of the shot pool, flows/shots.py)."""
        with self._lock:
            counts = self.tally.setdefault(label, {"made": 0, "reused": 0})
            counts["made"] += made
            counts["reused"] -= made

    def jobs(self, key: str, backend: str, model: str, lifetime_s: float | None = None) -> JobLedger:
        """The ledger a hosted backend writes its paid job for the generation under `key` into (PaidJobs);
        `lifetime_s`: how long the provider keeps a job's result (the backend's job_lifetime_s)."""
        return JobLedger(self.store, key, backend, model, self.refs.get("run"), lifetime_s)

    def row_id(self, kind: Kind, key: str) -> int | None:
        """The catalog row of the generation under `key` this door reused or recorded, if any."""
        return self._rows.get((kind.name, key))

    # ------------------------------------------------------------ helpers

    def _ref(self, name: str, item: Any) -> Any:
        """The row `item` points at as its `name`: named with point_at, else this run's row of that kind for its shot."""
        shot = getattr(item, "shot_id", None)
        ref = self.refs.get(name, self._by_shot.get(name))
        return ref.get(shot) if isinstance(ref, Mapping) else ref

    def _missing(self, kind: Kind, item: Any) -> bool:
        return self.store.needs_refs and any(self._ref(name, item) is None for name in kind.refs)

    def _record(self, kind: Kind, item: Any, entry: dict[str, Any]) -> None:
        refs = {name: self._ref(name, item) for name in (*kind.refs, "run")}
        row_id = self.store.record(kind, item, key=entry["key"], refs=refs, facts=entry["facts"], links=entry["links"])
        self._remember(kind, entry["key"], item, row_id)

    def _remember(self, kind: Kind, key: str | None, item: Any, row_id: int) -> None:
        if key:
            self._rows[(kind.name, key)] = row_id
        shot = getattr(item, "shot_id", None)
        if shot is not None:
            self._by_shot.setdefault(kind.name, {})[shot] = row_id

    def _count(self, label: str, outcome: str) -> None:
        with self._lock:
            self.tally.setdefault(label, {"made": 0, "reused": 0})[outcome] += 1


@dataclass(frozen=True)
class Receipt:
    """What one door made, reused and recorded (Generations.receipt): plain data, so it can cross processes."""

    tally: dict[str, dict[str, int]]
    rows: dict[tuple[str, str], int]
    by_shot: dict[str, dict[str, int]]
    waiting: int = 0


class JobLedger:
    """One generation's paid jobs (storyflow.backends.base.PaidJobs), kept in the door's store."""

    def __init__(self, store: Store | MemoryStore, key: str, backend: str, model: str, run_id: int | None,
                 lifetime_s: float | None = None) -> None:  # fmt: skip
        self.store, self.key, self.backend, self.model, self.run_id = store, key, backend, model, run_id
        self.lifetime_s = lifetime_s  # how long the provider keeps a job's result (None: no limit known)

    def pending(self) -> str | None:
        """The job to resume; one older than the provider keeps results is marked "expired" and not resumed."""
        if self.lifetime_s is not None:
            for job_id, age in self.store.job_expire(self.key, self.backend, self.lifetime_s):
                log.warning("%s job %s for this clip was started %s ago and never finished; %s keeps a job's result "
                            "%s, so it is not resumed (marked expired): a new job is made, and paid for",
                            self.backend, job_id, duration_words(age), self.backend,
                            duration_words(self.lifetime_s))  # fmt: skip
        return self.store.job_pending(self.key, self.backend)

    def started(self, job_id: str, *, cost_usd: float | None = None, detail: str = "") -> None:
        self.store.job_started(self.key, self.backend, self.model, job_id, run_id=self.run_id, cost_usd=cost_usd,
                               detail=detail)  # fmt: skip

    def finished(self, job_id: str, status: str, *, detail: str = "") -> None:
        self.store.job_finished(self.key, job_id, status, detail=detail)


class MemoryStore:
    """A store that lives in memory: generations found again only while their files are intact."""

    needs_refs = False  # nothing to point at

    def __init__(self) -> None:
        self._items: dict[tuple[str, str], tuple[int, Any]] = {}
        self._jobs: list[dict[str, Any]] = []

    def lookup(self, kind: Kind, key: str) -> tuple[int, Any] | None:
        found = self._items.get((kind.name, key))
        if found is None:
            return None
        row_id, item = found
        path, sha256 = getattr(item, "path", None), getattr(item, "sha256", None)
        if path is not None and not (path.is_file() and sha256_file(path) == sha256):
            return None
        return row_id, item.model_copy(update={"reused": True}) if _has_field(item, "reused") else item

    def discard_unrecorded(self, paths: Sequence[Path], *, since: float) -> None:
        """Nothing to do: without a catalog no file is expected to have a row."""

    def job_pending(self, key: str, backend: str) -> str | None:
        running = [j for j in self._jobs if (j["cache_key"], j["backend"], j["status"]) == (key, backend, "running")]
        return running[-1]["job_id"] if running else None

    def job_started(self, key: str, backend: str, model: str, job_id: str, **facts: Any) -> None:
        self._jobs.append({"cache_key": key, "backend": backend, "model": model, "job_id": job_id,
                           "status": "running", "created_at": datetime.now(UTC), **facts})  # fmt: skip

    def job_finished(self, key: str, job_id: str, status: str, *, detail: str = "") -> None:
        for job in self._jobs:
            if (job["cache_key"], job["job_id"]) == (key, job_id):
                job.update(status=status, detail=job_detail(job.get("detail", ""), detail))

    def job_expire(self, key: str, backend: str, lifetime_s: float) -> list[tuple[str, float]]:
        now, expired = datetime.now(UTC), []
        for job in self._jobs:
            age = (now - job["created_at"]).total_seconds()
            if (job["cache_key"], job["backend"], job["status"]) == (key, backend, "running") and age > lifetime_s:
                job.update(status="expired", detail=job_detail(job.get("detail", ""),
                                                               expired_detail(backend, age, lifetime_s)))  # fmt: skip
                expired.append((job["job_id"], age))
        return expired

    def jobs(self, run_id: int | None = None) -> list[dict[str, Any]]:
        return [dict(job) for job in self._jobs if run_id is None or job.get("run_id") == run_id]

    def record(self, kind: Kind, item: Any, *, key: str | None, **_: Any) -> int:
        row_id = len(self._items) + 1
        if key:
            self._items[(kind.name, key)] = (row_id, item)
        return row_id


def _has_field(item: Any, name: str) -> bool:
    return name in getattr(type(item), "model_fields", {})
