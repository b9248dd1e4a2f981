"""Argument types the ``sdv ota`` commands share: times, durations, checked names, short key ids."""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from datetime import datetime

from sdv.durations import parse_duration
from sdv.ota.bundle.manifest import (
    PATTERN_WORDS,
)

__all__ = ["DEFAULT_EXPIRY", "duration_argument", "matching", "short_keyid", "time_argument"]

DEFAULT_EXPIRY = "30d"
"""How long a bundle is valid unless ``--expires`` says otherwise."""


def time_argument(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO 8601 time such as 2030-01-01T00:00:00Z"
        ) from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"time {text!r} needs a time zone (such as Z)")
    return moment


def duration_argument(text: str) -> str:
    try:
        parse_duration(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


def matching(pattern: str) -> Callable[[str], str]:
    """An ``argparse`` type for text that must match one of the manifest's patterns, named in words."""

    def check(text: str) -> str:
        if re.fullmatch(pattern, text) is None:
            raise argparse.ArgumentTypeError(f"{text!r}: {PATTERN_WORDS[pattern]} expected")
        return text

    return check


def short_keyid(keyid: str) -> str:
    return keyid[:16]
