"""ADAS hard-braking detector: reports decelerations below -6 m/s², and only from values it can trust.

Usage::

    python examples/hard_braking.py --server 127.0.0.1:55555 --count 1 --timeout 180

Subscribes to the longitudinal acceleration and the brake (pedal and pressure) with :func:`sdv.connect`. A value
the server cannot vouch for now — stale (its message is overdue), failed its end-to-end check, or never received
— arrives without value and with a status other than ``VALID``: it is never taken for a braking event, and the
detector says that it ignored it. One hard-braking episode is reported once, when the deceleration first passes
the threshold; the next one can be reported after it rose above it again.

Exits after ``--count`` events (exit code 0), or after ``--timeout`` seconds (exit code 0, with a summary line).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import Sequence

import sdv
from sdv.sdk import SignalValue, Value

ACCELERATION = "Vehicle.Acceleration.Longitudinal"
DRIVER_BRAKING = "Vehicle.Chassis.Brake.IsDriverBraking"
BRAKE_PRESSURE = "Vehicle.Chassis.Brake.Pressure"
HARD_BRAKING = -6.0
"""m/s²: decelerations below this are hard braking (an emergency stop is about -7 to -10 m/s²)."""


class Detector:
    """Turns trusted acceleration values into hard-braking events; pure, no I/O."""

    def __init__(self, threshold: float = HARD_BRAKING) -> None:
        self.threshold = threshold
        self.braking_hard = False
        self.brake: dict[str, SignalValue[Value]] = {}

    def feed(self, batch: dict[str, SignalValue[Value]]) -> list[str]:
        """The lines to print for a batch of updates."""
        lines = []
        # The brake first: a batch that carries both describes one moment, and the event names the brake state.
        for path, signal in sorted(batch.items(), key=lambda item: item[0] == ACCELERATION):
            if not signal.valid:
                lines.append(f"ignored {path}: status {signal.status.value}, no trustworthy value")
                if path == ACCELERATION:
                    self.braking_hard = False  # an episode does not span a gap in trusted data
                continue
            if path != ACCELERATION:
                self.brake[path] = signal
                continue
            value = signal.value
            if not isinstance(value, float):
                continue
            if value < self.threshold and not self.braking_hard:
                self.braking_hard = True
                lines.append(self._event(signal, value))
            elif value >= self.threshold:
                self.braking_hard = False
        return lines

    def _event(self, signal: SignalValue[Value], value: float) -> str:
        pedal = self.brake.get(DRIVER_BRAKING)
        pressure = self.brake.get(BRAKE_PRESSURE)
        pedal_text = "unknown" if pedal is None else ("pressed" if pedal.value else "released")
        pressure_text = "unknown" if pressure is None else f"{pressure.value} bar"
        when = signal.timestamp.isoformat(timespec="milliseconds") if signal.timestamp else "unknown time"
        return (
            f"HARD BRAKING at {when}: longitudinal acceleration {value:.1f} m/s² "
            f"(threshold {self.threshold:g}), brake pedal {pedal_text}, brake pressure {pressure_text}"
        )


async def watch(server: str, count: int, timeout: float | None) -> int:
    """Print events until ``count`` were seen or ``timeout`` seconds passed."""
    detector = Detector()
    events = 0
    async with sdv.connect(server) as vehicle:
        updates = vehicle.subscribe([ACCELERATION, DRIVER_BRAKING, BRAKE_PRESSURE])
        async with contextlib.aclosing(updates):
            try:
                async with asyncio.timeout(timeout):
                    async for batch in updates:
                        for line in detector.feed(batch):
                            print(line, flush=True)
                            events += line.startswith("HARD BRAKING")
                        if events >= count:
                            break
            except TimeoutError:
                print(f"timeout after {timeout:g} s: {events} hard-braking event(s)", flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Report hard braking of a served vehicle.")
    parser.add_argument("--server", default=sdv.sdk.DEFAULT_SERVER, help="HOST:PORT (default %(default)s)")
    parser.add_argument("--count", type=int, default=0, help="exit after this many events (default: never)")
    parser.add_argument("--timeout", type=float, default=None, help="exit after this many seconds")
    args = parser.parse_args(argv)
    try:
        return asyncio.run(watch(args.server, args.count or sys.maxsize, args.timeout))
    except sdv.SdvError as error:
        print(f"hard_braking: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
