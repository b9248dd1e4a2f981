"""Downloading a bundle into the agent with HTTP Range requests, resumably.

Invariants:

* the signed header is fetched first (byte ranges from 0, each length checked against the limits before it is
  asked for) and handed to the agent, which verifies it before it accepts a single payload byte;
* the payload is asked for from the agent's persisted offset (``Range: bytes=OFFSET-``), never from zero: after
  a cut connection, a timeout, or a power loss (the agent truncated its file to the persisted offset at start);
* a server that ignores ``Range`` is refused rather than read from the start;
* at most one chunk (``chunk_bytes``) is held in memory; a bandwidth limit spaces the chunks out.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from sdv.errors import ServerUnreachableError
from sdv.ota.bundle.format import read_header
from sdv.ota.errors import FleetServerError, HashMismatchError
from sdv.ota.fleet.http import Backoff, FleetHttp
from sdv.ota.fleet.updater import Identity, Updater

__all__ = ["Artifact", "Downloader"]

_logger = logging.getLogger(__name__)
_HEADER_READAHEAD = 4096  # one request holds the magic, the lengths and a typical manifest


@dataclass(frozen=True)
class Artifact:
    """A bundle on a server.

    Attributes:
        url: where to download it.
        size: its length in bytes.
        sha256: SHA-256 of the file (lowercase hex), the agent's transfer id.
        name: for logs and feedback.
    """

    url: str
    size: int
    sha256: str
    name: str


class _RangeReader:
    """A bundle's start as a stream, read in byte ranges (for :func:`~sdv.ota.bundle.format.read_header`)."""

    def __init__(self, http: FleetHttp, artifact: Artifact) -> None:
        self._http = http
        self._artifact = artifact
        self._buffer = b""
        self._position = 0

    def read(self, size: int = -1, /) -> bytes:
        if size < 0:  # pragma: no cover - read_header always asks for a length
            raise ValueError("a header read needs a length")
        wanted = min(self._position + size, self._artifact.size)
        if wanted > len(self._buffer):
            start = len(self._buffer)
            length = min(max(wanted - start, _HEADER_READAHEAD), self._artifact.size - start)
            self._buffer += self._http.read_range(self._artifact.url, start, length)
        data = self._buffer[self._position : wanted]
        self._position += len(data)
        return data

    def readinto(self, buffer: bytearray | memoryview, /) -> int | None:  # pragma: no cover - protocol only
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class Downloader:
    """Brings a bundle from a server into the agent's transfer, resuming until it is whole.

    Args:
        http: the server's client.
        updater: the agent.
        identity: the limits and the agent's largest chunk.
        clock: monotonic seconds (the bandwidth limit).
    """

    def __init__(
        self,
        http: FleetHttp,
        updater: Updater,
        identity: Identity,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._http = http
        self._updater = updater
        self._identity = identity
        self._clock = clock

    def header(self, artifact: Artifact) -> bytes:
        """The bundle's header as the server holds it (a few small Range requests).

        Raises:
            BundleFormatError, SizeLimitError: not a bundle, or sections over the limits.
            FleetServerError, ServerUnreachableError: the server's failures.
        """
        stream = _RangeReader(self._http, artifact)
        return read_header(stream, artifact.name, self._identity.limits).encode()

    def fetch(self, artifact: Artifact, on_progress: Callable[[int, int], None]) -> None:
        """Download ``artifact`` into the agent until its transfer holds every byte.

        A failed request is repeated after a backoff; the count of attempts starts again whenever bytes arrived.

        Args:
            artifact: the bundle.
            on_progress: called with (bytes the agent holds, bundle size) after every chunk.

        Raises:
            VerificationError: the agent refused the header (signatures, hardware id, counters, sizes, space).
            FleetServerError, ServerUnreachableError: ``max_attempts`` attempts in a row brought no byte.
            Stopped: the agent is stopping (the transfer stays resumable).
        """
        backoff = Backoff(self._http.config.backoff)
        header: bytes | None = None
        while True:
            try:
                if header is None:
                    header = self.header(artifact)
                transfer = self._updater.begin_transfer(artifact.size, artifact.sha256, header)
                on_progress(transfer.offset, transfer.size)
                if transfer.offset >= transfer.size:
                    return
                if self._stream(artifact, transfer.offset, on_progress):
                    backoff.reset()
                self._check_whole(artifact)
            except (ServerUnreachableError, FleetServerError) as error:
                if backoff.attempts >= self._http.config.backoff.max_attempts:
                    raise
                delay = backoff.next_delay()
                _logger.warning("%s: %s; retrying in %.1f s", artifact.name, error, delay)
                self._http.wait(delay)

    def _check_whole(self, artifact: Artifact) -> None:
        """A whole bundle whose SHA-256 is not the announced one failed the transfer: no second download."""
        record = self._updater.status().record
        if record.state.value == "failed" and record.transfer is None:
            raise HashMismatchError(record.failure or f"{artifact.name}: the received bundle was refused")

    def _stream(self, artifact: Artifact, offset: int, on_progress: Callable[[int, int], None]) -> bool:
        """Stream from ``offset`` into the agent; returns whether bytes arrived before a failure (raised then
        only when none did)."""
        _logger.info("%s: downloading bytes %d-%d", artifact.name, offset, artifact.size - 1)
        start, limit = self._clock(), self._http.config.max_rate_bytes_s
        first = offset
        chunk_bytes = min(self._http.config.chunk_bytes, self._identity.max_chunk_bytes)
        try:
            with self._updater.upload(), self._http.open_range(artifact.url, offset) as chunks:
                for chunk in chunks:
                    for piece in range(0, len(chunk), chunk_bytes):  # the agent's chunk limit may be lower
                        data = chunk[piece : piece + chunk_bytes]
                        self._updater.write_chunk(artifact.sha256, offset, data)
                        offset += len(data)
                    on_progress(offset, artifact.size)
                    if limit is not None:
                        self._http.wait((offset - first) / limit - (self._clock() - start))
        except (ServerUnreachableError, FleetServerError) as error:
            if offset == first:
                raise
            _logger.warning("%s: %s; resuming at byte %d", artifact.name, error, offset)
            return True
        return offset > first
