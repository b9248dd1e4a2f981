"""Fixtures for HAL tests: the demo vehicle and a frame builder that applies the profile's E2E protection."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import can
import pytest

from sdv.hal.e2e import checksum_function, compute_checksum
from sdv.hal.vehicle import VehicleDefinition

FrameFactory = Callable[..., can.Message]


def build_frame(
    vehicle: VehicleDefinition,
    message: str,
    values: Mapping[str, float | int],
    *,
    timestamp: float = 0.0,
    counter: int | None = None,
    corrupt_checksum: bool = False,
    bus: str = "vehicle",
) -> can.Message:
    """A frame of ``message`` with ``values`` (other signals zero); E2E-protected messages get counter and CRC."""
    codec = vehicle.codec(bus, message)
    settings = vehicle.messages.get((bus, message))
    values = dict(values)
    e2e = settings.e2e if settings is not None else None
    if e2e is not None:
        values[e2e.counter] = counter or 0
    data = codec.encode(values)
    if e2e is not None:
        checksum = codec.signal(e2e.checksum)
        crc = compute_checksum(
            checksum_function(e2e.algorithm),
            data,
            checksum.covered_bytes(8 * codec.length),
            e2e.data_id,
            checksum.length,
        )
        if corrupt_checksum:
            crc ^= 0x01
        data = codec.encode({e2e.checksum: crc}, data)
    return can.Message(
        timestamp=timestamp,
        arbitration_id=codec.frame_id,
        is_extended_id=codec.is_extended,
        is_fd=codec.length > 8,
        data=data,
    )


@pytest.fixture
def frame(demo_vehicle: VehicleDefinition) -> FrameFactory:
    def make(message: str, values: Mapping[str, float | int], **options: object) -> can.Message:
        return build_frame(demo_vehicle, message, values, **options)  # type: ignore[arg-type]

    return make
