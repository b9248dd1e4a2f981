"""The SocketCAN tests run only where the kernel has ``AF_CAN`` and the virtual interfaces exist.

``make test`` runs them inside a guest (``tests/socketcan/guest.py``); when no guest can run there, it runs them
on the host with ``SDV_SOCKETCAN_UNAVAILABLE`` set to the reason, and every one is reported as skipped with it.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

INTERFACES = ("vcan0", "vcan1")
UNAVAILABLE = "SDV_SOCKETCAN_UNAVAILABLE"


def socketcan_missing() -> str | None:
    """Why the SocketCAN tests cannot run here, or None when they can."""
    reason = os.environ.get(UNAVAILABLE)
    if reason:
        return reason
    try:
        socket.socket(socket.AF_CAN, socket.SOCK_RAW, socket.CAN_RAW).close()
    except (AttributeError, OSError) as error:
        return f"this kernel has no SocketCAN ({error}); `make test` runs these tests in a guest"
    missing = [name for name in INTERFACES if not Path("/sys/class/net", name).exists()]
    if missing:
        return f"no virtual CAN interface {', '.join(missing)} (ip link add dev vcan0 type vcan)"
    return None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    reason = socketcan_missing()
    if reason is None:
        return
    for item in items:
        if item.get_closest_marker("socketcan") is not None:
            item.add_marker(pytest.mark.skip(reason=reason))
