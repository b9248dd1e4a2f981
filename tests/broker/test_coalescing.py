"""Subscriptions under load: changes coalesced on the tick, one wake-up per event loop for a whole publish."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from sdv.broker import Broker, Limits
from sdv.broker.access import UNRESTRICTED
from sdv.broker.tick import TickGovernor
from sdv.hal.processor import SignalUpdate, Status
from sdv.hal.vehicle import VehicleDefinition

from ..waiting import wait_until_async

SPEED = "Vehicle.Speed"
LOW_BEAM = "Vehicle.Body.Lights.Beam.Low.IsOn"


class CountingLoop(asyncio.SelectorEventLoop):
    """A real event loop that counts the callbacks other threads (and publishers) hand it, and its timers."""

    handed = 0
    timers = 0

    def call_soon_threadsafe(self, callback: Callable[..., Any], *args: Any, context: Any = None) -> Any:
        self.handed += 1
        return super().call_soon_threadsafe(callback, *args, context=context)

    def call_at(self, when: float, callback: Callable[..., Any], *args: Any, context: Any = None) -> Any:
        self.timers += 1
        return super().call_at(when, callback, *args, context=context)


def test_one_publish_wakes_all_its_subscriptions_with_one_call_into_their_loop(
    demo_vehicle: VehicleDefinition,
) -> None:
    broker = Broker.from_vehicle(demo_vehicle, Limits(subscription_tick_ms=0))

    async def scenario(loop: CountingLoop) -> tuple[int, list[dict[str, Any]]]:
        subscriptions = [broker.subscribe([SPEED, LOW_BEAM], access=UNRESTRICTED) for _ in range(10)]
        for subscription in subscriptions:
            await anext(subscription)  # the current values
        before = loop.handed
        broker.publish(
            [SignalUpdate(SPEED, 42.0, 1.0, Status.VALID), SignalUpdate(LOW_BEAM, True, 1.0, Status.VALID)]
        )
        handed = loop.handed - before
        batches = [await anext(subscription) for subscription in subscriptions]
        for subscription in subscriptions:
            subscription.close()
        return handed, [{path: datapoint.value for path, datapoint in batch.items()} for batch in batches]

    with asyncio.Runner(loop_factory=CountingLoop) as runner:
        loop = runner.get_loop()
        assert isinstance(loop, CountingLoop)
        handed, batches = runner.run(scenario(loop))
    assert handed == 1
    assert batches == [{SPEED: 42.0, LOW_BEAM: True}] * 10


async def _changes_after_a_wake_up(broker: Broker) -> dict[str, object]:
    """The batch a subscriber takes when a change arrives after it woke up for an earlier one."""
    subscription = broker.subscribe([SPEED, LOW_BEAM], access=UNRESTRICTED)
    await anext(subscription)
    waiting = asyncio.ensure_future(anext(subscription))
    broker.publish([SignalUpdate(SPEED, 1.0, 1.0, Status.VALID)])

    async def woken() -> bool:  # the subscriber took its batch, or holds it back until its tick
        return waiting.done() or subscription.holding

    await wait_until_async(woken, what="the subscriber to wake up for the first change")
    broker.publish([SignalUpdate(SPEED, 2.0, 2.0, Status.VALID), SignalUpdate(LOW_BEAM, True, 2.0)])
    batch = await waiting
    subscription.close()
    return {path: datapoint.value for path, datapoint in batch.items()}


async def test_changes_within_a_tick_of_the_previous_response_are_coalesced(
    demo_vehicle: VehicleDefinition,
) -> None:
    broker = Broker.from_vehicle(demo_vehicle, Limits(subscription_tick_ms=500))
    assert await _changes_after_a_wake_up(broker) == {SPEED: 2.0, LOW_BEAM: True}


async def test_without_a_tick_every_wake_up_takes_what_is_there(demo_vehicle: VehicleDefinition) -> None:
    broker = Broker.from_vehicle(demo_vehicle, Limits(subscription_tick_ms=0))
    assert await _changes_after_a_wake_up(broker) == {SPEED: 1.0}


def test_subscriptions_held_for_their_tick_share_one_timer_of_their_loop(
    demo_vehicle: VehicleDefinition,
) -> None:
    broker = Broker.from_vehicle(
        demo_vehicle, Limits(subscription_tick_ms=1000, subscription_tick_max_ms=1000)
    )

    async def scenario(loop: CountingLoop) -> tuple[int, list[dict[str, Any]]]:
        subscriptions = [broker.subscribe([SPEED], access=UNRESTRICTED) for _ in range(10)]
        for subscription in subscriptions:
            await anext(subscription)  # the current values, at once: nothing was sent before
        waiting = [asyncio.ensure_future(anext(subscription)) for subscription in subscriptions]
        before = loop.timers
        broker.publish([SignalUpdate(SPEED, 42.0, 1.0, Status.VALID)])  # within the tick: held
        batches = await asyncio.gather(*waiting)
        timers = loop.timers - before
        for subscription in subscriptions:
            subscription.close()
        return timers, [{path: datapoint.value for path, datapoint in batch.items()} for batch in batches]

    with asyncio.Runner(loop_factory=CountingLoop) as runner:
        loop = runner.get_loop()
        assert isinstance(loop, CountingLoop)
        timers, batches = runner.run(scenario(loop))
    assert timers == 1
    assert batches == [{SPEED: 42.0}] * 10


async def test_under_load_the_broker_holds_changes_for_its_lengthened_tick(
    demo_vehicle: VehicleDefinition,
) -> None:
    limits = Limits(subscription_tick_ms=1, subscription_tick_max_ms=1000, subscription_load_window_s=1)
    broker = Broker.from_vehicle(demo_vehicle, limits)
    wall, cpu = [0.0], [0.0]
    broker.ticks = TickGovernor(limits, cpu_clock=lambda: cpu[0], now=lambda: wall[0])
    subscription = broker.subscribe([SPEED], access=UNRESTRICTED)
    await anext(subscription)
    for _ in range(4):  # four busy windows: the tick at its longest
        wall[0] += 1
        cpu[0] += 1
        broker.ticks.tick()
    assert broker.ticks.tick() == 1.0
    waiting = asyncio.ensure_future(anext(subscription))
    broker.publish([SignalUpdate(SPEED, 1.0, 1.0, Status.VALID)])

    async def held() -> bool:
        return subscription.holding

    await wait_until_async(held, what="the change to be held for the lengthened tick")
    assert not waiting.done()
    subscription.close()
    with pytest.raises(StopAsyncIteration):
        await waiting
