"""What travels on the federation's keys, encoded compactly (pure).

A **datapoint** (``sig`` keys) is 10 bytes of header — timestamp (float64 seconds since the epoch), status, value
tag — and the value: 1 byte for a boolean, 8 for a number, UTF-8 for a string, JSON for an array
(``bench/bench_federation.py`` measures it against JSON). An **actuation request** (a query on an ``act`` key)
and its **reply**, and an ECU's **ownership announcement** (``meta`` keys), are small JSON documents.

Every decoder is bounded by the size its caller checked and raises :class:`FederationProtocolError` on bytes that
are not what they should be; nothing here trusts the peer.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sdv.errors import (
    AccessDenied,
    ActuationError,
    AuthenticationError,
    NoProviderError,
    OutcomeUnknownError,
    OwnerUnreachableError,
    ProviderTimeoutError,
    ReadOnlyError,
    SdvError,
    UnknownSignalError,
    ValueOutOfRangeError,
)
from sdv.types.datatypes import Value
from sdv.types.signals import Datapoint
from sdv.types.status import Status

__all__ = [
    "Announcement",
    "FederationProtocolError",
    "OwnedSignal",
    "decode_announcement",
    "decode_datapoint",
    "decode_reply",
    "decode_request",
    "encode_announcement",
    "encode_datapoint",
    "encode_error_reply",
    "encode_request",
]

_HEADER = struct.Struct("<dBB")
_STATUS_CODES = {status: index for index, status in enumerate(Status)}
_STATUSES = list(Status)
_NONE, _BOOL, _INT, _UINT, _FLOAT, _TEXT, _JSON = range(7)
_INT64 = struct.Struct("<q")
_UINT64 = struct.Struct("<Q")
_FLOAT64 = struct.Struct("<d")


class FederationProtocolError(ValueError):
    """Bytes from a peer that do not decode (internal: the receiver logs and drops them)."""


def encode_datapoint(datapoint: Datapoint) -> bytes:
    """The bytes of one datapoint on a ``sig`` key."""
    value, timestamp, status = datapoint
    header = _HEADER.pack
    code = _STATUS_CODES[status]
    stamp = timestamp if timestamp is not None else 0.0
    if value is None:
        return header(stamp, code, _NONE)
    if isinstance(value, bool):
        return header(stamp, code, _BOOL) + (b"\x01" if value else b"\x00")
    if isinstance(value, int):
        if value >= 0 and value >> 63:
            return header(stamp, code, _UINT) + _UINT64.pack(value)
        return header(stamp, code, _INT) + _INT64.pack(value)
    if isinstance(value, float):
        return header(stamp, code, _FLOAT) + _FLOAT64.pack(value)
    if isinstance(value, str):
        return header(stamp, code, _TEXT) + value.encode()
    return header(stamp, code, _JSON) + json.dumps(list(value), separators=(",", ":")).encode()


def decode_datapoint(data: bytes) -> Datapoint:
    """The datapoint in ``data``.

    Raises:
        FederationProtocolError: a short header, an unknown status or tag, a value of the wrong size.
    """
    if len(data) < _HEADER.size:
        raise FederationProtocolError(f"a datapoint needs {_HEADER.size} bytes of header, got {len(data)}")
    timestamp, code, tag = _HEADER.unpack_from(data)
    body = data[_HEADER.size :]
    if code >= len(_STATUSES) or not math.isfinite(timestamp):
        raise FederationProtocolError(f"status {code} or timestamp {timestamp} is not valid")
    value: Value | None
    try:
        if tag == _NONE and not body:
            value = None
        elif tag == _BOOL and len(body) == 1 and body[0] in (0, 1):
            value = body[0] == 1
        elif tag == _INT:
            value = _INT64.unpack(body)[0]
        elif tag == _UINT:
            value = _UINT64.unpack(body)[0]
        elif tag == _FLOAT:
            value = _FLOAT64.unpack(body)[0]
        elif tag == _TEXT:
            value = body.decode()
        elif tag == _JSON:
            value = _json_array(body)
        else:
            raise FederationProtocolError(f"value tag {tag} with {len(body)} bytes is not valid")
    except (struct.error, UnicodeDecodeError, ValueError) as error:
        raise FederationProtocolError(f"value tag {tag}: {error}") from None
    return Datapoint(value, timestamp or None, _STATUSES[code])


def _json_array(body: bytes) -> Value:
    loaded = json.loads(body)
    if not isinstance(loaded, list) or not all(isinstance(item, bool | int | float | str) for item in loaded):
        raise FederationProtocolError("an array value is not a JSON list of scalars")
    return tuple(loaded)


# --- actuation ---------------------------------------------------------------------------------------------
def encode_request(value: Value, token: str | None) -> bytes:
    """An actuation request: the value and the app's token (None when the requesting ECU checks no tokens)."""
    return json.dumps({"value": value, "token": token}, separators=(",", ":")).encode()


def decode_request(data: bytes) -> tuple[Any, str | None]:
    """The value and the token of an actuation request.

    Raises:
        FederationProtocolError: not a JSON object with ``value`` and a string or null ``token``.
    """
    document = _json_object(data, "an actuation request")
    token = document.get("token")
    if "value" not in document or not (token is None or isinstance(token, str)):
        raise FederationProtocolError("an actuation request needs 'value' and a string or null 'token'")
    return document["value"], token


# The errors a reply may name, and the one each becomes at the requester: only the project's own refusals travel.
_REPLY_ERRORS: dict[str, type[SdvError]] = {
    error.__name__: error
    for error in (
        OwnerUnreachableError,
        OutcomeUnknownError,
        AccessDenied,
        AuthenticationError,
        UnknownSignalError,
        ReadOnlyError,
        ValueOutOfRangeError,
        NoProviderError,
        ProviderTimeoutError,
        ActuationError,
    )
}


def encode_error_reply(error: SdvError) -> bytes:
    """The reply of an owner that refused or failed a request: the error's class (or the nearest one a reply may
    name) and its message."""
    name = next(
        (cls.__name__ for cls in type(error).__mro__ if cls.__name__ in _REPLY_ERRORS),
        ActuationError.__name__,
    )
    message = error.args[0] if error.args and isinstance(error.args[0], str) else str(error)
    return json.dumps({"error": name, "message": message}, separators=(",", ":")).encode()


def decode_reply(data: bytes, ecu: str) -> SdvError:
    """The error of an owner's error reply, as the project's exception (unknown names: an ActuationError)."""
    try:
        document = _json_object(data, "an error reply")
    except FederationProtocolError as error:
        return ActuationError(f"ECU {ecu} answered with an unreadable error: {error}")
    error_type = _REPLY_ERRORS.get(str(document.get("error")), ActuationError)
    message = document.get("message")
    return error_type(f"ECU {ecu}: {message if isinstance(message, str) else 'no message'}")


# --- ownership announcements -------------------------------------------------------------------------------
@dataclass(frozen=True)
class OwnedSignal:
    """One signal or actuator an ECU owns, with what a mirror compares with its own metadata."""

    path: str
    kind: str
    datatype: str
    actuatable: bool


@dataclass(frozen=True)
class Announcement:
    """What one ECU owns."""

    ecu: str
    signals: tuple[OwnedSignal, ...]


def encode_announcement(ecu: str, signals: Sequence[OwnedSignal]) -> bytes:
    """The payload of ``meta/<ecu>``."""
    return json.dumps(
        {"ecu": ecu, "signals": [[s.path, s.kind, s.datatype, s.actuatable] for s in signals]},
        separators=(",", ":"),
    ).encode()


def decode_announcement(data: bytes) -> Announcement:
    """The announcement in ``data``.

    Raises:
        FederationProtocolError: not the document :func:`encode_announcement` writes.
    """
    document = _json_object(data, "an ownership announcement")
    ecu, rows = document.get("ecu"), document.get("signals")
    if not isinstance(ecu, str) or not isinstance(rows, list):
        raise FederationProtocolError("an ownership announcement needs 'ecu' and 'signals'")
    signals = []
    for row in rows:
        if not (
            isinstance(row, list)
            and len(row) == 4
            and all(isinstance(item, str) for item in row[:3])
            and isinstance(row[3], bool)
        ):
            raise FederationProtocolError("each owned signal is [path, kind, datatype, actuatable]")
        signals.append(OwnedSignal(row[0], row[1], row[2], row[3]))
    return Announcement(ecu, tuple(signals))


def _json_object(data: bytes, what: str) -> dict[str, Any]:
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, ValueError) as error:
        raise FederationProtocolError(f"{what} is not JSON: {error}") from None
    if not isinstance(document, dict):
        raise FederationProtocolError(f"{what} is not a JSON object")
    return document
