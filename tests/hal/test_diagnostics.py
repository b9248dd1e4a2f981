"""The diagnostics section: compiled read plans, DID values, and every configuration problem located."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from sdv.errors import ProfileError
from sdv.hal.diagnostics import DiagnosticPlan, DiagnosticsConfig, DidRead, decode_did
from sdv.hal.vehicle import load_vehicle
from sdv.resources import demo_dbc, demo_recording
from sdv.vss import load_catalogue

ENGINE = {"name": "Engine", "bus": "vehicle", "request_id": 0x7E0, "response_id": 0x7E8}
BASE: dict[str, object] = {
    "buses": [
        {"name": "vehicle", "interface": "virtual", "channel": "t", "fd": True, "dbc": [str(demo_dbc())]},
        {"name": "replay", "recording": {"file": str(demo_recording())}, "dbc": [str(demo_dbc())]},
    ],
    "signals": [
        {
            "path": "Vehicle.Speed",
            "kind": "sensor",
            "datatype": "float",
            "source": {"bus": "vehicle", "message": "VehicleDynamics", "signal": "VehicleSpeed"},
        }
    ],
}


def profile(tmp_path: Path, diagnostics: dict[str, object]) -> Path:
    path = tmp_path / "profile.yaml"
    path.write_text(yaml.safe_dump({**BASE, "diagnostics": diagnostics}, sort_keys=False))
    return path


def plan_of(diagnostics: dict[str, object]) -> DiagnosticPlan:
    return DiagnosticPlan.compile(DiagnosticsConfig.model_validate(diagnostics))


def test_by_default_the_identification_dids_are_read_into_the_overlay_branch() -> None:
    plan = plan_of({"ecus": [ENGINE]})
    (engine,) = plan.ecus["vehicle"]
    assert [(read.did, read.path, read.codec) for read in engine.reads] == [
        (0xF187, "Vehicle.SDV.Ecu.Engine.SparePartNumber", "ascii"),
        (0xF189, "Vehicle.SDV.Ecu.Engine.SoftwareVersion", "ascii"),
        (0xF18C, "Vehicle.SDV.Ecu.Engine.SerialNumber", "ascii"),
    ]
    assert engine.receive_key == (0x7E8, False)
    assert plan.receive_keys("vehicle") == [(0x7E8, False)]
    assert plan.attributes[1].description == "ECU Engine on bus vehicle: SoftwareVersion (UDS DID 0xF189)"


def test_addressing_gives_the_can_ids_of_requests_and_responses() -> None:
    plan = plan_of(
        {
            "ecus": [
                {"name": "Gateway", "bus": "vehicle", "addressing": "normal_fixed", "target_address": 0x10},
                {
                    "name": "Brake",
                    "bus": "vehicle",
                    "request_id": 0x18DA2AF1,
                    "response_id": 0x18DAF12A,
                    "extended_ids": True,
                },
            ]
        }
    )
    gateway, brake = plan.ecus["vehicle"]
    # ISO 15765-2 normal fixed addressing: 0x18DA, then target and source address
    assert (gateway.request_id, gateway.response_id, gateway.extended) == (0x18DA10F1, 0x18DAF110, True)
    address = gateway.isotp_address()  # can-isotp computes the same ids from the addresses
    assert (address.get_tx_arbitration_id(), address.get_rx_arbitration_id()) == (0x18DA10F1, 0x18DAF110)
    assert (brake.request_id, brake.response_id, brake.extended) == (0x18DA2AF1, 0x18DAF12A, True)
    assert brake.isotp_address().is_tx_29bits() and brake.isotp_address().is_rx_29bits()


def test_the_did_list_the_ecus_subset_and_their_paths_are_configurable() -> None:
    plan = plan_of(
        {
            "dids": [
                {"did": 0xF190, "name": "Vin", "max_length": 17},
                {"did": 0xF18B, "name": "ManufacturingDate", "codec": "hex", "max_length": 3},
                {"did": 0xF189, "name": "SoftwareVersion"},
            ],
            "ecus": [
                {
                    **ENGINE,
                    "dids": ["Vin", "SoftwareVersion"],
                    "paths": {"Vin": "Vehicle.VehicleIdentification.VIN"},
                }
            ],
        }
    )
    assert plan.paths == ["Vehicle.VehicleIdentification.VIN", "Vehicle.SDV.Ecu.Engine.SoftwareVersion"]
    assert (
        plan.ecus["vehicle"][0].max_message_bytes == 3 + 64
    )  # the 0x62 response header and the longest record


READ = DidRead(0xF189, "SoftwareVersion", "Vehicle.SDV.Ecu.Engine.SoftwareVersion", "ascii", 16)


@pytest.mark.parametrize(
    ("record", "value"),
    [
        (b"SW 1.2.3", "SW 1.2.3"),
        (b"SW-1.2\x00\x00\x00", "SW-1.2"),  # NUL padding of a fixed-size record
        (b"V7\xff\xff", "V7"),  # erased flash after the text
        (b"V7   ", "V7"),
    ],
)
def test_ascii_records_lose_their_padding(record: bytes, value: str) -> None:
    assert decode_did(READ, record) == value


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        (b"", "DID 0xF189 (SoftwareVersion): empty data record"),
        (b"A" * 17, "DID 0xF189 (SoftwareVersion): 17 bytes, at most 16 expected"),
        (b"SW\x071", "DID 0xF189 (SoftwareVersion): byte 2 is 0x07, expected printable ASCII (0x20 to 0x7E)"),
        (b"caf\xc3\xa9", "byte 3 is 0xC3, expected printable ASCII"),
    ],
)
def test_records_that_are_no_identification_text_are_refused(record: bytes, expected: str) -> None:
    with pytest.raises(ValueError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        decode_did(READ, record)


def test_hex_records_are_served_as_hex_digits() -> None:
    read = DidRead(0xF18B, "ManufacturingDate", "Vehicle.SDV.Ecu.Engine.ManufacturingDate", "hex", 3)
    assert decode_did(read, bytes([0x26, 0x12, 0x02])) == "261202"


@given(
    text=st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=40),
    padding=st.binary(max_size=24).map(lambda data: bytes(b % 2 * 0xFF for b in data)),
)
def test_printable_text_survives_any_padding(text: str, padding: bytes) -> None:
    read = DidRead(0xF18C, "SerialNumber", "Vehicle.SDV.Ecu.Engine.SerialNumber", "ascii", 64)
    assert decode_did(read, text.encode() + padding) == text


@pytest.mark.parametrize(
    ("diagnostics", "expected"),
    [
        (
            {"ecus": [{**ENGINE, "bus": "chassis"}]},
            "diagnostics.ecus[0].bus: unknown bus 'chassis'; buses: vehicle, replay",
        ),
        ({"ecus": [{**ENGINE, "bus": "replay"}]}, "diagnostics.ecus[0].bus: bus replay replays a recording"),
        (
            {"ecus": [ENGINE, {**ENGINE, "name": "Body", "request_id": 0x7E1}]},
            "diagnostics.ecus[1]: ECU Body answers on CAN id 0x7E8, as ECU Engine on bus vehicle",
        ),
        (
            {"ecus": [{**ENGINE, "paths": {"SoftwareVersion": "Vehicle.Speed"}}]},
            "diagnostics.ecus[0].paths.SoftwareVersion: Vehicle.Speed is a signal of the profile",
        ),
        (
            {
                "ecus": [
                    ENGINE,
                    {
                        **ENGINE,
                        "name": "Body",
                        "response_id": 0x7E9,
                        "paths": {"SerialNumber": "Vehicle.SDV.Ecu.Engine.SerialNumber"},
                    },
                ]
            },
            "diagnostics.ecus[1].paths.SerialNumber: Vehicle.SDV.Ecu.Engine.SerialNumber is served by ECU Engine "
            "SerialNumber already",
        ),
        (
            {"ecus": [{"name": "Engine", "bus": "vehicle"}]},
            "normal addressing needs request_id and response_id",
        ),
        ({"ecus": [{**ENGINE, "request_id": 0x18DA10F1}]}, "request_id 0x18DA10F1 is not an 11-bit id"),
        ({"ecus": [{**ENGINE, "response_id": 0x7E0}]}, "request_id and response_id must differ"),
        (
            {"ecus": [{**ENGINE, "addressing": "normal_fixed", "target_address": 0x10}]},
            "normal_fixed addressing derives the CAN ids from target_address and source_address; drop request_id",
        ),
        (
            {"ecus": [{**ENGINE, "paths": {"Software": "Vehicle.X.Y"}}]},
            "ECU Engine names DIDs Software the section",
        ),
        ({"ecus": [{**ENGINE, "paths": {"SerialNumber": "serial"}}]}, "'serial' is not a dotted VSS path"),
        (
            {"ecus": [{**ENGINE, "name": "Engine ECU"}]},
            "diagnostics.ecus[0].name: String should match pattern",
        ),
        ({"ecus": [ENGINE, ENGINE]}, "ECU name Engine listed twice"),
        ({"dids": [{"did": 0xF189, "name": "A"}, {"did": 0xF189, "name": "B"}]}, "DID 0xF189 listed twice"),
        (
            {"dids": [{"did": 0x1F189, "name": "A"}]},
            "diagnostics.dids[0].did: Input should be less than or equal",
        ),
        ({"attempts": 0}, "diagnostics.attempts: Input should be greater than or equal to 1"),
    ],
)
def test_configuration_problems_are_located(
    tmp_path: Path, diagnostics: dict[str, object], expected: str
) -> None:
    with pytest.raises(ProfileError) as caught:
        load_vehicle(profile(tmp_path, diagnostics))
    problems = [str(problem) for problem in caught.value.problems]
    assert any(expected in problem for problem in problems), problems
    assert all(problem.startswith(f"{tmp_path / 'profile.yaml'}: line ") for problem in problems), problems


def test_a_catalogue_path_must_be_a_string(tmp_path: Path) -> None:
    overlay = tmp_path / "overlay.json"
    overlay.write_text(
        '{"Vehicle": {"type": "branch", "description": "v", "children": {"Mileage": {"type": "sensor", '
        '"datatype": "float", "description": "m"}}}}'
    )
    with pytest.raises(ProfileError) as caught:
        load_vehicle(
            profile(tmp_path, {"ecus": [{**ENGINE, "paths": {"SerialNumber": "Vehicle.Mileage"}}]}),
            catalogue=load_catalogue([overlay]),
        )
    assert any(
        "Vehicle.Mileage is a float sensor in the VSS catalogue; an ECU's SerialNumber is a string"
        in str(problem)
        for problem in caught.value.problems
    )


def test_a_profile_without_diagnostics_reads_nothing(tmp_path: Path) -> None:
    path = tmp_path / "profile.yaml"
    path.write_text(yaml.safe_dump(BASE))
    vehicle = load_vehicle(path)
    assert DiagnosticPlan.compile(vehicle.config.diagnostics).attributes == ()
