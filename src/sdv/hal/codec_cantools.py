"""A :class:`~sdv.hal.codec.MessageCodec` from a message cantools loaded: the one place a cantools message's
attributes are read into the codec's own layout types."""

from __future__ import annotations

from typing import Any

from sdv.hal.codec import MessageCodec, SignalLayout

__all__ = ["codec_from_cantools"]


def codec_from_cantools(message: Any) -> MessageCodec:
    """Build a codec from a ``cantools.database.can.Message``."""
    layouts = []
    for signal in message.signals:
        choices = {int(key): str(label) for key, label in (signal.choices or {}).items()}
        layouts.append(
            SignalLayout(
                name=signal.name,
                start=signal.start,
                length=signal.length,
                little_endian=signal.byte_order == "little_endian",
                is_signed=bool(signal.is_signed),
                is_float=bool(signal.is_float),
                scale=signal.scale,
                offset=signal.offset,
                minimum=signal.minimum,
                maximum=signal.maximum,
                unit=signal.unit or None,
                choices=choices,
                initial=signal.initial,
                is_multiplexer=bool(signal.is_multiplexer),
                multiplexer=signal.multiplexer_signal,
                multiplexer_ids=tuple(signal.multiplexer_ids or ()),
                comment=signal.comment if isinstance(signal.comment, str) else None,
            )
        )
    return MessageCodec(
        message.name,
        message.frame_id,
        bool(message.is_extended_frame),
        message.length,
        layouts,
        is_fd=bool(message.is_fd),
        cycle_time_ms=message.cycle_time,
        sender=message.senders[0] if message.senders else None,
    )
