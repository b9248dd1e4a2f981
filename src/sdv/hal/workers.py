"""Decode worker processes: a vehicle's buses received and decoded in other processes, published in this one.

One Python process runs on one core. :class:`PooledHal` is a :class:`~sdv.hal.runtime.Hal` whose buses run in
worker processes (``multiprocessing``, spawn context), so that receiving and decoding a whole vehicle's traffic
uses more cores while this process serves the clients. Bus ``i`` of the profile goes to worker ``i mod N``.

Each worker (:mod:`sdv.hal.worker_process`) runs a plain :class:`~sdv.hal.runtime.Hal` on its buses (opening
the sources, reading, decoding with the same compiled :class:`~sdv.hal.processor.FrameProcessor`, reopening a
failed bus with backoff) and sends over its pipe its update batches, bus state changes and frame counters, in
order. One thread per worker here receives them and hands them to the consumer and the listener exactly as the
reader threads of a single-process HAL do: the same updates, bus state signals and counters reach the broker.

Actuation: a request travels to the worker that owns the bus, which encodes it on the last payload it received
of the request message (only the worker sees the frames) and sends it on the bus handle it already holds (a
python-can ``virtual`` bus exists only within one process, so a second handle here would not reach it). The
reply is the frame or the error, raised here. The path is checked here first, so a request for an unknown
signal or a sensor never crosses the pipe.

A worker that dies (its pipe ends) is noticed by its thread: its buses go ``DOWN`` with the exit code as the
error, their signals ``NOT_AVAILABLE``, and the worker is started again after the buses' backoff
(:class:`~sdv.hal.config.BusReopenPolicy`); its counters go on from where they were and ``Reconnects`` counts the
restart. :meth:`PooledHal.stop` asks each worker to stop, waits a bounded time, then terminates and finally kills
it; a worker whose parent died sees its pipe end and stops on its own, so no process is left behind.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import logging
import multiprocessing
import threading
import time
from collections.abc import Callable, Mapping
from multiprocessing.connection import Connection
from pathlib import Path

import can

from sdv.errors import BusError, HalError, SdvError
from sdv.hal.bus_state import BusState, BusStatus
from sdv.hal.config import HalConfig, decode_worker_count
from sdv.hal.processor import BusStatistics, SignalUpdate, Status
from sdv.hal.runtime import BusListener, Consumer, Hal
from sdv.hal.vehicle import VehicleDefinition
from sdv.hal.worker_process import WorkerSpec, worker_main

__all__ = ["PooledHal", "make_hal"]

_LOG = logging.getLogger(__name__)
_STATUSES = {status.value: status for status in Status}
_START_TIMEOUT_S = 120.0  # a loaded machine takes long to start an interpreter and import the HAL
_WRITE_TIMEOUT_S = 5.0
_STOP_WAIT_S = 5.0
_KILL_WAIT_S = 2.0


def make_hal(vehicle: VehicleDefinition, config: HalConfig | None = None) -> Hal:
    """The vehicle's HAL: a :class:`PooledHal` when ``config.decode_workers`` asks for workers, else a plain one.

    Without ``config``, the profile's ``hal:`` section counts.
    """
    config = config or vehicle.config.hal
    if decode_worker_count(config.decode_workers, len(vehicle.buses)) > 0:
        return PooledHal(vehicle, config=config)
    return Hal(vehicle, config=config)


class _Reply:
    """A write request waiting for its worker's answer."""

    def __init__(self, worker: _Worker) -> None:
        self.worker = worker
        self.done = threading.Event()
        self.frame: can.Message | None = None
        self.error: SdvError | None = None


class _Worker:
    """One worker process as its parent sees it (replaced whole by a restart, except the spec)."""

    def __init__(self, spec: WorkerSpec) -> None:
        self.spec = spec
        self.process: multiprocessing.process.BaseProcess | None = None
        self.connection: Connection | None = None
        self.thread: threading.Thread | None = None
        self.send_lock = threading.Lock()
        self.started = threading.Event()
        self.fatal: str | None = None


class PooledHal(Hal):
    """A HAL whose buses are received and decoded by worker processes (see the module docstring).

    :meth:`start`, :meth:`stop`, :meth:`write`, :meth:`bus_states` and :meth:`statistics` go through the workers;
    :meth:`~sdv.hal.runtime.Hal.open` and :meth:`~sdv.hal.runtime.Hal.replay`, for finite runs, still run in
    this process as a plain HAL's do.

    Args:
        vehicle: the vehicle model (read from a profile file, which each worker loads again), or a profile path.
        config: how the buses are run; ``decode_workers`` says how many workers (at least one here).
        clock: wall clock of the bus state times.
    """

    def __init__(
        self,
        vehicle: VehicleDefinition | str | Path,
        *,
        config: HalConfig | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(vehicle, config=config, clock=clock)
        profile = Path(self.vehicle.file)
        if not profile.is_file():
            raise HalError(
                f"{self.vehicle.file}: decode workers load the profile from its file; there is none"
            )
        count = max(1, decode_worker_count(self.config.decode_workers, len(self.bus_names)))
        catalogue = self.vehicle.catalogue.files if self.vehicle.catalogue is not None else ()
        level = logging.getLogger().getEffectiveLevel()
        self._workers = [
            _Worker(
                WorkerSpec(
                    index, str(profile.resolve()), catalogue, self.bus_names[index::count], self.config, level
                )
            )
            for index in range(count)
        ]
        self._worker_of = {bus: worker for worker in self._workers for bus in worker.spec.buses}
        self._remote: dict[str, BusStatus] = {}  # the states the workers reported, while they run
        self._current: dict[str, BusStatistics] = {}  # the counters of the running workers
        self._ended = {bus: BusStatistics() for bus in self.bus_names}  # those of the workers that died
        self._consumer: Consumer | None = None
        self._spawning = threading.Lock()
        self._requests = itertools.count()
        self._pending: dict[int, _Reply] = {}
        self._running = False  # started: a worker failing is retried, no longer a failure of the start

    @property
    def worker_pids(self) -> dict[int, int | None]:
        """The process id of each worker (None before it started), by worker number."""
        return {w.spec.index: w.process.pid if w.process is not None else None for w in self._workers}

    def worker_buses(self) -> dict[int, tuple[str, ...]]:
        """The buses of each worker, by worker number."""
        return {w.spec.index: w.spec.buses for w in self._workers}

    def start(self, consumer: Consumer, listener: BusListener | None = None) -> None:
        """Start the workers (see :meth:`Hal.start`); returns once each opened its buses.

        Raises:
            HalError: when a bus's configuration can never work (as a worker reported it), or a worker did not
                start within two minutes; the workers started are stopped again.
        """
        self._stop.clear()
        self._running = False
        self._consumer, self._listener = consumer, listener
        with self._delivery:
            consumer(self.processor.attribute_updates(self._clock()))
            if listener is not None:
                for name, status in self.bus_states().items():
                    listener(name, status)
        for worker in self._workers:
            self._spawn(worker)
        deadline = time.monotonic() + _START_TIMEOUT_S
        for worker in self._workers:
            if not worker.started.wait(max(0.0, deadline - time.monotonic())) or worker.fatal is not None:
                self.stop()
                raise HalError(worker.fatal or f"decode worker {worker.spec.index} did not start")
        self._running = True  # from now on a worker that cannot start again is retried like a bus

    def _spawn(self, worker: _Worker) -> None:
        context = multiprocessing.get_context("spawn")
        with self._spawning:
            if self._stop.is_set():
                return
            ours, theirs = context.Pipe()
            process = context.Process(
                target=worker_main,
                args=(worker.spec, theirs),
                name=f"sdv-decode-{worker.spec.index}",
                daemon=True,
            )
            worker.started.clear()
            process.start()
            theirs.close()  # the worker holds the only other end: its death ends the pipe
            worker.process, worker.connection = process, ours
            worker.thread = threading.Thread(
                target=self._receive,
                args=(worker, ours, process),
                name=f"sdv-hal-worker-{worker.spec.index}",
                daemon=True,
            )
            worker.thread.start()

    def _receive(
        self, worker: _Worker, connection: Connection, process: multiprocessing.process.BaseProcess
    ) -> None:
        consumer = self._consumer
        assert consumer is not None
        new, status = tuple.__new__, _STATUSES  # the hot path: named tuples without their keyword handling
        while True:
            try:
                message = connection.recv()
            except (EOFError, OSError):
                break
            kind = message[0]
            if kind == "updates":
                batch = [
                    new(SignalUpdate, (path, value, stamp, status[code]))
                    for path, value, stamp, code in message[1]
                ]
                with self._delivery:
                    consumer(batch)
            elif kind == "state":
                self._reported(message[1], message[2])
            elif kind == "statistics":
                self._counted(message[1])
            elif kind == "written":
                self._answered(message[1], message[2], message[3])
            elif kind == "started":
                worker.started.set()
            elif kind == "fatal":
                worker.fatal = message[1]
                worker.started.set()
        process.join(_KILL_WAIT_S)
        connection.close()
        worker.connection = None
        worker.started.set()  # a worker that died while starting does not hold up the start: its buses are down
        if not self._stop.is_set() and (worker.fatal is None or self._running):
            self._died(worker, process, consumer)

    def _reported(self, bus: str, status: BusStatus) -> None:
        with self._lock:
            machine = self._states[bus]
            if machine.state is not BusState.UP:  # the worker (again) runs the bus: its restarts count
                machine.opened(self._clock())
            ours = machine.status()  # the worker's restarts and the reason of the last one
            status = dataclasses.replace(
                status, reconnects=status.reconnects + ours.reconnects, error=status.error or ours.error
            )
            self._remote[bus] = status
        self._notify(bus, status)

    def _counted(self, statistics: Mapping[str, BusStatistics]) -> None:
        with self._lock:
            for bus, counters in statistics.items():
                before = self._current.get(bus)
                if before is None or counters.frames > before.frames:
                    self._states[bus].delivered()  # frames flow: the next death waits the initial delay again
                self._current[bus] = counters

    def _answered(
        self, request: int, frame: can.Message | None, error: tuple[type[Exception], str] | None
    ) -> None:
        reply = self._pending.get(request)
        if reply is None:
            return  # the request timed out
        reply.frame = frame
        if error is not None:
            kind, message = error
            reply.error = kind(message) if issubclass(kind, SdvError) else BusError(message)
        reply.done.set()

    def _died(
        self, worker: _Worker, process: multiprocessing.process.BaseProcess, consumer: Consumer
    ) -> None:
        """A worker ended unasked: its buses go down, their signals not available, and it restarts after the
        backoff."""
        reason = f"decode worker {worker.spec.index} (pid {process.pid}) exited with code {process.exitcode}"
        if worker.fatal is not None:
            reason = f"{reason}: {worker.fatal}"
            worker.fatal = None
        now = self._clock()
        statuses: dict[str, BusStatus] = {}
        with self._lock:
            for bus in worker.spec.buses:
                self._remote.pop(bus, None)
                last = self._current.pop(bus, None)
                if last is not None:
                    self._ended[bus] = _added(self._ended[bus], last)
                statuses[bus] = self._states[bus].failed(reason, now)
        self._fail_pending(worker, reason)
        updates = [
            update
            for bus in worker.spec.buses
            for update in self.processor.mark_bus_unavailable(self.processor.bus_index(bus), now)
        ]
        with self._delivery:
            consumer(updates)
            for bus, status in statuses.items():
                self._notify(bus, status)
        delay = min(status.retry_delay or 0.0 for status in statuses.values())
        _LOG.warning(
            "%s; buses %s are not available, restarting it in %.1f s", reason, ", ".join(statuses), delay
        )
        if not self._stop.wait(delay):
            self._spawn(worker)

    def _fail_pending(self, worker: _Worker | None, reason: str) -> None:
        for reply in list(self._pending.values()):
            if worker is None or reply.worker is worker:
                reply.error = BusError(f"the request was not answered: {reason}")
                reply.done.set()

    def bus_states(self) -> dict[str, BusStatus]:
        """The state of every bus: as its worker reported it, or down while its worker restarts."""
        with self._lock:
            return {name: self._remote.get(name) or self._states[name].status() for name in self.bus_names}

    def statistics(self) -> dict[str, BusStatistics]:
        """Frame counters per bus, as the workers last reported them (counted on across restarts)."""
        with self._lock:
            return {
                name: _added(self._ended[name], self._current.get(name, BusStatistics()))
                for name in self.bus_names
            }

    def write(self, path: str, value: object) -> can.Message:
        """Request ``value`` for the actuator at ``path``: its bus's worker encodes and sends the frame.

        Raises:
            UnknownSignalError: unknown path.
            ReadOnlyError: the signal is not an actuator.
            ValueOutOfRangeError: wrong type, outside min/max or not an allowed value.
            BusError: the bus is not open, its worker is restarting or did not answer within 5 s, or the frame
                could not be sent.
        """
        actuator = self.actuator(path)
        worker = self._worker_of[actuator.bus]
        request = next(self._requests)
        reply = _Reply(worker)
        self._pending[request] = reply
        try:
            connection = worker.connection
            try:
                if connection is None:
                    raise OSError("not running")
                with worker.send_lock:
                    connection.send(("write", request, path, value))
            except OSError:
                status = self.bus_states()[actuator.bus].describe(self._clock())
                raise BusError(f"{path}: bus {actuator.bus} is {status}; the request was not sent") from None
            if not reply.done.wait(_WRITE_TIMEOUT_S):
                raise BusError(
                    f"{path}: decode worker {worker.spec.index} did not answer within {_WRITE_TIMEOUT_S:g} s"
                )
        finally:
            self._pending.pop(request, None)
        if reply.error is not None:
            raise reply.error
        assert reply.frame is not None
        return reply.frame

    def stop(self) -> None:
        """Stop the workers: asked first, terminated after 5 s, killed after 2 more."""
        with self._spawning:
            self._stop.set()
        for worker in self._workers:
            if worker.connection is not None:
                with worker.send_lock, contextlib.suppress(OSError):
                    worker.connection.send(("stop",))
        deadline = time.monotonic() + _STOP_WAIT_S
        for worker in self._workers:
            process = worker.process
            if process is None:
                continue
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                _LOG.warning("decode worker %d did not stop; terminating it", worker.spec.index)
                process.terminate()
                process.join(_KILL_WAIT_S)
            if process.is_alive():
                process.kill()
                process.join()
        for worker in self._workers:
            if worker.thread is not None and worker.thread is not threading.current_thread():
                worker.thread.join(_KILL_WAIT_S)
        self._fail_pending(None, "the HAL stopped")
        self.close()


def _added(first: BusStatistics, second: BusStatistics) -> BusStatistics:
    return BusStatistics(first.frames + second.frames, first.decoded + second.decoded, first.bad + second.bad)
