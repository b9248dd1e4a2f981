"""Entry point of the ``sdv`` command.

Each command group lives in its own module and exposes ``register(subparsers)``; the group adds its parsers and
sets ``handler`` on them. A handler returns the process exit code. Errors of the project's tree are printed as one
clear message on stderr with the exit code :mod:`sdv.cli.exit_codes` gives it (docs/cli.md); nothing else is
caught, so real bugs keep their traceback.

An interrupt (Ctrl-C) ends any command with one line and exit code 130, also while the command is still starting:
this module imports nothing at its top but :mod:`sys`, so that every import happens inside :func:`main`'s handling
of ``KeyboardInterrupt``.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Sequence

    Handler = Callable[[argparse.Namespace], int]

__all__ = ["build_parser", "main"]


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
    import argparse  # noqa: PLC0415 - imported inside main's interrupt handling (module docstring)
    import importlib  # noqa: PLC0415

    from sdv.version import __version__  # noqa: PLC0415

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
    as Python's documentation recommends for ``BrokenPipeError``; an interrupt (Ctrl-C), even while the command
    is still importing its modules, prints one line and exits with 130.
    """
    words = list(sys.argv[1:] if argv is None else argv)
    try:
        return _main(words)
    except BrokenPipeError:
        import os  # noqa: PLC0415 - see the module docstring

        # the reader is gone: point stdout at devnull so the interpreter's final flush cannot fail again
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        command = _command_of(words)
        print(f"sdv{' ' + command if command else ''}: interrupted", file=sys.stderr)
        return _EXIT_INTERRUPTED


_EXIT_INTERRUPTED = 130
"""128 + SIGINT, as shells report a command ended by Ctrl-C."""


def _main(words: list[str]) -> int:
    import logging  # noqa: PLC0415 - see the module docstring

    from sdv.errors import SdvError  # noqa: PLC0415

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


if __name__ == "__main__":
    sys.exit(main())
