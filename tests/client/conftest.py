"""Fixtures of the client tests: a real server on 127.0.0.1 (ephemeral port) with the HAL replaying the demo drive.

One server serves a whole test module (starting the HAL and the server per test would dominate the run time);
tests that change what the server holds use :func:`bare_server`, a broker without HAL or providers on the test's
own event loop. Every fixture stops what it started, and a thread left running after a module fails it.
"""

from __future__ import annotations

import argparse
import socket
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass

import can
import pytest

from sdv.api.server import SdvServer
from sdv.broker import Broker
from sdv.cli import client_commands
from sdv.cli.exit_codes import exit_code
from sdv.errors import SdvError
from sdv.hal.vehicle import VehicleDefinition

from .serving import ACTUATION_CHANNEL, ServerThread


def _threads_left(before: set[threading.Thread]) -> list[str]:
    # The event loop's executor threads belong to the loop; gRPC's asyncio poller lives as long as the process.
    return [
        thread.name
        for thread in set(threading.enumerate()) - before
        if thread.is_alive() and not thread.name.startswith("asyncio_") and "_poll_wrapper" not in thread.name
    ]


@pytest.fixture(scope="module")
def server(demo_vehicle: VehicleDefinition) -> Iterator[ServerThread]:
    """The demo vehicle served from a thread of this process, for every test of a module."""
    before = set(threading.enumerate())
    with ServerThread(demo_vehicle) as running:
        yield running
    deadline = time.monotonic() + 5
    while (left := _threads_left(before)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not left, f"threads left running: {left}"


@pytest.fixture
def bare_server_thread(demo_vehicle: VehicleDefinition) -> Iterator[ServerThread]:
    """The demo vehicle's signals from a thread of this process: no HAL, no actuation provider, no values yet."""
    with ServerThread(demo_vehicle, hal=False) as running:
        yield running


@pytest.fixture
async def bare_server(demo_vehicle: VehicleDefinition) -> AsyncIterator[SdvServer]:
    """The demo vehicle's signals on the test's event loop: no HAL, no actuation provider, no values yet."""
    async with SdvServer(Broker.from_vehicle(demo_vehicle), port=0) as running:
        yield running


@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.fixture
def can_observer() -> Iterator[can.BusABC]:
    """The python-can virtual channel the HAL sends actuation frames to."""
    bus = can.Bus(interface="virtual", channel=ACTUATION_CHANNEL, receive_own_messages=False)
    yield bus
    bus.shutdown()


def received_frames(bus: can.BusABC, timeout: float = 1.0) -> list[can.Message]:
    """Every frame that arrives on ``bus`` until it is quiet for a moment."""
    frames = []
    while (frame := bus.recv(timeout)) is not None:
        frames.append(frame)
        timeout = 0.2
    return frames


@dataclass
class Result:
    """What a command did: its exit code and output."""

    code: int
    stdout: str
    stderr: str


# The command group is wired into `sdv` by its entry point; this runs it the same way through its register(),
# with the entry point's contract for the project's errors (one line on stderr, exit code 2).
RUN_CLI = """
import argparse, signal, sys
# Ctrl-C interrupts as in a terminal even when the tests run as a background job (which starts with SIGINT ignored).
signal.signal(signal.SIGINT, signal.default_int_handler)
from sdv.cli import client_commands
from sdv.errors import SdvError
parser = argparse.ArgumentParser(prog="sdv")
client_commands.register(parser.add_subparsers(dest="command"))
args = parser.parse_args(sys.argv[1:])
try:
    sys.exit(args.handler(args))
except SdvError as error:
    print(f"sdv {args.command}: {error}", file=sys.stderr)
    sys.exit(2)
"""


@pytest.fixture
def sdv(capsys: pytest.CaptureFixture[str]) -> Callable[..., Result]:
    """Run an ``sdv`` client command in this process: ``sdv("get", "Vehicle.Speed", "--server", target)``."""

    def run(*argv: str) -> Result:
        parser = argparse.ArgumentParser(prog="sdv")
        client_commands.register(parser.add_subparsers(dest="command"))
        args = parser.parse_args(argv)
        capsys.readouterr()
        try:
            code = args.handler(args)
        except SdvError as error:
            print(f"sdv {args.command}: {error}", file=sys.stderr)
            code = exit_code(error)  # as the entry point does
        out, err = capsys.readouterr()
        return Result(code, out, err)

    return run
