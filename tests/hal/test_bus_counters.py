"""The ``Sdv.Hal.Bus.<bus>`` counters reach the broker while a bus is quiet, not only with its next frame.

The bridge publishes the counters from a batch at most once per ``statistics_period``; the frames counted after
that publication (the end of a burst) are published within the next period even when no frame follows, as
they are when the bus goes down. Real HAL, bridge and broker on python-can's virtual bus.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import can
import pytest

from sdv.broker import HalBridge
from sdv.broker.access import UNRESTRICTED
from sdv.hal.runtime import Hal
from sdv.hal.vehicle import VehicleDefinition
from tests.waiting import wait_until

from .flaky_bus import FAST_RECONNECT, Plug, flaky_opener, two_bus_vehicle

PERIOD = 0.5
"""The bridge's statistics period: the frames after a publication are all sent well within it."""
UNKNOWN = can.Message(arbitration_id=0x7FF, is_extended_id=False, data=bytes(8))
"""An id no DBC of the profile declares: counted, never an update (nothing else would publish)."""
PREFIX = "Sdv.Hal.Bus.vehicle."


@pytest.fixture
def vehicle(tmp_path: Path) -> VehicleDefinition:
    return two_bus_vehicle(tmp_path)


@pytest.fixture
def sender(vehicle: VehicleDefinition) -> Iterator[can.BusABC]:
    bus = can.Bus(interface="virtual", channel=str(vehicle.buses["vehicle"].config.channel))
    yield bus
    bus.shutdown()


def served(bridge: HalBridge, name: str) -> object:
    return bridge.broker.get(PREFIX + name, access=UNRESTRICTED).value


def test_the_frames_after_a_publication_are_published_while_the_bus_is_idle(
    vehicle: VehicleDefinition, sender: can.BusABC
) -> None:
    bridge = HalBridge(Hal(vehicle), statistics_period=PERIOD)
    bridge.start()
    try:
        sender.send(UNKNOWN)
        wait_until(
            lambda: served(bridge, "Errors.UnknownId") == 1, what="the first frame's counters", timeout_s=20
        )
        for _ in range(5):  # within the period after that publication: no batch of theirs publishes
            sender.send(UNKNOWN)
        wait_until(
            lambda: served(bridge, "Errors.UnknownId") == 6 and served(bridge, "Frames") == 6,
            what="the last frames' counters, published with no frame after them",
        )
    finally:
        bridge.stop()


def test_the_counters_a_bus_reached_are_published_when_it_goes_down(
    vehicle: VehicleDefinition, sender: can.BusABC
) -> None:
    plug = Plug()
    hal = Hal(vehicle, openers={"vehicle": flaky_opener(vehicle, plug)}, config=FAST_RECONNECT)
    bridge = HalBridge(hal, statistics_period=3600.0)  # neither the batches nor the ticker publish them
    bridge.start()
    try:
        for _ in range(3):
            sender.send(UNKNOWN)
        wait_until(lambda: hal.statistics()["vehicle"].frames == 3, what="the HAL counting the frames")
        plug.pull()
        wait_until(lambda: served(bridge, "State") == "DOWN", what="the bus down")
        assert served(bridge, "Frames") == 3 and served(bridge, "Errors.UnknownId") == 3
    finally:
        plug.insert()
        bridge.stop()
