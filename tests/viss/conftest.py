"""``sdv serve --viss`` as a real process, and small helpers for its WebSocket and HTTP clients.

The clients are real ones from PyPI: ``websockets`` (subprotocol ``VISSv2``) and ``httpx``; the server is the
``sdv`` command, started with ``--port 0 --viss-port 0`` and stopped with SIGTERM (exit code 0 checked).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from tests.serve_process import REPOSITORY, SERVE
from tests.waiting import DEADLINE_S, wait_until

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
_LISTENING = re.compile(r"^sdv serve: (VISS )?listening on [^ ]+:(\d+)$")


@pytest.fixture(autouse=True)
def no_leaked_threads(no_leaked_threads: None) -> None:
    """Every test here checks that it leaves no thread running."""


@dataclass
class ServeProcess:
    """A running ``sdv serve --viss``: its two ports, and what it has written on standard error so far."""

    process: subprocess.Popen[str]
    grpc_port: int
    viss_port: int
    errors: list[str] = field(default_factory=list)

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.viss_port}"

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.viss_port}"

    def wait_for_log(self, text: str) -> str:
        return wait_until(
            lambda: next((line for line in list(self.errors) if text in line), None),
            what=f"the server to log {text!r}; it logged {self.errors}",
        )


@contextlib.contextmanager
def serve_viss(*arguments: str) -> Iterator[ServeProcess]:
    """Run ``sdv serve --port 0 --viss --viss-port 0 ARGUMENTS`` until the block ends, then SIGTERM it."""
    process = subprocess.Popen(
        [sys.executable, *SERVE, "--port", "0", "--viss", "--viss-port", "0", *arguments],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPOSITORY,
    )
    errors: list[str] = []
    assert process.stdout is not None and process.stderr is not None
    stderr = process.stderr
    reader = threading.Thread(target=lambda: errors.extend(stderr), name="viss-serve-stderr", daemon=True)
    reader.start()
    try:
        ports = []
        for _ in range(2):
            line = process.stdout.readline().strip()
            match = _LISTENING.match(line)
            assert match, f"unexpected line {line!r}; stderr: {errors}"
            ports.append(int(match[2]))
        yield ServeProcess(process, ports[0], ports[1], errors)
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=DEADLINE_S)
        reader.join(timeout=DEADLINE_S)
        assert process.returncode == 0, errors
        assert not [line for line in errors if "Traceback" in line], errors
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        reader.join(timeout=DEADLINE_S)


def write_limits(directory: Path, **limits: Any) -> Path:
    """A ``--viss-limits`` file."""
    path = directory / "viss-limits.yaml"
    path.write_text("".join(f"{name}: {value}\n" for name, value in limits.items()))
    return path


async def connect(server: ServeProcess, **options: Any) -> ClientConnection:
    """A VISS WebSocket connection (close it, or use ``async with``)."""
    return await websockets.connect(server.ws, subprotocols=[websockets.Subprotocol("VISSv2")], **options)


async def request(connection: ClientConnection, message: dict[str, Any]) -> dict[str, Any]:
    """Send ``message`` and return the answer with its ``requestId`` (notifications in between are skipped)."""
    await connection.send(json.dumps(message))
    async with asyncio.timeout(DEADLINE_S):
        while True:
            answer: dict[str, Any] = json.loads(await connection.recv())
            if answer.get("action") != "subscription":
                assert answer.get("requestId") == message.get("requestId"), answer
                return answer


async def notifications(
    connection: ClientConnection, subscription_id: str, count: int
) -> list[dict[str, Any]]:
    """The next ``count`` messages of subscription ``subscription_id``."""
    found: list[dict[str, Any]] = []
    async with asyncio.timeout(DEADLINE_S):
        while len(found) < count:
            message = json.loads(await connection.recv())
            if message.get("subscriptionId") == subscription_id and message.get("action") == "subscription":
                found.append(message)
    return found
