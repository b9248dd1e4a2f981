"""Inside a decode worker process (:mod:`sdv.hal.workers`): a plain HAL on the worker's buses, reporting over a pipe.

:func:`worker_main` loads the profile from its file (and the VSS catalogue it was checked against), runs a
:class:`~sdv.hal.runtime.Hal` restricted to its buses (opening the sources, reading, decoding with the same
compiled :class:`~sdv.hal.processor.FrameProcessor`, reopening a failed bus with backoff) and sends over its pipe,
in order: the :class:`~sdv.hal.processor.SignalUpdate` batches of its buses (those of one batch window together,
as one message of plain ``(path, value, timestamp, status value)`` tuples), each change of a bus's state, its buses' frame counters when they changed (at most every 0.1 s),
and the answers to the write requests the parent sends it. It ends when told to stop or when the pipe ends (the
parent is gone).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import signal
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from sdv.errors import HalError, SdvError
from sdv.hal.config import HalConfig
from sdv.hal.processor import BusStatistics, SignalUpdate
from sdv.hal.runtime import Hal
from sdv.hal.vehicle import load_vehicle
from sdv.vss import load_catalogue

__all__ = ["WorkerSpec", "worker_main"]

_STATISTICS_PERIOD_S = 0.1


@dataclasses.dataclass(frozen=True)
class WorkerSpec:
    """What a worker process runs.

    Attributes:
        index: the worker's number (in its log lines and errors).
        profile: the vehicle profile file.
        catalogue: the VSS catalogue files the profile was checked against (none: not checked).
        buses: the buses the worker runs.
        config: how the HAL runs them.
        log_level: the level of the worker's log (on the standard error it shares with its parent).
    """

    index: int
    profile: str
    catalogue: tuple[str, ...]
    buses: tuple[str, ...]
    config: HalConfig
    log_level: int = logging.WARNING


# --- the worker process ---------------------------------------------------------------------------------------
class _Outbox:
    """The worker's end of the pipe: the batches of all its buses within one batch window are sent as one message
    (one publication in the parent instead of one per bus and batch); any other message first flushes them, so
    that the parent sees everything in the order it happened."""

    def __init__(self, connection: Connection, window_s: float) -> None:
        self._connection = connection
        self._window_s = window_s
        self._lock = threading.Lock()
        self._pending: list[SignalUpdate] = []
        self._due = threading.Event()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="sdv-worker-outbox", daemon=True)
        self._thread.start()

    def updates(self, updates: list[SignalUpdate]) -> None:
        if not updates:
            return  # the counters travel on their own
        with self._lock:
            self._pending.extend(updates)
        self._due.set()

    def send(self, message: tuple[Any, ...]) -> None:
        with self._lock:
            self._flush()
            self._send(message)

    def close(self) -> None:
        with self._lock:
            self._flush()
            self._closed = True
        self._due.set()
        self._thread.join()

    def _run(self) -> None:
        while True:
            self._due.wait()
            if self._closed:
                return
            time.sleep(self._window_s)  # let the other buses' batches of this window join
            self._due.clear()
            with self._lock:  # close() may have set the event just before it was cleared
                if self._closed:
                    return
                self._flush()

    def _flush(self) -> None:
        if self._pending:
            # Plain tuples with the status's value: pickling the named tuples and the enum costs 3 times more.
            self._send(
                (
                    "updates",
                    [(path, value, stamp, status.value) for path, value, stamp, status in self._pending],
                )
            )
            self._pending = []

    def _send(self, message: tuple[Any, ...]) -> None:
        with contextlib.suppress(OSError):  # the parent is gone: the request loop ends on its own
            self._connection.send(message)


def worker_main(spec: WorkerSpec, connection: Connection) -> None:
    """Run the buses of ``spec`` and report over ``connection`` until told to stop or the parent is gone."""
    # Ctrl-C reaches the whole process group: the parent stops its workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(
        level=spec.log_level, format=f"%(levelname)s %(name)s (decode worker {spec.index}): %(message)s"
    )
    outbox = _Outbox(connection, spec.config.batch_window_s)
    try:
        catalogue = load_catalogue([Path(file) for file in spec.catalogue]) if spec.catalogue else None
        vehicle = load_vehicle(spec.profile, catalogue=catalogue)
        hal = Hal(vehicle, config=spec.config.model_copy(update={"decode_workers": 0}), buses=spec.buses)
    except SdvError as error:
        outbox.send(("fatal", str(error)))
        return
    attributes = [True]

    def consume(updates: list[SignalUpdate]) -> None:
        if attributes:  # the first batch is the profile's fixed attributes: the parent publishes those
            attributes.clear()
            return
        outbox.updates(updates)

    try:
        hal.start(consume, lambda bus, status: outbox.send(("state", bus, status)))
    except HalError as error:
        outbox.send(("fatal", str(error)))
        return
    outbox.send(("started",))
    try:
        _serve_requests(hal, connection, outbox.send)
    finally:
        hal.stop()
        outbox.send(("statistics", hal.statistics()))
        outbox.close()
        connection.close()


def _serve_requests(hal: Hal, connection: Connection, send: Callable[[tuple[Any, ...]], None]) -> None:
    """Carry out the parent's write requests and report changed counters, until ``stop`` or the pipe ends."""
    published: dict[str, BusStatistics] = {}
    while True:
        try:
            if connection.poll(_STATISTICS_PERIOD_S):
                message = connection.recv()
                if message[0] == "stop":
                    return
                _, request, path, value = message
                try:
                    send(("written", request, hal.write(path, value), None))
                except SdvError as error:
                    send(("written", request, None, (type(error), str(error))))
        except (EOFError, OSError):
            return  # the parent is gone
        statistics = hal.statistics()
        if statistics != published:
            published = statistics
            send(("statistics", statistics))
