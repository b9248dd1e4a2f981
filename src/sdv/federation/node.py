"""One ECU's place in the federated vehicle: the zenoh session, the exporter, the mirror, the cloud link.

``sdv serve`` starts it after the broker and the HAL, on the event loop that serves gRPC, and stops it before
them; :meth:`Federation.stop` waits at most ``federation.close_timeout_s`` for the session to close.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import zenoh

from sdv.api.tokens import TokenVerifier
from sdv.broker import Broker, Owner, OwnerKind
from sdv.broker.access import UNRESTRICTED
from sdv.federation.context import FederationContext
from sdv.federation.exporter import Exporter
from sdv.federation.gateway import CloudGateway
from sdv.federation.keys import KeyLayout
from sdv.federation.mirror import Mirror, RemoteEcu
from sdv.federation.ownership_map import EcuOwnership
from sdv.federation.session import close_bounded, open_session, read_access_control, zenoh_settings
from sdv.federation_config import FederationConfig
from sdv.hal.vehicle import VehicleDefinition

__all__ = ["Federation"]

_LOG = logging.getLogger(__name__)


class Federation:
    """This ECU's federation with the others (see the module docstring).

    Args:
        broker: this ECU's broker.
        vehicle: its profile, which says what it owns.
        config: the profile's ``federation:`` section.
        verifier: the token verifier of this ECU's gRPC API (None: tokens are not checked there either).
        resolve: turns a file name of the section into the file to open (relative to the profile).
    """

    def __init__(
        self,
        broker: Broker,
        vehicle: VehicleDefinition,
        config: FederationConfig,
        *,
        verifier: TokenVerifier | None = None,
        resolve: Callable[[Path], Path] = lambda path: path,
    ) -> None:
        self.config = config
        self.broker = broker
        self.ownership = EcuOwnership.of(vehicle, config)
        self._verifier = verifier
        self._resolve = resolve
        self._session: zenoh.Session | None = None
        self._token: zenoh.LivelinessToken | None = None
        self._exporter: Exporter | None = None
        self._mirror: Mirror | None = None
        self._gateway: CloudGateway | None = None
        self._owner = Owner(OwnerKind.CLIENT, f"the federation of ECU {config.ecu}")

    def settings(self) -> dict[str, Any]:
        """The zenoh configuration of the in-vehicle session (with the access rules, when configured)."""
        rules = self.config.access_rules
        access_control = read_access_control(self._resolve(rules)) if rules is not None else None
        return zenoh_settings(self.config, self._resolve, access_control)

    async def start(self) -> None:
        """Open the session, announce this ECU and start mirroring the others.

        Raises:
            ConfigError: the session could not open (a port in use, unreadable TLS material, bad access rules).
        """
        if self._session is not None:
            raise RuntimeError("the federation is already started")
        loop = asyncio.get_running_loop()
        settings = self.settings()
        if self.config.gateway is not None:  # refused before anything opens
            self._gateway = CloudGateway(self.broker, self.config, self._resolve, loop, self._verifier)
            self._gateway.check()
        session = await asyncio.to_thread(open_session, settings, f"ECU {self.config.ecu}")
        self._session = session
        context = FederationContext(self.broker, session, self.config, self.ownership, loop)
        self._exporter = Exporter(context, self._verifier)
        self._exporter.start()
        self._mirror = Mirror(context)
        # the status signals are this ECU's own: no outside provider may publish them
        self.broker.claim_signals(self._mirror.status_paths, self._owner, access=UNRESTRICTED)
        self._mirror.start()
        # declared last: a peer that sees the token finds the announcement and the values already answered
        self._token = session.liveliness().declare_token(KeyLayout(self.config.vehicle).ecu(self.config.ecu))
        if self._gateway is not None:
            await self._gateway.start()
        _LOG.info(
            "federation: ECU %s of vehicle %s, %d signals owned (%d shared, %d actuators), listening on %s",
            self.config.ecu,
            self.config.vehicle,
            len(self.ownership.owned),
            len(self.ownership.exported),
            len(self.ownership.actuators),
            ", ".join(self.config.listen) or "nothing",
        )

    @property
    def remote_ecus(self) -> dict[str, RemoteEcu]:
        """The other ECUs seen so far, by name."""
        return self._mirror.ecus if self._mirror is not None else {}

    async def stop(self) -> None:
        """Stop mirroring and exporting, then close the session within ``close_timeout_s``."""
        if self._gateway is not None:
            await self._gateway.stop()
        for part in (self._mirror, self._exporter):
            if part is not None:
                await part.stop()
        self.broker.release(self._owner)
        session, self._session = self._session, None
        if session is not None:
            await asyncio.to_thread(close_bounded, session, self.config.close_timeout_s)
