"""HTTP towards an update server: one ``httpx`` client with the configured TLS, timeouts and credentials, bounded
JSON documents, byte ranges, and the backoff between failed attempts.

Invariants:

* no response body is read beyond its bound: JSON documents stop at ``max_json_bytes``, a range at its length;
* a JSON document with a duplicate key is refused (two readers could see two different documents);
* every failure is a :class:`~sdv.ota.errors.FleetServerError` or
  :class:`~sdv.errors.ServerUnreachableError` naming the URL, never a library's exception.
"""

from __future__ import annotations

import json
import logging
import random
import re
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from sdv.errors import SecurityConfigError, ServerUnreachableError
from sdv.files import check_key_pair, read_pem
from sdv.ota.errors import FleetServerError
from sdv.ota.fleet.config import BackoffConfig, DownloadConfig, TlsConfig

__all__ = ["Backoff", "FleetHttp", "Stopped"]

_logger = logging.getLogger(__name__)
_CONTENT_RANGE = re.compile(r"^bytes ([0-9]{1,20})-([0-9]{1,20})/([0-9]{1,20}|\*)$")
_OK = 200
_PARTIAL = 206
_NO_CONTENT = 204


class Stopped(Exception):
    """The agent is stopping: the request or download in progress was abandoned (and stays resumable)."""


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        keys = [key for key, _ in pairs]
        duplicate = next(key for key in keys if keys.count(key) > 1)
        raise ValueError(f"duplicate key {duplicate[:64]!r}")
    return document


class Backoff:
    """Delays between failed attempts: exponential, capped, with jitter; :meth:`reset` after a success."""

    def __init__(self, config: BackoffConfig, rng: random.Random | None = None) -> None:
        self._config = config
        self._rng = rng or random.Random()
        self.attempts = 0

    def next_delay(self) -> float:
        """The delay before the next attempt (counting this failure)."""
        config = self._config
        base = min(config.initial_s * config.factor**self.attempts, config.max_s)
        self.attempts += 1
        return base * (1 + self._rng.uniform(-config.jitter, config.jitter))

    def reset(self) -> None:
        """A request succeeded: the next failure waits the initial delay again."""
        self.attempts = 0


class FleetHttp:
    """The agent's HTTP client towards one update server.

    Args:
        tls: the certificate authorities and the client certificate.
        download: timeouts and bounds.
        headers: sent with every request whose URL starts with ``credentials_for`` (``Authorization``).
        credentials_for: the URL prefix of the server the headers are for.
        stop: set when the agent stops; waits and downloads end at once.
    """

    def __init__(
        self,
        tls: TlsConfig,
        download: DownloadConfig,
        headers: dict[str, str] | None = None,
        credentials_for: str = "",
        stop: threading.Event | None = None,
    ) -> None:
        self.config = download
        self.stop = stop or threading.Event()
        timeout = httpx.Timeout(
            download.read_timeout_s, connect=download.connect_timeout_s, pool=download.connect_timeout_s
        )
        self._client = httpx.Client(verify=_ssl_context(tls), timeout=timeout, follow_redirects=False)
        self._credentials = dict(headers or {})
        self._credentials_for = credentials_for

    def close(self) -> None:
        """Close the connections."""
        self._client.close()

    def wait(self, seconds: float) -> None:
        """Wait ``seconds`` or until the agent stops.

        Raises:
            Stopped: the agent is stopping.
        """
        if self.stop.wait(max(seconds, 0.0)):
            raise Stopped

    # -- JSON ---------------------------------------------------------------------------------------------------

    def get_bytes(self, url: str) -> bytes:
        """GET a document's bytes (at most ``max_json_bytes``).

        Raises:
            FleetServerError: a status other than 200, or a larger document.
            ServerUnreachableError: no connection, or a timeout.
        """
        with self._request("GET", url, headers={"Accept": "application/json"}) as response:
            if response.status_code != _OK:
                raise FleetServerError(f"GET {url}: HTTP {response.status_code}, expected 200")
            return self._bounded(response, url, self.config.max_json_bytes)

    def get_json(self, url: str) -> Any:
        """GET a JSON document (at most ``max_json_bytes``).

        Raises:
            FleetServerError: a status other than 200, a larger or malformed document.
            ServerUnreachableError: no connection, or a timeout.
        """
        with self._request(
            "GET", url, headers={"Accept": "application/hal+json, application/json"}
        ) as response:
            if response.status_code != _OK:
                raise FleetServerError(f"GET {url}: HTTP {response.status_code}, expected 200")
            body = self._bounded(response, url, self.config.max_json_bytes)
        try:
            return json.loads(body, object_pairs_hook=_no_duplicates)
        except (ValueError, RecursionError) as error:
            raise FleetServerError(f"GET {url}: not a JSON document ({error})") from None

    def send_json(self, method: str, url: str, document: object) -> None:
        """POST or PUT a JSON document; any 2xx status is success.

        Raises:
            FleetServerError: another status.
            ServerUnreachableError: no connection, or a timeout.
        """
        body = json.dumps(document, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json"}
        with self._request(method, url, content=body, headers=headers) as response:
            self._bounded(response, url, self.config.max_json_bytes)  # drain the (small) answer
            if not 200 <= response.status_code < 300:
                raise FleetServerError(f"{method} {url}: HTTP {response.status_code}, expected 2xx")

    # -- byte ranges --------------------------------------------------------------------------------------------

    def read_range(self, url: str, start: int, length: int) -> bytes:
        """The ``length`` bytes from ``start`` (fewer only at the file's end).

        Raises:
            FleetServerError: the server ignores ``Range`` or answers another range.
            ServerUnreachableError: no connection, or a timeout.
        """
        with self.open_range(url, start, start + length - 1) as chunks:
            return b"".join(chunks)

    @contextmanager
    def open_range(self, url: str, start: int, end: int | None = None) -> Iterator[Iterator[bytes]]:
        """Stream bytes ``start``..``end`` (inclusive; ``None``: to the end) in chunks of ``chunk_bytes``.

        Raises:
            FleetServerError: the server ignores ``Range`` (HTTP 200) or answers another range.
            ServerUnreachableError: no connection, a timeout, or a connection cut mid-response (when iterating).
        """
        last = "" if end is None else str(end)
        with self._request("GET", url, headers={"Range": f"bytes={start}-{last}"}) as response:
            if response.status_code != _PARTIAL:
                raise FleetServerError(
                    f"GET {url}: HTTP {response.status_code} for bytes {start}-{last}, expected 206 "
                    "(the server must honour Range requests to resume downloads)"
                )
            match = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
            if (
                match is None
                or int(match.group(1)) != start
                or (end is not None and int(match.group(2)) > end)
            ):
                raise FleetServerError(
                    f"GET {url}: Content-Range {response.headers.get('Content-Range', '')[:80]!r} does not "
                    f"answer bytes {start}-{last}"
                )
            yield self._chunks(response, url, int(match.group(2)) - start + 1)

    def _chunks(self, response: httpx.Response, url: str, length: int) -> Iterator[bytes]:
        received = 0
        try:
            for chunk in response.iter_bytes(self.config.chunk_bytes):
                received += len(chunk)
                if received > length:
                    raise FleetServerError(f"GET {url}: more bytes than the {length} of the range")
                yield chunk
                if self.stop.is_set():
                    raise Stopped
        except httpx.HTTPError as error:
            raise ServerUnreachableError(
                f"GET {url}: the download broke after {received} bytes ({error})"
            ) from None
        if received != length:
            raise ServerUnreachableError(f"GET {url}: the response ended after {received} of {length} bytes")

    # -- plumbing -----------------------------------------------------------------------------------------------

    @contextmanager
    def _request(
        self, method: str, url: str, headers: dict[str, str], **options: Any
    ) -> Iterator[httpx.Response]:
        if self._credentials and self._credentials_for and url.startswith(self._credentials_for):
            headers = {**headers, **self._credentials}
        try:
            with self._client.stream(method, url, headers=headers, **options) as response:
                yield response
        except httpx.HTTPError as error:
            raise ServerUnreachableError(f"{method} {url}: {type(error).__name__}: {error}") from None

    def _bounded(self, response: httpx.Response, url: str, limit: int) -> bytes:
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > limit:
            raise FleetServerError(f"{url}: a document of {declared} bytes exceeds the limit of {limit}")
        body = bytearray()
        try:
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > limit:
                    raise FleetServerError(f"{url}: the document exceeds the limit of {limit} bytes")
        except httpx.HTTPError as error:
            raise ServerUnreachableError(f"{url}: the response broke ({error})") from None
        return bytes(body)


def _ssl_context(tls: TlsConfig) -> ssl.SSLContext:
    """The system's authorities or the configured ones; the client certificate for mutual TLS.

    Raises:
        SecurityConfigError: an unreadable CA file, certificate or key, or a key that is not the certificate's.
    """
    if tls.ca_file is not None:
        try:
            context = ssl.create_default_context(
                cadata=read_pem(tls.ca_file, "fleet CA file").decode("ascii")
            )
        except (ValueError, ssl.SSLError) as error:
            raise SecurityConfigError(f"fleet CA file {tls.ca_file}: no certificates ({error})") from None
    else:
        context = ssl.create_default_context()
    if tls.client_cert is not None and tls.client_key is not None:
        check_key_pair(
            read_pem(tls.client_cert, "fleet client certificate"),
            read_pem(tls.client_key, "fleet client key"),
            tls.client_cert,
            tls.client_key,
        )
        try:
            context.load_cert_chain(tls.client_cert, tls.client_key)
        except (OSError, ssl.SSLError) as error:
            raise SecurityConfigError(f"{tls.client_cert}: cannot be used for TLS ({error})") from None
    return context
