"""Reading python-can recordings with bounds, and every failure of a reader as the project's error.

:func:`read_recording` picks the python-can reader by the file's suffix (candump ``.log``, ``.asc``, ``.blf``,
``.csv``, ``.trc``, each optionally ``.gz``) and hands it the file through a thin wrapper that enforces the
bounds below and knows where the reader is: the line of a text format, the byte offset of a BLF file. Whatever a
reader raises on bad content (``ValueError``, ``IndexError``, ``struct.error``, ``BLFParseError``, a gzip or
zlib error...) becomes a :class:`~sdv.errors.BusError` naming the file, the line or offset, and the format
that was expected. candump text is read by the project's own parser (:func:`_log_frames` for ``-L`` lines: the
frames python-can's ``CanutilsLogReader`` returns, at about twice its speed; ``tests/hal/
test_recording_equality.py`` compares every format with python-can's readers).

Bounds, checked before the reader gets the data:

* a text line holds at most :data:`MAX_LINE_CHARS` characters (a line without an end, from a compressed file,
  would otherwise be read whole into memory), and is UTF-8;
* a BLF file is read :data:`MAX_BLF_READ` bytes at a time at most: a BLF header or object claiming more (up to
  4 GiB in its size field) is refused;
* a BLF container's inflated data, with what an object continued from earlier containers left pending, is at
  most :data:`MAX_BLF_PENDING` bytes (python-can would otherwise keep joining containers to an object that
  claims gigabytes).
"""

from __future__ import annotations

import gzip
import re
import sys
import zlib
from collections.abc import Generator, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Final, cast

import can
from can.io import blf as _blf

from sdv.errors import BusError, HalError

__all__ = [
    "MAX_BLF_PENDING",
    "MAX_BLF_READ",
    "MAX_LINE_CHARS",
    "RECORDING_FORMATS",
    "STANDARD_INPUT",
    "read_recording",
]

MAX_LINE_CHARS: Final = 65_536
# Vector tools and python-can write BLF containers of at most 128 KiB; twice that is the most one read returns.
MAX_BLF_READ: Final = 256 * 1024
# What one container inflates to, with what an object continued from earlier containers left pending.
MAX_BLF_PENDING: Final = 4 * 1024 * 1024


class _Bounded(Exception):
    """A bound the wrapper refused; the message says which."""


class _BoundedBLFReader(can.BLFReader):
    """python-can's BLF reader with bounds on what a container inflates to and on the data it holds between
    containers.

    The object loop is the reader's own, with one change: a zlib container is inflated to at most
    :data:`MAX_BLF_PENDING` bytes (plus one, to see that it is more), never whole, so a 256 KiB container of zeros
    cannot become a quarter of a gigabyte before any bound is checked.
    """

    def __iter__(self) -> Generator[can.Message, None, None]:
        header = _blf.OBJ_HEADER_BASE_STRUCT
        while data := self.file.read(header.size):
            signature, _, _, size, kind = header.unpack(data)
            if signature != b"LOBJ":
                raise _blf.BLFParseError()
            body = self.file.read(size - header.size)
            self.file.read(size % 4)  # objects are padded to 4 bytes
            if kind != _blf.LOG_CONTAINER:
                continue
            method, _ = _blf.LOG_CONTAINER_STRUCT.unpack_from(body)
            payload = body[_blf.LOG_CONTAINER_STRUCT.size :]
            if method == _blf.ZLIB_DEFLATE:
                payload = zlib.decompressobj().decompress(payload, MAX_BLF_PENDING + 1)
                if len(payload) > MAX_BLF_PENDING:
                    raise _Bounded(
                        f"a container inflates to more than {MAX_BLF_PENDING} bytes (at most {MAX_BLF_PENDING})"
                    )
            elif method != _blf.NO_COMPRESSION:
                continue  # a compression python-can does not know either: skipped, as it does
            yield from self._parse_container(payload)
        self.stop()

    def _parse_container(self, data: bytes) -> Iterator[can.Message]:
        pending = len(getattr(self, "_tail", b"")) + len(data)
        if pending > MAX_BLF_PENDING:
            raise _Bounded(f"a container leaves {pending} bytes to parse (at most {MAX_BLF_PENDING})")
        yield from super()._parse_container(data)


_CANDUMP_LINE: Final = re.compile(
    r"^\s*(?:\((?P<time>[0-9]+\.[0-9]+)\)\s+)?(?P<channel>\S+)\s+(?P<id>[0-9A-Fa-f]{1,8})\s+"
    r"\[(?P<length>[0-9]{1,2})\]\s*(?P<rest>.*?)\s*$"
)
_LOG_LINE: Final = re.compile(r"\s[^\s#]+#")  # an id#data token: candump -L
_HEX_BYTES: Final = re.compile(r"^(?:[0-9A-Fa-f]{2}(?:\s+|$))*$")


class _CandumpReader:
    """``candump`` text in any of its forms: ``-L`` lines (python-can's reader), or the screen form with or
    without a timestamp (``candump can0``, ``candump -ta can0``: ``(1700000000.123456)  can0  123   [4]  DE AD BE
    EF``). The screen form carries no CAN FD flag but its length, printed with two digits for FD frames
    (``[08]``); without ``-t`` every frame has time 0 and a replay sends them back to back."""

    def __init__(self, lines: _TextLines) -> None:
        self._lines = lines

    def __iter__(self) -> Iterator[can.Message]:
        first = next((line for line in self._lines if line.strip()), None)
        if first is None:
            return
        if _LOG_LINE.search(first):  # -L: "(time) can0 123#DEADBEEF", perhaps a flag after it
            yield from _log_frames(_Rest(first, self._lines))
            return
        yield self._screen_line(first)
        for line in self._lines:
            if line.strip():
                yield self._screen_line(line)

    @staticmethod
    def _screen_line(line: str) -> can.Message:
        match = _CANDUMP_LINE.match(line)
        if match is None:
            raise ValueError(f"not a candump line: {_shortened(line.strip())}")
        rest = match["rest"]
        remote = rest == "remote request"
        if not remote and not _HEX_BYTES.match(rest):
            raise ValueError(f"data {_shortened(rest)!r} is not hex bytes")
        data = b"" if remote else bytes.fromhex(rest)
        length_text = match["length"]
        if not remote and len(data) != int(length_text):
            raise ValueError(f"[{length_text}] announces {length_text} bytes, the line has {len(data)}")
        frame_id = match["id"]
        return can.Message(
            timestamp=float(match["time"] or 0.0),
            arbitration_id=int(frame_id, 16),
            is_extended_id=len(frame_id) == 8,
            is_remote_frame=remote,
            is_fd=len(length_text) == 2 and not remote,
            dlc=int(length_text),
            data=data,
            channel=match["channel"],
        )

    def stop(self) -> None:
        self._lines.close()


_CAN_ERR_FLAG: Final = 0x20000000
_CAN_ERR_BUSERROR: Final = 0x00000080
_CANFD_BRS: Final = 0x01
_CANFD_ESI: Final = 0x02


def _log_frames(lines: Iterable[str]) -> Iterator[can.Message]:
    """The frames of candump ``-L`` lines, exactly as python-can's ``CanutilsLogReader`` reads them (the same
    fields, flags and failures on the same lines), at about twice its speed: the payload is parsed with
    :meth:`bytearray.fromhex` (python-can's per-byte parse is kept only for what ``fromhex`` refuses), and the
    message is built with positional arguments."""
    message = can.Message
    for line in lines:
        temp = line.strip()
        if not temp:
            continue
        if temp[-2:].lower() in (" r", " t"):
            timestamp_string, channel_string, frame, is_rx_string = temp.split()
            is_rx = is_rx_string.strip().lower() == "r"
        else:
            timestamp_string, channel_string, frame = temp.split()
            is_rx = True
        timestamp = float(timestamp_string[1:-1])
        can_id_string, data = frame.split("#", maxsplit=1)
        channel: int | str = int(channel_string) if channel_string.isdigit() else channel_string
        is_extended = len(can_id_string) > 3
        can_id = int(can_id_string, 16)
        is_fd = brs = esi = False
        if data and data[0] == "#":
            is_fd = True
            fd_flags = int(data[1])
            brs = bool(fd_flags & _CANFD_BRS)
            esi = bool(fd_flags & _CANFD_ESI)
            data = data[2:]
        data_bin: bytearray | None
        if data and data[0].lower() == "r":
            is_remote_frame = True
            dlc = int(data[1:]) if len(data) > 1 else 0
            data_bin = None
        else:
            is_remote_frame = False
            dlc = len(data) // 2
            try:
                data_bin = bytearray.fromhex(data)
            except ValueError:  # what python-can's int(pair, 16) may still take ("+1"), or refuse as it does
                data_bin = bytearray(int(data[index : index + 2], 16) for index in range(0, len(data), 2))
        if can_id & _CAN_ERR_FLAG and can_id & _CAN_ERR_BUSERROR:
            yield message(timestamp=timestamp, is_error_frame=True)
            continue
        # Positional (timestamp, arbitration_id, is_extended_id, is_remote_frame, is_error_frame, channel, dlc,
        # data, is_fd, is_rx, bitrate_switch, error_state_indicator): a third of the cost of the keyword call.
        yield message(
            timestamp,
            can_id & 0x1FFFFFFF,
            is_extended,
            is_remote_frame,
            False,
            channel,
            dlc,
            data_bin,
            is_fd,
            is_rx,
            brs,
            esi,
        )


class _Rest:
    """The lines of a text after one that was already read (for python-can's reader, which iterates a file)."""

    def __init__(self, first: str, rest: _TextLines) -> None:
        self._first: str | None = first
        self._rest = rest

    def __iter__(self) -> Iterator[str]:
        if self._first is not None:
            first, self._first = self._first, None
            yield first
        yield from self._rest

    def close(self) -> None:
        self._rest.close()


@dataclass(frozen=True)
class _Format:
    reader: type[can.io.generic.MessageReader]
    text: bool
    expected: str


RECORDING_FORMATS: Final[Mapping[str, _Format]] = {
    ".log": _Format(
        _CandumpReader,  # type: ignore[arg-type]  # a MessageReader in all but its base class
        True,
        "candump lines: -L (1700000000.000000) can0 123#DEADBEEF, or as candump prints them, "
        "[(timestamp)] can0 123 [4] DE AD BE EF",
    ),
    ".asc": _Format(
        can.ASCReader,
        True,
        "Vector ASC lines: timestamp channel id Rx|Tx d length bytes, e.g. 0.010 1 123 Rx d 2 01 02",
    ),
    ".blf": _Format(_BoundedBLFReader, False, "a Vector BLF file: a LOGG header, then LOBJ objects"),
    ".csv": _Format(
        can.CSVReader, True, "python-can CSV rows: timestamp,arbitration_id,extended,remote,error,dlc,data"
    ),
    ".trc": _Format(
        can.TRCReader,
        True,
        "PEAK TRC lines: a ;$FILEVERSION header, then numbered frames, e.g. 1) 1.0 Rx 0123 2 01 02",
    ),
}
"""Suffix -> the python-can reader and what its file must look like."""


class _TextLines:
    """A binary stream as the text lines a python-can text reader iterates, counted and bounded."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self.line = 0
        self.closed = False

    def __iter__(self) -> _TextLines:
        return self

    def __next__(self) -> str:
        data = self._stream.readline(MAX_LINE_CHARS + 1)
        if not data:
            raise StopIteration
        self.line += 1
        if len(data) > MAX_LINE_CHARS:
            raise _Bounded(f"line longer than {MAX_LINE_CHARS} characters")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as error:
            raise _Bounded(f"byte {error.start + 1} of the line is not UTF-8") from error
        # What python-can's text mode does: universal newlines.
        return text[:-2] + "\n" if text.endswith("\r\n") else text

    def read(self, size: int = -1) -> str:
        return "".join(self) if size < 0 else next(self, "")

    def close(self) -> None:
        self.closed = True
        self._stream.close()


class _BinaryReads:
    """A binary stream whose reads are bounded and whose offset is known."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self.offset = 0
        self.closed = False

    def read(self, size: int = -1) -> bytes:
        if size < 0 or size > MAX_BLF_READ:
            raise _Bounded(f"an object or header of {size} bytes (at most {MAX_BLF_READ} read)")
        data = self._stream.read(size)
        self.offset += len(data)
        return data

    def close(self) -> None:
        self.closed = True
        self._stream.close()


STANDARD_INPUT: Final = Path("-")
"""The recording name that means standard input, read as candump text (``candump -L can0 | sdv decode --log -``)."""


def _format_of(path: Path) -> _Format:
    if path == STANDARD_INPUT:
        return RECORDING_FORMATS[".log"]
    suffixes = [suffix.lower() for suffix in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes.pop()
    recording_format = RECORDING_FORMATS.get(suffixes[-1]) if suffixes else None
    if recording_format is None:
        known = ", ".join(RECORDING_FORMATS)
        raise HalError(f"recording {path}: format not known; expected a suffix {known}, optionally with .gz")
    return recording_format


def _open(path: Path) -> IO[bytes]:
    if path == STANDARD_INPUT:
        return cast(IO[bytes], open(sys.stdin.fileno(), "rb", closefd=False))
    try:
        if path.suffix.lower() == ".gz":
            return cast(IO[bytes], gzip.open(path, "rb"))
        return path.open("rb")
    except OSError as error:
        raise BusError(f"recording {path}: cannot be read: {error.strerror or error}") from error


def read_recording(path: Path, channel: str | None = None) -> Iterator[can.Message]:
    """The frames of a python-can recording, optionally only those of one channel; ``-`` reads candump text
    (``-L`` or as candump prints it) from standard input.

    Raises:
        BusError: when the file cannot be opened, or its content is not the format its suffix names (at any
            point, also after some frames): names the file, the line (text formats) or byte offset (BLF), and
            the format expected.
        HalError: when its suffix names no format the project reads.
    """
    recording_format = _format_of(path)
    stream = _open(path)
    wrapped: _TextLines | _BinaryReads = _TextLines(stream) if recording_format.text else _BinaryReads(stream)
    try:
        reader = recording_format.reader(wrapped)  # type: ignore[arg-type]  # file-like, as python-can reads it
        try:
            for frame in reader:
                if channel is None or str(frame.channel) == channel:
                    yield frame
        finally:
            reader.stop()
    except Exception as error:  # a reader's failure on bad content is of any type: all mean "not this format"
        if isinstance(wrapped, _TextLines):
            where = f"line {wrapped.line}" if wrapped.line else "start of the file"
        else:
            where = f"byte offset {wrapped.offset}"
        detail = str(error) or type(error).__name__
        raise BusError(
            f"recording {path}: {where}: {_shortened(detail)}; expected {recording_format.expected}"
        ) from error
    finally:
        stream.close()


def _shortened(text: str, limit: int = 200) -> str:
    # A reader quotes what it could not parse; a hostile line must not make the message unbounded.
    return text if len(text) <= limit else text[: limit - 3] + "..."
