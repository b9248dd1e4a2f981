"""The one canonical byte encoding of every signed OTA document.

Invariants:

* A signed document (bundle manifest, trust root, install report) is a JSON object encoded with sorted keys,
  no whitespace, ASCII only (other characters as lowercase ``\\uXXXX`` escapes), integers only (no floats, NaN
  or infinities), and times as ``YYYY-MM-DDTHH:MM:SSZ`` in UTC. The same content therefore always yields the
  same bytes, and signatures are reproducible (the idea of TUF's canonical JSON, TUF specification "File
  formats: general principles").
* A reader accepts a document only if re-encoding the parsed model yields exactly the bytes it read
  (:func:`parse_canonical`). Any other spelling of the same content (whitespace, key order, escapes, duplicate
  keys, ``1.0`` for ``1``) is refused, so no byte of a signed document can change without detection even where
  the change would not alter its meaning.
* Signatures are computed over :func:`signing_input`, which prefixes the document with its kind. A signature
  made for one kind of document can therefore never be replayed as a signature of another kind.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, PlainSerializer, ValidationError, WithJsonSchema

__all__ = [
    "TIME_FORMAT",
    "UtcTime",
    "canonical_bytes",
    "canonical_json",
    "format_time",
    "parse_canonical",
    "parse_time",
    "signing_input",
]

TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
"""The only accepted spelling of a time in a signed document."""

_TIME_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$"
_TIME_RE = re.compile(_TIME_PATTERN)

ModelT = TypeVar("ModelT", bound=BaseModel)


def format_time(moment: datetime) -> str:
    """Spell an aware time in the canonical form (UTC, whole seconds).

    Raises:
        ValueError: if ``moment`` has no time zone.
    """
    if moment.tzinfo is None:
        raise ValueError(f"time {moment.isoformat()} has no time zone")
    return moment.astimezone(UTC).strftime(TIME_FORMAT)


def parse_time(text: str) -> datetime:
    """Parse a canonical time string.

    Raises:
        ValueError: if ``text`` is not spelled ``YYYY-MM-DDTHH:MM:SSZ``.
    """
    if not _TIME_RE.match(text):
        raise ValueError(f"time {text!r} is not spelled YYYY-MM-DDTHH:MM:SSZ")
    return datetime.strptime(text, TIME_FORMAT).replace(tzinfo=UTC)


def _check_utc_whole_seconds(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() != UTC.utcoffset(None):
        raise ValueError("time must be in UTC")
    if moment.microsecond:
        raise ValueError("time must have whole seconds")
    return moment


UtcTime = Annotated[
    datetime,
    AfterValidator(_check_utc_whole_seconds),
    PlainSerializer(format_time, return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time", "pattern": _TIME_PATTERN}),
]
"""A time in a signed document: aware, UTC, whole seconds, serialized as ``YYYY-MM-DDTHH:MM:SSZ``."""


def _reject_floats(value: Any, where: str) -> None:
    if isinstance(value, float):
        raise ValueError(f"{where}: floating-point numbers have no canonical encoding")
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"{where}: object key {key!r} is not a string")
            _reject_floats(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _reject_floats(item, f"{where}[{index}]")


def canonical_json(value: Any) -> bytes:
    """Encode a JSON-compatible value canonically (sorted keys, no spaces, ASCII, integers only).

    Raises:
        ValueError: if the value holds a float or a non-string object key.
    """
    _reject_floats(value, "$")
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return text.encode("ascii")


def canonical_bytes(model: BaseModel) -> bytes:
    """The canonical encoding of a pydantic model (its JSON-mode dump)."""
    return canonical_json(model.model_dump(mode="json"))


def parse_canonical(model_type: type[ModelT], data: bytes, what: str) -> ModelT:
    """Parse ``data`` as ``model_type`` and require that it is the canonical encoding of the result.

    Args:
        model_type: the pydantic model to validate against.
        data: the raw bytes as read.
        what: a label for error messages, such as ``"manifest of bundle.sdvota"``.

    Raises:
        ValueError: naming ``what`` and the first problem, if the bytes do not validate or are not canonical.
    """
    try:
        model = model_type.model_validate_json(data, strict=True)
    except ValidationError as error:
        first = error.errors()[0]
        location = ".".join(str(part) for part in first["loc"]) or "$"
        raise ValueError(f"{what}: {location}: {first['msg']}") from error
    if canonical_bytes(model) != data:
        raise ValueError(
            f"{what}: not in canonical form (sorted keys, no whitespace, ASCII, no duplicate keys)"
        )
    return model


def signing_input(kind: str, document: bytes) -> bytes:
    """The bytes a signature covers: a kind label, a NUL byte, then the canonical document.

    Args:
        kind: the document kind, such as ``"sdv-ota/manifest"``.
        document: the document's canonical bytes.
    """
    return b"sdv-ota signature v1\x00" + kind.encode("ascii") + b"\x00" + document
