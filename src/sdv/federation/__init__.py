"""Signals and actuation federated across a vehicle's ECUs and to the cloud over Eclipse Zenoh.

Each ``sdv serve`` of a vehicle embeds one zenoh session (:class:`Federation`): it shares the signals its ECU
owns and answers actuation requests for its actuators; it mirrors every other ECU's signals into its own broker,
so that apps on any ECU see the whole vehicle. See docs/federation.md.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sdv.federation.node import Federation

__all__ = ["Federation"]


def __getattr__(name: str) -> Any:
    if name != "Federation":
        raise AttributeError(f"module 'sdv.federation' has no attribute {name!r}")
    return importlib.import_module("sdv.federation.node").Federation
