"""Entry point of the ``sdv`` command.

Each command group lives in its own module and exposes ``register(subparsers)``; the group adds its parsers and
sets ``handler`` on them. A handler returns the process exit code. Errors of the project's tree are printed as one
clear message on stderr with the exit code :mod:`sdv.cli.exit_codes` gives it (docs/cli.md); nothing else is
caught, so real bugs keep their traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Callable, Sequence

from sdv.errors import SdvError
from sdv.version import __version__

__all__ = ["build_parser", "main"]

Handler = Callable[[argparse.Namespace], int]


COMMAND_GROUPS: dict[str, str] = {
    "dbc": "hal_commands",
    "decode": "hal_commands",
    "demo": "hal_commands",
    "profile": "hal_commands",
    "serve": "serve_commands",
    "get": "client_commands",
    "list": "client_commands",
    "monitor": "client_commands",
    "set": "client_commands",
    "subscribe": "client_commands",
    "codegen": "codegen_commands",
    "ota": "ota_commands",
    "keys": "security_commands",
    "token": "security_commands",
    "pki": "pki_commands",
    "federation": "federation_commands",
}
"""Each top-level command → the module of its group (``sdv.cli.<module>``)."""

_GROUP_ORDER = (
    "hal_commands",
    "serve_commands",
    "client_commands",
    "codegen_commands",
    "ota_commands",
    "security_commands",
    "pki_commands",
    "federation_commands",
)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The argument parser with every command group registered, or only the group of command ``only``.

    A command imports only its own group (``sdv get`` loads no HAL, server or OTA code); help and unknown
    commands get the full parser.
    """
    parser = argparse.ArgumentParser(
        prog="sdv", description="On-board middleware for software-defined vehicles."
    )
    parser.add_argument("--version", action="version", version=f"sdv {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    groups = [COMMAND_GROUPS[only]] if only in COMMAND_GROUPS else list(_GROUP_ORDER)
    for name in groups:
        importlib.import_module(f"sdv.cli.{name}").register(subparsers)
    return parser


def _command_of(argv: Sequence[str]) -> str | None:
    """The top-level command in ``argv`` (the first word that is not an option), if any."""
    return next((word for word in argv if not word.startswith("-")), None)


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
    words = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(_command_of(words))
    args = parser.parse_args(words)
    # services (serve, ota agent) log at INFO by default: what they serve and every update step
    level = getattr(args, "log_level", logging.WARNING) - 10 * min(args.verbose, 2)
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
