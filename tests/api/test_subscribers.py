"""Subscribers over real gRPC: slow and vanishing clients never hold back the others."""

from __future__ import annotations

import asyncio

import grpc

from sdv._proto.kuksa.val.v2 import val_pb2 as v
from sdv._proto.kuksa.val.v2.val_pb2_grpc import VALStub
from sdv.api.server import SdvServer
from sdv.broker import Broker
from sdv.broker.access import UNRESTRICTED

from ..waiting import wait_until_async

PATHS = ["Vehicle.Speed", "Vehicle.Chassis.SteeringWheel.Angle", "Vehicle.Acceleration.Longitudinal"]


async def test_slow_and_vanishing_subscribers_do_not_stop_a_good_one(
    server: SdvServer, broker: Broker
) -> None:
    target = f"127.0.0.1:{server.port}"
    baseline = broker.subscription_count
    async with (
        grpc.aio.insecure_channel(target) as good_channel,
        grpc.aio.insecure_channel(target) as slow_channel,
    ):
        # A subscriber that never reads after its first response.
        slow_call = VALStub(slow_channel).Subscribe(v.SubscribeRequest(signal_paths=PATHS))
        await slow_call.read()
        # Ten subscribers that vanish mid-stream: their channels are closed under them.
        for _ in range(10):
            channel = grpc.aio.insecure_channel(target)
            call = VALStub(channel).Subscribe(v.SubscribeRequest(signal_paths=PATHS))
            await call.read()
            await channel.close(grace=None)
        everything = [meta.path for meta in broker.list_metadata("Vehicle", access=UNRESTRICTED)]
        good = VALStub(good_channel).Subscribe(v.SubscribeRequest(signal_paths=everything))
        responses = 0
        async with asyncio.timeout(10):
            async for response in good:
                assert response.entries
                responses += 1
                if responses >= 20:
                    break
        good.cancel()
        assert responses >= 20  # the demo drive keeps arriving while others misbehave
        # The slow subscriber's backlog is the latest value per signal, never more.
        slow_subscriptions = [s for s in list(broker._subscriptions) if s.paths == tuple(PATHS)]
        assert slow_subscriptions
        assert all(len(s._pending) <= len(PATHS) for s in slow_subscriptions)
        slow_call.cancel()

    # Every stream's subscription is released once its client is gone.
    async def released() -> bool:
        return broker.subscription_count <= baseline

    await wait_until_async(released, what=f"the server to hold no more than {baseline} subscriptions")
    assert broker.subscription_count == baseline
