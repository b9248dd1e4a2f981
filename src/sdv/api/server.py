"""The gRPC server: ``kuksa.val.v2.VAL``, ``kuksa.val.v1.VAL``, health checking and reflection on one port, and
the typed ``sdv.cockpit.v1.Cockpit`` and ``sdv.adas.v1.Adas`` services when the profile maps their fields.

Invariants:

* :meth:`SdvServer.start` either listens on exactly the requested address and port (port 0: an ephemeral one,
  returned) or raises :class:`BindError`; a port another process already listens on is refused, never shared
  (gRPC's ``SO_REUSEPORT`` default is switched off).
* Health reports ``SERVING`` for the whole server and for every served service (both VAL services, and the typed
  services served) from start until stop begins, then ``NOT_SERVING`` while running calls get the grace period to
  finish.
* Each CAN bus whose state the broker serves has the health service name ``sdv.hal.bus.<bus>``: ``SERVING``
  while the bus is ``UP``, ``NOT_SERVING`` otherwise (:mod:`sdv.api.bus_health`); a bus going down does not
  change the overall ``""`` status.
* A typed service is served only when its ``services`` mapping names at least one field.
* Reflection lists exactly the services served.
* Every call passes the :class:`~sdv.api.guard.CallGuard` (authentication, stream limits, the caller's rights);
  the port is TLS when the :class:`~sdv.api.security.ServerSecurity` has a certificate, with client
  certificates required when it has a client CA.
"""

from __future__ import annotations

import logging
from types import TracebackType
from typing import Any

import grpc
from grpc_health.v1 import _async as health_aio  # the typed stubs lack the asyncio servicer
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from sdv._proto.kuksa.val.v1 import val_pb2 as val_v1_pb2
from sdv._proto.kuksa.val.v2 import val_pb2 as val_v2_pb2
from sdv._proto.sdv.adas.v1 import adas_pb2, adas_pb2_grpc
from sdv._proto.sdv.cockpit.v1 import cockpit_pb2, cockpit_pb2_grpc, notices_pb2, notices_pb2_grpc
from sdv.api.adas import AdasServicer
from sdv.api.bus_health import BusHealthReporter
from sdv.api.cockpit import CockpitServicer
from sdv.api.cockpit_notices import UpdateNoticesServicer
from sdv.api.config import ApiConfig
from sdv.api.encoded import add_servicer
from sdv.api.guard import CallGuard
from sdv.api.security import ServerSecurity
from sdv.api.val_v1 import ValV1Servicer
from sdv.api.val_v2 import ValV2Servicer
from sdv.broker import Broker
from sdv.errors import BindError
from sdv.hal.profile import ServicesConfig
from sdv.ota.agent.consent import NoticeBoard

__all__ = [
    "ADAS",
    "COCKPIT",
    "DEFAULT_ADDRESS",
    "DEFAULT_PORT",
    "NOTICES",
    "SERVICE_NAMES",
    "BindError",
    "SdvServer",
    "bind",
    "host_port",
]

_LOG = logging.getLogger(__name__)
DEFAULT_ADDRESS = "127.0.0.1"
DEFAULT_PORT = 55555
"""KUKSA's default port, so that clients find the server without configuration."""
VAL_V2 = val_v2_pb2.DESCRIPTOR.services_by_name["VAL"].full_name
VAL_V1 = val_v1_pb2.DESCRIPTOR.services_by_name["VAL"].full_name
COCKPIT = cockpit_pb2.DESCRIPTOR.services_by_name["Cockpit"].full_name
ADAS = adas_pb2.DESCRIPTOR.services_by_name["Adas"].full_name
NOTICES = notices_pb2.DESCRIPTOR.services_by_name["UpdateNotices"].full_name
SERVICE_NAMES: tuple[str, ...] = (VAL_V2, VAL_V1, health.SERVICE_NAME, reflection.SERVICE_NAME)
"""The services every server offers; :attr:`SdvServer.service_names` adds the typed services it serves."""


def host_port(address: str, port: int) -> str:
    """``address:port`` as gRPC spells it (IPv6 addresses in brackets)."""
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def bind(server: grpc.aio.Server, address: str, port: int, credentials: grpc.ServerCredentials | None) -> int:
    """Add the listening port (TLS with ``credentials``, plaintext without) and return the port bound.

    Raises:
        BindError: the port is in use or the address is not one of this host.
    """
    where = host_port(address, port)
    try:
        bound = (
            server.add_insecure_port(where)
            if credentials is None
            else server.add_secure_port(where, credentials)
        )
    except RuntimeError as error:
        raise BindError(
            f"cannot listen on {where}: the port is in use or the address is not one of this host"
        ) from error
    if bound == 0:  # older gRPC releases report a failed bind this way
        raise BindError(f"cannot listen on {where}")
    return bound


class SdvServer:
    """A gRPC server for one broker.

    Use as ``async with SdvServer(broker, port=0) as server:`` (then ``server.port``), or call :meth:`start` and
    :meth:`stop`.

    Args:
        broker: the signals served.
        address: the address to listen on.
        port: the port; 0 picks a free one.
        config: limits and timeouts.
        services: the profile's mapping of the typed services' fields to signals; without one (or for a service
            whose mapping is empty) that typed service is not served.
        security: TLS material and the token verifier; None serves plaintext without token checks (tests, the
            loopback demo). The address rules are applied by :meth:`ServerSecurity.check_address` before.
        notices: the vehicle's board of update notices (``sdv.cockpit.v1.UpdateNotices``, always served; default:
            a new, empty one).
    """

    def __init__(
        self,
        broker: Broker,
        *,
        address: str = DEFAULT_ADDRESS,
        port: int = DEFAULT_PORT,
        config: ApiConfig | None = None,
        services: ServicesConfig | None = None,
        security: ServerSecurity | None = None,
        notices: NoticeBoard | None = None,
    ) -> None:
        self.broker = broker
        self.notices = notices or NoticeBoard()
        self.security = security or ServerSecurity()
        self.guard = CallGuard(broker.limits, self.security.verifier)
        self.services = services or ServicesConfig()
        self.address = address
        self.requested_port = port
        self.config = config or ApiConfig()
        self.port: int | None = None
        self._server: grpc.aio.Server | None = None
        self._health: Any = None
        self._bus_health: BusHealthReporter | None = None

    @property
    def service_names(self) -> tuple[str, ...]:
        """Every service this server offers (listed by reflection)."""
        typed = [
            name
            for name, mapping in ((COCKPIT, self.services.cockpit), (ADAS, self.services.adas))
            if mapping
        ]
        return (*SERVICE_NAMES[:2], *typed, NOTICES, *SERVICE_NAMES[2:])

    @property
    def target(self) -> str:
        """``address:port`` for clients (after :meth:`start`)."""
        if self.port is None:
            raise RuntimeError("the server is not started")
        return host_port(self.address, self.port)

    async def start(self) -> int:
        """Bind, register every service and start serving.

        Returns:
            The port the server listens on.

        Raises:
            BindError: the address and port cannot be bound.
            RuntimeError: the server was already started.
        """
        if self._server is not None:
            raise RuntimeError("the server is already started")
        limits = self.broker.limits
        server = grpc.aio.server(
            interceptors=[self.guard],
            options=[
                ("grpc.so_reuseport", 0),
                ("grpc.max_receive_message_length", limits.max_message_bytes),
                ("grpc.max_concurrent_streams", limits.max_concurrent_streams),
            ],
        )
        # Their subscriptions answer with responses serialized once for all subscribers (sdv.api.encoded).
        add_servicer(
            server, ValV2Servicer(self.broker, self.config), val_v2_pb2.DESCRIPTOR.services_by_name["VAL"]
        )
        add_servicer(
            server, ValV1Servicer(self.broker, self.config), val_v1_pb2.DESCRIPTOR.services_by_name["VAL"]
        )
        if self.services.cockpit:
            cockpit_pb2_grpc.add_CockpitServicer_to_server(
                CockpitServicer(self.broker, self.services.cockpit), server
            )
        if self.services.adas:
            adas_pb2_grpc.add_AdasServicer_to_server(AdasServicer(self.broker, self.services.adas), server)
        notices_pb2_grpc.add_UpdateNoticesServicer_to_server(UpdateNoticesServicer(self.notices), server)
        self._health = health_aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        names = self.service_names
        reflection.enable_server_reflection(names, server)
        port = bind(server, self.address, self.requested_port, self.security.credentials())
        await server.start()
        for service in ("", *(name for name in names if name not in SERVICE_NAMES[2:])):
            await self._health.set(service, health_pb2.HealthCheckResponse.SERVING)
        self._bus_health = BusHealthReporter(self.broker, self._health)
        await self._bus_health.start()
        self._server = server
        self.port = port
        _LOG.info(
            "serving %s on %s (%s, %s)",
            ", ".join(names),
            self.target,
            "mutual TLS" if self.security.client_ca else "TLS" if self.security.tls else "plaintext",
            "tokens checked" if self.security.verifier else "no token checks",
        )
        return port

    async def stop(self, grace: float | None = None) -> None:
        """Stop serving: health turns ``NOT_SERVING``, running calls get ``grace`` seconds, then are cancelled."""
        server, self._server = self._server, None
        if server is None:
            return
        if self._bus_health is not None:
            await self._bus_health.stop()
        if self._health is not None:
            await self._health.enter_graceful_shutdown()
        await server.stop(self.config.grace_period_s if grace is None else grace)
        _LOG.info("server on %s stopped", host_port(self.address, self.port or self.requested_port))

    async def wait_for_termination(self) -> None:
        """Wait until the server stops."""
        if self._server is not None:
            await self._server.wait_for_termination()

    async def __aenter__(self) -> SdvServer:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()
