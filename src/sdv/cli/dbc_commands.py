"""``sdv dbc check FILE``: what the tolerant DBC loader makes of a file, before a profile uses it.

Prints every repair warning (file and line), then the layout of each message as the HAL decodes it: frame id,
length, sender and cycle time, and per signal its bits, byte order, sign, scale and offset, range, unit,
multiplexing and value table size. Exit code 0 when the file loads (warnings or not), 1 with every problem when
it does not, as ``sdv profile check`` does for a profile.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from sdv.errors import DbcError
from sdv.hal.codec import MessageCodec, SignalLayout
from sdv.hal.codec_cantools import codec_from_cantools
from sdv.hal.dbc import load_dbc

__all__ = ["format_message", "register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``sdv dbc check`` to the ``sdv`` parser."""
    dbc = subparsers.add_parser("dbc", help="inspect DBC files as the HAL loads them")
    actions = dbc.add_subparsers(dest="action", metavar="ACTION", required=True)
    check = actions.add_parser(
        "check", help="print the loader's warnings and errors and the layout of every message"
    )
    check.add_argument("file", type=Path)
    check.add_argument("--quiet", "-q", action="store_true", help="only the warnings and the summary line")
    check.set_defaults(handler=_check)


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _signal_line(layout: SignalLayout) -> str:
    order = "little" if layout.little_endian else "big"
    kind = "float" if layout.is_float else "signed" if layout.is_signed else "unsigned"
    parts = [
        f"    {layout.name:32} start {layout.start:3}  length {layout.length:2}  {order:6} {kind:8}",
        f"scale {_number(layout.scale)} offset {_number(layout.offset)}",
        f"[{_number(layout.minimum)} .. {_number(layout.maximum)}]",
    ]
    if layout.unit:
        parts.append(layout.unit)
    if layout.is_multiplexer:
        parts.append("multiplexer")
    if layout.multiplexer is not None:
        parts.append(f"when {layout.multiplexer} in {', '.join(map(str, layout.multiplexer_ids))}")
    if layout.choices:
        parts.append(f"{len(layout.choices)} named values")
    return "  ".join(parts)


def format_message(codec: MessageCodec, line: int | None) -> list[str]:
    """A message's layout as ``sdv dbc check`` prints it: a header line, then one line per signal."""
    frame = f"0x{codec.frame_id:08X} (extended)" if codec.is_extended else f"0x{codec.frame_id:03X}"
    details = [f"{codec.length} bytes"]
    if codec.is_fd:
        details.append("CAN FD")
    if codec.sender:
        details.append(f"sent by {codec.sender}")
    if codec.cycle_time_ms is not None:
        details.append(f"every {_number(codec.cycle_time_ms)} ms")
    if line is not None:
        details.append(f"line {line}")
    return [f"{frame}  {codec.name}  ({', '.join(details)})", *map(_signal_line, codec.signals)]


def _check(args: argparse.Namespace) -> int:
    # the command prints the warnings itself: the loader's log lines would say them twice
    logging.getLogger("sdv.hal.dbc").setLevel(logging.ERROR)
    try:
        loaded = load_dbc(args.file)
    except DbcError as error:
        print(f"{args.file}: does not load: {error}", file=sys.stderr)
        return 1
    for warning in loaded.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    codecs = sorted(
        (codec_from_cantools(message) for message in loaded.database.messages),
        key=lambda codec: (codec.is_extended, codec.frame_id),
    )
    if not args.quiet:
        for codec in codecs:
            print("\n".join(format_message(codec, loaded.line_of(codec.name))))
    signals = sum(len(codec.signals) for codec in codecs)
    print(f"{args.file}: ok: {len(codecs)} messages, {signals} signals, {len(loaded.warnings)} warning(s)")
    return 0
