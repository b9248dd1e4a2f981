"""A python-can bus that can be unplugged, and a two-bus vehicle whose ``vehicle`` bus is one.

:class:`FlakyBus` is a real :class:`can.BusABC` over a python-can virtual channel. While its :class:`Plug` is
out, constructing one fails with ``CanInitializationError`` (the device is gone) and an open one raises
``CanOperationError`` from every receive and send, as python-can interfaces do when a USB adapter is pulled.
:func:`two_bus_vehicle` builds the demo profile on two virtual buses: ``vehicle`` (everything but the wheel
speeds, and the actuators) and ``chassis`` (the wheel speeds); freshness is off so that values stay valid
between the frames a test sends.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import can
import yaml

from sdv.hal.config import BusReopenPolicy, HalConfig
from sdv.hal.sources import BusSource
from sdv.hal.vehicle import VehicleDefinition, load_vehicle
from sdv.resources import demo_profile

__all__ = ["FAST_RECONNECT", "FlakyBus", "Plug", "flaky_opener", "two_bus_vehicle", "wait_for"]

FAST_RECONNECT = HalConfig(
    reconnect=BusReopenPolicy(initial_delay_s=0.01, factor=2.0, max_delay_s=0.08, jitter=0.0)
)
"""Backoff of 10, 20, 40, 80, 80, ... ms: fast and exact (no jitter)."""


class Plug:
    """Whether the device behind a :class:`FlakyBus` is connected (thread-safe)."""

    def __init__(self) -> None:
        self._connected = threading.Event()
        self._connected.set()
        self.opened = 0

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def pull(self) -> None:
        self._connected.clear()

    def insert(self) -> None:
        self._connected.set()


class FlakyBus(can.BusABC):
    """A python-can bus on a virtual channel whose device can be unplugged."""

    def __init__(self, channel: str, plug: Plug, **kwargs: Any) -> None:
        if not plug.connected:
            raise can.CanInitializationError(f"no device on {channel}")
        self._plug = plug
        self._inner = can.Bus(interface="virtual", channel=channel, receive_own_messages=False)
        super().__init__(channel=channel, **kwargs)
        self.closed = False
        plug.opened += 1

    def _recv_internal(self, timeout: float | None) -> tuple[can.Message | None, bool]:
        if not self._plug.connected:
            raise can.CanOperationError("device unplugged")
        return self._inner.recv(timeout), False

    def send(self, msg: can.Message, timeout: float | None = None) -> None:
        if not self._plug.connected:
            raise can.CanOperationError("device unplugged")
        self._inner.send(msg, timeout)

    def shutdown(self) -> None:
        self.closed = True
        super().shutdown()
        self._inner.shutdown()


def flaky_opener(vehicle: VehicleDefinition, plug: Plug, bus: str = "vehicle") -> Callable[[], BusSource]:
    """Opens ``bus`` of ``vehicle`` as a :class:`FlakyBus` on its profile channel, as the HAL's opener."""
    channel = str(vehicle.buses[bus].config.channel)
    return lambda: BusSource(bus, FlakyBus(channel, plug))


def two_bus_vehicle(tmp_path: Path) -> VehicleDefinition:
    data = yaml.safe_load(demo_profile().read_text())
    vehicle_bus = data["buses"][0]
    vehicle_bus.pop("recording")
    dbc = [str(demo_profile().parent / vehicle_bus["dbc"][0])]
    vehicle_bus.update(interface="virtual", channel=f"vehicle-{tmp_path.name}", dbc=dbc)
    data["buses"].append(
        {
            "name": "chassis",
            "interface": "virtual",
            "channel": f"chassis-{tmp_path.name}",
            "fd": True,
            "dbc": dbc,
        }
    )
    for signal in data["signals"]:
        if signal.get("source", {}).get("message") == "WheelSpeeds":
            signal["source"]["bus"] = "chassis"
    data["freshness"] = {"enabled": False}
    path = tmp_path / "two_buses.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_vehicle(path)


def wait_for(condition: Callable[[], object], what: str, timeout: float = 10.0) -> None:
    """Wait until ``condition()`` is true (a deadline, not a timed assertion)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.005)
