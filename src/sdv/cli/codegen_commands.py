"""``sdv codegen``: write a typed Python vehicle model package from a vehicle profile."""

from __future__ import annotations

import argparse
import keyword
from pathlib import Path

from sdv.hal.vehicle import load_vehicle
from sdv.resources import demo_profile

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``sdv codegen`` to the ``sdv`` parser."""
    codegen = subparsers.add_parser(
        "codegen",
        help="generate a typed Python vehicle model from a profile",
        description="Generate a typed Python vehicle model package (one class per VSS branch, typed signals) "
        "that mypy checks app code against.",
    )
    codegen.add_argument(
        "--profile", type=Path, metavar="FILE", help="vehicle profile (default: the example vehicle)"
    )
    codegen.add_argument(
        "-o",
        "--output",
        type=Path,
        required=True,
        metavar="DIR",
        help="directory the package is written into",
    )
    codegen.add_argument(
        "--package",
        type=_package_name,
        default="vehicle_model",
        help="name of the generated package (default vehicle_model)",
    )
    codegen.set_defaults(handler=_codegen)


def _package_name(text: str) -> str:
    if not text.isidentifier() or keyword.iskeyword(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a Python identifier")
    return text


def _codegen(args: argparse.Namespace) -> int:
    from sdv.sdk.codegen import leaves_of, write_model  # noqa: PLC0415 - the SDK imports grpc

    profile: Path = args.profile or demo_profile()
    vehicle = load_vehicle(profile)  # ProfileError: reported by the entry point with exit code 2
    leaves = leaves_of(vehicle)
    package = write_model(leaves, args.output, source=profile.name, package=args.package)
    print(f"sdv codegen: wrote {package} ({len(leaves)} signals)")
    return 0
