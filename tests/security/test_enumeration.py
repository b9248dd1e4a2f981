"""Refusals that reveal nothing, over a real server on 127.0.0.1 that checks tokens.

A caller allowed only ``read:Vehicle.Speed`` asks every RPC about a signal it may not read, by numeric id and by
path, and about one that does not exist: both answers must be the same status with the same message (the name
or id the caller gave aside), and an answer about an id never names the signal's path. Walking the ids, or the
branches, lists nothing the caller may not read.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
import pytest

from sdv._proto.kuksa.val.v1 import types_pb2 as v1_types
from sdv._proto.kuksa.val.v1 import val_pb2 as v1
from sdv._proto.kuksa.val.v2 import types_pb2 as v2_types
from sdv._proto.kuksa.val.v2 import val_pb2 as v2
from sdv._proto.sdv.adas.v1 import adas_pb2, adas_pb2_grpc
from sdv._proto.sdv.cockpit.v1 import cockpit_pb2, cockpit_pb2_grpc
from sdv.broker.access import UNRESTRICTED
from tests.security.conftest import SPEED, Stubs, Tokens, bearer

SCOPE = f"read:{SPEED}"
FORBIDDEN = "Vehicle.Body.Lights.Beam.Low.IsOn"  # exists, an actuator the HAL provides
UNKNOWN = "Vehicle.Body.Lights.Beam.Low.NoSuchSignal"
FORBIDDEN_BRANCH = "Vehicle.Body.Lights"
UNKNOWN_BRANCH = "Vehicle.Body.NoSuchBranch"
UNKNOWN_ID = 987_654


@dataclass(frozen=True)
class Target:
    """What a request names: a path, or a numeric signal id."""

    path: str | None = None
    id: int | None = None

    @property
    def text(self) -> str:
        return self.path if self.path is not None else str(self.id)

    def v2(self) -> v2_types.SignalID:
        if self.path is not None:
            return v2_types.SignalID(path=self.path)
        return v2_types.SignalID(id=self.id)


Call = Callable[[Stubs, Target, tuple[tuple[str, str], ...]], Awaitable[Any]]


async def _first(stream: Any) -> Any:
    async for response in stream:
        return response
    return None


async def _provider(
    stubs: Stubs, md: tuple[tuple[str, str], ...], request: v2.OpenProviderStreamRequest
) -> Any:
    call = stubs.v2.OpenProviderStream(metadata=md)
    try:
        with contextlib.suppress(asyncio.InvalidStateError, grpc.aio.AioRpcError):
            await call.write(request)
        return await asyncio.wait_for(call.read(), 10)
    finally:
        call.cancel()


def _actuate(target: Target) -> v2.ActuateRequest:
    return v2.ActuateRequest(signal_id=target.v2(), value=v2_types.Value(bool=True))


async def _actuate_stream(stubs: Stubs, target: Target, md: tuple[tuple[str, str], ...]) -> Any:
    async def requests() -> AsyncIterator[v2.ActuateRequest]:
        yield _actuate(target)

    return await stubs.v2.ActuateStream(requests(), metadata=md)


def _v1_set(target: Target) -> v1.SetRequest:
    entry = v1_types.DataEntry(path=target.path, actuator_target=v1_types.Datapoint(bool=True))
    return v1.SetRequest(updates=[v1.EntryUpdate(entry=entry, fields=[v1_types.FIELD_ACTUATOR_TARGET])])


def _v1_subscribe(target: Target) -> v1.SubscribeRequest:
    entry = v1.SubscribeEntry(
        path=target.path, view=v1_types.VIEW_CURRENT_VALUE, fields=[v1_types.FIELD_VALUE]
    )
    return v1.SubscribeRequest(entries=[entry])


def _publish_values(target: Target) -> v2.OpenProviderStreamRequest:
    assert target.id is not None
    datapoint = v2_types.Datapoint(value=v2_types.Value(bool=True))
    return v2.OpenProviderStreamRequest(
        publish_values_request=v2.PublishValuesRequest(request_id=1, data_points={target.id: datapoint})
    )


CALLS: dict[str, Call] = {
    "v2 GetValue": lambda s, t, md: s.v2.GetValue(v2.GetValueRequest(signal_id=t.v2()), metadata=md),
    "v2 GetValues": lambda s, t, md: s.v2.GetValues(
        v2.GetValuesRequest(signal_ids=[v2_types.SignalID(path=SPEED), t.v2()]), metadata=md
    ),
    "v2 Subscribe": lambda s, t, md: _first(
        s.v2.Subscribe(v2.SubscribeRequest(signal_paths=[t.text]), metadata=md)
    ),
    "v2 SubscribeById": lambda s, t, md: _first(
        s.v2.SubscribeById(v2.SubscribeByIdRequest(signal_ids=[t.id or 0]), metadata=md)
    ),
    "v2 ListMetadata": lambda s, t, md: s.v2.ListMetadata(v2.ListMetadataRequest(root=t.text), metadata=md),
    "v2 Actuate": lambda s, t, md: s.v2.Actuate(_actuate(t), metadata=md),
    "v2 ActuateStream": _actuate_stream,
    "v2 BatchActuate": lambda s, t, md: s.v2.BatchActuate(
        v2.BatchActuateRequest(actuate_requests=[_actuate(t)]), metadata=md
    ),
    "v2 PublishValue": lambda s, t, md: s.v2.PublishValue(
        v2.PublishValueRequest(
            signal_id=t.v2(), data_point=v2_types.Datapoint(value=v2_types.Value(bool=True))
        ),
        metadata=md,
    ),
    "v2 OpenProviderStream provide actuation": lambda s, t, md: _provider(
        s,
        md,
        v2.OpenProviderStreamRequest(
            provide_actuation_request=v2.ProvideActuationRequest(actuator_identifiers=[t.v2()])
        ),
    ),
    "v2 OpenProviderStream provide signal": lambda s, t, md: _provider(
        s,
        md,
        v2.OpenProviderStreamRequest(
            provide_signal_request=v2.ProvideSignalRequest(
                signals_sample_intervals={t.id or 0: v2_types.SampleInterval(interval_ms=0)}
            )
        ),
    ),
    "v2 OpenProviderStream publish values": lambda s, t, md: _provider(s, md, _publish_values(t)),
    "v1 Get": lambda s, t, md: s.v1.Get(
        v1.GetRequest(entries=[v1.EntryRequest(path=t.text, view=v1_types.VIEW_ALL)]), metadata=md
    ),
    "v1 Set": lambda s, t, md: s.v1.Set(_v1_set(t), metadata=md),
    "v1 Subscribe": lambda s, t, md: _first(s.v1.Subscribe(_v1_subscribe(t), metadata=md)),
}

BY_PATH = [
    "v2 GetValue",
    "v2 GetValues",
    "v2 Subscribe",
    "v2 ListMetadata",
    "v2 Actuate",
    "v2 ActuateStream",
    "v2 BatchActuate",
    "v2 PublishValue",
    "v2 OpenProviderStream provide actuation",
    "v1 Get",
    "v1 Set",
    "v1 Subscribe",
]
BY_ID = [
    "v2 GetValue",
    "v2 GetValues",
    "v2 SubscribeById",
    "v2 Actuate",
    "v2 ActuateStream",
    "v2 BatchActuate",
    "v2 PublishValue",
    "v2 OpenProviderStream provide actuation",
    "v2 OpenProviderStream provide signal",
    "v2 OpenProviderStream publish values",
]
BY_BRANCH = ["v2 ListMetadata", "v1 Get", "v1 Subscribe"]


async def _answer(
    call: Call, stubs: Stubs, target: Target, md: tuple[tuple[str, str], ...]
) -> tuple[str, str]:
    """The status and message of a call, with the name or id the caller gave replaced by ``<target>``."""
    try:
        response = await call(stubs, target, md)
    except grpc.aio.AioRpcError as error:
        code, text = error.code().name, error.details() or ""
    else:
        code, text = "OK", str(response)
    return code, text.replace(target.text, "<target>")


async def _compare(stubs: Stubs, tokens: Tokens, call: Call, forbidden: Target, unknown: Target) -> None:
    md = bearer(tokens.valid(SCOPE))
    refused = await _answer(call, stubs, forbidden, md)
    missing = await _answer(call, stubs, unknown, md)
    assert refused == missing
    assert refused[0] != "OK" or "PERMISSION_DENIED" in refused[1]  # publish values answers per id
    assert FORBIDDEN_BRANCH not in refused[1]


@pytest.mark.parametrize("name", BY_PATH)
async def test_a_forbidden_path_looks_like_an_unknown_one(stubs: Stubs, tokens: Tokens, name: str) -> None:
    await _compare(stubs, tokens, CALLS[name], Target(path=FORBIDDEN), Target(path=UNKNOWN))


@pytest.mark.parametrize("name", BY_ID)
async def test_a_forbidden_id_looks_like_an_unknown_one(
    stubs: Stubs, tokens: Tokens, bridge_ids: dict[str, int], name: str
) -> None:
    await _compare(stubs, tokens, CALLS[name], Target(id=bridge_ids[FORBIDDEN]), Target(id=UNKNOWN_ID))


@pytest.mark.parametrize("name", BY_BRANCH)
async def test_a_forbidden_branch_looks_like_an_unknown_one(stubs: Stubs, tokens: Tokens, name: str) -> None:
    await _compare(stubs, tokens, CALLS[name], Target(path=FORBIDDEN_BRANCH), Target(path=UNKNOWN_BRANCH))


@pytest.fixture
def bridge_ids(stubs: Stubs, bridge: Any) -> dict[str, int]:
    return {FORBIDDEN: bridge.broker.metadata(FORBIDDEN, access=UNRESTRICTED).id}


async def test_an_unknown_signal_the_caller_could_read_is_not_found(stubs: Stubs, tokens: Tokens) -> None:
    md = bearer(tokens.valid("read:Vehicle.Body"))
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await stubs.v2.GetValue(v2.GetValueRequest(signal_id=v2_types.SignalID(path=UNKNOWN)), metadata=md)
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND


TYPED = [
    (
        "cockpit GetClusterState",
        lambda s, md: cockpit_pb2_grpc.CockpitStub(s.channel).GetClusterState(
            cockpit_pb2.GetClusterStateRequest(), metadata=md
        ),
    ),
    (
        "cockpit StreamClusterState",
        lambda s, md: _first(
            cockpit_pb2_grpc.CockpitStub(s.channel).StreamClusterState(
                cockpit_pb2.StreamClusterStateRequest(), metadata=md
            )
        ),
    ),
    (
        "cockpit SetLowBeam",
        lambda s, md: cockpit_pb2_grpc.CockpitStub(s.channel).SetLowBeam(
            cockpit_pb2.SetLowBeamRequest(on=True), metadata=md
        ),
    ),
    (
        "adas GetDynamics",
        lambda s, md: adas_pb2_grpc.AdasStub(s.channel).GetDynamics(
            adas_pb2.GetDynamicsRequest(), metadata=md
        ),
    ),
    (
        "adas StreamDynamics",
        lambda s, md: _first(
            adas_pb2_grpc.AdasStub(s.channel).StreamDynamics(adas_pb2.StreamDynamicsRequest(), metadata=md)
        ),
    ),
]


@pytest.mark.parametrize(("name", "call"), TYPED, ids=[name for name, _ in TYPED])
async def test_a_typed_service_refusal_names_the_rpc_not_the_profiles_signals(
    stubs: Stubs, tokens: Tokens, name: str, call: Callable[[Stubs, Any], Awaitable[Any]]
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call(stubs, bearer(tokens.valid(SCOPE)))
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    details = (refused.value.details() or "").replace(f"(scope: {SCOPE})", "")
    service, rpc = name.split()
    assert f"app is not allowed to use sdv.{service}.v1.{service.capitalize()}/{rpc}" in details
    assert "Vehicle." not in details
