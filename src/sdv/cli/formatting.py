"""How the client commands write values and ages: ``true``/``false``, numbers as Python prints them, ``3.4 s``."""

from __future__ import annotations

from sdv.types.datatypes import Value
from sdv.types.signals import Datapoint

__all__ = ["format_age", "format_value"]


def format_value(value: Value | None) -> str:
    """A value as the command line shows it: ``true``/``false``, numbers as Python prints them, text as is,
    arrays in brackets."""
    if value is None:
        return "(no value)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return "[" + ", ".join(format_value(item) for item in value) + "]"
    return str(value)


def format_age(datapoint: Datapoint, now: float) -> str:
    """How long ago a datapoint was measured (``0.12 s``, ``3.4 s``, ``5 min``), or ``-`` without timestamp."""
    if datapoint.timestamp is None:
        return "-"
    age = max(0.0, now - datapoint.timestamp)
    if age < 1:
        return f"{age:.2f} s"
    if age < 60:
        return f"{age:.1f} s"
    if age < 3600:
        return f"{age / 60:.0f} min"
    return f"{age / 3600:.0f} h"
