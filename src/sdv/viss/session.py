"""The VISS requests of one client, answered from the broker on the client's behalf (transport-independent).

A WebSocket connection is one :class:`VissSession` for its lifetime (its subscriptions end with it); each HTTP
request is one of its own, without subscriptions. Invariants:

* Every request is parsed and checked completely (:mod:`sdv.viss.messages`) before the broker sees it, and every
  broker operation passes the caller's rights (``access=``), from the request's token or, on a WebSocket, the
  last token the connection sent, while it is valid.
* Every answer echoes the request's ``action`` and ``requestId``; a refused request is answered with an
  ``error`` (:mod:`sdv.viss.errors`), never by closing the connection.
* ``set`` goes through :meth:`~sdv.broker.Broker.actuate`: actuators only, validated, to the actuator's provider
  (the HAL sends the frame); the answer comes once the provider accepted it.
* At most ``VissLimits.max_subscriptions_per_connection`` subscriptions per connection, on top of the broker's
  limits per client and in all.
"""

from __future__ import annotations

import itertools
import logging
import time
from typing import Any

from sdv.broker import Broker
from sdv.broker.access import NO_RIGHTS, Access
from sdv.errors import (
    AuthenticationError,
    LimitExceededError,
    SdvError,
    UnknownSignalError,
    UnsupportedRequestError,
    ValueOutOfRangeError,
)
from sdv.types.signals import SignalMetadata
from sdv.viss.auth import Authenticator
from sdv.viss.config import VissLimits
from sdv.viss.errors import VissError, missing_token, viss_error
from sdv.viss.messages import (
    EncodedDatapoints,
    Request,
    datapoint_json,
    decode,
    echo,
    metadata_tree,
    parse_request,
    request_value,
    viss_time,
)
from sdv.viss.subscriptions import Send, SubscriptionPump

__all__ = ["VissSession"]

_LOG = logging.getLogger(__name__)


class _Refused(Exception):
    """A request answered with a VISS error before the broker was asked."""

    def __init__(self, error: VissError) -> None:
        super().__init__(error.message)
        self.error = error


class VissSession:
    """Answers one client's requests.

    Args:
        broker: the signals served.
        limits: the VISS limits.
        authenticator: checks the requests' tokens.
        peer: who the client is, for the rights without token checks and for logs.
        send: queues a message to the client (a WebSocket); None for HTTP, which has no subscriptions.
        encoded: the server's datapoint texts, shared by its subscriptions; None: the session's own.
    """

    def __init__(
        self,
        broker: Broker,
        limits: VissLimits,
        authenticator: Authenticator,
        peer: str,
        send: Send | None = None,
        encoded: EncodedDatapoints | None = None,
    ) -> None:
        self._broker = broker
        self._limits = limits
        self._authenticator = authenticator
        self.peer = peer
        self._send = send
        self._encoded = encoded or EncodedDatapoints()
        self._token: tuple[Access, float] | None = None  # the connection's last accepted token
        self._pumps: dict[str, SubscriptionPump] = {}
        self._starting: list[SubscriptionPump] = []  # started once their subscribe answer is queued
        self._ids = itertools.count(1)

    @property
    def subscription_count(self) -> int:
        """Subscriptions open on this connection."""
        return len(self._pumps)

    # --- requests ------------------------------------------------------------------------------------------
    async def handle(self, message: str | bytes) -> None:
        """Answer one WebSocket message; a new subscription's notifications follow its answer."""
        if self._send is None:
            raise RuntimeError("handle() needs a session with send (a WebSocket)")
        await self._send(await self.answer(message))
        starting, self._starting = self._starting, []
        for pump in starting:
            pump.start()

    async def answer(self, message: str | bytes) -> dict[str, Any]:
        """The answer to one request message (a JSON text, as received)."""
        try:
            document = decode(message)
        except SdvError as error:
            return self._error({}, viss_error(error, NO_RIGHTS))
        return await self.answer_document(document)

    async def answer_document(
        self, document: dict[str, Any], *, authorization: str | None = None
    ) -> dict[str, Any]:
        """The answer to one decoded request.

        Args:
            document: the request's JSON object.
            authorization: a token from outside the request (the HTTP header), if any; the request's own
                ``authorization`` member takes precedence.
        """
        access = NO_RIGHTS
        try:
            request = parse_request(
                document, min_period_ms=self._limits.min_period_ms, max_period_ms=self._limits.max_period_ms
            )
            access, expires = self._caller(request.authorization or authorization)
            return {**echo(document), **await self._handle(request, access, expires), "ts": viss_time()}
        except _Refused as refusal:
            return self._error(document, refusal.error)
        except SdvError as error:
            _LOG.debug("VISS request from %s refused: %s", self.peer, error)
            path = document.get("path")
            return self._error(document, viss_error(error, access, path if isinstance(path, str) else ""))
        except Exception:  # a defect must not end the connection nor show the client a traceback
            _LOG.exception("VISS request from %s failed", self.peer)
            return self._error(
                document, VissError(503, "service_unavailable", "the request failed in the server")
            )

    @staticmethod
    def _error(document: dict[str, Any], error: VissError) -> dict[str, Any]:
        return {**echo(document), "error": error.as_json(), "ts": viss_time()}

    def _caller(self, token: str | None) -> tuple[Access, float]:
        if token is not None:
            checked = self._authenticator.access(token, self.peer)
            if self._send is not None:
                self._token = checked  # a WebSocket's later requests may leave the token out
            return checked
        open_access = self._authenticator.open_access(self.peer)
        if open_access is not None:
            return open_access, float("inf")
        if self._token is None:
            raise _Refused(missing_token())
        if time.time() >= self._token[1]:
            raise AuthenticationError("the token has expired")
        return self._token

    async def _handle(self, request: Request, access: Access, expires: float) -> dict[str, Any]:
        if request.action == "get":
            return self._get(request, access)
        if request.action == "set":
            await self._set(request, access)
            return {}
        if request.action == "subscribe":
            return self._subscribe(request, access, expires)
        return await self._unsubscribe(request)

    def _signals(self, request: Request, access: Access) -> list[SignalMetadata]:
        """The signals a get or subscribe names: its path (a leaf or a branch), or the paths filter below it."""
        roots = (
            [f"{request.path}.{relative}" for relative in request.relative_paths]
            if request.relative_paths is not None
            else [request.path]
        )
        self._broker.check_request_size(len(roots))
        found: dict[str, SignalMetadata] = {}
        for root in roots:
            for meta in self._leaves(root, access):
                found.setdefault(meta.path, meta)
        self._broker.check_request_size(len(found), "signals")
        return list(found.values())

    def _leaves(self, root: str, access: Access) -> list[SignalMetadata]:
        """The signal at ``root``, or every signal below the branch or matching the wildcards of ``root``."""
        if "*" in root:
            return self._broker.list_metadata(root, access=access)
        try:
            return [self._broker.metadata(root, access=access)]
        except UnknownSignalError as unknown:
            try:
                return self._broker.list_metadata(root, access=access)  # a branch
            except UnknownSignalError:
                raise unknown from None  # neither: the answer with the close matches

    def _get(self, request: Request, access: Access) -> dict[str, Any]:
        signals = self._signals(request, access)
        if request.metadata:
            return {"metadata": metadata_tree(signals)}
        data = [datapoint_json(meta.path, self._broker.get(meta.path, access=access)) for meta in signals]
        return {"data": data[0] if len(data) == 1 else data}

    async def _set(self, request: Request, access: Access) -> None:
        if "*" in request.path:
            raise ValueOutOfRangeError("set names one actuator; its path has no wildcard")
        meta = self._broker.metadata(request.path, access=access)
        await self._broker.actuate([(meta.path, request_value(meta, request.value))], access=access)

    def _subscribe(self, request: Request, access: Access, expires: float) -> dict[str, Any]:
        if self._send is None:
            raise UnsupportedRequestError("subscribe needs the WebSocket transport (VISSv2 subprotocol)")
        if len(self._pumps) >= self._limits.max_subscriptions_per_connection:
            raise LimitExceededError(
                f"{len(self._pumps)} subscriptions are open on this connection; the limit is "
                f"{self._limits.max_subscriptions_per_connection} (VissLimits.max_subscriptions_per_connection)"
            )
        paths = [meta.path for meta in self._signals(request, access)]
        subscription = self._broker.subscribe(paths, access=access)
        subscription_id = str(next(self._ids))
        pump = SubscriptionPump(
            subscription_id,
            subscription,
            self._send,
            expires=expires,
            period_ms=request.period_ms,
            change=request.change,
            encoded=self._encoded,
        )
        self._pumps[subscription_id] = pump
        self._starting.append(pump)
        return {"subscriptionId": subscription_id}

    async def _unsubscribe(self, request: Request) -> dict[str, Any]:
        subscription_id = request.subscription_id or ""
        pump = self._pumps.pop(subscription_id, None)
        if pump is None:
            raise _Refused(
                VissError(404, "unavailable_data", f"no subscription {subscription_id!r} on this connection")
            )
        await pump.stop()
        return {"subscriptionId": subscription_id}

    async def close(self) -> None:
        """End every subscription of the connection."""
        pumps, self._pumps, self._starting = list(self._pumps.values()), {}, []
        for pump in pumps:
            await pump.stop()
