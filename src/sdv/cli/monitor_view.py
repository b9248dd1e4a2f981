"""What ``sdv monitor`` shows: pure functions from the signals and their latest values to the screen.

Nothing here talks to a server or a terminal, so the screen is tested as text (``rich`` renders it; it is imported
only when a screen is built).

Invariants:

* One line per HAL bus (its state, then its counters) leads the screen, above the table, so a short terminal
  that cuts the table still shows every bus.
* A path too long for its column is shortened in the middle, never at its end: the leaf stays whole and the
  branches between are abbreviated (``Vehicle.Cabin.Door.Row1.DriverSide.IsOpen`` becomes
  ``V.C.Door.R1.DS.IsOpen`` and shorter), so sibling and cousin signals stay distinct; paths that would
  still read alike keep more of their end.
* The table shows one page: :class:`MonitorView` holds the sort order and the first row shown, and the keys move
  it (:meth:`MonitorView.after_key`), clamped to the rows there are.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

from sdv.cli.formatting import format_age, format_value
from sdv.cli.monitor_federation import FEDERATION_ROOT, STATE_STYLES, remote_ecu_rows
from sdv.types.datatypes import Value
from sdv.types.signals import Datapoint, SignalMetadata
from sdv.types.status import Status

if TYPE_CHECKING:
    from rich.console import RenderableType

__all__ = [
    "HAL_ROOT",
    "SORT_KEYS",
    "MonitorView",
    "SortKey",
    "render_monitor",
    "shorten_path",
    "shorten_paths",
    "sort_rows",
]

HAL_ROOT = "Sdv.Hal"
"""The branch under which the server publishes the HAL's frame and error counters."""
SortKey = Literal["path", "age", "status"]
SORT_KEYS: tuple[SortKey, ...] = ("path", "age", "status")
"""``path`` alphabetical; ``age`` freshest first; ``status`` valid, then unavailable, then no data."""

_BUS_COUNTER = re.compile(r"^Sdv\.Hal\.Bus\.(?P<bus>[^.]+)\.(?P<counter>.+)$")
_NO_DATA = Datapoint(None, None, Status.NOT_AVAILABLE)
_BUS_STATE_SIGNALS = frozenset(
    {"State", "LastError", "NextRetry"}
)  # shown as the bus's state, not as counters
_BUS_STATE_STYLES = {"DOWN": "bold red", "CONNECTING": "yellow", "ENDED": "yellow"}
_STATUS_STYLES = {"valid": "green", "unavailable": "yellow", "no data": "dim"}
_STATUS_ORDER = {"valid": 0, "unavailable": 1, "no data": 2}
_ELLIPSIS = "…"
_MIN_PATH_WIDTH = 16
# Columns beside the path: value (at least 8), unit, age (7), status (11); rich's box draws 6 rules and pads
# each of the 5 cells by one character on either side.
_AGE_WIDTH, _STATUS_WIDTH, _TABLE_FRAME = 7, 11, 6 + 5 * 2
# Lines of the screen that are not table rows: title, table title, top rule, header, header rule, bottom rule,
# footer.
_FIXED_LINES = 7


# --- paths -----------------------------------------------------------------------------------------------------
def _abbreviation(segment: str) -> str:
    """``DriverSide`` → ``DS``, ``Row1`` → ``R1``, ``HVAC`` → ``HVAC``, ``cabin`` → ``c``."""
    kept = "".join(character for character in segment if character.isupper() or character.isdigit())
    return kept or segment[:1]


def shorten_path(path: str, width: int, *, keep_tail: int = 0) -> str:
    """``path`` in at most ``width`` characters, shortened in the middle; the leaf stays whole where it fits.

    The branches between the root and the leaf are abbreviated one by one from the root's side, then replaced
    by ``…`` from there; a path still too long keeps its end. ``keep_tail`` branches before the leaf are never
    abbreviated (:func:`shorten_paths` raises it to tell paths apart).
    """
    if len(path) <= width:
        return path
    segments = path.split(".")
    last_abbreviable = max(1, len(segments) - 1 - keep_tail)
    for index in range(last_abbreviable):  # the root first: every path starts with it
        segments[index] = _abbreviation(segments[index])
        if len(candidate := ".".join(segments)) <= width:
            return candidate
    for index in range(1, last_abbreviable):
        candidate = ".".join([segments[0], _ELLIPSIS, *segments[index + 1 :]])
        if len(candidate) <= width:
            return candidate
    return _ELLIPSIS + path[len(path) - width + 1 :]


def shorten_paths(paths: Iterable[str], width: int) -> dict[str, str]:
    """Each path shortened to ``width`` (:func:`shorten_path`), keeping more branches whole where two would
    read alike."""
    wanted = list(dict.fromkeys(paths))
    keep = dict.fromkeys(wanted, 0)
    depth = max((path.count(".") for path in wanted), default=0)
    while True:
        short = {path: shorten_path(path, width, keep_tail=keep[path]) for path in wanted}
        readers: dict[str, list[str]] = {}
        for path, text in short.items():
            readers.setdefault(text, []).append(path)
        alike = [path for group in readers.values() if len(group) > 1 for path in group if keep[path] < depth]
        if not alike:
            return short
        for path in alike:
            keep[path] += 1


# --- rows ------------------------------------------------------------------------------------------------------
def status_of(datapoint: Datapoint) -> str:
    """``valid``, ``unavailable`` (the server cannot vouch for its value) or ``no data`` (never received)."""
    if datapoint.value is not None:
        return "valid"
    return "no data" if datapoint.timestamp is None else "unavailable"


def sort_rows(
    metas: Iterable[SignalMetadata], values: Mapping[str, Datapoint], key: SortKey
) -> list[SignalMetadata]:
    """The signals in the order of ``key`` (:data:`SORT_KEYS`); ties, and ``path`` itself, by path."""
    rows = sorted(metas, key=lambda meta: meta.path)
    if key == "age":  # freshest first; never received last
        rows.sort(key=lambda meta: -(values.get(meta.path, _NO_DATA).timestamp or float("-inf")))
    elif key == "status":
        rows.sort(key=lambda meta: _STATUS_ORDER[status_of(values.get(meta.path, _NO_DATA))])
    return rows


@dataclass(frozen=True)
class MonitorView:
    """Which part of the table the screen shows.

    Attributes:
        sort: the order of the rows.
        first: the index of the first row shown.
        rows: how many rows fit on the screen; None shows every row.
    """

    sort: SortKey = "path"
    first: int = 0
    rows: int | None = None

    def clamped(self, total: int) -> MonitorView:
        """The view with ``first`` inside the ``total`` rows there are."""
        last_first = max(0, total - (self.rows or total))
        return replace(self, first=min(max(0, self.first), last_first))

    def after_key(self, key: str, total: int) -> MonitorView:
        """The view after a key press: ``↓``/``j`` and ``↑``/``k`` a row, ``PgDn``/space and ``PgUp``/``b`` a
        page, ``Home``/``g`` and ``End``/``G`` to either end, ``s`` the next sort order; other keys change
        nothing."""
        page = max(1, self.rows or total)
        moves = {
            "down": 1,
            "j": 1,
            "up": -1,
            "k": -1,
            "pagedown": page,
            " ": page,
            "pageup": -page,
            "b": -page,
        }
        if key in moves:
            return replace(self, first=self.first + moves[key]).clamped(total)
        if key in ("home", "g"):
            return replace(self, first=0)
        if key in ("end", "G"):
            return replace(self, first=total).clamped(total)
        if key == "s":
            following = SORT_KEYS[(SORT_KEYS.index(self.sort) + 1) % len(SORT_KEYS)]
            return replace(self, sort=following, first=0)
        return self

    @staticmethod
    def rows_for_height(height: int, buses: int) -> int:
        """How many table rows fit in a terminal ``height`` lines high above ``buses`` bus lines."""
        return max(1, height - _FIXED_LINES - max(1, buses))


# --- the screen ------------------------------------------------------------------------------------------------
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


def bus_line(bus: str, counters: Mapping[str, Value | None], now: float, width: int | None = None) -> str:
    """``HAL bus vehicle: UP; 1200 Frames, 1195 Decoded, 5 BadFrames, 0 Reconnects; errors: E2eCounter 5``.

    Only non-zero errors are listed; the state leads when the server publishes it. A line wider than ``width``
    puts the errors before the counters and is cut at the end, so that each bus stays one row.
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
    problems = f"errors: {', '.join(errors)}" if errors else "no errors"
    line = lead + f"{', '.join(totals)}; " + problems
    if width is None or len(line) <= width:
        return line
    line = lead + problems + "; " + ", ".join(totals)  # too wide for one row: what went wrong first
    return line if len(line) <= width else line[: width - 1] + _ELLIPSIS


def split_buses(
    metas: Iterable[SignalMetadata], values: Mapping[str, Datapoint]
) -> tuple[dict[str, dict[str, Value | None]], list[SignalMetadata]]:
    """The HAL's per-bus state and counters (bus → name → value), and the other signals, the table's rows."""
    counters: dict[str, dict[str, Value | None]] = {}
    signals: list[SignalMetadata] = []
    for meta in metas:
        match = _BUS_COUNTER.match(meta.path)
        if match is None:
            if not meta.path.startswith(FEDERATION_ROOT + "."):  # the other ECUs: rows of their own
                signals.append(meta)
        else:
            counters.setdefault(match["bus"], {})[match["counter"]] = values.get(meta.path, _NO_DATA).value
    return counters, signals


def _footer(view: MonitorView, total: int, keys: bool) -> str:
    shown = min(total, view.first + (view.rows or total))
    text = f"rows {view.first + 1 if total else 0}-{shown} of {total}, by {view.sort}"
    if keys:
        text += "; ↑↓ PgUp PgDn Home End to scroll, s to sort, q to quit"
    return text


def render_monitor(
    title: str,
    metas: Iterable[SignalMetadata],
    values: Mapping[str, Datapoint],
    now: float,
    *,
    view: MonitorView | None = None,
    width: int = 160,
    keys: bool = False,
) -> RenderableType:
    """The monitor's screen: a title, one line per HAL bus, then one page of the signal table and a footer.

    Args:
        title: the first line (server and version).
        metas: every signal shown; those under ``Sdv.Hal.Bus`` are the buses' state and counters.
        values: the latest datapoint of each signal (missing: no data yet).
        now: the wall-clock time ages are measured against.
        view: the sort order and the page; every row by path when None.
        width: the terminal's width, which the paths are shortened to fit.
        keys: name the keys in the footer (the interactive screen).
    """
    from rich.console import Group  # noqa: PLC0415 - rich is needed by this command only
    from rich.table import Table  # noqa: PLC0415
    from rich.text import Text  # noqa: PLC0415

    counters, signals = split_buses(metas, values)
    view = (view or MonitorView()).clamped(len(signals))
    rows = sort_rows(signals, values, view.sort)
    page = rows[view.first : view.first + view.rows] if view.rows is not None else rows
    cells = [
        (meta, values.get(meta.path, _NO_DATA), format_value(values.get(meta.path, _NO_DATA).value))
        for meta in page
    ]
    value_width = max([8, *(len(text) for meta, datapoint, text in cells if datapoint.value is not None)])
    unit_width = max([4, *(len(meta.unit or "") for meta, _, _ in cells)])
    path_width = max(
        _MIN_PATH_WIDTH, width - value_width - unit_width - _AGE_WIDTH - _STATUS_WIDTH - _TABLE_FRAME
    )
    short = shorten_paths((meta.path for meta in page), path_width)

    table = Table(title="Signals", title_justify="left", expand=False)
    table.add_column("signal", no_wrap=True, overflow="ellipsis", max_width=path_width)
    table.add_column("value", justify="right", no_wrap=True, min_width=8)
    table.add_column("unit", no_wrap=True)
    table.add_column("age", justify="right", no_wrap=True, min_width=_AGE_WIDTH)
    table.add_column("status", no_wrap=True, min_width=_STATUS_WIDTH)
    for meta, datapoint, text in cells:
        status = status_of(datapoint)
        table.add_row(
            short[meta.path],
            text if datapoint.value is not None else "",
            meta.unit or "",
            format_age(datapoint, now),
            Text(status, style=_STATUS_STYLES[status]),
        )
    parts: list[RenderableType] = [Text(title, style="bold", no_wrap=True, overflow="ellipsis")]
    if counters:
        parts.extend(
            Text(
                bus_line(bus, row, now, width),
                style=_BUS_STATE_STYLES.get(str(row.get("State")), ""),
                no_wrap=True,
                overflow="ellipsis",
            )
            for bus, row in counters.items()
        )
    else:
        parts.append(Text(f"the server publishes no HAL counters ({HAL_ROOT})", style="dim"))
    remote = remote_ecu_rows(values, lambda since: format_age(Datapoint(None, since, Status.VALID), now))
    parts.extend(
        Text(text, style=STATE_STYLES.get(state, ""), no_wrap=True, overflow="ellipsis")
        for text, state in remote
    )
    parts.extend([table, Text(_footer(view, len(rows), keys), style="dim")])
    return Group(*parts)
