"""Fixtures shared by every test package."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from sdv.hal.vehicle import VehicleDefinition, load_vehicle
from sdv.resources import demo_profile


@pytest.fixture(scope="session")
def demo_vehicle() -> VehicleDefinition:
    return load_vehicle(demo_profile())


@pytest.fixture
def no_leaked_threads() -> Iterator[None]:
    """Fail a test that leaves a thread running; packages with servers make it autouse."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 5
    while True:
        # The event loop's executor threads belong to the loop (pytest-asyncio closes it); gRPC's asyncio poller
        # thread lives as long as the process.
        leaked = [
            thread
            for thread in set(threading.enumerate()) - before
            if thread.is_alive()
            and not thread.name.startswith("asyncio_")
            and "_poll_wrapper" not in thread.name
        ]
        if not leaked or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert not leaked, f"threads left running: {[thread.name for thread in leaked]}"
