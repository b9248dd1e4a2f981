"""Commands run in a child process under an address-space limit, for tests of hostile input.

A reader that builds something per declared bit, byte or entry of a hostile file fails here with MemoryError (a
traceback) instead of slowly taking the machine's memory; a bounded reader ends with the project's one-line error.
"""

from __future__ import annotations

import resource
import shutil
import subprocess
import sys
from collections.abc import Sequence

__all__ = ["ADDRESS_SPACE_LIMIT", "assert_one_line_error", "run_bounded", "sdv_bounded"]

ADDRESS_SPACE_LIMIT = 1 << 30  # 1 GiB: the interpreter with cantools, python-can and grpc needs far less
TIMEOUT_S = 120.0  # generous: a bounded reader answers in well under a second


def _limit_address_space() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE_LIMIT, ADDRESS_SPACE_LIMIT))


def run_bounded(arguments: Sequence[str]) -> subprocess.CompletedProcess[str]:
    """Run ``python <arguments>`` in a child process limited to :data:`ADDRESS_SPACE_LIMIT` bytes.

    The limit is set by util-linux's ``prlimit`` where it is installed: a ``preexec_fn`` makes Python fork instead of
    spawning, and in a test process where gRPC's threads run, gRPC's fork handlers can abort the child before it
    execs.
    """
    prlimit = shutil.which("prlimit")
    command = [sys.executable, *arguments]
    if prlimit is not None:
        command = [prlimit, f"--as={ADDRESS_SPACE_LIMIT}", "--", *command]
    return subprocess.run(
        command,
        preexec_fn=None if prlimit is not None else _limit_address_space,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )


def sdv_bounded(*arguments: str) -> subprocess.CompletedProcess[str]:
    """Run the ``sdv`` command in a child process under the address-space limit."""
    return run_bounded(["-m", "sdv.cli.main", *arguments])


def assert_one_line_error(result: subprocess.CompletedProcess[str], *parts: str, code: int = 2) -> str:
    """Assert the command failed with ``code`` and its error is one line holding every part; return that line.

    The error is the last line on stderr, ``sdv <command>: ...``; lines before it are the command's own output
    (a frame ``sdv decode`` could not decode, a warning).
    """
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == code, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("sdv ")]
    assert errors == lines[-1:], result.stderr
    for part in parts:
        assert part in errors[0], errors[0]
    return errors[0]
