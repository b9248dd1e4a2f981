"""A set over VISS reaches the bus: the HAL encodes the request frame and sends it.

The server runs in this process (as in tests/acceptance): the frames the HAL sends land on a python-can virtual
bus, which only this process can observe.
"""

from __future__ import annotations

import asyncio

import can

from sdv.broker import HalBridge
from sdv.broker.access import UNRESTRICTED
from sdv.hal.runtime import Hal
from sdv.hal.vehicle import VehicleDefinition
from sdv.viss import VissServer
from tests.client.serving import ACTUATION_CHANNEL
from tests.viss.conftest import request
from tests.waiting import wait_until_async

LIGHTING_REQUEST = 0x300
LOW_BEAM = "Vehicle.Body.Lights.Beam.Low.IsOn"


async def test_values_set_over_viss_are_sent_on_the_bus_encoded(demo_vehicle: VehicleDefinition) -> None:
    import websockets

    codec = demo_vehicle.codec("vehicle", "LightingRequest")
    bridge = HalBridge(Hal(demo_vehicle))
    bus = can.Bus(interface="virtual", channel=ACTUATION_CHANNEL, receive_own_messages=False)
    bridge.start()
    try:
        await wait_until_async(
            lambda: asyncio.sleep(0, bridge.broker.actuation_provider(LOW_BEAM) is not None),
            what="the HAL to provide the low beam",
        )
        async with VissServer(bridge.broker, port=0) as server:
            uri = f"ws://{server.target}"
            async with websockets.connect(uri, subprotocols=[websockets.Subprotocol("VISSv2")]) as connection:
                for number, value in enumerate(("true", False, "1")):
                    answer = await request(
                        connection,
                        {"action": "set", "path": LOW_BEAM, "value": value, "requestId": str(number)},
                    )
                    assert "error" not in answer, answer
        frames = []
        while (frame := await asyncio.to_thread(bus.recv, 0.5)) is not None:
            frames.append(frame)
    finally:
        bus.shutdown()
        bridge.stop()
    requests = [frame for frame in frames if frame.arbitration_id == LIGHTING_REQUEST]
    assert [codec.decode(frame.data)["LowBeamRequest"] for frame in requests] == [1, 0, 1]
    assert bridge.broker.target(LOW_BEAM, access=UNRESTRICTED).value is True
