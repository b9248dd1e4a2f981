"""ADAS hard-braking detector: reports decelerations below -6 m/s², and only from values it can trust.

Usage::

    python examples/hard_braking.py --server 127.0.0.1:55555 --count 1 --timeout 180

Streams the vehicle dynamics of the typed ADAS service (``vehicle.adas.stream()``), in which every measurement
carries its source timestamp and its validity. A longitudinal acceleration or brake value that is not ``VALID`` —
``STALE`` (its message is overdue), ``E2E_FAILED`` (its message failed the end-to-end check) or ``NOT_AVAILABLE``
(never received) — is never taken for a braking event: the detector says that it ignored it, naming the validity,
once when the value stops being valid. One hard-braking episode is reported once, when the deceleration first
passes the threshold; the next one can be reported after it rose above it again, or after a gap in trusted data.

The server must serve the ADAS service (its vehicle profile maps ``services.adas``); otherwise the detector exits
with exit code 2 and says so.

Exits after ``--count`` events (exit code 0), or after ``--timeout`` seconds (exit code 0, with a summary line).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import Sequence

import sdv
from sdv.sdk import Measurement, Validity, VehicleDynamics

WATCHED = ("brake_pressed", "brake_pressure", "longitudinal_acceleration")
"""The fields of the dynamics the detector uses; the brake first, as an event names the brake state."""
HARD_BRAKING = -6.0
"""m/s²: decelerations below this are hard braking (an emergency stop is about -7 to -10 m/s²)."""


class Detector:
    """Turns trusted acceleration values into hard-braking events; pure, no I/O."""

    def __init__(self, threshold: float = HARD_BRAKING) -> None:
        self.threshold = threshold
        self.braking_hard = False
        self.validity: dict[str, Validity] = {}

    def feed(self, dynamics: VehicleDynamics) -> list[str]:
        """The lines to print for one message of the ADAS stream."""
        lines = []
        for name in WATCHED:
            measurement: Measurement = getattr(dynamics, name)
            previous = self.validity.get(name)
            self.validity[name] = measurement.validity
            if not measurement.valid:
                if previous is not measurement.validity:
                    lines.append(f"ignored {name}: {measurement.validity.name}, no trustworthy value")
                if name == "longitudinal_acceleration":
                    self.braking_hard = False  # an episode does not span a gap in trusted data
                continue
            if name != "longitudinal_acceleration":
                continue
            if measurement.value < self.threshold and not self.braking_hard:
                self.braking_hard = True
                lines.append(self._event(dynamics, measurement))
            elif measurement.value >= self.threshold:
                self.braking_hard = False
        return lines

    def _event(self, dynamics: VehicleDynamics, acceleration: Measurement) -> str:
        pedal, pressure = dynamics.brake_pressed, dynamics.brake_pressure
        pedal_text = "unknown" if not pedal.valid else ("pressed" if pedal.value >= 0.5 else "released")
        pressure_text = "unknown" if not pressure.valid else f"{pressure.value:g} bar"
        stamp = acceleration.timestamp
        when = stamp.isoformat(timespec="milliseconds") if stamp else "unknown time"
        return (
            f"HARD BRAKING at {when}: longitudinal acceleration {acceleration.value:.1f} m/s² "
            f"(threshold {self.threshold:g}), brake pedal {pedal_text}, brake pressure {pressure_text}"
        )


async def watch(server: str, count: int, timeout: float | None) -> int:
    """Print events until ``count`` were seen or ``timeout`` seconds passed."""
    detector = Detector()
    events = 0
    async with sdv.connect(server) as vehicle:
        updates = vehicle.adas.stream()
        async with contextlib.aclosing(updates):
            try:
                async with asyncio.timeout(timeout):
                    async for dynamics in updates:
                        for line in detector.feed(dynamics):
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
