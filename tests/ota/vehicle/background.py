"""Helpers of the vehicle-aware end-to-end tests: a blocking call run on a thread, the agent's event log and
status, and the software identification as ``kuksa-client`` reads it."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.waiting import wait_until

from sdv._proto.sdv.cockpit.v1 import notices_pb2
from sdv._proto.sdv.ota.v1 import ota_pb2
from sdv.client import ChannelSecurity
from sdv.client.notices import UpdateNoticesClient
from sdv.ota.client import OtaClient

__all__ = ["Background", "events", "install_waiting", "kuksa_software", "state_reached", "told_result"]


KUKSA_SOFTWARE = Path(__file__).with_name("kuksa_software.py")


def kuksa_software(port: int, token: str) -> dict[str, Any]:
    """The ``Vehicle.Software`` attributes of the server on 127.0.0.1:``port`` as the unchanged kuksa-client reads
    them (in a process of its own: it registers the same protobuf symbols as sdv)."""
    done = subprocess.run(
        [sys.executable, str(KUKSA_SOFTWARE), "127.0.0.1", str(port), token],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


class Background:
    """A blocking call on a thread, its result or error kept for :meth:`join`."""

    def __init__(self, call: Callable[[], Any]) -> None:
        self.result: Any = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(call,))
        self._thread.start()

    def _run(self, call: Callable[[], Any]) -> None:
        try:
            self.result = call()
        except BaseException as error:  # handed to the test
            self.error = error

    def join(self) -> Any:
        """The call's result (its error raised here)."""
        self._thread.join(timeout=120)
        assert not self._thread.is_alive()
        if self.error is not None:
            raise self.error
        return self.result


def events(state_dir: Path, kind: str) -> list[dict[str, Any]]:
    """The entries of one kind in the agent's event log."""
    lines = (state_dir / "events.log").read_text().splitlines()
    return [entry for entry in map(json.loads, lines) if entry["event"] == kind]


def state_reached(client: OtaClient, state: ota_pb2.State.ValueType, what: str) -> ota_pb2.Status:
    """The agent's status once it is in ``state`` (waited for on its status, never on a clock)."""
    found: ota_pb2.Status = wait_until(
        lambda: (status := client.status()).state == state and status, what=what
    )
    return found


def install_waiting(client: OtaClient, bundle: Path) -> tuple[Background, ota_pb2.Status]:
    """Push ``bundle``, start its install on a thread and wait until the agent reports its preconditions unmet;
    returns the install under way and that status."""
    client.push(bundle)
    install = Background(client.install)
    waiting: ota_pb2.Status = wait_until(
        lambda: (status := client.status()).vehicle.checked and not status.vehicle.met and status,
        what="the agent to find its preconditions unmet",
    )
    return install, waiting


def told_result(target: str, token: str) -> notices_pb2.UpdateNotice:
    """The head unit through the client library: the first notice on the board once the agent told its result."""

    async def told() -> notices_pb2.UpdateNotice:
        async with UpdateNoticesClient(target, security=ChannelSecurity(token=token)) as notices:
            async for board in notices.stream(language="en"):
                if board and board[0].HasField("result"):
                    return board[0]
        raise AssertionError("the notice stream ended without a result")

    return asyncio.run(told())
