"""``sdv subscribe`` outlives a restart of the server, as the SDK's subscriptions do.

A real ``sdv serve`` is killed (SIGKILL, no goodbye to its clients) and started again on the same port; the
``sdv subscribe`` process says once on stderr that it is reconnecting, then prints values again.
"""

from __future__ import annotations

import queue
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import IO

from tests.serve_process import REPOSITORY, start_serve
from tests.waiting import DEADLINE_S

_SPEED = re.compile(r"^Vehicle\.Speed = \d+(\.\d+)? km/h$")


def _lines(stream: IO[str]) -> queue.Queue[str]:
    """The lines of ``stream`` as they come, read by a thread (a blocking read would hang a failing test)."""
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        for line in stream:
            lines.put(line.rstrip("\n"))

    threading.Thread(target=read, daemon=True).start()
    return lines


def _stop(*processes: subprocess.Popen[str]) -> None:
    for process in processes:
        if process.poll() is None:
            process.kill()
        process.wait()


def _next_matching(lines: queue.Queue[str], pattern: re.Pattern[str], what: str) -> Iterator[str]:
    """Lines until one matches ``pattern`` (yielded too); fails after the deadline naming ``what``."""
    while True:
        try:
            line = lines.get(timeout=DEADLINE_S)
        except queue.Empty:
            raise AssertionError(f"waited {DEADLINE_S:g} s for {what}") from None
        yield line
        if pattern.search(line):
            return


def test_subscribe_survives_a_server_restart_on_the_same_port() -> None:
    port, first = start_serve()
    second: subprocess.Popen[str] | None = None
    subscriber = subprocess.Popen(
        [sys.executable, "-m", "sdv.cli.main", "subscribe", "Vehicle.Speed", "--server", f"127.0.0.1:{port}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPOSITORY,
    )
    try:
        assert subscriber.stdout is not None and subscriber.stderr is not None
        out, err = _lines(subscriber.stdout), _lines(subscriber.stderr)
        assert all(_SPEED.match(line) for line in _next_matching(out, _SPEED, "a first value"))

        first.send_signal(signal.SIGKILL)
        first.wait()
        lost = list(_next_matching(err, re.compile("reconnecting"), "the line saying it reconnects"))
        assert lost == [lost[-1]] and f"127.0.0.1:{port}" in lost[-1], lost

        _, second = start_serve("--port", str(port))
        # printed with the first batch of the new subscription, just before its values
        back = list(_next_matching(err, re.compile("reconnected"), "the line saying it is back"))
        assert back == [f"sdv subscribe: reconnected to 127.0.0.1:{port}"]
        assert list(_next_matching(out, _SPEED, "a value after the restart"))

        subscriber.send_signal(signal.SIGTERM)
        subscriber.wait(DEADLINE_S)
        left = []
        while not err.empty():
            left.append(err.get_nowait())
        assert left == [], left  # nothing but the two lines: no traceback, no line per attempt
    finally:
        _stop(subscriber, first, *([second] if second is not None else []))


def test_subscribe_without_reconnecting_ends_with_exit_3_when_the_server_dies() -> None:
    port, server = start_serve()
    subscriber = subprocess.Popen(
        [sys.executable, "-m", "sdv.cli.main", "subscribe", "Vehicle.Speed", "--server", f"127.0.0.1:{port}",
         "--no-reconnect"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPOSITORY,
    )  # fmt: skip
    try:
        assert subscriber.stdout is not None
        assert _SPEED.match(subscriber.stdout.readline().strip())
        server.send_signal(signal.SIGKILL)
        _, errors = subscriber.communicate(timeout=DEADLINE_S)
        assert subscriber.returncode == 3, errors
        assert errors.startswith(f"sdv subscribe: cannot reach 127.0.0.1:{port}"), errors
        assert len(errors.splitlines()) == 1 and "Traceback" not in errors, errors
    finally:
        _stop(subscriber, server)
