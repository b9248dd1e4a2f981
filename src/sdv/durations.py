"""Durations as people write them on a command line or in a file: ``30d``, ``12h``, ``2s``."""

from __future__ import annotations

import re
from datetime import timedelta

__all__ = ["parse_duration"]

_DURATION_RE = re.compile(r"^([0-9]{1,9})([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> timedelta:
    """Parse a duration such as ``30d``, ``12h``, ``2s`` (units s, m, h, d, w).

    Raises:
        ValueError: if the text is not a positive whole number followed by one unit.
    """
    match = _DURATION_RE.match(text.strip())
    if match is None or int(match.group(1)) == 0:
        raise ValueError(f"duration {text!r} is not a positive number followed by s, m, h, d or w (e.g. 30d)")
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])
