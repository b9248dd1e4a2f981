"""VISS v2 messages (W3C VISS v2 core and transport): requests parsed into plain objects, responses built (pure).

A request is a JSON object with ``action`` (``get``, ``set``, ``subscribe``, ``unsubscribe``), ``requestId``
(echoed in every answer), ``path`` (a VSS path; over HTTP the URL path with ``/`` between segments),
``filter``, ``value``, ``subscriptionId`` and ``authorization`` (a token). Invariants:

* Every request is checked completely here before anything is looked up: a malformed one is a
  :class:`~sdv.errors.ValueOutOfRangeError` (or :class:`~sdv.errors.UnsupportedRequestError` for what VISS
  defines and this server does not do) whose message names the member and what was expected.
* Values travel as VISS writes them: strings (``"true"``, ``"54.5"``), arrays as JSON arrays of strings; a
  signal without a valid value has ``"value": null``. Times are ISO 8601 in UTC with milliseconds and ``Z``.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sdv.errors import UnsupportedRequestError, ValueOutOfRangeError
from sdv.types.datatypes import Value, coerce, parse_text
from sdv.types.signals import Datapoint, SignalMetadata
from sdv.types.status import Status

__all__ = [
    "ACTIONS",
    "LOGIC_OPERATORS",
    "ChangeFilter",
    "EncodedDatapoints",
    "Request",
    "datapoint_json",
    "decode",
    "echo",
    "metadata_tree",
    "parse_request",
    "request_value",
    "viss_time",
]

ACTIONS = ("get", "set", "subscribe", "unsubscribe")
LOGIC_OPERATORS = ("eq", "ne", "gt", "gte", "lt", "lte")
_METADATA_VARIANTS = ("static-metadata", "metadata")
_VARIANTS = ("paths", "timebased", "change", *_METADATA_VARIANTS)


@dataclass(frozen=True)
class ChangeFilter:
    """Notify when ``new - last_notified`` compares to ``diff`` as ``logic_op`` says (``ne`` 0: any change).

    For values that are not numbers only ``eq`` and ``ne`` apply, to the values themselves.
    """

    logic_op: str
    diff: float

    def passes(self, last: Value | None, new: Value | None) -> bool:
        """Whether ``new`` is to be notified after ``last``."""
        if last is None or new is None:
            return last is not new if self.logic_op != "eq" else last is new
        if isinstance(last, int | float) and isinstance(new, int | float) and not isinstance(new, bool):
            delta = float(new) - float(last)
            return {
                "eq": delta == self.diff,
                "ne": delta != self.diff,
                "gt": delta > self.diff,
                "gte": delta >= self.diff,
                "lt": delta < self.diff,
                "lte": delta <= self.diff,
            }[self.logic_op]
        return (new == last) if self.logic_op == "eq" else (new != last)


@dataclass(frozen=True)
class Request:
    """One checked VISS request.

    Attributes:
        action: ``get``, ``set``, ``subscribe`` or ``unsubscribe``.
        request_id: the client's ``requestId``, echoed (None when it sent none).
        path: the VSS path (dots), empty for ``unsubscribe``.
        relative_paths: the ``paths`` filter's paths below ``path`` (``*`` for one segment), or None.
        metadata: a ``static-metadata`` get.
        period_ms: a ``timebased`` subscription's period.
        change: a ``change`` subscription's filter.
        value: a ``set``'s value as the client sent it.
        subscription_id: an ``unsubscribe``'s subscription.
        authorization: the token the request carries, if any.
    """

    action: str
    request_id: str | int | None
    path: str = ""
    relative_paths: tuple[str, ...] | None = None
    metadata: bool = False
    period_ms: int | None = None
    change: ChangeFilter | None = None
    value: Any = None
    subscription_id: str | None = None
    authorization: str | None = field(default=None, repr=False)


def decode(message: str | bytes) -> dict[str, Any]:
    """The JSON object of one message.

    Raises:
        ValueOutOfRangeError: the message is not UTF-8 JSON, or not an object.
    """
    try:
        document = json.loads(message)
    except (ValueError, RecursionError) as error:  # RecursionError: nesting deeper than the parser goes
        reason = (
            f"line {error.lineno} column {error.colno}: {error.msg}"
            if isinstance(error, json.JSONDecodeError)
            else "nested too deeply"
        )
        raise ValueOutOfRangeError(f"the message is not JSON ({reason})") from None
    if not isinstance(document, dict):
        raise ValueOutOfRangeError(f"the message is a JSON {type(document).__name__}; expected an object")
    return document


def echo(document: dict[str, Any]) -> dict[str, Any]:
    """The members every answer to ``document`` repeats: its ``action`` and ``requestId``, when well formed."""
    echoed: dict[str, Any] = {}
    if document.get("action") in ACTIONS:
        echoed["action"] = document["action"]
    request_id = document.get("requestId")
    if isinstance(request_id, str | int) and not isinstance(request_id, bool):
        echoed["requestId"] = request_id
    return echoed


def _text(document: dict[str, Any], name: str) -> str:
    value = document.get(name)
    if not isinstance(value, str) or not value:
        raise ValueOutOfRangeError(f"'{name}': expected a non-empty string")
    return value


def _optional_text(document: dict[str, Any], name: str) -> str | None:
    return None if document.get(name) is None else _text(document, name)


def _filters(document: dict[str, Any]) -> list[dict[str, Any]]:
    raw = document.get("filter")
    if raw is None:
        return []
    filters = raw if isinstance(raw, list) else [raw]
    for position, item in enumerate(filters):
        if not isinstance(item, dict) or not isinstance(item.get("variant"), str):
            raise ValueOutOfRangeError(
                f"'filter'[{position}]: expected an object with 'variant' and 'parameter'"
            )
        if item["variant"] not in _VARIANTS:
            raise UnsupportedRequestError(
                f"'filter': variant {item['variant']!r} is not supported; supported: {', '.join(_VARIANTS)}"
            )
    variants = [item["variant"] for item in filters]
    if len(set(variants)) != len(variants):
        raise ValueOutOfRangeError("'filter': each variant at most once")
    return filters


def _relative_paths(parameter: Any) -> tuple[str, ...]:
    paths = [parameter] if isinstance(parameter, str) else parameter
    if not isinstance(paths, list) or not paths or not all(isinstance(p, str) and p for p in paths):
        raise ValueOutOfRangeError("'filter' paths: 'parameter' must be a path or a list of paths")
    for path in paths:
        if any(not segment for segment in path.split(".")):
            raise ValueOutOfRangeError(f"'filter' paths: {path!r} has an empty segment")
    return tuple(paths)


def _number(parameter: Any, name: str, what: str) -> float:
    value = parameter.get(name) if isinstance(parameter, dict) else None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            value = None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueOutOfRangeError(f"'filter' {what}: 'parameter.{name}' must be a number (as a string)")
    return float(value)


def _period(parameter: Any, minimum_ms: int, maximum_ms: int) -> int:
    period = _number(parameter, "period", "timebased")
    if not period.is_integer() or not minimum_ms <= period <= maximum_ms:
        raise ValueOutOfRangeError(
            f"'filter' timebased: the period must be whole milliseconds from {minimum_ms} to {maximum_ms}"
        )
    return int(period)


def _change(parameter: Any) -> ChangeFilter:
    operator = parameter.get("logic-op") if isinstance(parameter, dict) else None
    if operator not in LOGIC_OPERATORS:
        raise ValueOutOfRangeError(
            f"'filter' change: 'parameter.logic-op' must be one of {', '.join(LOGIC_OPERATORS)}"
        )
    return ChangeFilter(operator, _number(parameter, "diff", "change"))


def parse_request(document: dict[str, Any], *, min_period_ms: int, max_period_ms: int) -> Request:
    """Check a decoded request completely.

    Raises:
        ValueOutOfRangeError: a member is missing, of the wrong type or out of range.
        UnsupportedRequestError: an action or filter variant this server does not serve.
    """
    action = document.get("action")
    if action not in ACTIONS:
        raise UnsupportedRequestError(f"'action': expected one of {', '.join(ACTIONS)}")
    authorization = _optional_text(document, "authorization")
    request_id = echo(document).get("requestId")
    if "requestId" in document and request_id is None:
        raise ValueOutOfRangeError("'requestId': expected a string")
    if action == "unsubscribe":
        return Request(
            action, request_id, subscription_id=_text(document, "subscriptionId"), authorization=authorization
        )
    path = _text(document, "path")
    filters = {item["variant"]: item.get("parameter") for item in _filters(document)}
    allowed = {
        "get": {"paths", *_METADATA_VARIANTS},
        "set": set(),
        "subscribe": {"paths", "timebased", "change"},
    }
    for variant in filters:
        if variant not in allowed[action]:
            raise ValueOutOfRangeError(f"'filter': variant {variant!r} does not apply to {action}")
    if "timebased" in filters and "change" in filters:
        raise ValueOutOfRangeError("'filter': timebased and change exclude each other")
    if action == "set" and "value" not in document:
        raise ValueOutOfRangeError("'value': a set needs the value")
    return Request(
        action,
        request_id,
        path=path,
        relative_paths=_relative_paths(filters["paths"]) if "paths" in filters else None,
        metadata=any(variant in filters for variant in _METADATA_VARIANTS),
        period_ms=_period(filters["timebased"], min_period_ms, max_period_ms)
        if "timebased" in filters
        else None,
        change=_change(filters["change"]) if "change" in filters else None,
        value=document.get("value"),
        authorization=authorization,
    )


def request_value(meta: SignalMetadata, value: Any) -> Value:
    """A set's value as the actuator's datatype: VISS strings parsed, JSON numbers and booleans taken as they are.

    Raises:
        ValueOutOfRangeError: the value is not one of the actuator's datatype.
    """
    try:
        if isinstance(value, str):
            return parse_text(meta.datatype, value)
        if isinstance(value, list) and meta.datatype.endswith("[]"):
            element = meta.datatype[:-2]
            return coerce(
                meta.datatype,
                [parse_text(element, item) if isinstance(item, str) else item for item in value],
            )
        return coerce(meta.datatype, value)
    except ValueError as error:
        raise ValueOutOfRangeError(f"{meta.path}: 'value': {error}") from None


def viss_time(timestamp: float | None = None) -> str:
    """``timestamp`` (seconds since the epoch; now when None) as VISS writes it: ``2026-12-02T18:53:02.125Z``."""
    moment = datetime.fromtimestamp(time.time() if timestamp is None else timestamp, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _value_text(value: Value) -> str | list[str]:
    if isinstance(value, tuple):
        return [str(_value_text(item)) for item in value]
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def datapoint_json(path: str, datapoint: Datapoint) -> dict[str, Any]:
    """The ``data`` entry of one signal: ``{"path": ..., "dp": {"value": ..., "ts": ...}}``.

    A datapoint that is not ``VALID`` (stale, failed E2E check, not available) has no value, as on every API
    without a status field.
    """
    value = datapoint.value if datapoint.status is Status.VALID and datapoint.value is not None else None
    return {
        "path": path,
        "dp": {
            "value": None if value is None else _value_text(value),
            "ts": viss_time(datapoint.timestamp) if datapoint.timestamp is not None else viss_time(),
        },
    }


class EncodedDatapoints:
    """The JSON text of each signal's latest ``data`` entry, encoded once for every subscription that sends it.

    The broker hands the same :class:`~sdv.types.signals.Datapoint` object to every subscription of a signal, so
    the text is kept per path with the datapoint it was made from and reused while that is the one sent. It holds
    at most one entry per signal. Not thread-safe: one per event loop.
    """

    def __init__(self) -> None:
        self._texts: dict[str, tuple[Datapoint, str]] = {}

    def text(self, path: str, datapoint: Datapoint) -> str:
        """``json.dumps(datapoint_json(path, datapoint))``, from the cache when this datapoint was encoded."""
        known = self._texts.get(path)
        if known is not None and known[0] is datapoint:
            return known[1]
        text = json.dumps(datapoint_json(path, datapoint))
        self._texts[path] = (datapoint, text)
        return text

    def notification(self, subscription_id: str, entries: dict[str, Datapoint]) -> str:
        """The text of a VISS ``subscription`` message carrying ``entries`` (one: ``data`` is that entry)."""
        data = [self.text(path, datapoint) for path, datapoint in entries.items()]
        joined = data[0] if len(data) == 1 else "[" + ",".join(data) + "]"
        return (
            f'{{"action": "subscription", "subscriptionId": {json.dumps(subscription_id)}, "data": {joined}, '
            f'"ts": "{viss_time()}"}}'
        )


def _metadata_json(meta: SignalMetadata) -> dict[str, Any]:
    entry: dict[str, Any] = {"type": meta.kind, "datatype": meta.datatype, "description": meta.description}
    if meta.unit is not None:
        entry["unit"] = meta.unit
    if meta.min is not None:
        entry["min"] = meta.min
    if meta.max is not None:
        entry["max"] = meta.max
    if meta.allowed is not None:
        entry["allowed"] = [_value_text(value) for value in meta.allowed]
    return entry


def metadata_tree(metadata: list[SignalMetadata]) -> dict[str, Any]:
    """The static metadata of signals as the VSS tree VISS answers with: branches with ``children``."""
    tree: dict[str, Any] = {}
    for meta in metadata:
        *branches, leaf = meta.path.split(".")
        level = tree
        for branch in branches:
            level = level.setdefault(branch, {"type": "branch", "children": {}})["children"]
        level[leaf] = _metadata_json(meta)
    return tree
