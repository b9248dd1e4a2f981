"""Compiled CAN message codecs: bytes to physical values and back.

A :class:`MessageCodec` is built once per DBC message from its signal layouts and never changes. Decoding is the
per-frame hot path, so at build time each codec generates and compiles a small Python function specialised to the
message: it reads the payload as one little-endian and/or one big-endian integer and extracts every requested
signal with a shift and a mask, applies two's complement and the linear conversion inline, and evaluates the
multiplexer conditions. No per-signal objects are visited while a frame is decoded.

Bit numbering follows the DBC convention (Vector DBC file format, ``SG_`` start bit):

* little-endian (Intel, ``@1``) signals: the start bit is the least significant bit, counted from bit 0 of byte 0;
* big-endian (Motorola, ``@0``) signals: the start bit is the most significant bit in the "sawtooth" numbering
  (bit 7 of byte 0 is the first bit on the wire).

Physical values follow cantools' conventions so that results agree with ``Database.decode_message``: an identity
conversion (factor 1, offset 0) keeps the raw integer, integral factor and offset keep integer arithmetic, any
other conversion computes ``raw * factor + offset`` as a float; IEEE float signals (``SIG_VALTYPE_``) are read as
floats. Choice labels are applied by the caller (:meth:`MessageCodec.decode_labelled`), so the hot path stays
numeric.

A frame decodes into exactly the signals its multiplexing selects, as cantools' signal tree does: the signals
without multiplexer, and those whose multiplexer (a signal marked ``M``, or ``mNM`` in extended multiplexing) is
itself selected and has one of their ``multiplexer_ids``. A signal whose multiplexer is not a multiplexer signal
(``SG_MUL_VAL_`` naming a plain signal) is never selected. A multiplexer value that selects no branch (no signal
has it and it has no choice label) makes the frame undecodable: :class:`~sdv.errors.FrameError` with reason
``unknown_multiplexer``, as cantools refuses it. Bytes past the message's length carry no signal and are ignored.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from sdv.errors import FrameError

__all__ = [
    "DecodeFunction",
    "MessageCodec",
    "SignalLayout",
]

PhysicalValue = int | float
DecodeFunction = Callable[[bytes | bytearray], tuple[PhysicalValue | None, ...]]
"""Compiled decoder: payload bytes to one value per requested signal (``None`` when its multiplexer branch is
inactive)."""


@dataclass(frozen=True)
class SignalLayout:
    """Where a signal lives in a message and how its raw value converts to a physical one."""

    name: str
    start: int
    length: int
    little_endian: bool = True
    is_signed: bool = False
    is_float: bool = False
    scale: int | float = 1
    offset: int | float = 0
    minimum: int | float | None = None
    maximum: int | float | None = None
    unit: str | None = None
    choices: Mapping[int, str] = field(default_factory=dict)
    initial: int | float | None = None
    is_multiplexer: bool = False
    multiplexer: str | None = None
    multiplexer_ids: tuple[int, ...] = ()
    comment: str | None = None

    @property
    def mask(self) -> int:
        """All ones over the signal's width."""
        return (1 << self.length) - 1

    def shift(self, total_bits: int) -> int:
        """Right shift that brings the signal's least significant bit to bit 0.

        For little-endian signals the shift applies to the payload read as a little-endian integer, for
        big-endian signals to the payload read as a big-endian integer of ``total_bits`` bits.
        """
        if self.little_endian:
            return self.start
        msb_position = (self.start // 8) * 8 + (7 - self.start % 8)
        return total_bits - msb_position - self.length

    def covered_bytes(self, total_bits: int) -> frozenset[int]:
        """Indices of the payload bytes this signal occupies."""
        if self.little_endian:
            return frozenset(range(self.start // 8, (self.start + self.length - 1) // 8 + 1))
        msb_position = (self.start // 8) * 8 + (7 - self.start % 8)
        return frozenset(range(msb_position // 8, (msb_position + self.length - 1) // 8 + 1))

    def fits(self, total_bits: int) -> bool:
        """Whether the signal lies inside a payload of ``total_bits`` bits."""
        shift = self.shift(total_bits)
        return shift >= 0 and shift + self.length <= total_bits

    @property
    def conversion(self) -> str:
        """``identity``, ``integer`` (integral factor and offset) or ``linear``, as cantools distinguishes them."""
        if self.is_float:
            return "identity" if self.scale == 1 and self.offset == 0 else "linear"
        if self.scale == 1 and self.offset == 0:
            return "identity"
        if float(self.scale).is_integer() and float(self.offset).is_integer():
            return "integer"
        return "linear"

    def to_physical(self, raw: int) -> PhysicalValue:
        """Physical value of a raw (unsigned bit-field) value, as the compiled decoder computes it."""
        if self.is_float:
            value: PhysicalValue = _float_from_bits(raw, self.length)
        else:
            value = raw - (1 << self.length) if self.is_signed and raw >> (self.length - 1) else raw
        kind = self.conversion
        if kind == "identity":
            return value
        if kind == "integer":
            return value * int(self.scale) + int(self.offset)
        return value * self.scale + self.offset

    def to_raw(self, value: PhysicalValue) -> int:
        """Raw bit-field value (unsigned, masked) for a physical value.

        Raises:
            ValueError: when the value cannot be represented in the signal's bits.
        """
        if self.is_float:
            number = (float(value) - self.offset) / self.scale
            return _bits_from_float(number, self.length)
        if isinstance(value, int) and self.conversion != "linear":
            # Exact rational arithmetic: a float division would lose bits above 2**53 (64-bit signals).
            scaled: int | float = round(Fraction(value - int(self.offset), int(self.scale)))
        else:
            scaled = (value - self.offset) / self.scale
        if isinstance(scaled, float):
            if not math.isfinite(scaled):
                raise ValueError(f"{self.name}: {value!r} is not a finite number")
            raw = round(scaled)
        else:
            raw = int(scaled)
        low, high = self.raw_bounds
        if not low <= raw <= high:
            raise ValueError(
                f"{self.name}: {value!r} needs raw value {raw}, outside the {self.length}-bit "
                f"{'signed' if self.is_signed else 'unsigned'} range [{low}, {high}]"
            )
        return raw & self.mask

    @property
    def raw_bounds(self) -> tuple[int, int]:
        """Smallest and largest raw value the bit field holds (signed or not)."""
        if self.is_signed:
            return -(1 << (self.length - 1)), (1 << (self.length - 1)) - 1
        return 0, self.mask

    def physical_bounds(self) -> tuple[float, float]:
        """The physical range: the DBC's ``[min|max]`` when set, otherwise what the bit field can hold."""
        if self.minimum is not None and self.maximum is not None and (self.minimum, self.maximum) != (0, 0):
            return float(self.minimum), float(self.maximum)
        if self.is_float:
            return -math.inf, math.inf
        low, high = (self.to_physical(raw & self.mask) for raw in self.raw_bounds)
        return float(min(low, high)), float(max(low, high))


def _float_from_bits(raw: int, length: int) -> float:
    if length == 32:
        return float(struct.unpack(">f", raw.to_bytes(4, "big"))[0])
    return float(struct.unpack(">d", raw.to_bytes(8, "big"))[0])


def _bits_from_float(value: float, length: int) -> int:
    if length == 32:
        return int.from_bytes(struct.pack(">f", value), "big")
    return int.from_bytes(struct.pack(">d", value), "big")


class MessageCodec:
    """Decoder and encoder of one CAN message, compiled once from its signal layouts.

    Args:
        name: the DBC message name.
        frame_id: the arbitration id, without the extended flag.
        is_extended: whether the id is a 29-bit id.
        length: the payload length in bytes (up to 64 for CAN FD).
        signals: the message's signals, multiplexers before the signals they select.
        is_fd: whether the message is sent as a CAN FD frame.
        cycle_time_ms: the DBC cycle time, when the message is cyclic.
        sender: the sending node, when known.
    """

    def __init__(
        self,
        name: str,
        frame_id: int,
        is_extended: bool,
        length: int,
        signals: Sequence[SignalLayout],
        *,
        is_fd: bool = False,
        cycle_time_ms: float | None = None,
        sender: str | None = None,
    ) -> None:
        self.name = name
        self.frame_id = frame_id
        self.is_extended = is_extended
        self.length = length
        self.is_fd = is_fd
        self.cycle_time_ms = cycle_time_ms
        self.sender = sender
        total_bits = 8 * length
        selected = _selectable(_multiplexers_first(signals), total_bits)
        self.signals: tuple[SignalLayout, ...] = tuple(
            s for s in _multiplexers_first(signals) if s.name in selected
        )
        # Never decoded: they do not fit in the message, or no multiplexer signal selects them.
        self.skipped_signals: tuple[str, ...] = tuple(s.name for s in signals if s.name not in selected)
        self._by_name = {signal.name: signal for signal in self.signals}
        self.signal_names: tuple[str, ...] = tuple(self._by_name)
        # multiplexer -> the values that select a branch: those of its signals (decoded or not, as cantools
        # counts them) and those it has a label for.
        self.multiplexer_values: Mapping[str, frozenset[int]] = {
            s.name: frozenset(
                value for child in signals if child.multiplexer == s.name for value in child.multiplexer_ids
            )
            | frozenset(s.choices)
            for s in self.signals
            if s.is_multiplexer
        }
        self._decode_all = self.compile_decoder(self.signal_names)

    def signal(self, name: str) -> SignalLayout:
        """The layout of one signal.

        Raises:
            KeyError: when the message has no such signal.
        """
        return self._by_name[name]

    def has_signal(self, name: str) -> bool:
        """Whether the message has a signal of that name."""
        return name in self._by_name

    def compile_decoder(self, names: Iterable[str]) -> DecodeFunction:
        """Compile a decoder that returns the physical values of ``names``, in that order.

        Every multiplexer of the message is decoded too (internally), so a requested signal is ``None`` exactly
        when its multiplexer branch is not the active one, and a multiplexer value that selects no branch raises
        :class:`~sdv.errors.FrameError` (reason ``unknown_multiplexer``) whichever signals are requested. The
        returned function expects a payload of exactly :attr:`length` bytes; callers check and cut it first (see
        :meth:`payload`).
        """
        wanted = list(names)
        multiplexers = [name for name, values in self.multiplexer_values.items() if values]
        needed = self._with_multiplexers([*wanted, *multiplexers])
        return _compile(self, [self._by_name[n] for n in needed], wanted)

    def _with_multiplexers(self, names: Sequence[str]) -> list[str]:
        needed: set[str] = set()
        pending = list(names)
        while pending:
            name = pending.pop()
            if name in needed:
                continue
            needed.add(name)
            multiplexer = self._by_name[name].multiplexer
            if multiplexer is not None:
                pending.append(multiplexer)
        # Keep the codec's order: multiplexers come before what they select.
        return [name for name in self.signal_names if name in needed]

    def check_length(self, data: bytes | bytearray) -> None:
        """Raise :class:`FrameError` (reason ``wrong_length``) when a payload is shorter than the message."""
        if len(data) < self.length:
            raise FrameError(
                "wrong_length",
                f"{self.name} (0x{self.frame_id:X}): payload of {len(data)} bytes, expected {self.length}",
            )

    def payload(self, data: bytes | bytearray) -> bytes | bytearray:
        """The part of a frame's data that carries the message: its first :attr:`length` bytes.

        Bytes past the length carry no signal (cantools ignores them too); cutting them keeps big-endian
        signals, which are counted from the end of the payload, where the DBC puts them.

        Raises:
            FrameError: when the data is shorter than the message (reason ``wrong_length``).
        """
        self.check_length(data)
        return data[: self.length] if len(data) > self.length else data

    def decode(self, data: bytes | bytearray) -> dict[str, PhysicalValue]:
        """Physical values of every signal of the active multiplexer branches, by signal name.

        Raises:
            FrameError: when the payload is shorter than the message (``wrong_length``) or a multiplexer value
                selects no branch (``unknown_multiplexer``).
        """
        values = self._decode_all(bytes(self.payload(data)))
        return {
            name: value for name, value in zip(self.signal_names, values, strict=True) if value is not None
        }

    def decode_labelled(self, data: bytes | bytearray) -> dict[str, PhysicalValue | str]:
        """Like :meth:`decode`, with choice labels in place of enumerated raw values (as cantools reports them)."""
        values = self._decode_all(bytes(self.payload(data)))
        result: dict[str, PhysicalValue | str] = {}
        for signal, value in zip(self.signals, values, strict=True):
            if value is None:
                continue
            if signal.choices:
                label = signal.choices.get(int(_raw_of(signal, value)))
                if label is not None:
                    result[signal.name] = label
                    continue
            result[signal.name] = value
        return result

    def encode(self, values: Mapping[str, PhysicalValue], base: bytes | bytearray | None = None) -> bytes:
        """Encode physical values into a payload.

        Signals not named in ``values`` keep their bits from ``base`` (or zero). Signals of inactive multiplexer
        branches are left alone.

        Raises:
            KeyError: when a name is not a signal of this message.
            ValueError: when a value does not fit its signal.
        """
        total_bits = 8 * self.length
        little = int.from_bytes(bytes(base[: self.length]), "little") if base else 0
        for name, value in values.items():
            signal = self._by_name.get(name)
            if signal is None:
                raise KeyError(f"message {self.name} has no signal {name!r}")
            raw = signal.to_raw(value)
            shift = signal.shift(total_bits)
            if signal.little_endian:
                little = (little & ~(signal.mask << shift)) | (raw << shift)
            else:
                big = int.from_bytes(little.to_bytes(self.length, "little"), "big")
                big = (big & ~(signal.mask << shift)) | (raw << shift)
                little = int.from_bytes(big.to_bytes(self.length, "big"), "little")
        return little.to_bytes(self.length, "little")


def _raw_of(signal: SignalLayout, value: PhysicalValue) -> PhysicalValue:
    """Inverse of the linear conversion without rounding to bits (to look up choice labels)."""
    if signal.conversion == "identity":
        return value
    return round((value - signal.offset) / signal.scale)


def _multiplexers_first(signals: Sequence[SignalLayout]) -> list[SignalLayout]:
    by_name = {signal.name: signal for signal in signals}
    ordered: list[SignalLayout] = []
    placed: set[str] = set()

    def place(signal: SignalLayout, trail: frozenset[str]) -> None:
        if signal.name in placed or signal.name in trail:
            return
        parent = by_name.get(signal.multiplexer) if signal.multiplexer else None
        if parent is not None:
            place(parent, trail | {signal.name})
        placed.add(signal.name)
        ordered.append(signal)

    for signal in signals:
        place(signal, frozenset())
    return ordered


def _selectable(signals: Sequence[SignalLayout], total_bits: int) -> set[str]:
    """The signals a frame can decode into: they fit, and their multiplexer is a selectable multiplexer.

    ``signals`` has multiplexers before what they select, so one pass settles every signal.
    """
    by_name = {signal.name: signal for signal in signals}
    selected: set[str] = set()
    for signal in signals:
        if not signal.fits(total_bits):
            continue
        if signal.multiplexer is not None:
            parent = by_name.get(signal.multiplexer)
            if parent is None or not parent.is_multiplexer or parent.name not in selected:
                continue
            if not signal.multiplexer_ids:
                continue
        selected.add(signal.name)
    return selected


def _unknown_multiplexer(codec: MessageCodec, multiplexer: str, value: PhysicalValue) -> FrameError:
    known = ", ".join(str(v) for v in sorted(codec.multiplexer_values[multiplexer]))
    return FrameError(
        "unknown_multiplexer",
        f"{codec.name} (0x{codec.frame_id:X}): multiplexer {multiplexer} = {value} selects no branch; "
        f"expected one of {known}",
    )


def _compile(codec: MessageCodec, signals: Sequence[SignalLayout], wanted: Sequence[str]) -> DecodeFunction:
    """Generate the source of a decoder for ``signals`` and return the compiled function."""
    message = codec.name
    total_bits = 8 * codec.length
    namespace: dict[str, Any] = {
        "_unpack": _float_from_bits,
        "_codec": codec,
        "_unknown": _unknown_multiplexer,
    }
    lines = [f"def decode(data, _unpack=_unpack):  # {message}"]
    if any(s.little_endian for s in signals):
        lines.append("    le = int.from_bytes(data, 'little')")
    if any(not s.little_endian for s in signals):
        lines.append("    be = int.from_bytes(data, 'big')")
    variables: dict[str, str] = {}
    for index, signal in enumerate(signals):
        source = "le" if signal.little_endian else "be"
        shift = signal.shift(total_bits)
        raw = f"(({source} >> {shift}) & {signal.mask:#x})" if shift else f"({source} & {signal.mask:#x})"
        value = _value_expression(signal, raw)
        name = f"v{index}"
        parent = variables.get(signal.multiplexer) if signal.multiplexer is not None else None
        if parent is None:
            lines.append(f"    {name} = {value}")
        else:
            # Like cantools, the multiplexer's decoded value selects the branch; an inactive parent branch
            # deactivates everything below it (extended multiplexing, SG_MUL_VAL_).
            ids = tuple(sorted(set(signal.multiplexer_ids)))
            lines.append(f"    {name} = ({value}) if {parent} is not None and {parent} in {ids!r} else None")
        variables[signal.name] = name
        known = codec.multiplexer_values.get(signal.name)
        if known:
            # A frozenset from the namespace: a multiplexer may have thousands of values.
            namespace[f"_known{index}"] = known
            lines.append(
                f"    if {name} is not None and {name} not in _known{index}: "
                f"raise _unknown(_codec, {signal.name!r}, {name})"
            )
    results = ", ".join(variables[n] for n in wanted)
    lines.append(f"    return ({results}{',' if len(wanted) == 1 else ''})")
    exec(compile("\n".join(lines), f"<sdv decoder {message}>", "exec"), namespace)  # noqa: S102 - generated above
    function: DecodeFunction = namespace["decode"]
    return function


def _value_expression(signal: SignalLayout, raw: str) -> str:
    if signal.is_float:
        number = f"_unpack({raw}, {signal.length})"
    elif signal.is_signed:
        sign = 1 << (signal.length - 1)
        number = f"(({raw} ^ {sign:#x}) - {sign:#x})"
    else:
        number = raw
    kind = signal.conversion
    if kind == "identity":
        return number
    if kind == "integer":
        return f"({number} * {int(signal.scale)!r} + {int(signal.offset)!r})"
    return f"({number} * {_literal(signal.scale)} + {_literal(signal.offset)})"


def _literal(number: int | float) -> str:
    # A DBC factor such as 1e400 reads as infinity, whose repr is no Python literal.
    if isinstance(number, float) and not math.isfinite(number):
        return f"float({str(number)!r})"
    return repr(number)
