"""The ``sdv.ota.v1.Ota`` service: the gRPC edge of the ECU's :class:`~sdv.ota.agent.core.UpdateAgent`.

Invariants:

* every call passes the project's :class:`~sdv.api.guard.CallGuard` (bearer token when the server checks them),
  and every RPC first checks that the caller holds the ``ota`` scope (:meth:`OtaServicer._authorize`, through the
  same :class:`~sdv.broker.access.Access` the signal services use), then calls the agent; the agent's blocking
  file I/O runs in worker threads, never on the event loop;
* project errors become statuses through :mod:`sdv.api.errors` (the OTA rows: wrong state
  ``FAILED_PRECONDITION``, second transfer ``ABORTED``, bad offset ``OUT_OF_RANGE``, no space
  ``RESOURCE_EXHAUSTED``, bundle refused ``INVALID_ARGUMENT``, staging cancelled ``CANCELLED``, stalled upload
  ``DEADLINE_EXCEEDED``; no ``ota`` scope ``PERMISSION_DENIED``);
* ``BeginTransfer`` carries the bundle's signed header, which the agent verifies before it accepts any payload
  byte; a refused header ends the call with its status and leaves no transfer state;
* an upload holds the agent's single upload lease for as long as its stream is open, so a second concurrent
  upload is refused instead of interleaving chunks; a stream that sends nothing for
  ``transfer.idle_timeout_s`` is ended (``DEADLINE_EXCEEDED``) so a stalled sender cannot hold it forever.

The server's port is TLS (and mutual TLS) by its :class:`~sdv.api.security.ServerSecurity`, as ``sdv serve``'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
from grpc_health.v1 import _async as health_aio  # the typed stubs lack the asyncio servicer
from grpc_health.v1 import health_pb2, health_pb2_grpc

from sdv._proto.sdv.ota.v1 import ota_pb2, ota_pb2_grpc
from sdv.api.calls import caller
from sdv.api.errors import grpc_errors
from sdv.api.guard import CallGuard
from sdv.api.security import ServerSecurity
from sdv.api.server import DEFAULT_ADDRESS, bind, host_port
from sdv.broker.access import Action
from sdv.broker.config import Limits
from sdv.ota.agent.core import AgentStatus, UpdateAgent
from sdv.ota.agent.preconditions import VehicleView
from sdv.ota.agent.state import AgentState, BundleRecord, GroupRecord, TransferRecord
from sdv.ota.agent.store import GroupBoot
from sdv.ota.bundle.canonical import canonical_bytes
from sdv.ota.errors import TransferStalledError

__all__ = ["OTA", "OtaServer", "OtaServicer", "status_to_proto"]

_LOG = logging.getLogger(__name__)
_Context = grpc.aio.ServicerContext[Any, Any]
OTA = ota_pb2.DESCRIPTOR.services_by_name["Ota"].full_name


_STATES: dict[AgentState, ota_pb2.State.ValueType] = {
    state: ota_pb2.State.Value(f"STATE_{state.name}") for state in AgentState
}


def _bundle(record: BundleRecord | None) -> ota_pb2.Bundle | None:
    if record is None:
        return None
    return ota_pb2.Bundle(
        name=record.name,
        version=record.version,
        release_counter=record.release_counter,
        bundle_sha256=record.bundle_sha256,
    )


def _transfer_status(
    transfer: TransferRecord, state: AgentState, max_chunk_bytes: int = 0
) -> ota_pb2.TransferStatus:
    return ota_pb2.TransferStatus(
        bundle_sha256=transfer.bundle_sha256,
        size=transfer.size,
        offset=transfer.offset,
        state=_STATES[state],
        max_chunk_bytes=max_chunk_bytes,
    )


def status_to_proto(status: AgentStatus) -> ota_pb2.Status:
    """The wire form of the agent's status."""
    record = status.record
    transfer = record.transfer
    return ota_pb2.Status(
        state=_STATES[record.state],
        sequence=record.sequence,
        active_slot=record.active_slot,
        trial_slot=record.trial_slot or "",
        booted_slot=status.booted_slot,
        attempts_left=status.attempts_left,
        bundle=_bundle(record.bundle),
        installed=_bundle(record.installed),
        failure=record.failure or "",
        transfer=None if transfer is None else _transfer_status(transfer, record.state),
        staged_bytes=status.staged_bytes,
        staging_total=status.staging_total,
        groups=[_group_status(view, record.groups.get(view.name)) for view in status.groups],
        vehicle=None if status.vehicle is None else _vehicle_status(status.vehicle),
    )


def _vehicle_status(view: VehicleView) -> ota_pb2.VehicleStatus:
    check = view.check
    message = ota_pb2.VehicleStatus(
        notice_id=view.notice_id or "", consent=view.consent, software_id=view.software_id
    )
    if check is not None:
        message.checked, message.step, message.met = True, check.step, check.met
        message.checked_at = int(check.time.timestamp())
        message.unmet.extend(check.unmet())
        message.signals.extend(
            ota_pb2.SignalReading(
                path=reading.path,
                value="" if reading.value is None else str(reading.value),
                status=reading.status,
                timestamp=reading.timestamp or 0.0,
            )
            for reading in check.readings
        )
    return message


def _group_status(view: GroupBoot, group: GroupRecord | None) -> ota_pb2.GroupStatus:
    group = group or GroupRecord()
    return ota_pb2.GroupStatus(
        name=view.name,
        active_slot=group.active_slot,
        trial_slot=group.trial_slot or "",
        booted_slot=view.booted_slot,
        attempts_left=view.attempts_left,
        bad_slots=list(group.bad_slots),
        installed=_bundle(group.installed),
        release_counter=group.counter,
        counter_floor=group.floor,
    )


class _StatusFeed:
    """Agent status changes (from any thread) as an async iterator that keeps only the latest."""

    def __init__(self, agent: UpdateAgent) -> None:
        self._loop = asyncio.get_running_loop()
        self._latest: AgentStatus | None = None
        self._changed = asyncio.Event()
        self._unsubscribe = agent.subscribe(self._on_status)

    def _on_status(self, status: AgentStatus) -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed while the server stops: nobody listens
            self._loop.call_soon_threadsafe(self._put, status)

    def _put(self, status: AgentStatus) -> None:
        self._latest = status
        self._changed.set()

    async def next(self) -> AgentStatus:
        await self._changed.wait()
        self._changed.clear()
        if self._latest is None:  # pragma: no cover - set before the event
            raise RuntimeError("status feed woke without a status")
        return self._latest

    def close(self) -> None:
        self._unsubscribe()


class OtaServicer(ota_pb2_grpc.OtaServicer):
    """Serves ``sdv.ota.v1.Ota`` from an update agent.

    Args:
        agent: the ECU's update agent.
    """

    def __init__(self, agent: UpdateAgent) -> None:
        self._agent = agent

    async def _authorize(self, context: _Context) -> None:
        """Refuse a caller without the ``ota`` scope (``PERMISSION_DENIED`` through the error table)."""
        caller().check(Action.OTA)

    def _status(self) -> ota_pb2.Status:
        return status_to_proto(self._agent.status())

    @grpc_errors
    async def BeginTransfer(
        self, request: ota_pb2.BeginTransferRequest, context: _Context
    ) -> ota_pb2.TransferStatus:
        await self._authorize(context)
        transfer = await asyncio.to_thread(
            self._agent.begin_transfer, request.size, request.bundle_sha256, request.header
        )
        return _transfer_status(
            transfer, self._agent.record.state, self._agent.config.transfer.max_chunk_bytes
        )

    @grpc_errors
    async def Upload(
        self, request_iterator: AsyncIterator[ota_pb2.UploadChunk], context: _Context
    ) -> AsyncIterator[ota_pb2.TransferStatus]:
        await self._authorize(context)
        idle_timeout = self._agent.config.transfer.idle_timeout_s
        chunks = aiter(request_iterator)
        with self._agent.upload():
            while True:
                try:
                    chunk = await asyncio.wait_for(anext(chunks), idle_timeout)
                except StopAsyncIteration:
                    break
                except TimeoutError:
                    transfer_record = self._agent.record.transfer
                    offset = transfer_record.offset if transfer_record is not None else 0
                    raise TransferStalledError(
                        f"no upload data for {idle_timeout} s; the transfer resumes at offset {offset}"
                    ) from None
                transfer = await asyncio.to_thread(
                    self._agent.write_chunk, chunk.bundle_sha256, chunk.offset, chunk.data
                )
                yield _transfer_status(transfer, self._agent.record.state)
            await asyncio.to_thread(self._agent.sync_transfer)  # the stream's end is durable before it ends

    @grpc_errors
    async def Install(
        self, request: ota_pb2.InstallRequest, context: _Context
    ) -> AsyncIterator[ota_pb2.Status]:
        await self._authorize(context)
        feed = _StatusFeed(self._agent)
        try:
            work = asyncio.ensure_future(asyncio.to_thread(self._agent.process))
            while not work.done():
                waiter = asyncio.ensure_future(feed.next())
                await asyncio.wait({work, waiter}, return_when=asyncio.FIRST_COMPLETED)
                if waiter.done():
                    yield status_to_proto(waiter.result())
                else:
                    waiter.cancel()
            work.result()  # a refusal ends the stream with its status
            yield self._status()
        finally:
            feed.close()

    async def _unary(self, context: _Context, action: Callable[[], object]) -> ota_pb2.Status:
        await self._authorize(context)
        await asyncio.to_thread(action)
        return self._status()

    @grpc_errors
    async def Activate(self, request: ota_pb2.ActivateRequest, context: _Context) -> ota_pb2.Status:
        return await self._unary(context, self._agent.activate)

    @grpc_errors
    async def MarkGood(self, request: ota_pb2.MarkGoodRequest, context: _Context) -> ota_pb2.Status:
        return await self._unary(context, self._agent.mark_good)

    @grpc_errors
    async def Rollback(self, request: ota_pb2.RollbackRequest, context: _Context) -> ota_pb2.Status:
        reason = request.reason or "rollback requested"
        return await self._unary(context, lambda: self._agent.rollback(reason))

    @grpc_errors
    async def Cancel(self, request: ota_pb2.CancelRequest, context: _Context) -> ota_pb2.Status:
        return await self._unary(context, self._agent.cancel)

    @grpc_errors
    async def GetStatus(self, request: ota_pb2.GetStatusRequest, context: _Context) -> ota_pb2.Status:
        await self._authorize(context)
        return self._status()

    @grpc_errors
    async def WatchStatus(
        self, request: ota_pb2.WatchStatusRequest, context: _Context
    ) -> AsyncIterator[ota_pb2.Status]:
        await self._authorize(context)
        feed = _StatusFeed(self._agent)
        try:
            yield self._status()
            while True:
                yield status_to_proto(await feed.next())
        finally:
            feed.close()

    @grpc_errors
    async def GetReport(self, request: ota_pb2.GetReportRequest, context: _Context) -> ota_pb2.Report:
        await self._authorize(context)
        signed = await asyncio.to_thread(self._agent.records.report, self._agent.status(), request.nonce)
        return ota_pb2.Report(
            document=canonical_bytes(signed.signed),
            signatures=[
                ota_pb2.ReportSignature(keyid=item.keyid, sig=item.sig) for item in signed.signatures
            ],
        )

    @grpc_errors
    async def UpdateTrust(
        self, request: ota_pb2.UpdateTrustRequest, context: _Context
    ) -> ota_pb2.UpdateTrustResponse:
        await self._authorize(context)
        update = await asyncio.to_thread(
            self._agent.records.update_trust, list(request.roots), self._agent.record.state
        )
        return ota_pb2.UpdateTrustResponse(previous_version=update.previous, version=update.root.version)


class OtaServer:
    """A gRPC server for one update agent: the ``Ota`` service and health checking.

    Args:
        agent: the update agent.
        address: the address to listen on.
        port: the port; 0 picks a free one.
        security: TLS material and the token verifier; None serves plaintext without token checks.
        max_message_bytes: largest request accepted (an upload chunk plus framing).
    """

    def __init__(
        self,
        agent: UpdateAgent,
        *,
        address: str = DEFAULT_ADDRESS,
        port: int = 0,
        security: ServerSecurity | None = None,
        max_message_bytes: int | None = None,
    ) -> None:
        self.agent = agent
        self.address = address
        self.requested_port = port
        self.port: int | None = None
        self.security = security or ServerSecurity()
        self._max_message_bytes = max_message_bytes or agent.config.transfer.max_chunk_bytes + 64 * 1024
        self.guard = CallGuard(Limits(max_message_bytes=self._max_message_bytes), self.security.verifier)
        self._credentials = self.security.credentials()
        self._server: grpc.aio.Server | None = None
        self._health: Any = None

    @property
    def target(self) -> str:
        """``address:port`` for clients (after :meth:`start`)."""
        if self.port is None:
            raise RuntimeError("the server is not started")
        return host_port(self.address, self.port)

    async def start(self) -> int:
        """Bind and start serving; returns the port.

        Raises:
            BindError: the address and port cannot be bound.
        """
        if self._server is not None:
            raise RuntimeError("the server is already started")
        server = grpc.aio.server(
            interceptors=[self.guard],
            options=[
                ("grpc.so_reuseport", 0),
                ("grpc.max_receive_message_length", self._max_message_bytes),
            ],
        )
        ota_pb2_grpc.add_OtaServicer_to_server(OtaServicer(self.agent), server)
        self._health = health_aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        port = bind(server, self.address, self.requested_port, self._credentials)
        await server.start()
        for service in ("", OTA):
            await self._health.set(service, health_pb2.HealthCheckResponse.SERVING)
        self._server = server
        self.port = port
        _LOG.info("serving %s on %s", OTA, self.target)
        return port

    async def stop(self, grace: float = 2.0) -> None:
        """Stop serving; running calls get ``grace`` seconds."""
        server, self._server = self._server, None
        if server is None:
            return
        await self._health.enter_graceful_shutdown()
        await server.stop(grace)
