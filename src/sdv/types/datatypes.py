"""The VSS datatypes a signal can have, their value ranges, and strict coercion into them.

The names are those of the COVESA Vehicle Signal Specification (``boolean``, ``int8`` ... ``uint64``, ``float``,
``double``, ``string``, and each as an array: ``uint8[]``). Coercion is strict on purpose: a request for an
``uint8`` actuator with ``3.5`` or ``True`` is an error, not a silent rounding. An array value is a tuple of
elements of the element datatype; min, max and allowed values apply to each element (as in VSS).

A profile signal (the HAL's) has a scalar datatype (:data:`DATATYPES`); the broker serves any of
:data:`ALL_DATATYPES` (a catalogue's arrays).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from typing import Literal, get_args

from sdv.errors import ValueOutOfRangeError

__all__ = [
    "ALL_DATATYPES",
    "DATATYPES",
    "INTEGER_RANGES",
    "ROUNDING",
    "Datatype",
    "Rounding",
    "Scalar",
    "Value",
    "check_request",
    "coerce",
    "parse_text",
]

Datatype = Literal[
    "boolean",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "float",
    "double",
    "string",
]
Scalar = bool | int | float | str
Value = Scalar | tuple[Scalar, ...]

DATATYPES: tuple[str, ...] = get_args(Datatype)
ALL_DATATYPES: tuple[str, ...] = (*DATATYPES, *(f"{name}[]" for name in DATATYPES))

INTEGER_RANGES: dict[str, tuple[int, int]] = {
    f"{'u' if unsigned else ''}int{bits}": (
        (0, (1 << bits) - 1) if unsigned else (-(1 << (bits - 1)), (1 << (bits - 1)) - 1)
    )
    for bits in (8, 16, 32, 64)
    for unsigned in (False, True)
}

_FLOAT32_MAX = 3.4028234663852886e38

Rounding = Literal["round", "floor", "ceil", "truncate"]
"""How a fractional value becomes an integer: to the nearest (halves to even, as Python's ``round``), down, up,
or towards zero."""

# Values are first rounded to 9 decimals: a scaled DBC value such as 0.1 * 30 = 3.0000000000000004 must not
# become 4 by ceil, nor 29 * 0.1 * 10 = 28.999999999999996 become 28 by floor.
ROUNDING: dict[str, Callable[[float], int]] = {
    "round": lambda value: round(round(value, 9)),
    "floor": lambda value: math.floor(round(value, 9)),
    "ceil": lambda value: math.ceil(round(value, 9)),
    "truncate": lambda value: math.trunc(round(value, 9)),
}


def coerce(datatype: str, value: object) -> Value:
    """Convert ``value`` to ``datatype`` without losing information.

    Args:
        datatype: one of :data:`ALL_DATATYPES`.
        value: a Python value (from a decoded frame, a request or a profile); a list or tuple for an array.

    Returns:
        The value as ``bool``, ``int``, ``float`` or ``str``; a tuple of them for an array.

    Raises:
        ValueError: when the value has the wrong type or does not fit the datatype.
    """
    if datatype.endswith("[]"):
        if not isinstance(value, list | tuple):
            raise ValueError(f"expected an array ({datatype}), got {value!r}")
        element = datatype[:-2]
        try:
            return tuple(_coerce_scalar(element, item) for item in value)
        except ValueError as error:
            raise ValueError(f"{datatype} element: {error}") from None
    return _coerce_scalar(datatype, value)


def _coerce_scalar(datatype: str, value: object) -> Scalar:
    if datatype == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, int | float) and value in (0, 1):
            return bool(value)
        raise ValueError(f"expected a boolean, got {value!r}")
    if datatype in INTEGER_RANGES:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"expected an integer ({datatype}), got {value!r}")
        if isinstance(value, float):
            if not value.is_integer():
                raise ValueError(f"expected an integer ({datatype}), got {value!r}")
            value = int(value)
        low, high = INTEGER_RANGES[datatype]
        if not low <= value <= high:
            raise ValueError(f"{value} does not fit {datatype} [{low}, {high}]")
        return value
    if datatype in ("float", "double"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"expected a number ({datatype}), got {value!r}")
        number = float(value)
        if datatype == "float" and math.isfinite(number) and abs(number) > _FLOAT32_MAX:
            raise ValueError(f"{value} does not fit a 32-bit float")
        return number
    if datatype == "string":
        if isinstance(value, str):
            return value
        raise ValueError(f"expected a string, got {value!r}")
    raise ValueError(f"unknown datatype {datatype!r}; expected one of {', '.join(ALL_DATATYPES)}")


def parse_text(datatype: str, text: str) -> Value:
    """Parse a command-line or text representation of a value of ``datatype``.

    An array is written as a JSON array (``[2, 3]``, ``["a", "b"]``).

    Raises:
        ValueError: when the text is not a value of that datatype.
    """
    if datatype.endswith("[]"):
        try:
            items = json.loads(text)
        except ValueError:
            raise ValueError(f"expected a JSON array ({datatype}), got {text!r}") from None
        return coerce(datatype, items)
    if datatype == "boolean":
        lowered = text.strip().lower()
        if lowered in ("true", "1", "on", "yes"):
            return True
        if lowered in ("false", "0", "off", "no"):
            return False
        raise ValueError(f"expected a boolean (true/false), got {text!r}")
    if datatype in INTEGER_RANGES:
        try:
            return coerce(datatype, int(text, 0))
        except ValueError:
            raise ValueError(f"expected an integer ({datatype}), got {text!r}") from None
    if datatype in ("float", "double"):
        try:
            return coerce(datatype, float(text))
        except ValueError:
            raise ValueError(f"expected a number ({datatype}), got {text!r}") from None
    return coerce(datatype, text)


def check_request(
    path: str,
    datatype: str,
    value: object,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    allowed: Sequence[Value] | None = None,
) -> Value:
    """A requested value as ``datatype``, checked against min/max and the allowed values.

    The one check that actuator requests and published values go through, in the HAL and in the broker. For an
    array every element is checked.

    Raises:
        ValueOutOfRangeError: naming the path, the value and what is accepted.
    """
    try:
        checked = coerce(datatype, value)
    except ValueError as error:
        raise ValueOutOfRangeError(f"{path}: {error}") from None
    for element in checked if isinstance(checked, tuple) else (checked,):
        _check_element(path, element, minimum, maximum, allowed)
    return checked


def _check_element(
    path: str,
    checked: Scalar,
    minimum: float | None,
    maximum: float | None,
    allowed: Sequence[Value] | None,
) -> None:
    if isinstance(checked, int | float) and not isinstance(checked, bool):
        if minimum is not None and checked < minimum:
            raise ValueOutOfRangeError(f"{path}: {checked} is below the minimum {minimum:g}")
        if maximum is not None and checked > maximum:
            raise ValueOutOfRangeError(f"{path}: {checked} is above the maximum {maximum:g}")
    if allowed is not None and checked not in allowed:
        raise ValueOutOfRangeError(f"{path}: {checked!r} is not one of the allowed values {list(allowed)}")
