"""Decode workers on the kernel's SocketCAN: each bus of a two-bus profile in its own worker process.

The profile of :mod:`tests.socketcan.test_serve_socketcan` (``body`` on ``vcan0``, ``chassis`` on ``vcan1``) with a
``hal:`` section asking for two decode workers: frames from ``cansend`` are read with ``kuksa-client``, an
actuation leaves on the owning interface, and a worker killed with SIGKILL takes down its bus only, until it is
started again.
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from sdv.types.status import Status
from tests.hal.test_workers import workers_of
from tests.serve_process import serving
from tests.waiting import wait_until

from .test_serve_socketcan import (
    DBC,
    PROFILE,
    ROUTED_SPEED,
    SPEED,
    kuksa_reads_and_sets_low_beam,
    listening_candump,
    read,
    sh,
    speed_frame,
    until,
    valid,
)

pytestmark = pytest.mark.socketcan

# The restart waits the bus's backoff (2 s): the other bus is served meanwhile (the timestamps show it).
HAL_SECTION = "hal: {decode_workers: 2, reconnect: {initial_delay_s: 2, jitter: 0}}\n"
SPEED_OF = {"body": (SPEED, "vcan0"), "chassis": (ROUTED_SPEED, "vcan1")}
"""The speed signal of each bus and the interface it is sent on."""


def bus_state(port: int, bus: str) -> object:
    return asyncio.run(read(port, f"Sdv.Hal.Bus.{bus}.State")).value


def send_speed(port: int, bus: str, speed: float) -> None:
    """Send ``speed`` on ``bus``'s interface and wait until it is served."""
    path, interface = SPEED_OF[bus]
    asyncio.run(until(port, path, valid(speed), lambda: sh("cansend", interface, speed_frame(speed))))


def test_two_buses_in_two_workers_serve_actuate_and_survive_a_killed_worker(tmp_path: Path) -> None:
    (tmp_path / "body.dbc").write_text(DBC)
    (tmp_path / "chassis.dbc").write_text(DBC)
    profile = tmp_path / "vehicle.yaml"
    profile.write_text(PROFILE + HAL_SECTION)
    with serving("--profile", str(profile)) as (port, process):
        for bus in SPEED_OF:
            asyncio.run(until(port, f"Sdv.Hal.Bus.{bus}.State", lambda point: point.value == "UP"))
        workers = workers_of(process.pid)
        assert len(workers) == 2  # one per bus
        send_speed(port, "chassis", 56.78)
        send_speed(port, "body", 12.34)

        with listening_candump("vcan0") as frames:
            values = kuksa_reads_and_sets_low_beam(port, SPEED, ROUTED_SPEED)
            assert values == {SPEED: pytest.approx(12.34), ROUTED_SPEED: pytest.approx(56.78)}
            request = frames.first("300#")  # encoded and sent by the worker that holds body's socket
        assert request.split()[1:] == ["vcan0", "300#01"]

        killed = min(workers)
        os.kill(killed, signal.SIGKILL)
        down = wait_until(
            lambda: [bus for bus in SPEED_OF if bus_state(port, bus) == "DOWN"],
            what="the killed worker's bus down",
        )
        assert len(down) == 1, down
        (dead,) = down
        (alive,) = set(SPEED_OF) - {dead}
        error = asyncio.run(read(port, f"Sdv.Hal.Bus.{dead}.LastError")).value
        assert f"(pid {killed}) exited with code -9" in str(error)
        assert asyncio.run(read(port, SPEED_OF[dead][0])).status is Status.NOT_AVAILABLE
        send_speed(port, alive, 33.3)
        back_up = asyncio.run(until(port, f"Sdv.Hal.Bus.{dead}.State", lambda point: point.value == "UP"))
        served = asyncio.run(read(port, SPEED_OF[alive][0]))
        assert served.timestamp is not None and back_up.timestamp is not None
        assert served.timestamp < back_up.timestamp  # the other bus was served while this one was down
        restarted = workers_of(process.pid)
        assert len(restarted) == 2 and killed not in restarted
        send_speed(port, dead, 44.4)
        assert asyncio.run(read(port, SPEED_OF[alive][0])).value == pytest.approx(33.3)
