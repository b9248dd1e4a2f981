"""``sdv serve`` as a real process for the tests: started with ``--port 0``, stopped with SIGTERM."""

from __future__ import annotations

import contextlib
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

__all__ = ["REPOSITORY", "SERVE", "serving"]

REPOSITORY = Path(__file__).resolve().parents[1]
# The command group is wired into `sdv` by its entry point; this runs it the same way through its register().
SERVE = """
import argparse, sys
from sdv.cli import serve_commands
from sdv.errors import SdvError
parser = argparse.ArgumentParser(prog="sdv")
serve_commands.register(parser.add_subparsers(dest="command"))
args = parser.parse_args(sys.argv[1:])
try:
    sys.exit(args.handler(args))
except SdvError as error:
    print(f"sdv serve: {error}", file=sys.stderr)
    sys.exit(2)
"""
_LISTENING = re.compile(r"^sdv serve: listening on [^ ]+:(\d+)$")


@contextlib.contextmanager
def serving(*arguments: str) -> Iterator[tuple[int, subprocess.Popen[str]]]:
    """Run ``sdv serve --port 0 ARGUMENTS``; yields (port, process) and checks it stops cleanly on SIGTERM."""
    process = subprocess.Popen(
        [sys.executable, "-c", SERVE, "serve", "--port", "0", *arguments],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPOSITORY,
    )
    try:
        assert process.stdout is not None and process.stderr is not None
        line = process.stdout.readline().strip()
        match = _LISTENING.match(line)
        assert match, f"unexpected first line {line!r}; stderr: {process.stderr.read()}"
        yield int(match[1]), process
        process.send_signal(signal.SIGTERM)
        _, errors = process.communicate(timeout=15)
        assert process.returncode == 0, errors
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
