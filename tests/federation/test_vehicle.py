"""Acceptance: three ``sdv serve`` ECUs federated over zenoh, each replaying its own bus, plus a read-only cloud.

The same scenario runs on loopback (always) and with each ECU in a network namespace of its own joined by veth
pairs (skipped, with the reason, where namespaces cannot be created):

* the unchanged ``kuksa-client`` on ECU a reads b's and c's signals and actuates the low beam, which c owns: the
  request frame appears on c's request bus;
* c is SIGKILLed: a sees c's signals not available within 1 s, and an actuation fails at once as "unreachable";
* c restarts: its values and the actuation are back;
* c is partitioned (link down; on loopback, the process stopped): a notices within the configured lease;
* the cloud node, to which the gateway (a) connects out, receives telemetry; its forged values and its
  actuation requests go nowhere.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sdv.client import VehicleClient
from tests.federation.ecus import Ecu, FrameListener, kuksa
from tests.federation.network import Loopback, Namespaces, cloud_node, free_port, namespaces_unavailable
from tests.federation.timing import all_available, all_unavailable, seconds_until
from tests.federation.vehicle import (
    CABIN_TEMPERATURE,
    LIGHT_REQUEST_ID,
    LOW_BEAM,
    SPEED,
    TRUNK,
    VEHICLE,
    write_vehicle,
)

pytestmark = pytest.mark.slow

LEASE_MS = 1000
C_SIGNALS = (LOW_BEAM, CABIN_TEMPERATURE)
NOT_AVAILABLE_WITHIN_S = 1.0
ACTUATION_TIMEOUT_S = 2.0


@pytest.fixture(params=["loopback", "namespaces"])
def network(request: pytest.FixtureRequest) -> Iterator[Any]:
    if request.param == "namespaces":
        reason = namespaces_unavailable()
        if reason is not None:
            pytest.skip(f"network namespaces cannot be created here: {reason}")
        place: Any = Namespaces()
    else:
        place = Loopback()
    try:
        yield place
    finally:
        place.close()


ALL_GONE = all_unavailable(C_SIGNALS)
ALL_BACK = all_available(C_SIGNALS)


def wait_for_values(ecu: Ecu, paths: tuple[str, ...]) -> dict[str, Any]:
    """Read ``paths`` on ``ecu`` with kuksa-client until every one has a value (the owners are joining)."""
    deadline = time.monotonic() + 60
    while True:
        values = kuksa("read", ecu, *paths)
        if all(values[path] is not None for path in paths) or time.monotonic() > deadline:
            return values


def low_beam_requests(listener: FrameListener) -> int:
    """The LowBeamRequest bit of the next light request frame ECU c sends."""
    while True:
        frame = listener.next_frame()
        if frame["id"] == LIGHT_REQUEST_ID:
            return bytes.fromhex(frame["data"])[0] & 1


async def test_a_federated_vehicle_survives_a_crash_and_a_partition_of_an_owner(
    network: Any, tmp_path: Path
) -> None:
    frame_port, cloud_port = free_port(), free_port()
    listener = FrameListener(network.host, frame_port)
    endpoints = {ecu: network.endpoint(ecu) for ecu in ("a", "b", "c")}
    gateway = {"endpoint": f"tcp/{network.host}:{cloud_port}", "buffer_size": 1000}
    files = write_vehicle(
        tmp_path,
        endpoints,
        frame_port=frame_port,
        frame_host=network.host,
        lease_ms=LEASE_MS,
        gateway=gateway,
    )
    ecus = {name: Ecu(name, ecu_files.profile, network) for name, ecu_files in files.items()}
    telemetry: list[str] = []
    try:
        with cloud_node(network.host, cloud_port) as cloud:
            cloud.declare_subscriber(
                f"sdv/{VEHICLE}/sig/**", lambda sample: telemetry.append(str(sample.key_expr))
            )
            for ecu in ecus.values():
                ecu.start()
            a, c = ecus["a"], ecus["c"]

            # a reads the whole vehicle and actuates c's low beam: the frame goes out on c's bus
            values = wait_for_values(a, (SPEED, TRUNK, LOW_BEAM, CABIN_TEMPERATURE))
            assert all(values[path] is not None for path in values), values
            assert 10 <= values[SPEED] <= 110 and -20 <= values[CABIN_TEMPERATURE] <= 107.5
            assert kuksa("actuate", a, LOW_BEAM, "true")["result"] == "ok"
            assert low_beam_requests(listener) == 1

            async with VehicleClient(f"{a.address}:{a.port}") as client:
                # c crashes: its signals are not available on a within a second, actuation fails at once
                gone = await seconds_until(client, C_SIGNALS, ALL_GONE, c.kill, NOT_AVAILABLE_WITHIN_S)
                assert gone < NOT_AVAILABLE_WITHIN_S
                refused = kuksa("actuate", a, LOW_BEAM, "true")
                assert refused["code"] == "503" and "unreachable" in refused["message"], refused
                assert refused["seconds"] < ACTUATION_TIMEOUT_S  # refused, not waited for

                # c comes back: values and actuation are back
                await seconds_until(client, C_SIGNALS, ALL_BACK, c.start, 60)
                assert kuksa("actuate", a, LOW_BEAM, "false")["result"] == "ok"
                assert low_beam_requests(listener) == 0

                # c is cut off: a notices within the lease (plus one keep-alive period of slack)
                assert c.process is not None
                process = c.process
                cut = await seconds_until(
                    client, C_SIGNALS, ALL_GONE, lambda: network.partition("c", process), 60
                )
                assert cut < LEASE_MS / 1000 * 1.5, f"a partition noticed after {cut:.2f} s"
                await seconds_until(client, C_SIGNALS, ALL_BACK, lambda: network.heal("c", process), 60)

                # the cloud got telemetry; what it sends back goes nowhere
                assert any(key.endswith("/Vehicle/Speed") for key in telemetry)
                low_beam_key = f"sdv/{VEHICLE}/sig/{LOW_BEAM.replace('.', '/')}"
                async with contextlib.aclosing(client.subscribe([LOW_BEAM])) as stream:
                    first = await anext(stream)
                    assert first[LOW_BEAM].value is False
                    cloud.put(low_beam_key, b"forged")
                    replies = list(cloud.get(f"sdv/{VEHICLE}/act/{LOW_BEAM.replace('.', '/')}", timeout=2))
                    assert [reply for reply in replies if reply.ok is not None] == []
                    assert (await client.get([LOW_BEAM]))[LOW_BEAM].value is False
                assert listener.pending() == 0  # no request frame from the cloud's attempt
    finally:
        codes = {name: ecu.stop() for name, ecu in ecus.items()}
        listener.close()
    assert codes == {"a": 0, "b": 0, "c": 0}, "\n".join(ecu.errors for ecu in ecus.values())
