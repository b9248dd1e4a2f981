"""The channel a client talks over: plaintext or TLS (with a client certificate for mutual TLS), and a bearer
token sent with every call.

The token travels as ``authorization: Bearer <token>`` call metadata, as KUKSA's databroker expects it; it is
added by interceptors, so it is sent on plaintext channels too (the loopback demo, a KUKSA databroker without
TLS) and not only where gRPC's call credentials would allow it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc

from sdv.errors import SdvError
from sdv.files import check_key_pair, read_pem

__all__ = ["ChannelSecurity", "open_channel"]

if TYPE_CHECKING:  # generic only in the type stubs
    _UnaryUnary = grpc.aio.UnaryUnaryClientInterceptor[Any, Any]
    _UnaryStream = grpc.aio.UnaryStreamClientInterceptor[Any, Any]
    _StreamUnary = grpc.aio.StreamUnaryClientInterceptor[Any, Any]
    _StreamStream = grpc.aio.StreamStreamClientInterceptor[Any, Any]
else:
    _UnaryUnary = grpc.aio.UnaryUnaryClientInterceptor
    _UnaryStream = grpc.aio.UnaryStreamClientInterceptor
    _StreamUnary = grpc.aio.StreamUnaryClientInterceptor
    _StreamStream = grpc.aio.StreamStreamClientInterceptor


class _TokenHeader:
    def __init__(self, token: str) -> None:
        self._header = ("authorization", f"Bearer {token}")

    def _details(self, details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        metadata = grpc.aio.Metadata(*(details.metadata or ()), self._header)
        return grpc.aio.ClientCallDetails(
            details.method, details.timeout, metadata, details.credentials, details.wait_for_ready
        )


# grpc.aio files an interceptor under the first call type it implements only, so one class per call type.
class _UnaryToken(_TokenHeader, _UnaryUnary):
    async def intercept_unary_unary(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return await continuation(self._details(client_call_details), request)


class _UnaryStreamToken(_TokenHeader, _UnaryStream):
    async def intercept_unary_stream(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return await continuation(self._details(client_call_details), request)


class _StreamUnaryToken(_TokenHeader, _StreamUnary):
    async def intercept_stream_unary(self, continuation: Any, client_call_details: Any, requests: Any) -> Any:
        return await continuation(self._details(client_call_details), requests)


class _StreamStreamToken(_TokenHeader, _StreamStream):
    async def intercept_stream_stream(
        self, continuation: Any, client_call_details: Any, requests: Any
    ) -> Any:
        return await continuation(self._details(client_call_details), requests)


@dataclass(frozen=True)
class ChannelSecurity:
    """How a client authenticates the server and itself.

    Attributes:
        token: a bearer token (JWT) sent with every call, or None.
        tls: connect with TLS.
        root_certificates: the CA the server's certificate must chain to (PEM); None uses the system's roots.
        certificate_chain: the client's certificate (PEM), for servers that demand one (mutual TLS).
        private_key: its private key (PEM).
        server_name: the name the server's certificate must carry, when it is not the target's host.
    """

    token: str | None = None
    tls: bool = False
    root_certificates: bytes | None = None
    certificate_chain: bytes | None = None
    private_key: bytes | None = None
    server_name: str | None = None

    @classmethod
    def from_files(
        cls,
        *,
        token: str | None = None,
        token_file: Path | None = None,
        tls_ca: Path | None = None,
        tls_cert: Path | None = None,
        tls_key: Path | None = None,
        tls: bool = False,
        server_name: str | None = None,
    ) -> ChannelSecurity:
        """Read the files named by the client commands' flags; any TLS file implies TLS.

        Raises:
            SdvError: a file cannot be read or is not PEM; a certificate without its key.
        """
        if (tls_cert is None) != (tls_key is None):
            raise SdvError("--tls-cert and --tls-key go together: give both or neither")
        if token_file is not None:
            try:
                token = token_file.read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError) as error:
                raise SdvError(f"--token-file {token_file}: cannot be read: {error}") from error
        certificate_chain = read_pem(tls_cert, "--tls-cert") if tls_cert else None
        private_key = read_pem(tls_key, "--tls-key") if tls_key else None
        if certificate_chain is not None and private_key is not None and tls_cert and tls_key:
            check_key_pair(certificate_chain, private_key, tls_cert, tls_key)
        return cls(
            token=token or None,
            tls=tls or tls_ca is not None or tls_cert is not None,
            root_certificates=read_pem(tls_ca, "--tls-ca") if tls_ca else None,
            certificate_chain=certificate_chain,
            private_key=private_key,
            server_name=server_name,
        )

    def channel_credentials(self) -> grpc.ChannelCredentials | None:
        """TLS credentials for a channel, or None for plaintext."""
        if not self.tls:
            return None
        return grpc.ssl_channel_credentials(
            root_certificates=self.root_certificates,
            private_key=self.private_key,
            certificate_chain=self.certificate_chain,
        )

    def channel_options(self) -> list[tuple[str, str]]:
        """Channel options: the server name override, if any."""
        return [("grpc.ssl_target_name_override", self.server_name)] if self.server_name else []

    def call_metadata(self) -> tuple[tuple[str, str], ...]:
        """The metadata every call carries: the bearer token, if any (for synchronous clients)."""
        return (("authorization", f"Bearer {self.token}"),) if self.token else ()


def open_channel(target: str, security: ChannelSecurity | None = None) -> grpc.aio.Channel:
    """An asyncio channel to ``target`` (``HOST:PORT``) with the given security."""
    security = security or ChannelSecurity()
    # grpc-stubs type the interceptors parameter as a placeholder that no class matches.
    interceptors: list[Any] | None = None
    if security.token is not None:
        token = security.token
        interceptors = [
            _UnaryToken(token),
            _UnaryStreamToken(token),
            _StreamUnaryToken(token),
            _StreamStreamToken(token),
        ]
    credentials = security.channel_credentials()
    if credentials is None:
        return grpc.aio.insecure_channel(target, interceptors=interceptors)
    return grpc.aio.secure_channel(
        target, credentials, options=security.channel_options(), interceptors=interceptors
    )
