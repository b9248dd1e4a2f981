"""``Vehicle``: the app-facing connection to a vehicle served over ``kuksa.val.v2``.

Invariants:

* A ``Vehicle`` is used inside ``async with``: entering connects (``ServerUnreachableError`` if the server does not
  answer), leaving closes the connection and with it every subscription still open.
* Values come back as :class:`~sdv.sdk.values.SignalValue` (value typed by the signal's datatype, unit, UTC
  timestamp, status); refused requests raise the :mod:`sdv.errors` tree (the client maps every gRPC status).
* A subscription outlives a dropped connection: it waits as its :class:`ReconnectPolicy` says, connects again,
  subscribes again and goes on, starting with a batch of every signal's current value. Other errors (an unknown
  path, a refused request) end it at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Iterable
from types import TracebackType

from sdv.client import DEFAULT_SERVER, ChannelSecurity, ServerUnreachableError
from sdv.client.provider import ProviderStream
from sdv.sdk.connection import SdkClient
from sdv.sdk.reconnect import ReconnectPolicy
from sdv.sdk.services import Adas, Cockpit
from sdv.sdk.values import SignalValue, signal_value
from sdv.types.datatypes import Value
from sdv.types.signals import SignalMetadata

__all__ = ["Vehicle", "connect"]

_LOG = logging.getLogger(__name__)


class Vehicle:
    """Typed reads, subscriptions and actuation of a vehicle's signals.

    Example::

        async with sdv.connect("127.0.0.1:55555") as vehicle:
            speed = await vehicle.get("Vehicle.Speed")
            print(speed.value, speed.unit)
            await vehicle.actuate("Vehicle.Body.Lights.Beam.Low.IsOn", True)

    Args:
        target: the server as ``HOST:PORT``.
        token: a bearer token sent with every call (a JWT for a KUKSA databroker that enforces access), or None.
        timeout: seconds a single request (not a subscription) may take.
        reconnect: how subscriptions reconnect after the connection dropped.
        security: TLS (server CA, client certificate for mutual TLS), or None for plaintext.
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
        self.target = target
        self.timeout = timeout
        self.reconnect = reconnect or ReconnectPolicy()
        self._token = token
        self._security = security
        self._client: SdkClient | None = None
        self._metadata: dict[str, SignalMetadata] = {}
        self._reconnecting = asyncio.Lock()
        self.cockpit = Cockpit(self)
        """The typed cockpit service (``sdv.cockpit.v1``): cluster state and comfort commands."""
        self.adas = Adas(self)
        """The typed ADAS service (``sdv.adas.v1``): dynamics with a validity per value."""

    # --- connection ----------------------------------------------------------------------------------------
    def _new_client(self) -> SdkClient:
        return SdkClient(self.target, token=self._token, timeout=self.timeout, security=self._security)

    async def __aenter__(self) -> Vehicle:
        if self._client is not None:
            raise RuntimeError("this Vehicle is already connected")
        self._client = await self._new_client().__aenter__()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the connection; open subscriptions end."""
        client, self._client = self._client, None
        if client is not None:
            await client.close()

    @property
    def connected(self) -> bool:
        """Whether the vehicle is inside ``async with`` (the server may still have gone away)."""
        return self._client is not None

    def _require_client(self) -> SdkClient:
        if self._client is None:
            raise RuntimeError("Vehicle is not connected: use it in 'async with sdv.connect(...)'")
        return self._client

    async def _replace_client(self, broken: SdkClient) -> None:
        """Connect anew unless another subscription already replaced ``broken``.

        A fresh channel rather than the old one's own retries: gRPC's channel backoff (up to two minutes) would
        otherwise decide when the server is tried again, not the policy.

        Raises:
            ServerUnreachableError: the server still does not answer.
        """
        async with self._reconnecting:
            if self._client is not broken:
                return  # closed meanwhile (then _require_client raises) or already replaced
            fresh = await self._new_client().__aenter__()
            self._client = fresh
        await broken.close()

    # --- metadata ------------------------------------------------------------------------------------------
    async def metadata(self, path: str) -> SignalMetadata:
        """The metadata of one signal: kind, datatype, unit, min/max, allowed values (asked once).

        Raises:
            UnknownSignalError: ``path`` names no signal.
        """
        meta = self._metadata.get(path)
        if meta is None:
            meta = await self._require_client().metadata(path)
            self._metadata[path] = meta
        return meta

    async def list_metadata(self, root: str = "") -> list[SignalMetadata]:
        """Metadata of the signals under ``root`` (a branch, a signal, a pattern, or everything).

        Raises:
            UnknownSignalError: nothing matches ``root``.
        """
        found = await self._require_client().list_metadata(root)
        self._metadata.update((meta.path, meta) for meta in found)
        return found

    async def _metadata_of(self, paths: list[str]) -> dict[str, SignalMetadata]:
        missing = [path for path in paths if path not in self._metadata]
        if len(missing) > 1:
            await self.list_metadata("")  # one request for many; unknown paths still fail below
        for path in missing:
            await self.metadata(path)
        return {path: self._metadata[path] for path in paths}

    # --- values --------------------------------------------------------------------------------------------
    async def get(self, path: str) -> SignalValue[Value]:
        """The current value of one signal.

        Raises:
            UnknownSignalError: unknown path.
            ServerUnreachableError: the server does not answer.
        """
        return (await self.get_many([path]))[path]

    async def get_many(self, paths: Iterable[str]) -> dict[str, SignalValue[Value]]:
        """The current values of several signals, keyed by path in request order (one request).

        Raises:
            UnknownSignalError: a path names no signal (nothing is returned).
            ValueOutOfRangeError: no paths, or too many.
            ServerUnreachableError: the server does not answer.
        """
        wanted = list(dict.fromkeys(paths))
        datapoints = await self._require_client().get(wanted)
        metas = await self._metadata_of(wanted)
        return {path: signal_value(metas[path], datapoint) for path, datapoint in datapoints.items()}

    async def subscribe(
        self, paths: Iterable[str], *, min_interval_ms: int = 0
    ) -> AsyncGenerator[dict[str, SignalValue[Value]], None]:
        """Stream the signals' values: first all of them, then those that changed, several per batch.

        A dropped connection is bridged as the vehicle's :class:`ReconnectPolicy` says; after each reconnection
        the stream goes on with a batch of every signal's current value. Close the iterator
        (``contextlib.aclosing``) or leave the ``Vehicle`` to end the subscription.

        Args:
            paths: the signals.
            min_interval_ms: the server sends a batch at most this often (0: as soon as values change).

        Raises:
            UnknownSignalError: a path names no signal (on the first iteration).
            ServerUnreachableError: the connection dropped and the policy gave up (or forbids reconnecting).
        """
        wanted = list(dict.fromkeys(paths))
        metas = await self._metadata_of(wanted)
        failed_attempts = 0
        while True:
            client = self._require_client()
            updates = client.subscribe(wanted, min_interval_ms=min_interval_ms)
            try:
                async with contextlib.aclosing(updates):
                    async for batch in updates:
                        failed_attempts = 0
                        yield {
                            path: signal_value(metas[path], datapoint) for path, datapoint in batch.items()
                        }
                return  # the server ended the stream on purpose
            except ServerUnreachableError as error:
                if self._client is None:
                    raise  # the vehicle was closed
                failed_attempts = await self._wait_and_reconnect(client, failed_attempts, error)

    async def _wait_and_reconnect(self, broken: SdkClient, failed_attempts: int, error: Exception) -> int:
        """Wait and connect again until it works; the number of failed attempts so far (0 on success)."""
        while True:
            if self.reconnect.gives_up_after(failed_attempts):
                raise error
            delay = self.reconnect.delay(failed_attempts)
            failed_attempts += 1
            _LOG.warning(
                "subscription to %s interrupted (%s); reconnecting in %.2f s (attempt %d)",
                self.target,
                error,
                delay,
                failed_attempts,
            )
            await asyncio.sleep(delay)
            try:
                await self._replace_client(broken)
            except ServerUnreachableError as still_down:
                error = still_down
                continue
            return failed_attempts

    async def actuate(self, path: str, value: Value) -> None:
        """Ask the actuator at ``path`` for ``value``; returns once the vehicle carried it out (frame sent).

        Raises:
            UnknownSignalError: unknown path.
            ReadOnlyError: the signal is a sensor or an attribute.
            ValueOutOfRangeError: wrong type, outside min/max or not an allowed value.
            NoProviderError: no provider owns the actuator.
            ActuationError: the provider could not carry the request out.
            ServerUnreachableError: the server does not answer.
        """
        await self._require_client().actuate(path, value)

    # --- providing -----------------------------------------------------------------------------------------
    async def publish(self, path: str, value: Value, timestamp: float | None = None) -> None:
        """Publish the current value of a signal no one else provides (a sensor of an app, a pure broker's
        signal), as a KUKSA provider does with ``PublishValue``.

        Raises:
            UnknownSignalError: unknown path.
            ValueOutOfRangeError: wrong type, outside min/max or not an allowed value.
            AlreadyProvidedError: the HAL or another client provides the signal.
            ServerUnreachableError: the server does not answer.
        """
        await self._require_client().publish(path, value, timestamp)

    def provider(self) -> ProviderStream:
        """A provider stream: claim signals to publish them alone, or actuators to carry out their requests.

        Example::

            async def open_window(path: str, value: Value) -> None:
                ...  # move the window; raise to refuse

            async with vehicle.provider() as provider:
                await provider.claim_actuators(["Vehicle.Cabin.Door.Row1.DriverSide.Window.Position"], open_window)
                await provider.claim_signals(["Vehicle.Cabin.Door.Row1.DriverSide.Window.IsOpen"])
                await provider.publish({"Vehicle.Cabin.Door.Row1.DriverSide.Window.IsOpen": True})

        Every claim ends when the ``async with`` block ends (or the process goes away).
        """
        return self._require_client().provider()


def connect(
    target: str = DEFAULT_SERVER,
    *,
    token: str | None = None,
    timeout: float = 5.0,
    reconnect: ReconnectPolicy | None = None,
    security: ChannelSecurity | None = None,
) -> Vehicle:
    """A vehicle to use in ``async with``: ``async with sdv.connect("127.0.0.1:55555") as vehicle: ...``.

    Args:
        target: the server as ``HOST:PORT``.
        token: a bearer token sent with every call, or None.
        timeout: seconds a single request may take.
        reconnect: how subscriptions reconnect after the connection dropped (default :class:`ReconnectPolicy`).
        security: TLS settings (:class:`sdv.client.ChannelSecurity`), or None for plaintext.
    """
    return Vehicle(target, token=token, timeout=timeout, reconnect=reconnect, security=security)
