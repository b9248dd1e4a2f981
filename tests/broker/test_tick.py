"""The subscription tick adapted to load (:class:`sdv.broker.tick.TickGovernor`), with the clocks as arguments."""

from __future__ import annotations

import pytest

from sdv.broker import Limits
from sdv.broker.tick import TickGovernor

LIMITS = Limits(
    subscription_tick_ms=2,
    subscription_tick_max_ms=6,
    subscription_cpu_budget=0.25,
    subscription_load_window_s=1,
)


class Clocks:
    """A wall clock and the process's CPU clock that the test advances."""

    def __init__(self) -> None:
        self.wall = 100.0
        self.cpu = 10.0
        self.cpu_reads = 0

    def read_cpu(self) -> float:
        self.cpu_reads += 1
        return self.cpu

    def run(self, seconds: float, load: float) -> None:
        """Let ``seconds`` pass while the process uses ``load`` of a core."""
        self.wall += seconds
        self.cpu += seconds * load


def governor(clocks: Clocks, limits: Limits = LIMITS) -> TickGovernor:
    return TickGovernor(limits, cpu_clock=clocks.read_cpu, now=lambda: clocks.wall)


def ms(seconds: float) -> float:
    return round(seconds * 1000, 6)


def test_the_tick_stays_at_its_shortest_while_the_load_is_within_the_budget() -> None:
    clocks = Clocks()
    ticks = governor(clocks)
    for _ in range(10):
        clocks.run(1.0, 0.24)
        assert ms(ticks.tick()) == 2
    assert ticks.load == pytest.approx(0.24)


def test_load_over_the_budget_lengthens_the_tick_a_step_per_window_up_to_the_longest_never_beyond() -> None:
    clocks = Clocks()
    ticks = governor(clocks)
    seen = []
    for _ in range(6):
        clocks.run(1.0, 0.9)
        seen.append(ms(ticks.tick()))
    assert seen == [3, 4, 5, 6, 6, 6]


def test_a_window_is_judged_only_once_it_has_passed() -> None:
    clocks = Clocks()
    ticks = governor(clocks)
    clocks.run(0.6, 0.9)
    assert ms(ticks.tick()) == 2  # 0.6 s of a 1 s window: not judged yet
    clocks.run(0.6, 0.9)
    assert ms(ticks.tick()) == 3  # judged over the 1.2 s that passed
    assert ticks.load == pytest.approx(0.9)


def test_the_tick_shortens_again_only_below_the_low_water_mark() -> None:
    clocks = Clocks()
    ticks = governor(clocks)
    for _ in range(4):
        clocks.run(1.0, 0.9)
        ticks.tick()
    assert ms(ticks.tick()) == 6
    # Within the budget but above 80 % of it: the longer tick is what keeps the load there, so it stays.
    clocks.run(1.0, 0.22)
    assert ms(ticks.tick()) == 6
    seen = []
    for _ in range(5):
        clocks.run(1.0, 0.1)
        seen.append(ms(ticks.tick()))
    assert seen == [5, 4, 3, 2, 2]


@pytest.mark.parametrize(
    ("shortest", "longest", "expected"),
    [(2, 2, 2), (5, 3, 5), (0, 6, 0)],
    ids=["equal", "longest-below-shortest", "no-tick"],
)
def test_without_a_range_the_tick_never_changes_and_the_cpu_clock_is_never_read(
    shortest: float, longest: float, expected: float
) -> None:
    clocks = Clocks()
    ticks = governor(clocks, Limits(subscription_tick_ms=shortest, subscription_tick_max_ms=longest))
    for _ in range(5):
        clocks.run(1.0, 1.0)
        assert ms(ticks.tick()) == expected
    assert clocks.cpu_reads == 0
