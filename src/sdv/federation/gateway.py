"""The gateway ECU's link to the cloud: outbound, TLS with the vehicle's own certificate, read-only.

The gateway opens a zenoh session of its own in client mode that connects out to ``gateway.endpoint`` and
listens on nothing, so that the cloud never reaches into the vehicle's network. On it the gateway only puts: it
declares no subscriber and no queryable, so a value or an actuation request from the cloud has nowhere to go
(the cloud subject is read-only). The telemetry is what the gateway's broker holds (its own and the mirrored
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

from sdv.broker import Broker, Subscription
from sdv.broker.access import UNRESTRICTED
from sdv.federation.codec import encode_datapoint
from sdv.federation.downsampling import TelemetryQueue
from sdv.federation.keys import KeyLayout
from sdv.federation.patterns import PathPatterns
from sdv.federation.session import close_bounded, cloud_settings, open_session
from sdv.federation_config import CloudLink, FederationConfig

__all__ = ["CloudGateway"]

_LOG = logging.getLogger(__name__)


class CloudGateway:
    """Sends the vehicle's telemetry to the cloud (see the module docstring)."""

    def __init__(
        self,
        broker: Broker,
        config: FederationConfig,
        resolve: Callable[[Path], Path],
        loop: asyncio.AbstractEventLoop,
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
        self.sent = 0

    @property
    def buffered(self) -> int:
        """Values waiting for the link."""
        return len(self._queue)

    async def start(self) -> None:
        """Open the cloud session (it keeps trying to connect in the background) and start sending."""
        settings = cloud_settings(self._link, self._resolve)
        self._session = await asyncio.to_thread(open_session, settings, "the cloud link")
        exported = PathPatterns.compile(self._link.export)
        paths = exported.select(meta.path for meta in self._broker.list_metadata(access=UNRESTRICTED))
        if paths:
            self._subscription = self._broker.subscribe(paths, access=UNRESTRICTED, counted=False)
            self._task = self._loop.create_task(self._send(self._subscription, self._session))
        _LOG.info("cloud link to %s: %d signals exported", self._link.endpoint, len(paths))

    async def stop(self) -> None:
        """Stop sending and close the cloud session within ``close_timeout_s``."""
        if self._subscription is not None:
            self._subscription.close()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
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
