"""A pure broker over the COVESA VSS 4.0, 5.1 and 6.0 releases: the metadata of every leaf, read back through
v2 ``ListMetadata`` and v1 ``Get`` (metadata view) from a real server, equals the release's JSON; and a mixed
broker (the HAL feeding the profile's signals, the catalogue adding the rest) keeps the HAL's signals its own."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from sdv._proto.kuksa.val.v1 import types_pb2 as t1
from sdv._proto.kuksa.val.v1 import val_pb2 as v1
from sdv._proto.kuksa.val.v1.val_pb2_grpc import VALStub as V1Stub
from sdv._proto.kuksa.val.v2 import types_pb2 as t2
from sdv._proto.kuksa.val.v2 import val_pb2 as v2
from sdv._proto.kuksa.val.v2.val_pb2_grpc import VALStub as V2Stub
from sdv.api.server import SdvServer
from sdv.broker import Broker, HalBridge
from sdv.broker.access import UNRESTRICTED
from sdv.errors import AlreadyProvidedError
from sdv.hal.runtime import Hal
from sdv.hal.vehicle import VehicleDefinition
from sdv.vss import load_catalogue
from tests.vss_files import RELEASES, vss_release


def leaves(tree: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    for name, node in tree.items():
        path = f"{prefix}.{name}" if prefix else name
        if node["type"] == "branch":
            yield from leaves(node.get("children", {}), path)
        else:
            yield path, node


def _v2_value(value: t2.Value) -> Any:
    member = value.WhichOneof("typed_value")
    if member is None:
        return None
    found = getattr(value, member)
    return list(found.values) if member.endswith("_array") else found


def _close(expected: Any, served: Any) -> bool:
    if isinstance(expected, float) or isinstance(served, float):
        return abs(float(expected) - float(served)) <= 1e-6 * max(1.0, abs(float(expected)))
    return bool(expected == served)


def _enum(datatype: str) -> str:
    base = datatype.removesuffix("[]").upper()
    return f"DATA_TYPE_{base}_ARRAY" if datatype.endswith("[]") else f"DATA_TYPE_{base}"


@pytest.mark.parametrize("release", RELEASES)
async def test_every_leaf_is_served_with_the_metadata_of_the_json(release: str) -> None:
    source = vss_release(release)
    expected = dict(leaves(json.loads(source.read_text())))
    broker = Broker.from_catalogue(load_catalogue([source]))
    async with SdvServer(broker, port=0) as server, grpc.aio.insecure_channel(server.target) as channel:
        listed = await V2Stub(channel).ListMetadata(v2.ListMetadataRequest(root="Vehicle"))
        got_v1 = await V1Stub(channel).Get(
            v1.GetRequest(entries=[v1.EntryRequest(path="Vehicle", view=t1.VIEW_METADATA)])
        )
    served = {meta.path: meta for meta in listed.metadata}
    served_v1 = {entry.path: entry.metadata for entry in got_v1.entries}
    assert set(served) == set(expected) == set(served_v1)
    assert len({meta.id for meta in served.values()}) == len(expected)  # a distinct id for every leaf
    mismatches = []
    for path, node in expected.items():
        meta, meta_v1 = served[path], served_v1[path]
        rows = [
            ("type", node["type"], t2.EntryType.Name(meta.entry_type).removeprefix("ENTRY_TYPE_").lower()),
            ("datatype", _enum(node["datatype"]), t2.DataType.Name(meta.data_type)),
            ("datatype v1", _enum(node["datatype"]), t1.DataType.Name(meta_v1.data_type)),
            ("description", node["description"], meta.description),
            ("description v1", node["description"], meta_v1.description),
            ("unit", node.get("unit", ""), meta.unit),
            ("unit v1", node.get("unit", ""), meta_v1.unit),
            ("comment", node.get("comment", ""), meta.comment),
            ("comment v1", node.get("comment", ""), meta_v1.comment),
            ("deprecation", node.get("deprecation", ""), meta.deprecation),
            ("deprecation v1", node.get("deprecation", ""), meta_v1.deprecation),
            ("allowed", node.get("allowed"), _v2_value(meta.allowed_values)),
            ("min", node.get("min"), _v2_value(meta.min)),
            ("max", node.get("max"), _v2_value(meta.max)),
        ]
        for field, want, got in rows:
            same = want is None and got is None
            if want is not None and got is not None:
                same = _close(want, got) if not isinstance(want, list) else want == got
            if not same:
                mismatches.append((path, field, want, got))
        restriction = meta_v1.value_restriction
        kind = restriction.WhichOneof("type")
        if (
            "allowed" in node
            and kind is not None
            and list(getattr(restriction, kind).allowed_values) != node["allowed"]
        ):
            mismatches.append((path, "allowed v1", node["allowed"], getattr(restriction, kind)))
    assert mismatches == []


async def test_defaults_are_the_values_from_the_start() -> None:
    broker = Broker.from_catalogue(load_catalogue([vss_release("4.0")]))
    assert broker.get("Vehicle.Cabin.DoorCount", access=UNRESTRICTED).value == 4
    assert broker.get("Vehicle.Cabin.SeatPosCount", access=UNRESTRICTED).value == (2, 3)
    assert broker.get("Vehicle.Speed", access=UNRESTRICTED).value is None


def test_with_a_profile_the_hal_keeps_its_signals_and_the_catalogue_adds_the_others(
    demo_vehicle: VehicleDefinition, tmp_path: Path
) -> None:
    bridge = HalBridge(Hal(demo_vehicle), catalogue=load_catalogue([vss_release("4.0")]))
    broker = bridge.broker
    bridge.start()
    try:
        with pytest.raises(AlreadyProvidedError, match=r"Vehicle\.Speed is already provided by the HAL"):
            broker.publish_value("Vehicle.Speed", 10.0, access=UNRESTRICTED)
        lacking = "Vehicle.Cabin.Door.Row2.PassengerSide.IsChildLockActive"
        assert lacking not in demo_vehicle.signals
        broker.publish_value(
            lacking, True, access=UNRESTRICTED
        )  # a VSS signal the profile lacks: open to any provider
        assert broker.get(lacking, access=UNRESTRICTED).value is True
        ids = [meta.id for meta in broker.list_metadata(access=UNRESTRICTED)]
        assert len(ids) == len(set(ids))
        profile_ids = [broker.metadata(path, access=UNRESTRICTED).id for path in demo_vehicle.signals]
        assert profile_ids == list(range(1, len(profile_ids) + 1))  # the profile's signals keep their ids
    finally:
        bridge.stop()
