"""``sdv monitor``: a live table of signals and of the HAL's buses, filtered, sorted and scrolled.

The screen itself is :mod:`sdv.cli.monitor_view` (pure); this module fetches the signals, follows their values,
reads the keys and redraws. ``rich`` is imported only by this command.

Invariants:

* ``sdv monitor ROOT...`` shows the signals under the roots (a branch, a signal or a pattern); the HAL's bus
  lines are shown whatever the filter.
* Keys are read only when standard input is a terminal, with the terminal in cbreak mode for the monitor's
  lifetime and restored on every exit (``q``, Ctrl-C, an error).
* ``--once`` prints one snapshot of every row (or of ``--page N``) and exits: the non-interactive form.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import sys
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from sdv.cli.client_options import Reconnection, add_reconnect_argument, chunks, vehicle_client
from sdv.cli.monitor_view import HAL_ROOT, SORT_KEYS, MonitorView, render_monitor, split_buses
from sdv.client import VehicleClient
from sdv.errors import SdvError, UnknownSignalError
from sdv.types.signals import Datapoint, SignalMetadata

if TYPE_CHECKING:
    from rich.console import Console
    from rich.live import Live

__all__ = ["add_monitor_parser", "parse_keys"]

_NOT_A_TERMINAL_WIDTH = 160
_NOT_A_TERMINAL_ROWS = 40
_ESCAPES = {
    "\x1b[A": "up",
    "\x1b[B": "down",
    "\x1b[5~": "pageup",
    "\x1b[6~": "pagedown",
    "\x1b[H": "home",
    "\x1b[1~": "home",
    "\x1b[F": "end",
    "\x1b[4~": "end",
}


def add_monitor_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], server: argparse.ArgumentParser
) -> None:
    """Add ``sdv monitor`` (with the client commands' ``server`` flags) to the ``sdv`` parser."""
    monitor = subparsers.add_parser(
        "monitor",
        parents=[server],
        help="live table of signals and of the HAL's buses: keys scroll (arrows, PgUp/PgDn, Home/End), s sorts, "
        "q quits",
    )
    monitor.add_argument(
        "roots",
        nargs="*",
        metavar="ROOT",
        help="show only the signals under these branches, signals or patterns (Vehicle.Cabin, Vehicle.*.IsOpen)",
    )
    monitor.add_argument("--once", action="store_true", help="print one snapshot and exit")
    monitor.add_argument(
        "--sort",
        choices=SORT_KEYS,
        default="path",
        help="row order: path, age (freshest first) or status (valid, unavailable, no data); default path",
    )
    monitor.add_argument(
        "--page",
        type=_positive,
        metavar="N",
        help="show page N of the table (with --once: only that page; live: start there)",
    )
    monitor.add_argument(
        "--rows",
        type=_positive,
        metavar="N",
        help=f"rows per page (default: what fits the terminal; {_NOT_A_TERMINAL_ROWS} when not a terminal)",
    )
    monitor.add_argument(
        "--width",
        type=_positive,
        metavar="COLUMNS",
        help=f"screen width (default: the terminal's; {_NOT_A_TERMINAL_WIDTH} when not a terminal)",
    )
    monitor.add_argument(
        "--refresh", type=float, default=0.25, metavar="SECONDS", help="time between redraws (default 0.25)"
    )
    add_reconnect_argument(monitor)
    monitor.set_defaults(handler=_monitor)


def _positive(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of 1 or more")
    return number


def parse_keys(data: str) -> list[str]:
    """The keys in what the terminal sent: ``up``, ``down``, ``pageup``, ``pagedown``, ``home``, ``end`` for
    their escape sequences, other characters as themselves; unknown escape sequences are dropped."""
    keys: list[str] = []
    index = 0
    while index < len(data):
        if data[index] == "\x1b":
            sequence = next((escape for escape in _ESCAPES if data.startswith(escape, index)), None)
            if sequence is not None:
                keys.append(_ESCAPES[sequence])
                index += len(sequence)
                continue
            index += 1
            while index < len(data) and not (data[index].isalpha() or data[index] == "~"):
                index += 1  # the rest of a sequence this screen does not use
            index += 1
            continue
        keys.append(data[index])
        index += 1
    return keys


async def _signals(client: VehicleClient, roots: Sequence[str]) -> list[SignalMetadata]:
    """The signals under ``roots`` (every signal without roots) and, always, the HAL's bus signals."""
    if not roots:
        return await client.list_metadata()
    found: dict[str, SignalMetadata] = {}
    for root in roots:
        found.update((meta.path, meta) for meta in await client.list_metadata(root))
    with contextlib.suppress(UnknownSignalError):  # a server without HAL publishes no bus signals
        found.update((meta.path, meta) for meta in await client.list_metadata(f"{HAL_ROOT}.Bus"))
    return list(found.values())


async def _snapshot(client: VehicleClient, paths: Sequence[str]) -> dict[str, Datapoint]:
    values: dict[str, Datapoint] = {}
    for chunk in chunks(paths):
        values.update(await client.get(chunk))
    return values


async def _follow(client: VehicleClient, paths: Sequence[str], values: dict[str, Datapoint]) -> None:
    updates = client.subscribe(paths)
    async with contextlib.aclosing(updates):
        async for batch in updates:
            values.update(batch)
    raise SdvError("the server ended the subscription")


@contextlib.contextmanager
def _keys_from_terminal(pressed: asyncio.Queue[str]) -> Iterator[bool]:
    """Put the keys pressed into ``pressed`` while inside; yields whether keys are read (stdin is a terminal)."""
    if not sys.stdin.isatty():
        yield False
        return
    import termios  # noqa: PLC0415 - POSIX terminals only, and only for the live screen
    import tty  # noqa: PLC0415

    descriptor = sys.stdin.fileno()
    saved = termios.tcgetattr(descriptor)
    loop = asyncio.get_running_loop()

    def read() -> None:
        for key in parse_keys(os.read(descriptor, 64).decode(errors="replace")):
            pressed.put_nowait(key)

    tty.setcbreak(descriptor)
    loop.add_reader(descriptor, read)
    try:
        yield True
    finally:
        loop.remove_reader(descriptor)
        termios.tcsetattr(descriptor, termios.TCSADRAIN, saved)


def _view(args: argparse.Namespace, console: Console, buses: int, live: bool) -> MonitorView:
    rows = args.rows
    if rows is None and (live or args.page is not None):
        rows = (
            MonitorView.rows_for_height(console.size.height, buses)
            if console.is_terminal
            else _NOT_A_TERMINAL_ROWS
        )
    first = (args.page - 1) * rows if args.page is not None and rows is not None else 0
    return MonitorView(sort=args.sort, first=first, rows=rows)


def _monitor(args: argparse.Namespace) -> int:
    from rich.console import Console  # noqa: PLC0415
    from rich.live import Live  # noqa: PLC0415

    width = args.width or (None if sys.stdout.isatty() else _NOT_A_TERMINAL_WIDTH)
    console = Console(width=width)
    reconnection = Reconnection(args)

    async def run() -> None:
        async with vehicle_client(args) as client:
            name, version = await client.server_info()
            title = f"sdv monitor: {name} {version} at {args.server}"
            metas = await _signals(client, args.roots)
            paths = [meta.path for meta in metas]
            if args.once:
                snapshot = await _snapshot(client, paths)
                view = _view(args, console, len(split_buses(metas, {})[0]), live=False)
                console.print(
                    render_monitor(title, metas, snapshot, time.time(), view=view, width=console.width)
                )
                return
        reconnection.started = True
        values: dict[str, Datapoint] = {}

        async def follow(client: VehicleClient) -> None:
            reconnection.resumed()
            followers = [asyncio.create_task(_follow(client, chunk, values)) for chunk in chunks(paths)]
            try:
                await asyncio.gather(*followers)
            finally:
                for follower in followers:
                    follower.cancel()
                await asyncio.gather(*followers, return_exceptions=True)

        following = asyncio.create_task(reconnection.run(follow, lambda error: None))
        try:
            await _screen(args, console, Live, title, metas, values, reconnection, following)
        finally:
            following.cancel()
            await asyncio.gather(following, return_exceptions=True)

    with contextlib.suppress(KeyboardInterrupt):  # the way to leave the monitor
        asyncio.run(run())
    return 0


async def _screen(
    args: argparse.Namespace,
    console: Console,
    live_type: type[Live],
    title: str,
    metas: Sequence[SignalMetadata],
    values: dict[str, Datapoint],
    reconnection: Reconnection,
    following: asyncio.Task[None],
) -> None:
    """Redraw until ``q`` (or Ctrl-C); raises what ended ``following`` (the values' subscriptions)."""
    counters, signals = split_buses(metas, values)
    view = _view(args, console, len(counters), live=True)
    pressed: asyncio.Queue[str] = asyncio.Queue()
    with (
        _keys_from_terminal(pressed) as keys,
        live_type(console=console, screen=True, auto_refresh=False) as live,
    ):
        key: str | None = None
        while True:
            if following.done():
                following.result()  # raises what ended it
                raise SdvError("the server ended the subscription")
            while key is not None:
                if key in ("q", "Q"):
                    return
                view = view.after_key(key, len(signals))
                key = None if pressed.empty() else pressed.get_nowait()
            if args.rows is None and console.is_terminal:  # follow a resized terminal
                fits = MonitorView.rows_for_height(console.size.height, len(counters))
                view = dataclasses.replace(view, rows=fits).clamped(len(signals))
            heading = title if reconnection.lost is None else f"{title}: connection lost; reconnecting"
            screen = render_monitor(
                heading, metas, values, time.time(), view=view, width=console.width, keys=keys
            )
            live.update(screen, refresh=True)
            try:  # a key redraws at once
                key = await asyncio.wait_for(pressed.get(), args.refresh)
            except TimeoutError:
                key = None
