"""Actuation providers: who carries out requests for an actuator."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Protocol

from sdv.hal.runtime import Hal
from sdv.types.datatypes import Value

__all__ = ["ActuationProvider", "HalProvider"]


class ActuationProvider(Protocol):
    """Carries out validated actuation requests; returns once they were accepted.

    Raises an :class:`sdv.errors.ActuationError` (or a subclass) when a request was not carried out.
    """

    async def actuate(self, requests: Sequence[tuple[str, Value]]) -> None:
        """Carry out every request, in order."""


class HalProvider:
    """The HAL as a provider: each request becomes a CAN frame, sent before :meth:`actuate` returns."""

    def __init__(self, hal: Hal) -> None:
        self.hal = hal

    async def actuate(self, requests: Sequence[tuple[str, Value]]) -> None:
        """Encode and send one frame per request (python-can sends may block briefly: off the event loop)."""
        for path, value in requests:
            await asyncio.to_thread(self.hal.write, path, value)
