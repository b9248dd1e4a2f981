"""Every RPC of every service over a real server on 127.0.0.1 that checks tokens.

Each RPC is refused without a token and with each forged or wrong token (``UNAUTHENTICATED``), refused with a
valid token whose scope covers another path (``PERMISSION_DENIED``), and passes authorization with the right
scope. Health checking needs no token.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from sdv._proto.kuksa.val.v1 import types_pb2 as v1_types
from sdv._proto.kuksa.val.v1 import val_pb2 as v1
from sdv._proto.kuksa.val.v2 import types_pb2 as v2_types
from sdv._proto.kuksa.val.v2 import val_pb2 as v2
from sdv._proto.sdv.adas.v1 import adas_pb2, adas_pb2_grpc
from sdv._proto.sdv.cockpit.v1 import cockpit_pb2, cockpit_pb2_grpc
from tests.security.conftest import SPEED, Metadata, Stubs, Tokens, bearer

LOW_BEAM = "Vehicle.Body.Lights.Beam.Low.IsOn"
OTHER = "read:Vehicle.Cabin actuate:Vehicle.Cabin provide:Vehicle.Cabin"


Call = Callable[[Stubs, Metadata], Awaitable[Any]]


async def _first(stream: Any) -> Any:
    async for response in stream:
        return response
    return None


def _speed(stubs: Stubs) -> v2_types.SignalID:
    return v2_types.SignalID(path=SPEED)


def _low_beam_actuation() -> v2.ActuateRequest:
    return v2.ActuateRequest(signal_id=v2_types.SignalID(path=LOW_BEAM), value=v2_types.Value(bool=True))


async def _actuate_stream(stubs: Stubs, md: Metadata) -> Any:
    async def requests() -> AsyncIterator[v2.ActuateRequest]:
        yield _low_beam_actuation()

    return await stubs.v2.ActuateStream(requests(), metadata=md)


async def _provide(stubs: Stubs, md: Metadata) -> Any:
    # Written by hand rather than from a request iterator: gRPC's iterator consumer turns a write that races
    # with the server's refusal into a local cancellation, which would hide the status.
    call = stubs.v2.OpenProviderStream(metadata=md)
    request = v2.OpenProviderStreamRequest(
        provide_signal_request=v2.ProvideSignalRequest(
            signals_sample_intervals={stubs.speed_id: v2_types.SampleInterval(interval_ms=0)}
        )
    )
    try:
        with contextlib.suppress(asyncio.InvalidStateError, grpc.aio.AioRpcError):
            await call.write(request)
        return await call.read()
    finally:
        call.cancel()


def _v1_target() -> v1.SetRequest:
    entry = v1_types.DataEntry(path=LOW_BEAM, actuator_target=v1_types.Datapoint(bool=True))
    return v1.SetRequest(updates=[v1.EntryUpdate(entry=entry, fields=[v1_types.FIELD_ACTUATOR_TARGET])])


async def _reflection(stubs: Stubs, md: Metadata) -> Any:
    async def requests() -> AsyncIterator[reflection_pb2.ServerReflectionRequest]:
        yield reflection_pb2.ServerReflectionRequest(list_services="")

    stub = reflection_pb2_grpc.ServerReflectionStub(stubs.channel)
    return await _first(stub.ServerReflectionInfo(requests(), metadata=md))


# name, call, the scope it needs, whether it names a signal (a scope for another path is refused)
RPCS: list[tuple[str, Call, str, bool]] = [
    (
        "v2 GetServerInfo",
        lambda s, md: s.v2.GetServerInfo(v2.GetServerInfoRequest(), metadata=md),
        "read:X",
        False,
    ),
    (
        "v2 GetValue",
        lambda s, md: s.v2.GetValue(v2.GetValueRequest(signal_id=_speed(s)), metadata=md),
        f"read:{SPEED}",
        True,
    ),
    (
        "v2 GetValues",
        lambda s, md: s.v2.GetValues(v2.GetValuesRequest(signal_ids=[_speed(s)]), metadata=md),
        f"read:{SPEED}",
        True,
    ),
    (
        "v2 ListMetadata",
        lambda s, md: s.v2.ListMetadata(v2.ListMetadataRequest(root=SPEED), metadata=md),
        f"read:{SPEED}",
        True,
    ),
    (
        "v2 Subscribe",
        lambda s, md: _first(s.v2.Subscribe(v2.SubscribeRequest(signal_paths=[SPEED]), metadata=md)),
        f"read:{SPEED}",
        True,
    ),
    (
        "v2 SubscribeById",
        lambda s, md: _first(
            s.v2.SubscribeById(v2.SubscribeByIdRequest(signal_ids=[s.speed_id]), metadata=md)
        ),
        f"read:{SPEED}",
        True,
    ),
    (
        "v2 Actuate",
        lambda s, md: s.v2.Actuate(_low_beam_actuation(), metadata=md),
        "actuate:Vehicle.Body.Lights",
        True,
    ),
    ("v2 ActuateStream", _actuate_stream, "actuate:Vehicle.Body.Lights", True),
    (
        "v2 BatchActuate",
        lambda s, md: s.v2.BatchActuate(
            v2.BatchActuateRequest(actuate_requests=[_low_beam_actuation()]), metadata=md
        ),
        "actuate:Vehicle.Body.Lights",
        True,
    ),
    (
        "v2 PublishValue",
        lambda s, md: s.v2.PublishValue(
            v2.PublishValueRequest(
                signal_id=_speed(s), data_point=v2_types.Datapoint(value=v2_types.Value(float=1.0))
            ),
            metadata=md,
        ),
        f"provide:{SPEED}",
        True,
    ),
    ("v2 OpenProviderStream", _provide, f"provide:{SPEED}", True),
    (
        "v1 GetServerInfo",
        lambda s, md: s.v1.GetServerInfo(v1.GetServerInfoRequest(), metadata=md),
        "read:X",
        False,
    ),
    (
        "v1 Get",
        lambda s, md: s.v1.Get(
            v1.GetRequest(entries=[v1.EntryRequest(path=SPEED, view=v1_types.VIEW_ALL)]), metadata=md
        ),
        f"read:{SPEED}",
        True,
    ),
    ("v1 Set", lambda s, md: s.v1.Set(_v1_target(), metadata=md), "actuate:Vehicle.Body.Lights", True),
    (
        "v1 Subscribe",
        lambda s, md: _first(
            s.v1.Subscribe(
                v1.SubscribeRequest(
                    entries=[
                        v1.SubscribeEntry(
                            path=SPEED, view=v1_types.VIEW_CURRENT_VALUE, fields=[v1_types.FIELD_VALUE]
                        )
                    ]
                ),
                metadata=md,
            )
        ),
        f"read:{SPEED}",
        True,
    ),
    (
        "cockpit GetClusterState",
        lambda s, md: cockpit_pb2_grpc.CockpitStub(s.channel).GetClusterState(
            cockpit_pb2.GetClusterStateRequest(), metadata=md
        ),
        "read:Vehicle",
        True,
    ),
    (
        "cockpit StreamClusterState",
        lambda s, md: _first(
            cockpit_pb2_grpc.CockpitStub(s.channel).StreamClusterState(
                cockpit_pb2.StreamClusterStateRequest(), metadata=md
            )
        ),
        "read:Vehicle",
        True,
    ),
    (
        "cockpit SetLowBeam",
        lambda s, md: cockpit_pb2_grpc.CockpitStub(s.channel).SetLowBeam(
            cockpit_pb2.SetLowBeamRequest(on=True), metadata=md
        ),
        "actuate:Vehicle.Body.Lights",
        True,
    ),
    (
        "adas GetDynamics",
        lambda s, md: adas_pb2_grpc.AdasStub(s.channel).GetDynamics(
            adas_pb2.GetDynamicsRequest(), metadata=md
        ),
        "read:Vehicle",
        True,
    ),
    (
        "adas StreamDynamics",
        lambda s, md: _first(
            adas_pb2_grpc.AdasStub(s.channel).StreamDynamics(adas_pb2.StreamDynamicsRequest(), metadata=md)
        ),
        "read:Vehicle",
        True,
    ),
    ("reflection", _reflection, "read:X", False),
]
IDS = [name for name, *_ in RPCS]


async def _status(call: Call, stubs: Stubs, metadata: Metadata) -> grpc.StatusCode:
    try:
        await call(stubs, metadata)
    except grpc.aio.AioRpcError as error:
        return error.code()
    return grpc.StatusCode.OK


@pytest.mark.parametrize(("name", "call", "scope", "names_signal"), RPCS, ids=IDS)
async def test_refused_without_a_valid_token(
    stubs: Stubs, tokens: Tokens, name: str, call: Call, scope: str, names_signal: bool
) -> None:
    refusals = {
        attack: await _status(call, stubs, bearer(token)) for attack, token in tokens.attacks(scope).items()
    }
    assert refusals == dict.fromkeys(refusals, grpc.StatusCode.UNAUTHENTICATED)


@pytest.mark.parametrize(
    ("name", "call", "scope", "names_signal"),
    [rpc for rpc in RPCS if rpc[3]],
    ids=[r[0] for r in RPCS if r[3]],
)
async def test_refused_with_a_scope_for_another_path(
    stubs: Stubs, tokens: Tokens, name: str, call: Call, scope: str, names_signal: bool
) -> None:
    assert await _status(call, stubs, bearer(tokens.valid(OTHER))) == grpc.StatusCode.PERMISSION_DENIED


# What the right scope leads to once authorized: the HAL owns Vehicle.Speed, so publishing it is ALREADY_EXISTS.
AUTHORIZED_OUTCOME = {
    "v2 PublishValue": grpc.StatusCode.ALREADY_EXISTS,
    "v2 OpenProviderStream": grpc.StatusCode.ALREADY_EXISTS,
}


@pytest.mark.parametrize(("name", "call", "scope", "names_signal"), RPCS, ids=IDS)
async def test_accepted_with_the_right_scope(
    stubs: Stubs, tokens: Tokens, name: str, call: Call, scope: str, names_signal: bool
) -> None:
    expected = AUTHORIZED_OUTCOME.get(name, grpc.StatusCode.OK)
    assert await _status(call, stubs, bearer(tokens.valid(scope))) == expected


async def test_refusals_say_what_was_wrong(stubs: Stubs, tokens: Tokens) -> None:
    request = v2.GetValueRequest(signal_id=v2_types.SignalID(path=SPEED))
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await stubs.v2.GetValue(request)
    assert "requires a bearer token" in (missing.value.details() or "")
    with pytest.raises(grpc.aio.AioRpcError) as expired:
        await stubs.v2.GetValue(request, metadata=bearer(tokens.attacks("read")["expired"]))
    assert "expired" in (expired.value.details() or "")
    with pytest.raises(grpc.aio.AioRpcError) as denied:
        await stubs.v2.GetValue(request, metadata=bearer(tokens.valid("read:Vehicle.Cabin")))
    assert "app is not allowed to read Vehicle.Speed" in (denied.value.details() or "")


async def test_list_metadata_shows_only_what_the_caller_may_read(stubs: Stubs, tokens: Tokens) -> None:
    response = await stubs.v2.ListMetadata(
        v2.ListMetadataRequest(root=""),
        metadata=bearer(tokens.valid("read:Vehicle.Speed actuate:Vehicle.Body")),
    )
    paths = {meta.path for meta in response.metadata}
    assert SPEED in paths and LOW_BEAM in paths
    assert all(path == SPEED or path.startswith("Vehicle.Body.") for path in paths)


async def test_unknown_paths_are_not_revealed_to_a_caller_who_may_not_read_them(
    stubs: Stubs, tokens: Tokens
) -> None:
    md = bearer(tokens.valid("read:Vehicle.Cabin"))
    request = v2.GetValueRequest(signal_id=v2_types.SignalID(path="Vehicle.NoSuchSignal"))
    assert (
        await _status(lambda s, m: s.v2.GetValue(request, metadata=m), stubs, md)
        == grpc.StatusCode.PERMISSION_DENIED
    )


async def test_health_needs_no_token(stubs: Stubs) -> None:
    response = await health_pb2_grpc.HealthStub(stubs.channel).Check(
        health_pb2.HealthCheckRequest(service="")
    )
    assert response.status == health_pb2.HealthCheckResponse.SERVING


@pytest.mark.slow
async def test_a_stream_ends_when_its_token_expires(stubs: Stubs, tokens: Tokens) -> None:
    from sdv.api.tokens import create_token

    token = create_token(tokens.key, f"read:{SPEED}", ttl_s=2)
    stream = stubs.v2.Subscribe(v2.SubscribeRequest(signal_paths=[SPEED]), metadata=bearer(token))
    with pytest.raises(grpc.aio.AioRpcError) as ended:
        async for _ in stream:
            pass
    assert ended.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "expired" in (ended.value.details() or "")


@pytest.mark.parametrize(
    ("name", "call"),
    [(name, call) for name, call, scope, _ in RPCS if scope.startswith(("actuate", "provide"))],
)
async def test_reading_rights_do_not_actuate_or_provide(
    stubs: Stubs, tokens: Tokens, name: str, call: Call
) -> None:
    assert await _status(call, stubs, bearer(tokens.valid("read"))) == grpc.StatusCode.PERMISSION_DENIED


async def test_a_scope_read_two_ways_is_refused_not_widened(stubs: Stubs, tokens: Tokens) -> None:
    import jwt

    from tests.security.conftest import claims

    token = jwt.encode(claims("read:Vehicle.Cabin\u00a0read"), tokens.key, algorithm="EdDSA")  # type: ignore[arg-type]
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stubs.v2.GetValue(v2.GetValueRequest(signal_id=_speed(stubs)), metadata=bearer(token))
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "U+00A0 at position 18" in (refused.value.details() or "")


@pytest.mark.parametrize("name", ["crit unknown", "exp huge", "iat negative", "nbf bool"])
async def test_hostile_tokens_end_unauthenticated_with_a_reason(
    stubs: Stubs, tokens: Tokens, name: str
) -> None:
    from tests.security.test_tokens import HOSTILE_REASONS, hostile_tokens

    token = hostile_tokens(tokens.key)[name]
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stubs.v2.GetValue(v2.GetValueRequest(signal_id=_speed(stubs)), metadata=bearer(token))
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert re.search(HOSTILE_REASONS[name], refused.value.details() or "")
