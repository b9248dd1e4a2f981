"""Acceptance: ``sdv serve --vss`` (no HAL) as a process, fed and used by the unchanged ``kuksa-client`` and by
sdv's own client: publishing, actuation providers, and one owner per signal through stream ends and SIGKILL.

``kuksa-client`` runs in subprocesses (``kuksa_provider.py``); the test process talks to the server with
:class:`sdv.client.VehicleClient`. Waits are bounded by deadlines and driven by observable states (an actuation
that stops being ``UNAVAILABLE`` once the provider's claim is in place, a claim that stops being refused once the
holder is gone), never by sleeping.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sdv.client import VehicleClient
from sdv.errors import AlreadyProvidedError, NoProviderError, ProviderTimeoutError
from sdv.types.datatypes import Value
from tests.serve_process import REPOSITORY, serving
from tests.vss_files import vss_release

PROVIDER = Path(__file__).with_name("kuksa_provider.py")
WINDOW = "Vehicle.Cabin.Door.Row1.DriverSide.Window.Position"
DEADLINE_S = 30.0


def kuksa(mode: str, port: int, *extra: str) -> dict[str, Any]:
    """Run one kuksa-client mode to its end and return the JSON it printed."""
    done = subprocess.run(
        [sys.executable, str(PROVIDER), mode, "127.0.0.1", str(port), *extra],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPOSITORY,
        check=False,
    )
    assert done.returncode == 0, f"kuksa-client {mode} failed:\n{done.stderr}"
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.fixture
def kuksa_provider_process() -> Iterator[Any]:
    """Starts ``kuksa_provider.py provide`` processes; kills whatever is left at the end."""
    started: list[subprocess.Popen[str]] = []

    def start(port: int, path: str) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            [sys.executable, str(PROVIDER), "provide", "127.0.0.1", str(port), path],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPOSITORY,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=15)


async def actuate_once_provided(client: VehicleClient, path: str, value: Value) -> None:
    """Actuate ``path``, retrying while no provider has claimed it yet (bounded by a deadline)."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        try:
            await client.actuate(path, value)
            return
        except NoProviderError:
            if time.monotonic() > deadline:
                raise


async def claim_once_released(client: VehicleClient, path: str) -> Any:
    """Claim ``path`` with a new provider stream each attempt until the previous holder's claim ended."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        provider = client.provider()
        await provider.__aenter__()
        try:
            await provider.claim_actuators([path], _accept)
            return provider
        except AlreadyProvidedError:
            await provider.close()
            if time.monotonic() > deadline:
                raise


async def _accept(path: str, value: Value) -> None:
    """An actuation handler that accepts everything."""


@pytest.fixture(scope="module")
def pure_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """``sdv serve --vss VSS4.0`` answering forwarded actuations once queued, as the KUKSA databroker does."""
    limits = tmp_path_factory.mktemp("limits") / "limits.yaml"
    limits.write_text("await_provider_answer: false\n")
    with serving("--vss", str(vss_release("4.0")), "--limits", str(limits)) as (port, _):
        yield port


def test_kuksa_client_publishes_current_values_that_get_and_subscribe_see(pure_broker: int) -> None:
    result = kuksa("publish", pure_broker)
    expected = {"Vehicle.Speed": 42.5, "Vehicle.Cabin.Door.Row1.DriverSide.IsOpen": True}
    expected["Vehicle.OBD.DTCList"] = ["P0001", "U0100"]
    assert result["current"] == expected
    assert result["subscribed"] == expected


async def test_sdv_client_sees_kuksa_published_values_and_publishes_its_own(pure_broker: int) -> None:
    async with VehicleClient(f"127.0.0.1:{pure_broker}") as client:
        await client.publish("Vehicle.Cabin.SeatPosCount", (2, 2, 1))
        await client.publish("Vehicle.Powertrain.TractionBattery.StateOfCharge.Current", 61.5)
        values = await client.get(
            ["Vehicle.Cabin.SeatPosCount", "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current"]
        )
    assert values["Vehicle.Cabin.SeatPosCount"].value == (2, 2, 1)
    assert values["Vehicle.Powertrain.TractionBattery.StateOfCharge.Current"].value == 61.5


async def test_kuksa_subscribe_target_values_provides_the_actuator_and_set_target_values_reaches_it(
    pure_broker: int, kuksa_provider_process: Any
) -> None:
    path = "Vehicle.Cabin.Door.Row1.PassengerSide.Window.Position"
    provider = kuksa_provider_process(pure_broker, path)
    async with VehicleClient(f"127.0.0.1:{pure_broker}") as client:
        await actuate_once_provided(client, path, 10)  # the claim is in place once this is not UNAVAILABLE
    assert json.loads(provider.stdout.readline()) == {"path": path, "value": 10}
    assert kuksa("target", pure_broker, path, "55") == {
        "result": "ok"
    }  # another client, v1 Set of the target
    assert json.loads(provider.stdout.readline()) == {"path": path, "value": 55}


async def test_second_provider_is_refused_until_the_first_provider_process_is_killed(
    pure_broker: int, kuksa_provider_process: Any
) -> None:
    first = kuksa_provider_process(pure_broker, WINDOW)
    async with VehicleClient(f"127.0.0.1:{pure_broker}") as client:
        await actuate_once_provided(client, WINDOW, 20)
        async with client.provider() as second:
            with pytest.raises(AlreadyProvidedError, match=rf"{WINDOW} is already provided by a client"):
                await second.claim_actuators([WINDOW], _accept)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=15)
        provider = await claim_once_released(client, WINDOW)
        try:
            await client.actuate(WINDOW, 30)  # now the new provider answers
        finally:
            await provider.close()


async def test_second_provider_claims_once_the_first_stream_is_closed(pure_broker: int) -> None:
    path = "Vehicle.Cabin.Door.Row2.DriverSide.Window.Position"
    received: list[tuple[str, Value]] = []
    carried_out = asyncio.Event()

    async def record(path: str, value: Value) -> None:
        received.append((path, value))
        carried_out.set()

    async with VehicleClient(f"127.0.0.1:{pure_broker}") as client:
        async with client.provider() as first:
            await first.claim_actuators([path], record)
            await client.actuate(path, 5)  # returns once queued (await_provider_answer: false)
            async with asyncio.timeout(DEADLINE_S):
                await carried_out.wait()
            assert received == [(path, 5)]
            async with client.provider() as refused:
                with pytest.raises(AlreadyProvidedError, match="a client"):
                    await refused.claim_actuators([path], _accept)
        provider = await claim_once_released(client, path)
        await provider.close()


async def test_signal_claims_end_with_the_stream(pure_broker: int) -> None:
    path = "Vehicle.Cabin.HVAC.AmbientAirTemperature"
    async with VehicleClient(f"127.0.0.1:{pure_broker}") as client:
        async with client.provider() as first:
            await first.claim_signals([path])
            await first.publish({path: 19.5})
            with pytest.raises(AlreadyProvidedError, match="a client"):
                await client.publish(path, 30.0)  # another publisher
            async with client.provider() as second:
                with pytest.raises(AlreadyProvidedError):
                    await second.claim_signals([path])
        deadline = time.monotonic() + DEADLINE_S
        while True:  # the server releases the claim when it sees the stream end
            try:
                await client.publish(path, 21.0)
                break
            except AlreadyProvidedError:
                if time.monotonic() > deadline:
                    raise
        assert (await client.get([path]))[path].value == 21.0


def test_kuksa_set_metadata_is_refused_with_unimplemented(pure_broker: int) -> None:
    result = kuksa("metadata", pure_broker)
    assert result["code"] == 12  # UNIMPLEMENTED
    assert "FIELD_METADATA" in result["message"] and "Vehicle.Speed" in result["message"]


@pytest.mark.slow
async def test_a_provider_that_never_answers_gets_a_bounded_error_and_the_server_keeps_serving(
    tmp_path: Path, kuksa_provider_process: Any
) -> None:
    limits = tmp_path / "limits.yaml"
    limits.write_text(
        "actuation_timeout_s: 0.5\n"
    )  # await_provider_answer stays true: kuksa-client never answers
    with serving("--vss", str(vss_release("4.0")), "--limits", str(limits)) as (port, _):
        provider = kuksa_provider_process(port, WINDOW)
        async with VehicleClient(f"127.0.0.1:{port}", timeout=10) as client:
            deadline = time.monotonic() + DEADLINE_S
            while True:
                try:
                    await client.actuate(WINDOW, 40)
                except NoProviderError:
                    assert time.monotonic() < deadline
                    continue
                except ProviderTimeoutError as error:
                    assert "did not accept the request within 0.5 s" in str(error)
                    assert "a client" in str(error)
                    break
                raise AssertionError("an actuation nobody answered succeeded")
            assert json.loads(provider.stdout.readline()) == {"path": WINDOW, "value": 40}  # it was delivered
            await client.publish("Vehicle.Speed", 12.0)  # and the server still serves
            assert (await client.get(["Vehicle.Speed"]))["Vehicle.Speed"].value == 12.0
