"""Instrument cluster printer: one line of cluster state per update, from a vehicle served by ``sdv serve``.

Usage::

    python examples/cluster_printer.py --server 127.0.0.1:55555 --count 20

Subscribes to speed, gear, battery state of charge, range, turn indicators, doors, lights and outside
temperature with :func:`sdv.connect`, and prints the whole cluster each time a batch of changes arrives. A value
the server cannot vouch for now (stale, failed E2E check, never received) shows as ``--``. The subscription
reconnects by itself if the server restarts.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import Sequence

import sdv
from sdv.sdk import SignalValue, Value

SPEED = "Vehicle.Speed"
GEAR = "Vehicle.Powertrain.Transmission.SelectedGear"
STATE_OF_CHARGE = "Vehicle.Powertrain.TractionBattery.StateOfCharge.Displayed"
RANGE = "Vehicle.Powertrain.Range"
LEFT_INDICATOR = "Vehicle.Body.Lights.DirectionIndicator.Left.IsSignaling"
RIGHT_INDICATOR = "Vehicle.Body.Lights.DirectionIndicator.Right.IsSignaling"
DOORS = {
    "FL": "Vehicle.Cabin.Door.Row1.DriverSide.IsOpen",
    "FR": "Vehicle.Cabin.Door.Row1.PassengerSide.IsOpen",
    "RL": "Vehicle.Cabin.Door.Row2.DriverSide.IsOpen",
    "RR": "Vehicle.Cabin.Door.Row2.PassengerSide.IsOpen",
    "trunk": "Vehicle.Body.Trunk.Rear.IsOpen",
}
LOW_BEAM = "Vehicle.Body.Lights.Beam.Low.IsOn"
HIGH_BEAM = "Vehicle.Body.Lights.Beam.High.IsOn"
OUTSIDE_TEMPERATURE = "Vehicle.Exterior.AirTemperature"
SIGNALS = [
    SPEED,
    GEAR,
    STATE_OF_CHARGE,
    RANGE,
    LEFT_INDICATOR,
    RIGHT_INDICATOR,
    *DOORS.values(),
    LOW_BEAM,
    HIGH_BEAM,
    OUTSIDE_TEMPERATURE,
]
GEAR_LETTERS = {126: "P", -1: "R", 0: "N", 127: "D"}
NO_VALUE = "--"


def _number(state: dict[str, SignalValue[Value]], path: str, digits: int, scale: float = 1.0) -> str:
    signal = state.get(path)
    if signal is None or not signal.valid or isinstance(signal.value, bool | str) or signal.value is None:
        return NO_VALUE
    return f"{signal.value * scale:.{digits}f}"


def _flag(state: dict[str, SignalValue[Value]], path: str, on: str) -> str:
    signal = state.get(path)
    if signal is None or not signal.valid:
        return NO_VALUE
    return on if signal.value is True else "-"


def _flags(state: dict[str, SignalValue[Value]], names: dict[str, str]) -> str:
    """The names of the flags that are on, ``off`` if none, ``--`` if one cannot be trusted."""
    shown = [_flag(state, path, name) for path, name in names.items()]
    if NO_VALUE in shown:
        return NO_VALUE
    return "+".join(name for name in shown if name != "-") or "off"


def cluster_line(state: dict[str, SignalValue[Value]]) -> str:
    """The cluster as one line of text."""
    gear = state.get(GEAR)
    gear_text = (
        GEAR_LETTERS.get(gear.value, str(gear.value)) if gear and isinstance(gear.value, int) else NO_VALUE
    )
    open_doors = [name for name, path in DOORS.items() if _flag(state, path, "open") == "open"]
    lights = _flags(state, {LOW_BEAM: "low", HIGH_BEAM: "high"})
    indicators = _flags(state, {LEFT_INDICATOR: "left", RIGHT_INDICATOR: "right"})
    return (
        f"speed {_number(state, SPEED, 1):>5} km/h | gear {gear_text} | SOC {_number(state, STATE_OF_CHARGE, 1)} % "
        f"| range {_number(state, RANGE, 0, 0.001)} km | indicators {indicators} "
        f"| doors {','.join(open_doors) or 'closed'} | lights {lights} "
        f"| outside {_number(state, OUTSIDE_TEMPERATURE, 1)} °C"
    )


async def print_cluster(server: str, count: int) -> int:
    """Print ``count`` cluster lines (the first with every signal, then one per batch of changes)."""
    state: dict[str, SignalValue[Value]] = {}
    printed = 0
    async with sdv.connect(server) as vehicle:
        updates = vehicle.subscribe(SIGNALS, min_interval_ms=100)
        async with contextlib.aclosing(updates):
            async for batch in updates:
                state.update(batch)
                print(cluster_line(state), flush=True)
                printed += 1
                if printed >= count:
                    break
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Print the instrument cluster of a served vehicle.")
    parser.add_argument("--server", default=sdv.sdk.DEFAULT_SERVER, help="HOST:PORT (default %(default)s)")
    parser.add_argument("--count", type=int, default=0, help="exit after this many lines (default: never)")
    args = parser.parse_args(argv)
    try:
        return asyncio.run(print_cluster(args.server, args.count or sys.maxsize))
    except sdv.SdvError as error:
        print(f"cluster_printer: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
