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
import os
import re
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sdv.cli.security_options import ENV_SERVER, add_connection_arguments, connection
from sdv.client import DEFAULT_SERVER, VehicleClient
from sdv.client.address import SIGNAL_SERVER_PORT
from sdv.client.errors import ServerUnreachableError
from sdv.errors import AccessDenied, SdvError, ValueOutOfRangeError
from sdv.types.datatypes import Value, parse_text
from sdv.types.signals import Datapoint, SignalMetadata
from sdv.types.status import Status

if TYPE_CHECKING:
    from rich.console import RenderableType

__all__ = ["HAL_ROOT", "format_age", "format_value", "json_record", "register", "render_monitor"]

HAL_ROOT = "Sdv.Hal"
"""The branch under which the server publishes the HAL's frame and error counters."""
_BUS_COUNTER = re.compile(r"^Sdv\.Hal\.Bus\.(?P<bus>[^.]+)\.(?P<counter>.+)$")
_PATHS_PER_REQUEST = 500  # below the broker's default limit of 1000 paths per request
_NO_DATA = Datapoint(None, None, Status.NOT_AVAILABLE)
# Shown as the bus's state, not as counters.
_BUS_STATE_SIGNALS = frozenset({"State", "LastError", "NextRetry"})
_BUS_STATE_STYLES = {"DOWN": "bold red", "CONNECTING": "yellow", "ENDED": "yellow"}
_JSON_HELP = "one JSON object per value: path, value, unit, timestamp (RFC 3339, UTC) and status"
_OBSERVE_S = 1.0
# The waits between attempts to reach a lost server (the SDK's policy), capped low: someone watches the terminal.
_RECONNECT_S = (0.25, 2.0)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the client commands to the ``sdv`` parser."""
    server = argparse.ArgumentParser(add_help=False)
    server.add_argument(
        "--server",
        metavar="HOST[:PORT]",
        help=f"the server to talk to: HOST[:PORT], grpc://HOST[:PORT] or grpcs://HOST[:PORT] (TLS); "
        f"default ${ENV_SERVER}, else {DEFAULT_SERVER}; the port defaults to {SIGNAL_SERVER_PORT}",
    )
    add_connection_arguments(server)

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
    subscribe.add_argument(
        "--no-reconnect",
        dest="reconnect",
        action="store_false",
        help="end with exit code 3 when the connection is lost, instead of reconnecting until the server is back",
    )
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

    monitor = subparsers.add_parser(
        "monitor", parents=[server], help="live table of every signal and of the HAL's frame counters"
    )
    monitor.add_argument("--once", action="store_true", help="print one snapshot and exit")
    monitor.add_argument(
        "--refresh", type=float, default=0.25, metavar="SECONDS", help="time between redraws (default 0.25)"
    )
    monitor.set_defaults(handler=_monitor)


# --- formatting ------------------------------------------------------------------------------------------------
def format_value(value: Value | None) -> str:
    """A value as the command line shows it: ``true``/``false``, numbers as Python prints them, text as is,
    arrays in brackets."""
    if value is None:
        return "(no value)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return "[" + ", ".join(format_value(item) for item in value) + "]"
    return str(value)


def format_age(datapoint: Datapoint, now: float) -> str:
    """How long ago a datapoint was measured (``0.12 s``, ``3.4 s``, ``5 min``), or ``-`` without timestamp."""
    if datapoint.timestamp is None:
        return "-"
    age = max(0.0, now - datapoint.timestamp)
    if age < 1:
        return f"{age:.2f} s"
    if age < 60:
        return f"{age:.1f} s"
    if age < 3600:
        return f"{age / 60:.0f} min"
    return f"{age / 3600:.0f} h"


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


def _status(datapoint: Datapoint) -> str:
    if datapoint.value is not None:
        return "valid"
    return "no data" if datapoint.timestamp is None else "unavailable"


def _line(path: str, datapoint: Datapoint, meta: SignalMetadata | None) -> str:
    unit = f" {meta.unit}" if meta is not None and meta.unit and datapoint.value is not None else ""
    return f"{path} = {format_value(datapoint.value)}{unit}"


async def _all_metadata(client: VehicleClient) -> dict[str, SignalMetadata]:
    return {meta.path: meta for meta in await client.list_metadata()}


def _chunks(paths: Sequence[str]) -> list[Sequence[str]]:
    return [paths[start : start + _PATHS_PER_REQUEST] for start in range(0, len(paths), _PATHS_PER_REQUEST)]


def _client(args: argparse.Namespace) -> VehicleClient:
    """A client of the server the flags (or ``$SDV_SERVER``) name."""
    if args.server is None:
        args.server = os.environ.get(ENV_SERVER, "").strip() or DEFAULT_SERVER
    target, security = connection(args, args.server, SIGNAL_SERVER_PORT)
    return VehicleClient(target, security=security)


# --- get, set, subscribe, list ---------------------------------------------------------------------------------
def _get(args: argparse.Namespace) -> int:
    async def run() -> None:
        async with _client(args) as client:
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
        async with _client(args) as client:
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
    """Print the updates; a connection lost after the subscription started is bridged as the SDK does.

    The loss is one line on stderr, the return one more; the attempts between wait as
    :class:`~sdv.sdk.reconnect.ReconnectPolicy` says (capped at a few seconds, never giving up), and every
    reconnection starts with a line of each signal's current value.
    """
    show = json_record if args.json else _line
    metas: dict[str, SignalMetadata] | None = None
    lost = False

    async def follow(client: VehicleClient) -> None:
        nonlocal metas, lost
        if metas is None:
            metas = await _all_metadata(client)
        updates = client.subscribe(args.paths, min_interval_ms=args.interval)
        async with contextlib.aclosing(updates):
            async for batch in updates:
                if lost:
                    print(f"sdv subscribe: reconnected to {client.target}", file=sys.stderr, flush=True)
                    lost = False
                for path, datapoint in batch.items():
                    print(show(path, datapoint, metas.get(path)), flush=True)

    async def run() -> None:
        nonlocal lost
        attempt = 0
        policy = None
        while True:
            try:
                async with _client(args) as client:
                    await follow(client)
                return  # the server ended the subscription on purpose
            except ServerUnreachableError as error:
                if metas is None or not args.reconnect:
                    raise  # never connected: the address is wrong, not the connection lost
                if policy is None:  # the SDK (pydantic) loads only when a connection was lost
                    from sdv.sdk.reconnect import ReconnectPolicy  # noqa: PLC0415

                    policy = ReconnectPolicy(initial_delay=_RECONNECT_S[0], max_delay=_RECONNECT_S[1])
                if not lost:
                    print(
                        f"sdv subscribe: {error}; reconnecting (Ctrl-C to stop)", file=sys.stderr, flush=True
                    )
                    lost, attempt = True, 0
                await asyncio.sleep(policy.delay(attempt))
                attempt += 1

    with contextlib.suppress(KeyboardInterrupt):  # the way to end a subscription: not an error
        asyncio.run(run())
    return 0


def _list(args: argparse.Namespace) -> int:
    async def run() -> list[SignalMetadata]:
        async with _client(args) as client:
            return await client.list_metadata(args.root)

    metas = asyncio.run(run())
    header = ("PATH", "KIND", "DATATYPE", "UNIT", "DESCRIPTION")
    rows = [(meta.path, meta.kind, meta.datatype, meta.unit or "-", meta.description) for meta in metas]
    widths = [max(len(row[column]) for row in [header, *rows]) for column in range(len(header) - 1)]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[-1])
    return 0


# --- monitor ---------------------------------------------------------------------------------------------------
def _bus_state(signals: Mapping[str, Value | None], now: float) -> str | None:
    """``UP``, or ``DOWN: <error>, retrying in 2.0 s``; ``None`` for a server that publishes no bus state."""
    state = signals.get("State")
    if state is None:
        return None
    if state != "DOWN":
        return str(state)
    error = signals.get("LastError")
    retry = signals.get("NextRetry")
    text = f"DOWN: {error}" if error else "DOWN"
    if isinstance(retry, int | float) and not isinstance(retry, bool):
        text += f", retrying in {max(0.0, retry - now):.1f} s"
    return text


def _bus_line(bus: str, counters: Mapping[str, Value | None], now: float) -> str:
    """``HAL bus vehicle: UP; 1200 Frames, 1195 Decoded, 5 BadFrames, 0 Reconnects; errors: E2eCounter 5``.

    Only non-zero errors are listed; the state leads when the server publishes it.
    """
    state = _bus_state(counters, now)
    totals = [
        f"{format_value(value)} {name}"
        for name, value in counters.items()
        if not name.startswith("Errors.") and name not in _BUS_STATE_SIGNALS
    ]
    errors = [
        f"{name.removeprefix('Errors.')} {format_value(value)}"
        for name, value in counters.items()
        if name.startswith("Errors.") and value
    ]
    lead = f"HAL bus {bus}: " + (f"{state}; " if state is not None else "")
    return lead + f"{', '.join(totals)}; " + (f"errors: {', '.join(errors)}" if errors else "no errors")


def render_monitor(
    title: str, metas: Iterable[SignalMetadata], values: Mapping[str, Datapoint], now: float
) -> RenderableType:
    """The monitor's screen: a title, one line of HAL state and counters per bus, then a table of the signals.

    The counters come first so that a short terminal, which cuts the table, still shows them.

    Args:
        title: the first line (server and version).
        metas: every signal served; those under ``Sdv.Hal.Bus`` are the buses' state and counters.
        values: the latest datapoint of each signal (missing: no data yet).
        now: the wall-clock time ages are measured against.
    """
    from rich.console import Group  # noqa: PLC0415 - rich is needed by this command only
    from rich.table import Table  # noqa: PLC0415
    from rich.text import Text  # noqa: PLC0415

    signals = Table(title="Signals", title_justify="left", expand=False)
    # Paths give way first on a narrow terminal: the other columns keep the width their content needs.
    signals.add_column("signal", overflow="ellipsis", min_width=24)  # wrappable: may shrink
    signals.add_column("value", justify="right", no_wrap=True, min_width=8)
    signals.add_column("unit", no_wrap=True, min_width=7)
    signals.add_column("age", justify="right", no_wrap=True, min_width=7)
    signals.add_column("status", no_wrap=True, min_width=11)
    counters: dict[str, dict[str, Value | None]] = {}
    styles = {"valid": "green", "unavailable": "yellow", "no data": "dim"}
    for meta in metas:
        datapoint = values.get(meta.path, _NO_DATA)
        match = _BUS_COUNTER.match(meta.path)
        if match is not None:
            counters.setdefault(match["bus"], {})[match["counter"]] = datapoint.value
            continue
        status = _status(datapoint)
        signals.add_row(
            meta.path,
            format_value(datapoint.value) if datapoint.value is not None else "",
            meta.unit or "",
            format_age(datapoint, now),
            Text(status, style=styles[status]),
        )
    parts: list[RenderableType] = [Text(title, style="bold")]
    if counters:
        parts.extend(
            Text(_bus_line(bus, row, now), style=_BUS_STATE_STYLES.get(str(row.get("State")), ""))
            for bus, row in counters.items()
        )
    else:
        parts.append(Text(f"the server publishes no HAL counters ({HAL_ROOT})", style="dim"))
    parts.append(signals)
    return Group(*parts)


async def _snapshot(client: VehicleClient, paths: Sequence[str]) -> dict[str, Datapoint]:
    values: dict[str, Datapoint] = {}
    for chunk in _chunks(paths):
        values.update(await client.get(chunk))
    return values


async def _follow(client: VehicleClient, paths: Sequence[str], values: dict[str, Datapoint]) -> None:
    updates = client.subscribe(paths)
    async with contextlib.aclosing(updates):
        async for batch in updates:
            values.update(batch)
    raise SdvError("the server ended the subscription")


def _monitor(args: argparse.Namespace) -> int:
    from rich.console import Console  # noqa: PLC0415
    from rich.live import Live  # noqa: PLC0415

    console = Console() if sys.stdout.isatty() else Console(width=160)

    async def run() -> None:
        async with _client(args) as client:
            name, version = await client.server_info()
            title = f"sdv monitor: {name} {version} at {args.server}"
            metas = await client.list_metadata()
            paths = [meta.path for meta in metas]
            if args.once:
                values = await _snapshot(client, paths)
                console.print(render_monitor(title, metas, values, time.time()))
                return
            values = {}
            followers = [asyncio.create_task(_follow(client, chunk, values)) for chunk in _chunks(paths)]
            try:
                with Live(console=console, screen=True, auto_refresh=False) as live:
                    while True:
                        for follower in followers:
                            if follower.done():
                                follower.result()  # raises what ended it
                        live.update(render_monitor(title, metas, values, time.time()), refresh=True)
                        await asyncio.sleep(args.refresh)
            finally:
                for follower in followers:
                    follower.cancel()
                await asyncio.gather(*followers, return_exceptions=True)

    with contextlib.suppress(KeyboardInterrupt):  # the way to leave the monitor
        asyncio.run(run())
    return 0
