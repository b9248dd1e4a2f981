"""``sdv decode``: frames of a recording or of a live bus, decoded as the DBC files (or a profile) read them.

Two views, one decoding:

* ``--dbc`` only: every signal of every message, under its DBC name, choice labels applied
  (:meth:`~sdv.hal.codec.MessageCodec.decode_labelled`).
* ``--profile``: the profile's signals under their VSS paths, decoded by the :class:`~sdv.hal.processor.FrameProcessor`
  ``sdv serve`` runs (built with ``every_frame``: every mapped signal of every frame, not only changes), so that
  payload length, multiplexing, E2E, range checks and value conversions are those of the server.

Frames come from a recording (``--log``; ``-`` reads candump text from standard input) or from a python-can
interface (``--interface socketcan --channel can0``, ``--interface virtual``, ...). A live decode runs until
SIGTERM (exit 0) or Ctrl-C (exit 130), each ending with the summary; a reader that closes the pipe ends it
quietly. Frames that do not decode are counted by reason and named on standard error.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, Final, TextIO

import can

from sdv.errors import FrameError
from sdv.hal.codec import MessageCodec
from sdv.hal.codec_cantools import codec_from_cantools
from sdv.hal.dbc import load_dbc
from sdv.hal.processor import FrameProcessor
from sdv.hal.profile import BusConfig
from sdv.hal.sources import BusSource, read_recording
from sdv.hal.vehicle import VehicleDefinition, load_vehicle

__all__ = ["register"]

# How long a live decode waits for frames before it looks at a stop request again.
RECEIVE_TIMEOUT_S: Final = 0.2
# The exit code of a decode interrupted with Ctrl-C (128 + SIGINT, as every command).
_INTERRUPTED: Final = 130
_LIVE_BUS: Final = "decode"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``sdv decode`` to the ``sdv`` parser."""
    decode = subparsers.add_parser(
        "decode", help="decode a CAN recording or a live bus with DBC files (and a profile)"
    )
    decode.add_argument(
        "--dbc", action="append", default=[], type=Path, metavar="FILE", help="DBC file (repeatable)"
    )
    source = decode.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--log",
        type=Path,
        metavar="RECORDING",
        help="candump .log, .asc, .blf, .csv, .trc (.gz); - reads candump text from standard input",
    )
    source.add_argument(
        "--interface",
        metavar="INTERFACE",
        help="decode a live bus: python-can interface (socketcan, virtual, pcan, ...); ends on SIGTERM or Ctrl-C",
    )
    decode.add_argument("--channel", help="with --interface: the python-can channel, e.g. can0")
    decode.add_argument("--profile", type=Path, metavar="FILE", help="name signals by their profile paths")
    decode.add_argument("--bus", help="with --profile: the bus the frames belong to (default: the first)")
    decode.add_argument("--format", choices=("jsonl", "table"), default="jsonl")
    decode.set_defaults(handler=_decode)


@dataclass(frozen=True)
class _Decoded:
    timestamp: float
    channel: str | None
    frame_id: int
    message: str
    signals: Mapping[str, Any]


class _Decoder:
    """Decodes frames one by one, counting (and naming) what cannot be decoded.

    Frames of the profile's bus go through the server's :class:`FrameProcessor`; frames only the ``--dbc`` files
    describe are decoded in the DBC view.
    """

    def __init__(
        self,
        codecs: Mapping[tuple[int, bool], MessageCodec],
        vehicle: VehicleDefinition | None,
        bus: str | None,
        errors: TextIO,
    ) -> None:
        self.codecs = codecs
        self.errors = errors
        self.failures: Counter[str] = Counter()
        self.frames = 0
        self._processor = FrameProcessor(vehicle, every_frame=True) if vehicle is not None else None
        self._bus_index = self._processor.bus_index(bus) if self._processor is not None and bus else 0
        self._bad_seen: Counter[str] = Counter()  # the bad-frame reasons named so far, to name each new one
        self._profile_codecs = vehicle.buses[bus].codecs if vehicle is not None and bus else {}
        self._bus = bus or ""

    def decode(self, frames: Iterator[can.Message]) -> Iterator[_Decoded]:
        for frame in frames:
            key = (frame.arbitration_id, bool(frame.is_extended_id))
            where = f"{frame.timestamp:.6f} id 0x{frame.arbitration_id:X}"
            if self._processor is not None and (key in self._profile_codecs or key not in self.codecs):
                decoded = self._by_profile(self._processor, frame, where)
            else:
                self.frames += 1
                decoded = self._by_dbc(frame, where)
            if decoded is not None:
                channel = None if frame.channel is None else str(frame.channel)
                yield _Decoded(frame.timestamp, channel, frame.arbitration_id, *decoded)

    def _by_dbc(self, frame: can.Message, where: str) -> tuple[str, Mapping[str, Any]] | None:
        codec = self.codecs.get((frame.arbitration_id, bool(frame.is_extended_id)))
        if codec is None:
            self._fail("unknown_id", f"{where}: no DBC message has this id")
            return None
        if frame.is_error_frame:
            self._fail("error_frame", f"{where}: error frame")
            return None
        try:
            return codec.name, codec.decode_labelled(frame.data)
        except FrameError as error:
            self._fail(error.reason, f"{where}: {error}")
            return None

    def _by_profile(
        self, processor: FrameProcessor, frame: can.Message, where: str
    ) -> tuple[str, Mapping[str, Any]] | None:
        counters = processor.counters(self._bus_index)  # read as they count: no copy per frame
        decoded, bad = counters.decoded, counters.bad.total()
        updates = processor.process(self._bus_index, [frame])
        if counters.bad.total() != bad:  # only then the reasons are compared, with the copy of the last time
            state = "decoded in part" if counters.decoded > decoded else "not decoded"
            for reason, count in (counters.bad - self._bad_seen).items():
                print(f"{state}: {where}: {reason} ({count})", file=self.errors)
            self._bad_seen = Counter(counters.bad)
        if counters.decoded == decoded:
            return None
        codec = self._profile_codecs[(frame.arbitration_id, bool(frame.is_extended_id))]
        return codec.name, {update.path: update.value for update in updates}

    def _fail(self, reason: str, line: str) -> None:
        self.failures[reason] += 1
        print(f"not decoded: {line}", file=self.errors)

    def summary(self) -> str:
        frames, decoded, reasons = (
            self.frames,
            self.frames - sum(self.failures.values()),
            Counter(self.failures),
        )
        if self._processor is not None:
            statistics = self._processor.statistics()[self._bus]
            frames += statistics.frames
            decoded += statistics.decoded
            reasons.update(statistics.bad)
        listed = ", ".join(f"{reason}: {count}" for reason, count in sorted(reasons.items()))
        return f"{frames} frames, {decoded} decoded, {frames - decoded} not decoded" + (
            f" ({listed})" if listed else ""
        )


def _load_codecs(dbc_files: Sequence[Path]) -> dict[tuple[int, bool], MessageCodec]:
    codecs: dict[tuple[int, bool], MessageCodec] = {}
    for path in dbc_files:
        for message in load_dbc(path).database.messages:
            codecs.setdefault(
                (message.frame_id, bool(message.is_extended_frame)), codec_from_cantools(message)
            )
    return codecs


class _StopRequest:
    """SIGTERM asks a live decode to stop: the frames already received are decoded, then it ends."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: Callable[[int, FrameType | None], Any] | int | None = None
        # Signal handlers belong to the main thread; a decode run from another thread stops only with its bus.
        self._installed = threading.current_thread() is threading.main_thread()

    def __enter__(self) -> _StopRequest:
        if self._installed:
            self._previous = signal.signal(signal.SIGTERM, self._request)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._installed:
            signal.signal(signal.SIGTERM, self._previous)

    def _request(self, signal_number: int, frame: FrameType | None) -> None:
        self.requested = True


def _live_frames(source: BusSource, stop: _StopRequest) -> Iterator[can.Message]:
    while not stop.requested:
        yield from source.receive(RECEIVE_TIMEOUT_S)
    # What arrived before the request is decoded too.
    while batch := source.receive(0):
        yield from batch


def _decode(args: argparse.Namespace) -> int:
    vehicle = load_vehicle(args.profile) if args.profile else None
    bus = None
    if vehicle is not None:
        bus = args.bus or next(iter(vehicle.buses))
        if bus not in vehicle.buses:
            print(
                f"sdv decode: unknown bus {bus!r}; the profile has {', '.join(vehicle.buses)}",
                file=sys.stderr,
            )
            return 2
        codecs = dict(vehicle.buses[bus].codecs)
        codecs.update({key: codec for key, codec in _load_codecs(args.dbc).items() if key not in codecs})
    elif args.dbc:
        codecs = _load_codecs(args.dbc)
    else:
        print("sdv decode: give --dbc FILE (or --profile FILE)", file=sys.stderr)
        return 2
    if args.channel is not None and args.interface is None:
        print("sdv decode: --channel goes with --interface", file=sys.stderr)
        return 2
    decoder = _Decoder(codecs, vehicle, bus, sys.stderr)
    if args.log is not None:
        _write(decoder.decode(read_recording(args.log)), args.format, live=False)
        print(decoder.summary(), file=sys.stderr)
        return 0
    return _decode_live(args, decoder, vehicle, bus, codecs)


def _decode_live(
    args: argparse.Namespace,
    decoder: _Decoder,
    vehicle: VehicleDefinition | None,
    bus: str | None,
    codecs: Mapping[tuple[int, bool], MessageCodec],
) -> int:
    if vehicle is not None and bus is not None:
        config = vehicle.buses[bus].config.model_copy(
            update={"interface": args.interface, "channel": args.channel, "recording": None, "options": {}}
        )
    else:
        config = BusConfig(name=_LIVE_BUS, interface=args.interface, channel=args.channel, dbc=args.dbc)
    # The handler is in place before the bus opens: a SIGTERM once frames can arrive stops the decode cleanly.
    with _StopRequest() as stop:
        source = BusSource.open(config, receive_ids=codecs.keys())
        print(f"sdv decode: decoding {args.interface} channel {args.channel}", file=sys.stderr, flush=True)
        try:
            _write(decoder.decode(_live_frames(source, stop)), args.format, live=True)
        except KeyboardInterrupt:
            print(decoder.summary(), file=sys.stderr)
            return _INTERRUPTED
        finally:
            source.close()
    print(decoder.summary(), file=sys.stderr)
    return 0


def _write(items: Iterator[_Decoded], form: str, *, live: bool) -> None:
    out = sys.stdout
    for item in items:
        if form == "jsonl":
            record = {
                "timestamp": item.timestamp,
                "channel": item.channel,
                "frame_id": item.frame_id,
                "message": item.message,
                "signals": dict(item.signals),
            }
            out.write(json.dumps(record) + "\n")
        else:
            signals = "  ".join(f"{name}={show(value)}" for name, value in item.signals.items())
            out.write(
                f"{item.timestamp:17.6f}  {item.channel or '-':6}  {item.frame_id:8X}  {item.message:24}  {signals}\n"
            )
        if live:  # a live bus is read as it goes: each frame's line reaches the reader when it is decoded
            out.flush()


def show(value: object) -> str:
    """A value as the table formats show it (floats to six significant digits)."""
    return f"{value:.6g}" if isinstance(value, float) else str(value)
