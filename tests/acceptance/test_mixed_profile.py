"""Acceptance: a mixed vehicle, ``sdv serve --profile P --vss VSS4.0 --vss OVERLAY`` as a process. The HAL feeds
the demo's signals from the demo drive; the profile declares other VSS signals ``provided_by: external``, which
the unchanged ``kuksa-client`` (its own process) and sdv's SDK (async and blocking) publish; a third client reads
both kinds back. What the HAL feeds stays the HAL's, whoever tries to publish it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

import sdv
from sdv.client import VehicleClient
from sdv.errors import AlreadyProvidedError
from sdv.resources import demo_overlay, demo_profile
from sdv.types.status import Status
from tests.acceptance.test_pure_broker import kuksa
from tests.serve_process import serving
from tests.vss_files import vss_release

SPEED = "Vehicle.Speed"  # fed by the HAL from the demo drive
SUNROOF = "Vehicle.Cabin.Sunroof.Position"  # int8 percent, -100 to 100 in VSS 4.0
CHILD_LOCK = "Vehicle.Cabin.Door.Row2.PassengerSide.IsChildLockActive"
STATE_OF_CHARGE = "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current"
EXTERNAL = [
    {"path": SUNROOF, "kind": "sensor", "datatype": "int8", "unit": "percent", "provided_by": "external"},
    {"path": CHILD_LOCK, "kind": "sensor", "datatype": "boolean", "provided_by": "external"},
    {
        "path": STATE_OF_CHARGE,
        "kind": "sensor",
        "datatype": "float",
        "unit": "percent",
        "provided_by": "external",
    },
]


def mixed_profile(directory: Path) -> Path:
    """The demo profile (its recording and DBC by absolute path) with the external signals added."""
    data = yaml.safe_load(demo_profile().read_text())
    home = demo_profile().parent
    bus = data["buses"][0]
    bus["recording"]["file"] = str(home / bus["recording"]["file"])
    bus["dbc"] = [str((home / dbc).resolve()) for dbc in bus["dbc"]]
    data["signals"] += EXTERNAL
    profile = directory / "mixed.yaml"
    profile.write_text(yaml.safe_dump(data, sort_keys=False))
    return profile


@pytest.fixture(scope="module")
def mixed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    profile = mixed_profile(tmp_path_factory.mktemp("mixed"))
    with serving(
        "--profile", str(profile), "--vss", str(vss_release("4.0")), "--vss", str(demo_overlay())
    ) as (
        port,
        _,
    ):
        yield port


async def hal_value(client: VehicleClient, path: str) -> Any:
    """The first valid value the HAL publishes for ``path`` (the demo drive plays in real time)."""
    async with asyncio.timeout(30):
        async for batch in client.subscribe([path]):
            datapoint = batch.get(path)
            if datapoint is not None and datapoint.status is Status.VALID:
                return datapoint.value
    raise AssertionError(f"the subscription to {path} ended")


async def test_kuksa_client_publishes_the_external_signals_next_to_the_hal_fed_ones(
    mixed_server: int,
) -> None:
    published = {SUNROOF: 25, CHILD_LOCK: True}
    assert kuksa("current", mixed_server, json.dumps(published)) == {"current": published}
    async with VehicleClient(f"127.0.0.1:{mixed_server}") as reader:
        speed = await hal_value(reader, SPEED)
        values = await reader.get([SUNROOF, CHILD_LOCK, SPEED])
    assert isinstance(speed, float)
    assert {path: values[path].value for path in published} == published
    assert all(values[path].status is Status.VALID for path in (SUNROOF, CHILD_LOCK, SPEED))


def test_kuksa_client_cannot_publish_what_the_hal_feeds(mixed_server: int) -> None:
    refused = kuksa("current", mixed_server, json.dumps({SPEED: 12.5}))
    assert "Vehicle.Speed is already provided by the HAL" in str(refused["message"]), refused


async def test_the_sdk_publishes_external_signals_async_and_blocking(mixed_server: int) -> None:
    target = f"127.0.0.1:{mixed_server}"
    async with sdv.connect(target) as vehicle:
        await vehicle.publish(STATE_OF_CHARGE, 61.5)
        with pytest.raises(AlreadyProvidedError, match=r"Vehicle\.Speed is already provided by the HAL"):
            await vehicle.publish(SPEED, 12.5)

    def blocking() -> None:
        with sdv.connect_sync(target) as synchronous:
            synchronous.publish(SUNROOF, -40)
            with pytest.raises(AlreadyProvidedError, match=r"Vehicle\.Speed is already provided by the HAL"):
                synchronous.publish(SPEED, 12.5)

    await asyncio.to_thread(blocking)  # its own loop thread; this test's loop stays free
    async with VehicleClient(target) as reader:
        speed = await hal_value(reader, SPEED)
        values = await reader.get([STATE_OF_CHARGE, SUNROOF])
    assert isinstance(speed, float) and 0 <= speed <= 300
    assert (values[STATE_OF_CHARGE].value, values[SUNROOF].value) == (61.5, -40)
