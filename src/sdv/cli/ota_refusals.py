"""What every ``sdv ota`` command shares: the exit code of a refusal and the argument type of a counter."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from sdv.errors import VerificationError

__all__ = ["EXIT_REFUSED", "Handler", "counter_argument", "refusing"]

EXIT_REFUSED = 1
"""Exit code when a bundle, trust root, report or agent request is refused."""

Handler = Callable[[argparse.Namespace], int]


def refusing(
    name: str,
    handler: Handler,
    refusals: tuple[type[Exception], ...] = (VerificationError,),
) -> Handler:
    """Wrap a handler so a refusal exits with :data:`EXIT_REFUSED` and the reason on stderr.

    Args:
        name: the command's name after ``sdv ota``, for the message.
        handler: the command's handler.
        refusals: the exceptions that mean "refused" for this command.
    """

    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except refusals as error:
            print(f"sdv ota {name}: refused: {error}", file=sys.stderr)
            return EXIT_REFUSED

    return run


def counter_argument(text: str) -> int:
    """An ``argparse`` type for a release counter: a whole number, not negative."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"counter {value} must not be negative")
    return value
