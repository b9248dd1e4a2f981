"""The live ``sdv monitor`` in a real terminal (a pseudo-terminal of 80x24): keys page, sort and quit; the page
follows a resized terminal."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time

from tests.serve_process import REPOSITORY, serving, start_serve
from tests.waiting import DEADLINE_S


class Terminal:
    """A pseudo-terminal running one command; what it drew accumulates in ``screen``."""

    def __init__(self, *argv: str, rows: int = 24, columns: int = 80) -> None:
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
        self.modes = termios.tcgetattr(slave)
        # the terminal's size comes from the terminal, as in a shell (the test run fixes $LINES and $COLUMNS)
        environment = {name: value for name, value in os.environ.items() if name not in ("LINES", "COLUMNS")}
        self.process = subprocess.Popen(
            argv, stdin=slave, stdout=slave, stderr=slave, cwd=REPOSITORY, env=environment
        )
        os.close(slave)
        self.screen = b""

    def wait_for(self, pattern: bytes) -> re.Match[bytes]:
        """The first match of ``pattern`` in what the command draws from now on."""
        start = len(self.screen)
        deadline = time.monotonic() + DEADLINE_S
        while time.monotonic() < deadline:
            if select.select([self.master], [], [], 0.1)[0]:
                self.screen += os.read(self.master, 65536)
            if match := re.compile(pattern).search(self.screen, start):
                return match
        footers = re.findall(rb"rows \d+-\d+ of \d+, by \w+", self.screen)[-3:]
        raise AssertionError(f"waited {DEADLINE_S:g} s for {pattern!r}; the last footers drawn: {footers}")

    def resize(self, rows: int, columns: int) -> None:
        fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))

    def press(self, keys: bytes) -> None:
        os.write(self.master, keys)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        os.close(self.master)


def test_keys_page_sort_and_quit_and_the_terminal_is_restored() -> None:
    with serving() as (port, _):
        terminal = Terminal(sys.executable, "-m", "sdv.cli.main", "monitor", "--server", f"127.0.0.1:{port}")
        try:
            first = terminal.wait_for(rb"rows 1-(\d+) of (\d+), by path")
            page, total = int(first[1]), int(first[2])
            assert (
                page == 24 - 7 - 1
            )  # the terminal's height less the title, the bus row and the table's frame
            terminal.press(b"\x1b[6~")  # PgDn
            terminal.wait_for(rf"rows {page + 1}-{min(total, 2 * page)} of {total}, by path".encode())
            terminal.press(b"s")
            terminal.wait_for(rf"rows 1-{page} of {total}, by age".encode())
            terminal.resize(30, 80)
            terminal.wait_for(rf"rows 1-{min(total, 30 - 8)} of {total}, by age".encode())
            terminal.press(b"q")
            assert terminal.process.wait(DEADLINE_S) == 0
            assert termios.tcgetattr(terminal.master)[3] == terminal.modes[3]  # echo and line mode are back
            assert b"Traceback" not in terminal.screen
        finally:
            terminal.close()


def test_the_live_screen_says_when_the_server_is_lost_and_goes_on_when_it_is_back() -> None:
    port, first = start_serve()
    second: subprocess.Popen[str] | None = None
    terminal = Terminal(sys.executable, "-m", "sdv.cli.main", "monitor", "--server", f"127.0.0.1:{port}")
    try:
        terminal.wait_for(rb"rows 1-\d+ of \d+, by path")
        first.send_signal(signal.SIGKILL)
        first.wait()
        terminal.wait_for(rf"at 127\.0\.0\.1:{port}: connection lost; reconnecting".encode())
        _, second = start_serve("--port", str(port))
        terminal.wait_for(rf"at 127\.0\.0\.1:{port}(?!: connection lost)".encode())
        terminal.press(b"q")
        assert terminal.process.wait(DEADLINE_S) == 0
        assert b"Traceback" not in terminal.screen
    finally:
        terminal.close()
        for server in (first, second):
            if server is not None and server.poll() is None:
                server.kill()
            if server is not None:
                server.wait()
