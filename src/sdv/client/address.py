"""Server addresses as users write them: ``HOST``, ``HOST:PORT``, ``grpc://HOST:PORT``, ``grpcs://HOST:PORT``.

Invariants:

* the result is always a gRPC target with a port (``HOST:PORT``, IPv6 hosts in brackets), so gRPC never picks
  its own default (443) for an address without one;
* ``grpcs://`` asks for TLS, ``grpc://`` for plaintext, as KUKSA's clients spell it; a bare address leaves the
  choice to the security flags;
* anything else (another scheme, a path, a port that is not 1 to 65535) is refused with the expected forms.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sdv.errors import SdvError

if TYPE_CHECKING:
    from sdv.client.channel import ChannelSecurity

__all__ = [
    "OTA_AGENT_PORT",
    "SIGNAL_SERVER_PORT",
    "AddressError",
    "ServerAddress",
    "parse_address",
    "resolve_target",
]

SIGNAL_SERVER_PORT = 55555
"""The port of a signal server that names none: ``sdv serve``'s and the KUKSA databroker's."""
OTA_AGENT_PORT = 55556
"""The port of an update agent that names none: ``sdv ota agent``'s."""

_SCHEMES = {"grpc": False, "grpcs": True}
_EXPECTED = "expected HOST, HOST:PORT, grpc://HOST:PORT or grpcs://HOST:PORT"


class AddressError(SdvError, ValueError):
    """A server address that is not one of the accepted forms."""


@dataclass(frozen=True)
class ServerAddress:
    """A parsed server address.

    Attributes:
        target: the gRPC target, ``HOST:PORT``.
        tls: True for ``grpcs://``, False for ``grpc://``, None when the address does not say.
    """

    target: str
    tls: bool | None = None


def parse_address(text: str, default_port: int) -> ServerAddress:
    """Parse ``text`` into a target with a port.

    Args:
        text: the address as given (``127.0.0.1``, ``ecu:55555``, ``[::1]:55555``, ``grpcs://ecu``).
        default_port: the port of an address that names none.

    Raises:
        AddressError: ``text`` is not one of the accepted forms.
    """
    rest = text.strip()
    tls: bool | None = None
    if "://" in rest:
        scheme, _, rest = rest.partition("://")
        if scheme.lower() not in _SCHEMES:
            raise AddressError(f"address {text!r}: scheme {scheme!r} is not supported; {_EXPECTED}")
        tls = _SCHEMES[scheme.lower()]
        rest = rest.removesuffix("/")
    if not rest or "/" in rest or any(character.isspace() for character in rest):
        raise AddressError(f"address {text!r}: {_EXPECTED}")
    host, port = _split(rest, text, default_port)
    return ServerAddress(f"[{host}]:{port}" if ":" in host else f"{host}:{port}", tls)


def _split(rest: str, text: str, default_port: int) -> tuple[str, int]:
    if rest.startswith("["):  # [IPv6]:PORT or [IPv6]
        host, bracket, after = rest[1:].partition("]")
        if not bracket or not host or (after and not after.startswith(":")):
            raise AddressError(f"address {text!r}: {_EXPECTED}")
        return host, _port(after[1:], text) if after else default_port
    if rest.count(":") > 1:  # a bare IPv6 address has no port
        return rest, default_port
    host, colon, port = rest.partition(":")
    if not host:
        raise AddressError(f"address {text!r}: no host; {_EXPECTED}")
    return host, _port(port, text) if colon else default_port


def _port(text: str, address: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise AddressError(f"address {address!r}: port {text!r} is not a TCP port (1 to 65535)")
    return int(text)


# gRPC's own target forms (``unix:/run/sdv.sock``, ``dns:///ecu:55555``) pass through unchanged.
_GRPC_FORMS = ("unix:", "unix-abstract:", "dns:", "ipv4:", "ipv6:")


def resolve_target(target: str, default_port: int, security: ChannelSecurity) -> tuple[str, ChannelSecurity]:
    """The gRPC target and security for an address a client was given: a default port, TLS for ``grpcs://``.

    Raises:
        AddressError: the address is not one of the accepted forms, or ``grpc://`` with TLS settings.
    """
    if target.startswith(_GRPC_FORMS):
        return target, security
    parsed = parse_address(target, default_port)
    if parsed.tls is True and not security.tls:
        security = dataclasses.replace(security, tls=True)
    elif parsed.tls is False and security.tls:
        raise AddressError(
            f"address {target!r}: grpc:// is plaintext, but TLS settings were given: use grpcs://"
        )
    return parsed.target, security
