"""Frame sources: where a bus's frames come from and where its outgoing frames go.

:class:`FrameSource` is the edge; :class:`BusSource` wraps any python-can bus (``socketcan`` on a vehicle,
``virtual`` as the in-memory twin, ``pcan``, ``kvaser``, ...), :class:`RecordingSource` replays a python-can
recording (candump ``.log``, ``.asc``, ``.blf``, ``.csv``, ``.trc``, each optionally ``.gz``; read by
:func:`sdv.hal.recordings.read_recording`) in real time or as fast as possible. Sources hand out frames in batches: batching is what keeps the per-frame cost low further up.

Failures are reported in two kinds: :class:`~sdv.errors.BusError` for what may pass (the interface is down, the
device unplugged, the recording missing or unreadable; the HAL reopens the bus with backoff), plain
:class:`~sdv.errors.HalError` for configuration that can never work (an unknown python-can interface, options
the interface does not take, a recording format python-can does not know).
"""

from __future__ import annotations

import itertools
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any

import can

from sdv.errors import BusError, HalError
from sdv.hal.profile import BusConfig
from sdv.hal.recordings import read_recording

__all__ = ["BusSource", "FrameSource", "RecordingSource", "kernel_filters", "open_source", "read_recording"]

_LOG = logging.getLogger(__name__)
DEFAULT_BATCH = 512
MAX_KERNEL_FILTERS = 512
"""The most receive filters a SocketCAN raw socket takes (the kernel's ``CAN_RAW_FILTER_MAX``)."""
_STANDARD_MASK = 0x7FF
_EXTENDED_MASK = 0x1FFFFFFF
_IFF_UP = 0x1


class FrameSource(ABC):
    """One bus's frames in, its outgoing frames out."""

    name: str
    realtime: bool = True
    """Whether frame timestamps follow the wall clock (freshness is then judged against it)."""

    @abstractmethod
    def receive(self, timeout: float) -> list[can.Message]:
        """The frames that arrived, waiting up to ``timeout`` seconds for the first (possibly none).

        Raises:
            EOFError: when a finite source (a recording played once) has no more frames.
        """

    @abstractmethod
    def send(self, frame: can.Message) -> None:
        """Transmit a frame.

        Raises:
            HalError: when the frame could not be sent.
        """

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the underlying bus or file."""


class BusSource(FrameSource):
    """A python-can bus."""

    def __init__(
        self, name: str, bus: can.BusABC, *, batch_size: int = DEFAULT_BATCH, batch_window_s: float = 0.0
    ) -> None:
        self.name = name
        self.bus = bus
        self.batch_size = batch_size
        self.batch_window_s = batch_window_s

    @classmethod
    def open(
        cls, config: BusConfig, receive_ids: Collection[tuple[int, bool]] = (), *, batch_window_s: float = 0.0
    ) -> BusSource:
        """Open the python-can interface a bus configuration names.

        Args:
            config: the bus.
            receive_ids: the (arbitration id, extended) pairs the bus's DBC files declare. On ``socketcan`` they
                become the socket's kernel receive filters (unless the profile's ``options`` set
                ``can_filters``), so that frames of other ids never wake the reader.
            batch_window_s: how long :meth:`receive` keeps collecting after the first frame.

        Raises:
            BusError: when the interface cannot be opened now (device missing or down, no permission).
            HalError: when it can never be (unknown interface or driver, options the interface does not take).
        """
        options: dict[str, Any] = dict(config.options)
        options.setdefault("fd", config.fd)
        where = f"bus {config.name}: cannot open python-can interface {config.interface!r} channel {config.channel!r}"
        if config.interface == "socketcan":
            _require_up(str(config.channel), where)
            filters = kernel_filters(receive_ids)
            if filters is not None:
                options.setdefault("can_filters", filters)
        try:
            bus = can.Bus(interface=config.interface, channel=config.channel, **options)
        except (
            can.CanInterfaceNotImplementedError,  # a CanError, but retrying cannot install a driver
            ValueError,
            TypeError,
            ImportError,
            NotImplementedError,
        ) as error:
            raise HalError(f"{where}: {error}") from error
        except (can.CanError, OSError) as error:
            raise BusError(f"{where}: {error}") from error
        return cls(config.name, bus, batch_window_s=batch_window_s)

    def receive(self, timeout: float) -> list[can.Message]:
        """The frames that arrived (see :meth:`FrameSource.receive`).

        Raises:
            BusError: when python-can reports a failure of the bus (interface down, device gone).
        """
        try:
            first = self.bus.recv(timeout)
            if first is None:
                return []
            frames = [first]
            end = time.monotonic() + self.batch_window_s
            while len(frames) < self.batch_size:
                # Within the window wait for more; after it take only what already arrived.
                frame = self.bus.recv(max(0.0, end - time.monotonic()))
                if frame is None:
                    break
                frames.append(frame)
        except (can.CanError, OSError) as error:
            raise BusError(f"bus {self.name}: cannot receive: {error}") from error
        return frames

    def send(self, frame: can.Message) -> None:
        try:
            self.bus.send(frame)
        except (can.CanError, OSError) as error:
            raise BusError(f"bus {self.name}: frame 0x{frame.arbitration_id:X} not sent: {error}") from error

    def close(self) -> None:
        self.bus.shutdown()


def kernel_filters(receive_ids: Collection[tuple[int, bool]]) -> list[dict[str, Any]] | None:
    """python-can ``can_filters`` passing exactly the given (arbitration id, extended) pairs.

    None (no filter: every frame) when there are none or more than the kernel takes on one socket.
    """
    if not receive_ids or len(receive_ids) > MAX_KERNEL_FILTERS:
        return None
    return [
        {
            "can_id": frame_id,
            "can_mask": _EXTENDED_MASK if extended else _STANDARD_MASK,
            "extended": extended,
        }
        for frame_id, extended in sorted(receive_ids)
    ]


def _require_up(channel: str, where: str) -> None:
    """Refuse a SocketCAN interface that is down: the kernel binds to it, but it delivers nothing.

    Raises:
        BusError: the interface is down (``ip link set CHANNEL up`` brings it back).
    """
    flags = Path("/sys/class/net") / channel / "flags"
    try:
        up = int(flags.read_text().strip(), 16) & _IFF_UP
    except (OSError, ValueError):
        return  # no sysfs here, or no such interface: python-can says which
    if not up:
        raise BusError(f"{where}: interface {channel} is down")


class RecordingSource(FrameSource):
    """Replays a recording as a bus.

    In real time, frames are released at their recorded pace and restamped onto the wall clock, so that ages and
    freshness behave as on a live bus. As fast as possible, frames keep their recorded timestamps. When looping,
    each pass continues the time line of the previous one. Frames sent to this bus go to a python-can virtual
    bus (channel ``tx_channel``) where an application or a test can observe them.

    Raises:
        BusError: when the recording file does not exist (it is opened lazily, on the first receive).
    """

    def __init__(
        self,
        name: str,
        path: Path,
        *,
        realtime: bool = True,
        loop: bool = False,
        channel: str | None = None,
        tx_channel: str | None = None,
        batch_size: int = DEFAULT_BATCH,
        batch_window_s: float = 0.0,
        clock: Any = time.time,
    ) -> None:
        try:
            found = path.is_file()
        except OSError as error:  # a name too long, a loop of links
            raise BusError(
                f"bus {name}: recording {path} cannot be accessed: {error.strerror or error}"
            ) from error
        if not found:
            raise BusError(f"bus {name}: recording {path} not found")
        self.name = name
        self.path = path
        self.realtime = realtime
        self.loop = loop
        self.channel = channel
        self.batch_size = batch_size
        self.batch_window_s = batch_window_s
        self._clock = clock
        self._frames = self._timeline()
        self._ahead: can.Message | None = None
        self._tx = can.Bus(
            interface="virtual", channel=tx_channel or f"sdv.{name}", receive_own_messages=False
        )
        self._start_wall: float | None = None
        self._start_recorded: float | None = None
        self._paused_at: float | None = None

    def pause(self) -> None:
        """Stop releasing frames (the bus goes silent, as when a sender stops) until :meth:`resume`."""
        if self._paused_at is None:
            self._paused_at = self._clock()

    def resume(self) -> None:
        """Release frames again; in real time the recording continues where it stopped, at its pace."""
        if self._paused_at is not None:
            if self._start_wall is not None:
                self._start_wall += self._clock() - self._paused_at
            self._paused_at = None

    @property
    def paused(self) -> bool:
        """Whether :meth:`pause` holds the frames back."""
        return self._paused_at is not None

    def _timeline(self) -> Iterator[can.Message]:
        shift = 0.0
        for _ in itertools.count() if self.loop else range(1):
            first = last = None
            for frame in read_recording(self.path, self.channel):
                if first is None:
                    first = frame.timestamp
                last = frame.timestamp
                frame.timestamp += shift
                yield frame
            if first is None or last is None:
                return  # an empty recording does not loop forever
            shift += last - first + 0.001

    def receive(self, timeout: float) -> list[can.Message]:
        """The frames due (see :meth:`FrameSource.receive`); in real time, those due within the batch window
        from the first frame on, handed over together once the last of them is due: one wait per batch, not
        one per frame, as a driver hands over what its buffer collected."""
        if self._paused_at is not None:
            time.sleep(timeout)
            return []
        frames: list[can.Message] = []
        realtime = self.realtime
        batch_end = last_due = 0.0
        while len(frames) < self.batch_size:
            frame = self._ahead or next(self._frames, None)
            self._ahead = None
            if frame is None:
                if frames:
                    break
                raise EOFError(f"end of recording {self.path}")
            if realtime:
                if self._start_wall is None or self._start_recorded is None:
                    self._start_wall, self._start_recorded = self._clock(), frame.timestamp
                due = self._start_wall + (frame.timestamp - self._start_recorded)
                if not frames:
                    now = self._clock()
                    if due > now + timeout:
                        self._ahead = frame
                        time.sleep(timeout)
                        return frames
                    batch_end = max(due, now) + self.batch_window_s
                elif due > batch_end:
                    self._ahead = frame
                    break
                frame.timestamp = last_due = due
            frames.append(frame)
        if realtime and frames:
            wait = last_due - self._clock()
            if wait > 0:
                time.sleep(wait)
        return frames

    def send(self, frame: can.Message) -> None:
        self._tx.send(frame)

    def close(self) -> None:
        self._tx.shutdown()


def open_source(
    config: BusConfig,
    directory: Path,
    receive_ids: Collection[tuple[int, bool]] = (),
    *,
    batch_window_s: float = 0.0,
) -> FrameSource:
    """The source a bus configuration describes; relative recording paths resolve against ``directory``.

    ``receive_ids`` are the bus's DBC message ids (see :meth:`BusSource.open`); ``batch_window_s`` how long a
    live bus or a recording in real time keeps collecting frames after the first of a batch.

    Raises:
        BusError: when the bus cannot be opened now (see :meth:`BusSource.open`, :class:`RecordingSource`).
        HalError: when its configuration can never work.
    """
    if config.recording is not None:
        recording = config.recording
        path = recording.file if recording.file.is_absolute() else directory / recording.file
        return RecordingSource(
            config.name,
            path,
            realtime=recording.realtime,
            loop=recording.loop,
            channel=recording.channel,
            tx_channel=str(config.channel) if config.channel is not None else None,
            batch_window_s=batch_window_s,
        )
    return BusSource.open(config, receive_ids, batch_window_s=batch_window_s)
