"""Hostile DBC files: declared sizes are bounded before any work is done per bit, byte or digit."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import can
import pytest

from sdv.errors import DbcError
from sdv.hal.codec_cantools import codec_from_cantools
from sdv.hal.dbc import MAX_DBC_BYTES, load_dbc
from tests.bounded_process import run_bounded, sdv_bounded

HEADER = 'VERSION ""\nNS_ :\nBS_:\nBU_: ECU\n'
FILE = "hostile.dbc"
# The six-line DBC of a ten-million-bit signal: building an entry per declared bit took gigabytes.
BOMB = HEADER + 'BO_ 100 Msg: 8 ECU\n SG_ Huge : 0|10000000@1+ (1,0) [0|0] "" ECU\n'


@dataclass(frozen=True)
class Dropped:
    id: str
    signal_line: str
    bits: int


DROPPED = [
    Dropped("zero_bits", ' SG_ Sig : 0|0@1+ (1,0) [0|0] "" ECU', 0),
    Dropped("65_bits_in_a_64_byte_message", ' SG_ Sig : 0|65@1+ (1,0) [0|0] "" ECU', 65),
    Dropped("100000_bits_in_8_bytes", ' SG_ Sig : 0|100000@1+ (1,0) [0|0] "" ECU', 100_000),
    Dropped("big_endian_100000_bits", ' SG_ Sig : 7|100000@0+ (1,0) [0|0] "" ECU', 100_000),
    Dropped("multiplexed_long_signal", ' SG_ Sig m1 : 8|4096@1+ (1,0) [0|0] "" ECU', 4096),
    # Found by tests/fuzz: cantools reads a signed length, the check read only unsigned digits.
    Dropped("length_with_a_plus_sign", ' SG_ Sig : 0|+10000000@1+ (1,0) [0|0] "" ECU', 10_000_000),
]


@pytest.mark.parametrize("case", DROPPED, ids=[case.id for case in DROPPED])
def test_signal_of_impossible_length_is_dropped_with_a_warning(case: Dropped) -> None:
    text = (
        HEADER
        + "BO_ 100 Msg: 64 ECU\n"
        + ' SG_ Mux M : 0|8@1+ (1,0) [0|255] "" ECU\n'
        + case.signal_line
        + "\n"
        + 'VAL_ 100 Sig 0 "Off" ;\n'
    )
    loaded = load_dbc(FILE, text=text)
    message = loaded.database.get_message_by_name("Msg")
    assert [signal.name for signal in message.signals] == ["Mux"]
    dropped, value_table = loaded.warnings
    assert (dropped.file, dropped.location) == (FILE, "line 7")
    for part in ("signal Sig", "message Msg", f"{case.bits} bits long", "expected 1 to 64 bits", "dropped"):
        assert part in dropped.message, dropped.message
    # What referred to the dropped signal goes with it, as for any signal the message does not have.
    assert value_table.location == "line 8" and "Sig" in value_table.message
    assert codec_from_cantools(message).decode(bytes(64)) == {"Mux": 0}


@dataclass(frozen=True)
class Refused:
    id: str
    body: str
    line: int
    says: tuple[str, ...]


REFUSED = [
    Refused(
        "start_bit_of_5000_digits",
        "BO_ 100 Msg: 8 ECU\n SG_ Sig : " + "9" * 5000 + '|8@1+ (1,0) [0|0] "" ECU\n',
        6,
        ("number of 5000 digits", "expected at most 100 digits"),
    ),
    Refused(
        "frame_id_of_5000_digits",
        "BO_ " + "1" * 5000 + ' Msg: 8 ECU\n SG_ Sig : 0|8@1+ (1,0) [0|0] "" ECU\n',
        5,
        ("number of 5000 digits",),
    ),
    Refused(
        "multiplexer_value_of_5000_digits",
        'BO_ 100 Msg: 8 ECU\n SG_ Mux M : 0|8@1+ (1,0) [0|0] "" ECU\n'
        " SG_ Sig m" + "7" * 5000 + ' : 8|8@1+ (1,0) [0|0] "" ECU\n',
        7,
        ("number of 5000 digits",),
    ),
    Refused(
        "maximum_of_5000_digits",
        "BO_ 100 Msg: 8 ECU\n SG_ Sig : 0|8@1+ (1,0) [0|" + "9" * 5000 + '] "" ECU\n',
        6,
        ("number of 5000 digits",),
    ),
    Refused(
        "message_of_ten_million_bytes",
        'BO_ 100 Msg: 10000000 ECU\n SG_ Sig : 0|8@1+ (1,0) [0|0] "" ECU\n',
        5,
        ("message Msg is 10000000 bytes long", "expected 0 to 64 bytes"),
    ),
    Refused(
        # Found by tests/fuzz: a negative length reached the codec, which allocated a payload of -1 bytes.
        "negative_message_length",
        'BO_ 100 Msg: -1 ECU\n SG_ Sig : 0|8@1+ (1,0) [0|0] "" ECU\n',
        5,
        ("message Msg is -1 bytes long", "expected 0 to 64 bytes"),
    ),
    Refused(
        # cantools builds a multiplexed message's codec in time quadratic in its signals.
        "more_than_1024_signals_in_a_message",
        'BO_ 100 Msg: 8 ECU\n SG_ Mux M : 0|8@1+ (1,0) [0|0] "" ECU\n'
        + "".join(f' SG_ S{index} m{index} : 8|8@1+ (1,0) [0|0] "" ECU\n' for index in range(1100)),
        7 + 1023,  # the 1,025th signal: Mux, then S0 to S1022
        ("message Msg (line 5) has more than 1024 signals", "expected at most 1024"),
    ),
    Refused(
        "float_of_16_bits",
        'BO_ 100 Msg: 8 ECU\n SG_ Sig : 0|16@1+ (1,0) [0|0] "" ECU\nSIG_VALTYPE_ 100 Sig : 1;\n',
        7,
        ("signal Sig of message Msg (line 6) is 16 bits long", "IEEE float of 32 bits"),
    ),
    Refused(
        "double_of_32_bits",
        'BO_ 100 Msg: 8 ECU\n SG_ Sig : 0|32@1+ (1,0) [0|0] "" ECU\nSIG_VALTYPE_ 100 Sig : 2;\n',
        7,
        ("is 32 bits long", "IEEE float of 64 bits"),
    ),
]


@pytest.mark.parametrize("case", REFUSED, ids=[case.id for case in REFUSED])
def test_impossible_sizes_are_refused_naming_file_and_line(case: Refused) -> None:
    with pytest.raises(DbcError) as raised:
        load_dbc(FILE, text=HEADER + case.body)
    (problem,) = raised.value.problems
    assert (problem.file, problem.location) == (FILE, f"line {case.line}")
    for part in case.says:
        assert part in problem.message, problem.message


def test_thousands_of_overlapping_signals_cost_a_bounded_warning_each() -> None:
    # Each signal was compared with every earlier one on each of its bits, and the names listed in full:
    # 4,000 one-bit signals on bit 0 took minutes. Each warning now names at most five.
    body = "".join(f' SG_ S{index} : 0|1@1+ (1,0) [0|0] "" ECU\n' for index in range(1000))
    body += ' SG_ Mux M : 1|7@1+ (1,0) [0|0] "" ECU\n'
    loaded = load_dbc(FILE, text=HEADER + "BO_ 100 Msg: 8 ECU\n" + body)
    assert len(loaded.warnings) == 999
    assert loaded.warnings[0].message == "signal S1 of message Msg overlaps signal S0; kept both as written"
    assert loaded.warnings[-1].message == (
        "signal S999 of message Msg overlaps signal S0, S1, S2, S3, S4 and more; kept both as written"
    )


def test_a_file_larger_than_the_bound_is_refused_before_it_is_parsed(tmp_path: Path) -> None:
    path = tmp_path / "large.dbc"
    path.write_bytes(BOMB.encode() + b" " * MAX_DBC_BYTES)
    with pytest.raises(DbcError) as raised:
        load_dbc(path)
    (problem,) = raised.value.problems
    assert (problem.file, problem.location) == (str(path), "file")
    assert f"larger than {MAX_DBC_BYTES} bytes" in problem.message


def test_an_infinite_factor_decodes_like_cantools_instead_of_failing_to_compile() -> None:
    loaded = load_dbc(FILE, text=HEADER + 'BO_ 100 Msg: 8 ECU\n SG_ Sig : 0|8@1+ (1e400,0) [0|0] "" ECU\n')
    message = loaded.database.get_message_by_name("Msg")
    assert codec_from_cantools(message).decode(b"\x01" + bytes(7)) == {"Sig": float("inf")}


def test_the_ten_million_bit_signal_loads_within_fixed_memory(tmp_path: Path) -> None:
    path = tmp_path / "bomb.dbc"
    path.write_text(BOMB)
    script = (
        "import sys; from sdv.hal.dbc import MAX_DBC_BYTES, load_dbc; "
        "loaded = load_dbc(sys.argv[1]); print([s.name for m in loaded.database.messages for s in m.signals])"
    )
    result = run_bounded(["-c", script, str(path)])
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
    (warning,) = result.stderr.strip().splitlines()
    assert f"{path}: line 6: signal Huge of message Msg is 10000000 bits long" in warning


@pytest.fixture
def bomb_profile(tmp_path: Path) -> Path:
    (tmp_path / "bomb.dbc").write_text(BOMB)
    profile = tmp_path / "bomb.yaml"
    profile.write_text(
        "name: bomb\n"
        "buses:\n  - {name: body, interface: virtual, channel: body, dbc: [bomb.dbc]}\n"
        "signals:\n"
        "  - {path: Vehicle.Speed, kind: sensor, datatype: float,\n"
        "     source: {bus: body, message: Msg, signal: Huge}}\n"
    )
    return profile


def test_profile_check_of_the_bomb_names_the_dropped_signal(bomb_profile: Path) -> None:
    result = sdv_bounded("profile", "check", str(bomb_profile))
    assert "Traceback" not in result.stderr
    assert result.returncode == 1, result.stderr  # 1: the profile is refused
    warning, summary, problem = result.stderr.strip().splitlines()
    assert "bomb.dbc: line 6: signal Huge of message Msg is 10000000 bits long" in warning
    assert summary.endswith("1 problem:")
    assert f"{bomb_profile}: line 6: signals[0].source.signal: message Msg has no signal 'Huge'" in problem


def test_decode_with_the_bomb_reads_the_recording_without_the_signal(bomb_profile: Path) -> None:
    log = bomb_profile.parent / "one.log"
    with can.CanutilsLogWriter(str(log)) as writer:
        writer.on_message_received(
            can.Message(timestamp=1.0, arbitration_id=100, data=bytes(8), channel="can0")
        )
    result = sdv_bounded("decode", "--dbc", str(bomb_profile.parent / "bomb.dbc"), "--log", str(log))
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    warning, *_, summary = result.stderr.strip().splitlines()
    assert "signal Huge of message Msg is 10000000 bits long" in warning
    assert summary.startswith("1 frames")


def test_decode_with_a_refused_dbc_is_one_error(tmp_path: Path) -> None:
    path = tmp_path / "long.dbc"
    path.write_text(HEADER + 'BO_ 100 Msg: 10000000 ECU\n SG_ Sig : 0|8@1+ (1,0) [0|0] "" ECU\n')
    log = tmp_path / "one.log"
    log.write_text("(1.0) can0 064#00\n")
    result = sdv_bounded("decode", "--dbc", str(path), "--log", str(log))
    assert "Traceback" not in result.stderr
    assert result.returncode == 2
    assert f"{path}: line 5: message Msg is 10000000 bytes long" in result.stderr
