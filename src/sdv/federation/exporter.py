"""This ECU's own signals and actuators, offered to the other ECUs.

The exporter subscribes to the owned signals in the broker (its public subscription API: the latest value per
signal, never blocking the HAL) and puts each changed datapoint on its ``sig`` key, status included, so that a
``STALE``, ``E2E_FAILED`` or ``NOT_AVAILABLE`` value reaches the mirrors as such. It answers gets on those keys
with the current datapoint, gets on ``meta/<ecu>`` with its announcement, and queries on ``act/<path>`` for each
actuator it takes requests for.

An actuation request is checked here again, with the same decision as a gRPC call
(:class:`~sdv.federation.responder.ActuationResponder`): the forwarded token is verified with this ECU's key (when
this ECU checks tokens) and the broker checks its rights before the HAL writes a frame.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging

import zenoh

from sdv.api.tokens import TokenVerifier
from sdv.broker import Subscription
from sdv.broker.access import UNRESTRICTED, Access
from sdv.errors import AuthenticationError
from sdv.federation.codec import encode_announcement, encode_datapoint
from sdv.federation.context import FederationContext
from sdv.federation.responder import ActuationResponder, reply

__all__ = ["Exporter"]

_LOG = logging.getLogger(__name__)


class Exporter:
    """Puts the owned signals and answers for them (see the module docstring).

    Args:
        context: this ECU's federation.
        verifier: this ECU's token verifier (None: it checks no tokens, as its gRPC API).
    """

    def __init__(self, context: FederationContext, verifier: TokenVerifier | None) -> None:
        self._context = context
        self._verifier = verifier
        self._declared: list[object] = []
        self._subscription: Subscription | None = None
        self._task: asyncio.Task[None] | None = None
        self._responder = ActuationResponder(
            context.broker,
            context.layout,
            self._rights,
            context.config.max_payload_bytes,
            context.loop,
            "a federated",
        )
        self.puts = 0

    def start(self) -> None:
        """Declare the publishers and queryables and start putting changes; call on the loop."""
        context = self._context
        layout, session, ownership = context.layout, context.session, context.ownership
        announcement = encode_announcement(context.config.ecu, ownership.owned)
        meta_key = layout.meta(context.config.ecu)
        self._declared.append(
            session.declare_queryable(
                meta_key, lambda query: reply(query, meta_key, announcement), complete=True
            )
        )
        for path in ownership.exported:
            self._declared.append(
                session.declare_queryable(layout.signal(path), self._current_value(path), complete=True)
            )
        for path in ownership.actuators:
            self._declared.append(
                session.declare_queryable(layout.actuator(path), self._responder.handler(path), complete=True)
            )
        if ownership.exported:
            publishers = {path: session.declare_publisher(layout.signal(path)) for path in ownership.exported}
            self._declared.extend(publishers.values())
            self._subscription = context.broker.subscribe(
                list(ownership.exported), access=UNRESTRICTED, counted=False
            )
            self._task = context.loop.create_task(self._put_changes(self._subscription, publishers))

    async def stop(self) -> None:
        """Stop putting and answering."""
        if self._subscription is not None:
            self._subscription.close()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._responder.stop()

    async def _put_changes(self, subscription: Subscription, publishers: dict[str, zenoh.Publisher]) -> None:
        async for batch in subscription:
            for path, datapoint in batch.items():
                publishers[path].put(encode_datapoint(datapoint))
            self.puts += len(batch)

    def _current_value(self, path: str) -> zenoh.handlers.Callback[zenoh.Query]:
        key = self._context.layout.signal(path)

        def answer(query: zenoh.Query) -> None:
            # a read of the broker's store, which is thread-safe; nothing is written from this thread
            reply(query, key, encode_datapoint(self._context.broker.get(path, access=UNRESTRICTED)))

        return zenoh.handlers.Callback(answer)

    def _rights(self, token: str | None) -> Access:
        """The rights a forwarded request carries, decided as this ECU's gRPC API decides a call's."""
        if self._verifier is None:
            return dataclasses.replace(UNRESTRICTED, subject="an ECU over the federation")
        if token is None:
            raise AuthenticationError("this ECU checks tokens: the request carries none")
        return self._verifier.verify(token)[0]
