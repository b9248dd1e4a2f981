"""Pure broker mode (``sdv serve --vss``): catalogue load time, and the publish rate of an outside provider
against the HAL's own path, in the same run.

(a) Load: ``load_catalogue`` of the full VSS 4.0 release plus ``Broker.from_catalogue`` (what ``sdv serve --vss``
    does before it listens), best of ``--repeat``.
(b) Publish rate into the broker, one signal, with 1 and 10 subscribers of it draining on the event loop:
    the HAL path (``Broker.publish``, a batch of one update, no ownership or value check) is the baseline; the
    provider path is ``Broker.publish_value`` (value checked against the catalogue's metadata, ownership
    checked), the work behind both v2 ``PublishValue`` and a provider stream's ``PublishValuesRequest``. The
    gRPC transport in front of it is measured by ``bench_broker.py``.

Prints figures and ratios; no pass/fail.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Callable
from pathlib import Path

from sdv.broker import Broker
from sdv.hal.processor import SignalUpdate, Status
from sdv.vss import load_catalogue

SIGNAL = "Vehicle.Speed"


def load_seconds(path: Path, repeat: int) -> tuple[float, int]:
    best = float("inf")
    count = 0
    for _ in range(repeat):
        started = time.perf_counter()
        broker = Broker.from_catalogue(load_catalogue([path]))
        best = min(best, time.perf_counter() - started)
        count = len(broker.list_metadata())
    return best, count


async def rate(broker: Broker, publish: Callable[[float], None], subscribers: int, count: int) -> float:
    subscriptions = [broker.subscribe([SIGNAL]) for _ in range(subscribers)]

    async def drain(subscription: object) -> None:
        async for _ in subscription:  # type: ignore[attr-defined]
            pass

    readers = [asyncio.create_task(drain(subscription)) for subscription in subscriptions]
    started = time.perf_counter()
    for index in range(count):
        publish(float(index % 250))
        if index % 256 == 0:
            await asyncio.sleep(0)  # let the subscribers read, as a served loop would
    elapsed = time.perf_counter() - started
    for subscription in subscriptions:
        subscription.close()
    await asyncio.gather(*readers)
    return count / elapsed


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vss", type=Path, default=Path("../shared/vss/vss_release_4.0.json"))
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--count", type=int, default=200_000)
    args = parser.parse_args()
    seconds, signals = load_seconds(args.vss, args.repeat)
    print(f"load: {signals} signals of {args.vss.name} in {seconds * 1000:.1f} ms (best of {args.repeat})")
    broker = Broker.from_catalogue(load_catalogue([args.vss]))

    def hal(value: float) -> None:
        broker.publish([SignalUpdate(SIGNAL, value, time.time(), Status.VALID)])

    def provider(value: float) -> None:
        broker.publish_value(SIGNAL, value)

    for subscribers in (1, 10):
        baseline = await rate(broker, hal, subscribers, args.count)
        provided = await rate(broker, provider, subscribers, args.count)
        print(
            f"{subscribers:>2} subscriber(s): HAL path {baseline:,.0f} updates/s, provider path "
            f"{provided:,.0f} updates/s (ratio {provided / baseline:.2f})"
        )


if __name__ == "__main__":
    asyncio.run(main())
