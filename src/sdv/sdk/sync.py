"""``SyncVehicle``: the SDK for scripts and notebooks, without ``async``.

An event loop runs in a background thread for as long as the ``with`` block; each method hands a coroutine of the
wrapped :class:`~sdv.sdk.vehicle.Vehicle` to that loop and waits for its result. Leaving the block closes the
connection, stops the loop and joins the thread, so nothing is left running.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Coroutine, Iterable, Iterator
from types import TracebackType
from typing import Any, TypeVar

from sdv.client import DEFAULT_SERVER, ChannelSecurity
from sdv.sdk.reconnect import ReconnectPolicy
from sdv.sdk.values import SignalValue
from sdv.sdk.vehicle import Vehicle
from sdv.types.datatypes import Value
from sdv.types.signals import SignalMetadata

__all__ = ["SyncVehicle", "connect_sync"]

R = TypeVar("R")


class SyncVehicle:
    """Blocking reads, subscriptions, actuation and publishing: ``with sdv.connect_sync(...) as vehicle:``.

    Example::

        with sdv.connect_sync("127.0.0.1:55555") as vehicle:
            print(vehicle.get("Vehicle.Speed").value)
            vehicle.actuate("Vehicle.Body.Lights.Beam.Low.IsOn", True)

    Args: as :class:`~sdv.sdk.vehicle.Vehicle`.
    """

    def __init__(
        self,
        target: str = DEFAULT_SERVER,
        *,
        token: str | None = None,
        timeout: float = 5.0,
        reconnect: ReconnectPolicy | None = None,
        security: ChannelSecurity | None = None,
    ) -> None:
        self._vehicle = Vehicle(target, token=token, timeout=timeout, reconnect=reconnect, security=security)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def target(self) -> str:
        """The server as ``HOST:PORT``."""
        return self._vehicle.target

    def __enter__(self) -> SyncVehicle:
        if self._thread is not None:
            raise RuntimeError("this SyncVehicle is already connected")
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="sdv-sdk-loop", daemon=True)
        self._thread.start()
        try:
            self._run(self._vehicle.__aenter__())
        except BaseException:
            self._stop_loop()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection and stop the background loop (and its thread)."""
        if self._loop is None:
            return
        try:
            self._run(self._vehicle.close())
        finally:
            self._stop_loop()

    def _stop_loop(self) -> None:
        loop, thread, self._loop, self._thread = self._loop, self._thread, None, None
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()

    def _run(self, coroutine: Coroutine[Any, Any, R]) -> R:
        if self._loop is None:
            coroutine.close()
            raise RuntimeError("SyncVehicle is not connected: use it in 'with sdv.connect_sync(...)'")
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        try:
            return future.result()
        except BaseException:
            future.cancel()  # Ctrl-C while waiting: do not leave the call running on the loop
            raise

    def metadata(self, path: str) -> SignalMetadata:
        """As :meth:`Vehicle.metadata`."""
        return self._run(self._vehicle.metadata(path))

    def get(self, path: str) -> SignalValue[Value]:
        """As :meth:`Vehicle.get`."""
        return self._run(self._vehicle.get(path))

    def get_many(self, paths: Iterable[str]) -> dict[str, SignalValue[Value]]:
        """As :meth:`Vehicle.get_many`."""
        return self._run(self._vehicle.get_many(list(paths)))

    def actuate(self, path: str, value: Value) -> None:
        """As :meth:`Vehicle.actuate`."""
        self._run(self._vehicle.actuate(path, value))

    def publish(self, path: str, value: Value, timestamp: float | None = None) -> None:
        """As :meth:`Vehicle.publish`: the current value of a signal no one else provides."""
        self._run(self._vehicle.publish(path, value, timestamp))

    def subscribe(
        self, paths: Iterable[str], *, min_interval_ms: int = 0
    ) -> Iterator[dict[str, SignalValue[Value]]]:
        """As :meth:`Vehicle.subscribe`, as a blocking iterator; ``close()`` it (or break) to end it."""
        updates = self._vehicle.subscribe(list(paths), min_interval_ms=min_interval_ms)
        try:
            while True:
                try:
                    batch = self._run(_next(updates))
                except StopAsyncIteration:
                    return
                yield batch
        finally:
            if self._loop is not None:
                self._run(updates.aclose())


async def _next(iterator: AsyncIterator[R]) -> R:
    return await anext(iterator)


def connect_sync(
    target: str = DEFAULT_SERVER,
    *,
    token: str | None = None,
    timeout: float = 5.0,
    reconnect: ReconnectPolicy | None = None,
    security: ChannelSecurity | None = None,
) -> SyncVehicle:
    """A blocking vehicle to use in ``with``: ``with sdv.connect_sync("127.0.0.1:55555") as vehicle: ...``."""
    return SyncVehicle(target, token=token, timeout=timeout, reconnect=reconnect, security=security)
