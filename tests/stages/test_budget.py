"""The plan's cost before any paid call, and a run that stops asking once its budget is spent.

The backend is the embedded animatic with a price (0.50 USD per second), a real backend that
makes real clips: the estimate is checked against what generating the chains really costs.
"""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest

from storyflow.backends.base import VideoCapabilities
from storyflow.backends.video.animatic import AnimaticBackend
from storyflow.catalog import Generations
from storyflow.core.errors import BudgetExceeded, InputError
from storyflow.core.models import Character, ClipChain, Shot, ShotPrompt, Storyboard, StyleBible
from storyflow.stages.budget import Budget, check, estimate
from storyflow.stages.extend import plan_segments
from storyflow.stages.generate import generate_chain

PRICE = 0.5
FPS = 12


class PricedAnimatic(AnimaticBackend):
    """The animatic, billed like a hosted model."""

    @property
    def capabilities(self) -> VideoCapabilities:
        return replace(super().capabilities, cost_per_second=PRICE)


def shot(i: int, seconds: float, continues: bool = False, loop: bool = False) -> Shot:
    return Shot(id=f"s{i:02d}", index=i - 1, beat=i, story_text="x", action="Mara walks on a beach at noon",
                duration=seconds, characters=("Mara",), continues_previous=continues, loop=loop)  # fmt: skip


def make_board(*shots: Shot) -> Storyboard:
    return Storyboard(
        title="T", slug="t", story_sha256="0" * 64, style=StyleBible(style="flat"),
        characters=(Character(name="Mara", description="a woman in a red coat"),),
        shots=shots, width=64, height=36, fps=FPS, seed=5,
    )  # fmt: skip


def prompts_for(board: Storyboard, **edited: str) -> dict[str, ShotPrompt]:
    return {s.id: ShotPrompt(shot_id=s.id, prompt=edited.get(s.id, f"Mara walks on a beach, shot {s.id}"),
                             caption="Mara") for s in board.shots}  # fmt: skip


def generate_all(board: Storyboard, prompts: dict[str, ShotPrompt], backend, out_dir, door, budget=None):
    """Every chain in the flow's order: a continuing shot after the one it continues."""
    chains: dict[str, ClipChain] = {}
    for position, s in enumerate(board.shots):
        previous = chains[board.shots[position - 1].id] if s.continues_previous and position else None
        chains[s.id] = generate_chain(s, prompts[s.id], board, backend, out_dir, door, previous, budget=budget)
    return chains


@pytest.fixture
def backend() -> PricedAnimatic:
    return PricedAnimatic()


@pytest.fixture
def board() -> Storyboard:
    # a 3-segment shot (4 s clips), a shot continuing it, an independent looping shot
    return make_board(shot(1, 10.0), shot(2, 2.0, continues=True), shot(3, 3.0, loop=True))


def test_a_fresh_plan_costs_the_seconds_of_every_segment_at_the_price(board, backend):
    plan = estimate(board, backend, Generations.in_memory(), prompts_for(board))
    caps = backend.capabilities
    segments = {s.id: plan_segments(s.frames(FPS), FPS, caps, continues_previous=s.continues_previous, loop=s.loop)
                for s in board.shots}  # fmt: skip
    expected = sum(p.frames / FPS * PRICE for plans in segments.values() for p in plans)
    assert plan.total_usd == pytest.approx(expected) == pytest.approx(15.0 * PRICE)
    assert [(c.shot_id, c.segments) for c in plan.shots] == [(k, len(v)) for k, v in segments.items()]
    assert plan.segments == 3 + 1 + 2 and plan.reused == 0 and plan.seconds == pytest.approx(15.0)
    assert plan.describe() == "about $7.50 (6 new clips, 15 s billed by animatic at $0.50/s)"


def test_what_the_catalog_holds_is_free_and_an_edit_costs_its_chain(tmp_path, board, backend):
    door = Generations.in_memory()
    prompts = prompts_for(board)
    first = estimate(board, backend, door, prompts)
    budget = Budget(first.total_usd)
    chains = generate_all(board, prompts, backend, tmp_path, door, budget)
    # what the clips really cost is what was estimated, and the budget booked it
    made = [c.cost_usd for chain in chains.values() for c in chain.clips]
    assert sum(made) == pytest.approx(first.total_usd) == pytest.approx(budget.spent_usd)
    assert budget.reserved_usd == 0

    again = estimate(board, backend, door, prompts)
    assert again.total_usd == 0 and again.segments == 0 and again.reused == 6
    check(again, 0.0)  # a rerun of an unchanged story fits any budget

    # a new prompt for s01 makes s01 again, and s02 that continues its last clip; s03 stays free
    edited = estimate(board, backend, door, prompts_for(board, s01="Mara runs on a beach at dusk"))
    assert [(c.shot_id, c.segments) for c in edited.shots] == [("s01", 3), ("s02", 1), ("s03", 0)]
    assert edited.total_usd == pytest.approx(12.0 * PRICE) and edited.reused == 2
    # --force-shot s03: its clips are made (and paid) again
    forced = estimate(board, backend, Generations(door.store, force_shots={"s03"}), prompts)
    assert [(c.shot_id, c.segments) for c in forced.shots] == [("s01", 0), ("s02", 0), ("s03", 2)]


def test_a_plan_over_the_budget_is_refused_with_its_cost(board, backend):
    plan = estimate(board, backend, Generations.in_memory(), prompts_for(board))
    check(plan, 7.5)
    check(plan, None)
    with pytest.raises(InputError) as refused:
        check(plan, 5.0)
    assert refused.value.exit_code == 2
    assert refused.value.message == ("the plan would cost about $7.50 (6 new clips, 15 s billed by animatic at "
                                     "$0.50/s); the budget is $5.00")  # fmt: skip
    assert "--budget" in refused.value.fix


def test_reserve_stops_at_the_limit_and_says_what_was_spent():
    budget = Budget(1.0)
    first = budget.reserve(0.6)
    with pytest.raises(BudgetExceeded) as stopped:
        budget.reserve(0.5)
    assert stopped.value.message == ("the budget of $1.00 is spent: $0.00 spent so far and $0.60 set aside for "
                                     "clips being made; the next clip would cost $0.50")  # fmt: skip
    assert "raise --budget, or lower the film's length/size" in stopped.value.fix
    budget.settle(first, 0.55)  # what it really cost
    assert budget.spent_usd == pytest.approx(0.55) and budget.reserved_usd == 0
    budget.reserve(0.45)  # up to the limit exactly
    with pytest.raises(BudgetExceeded, match=r"\$0.55 spent so far .*the next clip would cost \$0.01"):
        budget.reserve(0.01)
    assert Budget(None).reserve(1e9) == 1e9  # no limit


def test_reservations_from_many_threads_never_pass_the_limit():
    budget = Budget(1.0)
    granted: list[float] = []

    def ask() -> None:
        for _ in range(10):
            try:
                granted.append(budget.reserve(0.1))
            except BudgetExceeded:
                pass

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(granted) == 10 and budget.reserved_usd == pytest.approx(1.0)


def test_a_runs_purse_in_the_catalog_holds_across_processes(tmp_path):
    """Workers of one run, each with its own connection to the catalog (processes, machines), share one purse:
    together they never set aside more than the budget, and what they spend is on the run's row."""
    from multiprocessing import get_context

    from storyflow.catalog import open_catalog
    from storyflow.core.config import load_settings
    from storyflow.stages.budget import RunPurse

    settings = load_settings(home=tmp_path)
    with open_catalog(settings) as catalog:
        run_id = catalog.start_run("story.md", {})
    with get_context("spawn").Pool(4) as pool:
        granted = sum(pool.starmap(_reserve_in_a_process, [(str(tmp_path), run_id)] * 4))
    assert granted == 10  # of 4 x 10 asked, a dime each, under a $1 budget
    with open_catalog(settings) as catalog:
        budget = Budget(1.0, RunPurse(catalog, run_id))
        assert budget.reserved_usd == pytest.approx(1.0)
        budget.settle(0.1, 0.05)  # one clip made, for less than was set aside
        assert (budget.spent_usd, budget.reserved_usd) == (pytest.approx(0.05), pytest.approx(0.9))
        budget.reserve(0.05)  # what it saved can be spent again
        with pytest.raises(BudgetExceeded, match=r"\$0.05 spent so far and \$0.95 set aside"):
            budget.reserve(0.01)


def _reserve_in_a_process(home: str, run_id: int) -> int:
    """Ask a run's purse for a dime ten times from a process of its own; how many were granted."""
    from storyflow.catalog import open_catalog
    from storyflow.core.config import load_settings
    from storyflow.stages.budget import RunPurse

    granted = 0
    with open_catalog(load_settings(home=home)) as catalog:
        budget = Budget(1.0, RunPurse(catalog, run_id))
        for _ in range(10):
            try:
                budget.reserve(0.1)
                granted += 1
            except BudgetExceeded:
                pass
    return granted


def test_a_chain_stops_asking_when_the_budget_is_spent(tmp_path, backend):
    board = make_board(shot(1, 10.0))  # three clips of 3.33 s: $1.67 each
    budget = Budget(2.0)
    with pytest.raises(BudgetExceeded, match=r"the budget of \$2.00 is spent: \$1.6667 spent so far"):
        generate_chain(board.shots[0], prompts_for(board)["s01"], board, backend, tmp_path, Generations.in_memory(),
                       budget=budget)  # fmt: skip
    assert len(list((tmp_path / "clips" / "s01").glob("*.mp4"))) == 1  # the first was made, then nothing was asked
    assert budget.spent_usd == pytest.approx(10 / 3 * PRICE)
