"""Subscriptions under load: changes coalesced on the tick, one wake-up per event loop for a whole publish."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from sdv.broker import Broker, Limits
from sdv.broker.access import UNRESTRICTED
from sdv.hal.processor import SignalUpdate, Status
from sdv.hal.vehicle import VehicleDefinition

from ..waiting import wait_until_async

SPEED = "Vehicle.Speed"
LOW_BEAM = "Vehicle.Body.Lights.Beam.Low.IsOn"


class CountingLoop(asyncio.SelectorEventLoop):
    """A real event loop that counts the callbacks other threads (and publishers) hand it."""

    handed = 0

    def call_soon_threadsafe(self, callback: Callable[..., Any], *args: Any, context: Any = None) -> Any:
        self.handed += 1
        return super().call_soon_threadsafe(callback, *args, context=context)


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
