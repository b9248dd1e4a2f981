"""The compiled CAN codec: round trips, bit-for-bit agreement with cantools, multiplexing and errors."""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

import cantools
import pytest
from cantools.database.can import Message, Signal
from cantools.database.conversion import BaseConversion
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from sdv.errors import FrameError
from sdv.hal.codec import MessageCodec, SignalLayout
from sdv.hal.codec_cantools import codec_from_cantools
from sdv.hal.dbc import load_dbc

CLASSIC_LENGTHS = list(range(1, 9))
FD_LENGTHS = [12, 16, 20, 24, 32, 48, 64]
INTEGER_CONVERSIONS = [(1, 0), (2, 0), (1, -40), (3, 7), (-2, 100), (10, -1000), (2.0, 5.0)]
FRACTIONAL_CONVERSIONS = [
    (0.1, 0),
    (0.5, -40),
    (0.25, 0.5),
    (0.01, -273.15),
    (0.001, 0),
    (1 / 3, 0),
    (0.0625, -100),
    (2.5, 1.5),
    (-0.5, 0),
    (1, 0.5),
]


@dataclass(frozen=True)
class Layout:
    length: int
    signals: tuple[SignalLayout, ...]

    def codec(self) -> MessageCodec:
        return MessageCodec("Random", 0x123, False, self.length, self.signals, is_fd=self.length > 8)

    def cantools_message(self) -> Message:
        return Message(
            frame_id=0x123,
            name="Random",
            length=self.length,
            signals=[to_cantools_signal(s) for s in self.signals],
            is_fd=self.length > 8,
            strict=True,
        )


def to_cantools_signal(layout: SignalLayout) -> Signal:
    return Signal(
        layout.name,
        layout.start,
        layout.length,
        byte_order="little_endian" if layout.little_endian else "big_endian",
        is_signed=layout.is_signed,
        conversion=BaseConversion.factory(
            scale=layout.scale,
            offset=layout.offset,
            choices=dict(layout.choices) or None,
            is_float=layout.is_float,
        ),
        is_multiplexer=layout.is_multiplexer,
        multiplexer_ids=list(layout.multiplexer_ids) or None,
        multiplexer_signal=layout.multiplexer,
    )


def dbc_bits(start: int, length: int, little_endian: bool) -> list[int]:
    """DBC bit numbers (byte * 8 + bit in byte) a signal occupies, computed from the DBC definition."""
    if little_endian:
        return list(range(start, start + length))
    bits = []
    position = start
    for _ in range(length):
        bits.append(position)
        position = position + 15 if position % 8 == 0 else position - 1
    return bits


@st.composite
def layouts(draw: st.DrawFn, *, max_signals: int = 8, lossless: bool = False) -> Layout:
    length = draw(st.sampled_from(CLASSIC_LENGTHS + FD_LENGTHS))
    total_bits = 8 * length
    occupied: set[int] = set()
    signals: list[SignalLayout] = []
    for index in range(draw(st.integers(1, max_signals))):
        little_endian = draw(st.booleans())
        is_float = draw(st.integers(0, 5)) == 0
        if is_float:
            is_signed = False
            bits = draw(st.sampled_from([32, 64]))
            # A scaled float does not always survive the way back (rounding, subnormals, overflow).
            scale, offset = (1, 0) if lossless else draw(st.sampled_from([(1, 0), (2, 0), (0.5, -1.5)]))
        else:
            is_signed = draw(st.booleans())
            lengths = st.integers(1, 32) if is_signed else st.one_of(st.integers(1, 32), st.just(64))
            bits = draw(lengths)
            if bits > 32:
                scale, offset = draw(st.sampled_from(INTEGER_CONVERSIONS))
            else:
                scale, offset = draw(st.sampled_from(INTEGER_CONVERSIONS + FRACTIONAL_CONVERSIONS))
        if bits > total_bits:
            continue
        # Position of the first bit on the wire (big-endian) or of the least significant bit (little-endian),
        # counted linearly; the DBC start bit follows from it.
        linear = draw(st.integers(0, total_bits - bits))
        start = linear if little_endian else (linear // 8) * 8 + 7 - linear % 8
        covered = dbc_bits(start, bits, little_endian)
        assert max(covered) < total_bits
        if occupied.intersection(covered):
            continue
        occupied.update(covered)
        signals.append(
            SignalLayout(
                name=f"S{index}",
                start=start,
                length=bits,
                little_endian=little_endian,
                is_signed=is_signed,
                is_float=is_float,
                scale=scale,
                offset=offset,
            )
        )
    assume(signals)
    return Layout(length, tuple(signals))


def raw_values(layout: Layout) -> st.SearchStrategy[dict[str, int]]:
    def one(signal: SignalLayout) -> st.SearchStrategy[int]:
        values = st.integers(0, signal.mask)
        if signal.is_float:
            return values.filter(lambda raw: not math.isnan(signal.to_physical(raw)))
        return values

    return st.fixed_dictionaries({s.name: one(s) for s in layout.signals})


def same(left: object, right: object) -> bool:
    """Equal value and equal type (NaN equals NaN)."""
    if type(left) is not type(right):
        return False
    if isinstance(left, float) and isinstance(right, float) and math.isnan(left) and math.isnan(right):
        return True
    return left == right


def assert_same_values(got: dict[str, object], expected: dict[str, object]) -> None:
    assert set(got) == set(expected)
    for name, value in expected.items():
        assert same(got[name], value), (name, got[name], value)


def bits_of(data: bytes, layout: SignalLayout) -> int:
    """The raw bit field of a signal, read bit by bit along its DBC definition."""
    raw = 0
    for bit in dbc_bits(layout.start, layout.length, layout.little_endian):
        value = (data[bit // 8] >> (bit % 8)) & 1
        if layout.little_endian:
            raw |= value << (bit - layout.start)
        else:
            raw = (raw << 1) | value
    return raw


SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --- round trips and agreement with cantools -------------------------------------------------------------------


@SETTINGS
@given(data=st.data())
def test_encode_decode_round_trip(data: st.DataObject) -> None:
    layout = data.draw(layouts(lossless=True))
    raws = data.draw(raw_values(layout))
    codec = layout.codec()
    physical = {s.name: s.to_physical(raws[s.name]) for s in layout.signals}

    payload = codec.encode(physical)

    assert len(payload) == layout.length
    for signal in layout.signals:
        assert bits_of(payload, signal) == raws[signal.name], signal
    assert_same_values(codec.decode(payload), physical)


@SETTINGS
@given(data=st.data())
def test_encode_matches_cantools_bit_for_bit(data: st.DataObject) -> None:
    layout = data.draw(layouts(lossless=True))
    raws = data.draw(raw_values(layout))
    physical = {s.name: s.to_physical(raws[s.name]) for s in layout.signals}
    base = data.draw(st.binary(min_size=layout.length, max_size=layout.length))

    ours = layout.codec().encode(physical)
    theirs = layout.cantools_message().encode(physical, strict=False)

    assert ours == theirs
    # Bits outside every signal come from the base payload; the signals' bits are replaced.
    over_base = layout.codec().encode(physical, base)
    assert over_base == layout.codec().encode(physical, bytearray(base))
    covered = {bit for s in layout.signals for bit in dbc_bits(s.start, s.length, s.little_endian)}
    for bit in range(8 * layout.length):
        expected = base if bit not in covered else ours
        assert (over_base[bit // 8] >> (bit % 8)) & 1 == (expected[bit // 8] >> (bit % 8)) & 1, bit


@SETTINGS
@given(data=st.data())
def test_decode_matches_cantools_on_random_payloads(data: st.DataObject) -> None:
    layout = data.draw(layouts())
    payload = data.draw(st.binary(min_size=layout.length, max_size=layout.length))

    expected = layout.cantools_message().decode(payload)

    assert_same_values(layout.codec().decode(payload), expected)
    # The layout's own conversion gives the same physical value from the raw bit field.
    for signal in layout.signals:
        assert same(signal.to_physical(bits_of(payload, signal)), expected[signal.name]), signal


@pytest.mark.parametrize(
    ("scale", "offset", "expected_type"),
    [(1, 0, int), (2, 0, int), (1, -40, int), (2.0, 3.0, int), (0.5, 0, float), (1, 0.5, float)],
)
def test_integer_signals_keep_python_int_for_integral_conversions(
    scale: float, offset: float, expected_type: type
) -> None:
    layout = Layout(2, (SignalLayout("X", 0, 12, scale=scale, offset=offset),))
    payload = bytes([0x34, 0x02])

    value = layout.codec().decode(payload)["X"]

    assert type(value) is expected_type
    assert value == 0x234 * scale + offset
    assert same(value, layout.cantools_message().decode(payload)["X"])


def test_float_signals_decode_ieee_values() -> None:
    signals = (
        SignalLayout("F32", 0, 32, is_float=True),
        SignalLayout("F64", 32, 64, is_float=True, scale=2),
        SignalLayout("BE32", 103, 32, little_endian=False, is_float=True),
    )
    codec = MessageCodec("Floats", 1, False, 16, signals, is_fd=True)
    payload = struct.pack("<f", 1.5) + struct.pack("<d", -0.25) + struct.pack(">f", 3.0)

    values = codec.decode(payload)

    assert values == {"F32": 1.5, "F64": -0.5, "BE32": 3.0}
    assert all(type(v) is float for v in values.values())
    assert codec.encode(values) == payload


@pytest.mark.parametrize("value", [(1 << 53) + 1, (1 << 64) - 1])
def test_64_bit_values_encode_exactly_beyond_float_precision(value: int) -> None:
    codec = MessageCodec("Wide", 1, False, 8, [SignalLayout("X", 0, 64)])

    payload = codec.encode({"X": value})

    assert payload == value.to_bytes(8, "little")
    assert codec.decode(payload) == {"X": value}


@pytest.mark.parametrize(("scale", "offset", "raw"), [(3, 7, (1 << 60) + 1), (-2, 100, (1 << 53) + 1)])
def test_64_bit_integer_conversion_is_exact(scale: int, offset: int, raw: int) -> None:
    codec = MessageCodec("Wide", 1, False, 8, [SignalLayout("Y", 0, 64, scale=scale, offset=offset)])
    value = raw * scale + offset

    assert codec.decode(codec.encode({"Y": value})) == {"Y": value}


# --- multiplexing ----------------------------------------------------------------------------------------------


def simple_mux() -> MessageCodec:
    return MessageCodec(
        "Mux",
        0x200,
        False,
        8,
        [
            SignalLayout("A", 8, 8, multiplexer="Sel", multiplexer_ids=(0,)),
            SignalLayout("Sel", 0, 8, is_multiplexer=True),
            SignalLayout("B", 8, 16, is_signed=True, multiplexer="Sel", multiplexer_ids=(1, 3)),
            SignalLayout("C", 8, 8, scale=0.5, multiplexer="Sel", multiplexer_ids=(2,)),
            SignalLayout("Always", 56, 8, choices={5: "five"}),
        ],
    )


def test_simple_multiplexing_decodes_only_the_active_branch() -> None:
    codec = simple_mux()

    assert codec.decode(bytes([0, 0x10, 0xFF, 0, 0, 0, 0, 5])) == {"Sel": 0, "A": 0x10, "Always": 5}
    assert codec.decode(bytes([1, 0x10, 0xFF, 0, 0, 0, 0, 5])) == {"Sel": 1, "B": -240, "Always": 5}
    assert codec.decode(bytes([3, 0x10, 0x00, 0, 0, 0, 0, 5])) == {"Sel": 3, "B": 0x10, "Always": 5}
    assert codec.decode(bytes([2, 0x10, 0xFF, 0, 0, 0, 0, 5])) == {"Sel": 2, "C": 8.0, "Always": 5}
    # Multiplexers come first whatever order the signals were given in.
    assert codec.signal_names.index("Sel") < codec.signal_names.index("A")


def test_mux_value_without_branch_is_a_bad_frame() -> None:
    # As cantools: a multiplexer value no signal has leaves the frame's meaning unknown.
    codec = simple_mux()
    payload = bytes([9, 0x10, 0xFF, 0, 0, 0, 0, 5])

    for decode in (codec.decode, codec.decode_labelled, codec.compile_decoder(["Always"])):
        with pytest.raises(FrameError) as raised:
            decode(payload)
        assert raised.value.reason == "unknown_multiplexer"
        assert "multiplexer Sel = 9 selects no branch; expected one of 0, 1, 2, 3" in str(raised.value)


def test_mux_value_with_a_label_but_no_signal_selects_an_empty_branch() -> None:
    # Tesla's DBCs name multiplexer values that carry no signal yet; cantools counts a label as a branch.
    codec = MessageCodec(
        "Labelled",
        1,
        False,
        2,
        [
            SignalLayout("Sel", 0, 8, is_multiplexer=True, choices={0: "first", 7: "reserved"}),
            SignalLayout("A", 8, 8, multiplexer="Sel", multiplexer_ids=(0,)),
        ],
    )

    assert codec.decode_labelled(bytes([7, 3])) == {"Sel": "reserved"}
    assert codec.decode_labelled(bytes([0, 3])) == {"Sel": "first", "A": 3}
    with pytest.raises(FrameError):
        codec.decode(bytes([1, 3]))


def test_signal_whose_multiplexer_is_no_multiplexer_is_never_decoded() -> None:
    # SG_MUL_VAL_ may name a signal that is not marked M: cantools never selects what it "selects".
    codec = MessageCodec(
        "Plain",
        1,
        False,
        2,
        [
            SignalLayout("Code", 6, 2),
            SignalLayout("Value", 0, 6, multiplexer="Code", multiplexer_ids=(0,)),
            SignalLayout("Orphan", 8, 8, multiplexer="Missing", multiplexer_ids=(0,)),
            SignalLayout("Other", 8, 8),
        ],
    )

    assert codec.decode(bytes([0, 9])) == {"Code": 0, "Other": 9}
    assert codec.skipped_signals == ("Value", "Orphan")
    assert not codec.has_signal("Value")


def test_bytes_past_the_length_are_cut_before_big_endian_signals_are_read() -> None:
    # A Motorola signal is counted from the payload's last bit: an uncut payload would shift it.
    codec = MessageCodec("Short", 1, False, 2, [SignalLayout("Be", 7, 16, little_endian=False)])

    assert codec.decode(bytes([0x12, 0x34, 0xAA, 0xBB])) == {"Be": 0x1234}
    assert codec.payload(bytearray(b"\x12\x34\xaa")) == bytearray(b"\x12\x34")


def test_encode_multiplexed_branch() -> None:
    codec = simple_mux()

    payload = codec.encode({"Sel": 1, "B": -2, "Always": 7})

    assert payload == bytes([1, 0xFE, 0xFF, 0, 0, 0, 0, 7])
    assert codec.decode(payload) == {"Sel": 1, "B": -2, "Always": 7}


EXTENDED_MUX_DBC = """VERSION ""

NS_ :

BS_:

BU_: ECU

BO_ 100 Ext: 8 ECU
 SG_ Top M : 0|4@1+ (1,0) [0|15] "" ECU
 SG_ Inner m1M : 4|4@1+ (1,0) [0|15] "" ECU
 SG_ LeafA m2 : 8|8@1+ (1,0) [0|255] "" ECU
 SG_ LeafB m3 : 8|8@1+ (0.5,0) [0|127.5] "" ECU
 SG_ Other m2 : 16|8@1+ (1,0) [0|255] "" ECU
 SG_ Plain : 56|8@1+ (1,0) [0|255] "" ECU

BO_ 2566844926 BigFd: 64 ECU
 SG_ Head : 0|12@1+ (1,0) [0|4095] "" ECU
 SG_ Tail : 503|16@0- (0.1,-5) [0|0] "" ECU

BA_DEF_ BO_ "VFrameFormat" ENUM "StandardCAN","ExtendedCAN","reserved","reserved","reserved","reserved","reserved","reserved","reserved","reserved","reserved","reserved","reserved","reserved","StandardCAN_FD","ExtendedCAN_FD";
BA_DEF_DEF_ "VFrameFormat" "StandardCAN";
BA_ "VFrameFormat" BO_ 2566844926 15;

VAL_ 100 Top 1 "inner" 2 "other" ;

SG_MUL_VAL_ 100 Inner Top 1-1;
SG_MUL_VAL_ 100 LeafA Inner 2-2, 5-6;
SG_MUL_VAL_ 100 LeafB Inner 3-3;
SG_MUL_VAL_ 100 Other Top 2-2;
"""


@pytest.fixture(scope="module")
def extended_dbc() -> cantools.database.can.Database:
    return load_dbc("extended.dbc", text=EXTENDED_MUX_DBC).database


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (bytes([0x21, 9, 7, 0, 0, 0, 0, 1]), {"Top": "inner", "Inner": 2, "LeafA": 9, "Plain": 1}),
        (bytes([0x61, 9, 7, 0, 0, 0, 0, 1]), {"Top": "inner", "Inner": 6, "LeafA": 9, "Plain": 1}),
        (bytes([0x31, 9, 7, 0, 0, 0, 0, 1]), {"Top": "inner", "Inner": 3, "LeafB": 4.5, "Plain": 1}),
        (bytes([0x32, 9, 7, 0, 0, 0, 0, 1]), {"Top": "other", "Other": 7, "Plain": 1}),
    ],
)
def test_extended_multiplexing(
    extended_dbc: cantools.database.can.Database, payload: bytes, expected: dict[str, object]
) -> None:
    message = extended_dbc.get_message_by_name("Ext")
    codec = codec_from_cantools(message)

    labelled = codec.decode_labelled(payload)

    assert_same_values(labelled, expected)
    assert codec.signal("LeafA").multiplexer == "Inner"
    assert codec.signal("LeafA").multiplexer_ids == (2, 5, 6)
    theirs = message.decode(payload)
    assert_same_values(labelled, {k: v if isinstance(v, int | float) else str(v) for k, v in theirs.items()})


@pytest.mark.parametrize("payload", [bytes([0x71, 9, 7, 0, 0, 0, 0, 1]), bytes([0x27, 9, 7, 0, 0, 0, 0, 1])])
def test_extended_multiplexing_refuses_values_without_branch_as_cantools_does(
    extended_dbc: cantools.database.can.Database, payload: bytes
) -> None:
    # 0x71: Inner = 7 (its branches are 2, 3, 5, 6); 0x27: Top = 7 (1 and 2).
    message = extended_dbc.get_message_by_name("Ext")

    with pytest.raises(FrameError) as raised:
        codec_from_cantools(message).decode_labelled(payload)
    assert raised.value.reason == "unknown_multiplexer"
    with pytest.raises(cantools.database.DecodeError):
        message.decode(payload)


def test_extended_mux_branch_follows_the_nested_multiplexer_value() -> None:
    # Inner selects LeafA only while Top selects Inner: with Top = 2 the Inner bits are not a multiplexer value.
    codec = MessageCodec(
        "Nested",
        1,
        False,
        2,
        [
            SignalLayout("Top", 0, 4, is_multiplexer=True),
            SignalLayout("Inner", 4, 4, is_multiplexer=True, multiplexer="Top", multiplexer_ids=(1,)),
            SignalLayout("Leaf", 8, 8, multiplexer="Inner", multiplexer_ids=(2,)),
            SignalLayout("Side", 8, 8, multiplexer="Top", multiplexer_ids=(2,)),
        ],
    )

    assert codec.decode(bytes([0x21, 5])) == {"Top": 1, "Inner": 2, "Leaf": 5}
    assert codec.decode(bytes([0x22, 5])) == {"Top": 2, "Side": 5}
    assert codec.compile_decoder(["Leaf"])(bytes([0x22, 5])) == (None,)
    assert codec.compile_decoder(["Leaf"])(bytes([0x21, 5])) == (5,)


# --- CAN FD and extended ids -----------------------------------------------------------------------------------


def test_can_fd_64_byte_message_with_extended_id(extended_dbc: cantools.database.can.Database) -> None:
    message = extended_dbc.get_message_by_name("BigFd")
    codec = codec_from_cantools(message)
    payload = bytearray(64)
    payload[0:2] = (0xABC).to_bytes(2, "little")
    payload[62:64] = (-1234 & 0xFFFF).to_bytes(2, "big")

    values = codec.decode(bytes(payload))

    assert codec.frame_id == 0x18FEF1FE
    assert codec.is_extended
    assert codec.is_fd
    assert codec.length == 64
    assert values["Head"] == 0xABC
    assert values["Tail"] == pytest.approx(-1234 * 0.1 - 5)
    assert_same_values(values, message.decode(bytes(payload)))
    assert codec.encode(values) == bytes(payload)


# --- errors and labels -----------------------------------------------------------------------------------------


def test_short_payload_raises_wrong_length() -> None:
    codec = simple_mux()

    with pytest.raises(FrameError) as raised:
        codec.check_length(bytes(7))
    assert raised.value.reason == "wrong_length"
    with pytest.raises(FrameError) as raised:
        codec.decode(bytes(3))
    assert raised.value.reason == "wrong_length"
    assert "Mux" in str(raised.value)
    with pytest.raises(FrameError):
        codec.decode_labelled(b"")
    codec.check_length(bytes(8))
    codec.check_length(bytes(12))  # longer payloads are accepted


@pytest.mark.parametrize(
    ("layout", "value"),
    [
        (SignalLayout("Speed", 0, 8), 256),
        (SignalLayout("Speed", 0, 8), -1),
        (SignalLayout("Speed", 0, 8, is_signed=True), 128),
        (SignalLayout("Speed", 0, 8, is_signed=True), -129),
        (SignalLayout("Speed", 0, 8, scale=0.5, offset=-10), 118),
        (SignalLayout("Speed", 0, 8, scale=0.5, offset=-10), -10.5),
        (SignalLayout("Speed", 0, 8, scale=0.5), math.inf),
    ],
)
def test_encode_out_of_range_names_the_signal(layout: SignalLayout, value: float) -> None:
    codec = MessageCodec("Msg", 1, False, 1, [layout])

    with pytest.raises(ValueError, match="Speed"):
        codec.encode({"Speed": value})


def test_encode_unknown_signal_raises_key_error() -> None:
    with pytest.raises(KeyError, match="Nope"):
        simple_mux().encode({"Nope": 1})


def test_decode_labelled_returns_choice_labels() -> None:
    codec = MessageCodec(
        "Gear",
        1,
        False,
        2,
        [
            SignalLayout("Gear", 0, 4, choices={0: "P", 1: "R", 2: "N", 3: "D"}),
            SignalLayout("Temp", 8, 8, scale=0.5, offset=-40, choices={255: "invalid"}),
        ],
    )

    assert codec.decode_labelled(bytes([3, 255])) == {"Gear": "D", "Temp": "invalid"}
    assert codec.decode_labelled(bytes([9, 100])) == {"Gear": 9, "Temp": 10.0}
    assert codec.decode(bytes([3, 255])) == {"Gear": 3, "Temp": 87.5}


# --- compiled subsets ------------------------------------------------------------------------------------------


def test_compile_decoder_returns_requested_order() -> None:
    codec = simple_mux()
    payload = bytes([1, 0x10, 0x00, 0, 0, 0, 0, 5])

    assert codec.compile_decoder(["Always", "B", "Sel"])(payload) == (5, 0x10, 1)
    assert codec.compile_decoder(["B", "Always"])(payload) == (0x10, 5)
    assert codec.compile_decoder(["A", "C", "Always"])(payload) == (None, None, 5)
    assert codec.compile_decoder(["C"])(bytes([2, 0x10, 0, 0, 0, 0, 0, 0])) == (8.0,)
    assert codec.compile_decoder(["A"])(bytes([3, 0x10, 0, 0, 0, 0, 0, 0])) == (None,)


@SETTINGS
@given(data=st.data())
def test_compile_decoder_subset_agrees_with_decode(data: st.DataObject) -> None:
    layout = data.draw(layouts())
    codec = layout.codec()
    names = data.draw(st.lists(st.sampled_from(codec.signal_names), min_size=1, unique=True))
    payload = data.draw(st.binary(min_size=layout.length, max_size=layout.length))

    full = codec.decode(payload)
    subset = codec.compile_decoder(names)(payload)

    assert len(subset) == len(names)
    for name, value in zip(names, subset, strict=True):
        assert same(value, full[name]), name
