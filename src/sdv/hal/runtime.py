"""The HAL orchestrator: runs the vehicle's frame sources and hands batches of signal updates to a consumer.

:class:`Hal` owns one :class:`~sdv.hal.processor.FrameProcessor` and one :class:`~sdv.hal.sources.FrameSource` per
bus. :meth:`Hal.start` runs a reader thread per bus; each batch of frames becomes one call of the consumer with the
updates it produced (batching is the performance lever all the way up to the gRPC stream). :meth:`Hal.replay` is
the synchronous alternative for finite recordings (decoding a log, benchmarks). :meth:`Hal.write` turns an
actuator request into a frame on the bus and returns only once the frame was sent.

Bus resilience: each bus has a state (:mod:`sdv.hal.bus_state`). When opening or reading a bus fails (python-can
``CanError``, ``OSError``, :class:`~sdv.errors.HalError`, a recording that is missing or corrupt), its reader
thread closes the source, publishes every signal of that bus as ``NOT_AVAILABLE`` and reopens it after the
backoff of :class:`~sdv.hal.config.BusReopenPolicy`; the other buses' threads never wait for it. At
:meth:`Hal.start` a bus that cannot be opened for a reason that may pass (:class:`~sdv.errors.BusError`) starts
``DOWN`` and is retried the same way; configuration that can never work fails the start. :meth:`Hal.open` and
:meth:`Hal.replay`, meant for finite runs, retry nothing and raise the first failure.

Locking: each bus's decoding state is guarded by a lock of its own, so buses decode independently of each other;
delivering to the consumer and the listener is serialised by another lock; the sources and bus states by a third,
only ever held briefly. :meth:`Hal.write` takes that one only, never a bus's decoding lock nor the delivery's: an
actuation waits neither behind decoding nor behind a slow consumer.
"""

from __future__ import annotations

import contextlib
import difflib
import logging
import random
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from pathlib import Path

import can

from sdv.errors import BusError, HalError, NoProviderError, ReadOnlyError, UnknownSignalError
from sdv.hal.actuation import ActuatorEncoder
from sdv.hal.bus_state import BusState, BusStateMachine, BusStatus
from sdv.hal.config import HalConfig
from sdv.hal.processor import BusStatistics, FrameProcessor, SignalUpdate
from sdv.hal.sources import FrameSource, open_source
from sdv.hal.vehicle import VehicleDefinition, load_vehicle

__all__ = ["BusListener", "Consumer", "Hal", "SourceOpener"]

_LOG = logging.getLogger(__name__)
Consumer = Callable[[list[SignalUpdate]], None]
BusListener = Callable[[str, BusStatus], None]
"""Told every change of a bus's state (and every rescheduled attempt): bus name and its new status."""
SourceOpener = Callable[[], FrameSource]
"""Opens one bus's source, raising what opening it raises."""
_BUS_FAILURES = (HalError, can.CanError, OSError)
"""What a source's receive or an opener may raise when the bus fails (a custom source may not translate)."""
_JOIN_SECONDS = 5.0


class Hal:
    """The hardware abstraction layer of one vehicle.

    Args:
        vehicle: the vehicle model, or a profile path to load.
        sources: ready frame sources by bus name, used for the first opening of their bus; by default each bus
            opens what its profile entry describes.
        openers: functions that open a bus's source, by bus name, used for every opening (also reopening after a
            failure) of a bus without a ready source left; by default the profile entry is opened.
        config: how the buses are run and reopened (default: the profile's ``hal:`` section).
        clock: wall clock for freshness of real-time sources and bus state times (a fake one in tests).
        rng: the source of backoff jitter.
        buses: the buses this HAL runs (a decode worker's share, :mod:`sdv.hal.workers`); by default all.
    """

    def __init__(
        self,
        vehicle: VehicleDefinition | str | Path,
        *,
        sources: Mapping[str, FrameSource] | None = None,
        openers: Mapping[str, SourceOpener] | None = None,
        config: HalConfig | None = None,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        buses: Collection[str] | None = None,
    ) -> None:
        self.vehicle = vehicle if isinstance(vehicle, VehicleDefinition) else load_vehicle(vehicle)
        self.processor = FrameProcessor(self.vehicle)
        unknown = sorted(set(buses or ()) - set(self.processor.bus_names))
        if unknown:
            raise HalError(f"{self.vehicle.file}: no bus {', '.join(unknown)} in the profile")
        self.bus_names: tuple[str, ...] = tuple(
            name for name in self.processor.bus_names if buses is None or name in buses
        )
        """The buses this HAL runs, in profile order."""
        self.config = config or self.vehicle.config.hal
        self._clock = clock
        self._given_sources = dict(sources or {})
        self._openers = dict(openers or {})
        self.sources: dict[str, FrameSource] = {}
        """The open sources by bus name (a bus that is down has none)."""
        self._actuators = {
            path: ActuatorEncoder(self.vehicle, signal)
            for path, signal in self.vehicle.signals.items()
            if signal.actuated_by == "hal"
        }
        self._lock = threading.Lock()  # the sources and bus states: held briefly, never around a callback
        self._delivery = threading.RLock()  # consumer and listener calls, one at a time
        self._bus_locks = {name: threading.Lock() for name in self.processor.bus_names}
        self._write_lock = threading.Lock()  # encoders keep counters between requests
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        rng = rng or random.Random()
        now = clock()
        self._states = {
            name: BusStateMachine(self.config.reconnect, now, rng) for name in self.processor.bus_names
        }
        self._listener: BusListener | None = None
        self._warned_at: dict[str, float] = {}  # when each bus's last outage was logged as a warning
        self._warned: set[str] = set()  # buses whose current outage was logged as a warning

    # --- running -------------------------------------------------------------------------------------------
    def _open_source(self, name: str) -> FrameSource:
        # A ready source serves once: after a failure it is closed, and the bus is reopened from its opener.
        given = self._given_sources.pop(name, None)
        if given is not None:
            return given
        opener = self._openers.get(name)
        if opener is not None:
            return opener()
        bus = self.vehicle.buses[name]
        return open_source(
            bus.config, self.vehicle.directory, tuple(bus.codecs), batch_window_s=self.config.batch_window_s
        )

    def open(self) -> None:
        """Open every bus's source (given ones are used as they are), retrying nothing.

        Raises:
            HalError: when a bus cannot be opened; the buses opened so far are closed again.
        """
        try:
            for name in self.bus_names:
                if name not in self.sources:
                    self._opened(name, self._open_source(name))
        except HalError:
            self.close()
            raise

    def _opened(self, name: str, source: FrameSource) -> BusStatus:
        with self._lock:
            self.sources[name] = source
            return self._states[name].opened(self._clock())

    def start(self, consumer: Consumer, listener: BusListener | None = None) -> None:
        """Open the buses and start one reader thread per bus, delivering update batches to ``consumer``.

        The consumer is called from the reader threads, one batch at a time (never concurrently), for every batch
        of frames (possibly with no updates), for freshness changes and when a bus goes down. ``listener`` is
        told each bus's state once the buses were opened, then every change, serialised with the consumer.

        A bus that cannot be opened for a reason that may pass (:class:`~sdv.errors.BusError`: interface down,
        device missing, recording file missing) starts ``DOWN`` and its thread retries it with backoff.

        Raises:
            HalError: when a bus's configuration can never work (unknown interface, invalid options, unknown
                recording format); the buses opened so far are closed again.
        """
        self._stop.clear()
        self._listener = listener
        for name in self.bus_names:
            if name in self.sources:
                continue
            try:
                self._opened(name, self._open_source(name))
            except _BUS_FAILURES as error:
                if not _may_pass(error):
                    self.close()
                    if isinstance(error, HalError):
                        raise
                    raise HalError(f"bus {name}: cannot be opened: {error}") from error
                with self._lock:
                    status = self._states[name].failed(str(error), self._clock())
                self._log_down(name, status)
        with self._delivery:
            consumer(self.processor.attribute_updates(self._clock()))
            if listener is not None:
                for name, status in self.bus_states().items():
                    listener(name, status)
        for name in self.bus_names:
            index = self.processor.bus_index(name)
            thread = threading.Thread(
                target=self._run, args=(index, name, consumer), name=f"sdv-hal-{name}", daemon=True
            )
            self._threads.append(thread)
            thread.start()

    def _run(self, index: int, name: str, consumer: Consumer) -> None:
        last_check = 0.0
        state = self._states[name]
        bus_lock = self._bus_locks[name]
        while not self._stop.is_set():
            source = self.sources.get(name)
            if source is None:
                if self._stop.wait(state.status().retry_delay or 0.0):
                    return
                self._reopen(name)
                continue
            try:
                frames = source.receive(self.config.receive_timeout_s)
            except EOFError:
                _LOG.info("bus %s: recording finished", name)
                with self._lock:
                    status = state.ended(self._clock())
                self._notify(name, status)
                return
            except _BUS_FAILURES as error:
                self._failed(index, name, source, error, consumer)
                continue
            if frames:
                with self._lock:
                    state.delivered()
            with bus_lock:
                updates = self.processor.process(index, frames) if frames else []
                now = self._clock() if source.realtime else (frames[-1].timestamp if frames else last_check)
                if now - last_check >= self.config.freshness_period_s:
                    last_check = now
                    updates.extend(self.processor.check_freshness(now, index))
            if updates or frames:  # frames without updates still move the counters consumers may show
                with self._delivery:
                    consumer(updates)
            if not source.realtime:
                # A replay as fast as possible never waits for frames, so it would hold the interpreter lock
                # for whole switch intervals; yield it after each batch so that consumers keep up.
                time.sleep(0)

    def _failed(
        self, index: int, name: str, source: FrameSource, error: BaseException, consumer: Consumer
    ) -> None:
        """A bus's source failed: close it, make its signals not available, schedule the reopening."""
        with self._lock:
            self.sources.pop(name, None)
        _close_quietly(source)
        with self._lock:
            now = self._clock()
            status = self._states[name].failed(str(error), now)
        with self._bus_locks[name]:
            updates = self.processor.mark_bus_unavailable(index, now)
        with self._delivery:
            consumer(updates)
            self._notify(name, status)
        self._log_down(name, status)

    def _reopen(self, name: str) -> None:
        try:
            source = self._open_source(name)
        except _BUS_FAILURES as error:
            with self._lock:
                status = self._states[name].failed(str(error), self._clock())
            self._notify(name, status)
            _LOG.debug("bus %s: still %s", name, status.describe(self._clock()))
            return
        if self._stop.is_set():  # stopped while opening: nobody would close it
            _close_quietly(source)
            return
        status = self._opened(name, source)
        self._notify(name, status)
        level = logging.INFO if name in self._warned else logging.DEBUG
        self._warned.discard(name)
        _LOG.log(level, "bus %s is up again (%d reconnects)", name, status.reconnects)

    def _notify(self, name: str, status: BusStatus) -> None:
        if self._listener is not None:
            with self._delivery:
                self._listener(name, status)

    def _log_down(self, name: str, status: BusStatus) -> None:
        """One warning per outage, at most one per ``log_interval_s`` for a bus that keeps failing."""
        now = time.monotonic()
        last = self._warned_at.get(name)
        if last is None or now - last >= self.config.log_interval_s:
            self._warned_at[name] = now
            self._warned.add(name)
            _LOG.warning("bus %s is %s; its signals are not available", name, status.describe(self._clock()))
        else:
            _LOG.debug("bus %s is %s", name, status.describe(self._clock()))

    def bus_states(self) -> dict[str, BusStatus]:
        """The state of every bus this HAL runs, by name."""
        with self._lock:
            return {name: self._states[name].status() for name in self.bus_names}

    def stop(self) -> None:
        """Stop the reader threads and close the buses."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=_JOIN_SECONDS)
        self._threads.clear()
        self.close()

    def close(self) -> None:
        """Close every opened source."""
        with self._lock:
            sources, self.sources = self.sources, {}
        for source in sources.values():
            _close_quietly(source)

    def __enter__(self) -> Hal:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def replay(self, *, freshness: bool = True) -> Iterator[list[SignalUpdate]]:
        """Process every bus's finite source to its end, synchronously, yielding each batch's updates.

        Meant for recordings replayed as fast as possible: freshness is judged on the frames' own time line.
        """
        self.open()
        yield self.processor.attribute_updates(0.0)
        for index, name in enumerate(self.processor.bus_names):
            source = self.sources[name]
            while True:
                try:
                    frames = source.receive(0.0)
                except EOFError:
                    with self._lock:
                        self._states[name].ended(self._clock())
                    break
                if not frames:
                    continue
                updates = self.processor.process(index, frames)
                if freshness:
                    updates.extend(self.processor.check_freshness(frames[-1].timestamp))
                yield updates

    # --- actuation -----------------------------------------------------------------------------------------
    def actuator(self, path: str) -> ActuatorEncoder:
        """The actuator at ``path``.

        Raises:
            UnknownSignalError: when the profile has no signal at ``path``.
            ReadOnlyError: when the signal is a sensor or attribute, or an actuator the HAL only reads (a
                ``source`` and no ``actuator`` request message).
            NoProviderError: when the actuator is actuated by an outside provider (``provided_by: external``).
        """
        actuator = self._actuators.get(path)
        if actuator is not None:
            return actuator
        signal = self.vehicle.signals.get(path)
        if signal is None:
            close = difflib.get_close_matches(path, list(self.vehicle.signals), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise UnknownSignalError(f"unknown signal {path!r}{hint}")
        if signal.read_only_actuator:
            raise ReadOnlyError(
                f"{path} is an actuator the HAL only reads: the profile names no request message ('actuator') "
                "for it, so it takes no requests"
            )
        if signal.kind == "actuator":
            raise NoProviderError(f"{path} is actuated by an outside provider, not by the HAL")
        raise ReadOnlyError(f"{path} is a {signal.kind}; only actuators accept requests")

    def write(self, path: str, value: object) -> can.Message:
        """Request ``value`` for the actuator at ``path`` and send the request frame.

        Returns:
            The frame that was sent.

        Raises:
            UnknownSignalError: unknown path.
            ReadOnlyError: the signal is not an actuator.
            ValueOutOfRangeError: wrong type, outside min/max or not an allowed value.
            BusError: the bus is not open (not yet, or down: the message says why and when it is retried) or the
                frame could not be sent.
        """
        actuator = self.actuator(path)
        with self._lock:
            source = self.sources.get(actuator.bus)
            status = self._states[actuator.bus].status()
        if source is None:
            state = status.describe(self._clock()) if status.state is not BusState.CONNECTING else "not open"
            raise BusError(f"{path}: bus {actuator.bus} is {state}; the request was not sent")
        codec = actuator.codec
        with self._write_lock:
            # The last received payload is read without the bus's decoding lock: the reader replaces it whole,
            # and a request encoded on the payload before or after the frame being decoded is equally right.
            base = self.processor.last_payload(actuator.bus, codec.frame_id, codec.is_extended)
            frame = actuator.encode(value, base, self._clock())
        source.send(frame)
        return frame

    def statistics(self) -> dict[str, BusStatistics]:
        """Frame counters per bus (each bus's taken between two of its batches)."""
        with contextlib.ExitStack() as held:
            for lock in self._bus_locks.values():  # always in the same order
                held.enter_context(lock)
            statistics = self.processor.statistics()
        return {name: statistics[name] for name in self.bus_names}


def _may_pass(error: BaseException) -> bool:
    """Whether a failure to open a bus may pass (retry it) or comes from configuration (fail the start)."""
    if isinstance(error, HalError):
        return isinstance(error, BusError)
    return not isinstance(error, can.CanInterfaceNotImplementedError)


def _close_quietly(source: FrameSource) -> None:
    try:
        source.close()
    except (can.CanError, OSError) as error:
        _LOG.warning("bus %s did not close cleanly: %s", source.name, error)
