"""``VehicleClient``: an asyncio client of a ``kuksa.val.v2`` server (``sdv serve`` or a KUKSA databroker).

Invariants:

* A client is used inside ``async with``: entering opens the channel and checks the server answers
  (:class:`~sdv.client.errors.ServerUnreachableError` otherwise); leaving closes the channel, which ends every
  subscription still open.
* Every failed call raises an :class:`~sdv.errors.SdvError` with the server's message (see
  :mod:`sdv.client.errors`); no ``grpc`` exception leaves this module.
* A value to actuate is converted to the actuator's datatype, read from the server's metadata, before it is sent;
  the server still checks ranges and allowed values and carries the request out before answering.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Self

import grpc

from sdv._proto.kuksa.val.v1 import types_pb2 as v1_types
from sdv._proto.kuksa.val.v1 import val_pb2 as v1_val
from sdv._proto.kuksa.val.v1 import val_pb2_grpc as v1_grpc
from sdv._proto.kuksa.val.v2 import types_pb2, val_pb2, val_pb2_grpc
from sdv._proto.sdv.ota.v1 import ota_pb2, ota_pb2_grpc
from sdv.client.address import SIGNAL_SERVER_PORT, resolve_target
from sdv.client.channel import ChannelSecurity, open_channel
from sdv.client.convert import datapoint_from_v1, datapoint_from_v2, metadata_from_v2
from sdv.client.errors import (
    ServerUnreachableError,
    WrongServiceError,
    entry_error,
    handshake_failure,
    translate,
)
from sdv.client.provider import ProviderStream
from sdv.errors import (
    ReadOnlyError,
    SdvError,
    UnknownSignalError,
    UnsupportedRequestError,
    ValueOutOfRangeError,
)
from sdv.types.datatypes import coerce
from sdv.types.signals import Datapoint, SignalMetadata
from sdv.wire import timestamp_to_proto, value_to_v2

if TYPE_CHECKING:
    from sdv._proto.kuksa.val.v2.val_pb2_grpc import VALAsyncStub

__all__ = ["DEFAULT_SERVER", "VehicleClient"]

DEFAULT_SERVER = "127.0.0.1:55555"
"""Where ``sdv serve`` listens by default (the KUKSA databroker's port)."""


class VehicleClient:
    """Reads, subscribes to and actuates the signals of a vehicle served over ``kuksa.val.v2``.

    Example::

        async with VehicleClient("127.0.0.1:55555") as client:
            speed = (await client.get(["Vehicle.Speed"]))["Vehicle.Speed"].value
            await client.actuate("Vehicle.Body.Lights.Beam.Low.IsOn", True)

    Args:
        target: the server as ``HOST[:PORT]`` (port 55555 by default), ``grpc://HOST[:PORT]`` or
            ``grpcs://HOST[:PORT]`` (TLS).
        timeout: seconds a single request (not a subscription) may take, connecting included.
        security: TLS and the bearer token; None connects in plaintext without a token.
    """

    def __init__(
        self, target: str = DEFAULT_SERVER, *, timeout: float = 5.0, security: ChannelSecurity | None = None
    ) -> None:
        self.target, self.security = resolve_target(target, SIGNAL_SERVER_PORT, security or ChannelSecurity())
        self.timeout = timeout
        self._channel: grpc.aio.Channel | None = None
        self._stub: VALAsyncStub | None = None
        self._metadata: dict[str, SignalMetadata] = {}

    # --- connection ----------------------------------------------------------------------------------------
    async def __aenter__(self) -> Self:
        self._channel = open_channel(self.target, self.security)
        self._stub = val_pb2_grpc.VALStub(self._channel)
        try:
            await self.server_info()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the channel; open subscriptions end."""
        channel, self._channel, self._stub = self._channel, None, None
        if channel is not None:
            await channel.close(None)

    @property
    def channel(self) -> grpc.aio.Channel:
        """The open channel, for the stubs of other services on the same server.

        Raises:
            RuntimeError: outside ``async with``.
        """
        if self._channel is None:
            raise RuntimeError("VehicleClient is not connected: use it in 'async with'")
        return self._channel

    @property
    def stub(self) -> VALAsyncStub:
        """The generated ``kuksa.val.v2.VAL`` stub, for RPCs this class does not wrap.

        Raises:
            RuntimeError: outside ``async with``.
        """
        if self._stub is None:
            raise RuntimeError("VehicleClient is not connected: use it in 'async with'")
        return self._stub

    def _error(self, error: grpc.aio.AioRpcError, *, actuation: bool = False) -> SdvError:
        connected = (
            self._channel is not None
            and self._channel.get_state(try_to_connect=False) == grpc.ChannelConnectivity.READY
        )
        return translate(error, self.target, reached_server=actuation and connected)

    async def server_info(self) -> tuple[str, str]:
        """The server's name and version.

        Raises:
            ServerUnreachableError: the server does not answer.
            WrongServiceError: the address serves something else than ``kuksa.val.v2``.
        """
        try:
            response = await self.stub.GetServerInfo(val_pb2.GetServerInfoRequest(), timeout=self.timeout)
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.UNIMPLEMENTED:
                raise await self._wrong_service() from error
            translated = handshake_failure(error.details() or "", self.target, self.security) or self._error(
                error
            )
            if error.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                translated = ServerUnreachableError(
                    f"cannot reach {self.target}: no answer in {self.timeout:g} s"
                )
            raise translated from error
        return response.name, response.version

    async def _wrong_service(self) -> WrongServiceError:
        """What answers at the target instead of a signal server: the update agent's status call tells."""
        try:
            await ota_pb2_grpc.OtaStub(self.channel).GetStatus(
                ota_pb2.GetStatusRequest(), timeout=self.timeout
            )
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.UNIMPLEMENTED:
                return WrongServiceError(
                    f"{self.target} is not a signal server: it does not serve kuksa.val.v2"
                )
        return WrongServiceError(f"{self.target} is an sdv OTA agent, not a signal server")

    # --- metadata ------------------------------------------------------------------------------------------
    async def list_metadata(self, root: str = "") -> list[SignalMetadata]:
        """Metadata of the signals under ``root``: a branch, a signal, a pattern (``Vehicle.*.IsOpen``), or all.

        Raises:
            UnknownSignalError: nothing matches ``root``.
        """
        try:
            response = await self.stub.ListMetadata(
                val_pb2.ListMetadataRequest(root=root), timeout=self.timeout
            )
        except grpc.aio.AioRpcError as error:
            raise self._error(error) from error
        found = [metadata_from_v2(item) for item in response.metadata]
        self._metadata.update((meta.path, meta) for meta in found)
        return found

    async def metadata(self, path: str) -> SignalMetadata:
        """The metadata of one signal (asked once per client, then remembered).

        Raises:
            UnknownSignalError: ``path`` names no signal (or names a branch).
        """
        meta = self._metadata.get(path)
        if meta is None:
            await self.list_metadata(path)
            meta = self._metadata.get(path)
            if meta is None:
                raise UnknownSignalError(f"{path!r} is a branch, not a signal")
        return meta

    # --- values --------------------------------------------------------------------------------------------
    async def get(self, paths: Iterable[str]) -> dict[str, Datapoint]:
        """The current datapoint of each signal, keyed by path in request order.

        A datapoint without value (``status`` ``NOT_AVAILABLE``) is a signal the server cannot vouch for now.

        Raises:
            UnknownSignalError: a path names no signal (nothing is returned).
            ValueOutOfRangeError: no paths, or too many.
        """
        wanted = list(dict.fromkeys(paths))
        request = val_pb2.GetValuesRequest(signal_ids=[types_pb2.SignalID(path=path) for path in wanted])
        try:
            response = await self.stub.GetValues(request, timeout=self.timeout)
        except grpc.aio.AioRpcError as error:
            raise self._error(error) from error
        return {
            path: datapoint_from_v2(item) for path, item in zip(wanted, response.data_points, strict=True)
        }

    async def subscribe(
        self, paths: Iterable[str], *, min_interval_ms: int = 0
    ) -> AsyncGenerator[dict[str, Datapoint], None]:
        """Stream the signals' datapoints: first all of them, then those that changed, several per batch.

        Close the iterator (``contextlib.aclosing``, or leave the client) to end the subscription.

        Args:
            paths: the signals.
            min_interval_ms: the server sends a batch at most this often (0: as soon as values change).

        Raises:
            UnknownSignalError: a path names no signal (on the first iteration).
            ServerUnreachableError: the server cannot be reached or went away.
        """
        request = val_pb2.SubscribeRequest(signal_paths=list(dict.fromkeys(paths)))
        if min_interval_ms:
            request.filter.min_sample_interval.interval_ms = min_interval_ms
        call = self.stub.Subscribe(request)
        try:
            async for response in call:
                yield {path: datapoint_from_v2(item) for path, item in response.entries.items()}
        except grpc.aio.AioRpcError as error:
            raise self._error(error) from error
        finally:
            call.cancel()

    async def targets(self, paths: Iterable[str]) -> dict[str, Datapoint]:
        """The target value of each actuator (the last value asked of it), keyed by path in request order.

        ``kuksa.val.v2`` has no call that reads a target; this reads it with ``kuksa.val.v1`` ``Get``, which
        ``sdv serve`` and the KUKSA databroker serve beside v2. A datapoint without value is an actuator nothing
        was asked of yet.

        Raises:
            UnknownSignalError: a path names no signal.
            ReadOnlyError: a path names a sensor or an attribute, which have no target.
            UnsupportedRequestError: the server does not serve ``kuksa.val.v1``.
        """
        wanted = list(dict.fromkeys(paths))
        for path in wanted:
            meta = await self.metadata(path)
            if meta.kind != "actuator":
                article = "an" if meta.kind[:1] in "aeiou" else "a"
                raise ReadOnlyError(f"{path} is {article} {meta.kind}; only actuators have a target value")
        request = v1_val.GetRequest(
            entries=[
                v1_val.EntryRequest(
                    path=path, view=v1_types.VIEW_TARGET_VALUE, fields=[v1_types.FIELD_ACTUATOR_TARGET]
                )
                for path in wanted
            ]
        )
        try:
            response = await v1_grpc.VALStub(self.channel).Get(request, timeout=self.timeout)
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.UNIMPLEMENTED:
                raise UnsupportedRequestError(
                    f"{self.target} does not serve kuksa.val.v1, the only API that reads an actuator's target"
                ) from error
            raise self._error(error) from error
        for failed in response.errors:
            raise entry_error(failed.path, failed.error.code, failed.error.message or failed.error.reason)
        found = {entry.path: entry.actuator_target for entry in response.entries}
        return {path: datapoint_from_v1(found.get(path, v1_types.Datapoint())) for path in wanted}

    async def actuate(self, path: str, value: object) -> None:
        """Ask the actuator at ``path`` for ``value``; returns once the server's provider carried it out.

        Args:
            path: the actuator.
            value: converted to the actuator's datatype first (``1`` for a boolean is ``True``; ``3.5`` for an
                integer is refused).

        Raises:
            UnknownSignalError: unknown path.
            ReadOnlyError: the signal is a sensor or an attribute.
            ValueOutOfRangeError: wrong type, outside min/max or not an allowed value.
            NoProviderError: no provider owns the actuator.
            ActuationError: the provider could not carry the request out.
        """
        meta = await self.metadata(path)
        if meta.kind != "actuator":
            article = "an" if meta.kind[:1] in "aeiou" else "a"
            raise ReadOnlyError(f"{path} is {article} {meta.kind}; only actuators accept requests")
        try:
            typed = coerce(meta.datatype, value)
        except ValueError as error:
            raise ValueOutOfRangeError(f"{path}: {error}") from None
        request = val_pb2.ActuateRequest(
            signal_id=types_pb2.SignalID(path=path), value=value_to_v2(meta.datatype, typed)
        )
        try:
            await self.stub.Actuate(request, timeout=self.timeout)
        except grpc.aio.AioRpcError as error:
            raise self._error(error, actuation=True) from error

    # --- providing -----------------------------------------------------------------------------------------
    async def publish(self, path: str, value: object, timestamp: float | None = None) -> None:
        """Publish the current value of the signal at ``path`` as a provider would (v2 ``PublishValue``).

        Args:
            path: the signal; nobody else may have claimed it (the HAL owns the signals it decodes).
            value: converted to the signal's datatype first.
            timestamp: when the value was measured (seconds since the epoch); now by default.

        Raises:
            UnknownSignalError: unknown path.
            ValueOutOfRangeError: wrong type, outside min/max or not an allowed value.
            AlreadyProvidedError: the HAL or another client provides the signal.
            AccessDenied: the token does not allow ``provide`` for the path.
        """
        meta = await self.metadata(path)
        try:
            typed = coerce(meta.datatype, value)
        except ValueError as error:
            raise ValueOutOfRangeError(f"{path}: {error}") from None
        datapoint = types_pb2.Datapoint(value=value_to_v2(meta.datatype, typed))
        if timestamp is not None:
            timestamp_to_proto(timestamp, datapoint.timestamp)
        request = val_pb2.PublishValueRequest(signal_id=types_pb2.SignalID(path=path), data_point=datapoint)
        try:
            await self.stub.PublishValue(request, timeout=self.timeout)
        except grpc.aio.AioRpcError as error:
            raise self._error(error) from error

    def provider(self) -> ProviderStream:
        """A provider stream on this connection: ``async with client.provider() as provider:`` then claim
        signals or actuators (:class:`~sdv.client.provider.ProviderStream`)."""
        return ProviderStream(self.stub, self.target, self.metadata)
