"""Subscription responses built from entries serialized once: the same messages as built whole."""

from __future__ import annotations

from sdv import wire
from sdv._proto.kuksa.val.v2 import val_pb2
from sdv.api.encoded import EntryCache
from sdv.hal.processor import Status
from sdv.types.signals import Datapoint

SPEED = "Vehicle.Speed"
GEAR = "Vehicle.Powertrain.Transmission.CurrentGear"


def _one_entry(path: str, field: str, datapoint: Datapoint) -> bytes:
    response = val_pb2.SubscribeResponse()
    wire.fill_datapoint_v2(response.entries[path], field, datapoint)
    return response.SerializeToString()


def test_a_response_joined_from_cached_entries_is_the_message_built_whole() -> None:
    encoded: list[str] = []

    def encode(path: str, field: str, datapoint: Datapoint) -> bytes:
        encoded.append(path)
        return _one_entry(path, field, datapoint)

    cache = EntryCache(encode)
    fields = {SPEED: "float", GEAR: "int32"}
    speed = Datapoint(12.5, 1700000000.25, Status.VALID)
    gear = Datapoint(None, 1700000001.0, Status.NOT_AVAILABLE)
    batch = {SPEED: speed, GEAR: gear}
    first = [cache.response(batch, fields) for _ in range(10)]  # ten subscribers of the same change

    expected = val_pb2.SubscribeResponse()
    for path, datapoint in batch.items():
        wire.fill_datapoint_v2(expected.entries[path], fields[path], datapoint)
    for response in first:
        assert val_pb2.SubscribeResponse.FromString(response) == expected
    assert encoded == [SPEED, GEAR]  # once per change, not once per subscriber

    faster = Datapoint(13.0, 1700000000.5, Status.VALID)
    parsed = val_pb2.SubscribeResponse.FromString(cache.response({SPEED: faster}, fields))
    assert parsed.entries[SPEED].value.float == 13.0
    assert encoded == [SPEED, GEAR, SPEED]
