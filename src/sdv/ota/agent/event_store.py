"""The event log's files in the agent's state directory: append with fsync, rotation, a torn last entry dropped.

Files (the format is :mod:`sdv.ota.agent.event_log`)::

    events.log      the current file; entries are appended, each written and fsync-ed before it counts
    events.1.log    the previous file after a rotation (the one before it is dropped)

Invariants:

* :meth:`EventJournal.append` returns only once the entry's bytes (and, for a new file, the directory entry) are
  on disk; callers append *before* the change the entry records is persisted or acknowledged;
* the log is bounded: when an entry would make ``events.log`` larger than ``max_bytes`` it becomes
  ``events.1.log`` and a new ``events.log`` starts with a checkpoint entry (state and last result) that follows
  the previous file's last entry, so the chain carries over and at most about ``2 × max_bytes`` are kept;
* opening drops a torn last entry (a write power loss cut short; it was never acknowledged) by truncating the
  file to its last newline. Damage of any other kind is left in place, logged, and reported by
  :func:`check_state_directory` (``sdv ota log verify``) until the files are replaced: the agent keeps appending
  after it.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from sdv.ota.agent.config import EventLogConfig
from sdv.ota.agent.event_log import (
    GENESIS,
    EventEntry,
    EventKind,
    LogCheck,
    LogHead,
    check_log,
    make_entry,
    outcome_of,
)
from sdv.ota.agent.state import AgentState
from sdv.ota.bundle.canonical import format_time
from sdv.ota.bundle.store import fsync_directory
from sdv.ota.errors import EventLogError, OtaError

__all__ = ["LOG_FILE", "ROTATED_FILE", "EventJournal", "check_state_directory", "read_log"]

_logger = logging.getLogger(__name__)
LOG_FILE = "events.log"
ROTATED_FILE = "events.1.log"


def read_log(state_dir: Path) -> list[tuple[str, bytes]]:
    """The log files of a state directory, oldest first, as (name, content).

    Raises:
        OtaError: a file exists but cannot be read.
    """
    files = []
    for name in (ROTATED_FILE, LOG_FILE):
        path = state_dir / name
        try:
            files.append((name, path.read_bytes()))
        except FileNotFoundError:
            continue
        except OSError as error:
            raise OtaError(f"{path}: cannot read the event log: {error.strerror}") from error
    return files


def check_state_directory(state_dir: Path) -> LogCheck:
    """Check the event log of a state directory (``sdv ota log verify``).

    Raises:
        EventLogError: at the first bad entry.
        OtaError: there is no event log, or it cannot be read.
    """
    files = read_log(state_dir)
    if not files:
        raise OtaError(f"{state_dir}: no event log ({LOG_FILE})")
    return check_log(files)


def _salvage(files: list[tuple[str, bytes]]) -> tuple[LogHead | None, EventEntry | None]:
    """The newest readable entry of a damaged log, to continue the chain after it."""
    for _, data in reversed(files):
        for line in reversed(data.split(b"\n")):
            try:
                entry = EventEntry.model_validate_json(line)
            except ValidationError:
                continue
            return LogHead(entry.seq, entry.hash), None
    return None, None


class EventJournal:
    """The event log of one state directory, open for appending (one agent process holds it).

    Args:
        state_dir: the agent's state directory.
        config: the log's bounds.
        clock: the time written into entries.
    """

    def __init__(self, state_dir: Path, config: EventLogConfig, clock: Callable[[], datetime]) -> None:
        self._dir = state_dir
        self._config = config
        self._clock = clock
        self._lock = threading.Lock()
        self._local = threading.local()
        self.dropped_torn = 0
        self.damage: str | None = None
        files = read_log(state_dir)
        try:
            found = check_log(files)
        except EventLogError as error:
            self.damage = str(error)
            _logger.warning("the event log is damaged (%s); appending after it", error)
            self._head, self._last_result = _salvage(files)
            self._end_with_newline()
        else:
            self._head, self._last_result = found.head, found.last_result
            if found.torn:
                self._drop_torn(found.torn)
        self._path = state_dir / LOG_FILE
        self._size = self._path.stat().st_size if self._path.exists() else 0

    @property
    def head(self) -> LogHead | None:
        """The newest entry."""
        return self._head

    @property
    def last_result(self) -> EventEntry | None:
        """The newest entry recording how an update ended (a result or a checkpoint)."""
        return self._last_result

    def appended_here(self) -> int:
        """Entries this thread appended so far (tells a caller whether a step it ran recorded anything)."""
        count: int = getattr(self._local, "count", 0)
        return count

    def _drop_torn(self, length: int) -> None:
        path = self._dir / LOG_FILE
        with path.open("r+b") as handle:
            handle.truncate(path.stat().st_size - length)
            os.fsync(handle.fileno())
        self.dropped_torn = length
        _logger.warning(
            "%s: dropped a torn last entry of %d bytes (power was lost while writing it)", path, length
        )

    def _end_with_newline(self) -> None:
        """Keep a damaged file's last bytes as a line of their own, so the next entry starts a line."""
        path = self._dir / LOG_FILE
        if path.exists() and path.stat().st_size and not path.read_bytes().endswith(b"\n"):
            self._write(b"\n")

    def _write(self, data: bytes) -> None:
        path = self._dir / LOG_FILE
        created = not path.exists()
        descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            written = os.write(descriptor, data)
            if written != len(data):  # pragma: no cover - regular files take a whole small write
                raise OtaError(f"{path}: wrote {written} of {len(data)} bytes of an event entry")
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        if created:
            fsync_directory(self._dir)
        self._size += len(data)

    def _rotate(self) -> None:
        os.replace(self._dir / LOG_FILE, self._dir / ROTATED_FILE)
        fsync_directory(self._dir)
        self._size = 0
        _logger.info("event log rotated at %d bytes", self._config.max_bytes)

    def append(self, event: EventKind, state: AgentState, **fields: Any) -> EventEntry:
        """Append one entry and fsync it; returns it once it is on disk.

        Args:
            event: what the entry records.
            state: the agent's state after the event.
            fields: the other fields of :func:`sdv.ota.agent.event_log.make_entry`.
        """
        with self._lock:
            entry = self._entry(event, state, **fields)
            line = entry.line()
            if self._size and self._size + len(line) > self._config.max_bytes:
                self._rotate()
            if not self._size and (self._dir / ROTATED_FILE).exists() and event is not EventKind.CHECKPOINT:
                self._checkpoint(state)
                entry = self._entry(event, state, **fields)
                line = entry.line()
            self._commit(entry, line)
            return entry

    def _entry(self, event: EventKind, state: AgentState, **fields: Any) -> EventEntry:
        head = self._head
        return make_entry(
            seq=head.seq + 1 if head is not None else 0,
            prev=head.hash if head is not None else GENESIS,
            time=self._clock(),
            event=event,
            state=state,
            **fields,
        )

    def _checkpoint(self, state: AgentState) -> None:
        last = self._last_result
        fields: dict[str, Any] = {}
        if last is not None:
            origin = (
                last.data
                if last.event is EventKind.CHECKPOINT
                else {"result_seq": last.seq, "result_time": format_time(last.time)}
            )
            fields = {"outcome": last.outcome, "bundle": last.bundle, "reason": last.reason, "data": origin}
        entry = self._entry(EventKind.CHECKPOINT, state, **fields)
        self._commit(entry, entry.line())

    def _commit(self, entry: EventEntry, line: bytes) -> None:
        self._write(line)
        self._head = LogHead(entry.seq, entry.hash)
        if outcome_of(entry) is not None:
            self._last_result = entry
        self._local.count = self.appended_here() + 1
