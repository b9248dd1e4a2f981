"""The VISS v2 server: WebSocket (subprotocol ``VISSv2``) and HTTP on one port, in the gRPC server's event loop.

Invariants:

* :meth:`VissServer.start` listens on exactly the requested address and port (0: an ephemeral one, returned) or
  raises :class:`~sdv.errors.BindError`.
* Requests are answered by :class:`~sdv.viss.session.VissSession` for the caller's rights (the same tokens and
  scopes as gRPC); the port is TLS (with client certificates with a client CA) exactly when the gRPC port is.
* A WebSocket connection has one reader and one writer: answers and notifications wait in a queue of at most
  ``VissLimits.send_queue_messages``, with at most one notification per subscription; until it is written that
  subscription's values wait in the broker as the latest value per signal, and while the queue is full the
  connection's reader waits. A write that takes longer than ``VissLimits.send_timeout_s``
  disconnects the client; no other client waits for it.
* A WebSocket message over ``VissLimits.max_message_bytes`` closes that connection with 1009 (RFC 6455 §7.4.1:
  it cannot be answered without reading it); an HTTP body over it is answered 400. The server serves on.
* HTTP: ``GET /Vehicle/Speed`` (``?filter=`` a JSON filter) is a get, ``POST /Vehicle/...`` with
  ``{"value": ...}`` a set; the status is the VISS error number, 200 for an answer. Subscriptions need the
  WebSocket.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from types import TracebackType
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, hdrs, web

from sdv.api.security import ServerSecurity
from sdv.api.server import host_port
from sdv.broker import Broker
from sdv.errors import BindError
from sdv.viss.auth import Authenticator
from sdv.viss.config import DEFAULT_VISS_PORT, VissLimits
from sdv.viss.errors import VissError
from sdv.viss.messages import EncodedDatapoints, viss_time
from sdv.viss.session import VissSession
from sdv.viss.tls import server_context

__all__ = ["SUBPROTOCOL", "VissServer"]

_LOG = logging.getLogger(__name__)
SUBPROTOCOL = "VISSv2"


def _json_response(answer: dict[str, Any]) -> web.Response:
    answer.pop("action", None)  # VISS over HTTP: the method is the action
    error = answer.get("error")
    status = int(error["number"]) if isinstance(error, dict) else 200
    return web.json_response(answer, status=status)


def _refusal(number: int, reason: str, message: str) -> web.Response:
    return _json_response({"error": VissError(number, reason, message).as_json(), "ts": viss_time()})


class VissServer:
    """A VISS v2 server for one broker; use as ``async with`` or call :meth:`start` and :meth:`stop`.

    Args:
        broker: the signals served.
        address: the address to listen on (the rules of :meth:`ServerSecurity.check_address` apply before).
        port: the port; 0 picks a free one.
        security: TLS material and the token verifier, shared with the gRPC server; None: plaintext, no tokens.
        limits: the VISS limits.
    """

    def __init__(
        self,
        broker: Broker,
        *,
        address: str = "127.0.0.1",
        port: int = DEFAULT_VISS_PORT,
        security: ServerSecurity | None = None,
        limits: VissLimits | None = None,
    ) -> None:
        self.broker = broker
        self.address = address
        self.requested_port = port
        self.security = security or ServerSecurity()
        self.limits = limits or VissLimits()
        self.port: int | None = None
        self._authenticator = Authenticator(self.security.verifier)
        self._runner: web.AppRunner | None = None
        self._sockets: set[web.WebSocketResponse] = set()
        self._encoded = EncodedDatapoints()  # shared by every connection: the server has one event loop

    @property
    def target(self) -> str:
        """``address:port`` (after :meth:`start`)."""
        if self.port is None:
            raise RuntimeError("the VISS server is not started")
        return host_port(self.address, self.port)

    @property
    def connections(self) -> int:
        """Open WebSocket connections."""
        return len(self._sockets)

    async def start(self) -> int:
        """Bind and serve.

        Returns:
            The port listened on.

        Raises:
            BindError: the address and port cannot be bound.
            RuntimeError: the server was already started.
        """
        if self._runner is not None:
            raise RuntimeError("the VISS server is already started")
        app = web.Application(client_max_size=self.limits.max_message_bytes)
        app.router.add_route("*", "/{path:.*}", self._dispatch)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)  # nothing logged per request
        await runner.setup()
        site = web.TCPSite(
            runner,
            self.address,
            self.requested_port,
            ssl_context=server_context(self.security),
            reuse_address=True,
            reuse_port=False,
        )
        try:
            await site.start()
        except OSError as error:
            await runner.cleanup()
            where = host_port(self.address, self.requested_port)
            raise BindError(
                f"cannot listen on {where} for VISS: {error.strerror or error} (the port is in use or the "
                "address is not one of this host)"
            ) from error
        self._runner = runner
        self.port = int(runner.addresses[0][1])
        _LOG.info(
            "serving VISS v2 (WebSocket %s, HTTP) on %s (%s, %s)",
            SUBPROTOCOL,
            self.target,
            "mutual TLS" if self.security.client_ca else "TLS" if self.security.tls else "plaintext",
            "tokens checked" if self.security.verifier else "no token checks",
        )
        return self.port

    async def stop(self) -> None:
        """Close every WebSocket (1001, going away), giving them ``grace_period_s``, then stop listening."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        closing = [
            socket.close(code=WSCloseCode.GOING_AWAY, message=b"server stopping") for socket in self._sockets
        ]
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.limits.grace_period_s):
                await asyncio.gather(*closing, return_exceptions=True)
        await runner.cleanup()
        _LOG.info("VISS server on %s stopped", host_port(self.address, self.port or self.requested_port))

    async def __aenter__(self) -> VissServer:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # --- requests ------------------------------------------------------------------------------------------
    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get(hdrs.UPGRADE, "").lower() == "websocket":
            return await self._websocket(request)
        path = request.match_info["path"].strip("/").replace("/", ".")
        if request.method == hdrs.METH_GET:
            return await self._http_get(request, path)
        if request.method == hdrs.METH_POST:
            return await self._http_set(request, path)
        return _refusal(
            405, "bad_request", f"{request.method} is not a VISS request: use GET (get) or POST (set)"
        )

    def _session(self, request: web.Request, send: Any = None) -> VissSession:
        return VissSession(
            self.broker, self.limits, self._authenticator, request.remote or "unknown", send, self._encoded
        )

    async def _http_get(self, request: web.Request, path: str) -> web.Response:
        document: dict[str, Any] = {"action": "get", "path": path}
        if "filter" in request.query:
            try:
                document["filter"] = json.loads(request.query["filter"])
            except ValueError:
                return _refusal(400, "bad_request", "the filter query parameter is not JSON")
        answer = await self._session(request).answer_document(
            document, authorization=request.headers.get(hdrs.AUTHORIZATION)
        )
        return _json_response(answer)

    async def _http_set(self, request: web.Request, path: str) -> web.Response:
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return _refusal(
                400,
                "bad_request",
                f"the request body is longer than {self.limits.max_message_bytes} bytes "
                "(VissLimits.max_message_bytes)",
            )
        try:
            sent = json.loads(body)
        except (ValueError, RecursionError):
            return _refusal(400, "bad_request", "the request body is not JSON")
        if not isinstance(sent, dict) or "value" not in sent:
            return _refusal(400, "bad_request", 'the request body must be a JSON object {"value": ...}')
        document = {"action": "set", "path": path, "value": sent["value"]}
        if "requestId" in sent:
            document["requestId"] = sent["requestId"]
        answer = await self._session(request).answer_document(
            document, authorization=request.headers.get(hdrs.AUTHORIZATION)
        )
        return _json_response(answer)

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        socket = web.WebSocketResponse(protocols=(SUBPROTOCOL,), max_msg_size=self.limits.max_message_bytes)
        if socket.can_prepare(request).protocol != SUBPROTOCOL:
            return _refusal(
                400,
                "bad_request",
                f"a VISS WebSocket needs the subprotocol {SUBPROTOCOL} (Sec-WebSocket-Protocol)",
            )
        await socket.prepare(request)
        outbox: asyncio.Queue[tuple[dict[str, Any] | str, asyncio.Future[None]]] = asyncio.Queue(
            maxsize=self.limits.send_queue_messages
        )
        loop = asyncio.get_running_loop()

        async def send(message: dict[str, Any] | str) -> asyncio.Future[None]:
            written: asyncio.Future[None] = loop.create_future()
            await outbox.put((message, written))
            return written

        session = self._session(request, send)
        reader = loop.create_task(self._read(socket, session))
        writer = loop.create_task(self._write(socket, outbox, session.peer))
        self._sockets.add(socket)
        try:
            await asyncio.wait((reader, writer), return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._sockets.discard(socket)
            for task in (reader, writer):
                task.cancel()
            await asyncio.gather(reader, writer, return_exceptions=True)
            await session.close()
            if writer.done() and not writer.cancelled() and writer.result() is False:
                if request.transport is not None:
                    request.transport.abort()  # it reads nothing: no close handshake can complete
            elif not socket.closed:
                with contextlib.suppress(ConnectionError):
                    await socket.close()
        return socket

    async def _read(self, socket: web.WebSocketResponse, session: VissSession) -> None:
        async for message in socket:
            if message.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                await session.handle(message.data)
            elif message.type == WSMsgType.ERROR:
                _LOG.debug("VISS connection from %s ended: %s", session.peer, socket.exception())
                return

    async def _write(
        self,
        socket: web.WebSocketResponse,
        outbox: asyncio.Queue[tuple[dict[str, Any] | str, asyncio.Future[None]]],
        peer: str,
    ) -> bool:
        """Write what the connection queues; False when the client stopped reading (True: it went away)."""
        while True:
            message, written = await outbox.get()
            try:
                async with asyncio.timeout(self.limits.send_timeout_s):
                    await socket.send_str(message if isinstance(message, str) else json.dumps(message))
            except TimeoutError:
                _LOG.warning(
                    "disconnecting VISS client %s: a message waited %g s to be written (it reads nothing; "
                    "VissLimits.send_timeout_s)",
                    peer,
                    self.limits.send_timeout_s,
                )
                return False
            except ConnectionError:
                return True
            written.set_result(None)
