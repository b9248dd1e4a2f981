"""Answering actuation requests that arrive over zenoh: the owner's ``act`` queryables and the gateway's cloud ones.

A request (a query on ``act/<path>``: the value and the app's token) is checked as a gRPC call is: ``rights``
turns the forwarded token into the caller's :class:`~sdv.broker.access.Access` (verified with this ECU's key),
the broker checks that it may actuate the path and routes the request to the actuator's provider — this ECU's
HAL, an outside provider, or, for the gateway, the remote owner, to which the token is forwarded again
(:func:`sdv.api.calls.serve_for`) to be checked there once more. The reply is empty on success, else the
project's error (:func:`~sdv.federation.codec.encode_error_reply`).

zenoh's callbacks run on its threads and only hand the request to the loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import zenoh

from sdv.api.calls import serve_for
from sdv.broker import Broker
from sdv.broker.access import Access
from sdv.errors import ActuationError, SdvError, ValueOutOfRangeError
from sdv.federation.codec import FederationProtocolError, decode_request, encode_error_reply
from sdv.federation.keys import KeyLayout

__all__ = ["ActuationResponder", "reply", "reply_error"]

_LOG = logging.getLogger(__name__)

Rights = Callable[[str | None], Access]
"""The rights a request's forwarded token (None: it carries none) grants; raises the refusal."""


class ActuationResponder:
    """Carries out the requests of the queryables it makes (see the module docstring).

    Args:
        broker: this ECU's broker.
        layout: the vehicle's keys.
        rights: the rights of a request's token.
        max_payload_bytes: larger requests are refused unread.
        loop: the event loop the broker's asynchronous side runs on.
        who: whose requests these are, for the log (``a federated``, ``a cloud``).
    """

    def __init__(
        self,
        broker: Broker,
        layout: KeyLayout,
        rights: Rights,
        max_payload_bytes: int,
        loop: asyncio.AbstractEventLoop,
        who: str,
    ) -> None:
        self._broker = broker
        self._layout = layout
        self._rights = rights
        self._limit = max_payload_bytes
        self._loop = loop
        self._who = who
        self._requests: set[asyncio.Future[None]] = set()

    def handler(self, path: str) -> zenoh.handlers.Callback[zenoh.Query]:
        """The queryable callback of the actuator at ``path``."""

        def received(query: zenoh.Query) -> None:
            payload = query.payload.to_bytes() if query.payload is not None else b""
            if len(payload) > self._limit or self._loop.is_closed():
                reply_error(query, ValueOutOfRangeError(f"{path}: the request is over the size limit"))
                return
            self._loop.call_soon_threadsafe(self._start, query, path, payload)

        return zenoh.handlers.Callback(received)

    def stop(self) -> None:
        """Cancel the requests in flight (their queriers hear of nothing: an outcome they do not know)."""
        for request in list(self._requests):
            request.cancel()

    def _start(self, query: zenoh.Query, path: str, payload: bytes) -> None:
        request = asyncio.ensure_future(self._carry_out(query, path, payload))
        self._requests.add(request)
        request.add_done_callback(self._requests.discard)

    async def _carry_out(self, query: zenoh.Query, path: str, payload: bytes) -> None:
        # a task of its own: the rights set here are this request's only
        try:
            value, token = decode_request(payload)
            access = self._rights(token)
            serve_for(access, token)
            await self._broker.actuate([(path, value)], access=access)
        except FederationProtocolError as error:
            reply_error(query, ValueOutOfRangeError(f"{path}: {error}"))
        except SdvError as error:
            _LOG.info("refused or failed %s actuation of %s: %s", self._who, path, error)
            reply_error(query, error)
        except Exception as error:  # a provider's own failure (a CAN driver's): the requester hears of it
            _LOG.warning("%s actuation of %s failed: %s", self._who, path, error)
            reply_error(query, ActuationError(f"{path}: {error}"))
        else:
            reply(query, self._layout.actuator(path), b"")


def reply(query: zenoh.Query, key: str, payload: bytes) -> None:
    """Answer ``query`` with ``payload`` on ``key`` and finalise it (a querier gone is logged, not raised)."""
    try:
        query.reply(key, payload)
    except zenoh.ZError as error:  # the querier went away
        _LOG.debug("a reply on %s was not sent: %s", key, error)
    finally:
        query.drop()  # type: ignore[no-untyped-call]  # finalises the query for the querier


def reply_error(query: zenoh.Query, error: SdvError) -> None:
    """Answer ``query`` with ``error`` and finalise it."""
    try:
        query.reply_err(encode_error_reply(error))
    except zenoh.ZError as failure:
        _LOG.debug("an error reply was not sent: %s", failure)
    finally:
        query.drop()  # type: ignore[no-untyped-call]  # finalises the query for the querier
