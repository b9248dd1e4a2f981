"""A VISS subscription against a real broker: one notification in flight per subscription, the next one carrying the
latest values, and each datapoint encoded once for every subscription that sends it."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from sdv.broker import Broker
from sdv.broker.access import UNRESTRICTED
from sdv.hal.processor import SignalUpdate, Status
from sdv.types.signals import SignalMetadata
from sdv.viss.messages import EncodedDatapoints
from sdv.viss.subscriptions import SubscriptionPump

PATHS = ("Bench.A", "Bench.B")


class Written(asyncio.Future[None]):
    """Done once the message is written; counts who waits for that."""

    def __init__(self, client: Client) -> None:
        super().__init__()
        self._client = client

    def __await__(self) -> Any:
        self._client.waiting += 1
        self._client.changed.set()
        return super().__await__()


class Client:
    """A client's send queue whose messages are written only when the test says so."""

    def __init__(self) -> None:
        self.queued: list[tuple[dict[str, Any], Written]] = []
        self.waiting = 0  # how many times the pump waited for a message to be written
        self.changed = asyncio.Event()

    async def send(self, message: dict[str, Any] | str) -> asyncio.Future[None]:
        written = Written(self)
        self.queued.append((json.loads(message) if isinstance(message, str) else message, written))
        self.changed.set()
        return written

    async def wait_until(self, messages: int, waiting: int) -> None:
        async with asyncio.timeout(30):
            while len(self.queued) < messages or self.waiting < waiting:
                self.changed.clear()
                await self.changed.wait()

    def values(self, index: int) -> dict[str, str]:
        data = self.queued[index][0]["data"]
        return {item["path"]: item["dp"]["value"] for item in (data if isinstance(data, list) else [data])}


def _broker() -> Broker:
    return Broker(
        [SignalMetadata(id=i + 1, path=p, kind="sensor", datatype="float") for i, p in enumerate(PATHS)]
    )


def _publish(broker: Broker, value: float) -> None:
    broker.publish([SignalUpdate(path, value, time.time(), Status.VALID) for path in PATHS])


async def test_a_notification_not_yet_written_holds_back_the_next_which_then_carries_the_latest_values() -> (
    None
):
    broker = _broker()
    _publish(broker, 1.0)
    client = Client()
    pump = SubscriptionPump(
        "1", broker.subscribe(list(PATHS), access=UNRESTRICTED), client.send, expires=time.time() + 3600
    )
    pump.start()
    try:
        await client.wait_until(messages=1, waiting=1)  # it waits for the first to be written
        assert client.values(0) == {"Bench.A": "1.0", "Bench.B": "1.0"}
        for value in (2.0, 3.0, 4.0):
            _publish(broker, value)
        client.queued[0][1].set_result(None)  # written: the broker's latest values go out next
        await client.wait_until(messages=2, waiting=2)
        assert client.values(1) == {"Bench.A": "4.0", "Bench.B": "4.0"}
        assert len(client.queued) == 2
    finally:
        await pump.stop()


def test_a_datapoint_is_encoded_once_for_every_subscription() -> None:
    encoded = EncodedDatapoints()
    broker = _broker()
    _publish(broker, 5.0)
    datapoint = broker.get("Bench.A", access=UNRESTRICTED)
    first = encoded.text("Bench.A", datapoint)
    assert encoded.text("Bench.A", datapoint) is first
    assert json.loads(first) == {
        "path": "Bench.A",
        "dp": {"value": "5.0", "ts": json.loads(first)["dp"]["ts"]},
    }
    _publish(broker, 6.0)
    assert (
        json.loads(encoded.text("Bench.A", broker.get("Bench.A", access=UNRESTRICTED)))["dp"]["value"]
        == "6.0"
    )
    message = json.loads(encoded.notification("7", {"Bench.A": datapoint}))
    assert message["action"] == "subscription" and message["subscriptionId"] == "7"
    assert message["data"]["path"] == "Bench.A"  # one entry: data is that entry, as VISS writes it
