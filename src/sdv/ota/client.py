"""``OtaClient``: a blocking client of an ECU's ``sdv.ota.v1.Ota`` service, for OTA servers and the CLI.

Invariants:

* reports are parsed as canonical documents before they are handed on, so a caller always holds exactly the
  bytes the agent signed;
* a push first announces the bundle with its signed header (read from the file), so the agent refuses a bundle
  it would not install before any payload byte is sent; it then sends only the bytes after the agent's
  persisted offset, so an interrupted push resumes instead of starting over;
* every failed call raises an :class:`~sdv.errors.SdvError` with the agent's message: the OTA status contract
  of ``proto/sdv/ota/v1/ota.proto`` mapped back to the exceptions the agent raised; no ``grpc`` exception
  leaves this module.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, TypeVar

import grpc

from sdv._proto.kuksa.val.v2 import val_pb2, val_pb2_grpc
from sdv._proto.sdv.ota.v1 import ota_pb2, ota_pb2_grpc
from sdv.client.address import OTA_AGENT_PORT, resolve_target
from sdv.client.channel import ChannelSecurity
from sdv.client.errors import ServerUnreachableError, WrongServiceError, handshake_failure
from sdv.errors import AccessDenied, AuthenticationError, SdvError, VerificationError
from sdv.ota.agent.report import EcuReport, SignedEcuReport
from sdv.ota.bundle.canonical import parse_canonical
from sdv.ota.bundle.keys import Signature
from sdv.ota.bundle.store import hash_file, read_bundle_header
from sdv.ota.errors import (
    AgentStateError,
    BundleFormatError,
    InsufficientSpaceError,
    OperationCancelledError,
    TransferInProgressError,
    TransferOffsetError,
)

if TYPE_CHECKING:
    from sdv._proto.sdv.ota.v1.ota_pb2_grpc import OtaStub

__all__ = ["OtaClient", "state_name"]

_T = TypeVar("_T")
_DEFAULT_CHUNK = 1024 * 1024

_ERRORS: dict[grpc.StatusCode, type[SdvError]] = {
    grpc.StatusCode.FAILED_PRECONDITION: AgentStateError,
    grpc.StatusCode.ABORTED: TransferInProgressError,
    grpc.StatusCode.OUT_OF_RANGE: TransferOffsetError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: InsufficientSpaceError,
    grpc.StatusCode.INVALID_ARGUMENT: VerificationError,
    grpc.StatusCode.PERMISSION_DENIED: AccessDenied,
    grpc.StatusCode.CANCELLED: OperationCancelledError,
    grpc.StatusCode.UNAUTHENTICATED: AuthenticationError,
}


def state_name(state: ota_pb2.State.ValueType) -> str:
    """The agent state's name as the agent spells it (``ready``, ``rolled-back``)."""
    return ota_pb2.State.Name(state).removeprefix("STATE_").lower().replace("_", "-")


class OtaClient:
    """Talks to one update agent.

    Args:
        target: ``HOST:PORT`` of the agent.
        timeout_s: deadline of the status, transfer and cancel calls. Streams have none (a big bundle takes
            long), nor have activate, mark-good and rollback: they may wait for a health check, which the agent
            bounds with its own timeout.
        security: TLS and the bearer token (``ota`` scope); None connects in plaintext without a token.
    """

    def __init__(
        self,
        target: str,
        *,
        timeout_s: float = 30.0,
        security: ChannelSecurity | None = None,
    ) -> None:
        target, security = resolve_target(target, OTA_AGENT_PORT, security or ChannelSecurity())
        self.target = target
        self._security = security
        self._timeout = timeout_s
        self._metadata = security.call_metadata()
        options = [("grpc.max_send_message_length", 64 * 1024 * 1024), *security.channel_options()]
        credentials = security.channel_credentials()
        self._channel = (
            grpc.secure_channel(target, credentials, options)
            if credentials is not None
            else grpc.insecure_channel(target, options)
        )
        self._stub: OtaStub = ota_pb2_grpc.OtaStub(self._channel)

    def close(self) -> None:
        """Close the channel."""
        self._channel.close()

    def __enter__(self) -> OtaClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _call(self, call: Callable[[], _T]) -> _T:
        try:
            return call()
        except grpc.RpcError as error:
            code: grpc.StatusCode = error.code()
            message: str = error.details() or code.name.lower()
            failure = handshake_failure(message, self.target, self._security)
            if failure is not None:
                raise failure from error
            if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                raise ServerUnreachableError(
                    f"cannot reach the update agent at {self.target}: {message}"
                ) from error
            if code == grpc.StatusCode.UNIMPLEMENTED:
                raise self._wrong_service() from error
            raise _ERRORS.get(code, SdvError)(message) from error

    def _wrong_service(self) -> WrongServiceError:
        """What answers at the target instead of an update agent: a signal server's info call tells."""
        try:
            val_pb2_grpc.VALStub(self._channel).GetServerInfo(
                val_pb2.GetServerInfoRequest(), timeout=self._timeout, metadata=self._metadata
            )
        except grpc.RpcError as error:
            if error.code() == grpc.StatusCode.UNIMPLEMENTED:
                return WrongServiceError(
                    f"{self.target} is not an sdv OTA agent: it does not serve sdv.ota.v1"
                )
        return WrongServiceError(f"{self.target} is a signal server (kuksa.val.v2), not an sdv OTA agent")

    def status(self) -> ota_pb2.Status:
        """The agent's status."""
        return self._call(
            lambda: self._stub.GetStatus(
                ota_pb2.GetStatusRequest(), timeout=self._timeout, metadata=self._metadata
            )
        )

    def begin_transfer(self, size: int, bundle_sha256: str, header: bytes) -> ota_pb2.TransferStatus:
        """Announce a bundle with its signed header; the answer's ``offset`` is where its upload continues.

        Raises:
            VerificationError: the agent refuses the bundle by its header (no payload byte was sent).
        """
        request = ota_pb2.BeginTransferRequest(size=size, bundle_sha256=bundle_sha256, header=header)
        return self._call(
            lambda: self._stub.BeginTransfer(request, timeout=self._timeout, metadata=self._metadata)
        )

    def push(
        self,
        bundle: Path,
        *,
        chunk_bytes: int = _DEFAULT_CHUNK,
        on_start: Callable[[int, int], None] | None = None,
        on_progress: Callable[[int], None] | None = None,
    ) -> ota_pb2.TransferStatus:
        """Transfer a bundle file, resuming where the agent's persisted offset stands.

        Args:
            bundle: the bundle file.
            chunk_bytes: bytes per upload message (at most what the agent accepts).
            on_start: called with (offset the upload continues at, bundle size) before the first chunk; a new
                transfer continues right after the header.
            on_progress: called with the agent's persisted offset after every chunk.

        Returns:
            The transfer's last status (state ``TRANSFERRED`` on success).

        Raises:
            BundleFormatError, SizeLimitError: the file's header cannot be read (nothing was sent).
            VerificationError: the agent refuses the bundle by its header (no payload byte was sent).
        """
        header = read_bundle_header(bundle).encode()  # exactly the file's first bytes (canonical sections)
        size, digest = hash_file(bundle)
        transfer = self.begin_transfer(size, digest, header)
        if on_start is not None:
            on_start(transfer.offset, size)
        if transfer.offset >= size:
            return transfer
        if transfer.max_chunk_bytes:
            chunk_bytes = min(chunk_bytes, transfer.max_chunk_bytes)

        def chunks() -> Iterator[ota_pb2.UploadChunk]:
            with bundle.open("rb") as source:
                offset = source.seek(transfer.offset)
                while data := source.read(chunk_bytes):
                    yield ota_pb2.UploadChunk(bundle_sha256=digest, offset=offset, data=data)
                    offset += len(data)

        def upload() -> ota_pb2.TransferStatus:
            last = transfer
            for answer in self._stub.Upload(chunks(), metadata=self._metadata):
                last = answer
                if on_progress is not None:
                    on_progress(answer.offset)
            return last

        return self._call(upload)

    def install(self, on_status: Callable[[ota_pb2.Status], None] | None = None) -> ota_pb2.Status:
        """Verify and stage the transferred bundle; returns the final status (``READY``)."""

        def install() -> ota_pb2.Status:
            last: ota_pb2.Status | None = None
            for status in self._stub.Install(ota_pb2.InstallRequest(), metadata=self._metadata):
                last = status
                if on_status is not None:
                    on_status(status)
            if last is None:  # pragma: no cover - the service always ends with a status
                raise SdvError(f"{self.target}: install ended without a status")
            return last

        return self._call(install)

    def activate(self) -> ota_pb2.Status:
        """Start the staged bundle on trial."""
        return self._call(lambda: self._stub.Activate(ota_pb2.ActivateRequest(), metadata=self._metadata))

    def mark_good(self) -> ota_pb2.Status:
        """Commit the slot on trial."""
        return self._call(lambda: self._stub.MarkGood(ota_pb2.MarkGoodRequest(), metadata=self._metadata))

    def rollback(self, reason: str = "") -> ota_pb2.Status:
        """Go back to the committed slot."""
        request = ota_pb2.RollbackRequest(reason=reason)
        return self._call(lambda: self._stub.Rollback(request, metadata=self._metadata))

    def cancel(self) -> ota_pb2.Status:
        """Abandon a transfer or a staged bundle."""
        return self._call(
            lambda: self._stub.Cancel(ota_pb2.CancelRequest(), timeout=self._timeout, metadata=self._metadata)
        )

    def report(self, nonce: str) -> SignedEcuReport:
        """The agent's signed ECU version report for ``nonce`` (check it with :func:`sdv.ota.agent.report.verify_report`).

        Raises:
            NonceFormatError: (as ``VerificationError``) the agent refused the nonce.
            BundleFormatError: the answer is not a well-formed report.
        """
        request = ota_pb2.GetReportRequest(nonce=nonce)
        answer = self._call(
            lambda: self._stub.GetReport(request, timeout=self._timeout, metadata=self._metadata)
        )
        try:
            return SignedEcuReport(
                signed=parse_canonical(EcuReport, answer.document, f"{self.target}: report"),
                signatures=[Signature(keyid=item.keyid, sig=item.sig) for item in answer.signatures],
            )
        except ValueError as error:
            raise BundleFormatError(
                f"{self.target}: the agent answered a malformed report: {error}"
            ) from error

    def update_trust(self, roots: Sequence[bytes]) -> ota_pb2.UpdateTrustResponse:
        """Send the next trust root versions (trust files' bytes, oldest first) to the agent."""
        request = ota_pb2.UpdateTrustRequest(roots=list(roots))
        return self._call(
            lambda: self._stub.UpdateTrust(request, timeout=self._timeout, metadata=self._metadata)
        )
