"""What every ``sdv ota`` command shares: the exit code of a refusal, the argument type of a counter and the
client of a running update agent."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from sdv.cli.exit_codes import EXIT_FAILED, EXIT_USAGE
from sdv.cli.security_options import connection
from sdv.client.address import OTA_AGENT_PORT
from sdv.errors import VerificationError
from sdv.ota.client import OtaClient
from sdv.ota.errors import TrustRootFormatError

__all__ = ["EXIT_REFUSED", "Handler", "agent_client", "counter_argument", "refusing"]

EXIT_REFUSED = EXIT_FAILED
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
        except (
            TrustRootFormatError
        ) as error:  # the ECU's own trust file: the command cannot run (docs/ota.md)
            print(f"sdv ota {name}: {error}", file=sys.stderr)
            return EXIT_USAGE
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


def agent_client(args: argparse.Namespace) -> OtaClient:
    """A client of the update agent ``--target`` names (``HOST[:PORT]``, the port defaulting to 55556)."""
    target, security = connection(args, args.target, OTA_AGENT_PORT)
    return OtaClient(target, security=security)
