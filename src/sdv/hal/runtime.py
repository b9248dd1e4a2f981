"""The HAL orchestrator: runs the vehicle's frame sources and hands batches of signal updates to a consumer.

:class:`Hal` owns one :class:`~sdv.hal.processor.FrameProcessor` and one :class:`~sdv.hal.sources.FrameSource` per
bus. :meth:`Hal.start` runs a reader thread per bus; each batch of frames becomes one call of the consumer with the
updates it produced (batching is the performance lever all the way up to the gRPC stream). :meth:`Hal.replay` is
the synchronous alternative for finite recordings (decoding a log, benchmarks). :meth:`Hal.write` turns an
actuator request into a frame on the bus and returns only once the frame was sent.
"""

from __future__ import annotations

import difflib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import can

from sdv.errors import HalError, ReadOnlyError, UnknownSignalError
from sdv.hal.actuation import Actuator
from sdv.hal.processor import BusStatistics, FrameProcessor, SignalUpdate
from sdv.hal.sources import FrameSource, open_source
from sdv.hal.vehicle import VehicleModel, load_vehicle

__all__ = ["Consumer", "Hal"]

_LOG = logging.getLogger(__name__)
Consumer = Callable[[list[SignalUpdate]], None]
_POLL_SECONDS = 0.05
_FRESHNESS_PERIOD = 0.02


class Hal:
    """The hardware abstraction layer of one vehicle.

    Args:
        vehicle: the vehicle model, or a profile path to load.
        sources: frame sources by bus name; by default each bus opens what its profile entry describes.
        clock: wall clock for freshness of real-time sources (a fake one in tests).
    """

    def __init__(
        self,
        vehicle: VehicleModel | str | Path,
        *,
        sources: Mapping[str, FrameSource] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.vehicle = vehicle if isinstance(vehicle, VehicleModel) else load_vehicle(vehicle)
        self.processor = FrameProcessor(self.vehicle)
        self._clock = clock
        self._given_sources = dict(sources or {})
        self.sources: dict[str, FrameSource] = {}
        self._actuators = {
            path: Actuator(self.vehicle, signal)
            for path, signal in self.vehicle.signals.items()
            if signal.kind == "actuator"
        }
        self._lock = threading.RLock()  # consumers may read statistics from inside a batch
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # --- running -------------------------------------------------------------------------------------------
    def open(self) -> None:
        """Open every bus's source (given ones are used as they are).

        Raises:
            HalError: when a bus cannot be opened; the buses opened so far are closed again.
        """
        try:
            for name, bus in self.vehicle.buses.items():
                if name not in self.sources:
                    self.sources[name] = self._given_sources.get(name) or open_source(
                        bus.config, self.vehicle.directory
                    )
        except HalError:
            self.close()
            raise

    def start(self, consumer: Consumer) -> None:
        """Open the buses and start one reader thread per bus, delivering update batches to ``consumer``.

        The consumer is called from the reader threads, one batch at a time (never concurrently), for every batch
        of frames (possibly with no updates) and for freshness changes.
        """
        self.open()
        self._stop.clear()
        consumer(self.processor.attribute_updates(self._clock()))
        for index, name in enumerate(self.processor.bus_names):
            thread = threading.Thread(
                target=self._run,
                args=(index, self.sources[name], consumer),
                name=f"sdv-hal-{name}",
                daemon=True,
            )
            self._threads.append(thread)
            thread.start()

    def _run(self, index: int, source: FrameSource, consumer: Consumer) -> None:
        last_check = 0.0
        while not self._stop.is_set():
            try:
                frames = source.receive(_POLL_SECONDS)
            except EOFError:
                _LOG.info("bus %s: recording finished", source.name)
                return
            except HalError as error:
                _LOG.error("bus %s stopped: %s", source.name, error)
                return
            with self._lock:
                updates = self.processor.process(index, frames) if frames else []
                now = self._clock() if source.realtime else (frames[-1].timestamp if frames else last_check)
                if now - last_check >= _FRESHNESS_PERIOD:
                    last_check = now
                    updates.extend(self.processor.check_freshness(now))
                if updates or frames:  # frames without updates still move the counters consumers may show
                    consumer(updates)
            if not source.realtime:
                # A replay as fast as possible never waits for frames, so it would hold the interpreter lock
                # for whole switch intervals; yield it after each batch so that consumers keep up.
                time.sleep(0)

    def stop(self) -> None:
        """Stop the reader threads and close the buses."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads.clear()
        self.close()

    def close(self) -> None:
        """Close every opened source."""
        for source in self.sources.values():
            try:
                source.close()
            except (can.CanError, OSError) as error:
                _LOG.warning("bus %s did not close cleanly: %s", source.name, error)
        self.sources.clear()

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
                    break
                if not frames:
                    continue
                updates = self.processor.process(index, frames)
                if freshness:
                    updates.extend(self.processor.check_freshness(frames[-1].timestamp))
                yield updates

    # --- actuation -----------------------------------------------------------------------------------------
    def actuator(self, path: str) -> Actuator:
        """The actuator at ``path``.

        Raises:
            UnknownSignalError: when the profile has no signal at ``path``.
            ReadOnlyError: when the signal is a sensor or attribute.
        """
        actuator = self._actuators.get(path)
        if actuator is not None:
            return actuator
        signal = self.vehicle.signals.get(path)
        if signal is None:
            close = difflib.get_close_matches(path, list(self.vehicle.signals), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise UnknownSignalError(f"unknown signal {path!r}{hint}")
        raise ReadOnlyError(f"{path} is a {signal.kind}; only actuators accept requests")

    def write(self, path: str, value: object) -> can.Message:
        """Request ``value`` for the actuator at ``path`` and send the request frame.

        Returns:
            The frame that was sent.

        Raises:
            UnknownSignalError: unknown path.
            ReadOnlyError: the signal is not an actuator.
            ValueOutOfRangeError: wrong type, outside min/max or not an allowed value.
            HalError: the bus is not open or the frame could not be sent.
        """
        actuator = self.actuator(path)
        source = self.sources.get(actuator.bus)
        if source is None:
            raise HalError(f"{path}: bus {actuator.bus} is not open")
        with self._lock:
            codec = actuator.codec
            base = self.processor.last_payload(actuator.bus, codec.frame_id, codec.is_extended)
            frame = actuator.encode(value, base, self._clock())
        source.send(frame)
        return frame

    def statistics(self) -> dict[str, BusStatistics]:
        """Frame counters per bus."""
        with self._lock:
            return self.processor.statistics()
