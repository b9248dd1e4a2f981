"""The vehicle gate of the update agent: before install and activation, and again during activation, the bundle's
signed preconditions and the ECU integrator's own ones are evaluated on live signals, the energy budget is checked
against the battery, and the maintenance windows are honoured.

Where the signals come from is a :class:`SignalSource`: the agent knows nothing of the signal stack, so the
implementations live in :mod:`sdv.ota.signals` (``sdv serve`` over the KUKSA API with the agent's token, or the
broker of the same process) and are handed to the agent.

Invariants:

* fail-safe: a signal that is stale, not available, failed its E2E check or is older than ``max_age_s``, a source
  that cannot be read, and a missing source all make the conditions that need them unmet — never met;
* the integrator's conditions are always evaluated with the bundle's; a bundle can add conditions, not remove any;
* every check is recorded (:meth:`~sdv.ota.agent.records.AgentRecords`'s journal) with each signal's value, time
  and status, so an inspector can reconstruct why an update ran or not.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from sdv.errors import SdvError
from sdv.ota.agent.vehicle_config import VehicleConfig
from sdv.ota.bundle.conditions import Condition, ConditionResult, SignalReading, parse_condition, reading_of
from sdv.ota.bundle.manifest import Manifest
from sdv.ota.bundle.vehicle_terms import parse_conditions
from sdv.types.signals import Datapoint

__all__ = ["EnergyCheck", "GateCheck", "SignalSource", "VehicleGate", "VehicleView"]

_logger = logging.getLogger(__name__)
_PERCENT = 100.0
_WH_PER_KWH = 1000.0


class SignalSource(Protocol):
    """Live signals for the agent."""

    def read(self, paths: Sequence[str]) -> Mapping[str, Datapoint]:
        """The current datapoint of each path (a path left out counts as not available).

        Raises:
            SdvError: the signals cannot be read now (every condition is then unmet).
        """
        ...  # pragma: no cover - protocol


@dataclass(frozen=True)
class EnergyCheck:
    """The energy budget against the battery.

    Attributes:
        needed_wh: what the bundle states for install, activation and a rollback.
        available_wh: what the battery can give above the reserve (None when unknown).
        met: whether it suffices.
        reason: why not.
    """

    needed_wh: float
    available_wh: float | None
    met: bool
    reason: str | None = None


@dataclass(frozen=True)
class GateCheck:
    """One evaluation of the gate.

    Attributes:
        step: ``install``, ``activate`` or ``activation`` (the re-check while on trial).
        time: when it was made.
        results: each condition's result.
        energy: the energy check, when the bundle states a budget.
        window: why the time is outside the maintenance windows (None when inside or without windows).
        source_error: why the signals could not be read.
    """

    step: str
    time: datetime
    results: tuple[ConditionResult, ...] = ()
    energy: EnergyCheck | None = None
    window: str | None = None
    source_error: str | None = None
    readings: tuple[SignalReading, ...] = field(default=())

    @property
    def met(self) -> bool:
        """Whether the update may go on."""
        return (
            all(result.met for result in self.results)
            and (self.energy is None or self.energy.met)
            and self.window is None
            and self.source_error is None
        )

    def unmet(self) -> list[str]:
        """One line per unmet condition, with what was seen."""
        lines = [f"{result.text}: {result.reason}" for result in self.results if not result.met]
        if self.energy is not None and not self.energy.met:
            lines.append(f"energy: {self.energy.reason}")
        if self.window is not None:
            lines.append(self.window)
        if self.source_error is not None:
            lines.append(f"signals: {self.source_error}")
        return lines

    def summary(self) -> str:
        """One line: met, or what is unmet."""
        return "all preconditions met" if self.met else "; ".join(self.unmet())


@dataclass(frozen=True)
class VehicleView:
    """What the agent knows of the vehicle right now, for its status.

    Attributes:
        check: the last check of the preconditions (None before the first).
        notice_id: the notice on the cockpit's board for the update under way.
        consent: the consent state: empty, ``waiting``, or the answer (``accept``, ``postpone``, ``decline``,
            ``no answer``) with who gave it.
        software_id: the committed software's identification number.
    """

    check: GateCheck | None = None
    notice_id: str | None = None
    consent: str = ""
    software_id: str = ""


class VehicleGate:
    """Evaluates the preconditions and the energy budget of a bundle on live signals.

    Args:
        config: the agent's ``vehicle`` section.
        source: the live signals (None: every condition is unmet).
        clock: the time of checks (UTC).
    """

    def __init__(
        self, config: VehicleConfig, source: SignalSource | None, clock: Callable[[], datetime]
    ) -> None:
        self.config = config
        self.source = source
        self._clock = clock
        self._own = parse_conditions(list(config.preconditions), "agent configuration vehicle.preconditions")

    def conditions(self, manifest: Manifest | None) -> list[Condition]:
        """The integrator's conditions, then the bundle's."""
        terms = None if manifest is None else manifest.vehicle
        bundle = [] if terms is None else [parse_condition(text) for text in terms.preconditions]
        return [*self._own, *bundle]

    def needed(self, manifest: Manifest | None) -> bool:
        """Whether the gate has anything to check for this bundle."""
        terms = None if manifest is None else manifest.vehicle
        return bool(self._own or self.config.consent.windows) or (
            terms is not None and bool(terms.preconditions or terms.energy)
        )

    def check(self, step: str, manifest: Manifest | None) -> GateCheck:
        """Evaluate once."""
        now = self._clock()
        conditions = self.conditions(manifest)
        terms = None if manifest is None else manifest.vehicle
        budget = None if terms is None else terms.energy
        energy = self.config.energy
        paths = [path for condition in conditions for path in condition.paths]
        if budget is not None:
            paths.append(energy.state_of_charge)
            if energy.capacity_wh is None:
                paths.append(energy.capacity_signal)
        paths = list(dict.fromkeys(paths))
        datapoints: Mapping[str, Datapoint] = {}
        source_error = None
        if paths and self.source is None:
            source_error = "no signal source is configured (vehicle.signals)"
        elif paths and self.source is not None:
            try:
                datapoints = self.source.read(paths)
            except SdvError as error:
                source_error = f"cannot read the signals: {error}"
        stamp = now.timestamp()
        max_age = self.config.signals.max_age_s
        names = self.config.names
        results = tuple(
            condition.evaluate(datapoints, now=stamp, max_age_s=max_age, names=names)
            for condition in conditions
        )
        readings = tuple(reading_of(path, datapoints.get(path), stamp, max_age) for path in paths)
        energy_check = None if budget is None else self._energy(budget.energy_wh, datapoints, stamp)
        return GateCheck(step, now, results, energy_check, self._window(now), source_error, readings)

    def _energy(self, needed: float, datapoints: Mapping[str, Datapoint], now: float) -> EnergyCheck:
        energy = self.config.energy
        max_age = self.config.signals.max_age_s
        soc = _number(energy.state_of_charge, datapoints, now, max_age)
        if isinstance(soc, str):
            return EnergyCheck(needed, None, False, soc)
        capacity = energy.capacity_wh
        if capacity is None:
            kwh = _number(energy.capacity_signal, datapoints, now, max_age)
            if isinstance(kwh, str):
                return EnergyCheck(needed, None, False, f"{kwh}, and vehicle.energy.capacity_wh is not set")
            capacity = kwh * _WH_PER_KWH
        available = (soc - energy.reserve_percent) / _PERCENT * capacity
        if available < needed:
            return EnergyCheck(
                needed,
                available,
                False,
                f"the update needs {needed:g} Wh; the battery has {max(available, 0):g} Wh above the "
                f"{energy.reserve_percent:g} % reserve ({energy.state_of_charge} = {soc:g} %)",
            )
        return EnergyCheck(needed, available, True)

    def _window(self, now: datetime) -> str | None:
        windows = self.config.consent.windows
        moment = now.astimezone(UTC).time()
        if not windows or any(window.contains(moment) for window in windows):
            return None
        spans = ", ".join(f"{window.start:%H:%M}-{window.end:%H:%M}" for window in windows)
        return f"outside the maintenance windows ({spans} UTC)"

    def wait(
        self,
        step: str,
        manifest: Manifest | None,
        cancel: threading.Event,
        on_check: Callable[[GateCheck], None],
    ) -> GateCheck:
        """Evaluate until the gate is met, ``wait_s`` passed or ``cancel`` is set, every ``recheck_interval_s``.

        ``on_check`` is told of the first check, of each check whose result differs from the one before, and of
        the last.
        """
        deadline = self._clock().timestamp() + self.config.wait_s
        check = self.check(step, manifest)
        on_check(check)
        last = check.summary()
        while not check.met and self._clock().timestamp() < deadline:
            if cancel.wait(self.config.recheck_interval_s):
                break
            check = self.check(step, manifest)
            if check.met or check.summary() != last:
                on_check(check)
                last = check.summary()
        return check


def _number(
    path: str, datapoints: Mapping[str, Datapoint], now: float, max_age_s: float | None
) -> float | str:
    """The signal's number, or why there is none."""
    reading = reading_of(path, datapoints.get(path), now, max_age_s)
    if not reading.usable:
        return f"{path} is {reading.status.replace('_', ' ')}"
    if isinstance(reading.value, bool) or not isinstance(reading.value, (int, float)):
        return f"{path} is not a number ({reading.value!r})"
    return float(reading.value)
