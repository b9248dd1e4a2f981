"""``sdv get``, ``sdv set``, ``sdv subscribe``, ``sdv list`` and ``sdv monitor``: clients of a running server.

Every command talks ``kuksa.val.v2`` through :class:`sdv.client.VehicleClient`, so it works against ``sdv serve``
and against a KUKSA databroker alike. Failures are the project's errors (unknown path, refused value, server
unreachable), which ``sdv``'s entry point prints as one line on stderr with a non-zero exit code.

``sdv monitor`` needs the ``rich`` package; it is imported only by that command.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sdv.cli.client_options import Reconnection, add_reconnect_argument, server_arguments, vehicle_client
from sdv.cli.formatting import format_value
from sdv.cli.monitor_commands import add_monitor_parser
from sdv.client import VehicleClient
from sdv.errors import AccessDenied, ValueOutOfRangeError
from sdv.types.datatypes import Value, parse_text
from sdv.types.signals import Datapoint, SignalMetadata

if TYPE_CHECKING:
    pass

__all__ = ["json_record", "register"]

_JSON_HELP = "one JSON object per value: path, value, unit, timestamp (RFC 3339, UTC) and status"
_OBSERVE_S = 1.0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the client commands to the ``sdv`` parser."""
    server = server_arguments()

    get = subparsers.add_parser("get", parents=[server], help="print the current value of signals")
    get.add_argument("paths", nargs="+", metavar="PATH")
    get.add_argument("--json", action="store_true", help=_JSON_HELP)
    get.add_argument(
        "--target",
        action="store_true",
        help="print the actuators' target values (the last value asked of each) instead of their current values",
    )
    get.set_defaults(handler=_get)

    set_ = subparsers.add_parser(
        "set",
        parents=[server],
        help="actuate: ask an actuator for a value and wait until its provider carried it out; with --current, "
        "publish the signal's current value as a provider does",
    )
    set_.add_argument(
        "--current",
        action="store_true",
        help="publish the current value (v2 PublishValue) of a signal no one else provides, instead of actuating",
    )
    set_.add_argument("path", metavar="PATH")
    set_.add_argument(
        "value",
        metavar="VALUE",
        help="parsed by the signal's datatype (true/false, 42, 3.5, text; a JSON array for arrays: [2,3])",
    )
    set_.add_argument(
        "--observe",
        type=float,
        default=_OBSERVE_S,
        metavar="SECONDS",
        help=f"after an actuation, wait up to SECONDS for the vehicle to report the value (default {_OBSERVE_S:g}; "
        "0: do not wait)",
    )
    set_.set_defaults(handler=_set)

    subscribe = subparsers.add_parser(
        "subscribe", parents=[server], help="print signal values as they change, until interrupted"
    )
    subscribe.add_argument("paths", nargs="+", metavar="PATH")
    subscribe.add_argument("--json", action="store_true", help=_JSON_HELP)
    subscribe.add_argument(
        "--interval", type=int, default=0, metavar="MS", help="at most one batch every MS milliseconds"
    )
    add_reconnect_argument(subscribe)
    subscribe.set_defaults(handler=_subscribe)

    list_ = subparsers.add_parser("list", parents=[server], help="list signals with kind, datatype and unit")
    list_.add_argument(
        "root",
        nargs="?",
        default="",
        metavar="ROOT",
        help="a branch, a signal or a pattern (Vehicle.*.IsOpen)",
    )
    list_.set_defaults(handler=_list)

    add_monitor_parser(subparsers, server)


# --- formatting ------------------------------------------------------------------------------------------------
def json_record(path: str, datapoint: Datapoint, meta: SignalMetadata | None, *, target: bool = False) -> str:
    """A datapoint as one line of ``--json`` output; an actuator's target value carries ``"target": true``."""
    timestamp = (
        datetime.fromtimestamp(datapoint.timestamp, UTC)
        .isoformat(timespec="microseconds")
        .replace("+00:00", "Z")
        if datapoint.timestamp is not None
        else None
    )
    value = list(datapoint.value) if isinstance(datapoint.value, tuple) else datapoint.value
    record = {
        "path": path,
        "value": value,
        "unit": meta.unit if meta is not None else None,
        "timestamp": timestamp,
        "status": datapoint.status.value,
    }
    if target:
        record["target"] = True
    return json.dumps(record)


def _line(path: str, datapoint: Datapoint, meta: SignalMetadata | None) -> str:
    unit = f" {meta.unit}" if meta is not None and meta.unit and datapoint.value is not None else ""
    return f"{path} = {format_value(datapoint.value)}{unit}"


async def _all_metadata(client: VehicleClient) -> dict[str, SignalMetadata]:
    return {meta.path: meta for meta in await client.list_metadata()}


# --- get, set, subscribe, list ---------------------------------------------------------------------------------
def _get(args: argparse.Namespace) -> int:
    async def run() -> None:
        async with vehicle_client(args) as client:
            values = await (client.targets if args.target else client.get)(args.paths)
            metas = await _all_metadata(client)
        for path, datapoint in values.items():
            if args.json:
                print(json_record(path, datapoint, metas.get(path), target=args.target))
            else:
                print(_line(f"{path} (target)" if args.target else path, datapoint, metas.get(path)))

    asyncio.run(run())
    return 0


def _set(args: argparse.Namespace) -> int:
    async def run() -> tuple[Value, Datapoint | None, SignalMetadata]:
        async with vehicle_client(args) as client:
            try:
                meta = await client.metadata(args.path)
            except AccessDenied as error:  # the refusal is of the look-up, not of the request: say so
                raise AccessDenied(
                    f"{args.path}: sdv set reads the signal's datatype first, and the server refused that: {error}"
                ) from error
            try:
                value = parse_text(meta.datatype, args.value)
            except ValueError as error:
                raise ValueOutOfRangeError(f"{args.path}: {error}") from None
            if args.current:
                await client.publish(args.path, value)
                return value, None, meta
            await client.actuate(args.path, value)
            observed = await _observe(client, args.path, value, args.observe) if args.observe > 0 else None
            return value, observed, meta

    value, observed, meta = asyncio.run(run())
    if args.current:
        print(f"{args.path} = {format_value(value)}: published")
        return 0
    print(f"{args.path}: requested {format_value(value)}: sent")
    if observed is not None and observed.value is not None:
        unit = f" {meta.unit}" if meta.unit else ""
        verdict = "as requested" if observed.value == value else "not what was requested"
        print(f"{args.path}: the vehicle reports {format_value(observed.value)}{unit} ({verdict})")
    elif observed is not None:
        print(f"{args.path}: the vehicle reports no value")
    return 0


async def _observe(client: VehicleClient, path: str, requested: Value, seconds: float) -> Datapoint | None:
    """The actuator's current value once it equals ``requested``, or the last one seen within ``seconds``."""
    latest: Datapoint | None = None

    async def follow() -> None:
        nonlocal latest
        updates = client.subscribe([path])
        async with contextlib.aclosing(updates):
            async for batch in updates:
                latest = batch.get(path, latest)
                if latest is not None and latest.value == requested:
                    return

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(follow(), seconds)
    return latest


def _subscribe(args: argparse.Namespace) -> int:
    """Print the updates; a connection lost after the subscription started is bridged (:class:`Reconnection`).

    The loss is one line on stderr, the return one more, and every reconnection starts with a line of each
    signal's current value.
    """
    show = json_record if args.json else _line
    reconnection = Reconnection(args)
    metas: dict[str, SignalMetadata] = {}

    async def follow(client: VehicleClient) -> None:
        if not reconnection.started:
            metas.update(await _all_metadata(client))
            reconnection.started = True
        updates = client.subscribe(args.paths, min_interval_ms=args.interval)
        async with contextlib.aclosing(updates):
            async for batch in updates:
                if reconnection.resumed():
                    print(f"sdv subscribe: reconnected to {client.target}", file=sys.stderr, flush=True)
                for path, datapoint in batch.items():
                    print(show(path, datapoint, metas.get(path)), flush=True)

    def lost(error: Exception) -> None:
        # not the error's own words: a server that answered before is not one that wants TLS or is misnamed
        print(
            f"sdv subscribe: lost the connection to {args.server}; reconnecting (Ctrl-C to stop)",
            file=sys.stderr,
            flush=True,
        )

    with contextlib.suppress(KeyboardInterrupt):  # the way to end a subscription: not an error
        asyncio.run(
            reconnection.run(follow, lost)
        )  # returns when the server ends the subscription on purpose
    return 0


def _list(args: argparse.Namespace) -> int:
    async def run() -> list[SignalMetadata]:
        async with vehicle_client(args) as client:
            return await client.list_metadata(args.root)

    metas = asyncio.run(run())
    header = ("PATH", "KIND", "DATATYPE", "UNIT", "DESCRIPTION")
    rows = [(meta.path, meta.kind, meta.datatype, meta.unit or "-", meta.description) for meta in metas]
    widths = [max(len(row[column]) for row in [header, *rows]) for column in range(len(header) - 1)]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[-1])
    return 0
