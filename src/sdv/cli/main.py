"""Entry point of the ``sdv`` command.

Each command group lives in its own module and exposes ``register(subparsers)``; the group adds its parsers and
sets ``handler`` on them. A handler returns the process exit code. Errors of the project's tree are printed as one
clear message on stderr with the exit code :mod:`sdv.cli.exit_codes` gives it (docs/cli.md); nothing else is
caught, so real bugs keep their traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence

from sdv import __version__
from sdv.errors import SdvError

__all__ = ["build_parser", "main"]

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, with every command group registered."""
    parser = argparse.ArgumentParser(
        prog="sdv", description="On-board middleware for software-defined vehicles."
    )
    parser.add_argument("--version", action="version", version=f"sdv {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    from sdv.cli import (  # noqa: PLC0415 - command groups import their heavy dependencies lazily
        client_commands,
        codegen_commands,
        hal_commands,
        ota_commands,
        security_commands,
        serve_commands,
    )

    hal_commands.register(subparsers)
    serve_commands.register(subparsers)
    client_commands.register(subparsers)
    codegen_commands.register(subparsers)
    ota_commands.register(subparsers)
    security_commands.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``sdv`` command and return its exit code.

    Output piped into a reader that stops early (``sdv ... | head``) ends the command quietly with exit code 1,
    as Python's documentation recommends for ``BrokenPipeError``; an interrupt (Ctrl-C) exits with 130.
    """
    try:
        return _main(argv)
    except BrokenPipeError:
        # the reader is gone: point stdout at devnull so the interpreter's final flush cannot fail again
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        return 130


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return handler(args)
    except SdvError as error:
        from sdv.cli.exit_codes import exit_code  # noqa: PLC0415 - only a failing command needs it

        print(f"sdv {args.command}: {error}", file=sys.stderr)
        return exit_code(error)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
