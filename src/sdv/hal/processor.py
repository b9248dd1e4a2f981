"""The frame processor: CAN frames in, batches of VSS signal updates out. Pure: no threads, no I/O, no clock.

Everything that depends only on the vehicle model is compiled at construction: a routing table per bus keyed by
(arbitration id, extended flag); per routed message a decoder specialised to the signals the profile maps (plus
their multiplexers and E2E signals); per signal a converter from the DBC physical value to the VSS value. The
per-frame path then does a dictionary lookup, one compiled call and a loop over the message's mapped signals.

Invariants:

* A frame never raises out of :meth:`FrameProcessor.process`: bad frames are counted per bus and reason
  (``unknown_id``, ``wrong_length``, ``unknown_multiplexer``, ``out_of_range``, ``unmapped_value``,
  ``e2e_counter``, ``e2e_checksum``, ``error_frame``) and logged at most once per bus, message id and reason.
* An update is emitted only when a signal's value changed (or its status did), at most once per its update
  policy's ``min_interval_ms``; the latest held-back value is emitted when the interval has passed. A processor
  built with ``every_frame`` emits every mapped signal of every decoded frame instead (``sdv decode``): the same
  decoding, checks and conversions, without the publishing policy.
* A message whose E2E check fails publishes nothing from that frame and marks its signals ``E2E_FAILED``; a
  message not received within ``timeout_multiple`` cycle times marks its signals ``STALE``. Both recover, with
  every signal re-published, on the next good frame.
* A bus marked unavailable (:meth:`FrameProcessor.mark_bus_unavailable`) publishes every signal it carries as
  ``NOT_AVAILABLE`` without value and forgets what it knew of the bus (last payloads, E2E counters, freshness), so
  that the first frames after it came back re-publish every signal as ``VALID`` and resynchronise the counters.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from sdv.errors import FrameError
from sdv.hal.codec import DecodeFunction, MessageCodec, SignalLayout
from sdv.hal.e2e import E2ECheck
from sdv.hal.expressions import compile_expression
from sdv.hal.profile import SignalConfig
from sdv.hal.vehicle import VehicleDefinition, value_table_for
from sdv.types.datatypes import INTEGER_RANGES, ROUNDING, Value
from sdv.types.status import Status

__all__ = [
    "BusStatistics",
    "FrameLike",
    "FrameProcessor",
    "SignalUpdate",
    "Status",
    "route_key",
    "signal_converter",
]

_LOG = logging.getLogger(__name__)
_EXTENDED = 1 << 29


def route_key(arbitration_id: int, is_extended: bool) -> int:
    """One integer for (id, extended flag): 29-bit ids cannot collide with the flag bit."""
    return arbitration_id | _EXTENDED if is_extended else arbitration_id


class FrameLike(Protocol):
    """What the processor reads of a frame (``can.Message`` has it)."""

    @property
    def arbitration_id(self) -> int: ...
    @property
    def is_extended_id(self) -> bool: ...
    @property
    def timestamp(self) -> float: ...
    @property
    def data(self) -> bytearray | bytes: ...
    @property
    def is_error_frame(self) -> bool: ...


class SignalUpdate(NamedTuple):
    """A new value or status of one VSS signal, stamped with the time of the frame that carried it.

    A named tuple rather than a dataclass: one is created per changed signal on the hot path.
    """

    path: str
    value: Value | None
    timestamp: float
    status: Status = Status.VALID


@dataclass
class BusStatistics:
    """Frame counters of one bus."""

    frames: int = 0
    decoded: int = 0
    bad: Counter[str] = field(default_factory=Counter)

    def snapshot(self) -> BusStatistics:
        """A copy that later frames do not change."""
        return BusStatistics(self.frames, self.decoded, Counter(self.bad))


Converter = Callable[[int | float], Value]


class _Binding:
    """One profile signal fed by one DBC signal: its converter and its publishing state."""

    __slots__ = (
        "convert",
        "high",
        "last_physical",
        "last_published",
        "last_value",
        "low",
        "min_interval",
        "path",
        "pending",
        "range_checked",
        "signal",
    )

    def __init__(self, config: SignalConfig, layout: SignalLayout) -> None:
        self.path = config.path
        self.signal = layout.name
        self.convert = signal_converter(config, layout)
        low, high = layout.physical_bounds()
        self.low = low
        self.high = high
        # Only a DBC range narrower than the bit field can be violated by a decoded value.
        bit_low, bit_high = (layout.to_physical(raw & layout.mask) for raw in layout.raw_bounds)
        self.range_checked = low > min(bit_low, bit_high) or high < max(bit_low, bit_high)
        self.min_interval = config.update.min_interval_ms / 1000.0
        self.last_physical: int | float | None = None
        self.last_value: Value | None = None
        self.last_published = -float("inf")
        self.pending = False


def signal_converter(config: SignalConfig, layout: SignalLayout) -> Converter:
    """The function from a DBC physical value to the signal's VSS value (a ``KeyError`` means unmapped).

    An expression may raise ``ArithmeticError`` or ``ValueError`` for a value its load-time range check did not
    cover (a float DBC signal carrying NaN or infinity).
    """
    table = value_table_for(config, layout)
    if table is not None:
        return table.__getitem__  # a KeyError is an unmapped value
    transform = config.transform
    datatype = config.datatype
    rounding = ROUNDING[config.rounding or "round"]
    if transform is not None and transform.math is not None:
        expression = compile_expression(transform.math)
        if datatype == "boolean":
            return lambda value: bool(expression(value))
        if datatype in INTEGER_RANGES:
            return lambda value: rounding(expression(value))
        return lambda value: float(expression(value))
    factor, offset = (transform.factor, transform.offset) if transform else (1.0, 0.0)
    identity = factor == 1.0 and offset == 0.0
    if datatype == "boolean":
        return bool if identity else lambda value: bool(value * factor + offset)
    if datatype in INTEGER_RANGES:
        if identity and layout.conversion != "linear":
            return int
        if config.rounding is None:  # the load check proved the values integral: round only drops float noise
            return lambda value: round(value * factor + offset)
        return lambda value: rounding(value * factor + offset)
    return float if identity else lambda value: float(value * factor + offset)


class _Route:
    """A message the processor receives on one bus."""

    __slots__ = (
        "bindings",
        "codec",
        "decode",
        "e2e",
        "e2e_failed",
        "last_data",
        "last_seen",
        "length",
        "stale",
        "throttled",
        "timeout",
    )

    def __init__(
        self, codec: MessageCodec, bindings: list[_Binding], e2e: E2ECheck | None, timeout: float | None
    ) -> None:
        self.codec = codec
        self.length = codec.length
        self.bindings = tuple(bindings)
        wanted = [binding.signal for binding in bindings]
        if e2e is not None:  # decoded last, so the E2E check reads them from the same decode
            wanted += [e2e.counter.name, e2e.checksum.name]
        self.decode: DecodeFunction | None = codec.compile_decoder(wanted) if wanted else None
        self.e2e = e2e
        self.timeout = timeout
        self.throttled = any(b.min_interval > 0 for b in bindings)
        self.last_data: bytes | bytearray | None = None
        self.last_seen: float | None = None
        self.stale = False
        self.e2e_failed = False


class FrameProcessor:
    """Turns frames of the vehicle's buses into signal updates.

    Args:
        vehicle: the checked vehicle model.
        every_frame: publish every mapped signal of every decoded frame, changed or not and whatever its update
            policy (what ``sdv decode --profile`` shows); by default only changes, as a server publishes them.
    """

    def __init__(self, vehicle: VehicleDefinition, *, every_frame: bool = False) -> None:
        self.vehicle = vehicle
        self.every_frame = every_frame
        self.bus_names: tuple[str, ...] = tuple(vehicle.buses)
        self._routes: list[dict[int, _Route]] = []
        self._statistics: list[BusStatistics] = []
        self._logged: set[tuple[int, int, str]] = set()
        freshness = vehicle.config.freshness
        bindings_by_message: dict[tuple[str, str], list[_Binding]] = {}
        for signal in vehicle.signals.values():
            if signal.source is None:
                continue
            codec = vehicle.codec(signal.source.bus, signal.source.message)
            binding = _Binding(signal, codec.signal(signal.source.signal))
            bindings_by_message.setdefault((signal.source.bus, signal.source.message), []).append(binding)
        for bus_name, bus in vehicle.buses.items():
            routes: dict[int, _Route] = {}
            for (frame_id, extended), codec in bus.codecs.items():
                bindings = bindings_by_message.get((bus_name, codec.name), [])
                settings = vehicle.messages.get((bus_name, codec.name))
                e2e = (
                    E2ECheck(settings.e2e, codec)
                    if settings is not None and settings.e2e is not None
                    else None
                )
                cycle = vehicle.cycle_time_ms(bus_name, codec.name)
                timeout = (
                    cycle * freshness.timeout_multiple / 1000.0
                    if cycle and freshness.enabled and bindings
                    else None
                )
                routes[route_key(frame_id, extended)] = _Route(codec, bindings, e2e, timeout)
            self._routes.append(routes)
            self._statistics.append(BusStatistics())
        self._timed_by_bus = [
            [route for route in routes.values() if route.timeout is not None] for routes in self._routes
        ]
        self._timed = [route for routes in self._timed_by_bus for route in routes]

    def bus_index(self, name: str) -> int:
        """Index of a bus, as :meth:`process` takes it."""
        return self.bus_names.index(name)

    def counters(self, bus_index: int) -> BusStatistics:
        """The frame counters of one bus as they count (not a copy: read them between two :meth:`process` calls,
        never change them)."""
        return self._statistics[bus_index]

    def statistics(self) -> dict[str, BusStatistics]:
        """Frame counters per bus (copies)."""
        return {name: stats.snapshot() for name, stats in zip(self.bus_names, self._statistics, strict=True)}

    def last_payload(self, bus: str, frame_id: int, is_extended: bool) -> bytes | bytearray | None:
        """The payload of the last frame of a message received on a bus, if any."""
        route = self._routes[self.bus_index(bus)].get(route_key(frame_id, is_extended))
        return route.last_data if route is not None else None

    def attribute_updates(self, timestamp: float) -> list[SignalUpdate]:
        """Updates for the attributes that have a fixed value in the profile."""
        return [
            SignalUpdate(signal.path, signal.value, timestamp)
            for signal in self.vehicle.signals.values()
            if signal.source is None and signal.value is not None
        ]

    def _bad(self, bus_index: int, reason: str, key: int, detail: str, *arguments: object) -> None:
        """Count a bad frame; log the first of its bus, id and reason (``detail % arguments``, formatted only
        then: bad values can arrive with every frame)."""
        self._statistics[bus_index].bad[reason] += 1
        marker = (bus_index, key, reason)
        if marker not in self._logged:
            self._logged.add(marker)
            _LOG.warning(
                "bus %s: %s for frame id 0x%X (%s); further ones for this id are only counted",
                self.bus_names[bus_index],
                reason,
                key & ~_EXTENDED,
                detail % arguments if arguments else detail,
            )

    def process(self, bus_index: int, frames: Iterable[FrameLike]) -> list[SignalUpdate]:
        """Decode a batch of frames received on one bus.

        Returns:
            The updates the batch produced, in frame order.
        """
        routes = self._routes[bus_index]
        statistics = self._statistics[bus_index]
        updates: list[SignalUpdate] = []
        append = updates.append
        new = tuple.__new__  # a named tuple without its keyword-handling constructor: the hot path
        valid = Status.VALID
        received = 0
        decoded = 0
        every_frame = self.every_frame
        for frame in frames:
            received += 1
            if frame.is_error_frame:
                self._bad(bus_index, "error_frame", frame.arbitration_id, "error frame")
                continue
            key = frame.arbitration_id | _EXTENDED if frame.is_extended_id else frame.arbitration_id
            route = routes.get(key)
            if route is None:
                self._bad(bus_index, "unknown_id", key, "no DBC message on this bus")
                continue
            data = frame.data
            if len(data) < route.length:
                self._bad(
                    bus_index,
                    "wrong_length",
                    key,
                    "%d bytes, %s has %d",
                    len(data),
                    route.codec.name,
                    route.length,
                )
                continue
            if len(data) > route.length:
                data = data[: route.length]  # excess bytes carry no signal (cantools ignores them too)
            timestamp = frame.timestamp
            route.last_seen = timestamp
            force = route.stale or every_frame
            decode = route.decode
            e2e = route.e2e
            if e2e is None and (
                decode is None or (data == route.last_data and not force and not route.throttled)
            ):
                decoded += 1
                route.last_data = data
                continue  # nothing in the payload changed, so no signal did (or nothing is mapped)
            try:
                values = decode(data)  # type: ignore[misc]  # only a route without E2E may lack a decoder
            except FrameError as error:  # a multiplexer value that selects no branch
                self._bad(bus_index, error.reason, key, str(error))
                continue
            decoded += 1
            route.last_data = data
            if route.stale:
                route.stale = False
            if e2e is not None:
                reason = e2e.failure(data, values[-2], values[-1])
                if reason is not None:
                    self._bad(bus_index, reason, key, route.codec.name)
                    if not route.e2e_failed:
                        route.e2e_failed = True
                        for binding in route.bindings:
                            append(
                                new(
                                    SignalUpdate,
                                    (binding.path, binding.last_value, timestamp, Status.E2E_FAILED),
                                )
                            )
                    continue
                if route.e2e_failed:
                    route.e2e_failed = False
                    force = True
            for binding, physical in zip(route.bindings, values):  # noqa: B905 - same length by construction
                if physical is None:
                    continue  # inactive multiplexer branch
                if physical == binding.last_physical and not force:
                    if binding.pending and timestamp - binding.last_published >= binding.min_interval:
                        binding.pending = False
                        binding.last_published = timestamp
                        append(new(SignalUpdate, (binding.path, binding.last_value, timestamp, valid)))
                    continue
                if binding.range_checked and (physical < binding.low or physical > binding.high):
                    self._bad(
                        bus_index,
                        "out_of_range",
                        key,
                        "%s=%s outside [%s, %s]",
                        binding.signal,
                        physical,
                        binding.low,
                        binding.high,
                    )
                    continue
                try:
                    value = binding.convert(physical)
                except KeyError:
                    self._bad(
                        bus_index,
                        "unmapped_value",
                        key,
                        "%s=%s not in the value table",
                        binding.signal,
                        physical,
                    )
                    continue
                except (ArithmeticError, ValueError) as error:
                    self._bad(
                        bus_index,
                        "out_of_range",
                        key,
                        "%s=%s: transform: %s",
                        binding.signal,
                        physical,
                        error,
                    )
                    continue
                binding.last_physical = physical
                binding.last_value = value
                if binding.min_interval:
                    if timestamp - binding.last_published < binding.min_interval and not force:
                        binding.pending = True
                        continue
                    binding.pending = False
                    binding.last_published = timestamp
                append(new(SignalUpdate, (binding.path, value, timestamp, valid)))
        statistics.frames += received
        statistics.decoded += decoded
        return updates

    def check_freshness(self, now: float, bus_index: int | None = None) -> list[SignalUpdate]:
        """Mark the signals of messages overdue at ``now`` (seconds, the frames' time base) as stale.

        Args:
            bus_index: only this bus's messages (a bus's reader judges its own bus); None: every bus.
        """
        updates = []
        for route in self._timed if bus_index is None else self._timed_by_bus[bus_index]:
            if route.stale or route.last_seen is None or route.timeout is None:
                continue
            if now - route.last_seen > route.timeout:
                route.stale = True
                for binding in route.bindings:
                    updates.append(SignalUpdate(binding.path, binding.last_value, now, Status.STALE))
        return updates

    def mark_bus_unavailable(self, bus_index: int, timestamp: float) -> list[SignalUpdate]:
        """The bus went down: its signals become ``NOT_AVAILABLE`` and its messages start over.

        Returns:
            One ``NOT_AVAILABLE`` update without value for every signal the bus carries.
        """
        updates = []
        for route in self._routes[bus_index].values():
            route.last_data = None
            route.last_seen = None  # no freshness verdict until a frame arrives again
            route.stale = False
            route.e2e_failed = False
            if route.e2e is not None:
                route.e2e.previous_counter = None
            for binding in route.bindings:
                binding.last_physical = None
                binding.last_value = None
                binding.pending = False
                binding.last_published = -float("inf")
                updates.append(SignalUpdate(binding.path, None, timestamp, Status.NOT_AVAILABLE))
        return updates

    def message_states(self) -> Mapping[str, Mapping[str, str]]:
        """Per bus, the state of each mapped message: ``valid``, ``stale``, ``e2e_failed`` or ``not_received``."""
        states: dict[str, dict[str, str]] = {}
        for name, routes in zip(self.bus_names, self._routes, strict=True):
            bus_states = states.setdefault(name, {})
            for route in routes.values():
                if not route.bindings:
                    continue
                if route.last_seen is None:
                    state = "not_received"
                elif route.stale:
                    state = "stale"
                elif route.e2e_failed:
                    state = "e2e_failed"
                else:
                    state = "valid"
                bus_states[route.codec.name] = state
        return states
