"""The test vehicle's processes: three ``sdv serve`` ECUs, the frame listener on ECU c's request bus, and the
unchanged ``kuksa-client`` run against one ECU."""

from __future__ import annotations

import json
import queue
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Protocol

from tests.serve_process import REPOSITORY, SERVE

__all__ = ["Ecu", "FrameListener", "kuksa"]

_LISTENING = re.compile(r"^sdv serve: listening on [^ ]+:(\d+)$")
_HERE = Path(__file__).parent
PROCESS_DEADLINE_S = 60


class Network(Protocol):
    host: str
    addresses: dict[str, str]

    def prefix(self, ecu: str) -> tuple[str, ...] | list[str]: ...


class Ecu:
    """One ``sdv serve --profile`` of the vehicle, in its place on ``network``."""

    def __init__(self, name: str, profile: Path, network: Any) -> None:
        self.name = name
        self.profile = profile
        self.network = network
        self.process: subprocess.Popen[str] | None = None
        self.port = 0
        self.errors = ""

    @property
    def address(self) -> str:
        return str(self.network.addresses[self.name])

    def start(self) -> None:
        arguments = [*self.network.prefix(self.name), sys.executable, *SERVE, "--profile", str(self.profile)]
        arguments += ["--address", self.address, "--port", "0"]
        if self.address != "127.0.0.1":
            arguments.append("--insecure")  # an isolated test network
        self.process = subprocess.Popen(
            arguments, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPOSITORY
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline().strip()
        match = _LISTENING.match(line)
        if not match:
            self.kill()
            raise AssertionError(f"ECU {self.name} did not start: {line!r}\n{self.errors}")
        self.port = int(match[1])

    def kill(self) -> None:
        """SIGKILL, as a crash."""
        process, self.process = self.process, None
        if process is not None:
            process.kill()
            _, errors = process.communicate(timeout=PROCESS_DEADLINE_S)
            self.errors += errors

    def stop(self) -> int | None:
        """SIGTERM and wait; the exit code (None: it was not running)."""
        process, self.process = self.process, None
        if process is None:
            return None
        process.send_signal(signal.SIGCONT)  # a partitioned loopback ECU is stopped
        process.send_signal(signal.SIGTERM)
        try:
            _, errors = process.communicate(timeout=PROCESS_DEADLINE_S)
        except subprocess.TimeoutExpired:
            process.kill()
            _, errors = process.communicate()
        self.errors += errors
        return process.returncode


class FrameListener:
    """``frame_listener.py`` as a process; :meth:`next_frame` waits for the next frame ECU c sends."""

    def __init__(self, host: str, port: int) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(_HERE / "frame_listener.py"), host, str(port)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        ready = self.process.stdout.readline().strip()
        assert ready == "listening", ready
        self._frames: queue.Queue[dict[str, Any]] = queue.Queue()
        self._reader = threading.Thread(target=self._read, name="frame-listener-reader")
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._frames.put(json.loads(line))

    def next_frame(self, timeout_s: float = PROCESS_DEADLINE_S) -> dict[str, Any]:
        return self._frames.get(timeout=timeout_s)

    def pending(self) -> int:
        return self._frames.qsize()

    def close(self) -> None:
        self.process.kill()
        self.process.wait()
        self._reader.join(PROCESS_DEADLINE_S)


def kuksa(mode: str, ecu: Ecu, *arguments: str) -> dict[str, Any]:
    """Run ``kuksa_ecu.py MODE`` against ``ecu``; the JSON it printed."""
    done = subprocess.run(
        [sys.executable, str(_HERE / "kuksa_ecu.py"), mode, ecu.address, str(ecu.port), *arguments],
        capture_output=True,
        text=True,
        timeout=PROCESS_DEADLINE_S,
        check=False,
    )
    assert done.returncode == 0, f"kuksa-client {mode} failed:\n{done.stderr}"
    result: dict[str, Any] = json.loads(done.stdout)
    return result
