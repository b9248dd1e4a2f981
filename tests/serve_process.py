"""``sdv serve`` as a real process for the tests: started with ``--port 0``, stopped with SIGTERM."""

from __future__ import annotations

import contextlib
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

__all__ = ["REPOSITORY", "SERVE", "serving", "start_serve"]

REPOSITORY = Path(__file__).resolve().parents[1]
SERVE = ("-m", "sdv.cli.main", "serve")
"""``python`` arguments that run ``sdv serve`` as the installed entry point does."""
_LISTENING = re.compile(r"^sdv serve: listening on [^ ]+:(\d+)$")


def start_serve(*arguments: str) -> tuple[int, subprocess.Popen[str]]:
    """Start ``sdv serve --port 0 ARGUMENTS`` (a later ``--port`` wins); returns (port, process) once it listens.

    The caller stops the process; :func:`serving` does it for a test that does not kill the server itself.
    """
    process = subprocess.Popen(
        [sys.executable, *SERVE, "--port", "0", *arguments],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPOSITORY,
    )
    assert process.stdout is not None and process.stderr is not None
    line = process.stdout.readline().strip()
    match = _LISTENING.match(line)
    if not match:
        process.kill()
        _, errors = process.communicate()
        raise AssertionError(f"unexpected first line {line!r}; stderr: {errors}")
    return int(match[1]), process


@contextlib.contextmanager
def serving(*arguments: str) -> Iterator[tuple[int, subprocess.Popen[str]]]:
    """Run ``sdv serve --port 0 ARGUMENTS``; yields (port, process) and checks it stops cleanly on SIGTERM."""
    port, process = start_serve(*arguments)
    try:
        yield port, process
        process.send_signal(signal.SIGTERM)
        _, errors = process.communicate(timeout=15)
        assert process.returncode == 0, errors
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
