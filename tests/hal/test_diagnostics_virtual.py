"""ECU identification over UDS on python-can's virtual bus: simulated ECUs, the served attributes, kuksa-client.

The ECUs are :class:`tests.uds_responder.UdsResponder` threads on the profile bus's virtual channel (a virtual
bus is visible within one process only), the server runs in this process (:class:`tests.client.serving.ServerThread`)
and ``kuksa-client`` reads the attributes from a process of its own.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path

import can
import pytest
import yaml

from sdv.broker.access import UNRESTRICTED
from sdv.hal.runtime import Hal
from sdv.hal.vehicle import load_vehicle
from sdv.resources import demo_dbc
from sdv.types.status import Status
from tests.client.serving import ServerThread
from tests.kuksa_values import read_with_kuksa_client
from tests.uds_responder import UdsResponder, ecu_address
from tests.waiting import wait_until

ENGINE = "Vehicle.SDV.Ecu.Engine."
GATEWAY = "Vehicle.SDV.Ecu.Gateway."
SILENT = "Vehicle.SDV.Ecu.Silent."
SERIAL = "ENG-SN-000000000042"  # longer than one frame: ISO-TP segments it, with flow control


@pytest.fixture(autouse=True)
def no_leaked_threads(no_leaked_threads: None) -> None:
    """Runner, responders and server threads all end with their test."""


@pytest.fixture
def channel() -> str:
    return f"diag-{uuid.uuid4().hex}"


def write_profile(directory: Path, channel: str) -> Path:
    profile = {
        "buses": [
            {"name": "body", "interface": "virtual", "channel": channel, "fd": True, "dbc": [str(demo_dbc())]}
        ],
        "signals": [
            {
                "path": "Vehicle.Speed",
                "kind": "sensor",
                "datatype": "float",
                "source": {"bus": "body", "message": "VehicleDynamics", "signal": "VehicleSpeed"},
            }
        ],
        "diagnostics": {
            "poll_interval_s": 0.3,
            "response_timeout_s": 0.3,
            "retry": {"initial_delay_s": 0.05, "max_delay_s": 0.1},
            "ecus": [
                {"name": "Engine", "bus": "body", "request_id": 0x7E0, "response_id": 0x7E8},
                {"name": "Gateway", "bus": "body", "addressing": "normal_fixed", "target_address": 0x10},
                {"name": "Silent", "bus": "body", "request_id": 0x7E1, "response_id": 0x7E9},
            ],
        },
    }
    path = directory / "vehicle.yaml"
    path.write_text(yaml.safe_dump(profile, sort_keys=False))
    return path


@pytest.fixture
def ecus(channel: str) -> Iterator[tuple[UdsResponder, UdsResponder]]:
    """The engine (11-bit ids, no spare part number) and the gateway (29-bit normal fixed, first request lost)."""
    buses = [can.Bus(interface="virtual", channel=channel) for _ in range(2)]
    engine = UdsResponder(
        buses[0],
        ecu_address(request=0x7E0, response=0x7E8),
        {0xF189: b"SW-1.2.3", 0xF18C: SERIAL.encode() + b"\x00\x00\x00"},
    )
    gateway = UdsResponder(
        buses[1],
        ecu_address(target=0x10),
        {0xF187: b"GW-PN-77", 0xF189: b"GW-4.0", 0xF18C: b"GW0001"},
        ignore=1,
    )
    with engine, gateway:
        yield engine, gateway
    for bus in buses:
        bus.shutdown()


@contextlib.contextmanager
def serving(
    tmp_path: Path, channel: str, *, ready_when: str, polls: int
) -> Iterator[tuple[ServerThread, int]]:
    """The profile served in this process once ``ready_when`` has a value and the body bus was polled ``polls`` times.

    Yields the server and its port.
    """
    vehicle = load_vehicle(write_profile(tmp_path, channel))
    with ServerThread(vehicle, hal=Hal(vehicle), ready_when=ready_when) as server:
        assert server.bridge is not None
        runner = server.bridge.diagnostics
        wait_until(lambda: runner.polls["body"] >= polls, what=f"{polls} polls of the body bus")
        yield server, server.port


def test_ecu_identification_is_served_as_attributes_read_by_kuksa_client(
    tmp_path: Path, channel: str, ecus: tuple[UdsResponder, UdsResponder], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="sdv.hal.diagnostics_runner")
    with serving(tmp_path, channel, ready_when=GATEWAY + "SerialNumber", polls=2) as (server, port):
        values = read_with_kuksa_client(
            port,
            [
                ENGINE + "SoftwareVersion",
                ENGINE + "SerialNumber",
                ENGINE + "SparePartNumber",
                GATEWAY + "SoftwareVersion",
                GATEWAY + "SparePartNumber",
                SILENT + "SoftwareVersion",
            ],
        )
        silent = server.broker.get(SILENT + "SerialNumber", access=UNRESTRICTED)
    assert {path: entry["value"] for path, entry in values.items()} == {
        ENGINE + "SoftwareVersion": "SW-1.2.3",
        ENGINE + "SerialNumber": SERIAL,  # multi-frame, NUL padding stripped
        ENGINE + "SparePartNumber": None,  # the engine answered requestOutOfRange
        GATEWAY + "SoftwareVersion": "GW-4.0",  # read after a retry: the first request went unanswered
        GATEWAY + "SparePartNumber": "GW-PN-77",
        SILENT + "SoftwareVersion": None,
    }
    assert {(entry["entry_type"], entry["data_type"]) for entry in values.values()} == {
        ("ATTRIBUTE", "STRING")
    }
    assert silent.status is Status.NOT_AVAILABLE and silent.value is None
    assert ecus[1].requests > 3  # the gateway's lost request was asked again
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert [message for message in warnings if "ECU Silent" in message] == [
        "ECU Silent on bus body does not answer (DID 0xF187, 3 attempts of 0.3 s); its attributes stay not "
        "available until it does, asked again in 0.3 s"
    ]  # once, however many polls it stayed silent
    assert [message for message in warnings if "ECU Engine" in message] == [
        "ECU Engine on bus body: DID 0xF187 negative response: RequestOutOfRange; "
        "Vehicle.SDV.Ecu.Engine.SparePartNumber is not available"
    ]


def test_a_silent_ecu_that_starts_answering_is_read_at_the_next_poll(
    tmp_path: Path, channel: str, ecus: tuple[UdsResponder, UdsResponder], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="sdv.hal.diagnostics_runner")
    with serving(tmp_path, channel, ready_when=ENGINE + "SoftwareVersion", polls=1) as (server, _):
        assert server.broker.get(SILENT + "SoftwareVersion", access=UNRESTRICTED).value is None
        bus = can.Bus(interface="virtual", channel=channel)
        with UdsResponder(bus, ecu_address(request=0x7E1, response=0x7E9), {0xF189: b"LATE-1"}):
            point = wait_until(
                lambda: (
                    (value := server.broker.get(SILENT + "SoftwareVersion", access=UNRESTRICTED)).value
                    and value
                ),
                what="the silent ECU's software version",
            )
        bus.shutdown()
    assert point.value == "LATE-1" and point.status is Status.VALID
    assert "ECU Silent on bus body answers again" in [record.getMessage() for record in caplog.records]
