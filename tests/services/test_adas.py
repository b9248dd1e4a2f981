"""``sdv.adas.v1.Adas`` end to end, including staleness when the replay stops and recovery when it resumes."""

from __future__ import annotations

import asyncio
import math
import time

import grpc

from sdv._proto.sdv.adas.v1 import adas_pb2 as a
from sdv._proto.sdv.adas.v1 import adas_pb2_grpc
from sdv.hal.sources import RecordingSource
from sdv.services import ADAS_FIELDS

from ..waiting import wait_until_async

FRESHNESS_SLACK = 0.5
"""Seconds within which every field turns stale: 3 × the slowest ADAS cycle time (20 ms), plus scheduling."""


def _validities(dynamics: a.VehicleDynamics) -> dict[str, int]:
    return {name: getattr(dynamics, name).validity for name in ADAS_FIELDS}


async def _until(
    stream: grpc.aio.UnaryStreamCall[a.StreamDynamicsRequest, a.VehicleDynamics],
    validity: int,
    seconds: float,
) -> a.VehicleDynamics | None:
    """The first streamed message in which every field has ``validity``, or None after ``seconds``."""
    deadline = time.monotonic() + seconds
    while (remaining := deadline - time.monotonic()) > 0:
        try:
            dynamics = await asyncio.wait_for(stream.read(), remaining)
        except TimeoutError:
            return None
        assert isinstance(dynamics, a.VehicleDynamics)
        if set(_validities(dynamics).values()) == {validity}:
            return dynamics
    return None


def _assert_valid_and_recent(dynamics: a.VehicleDynamics) -> None:
    now = time.time()
    for name in ADAS_FIELDS:
        field = getattr(dynamics, name)
        assert field.validity == a.VALID, name
        assert not math.isnan(field.value), name
        assert abs(field.timestamp.ToMicroseconds() / 1e6 - now) < 1.0, name


async def test_the_snapshot_is_valid_and_recent(adas: adas_pb2_grpc.AdasStub) -> None:
    async def valid() -> a.VehicleDynamics | None:
        dynamics = await adas.GetDynamics(a.GetDynamicsRequest())
        return dynamics if set(_validities(dynamics).values()) == {a.VALID} else None

    # the slowest ADAS message (Pedals, DriverAssist) arrives every 20 ms
    dynamics = await wait_until_async(valid, what="a snapshot with every field valid")
    _assert_valid_and_recent(dynamics)
    assert dynamics.brake_pressed.value in (0.0, 1.0)


async def test_the_stream_is_valid_recent_and_moving(adas: adas_pb2_grpc.AdasStub) -> None:
    stream = adas.StreamDynamics(a.StreamDynamicsRequest(max_rate_hz=20))
    try:
        first = await _until(stream, a.VALID, 2.0)
        assert first is not None
        _assert_valid_and_recent(first)
        later = await _until(stream, a.VALID, 2.0)
        assert later is not None
        assert later.speed.timestamp.ToMicroseconds() > first.speed.timestamp.ToMicroseconds()
    finally:
        stream.cancel()


async def test_every_field_turns_stale_when_the_bus_goes_silent_and_valid_when_it_comes_back(
    adas: adas_pb2_grpc.AdasStub, replay: RecordingSource
) -> None:
    stream = adas.StreamDynamics(a.StreamDynamicsRequest(max_rate_hz=0))
    try:
        assert await _until(stream, a.VALID, 2.0) is not None
        replay.pause()
        paused = time.monotonic()
        stale = await _until(stream, a.STALE, FRESHNESS_SLACK)
        assert stale is not None, f"not every field stale {FRESHNESS_SLACK} s after the bus went silent"
        assert time.monotonic() - paused <= FRESHNESS_SLACK
        # A stale measurement keeps the last value, for display; its validity says not to use it.
        assert not math.isnan(stale.speed.value)
        snapshot = await adas.GetDynamics(a.GetDynamicsRequest())
        assert set(_validities(snapshot).values()) == {a.STALE}
        replay.resume()
        valid = await _until(stream, a.VALID, FRESHNESS_SLACK)
        assert valid is not None, f"not every field valid {FRESHNESS_SLACK} s after the bus came back"
        _assert_valid_and_recent(valid)
    finally:
        replay.resume()
        stream.cancel()


async def test_the_stream_honours_max_rate_hz(adas: adas_pb2_grpc.AdasStub) -> None:
    stream = adas.StreamDynamics(a.StreamDynamicsRequest(max_rate_hz=10))
    received = 0
    deadline = time.monotonic() + 1.0
    try:
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                await asyncio.wait_for(stream.read(), remaining)
            except TimeoutError:
                break
            received += 1
    finally:
        stream.cancel()
    # The dynamics change every 10 ms; at 10 Hz one second holds the first message and at most 10 more.
    assert 5 <= received <= 11, received
