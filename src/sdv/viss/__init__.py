"""W3C VISS v2 beside gRPC: the broker's signals over WebSocket (subprotocol ``VISSv2``) and HTTP.

``messages`` (requests and responses, pure), ``errors`` (the project's errors as VISS error numbers and
reasons), ``auth`` (tokens through the server's verifier), ``session`` (one client's requests on its behalf),
``subscriptions`` (broker subscriptions as notifications), ``server`` (the aiohttp transport), ``config``
(``VissLimits``). See docs/api.md, "VISS v2". The names below are loaded on first use, so that reading the
limits (``sdv serve`` without ``--viss``) does not load aiohttp.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sdv.viss.config import DEFAULT_VISS_PORT, VissLimits
    from sdv.viss.server import SUBPROTOCOL, VissServer

_WHERE = {
    "DEFAULT_VISS_PORT": "config",
    "SUBPROTOCOL": "server",
    "VissLimits": "config",
    "VissServer": "server",
}

__all__ = ["DEFAULT_VISS_PORT", "SUBPROTOCOL", "VissLimits", "VissServer"]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'sdv.viss' has no attribute {name!r}")
    return getattr(importlib.import_module(f"sdv.viss.{module}"), name)
