"""The gateway ECU's link to the cloud: outbound, TLS with the vehicle's own certificate, read-only.

The gateway opens a zenoh session of its own in client mode that connects out to ``gateway.endpoint`` and
listens on nothing, so that the cloud never reaches into the vehicle's network. On it the gateway puts; it
declares no subscriber, so a value from the cloud has nowhere to go, and by default no queryable either (the
cloud subject is read-only). ``gateway.actuators`` lists the actuators the cloud may request: for each, an
``act`` queryable on the cloud session (:class:`~sdv.federation.responder.ActuationResponder`), which needs this
ECU to check tokens: a request must carry an app's token, verified here and checked against its scope as a gRPC
call is, then forwarded with the token to the actuator's owner, which checks it again. The telemetry is what the gateway's broker holds (its own and the mirrored
signals matching ``gateway.export``), downsampled per signal and buffered across link outages
(:class:`~sdv.federation.downsampling.TelemetryQueue`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path

import zenoh

from sdv.api.tokens import TokenVerifier
from sdv.broker import Broker, Subscription
from sdv.broker.access import UNRESTRICTED, Access
from sdv.errors import AuthenticationError, ConfigError, Problem
from sdv.federation.codec import encode_datapoint
from sdv.federation.downsampling import TelemetryQueue
from sdv.federation.keys import KeyLayout
from sdv.federation.patterns import PathPatterns
from sdv.federation.responder import ActuationResponder
from sdv.federation.session import close_bounded, cloud_settings, open_session
from sdv.federation_config import CloudLink, FederationConfig

__all__ = ["CloudGateway"]

_LOG = logging.getLogger(__name__)


class CloudGateway:
    """Sends the vehicle's telemetry to the cloud and takes its allowed requests (see the module docstring).

    Args:
        broker: this ECU's broker.
        config: the ``federation:`` section, with ``gateway``.
        resolve: turns a file name of the section into the file to open (relative to the profile).
        loop: the event loop the broker's asynchronous side runs on.
        verifier: this ECU's token verifier (None: it checks no tokens, and the cloud may request nothing).
    """

    def __init__(
        self,
        broker: Broker,
        config: FederationConfig,
        resolve: Callable[[Path], Path],
        loop: asyncio.AbstractEventLoop,
        verifier: TokenVerifier | None = None,
    ) -> None:
        if config.gateway is None:
            raise ValueError("a cloud gateway needs federation.gateway")
        self._link: CloudLink = config.gateway
        self._config = config
        self._broker = broker
        self._resolve = resolve
        self._loop = loop
        self._layout = KeyLayout(config.vehicle)
        self._queue = TelemetryQueue(self._link.downsample, self._link.buffer_size)
        self._session: zenoh.Session | None = None
        self._subscription: Subscription | None = None
        self._task: asyncio.Task[None] | None = None
        self._verifier = verifier
        self._responder = ActuationResponder(
            broker, self._layout, self._rights, config.max_payload_bytes, loop, "a cloud"
        )
        self._declared: list[object] = []
        self.sent = 0

    @property
    def buffered(self) -> int:
        """Values waiting for the link."""
        return len(self._queue)

    def actuators(self) -> list[str]:
        """The actuators of the broker the cloud may request (``gateway.actuators``)."""
        allowed = PathPatterns.compile(self._link.actuators)
        metas = self._broker.list_metadata(access=UNRESTRICTED)
        return [meta.path for meta in metas if meta.kind == "actuator" and allowed.matches(meta.path)]

    def check(self) -> list[str]:
        """The actuators the cloud may request, refused on an ECU that checks no tokens.

        Raises:
            ConfigError: ``gateway.actuators`` is set and this ECU checks no tokens.
        """
        actuators = self.actuators()
        if self._link.actuators and not actuators:
            _LOG.warning("federation.gateway.actuators %s matches no actuator", self._link.actuators)
        if self._link.actuators and self._verifier is None:
            raise ConfigError(
                [
                    Problem(
                        f"ECU {self._config.ecu}",
                        "federation.gateway.actuators",
                        "requests from the cloud need token checks on this ECU (sdv serve --jwt-public-key)",
                    )
                ]
            )
        return actuators

    async def start(self) -> None:
        """Open the cloud session (it keeps trying to connect in the background) and start sending.

        Raises:
            ConfigError: the session could not open, or ``gateway.actuators`` is set on an ECU that checks no
                tokens.
        """
        actuators = self.check()
        settings = cloud_settings(self._link, self._resolve)
        self._session = await asyncio.to_thread(open_session, settings, "the cloud link")
        for path in actuators:
            handler = self._responder.handler(path)
            self._declared.append(
                self._session.declare_queryable(self._layout.actuator(path), handler, complete=True)
            )
        exported = PathPatterns.compile(self._link.export)
        paths = exported.select(meta.path for meta in self._broker.list_metadata(access=UNRESTRICTED))
        if paths:
            self._subscription = self._broker.subscribe(paths, access=UNRESTRICTED, counted=False)
            self._task = self._loop.create_task(self._send(self._subscription, self._session))
        _LOG.info(
            "cloud link to %s: %d signals exported, %d actuators open to requests",
            self._link.endpoint,
            len(paths),
            len(actuators),
        )

    def _rights(self, token: str | None) -> Access:
        if self._verifier is None or token is None:
            raise AuthenticationError("a request from the cloud must carry an app's token")
        return self._verifier.verify(token)[0]

    async def stop(self) -> None:
        """Stop sending and close the cloud session within ``close_timeout_s``."""
        if self._subscription is not None:
            self._subscription.close()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._responder.stop()
        session, self._session = self._session, None
        if session is not None:
            await asyncio.to_thread(close_bounded, session, self._config.close_timeout_s)

    async def _send(self, subscription: Subscription, session: zenoh.Session) -> None:
        async for batch in subscription:
            now = time.monotonic()
            for path, datapoint in batch.items():
                self._queue.offer(path, datapoint, now)
            self._queue.release_held(now)
            info = session.info
            if not (info.routers_zid() or info.peers_zid()):
                continue  # the link is down (nothing connected): the values wait in the bounded buffer
            for path, datapoint in self._queue.take():
                session.put(self._layout.signal(path), encode_datapoint(datapoint))
                self.sent += 1
