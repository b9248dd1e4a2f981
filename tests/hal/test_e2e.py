"""E2E algorithms against published check values, and the hook for OEM-specific checksums."""

from __future__ import annotations

from pathlib import Path

import can
import pytest
import yaml

from sdv.hal import e2e
from sdv.hal.processor import FrameProcessor, Status
from sdv.hal.vehicle import load_vehicle
from sdv.resources import demo_dbc


def test_crc8_sae_j1850_check_value() -> None:
    # The catalogue check value of CRC-8/SAE-J1850 (poly 0x1D, init 0xFF, xorout 0xFF) over "123456789".
    assert e2e.crc8_sae_j1850(b"123456789") == 0x4B
    assert e2e.crc8_sae_j1850(b"") == 0x00


def test_byte_sum_and_xor() -> None:
    assert e2e.byte_sum(bytes([0xF0, 0x20, 0x01])) == 0x111
    assert e2e.xor_checksum(bytes([0xF0, 0x20, 0x01])) == 0xD1


def test_checksum_covers_the_data_id_and_skips_its_own_bytes() -> None:
    payload = bytes([1, 2, 3, 0xAA])
    with_id = e2e.compute_checksum(e2e.byte_sum, payload, frozenset({3}), 0x0102, 8)
    assert with_id == (1 + 2 + 3 + 0x02 + 0x01) & 0xFF
    assert e2e.compute_checksum(e2e.byte_sum, payload, frozenset({3}), None, 4) == 6


@pytest.mark.parametrize(
    ("previous", "current", "ok"),
    [(3, 4, True), (15, 0, True), (3, 5, True), (3, 3, False), (3, 6, False), (14, 1, False)],
    ids=["step", "wrap", "one-lost", "repeated", "two-lost", "wrap-two-lost"],
)
def test_counter_steps_up_to_the_allowed_jump(previous: int, current: int, ok: bool) -> None:
    assert e2e.counter_step_ok(previous, current, bits=4, max_step=2) is ok


def test_unknown_algorithm_names_the_known_ones() -> None:
    with pytest.raises(KeyError, match="crc8_sae_j1850"):
        e2e.checksum_function("crc32_nope")


def test_registered_algorithm_protects_a_message(tmp_path: Path) -> None:
    def inverted_sum(data: bytes) -> int:
        return ~sum(data) & 0xFF

    name = f"inverted_sum_{tmp_path.name}"  # registry names are global: one per test run
    e2e.register_checksum(name, inverted_sum)
    with pytest.raises(ValueError, match="already registered"):
        e2e.register_checksum(name, inverted_sum)
    profile = {
        "buses": [{"name": "vehicle", "interface": "virtual", "fd": True, "dbc": [str(demo_dbc())]}],
        "messages": [
            {
                "bus": "vehicle",
                "message": "Steering",
                "e2e": {"counter": "Counter", "checksum": "Checksum", "algorithm": name},
            }
        ],
        "signals": [
            {
                "path": "Vehicle.Chassis.SteeringWheel.Angle",
                "kind": "sensor",
                "datatype": "float",
                "source": {"bus": "vehicle", "message": "Steering", "signal": "SteeringAngle"},
            }
        ],
    }
    path = tmp_path / "custom.yaml"
    path.write_text(yaml.safe_dump(profile))
    vehicle = load_vehicle(path)
    codec = vehicle.codec("vehicle", "Steering")
    data = codec.encode({"SteeringAngle": 12.5, "Counter": 0})
    checksum = codec.signal("Checksum")
    good = codec.encode(
        {"Checksum": e2e.compute_checksum(inverted_sum, data, checksum.covered_bytes(64), None, 8)}, data
    )
    processor = FrameProcessor(vehicle)
    updates = processor.process(0, [can.Message(arbitration_id=0x25, is_extended_id=False, data=good)])
    assert [(u.value, u.status) for u in updates] == [(12.5, Status.VALID)]
    plain_sum = codec.encode({"Counter": 1, "SteeringAngle": 13.0}, data)
    plain_sum = codec.encode(
        {"Checksum": e2e.compute_checksum(e2e.byte_sum, plain_sum, checksum.covered_bytes(64), None, 8)},
        plain_sum,
    )
    updates = processor.process(0, [can.Message(arbitration_id=0x25, is_extended_id=False, data=plain_sum)])
    assert [u.status for u in updates] == [Status.E2E_FAILED]
