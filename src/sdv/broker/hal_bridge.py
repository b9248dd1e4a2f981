"""Running a HAL into a broker: its updates, its actuators, and its frame counters as signals.

The HAL's counters are served as ordinary sensors under ``Sdv.Hal``, so that any KUKSA client (and
``sdv monitor``) can read them without a separate API. For each bus ``NAME``:

* ``Sdv.Hal.Bus.NAME.Frames``, ``Sdv.Hal.Bus.NAME.Decoded``, ``Sdv.Hal.Bus.NAME.BadFrames``;
* ``Sdv.Hal.Bus.NAME.Errors.<Reason>`` for each bad-frame reason (``UnknownId``, ``WrongLength``, ...).

All are ``uint64``, published at most once per ``statistics_period`` seconds from the HAL's reader threads as
frames arrive, and by the bridge's ``sdv-hal-statistics`` thread when they changed within the last period: the
frames counted after a publication (the end of a burst, error frames on a quiet bus) are served within one
period, with no frame after them.

The state of each bus (:mod:`sdv.hal.bus_state`) is published on every change:

* ``Sdv.Hal.Bus.NAME.State`` (``string``: ``CONNECTING``, ``UP``, ``DOWN``, ``ENDED``);
* ``Sdv.Hal.Bus.NAME.LastError`` (``string``): the last failure, kept after the bus recovered;
* ``Sdv.Hal.Bus.NAME.Reconnects`` (``uint64``): times the bus came back up after a failure;
* ``Sdv.Hal.Bus.NAME.NextRetry`` (``double``, seconds since the Unix epoch): when the next attempt to reopen a bus
  that is ``DOWN`` is due; no value otherwise.

The state signals of all buses come after all counters, so that the counters keep their ids. Then come the
attributes of the profile's ``diagnostics`` section (:mod:`sdv.hal.diagnostics`: ECU identification read over
UDS, e.g. ``Vehicle.SDV.Ecu.Engine.SoftwareVersion``, ``string``), not available until their ECU answered, and
last, for a profile with a ``federation:`` section, the federation's status signals (``Sdv.Federation.Ecu``,
published by :mod:`sdv.federation`).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Sequence
from typing import Literal

from sdv.broker.access import UNRESTRICTED
from sdv.broker.broker import Broker
from sdv.broker.config import Limits
from sdv.broker.model import metadata_from_catalogue, metadata_from_vehicle
from sdv.broker.ownership import Owner, OwnerKind
from sdv.broker.providers import HalProvider
from sdv.federation_config import status_metadata
from sdv.hal.bus_state import BusState, BusStatus
from sdv.hal.diagnostics import DiagnosticPlan
from sdv.hal.diagnostics_runner import DiagnosticsRunner
from sdv.hal.processor import BusStatistics, SignalUpdate, Status
from sdv.hal.runtime import Hal
from sdv.hal.vehicle import VehicleDefinition
from sdv.types.signals import SignalMetadata
from sdv.vss import Catalogue

__all__ = [
    "BAD_FRAME_REASONS",
    "HalBridge",
    "bus_state_updates",
    "diagnostic_metadata",
    "hal_actuator_paths",
    "hal_metadata",
    "hal_owned_paths",
    "hal_read_only_actuator_paths",
    "hal_statistics_updates",
]

BAD_FRAME_REASONS: dict[str, str] = {
    "unknown_id": "UnknownId",
    "wrong_length": "WrongLength",
    "out_of_range": "OutOfRange",
    "unmapped_value": "UnmappedValue",
    "e2e_checksum": "E2eChecksum",
    "e2e_counter": "E2eCounter",
    "error_frame": "ErrorFrame",
}
_COUNTERS = {
    "Frames": "frames received on the bus",
    "Decoded": "frames of known messages with a valid length",
    "BadFrames": "frames that could not be used, all reasons",
}


_STATE_SIGNALS: dict[str, tuple[str, str]] = {
    "State": (
        "string",
        "HAL bus state: CONNECTING, UP, DOWN (retried with backoff) or ENDED (recording played)",
    ),
    "LastError": ("string", "HAL bus: the last failure of the bus, kept after it recovered"),
    "Reconnects": ("uint64", "HAL bus: times the bus came back up after a failure"),
    "NextRetry": ("double", "HAL bus: when the next attempt to reopen the bus is due (Unix time, s)"),
}
_STATES = tuple(state.name for state in BusState)


def _state_paths(bus: str) -> list[str]:
    return [f"Sdv.Hal.Bus.{bus}.{name}" for name in _STATE_SIGNALS]


def _paths(bus: str) -> dict[str, str]:
    prefix = f"Sdv.Hal.Bus.{bus}."
    paths = {prefix + name: description for name, description in _COUNTERS.items()}
    for reason, name in BAD_FRAME_REASONS.items():
        paths[f"{prefix}Errors.{name}"] = f"bad frames: {reason.replace('_', ' ')}"
    return paths


def hal_metadata(buses: Sequence[str], first_id: int) -> list[SignalMetadata]:
    """Metadata of the counter and state signals of ``buses``, with ids from ``first_id``."""
    entries = [
        (path, "uint64", f"HAL counter: {description}")
        for bus in buses
        for path, description in _paths(bus).items()
    ]
    entries += [
        (path, datatype, description)
        for bus in buses
        for path, (datatype, description) in zip(_state_paths(bus), _STATE_SIGNALS.values(), strict=True)
    ]
    return [
        SignalMetadata(
            id=first_id + index,
            path=path,
            kind="sensor",
            datatype=datatype,
            allowed=_STATES if path.endswith(".State") else None,
            description=description,
        )
        for index, (path, datatype, description) in enumerate(entries)
    ]


def diagnostic_metadata(plan: DiagnosticPlan, first_id: int) -> list[SignalMetadata]:
    """Metadata of the attributes the diagnostics read (ECU identification), with ids from ``first_id``."""
    return [
        SignalMetadata(
            id=first_id + index,
            path=attribute.path,
            kind="attribute",
            datatype="string",
            description=attribute.description,
        )
        for index, attribute in enumerate(plan.attributes)
    ]


def hal_owned_paths(vehicle: VehicleDefinition) -> list[str]:
    """The profile signals the HAL provides: those decoded from a bus, and attributes with a fixed value."""
    return [
        path
        for path, signal in vehicle.signals.items()
        if signal.source is not None or (signal.kind == "attribute" and signal.value is not None)
    ]


def hal_actuator_paths(vehicle: VehicleDefinition) -> list[str]:
    """The profile actuators the HAL carries out: those with a request message (``actuator:``) to encode."""
    return [path for path, signal in vehicle.signals.items() if signal.actuated_by == "hal"]


def hal_read_only_actuator_paths(vehicle: VehicleDefinition) -> list[str]:
    """The profile actuators the HAL only reads: decoded from a bus, but no request message to encode."""
    return [path for path, signal in vehicle.signals.items() if signal.read_only_actuator]


def hal_statistics_updates(statistics: dict[str, BusStatistics], timestamp: float) -> list[SignalUpdate]:
    """The counter signals' values for a snapshot of the HAL's statistics."""
    updates = []
    for bus, stats in statistics.items():
        prefix = f"Sdv.Hal.Bus.{bus}."
        bad = sum(stats.bad.values())
        for name, value in (("Frames", stats.frames), ("Decoded", stats.decoded), ("BadFrames", bad)):
            updates.append(SignalUpdate(prefix + name, value, timestamp, Status.VALID))
        for reason, name in BAD_FRAME_REASONS.items():
            updates.append(
                SignalUpdate(f"{prefix}Errors.{name}", stats.bad.get(reason, 0), timestamp, Status.VALID)
            )
    return updates


def bus_state_updates(bus: str, status: BusStatus, timestamp: float) -> list[SignalUpdate]:
    """The state signals' values for one bus's status (``NextRetry`` is not available unless retrying)."""
    prefix = f"Sdv.Hal.Bus.{bus}."
    retry = status.next_retry
    return [
        SignalUpdate(prefix + "State", status.state.name, timestamp, Status.VALID),
        SignalUpdate(prefix + "LastError", status.error or "", timestamp, Status.VALID),
        SignalUpdate(prefix + "Reconnects", status.reconnects, timestamp, Status.VALID),
        SignalUpdate(
            prefix + "NextRetry", retry, timestamp, Status.NOT_AVAILABLE if retry is None else Status.VALID
        ),
    ]


class HalBridge:
    """Connects a :class:`~sdv.hal.runtime.Hal` to a :class:`~sdv.broker.Broker`.

    Args:
        hal: the vehicle's HAL (not started).
        limits: the broker's limits.
        statistics_period: seconds between publications of the HAL counters.
        catalogue: a VSS catalogue whose other leaves the broker serves too, open to outside providers (ids
            after the profile's signals and the HAL's counters).
    """

    def __init__(
        self,
        hal: Hal,
        limits: Limits | None = None,
        *,
        statistics_period: float = 1.0,
        catalogue: Catalogue | None = None,
    ) -> None:
        self.hal = hal
        vehicle = hal.vehicle
        signals = metadata_from_vehicle(vehicle, catalogue)
        signals += hal_metadata(list(vehicle.buses), len(signals) + 1)
        diagnostics = DiagnosticPlan.compile(vehicle.config.diagnostics)
        signals += diagnostic_metadata(diagnostics, len(signals) + 1)
        if catalogue is not None:
            signals += metadata_from_catalogue(catalogue, len(signals) + 1, {meta.path for meta in signals})
        if vehicle.config.federation is not None:  # the federation's view of the other ECUs, last: ids stay
            signals += status_metadata(len(signals) + 1)
        self.broker = Broker(signals, limits)
        self.diagnostics = DiagnosticsRunner(
            diagnostics, {name: bus.config for name, bus in vehicle.buses.items()}, self.broker.publish
        )
        self.broker.attach_statistics(
            lambda: {"hal": {bus: vars(stats) for bus, stats in hal.statistics().items()}}
        )
        self.statistics_period = statistics_period
        self._next_statistics = 0.0
        self._statistics_lock = threading.Lock()
        self._published: dict[str, BusStatistics] = {}
        self._ticker: threading.Thread | None = None
        self._ticker_stop = threading.Event()
        self.owner = Owner(OwnerKind.HAL, "HAL")
        self._started = False

    def start(self) -> None:
        """Start the HAL's buses into the broker; the HAL owns the signals it feeds and the actuators it encodes.

        The owned signals (:func:`hal_owned_paths` and the counters under ``Sdv.Hal``) cannot be published by
        anyone else, nor the owned actuators (:func:`hal_actuator_paths`, and read-only those of
        :func:`hal_read_only_actuator_paths`, whose requests are refused) provided; every other signal and
        actuator of the broker is open to outside providers.
        """
        vehicle = self.hal.vehicle
        counters = [path for bus in vehicle.buses for path in [*_paths(bus), *_state_paths(bus)]]
        owned = hal_owned_paths(vehicle) + counters + self.diagnostics.plan.paths
        self.broker.claim_signals(owned, self.owner, access=UNRESTRICTED)
        self.broker.claim_actuators(
            hal_actuator_paths(vehicle), self.owner, HalProvider(self.hal), access=UNRESTRICTED
        )
        self.broker.claim_actuators(
            hal_read_only_actuator_paths(vehicle), self.owner, None, access=UNRESTRICTED
        )
        self._started = True
        self._publish_statistics("now")
        self.hal.start(self._consume, self._bus_changed)
        self.diagnostics.start()
        if self.statistics_period > 0:  # with no period every batch publishes them
            self._ticker_stop.clear()
            self._ticker = threading.Thread(target=self._tick, name="sdv-hal-statistics", daemon=True)
            self._ticker.start()

    def _consume(self, updates: list[SignalUpdate]) -> None:
        self.broker.publish(updates)
        if time.monotonic() >= self._next_statistics:
            self._publish_statistics("due")

    def _tick(self) -> None:
        while not self._ticker_stop.wait(self.statistics_period):
            self._publish_statistics("changed")

    def _publish_statistics(self, when: Literal["now", "due", "changed"]) -> None:
        """Publish the HAL's counters ``now``, when the period since the last publication passed (``due``: from a
        batch), or when they ``changed`` since (the ticker)."""
        # Several buses' threads and the ticker: one publication at a time, in order.
        with self._statistics_lock:
            now = time.monotonic()
            if when == "due" and now < self._next_statistics:
                return
            statistics = self.hal.statistics()
            if when == "changed" and statistics == self._published:
                return
            self._next_statistics = now + self.statistics_period
            self._published = statistics
            self.broker.publish(hal_statistics_updates(statistics, time.time()))

    def _bus_changed(self, bus: str, status: BusStatus) -> None:
        # The HAL's clock times the state (a fake one in tests); the datapoints carry wall-clock time as the
        # counters do, and NextRetry is the wall-clock time of the next attempt.
        now = time.time()
        if status.retry_delay is not None:
            status = dataclasses.replace(status, next_retry=now + status.retry_delay)
        self.broker.publish(bus_state_updates(bus, status, now))
        # A bus going down ends the stream of batches from its thread: publish the counters it reached.
        self._publish_statistics("now")

    def stop(self) -> None:
        """Stop the diagnostics, the counters' ticker and the HAL and release its actuators and signals."""
        self.diagnostics.stop()
        self._ticker_stop.set()
        if self._ticker is not None:
            self._ticker.join()
            self._ticker = None
        self.hal.stop()
        if self._started:
            self.broker.release(self.owner)
            self._started = False
