"""The tolerant DBC loader: one small DBC per deviation that cantools refuses, and the refusals of ours."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cantools
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sdv.errors import DbcError
from sdv.hal.dbc import LoadedDbc, load_dbc

HEADER = 'VERSION ""\n\nNS_ :\n    CM_\n    BA_DEF_\n    BA_\n    VAL_\n\nBS_:\n\nBU_: ECU GW\n\n'
FILE = "case.dbc"


def dbc(body: str) -> str:
    return HEADER + body


def line_with(text: str, snippet: str) -> int:
    """The 1-based line of the only line holding ``snippet``."""
    lines = [number for number, line in enumerate(text.splitlines(), 1) if snippet in line]
    assert len(lines) == 1, f"{snippet!r} is on lines {lines}"
    return lines[0]


def choices(loaded: LoadedDbc, message: str, signal: str) -> dict[int, str]:
    found = loaded.database.get_message_by_name(message).get_signal_by_name(signal).choices
    return {int(value): str(label) for value, label in (found or {}).items()}


def cantools_refuses(text: str, *, strict: bool = False) -> bool:
    try:
        cantools.database.load_string(text, "dbc", strict=strict)
    except Exception:
        return True
    return False


# -- repairs ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Repair:
    id: str
    body: str
    line_holding: str  # the warning must name the line holding this snippet
    warning_says: str
    check: Callable[[LoadedDbc], None]


def _nameless_signal_comment(loaded: LoadedDbc) -> None:
    message = loaded.database.get_message_by_name("GAS")
    assert message.comment is None
    assert message.get_signal_by_name("PEDAL").comment == "Accelerator pedal"


def _message_comment_without_bo(loaded: LoadedDbc) -> None:
    assert loaded.database.get_message_by_frame_id(145).comment == "Accelerator pedal on fuel cell cars"


def _unflagged_extended_id(loaded: LoadedDbc) -> None:
    message = loaded.database.get_message_by_name("BSM_LEFT")
    assert message.is_extended_frame
    assert message.frame_id == 0x62CC033
    # Every reference to the id followed it.
    assert message.comment == "Blind spot, left"
    assert message.cycle_time == 100
    assert choices(loaded, "BSM_LEFT", "DETECTED") == {1: "YES", 0: "NO"}
    assert message.senders == ["ECU", "GW"]


def _val_for_unknown_signal(loaded: LoadedDbc) -> None:
    assert choices(loaded, "GAS_REGEN", "GasRegenCmdActive") == {1: "ACTIVE", 0: "INACTIVE"}


def _val_for_unknown_message(loaded: LoadedDbc) -> None:
    assert [message.name for message in loaded.database.messages] == ["A"]


def _valtype_for_unknown_signal(loaded: LoadedDbc) -> None:
    assert not loaded.database.get_message_by_name("A").get_signal_by_name("X").is_float


def _bare_fraction(loaded: LoadedDbc) -> None:
    message = loaded.database.get_message_by_name("ENGINE")
    torque = message.get_signal_by_name("ENGINE_TORQ_MAX")
    assert (torque.scale, torque.offset) == (0.25, -500)
    trim = message.get_signal_by_name("TRIM")
    assert (trim.offset, trim.minimum) == (-0.5, -0.5)


def _digit_leading_message(loaded: LoadedDbc) -> None:
    # Parsed under a leading underscore, loaded under the name in the file.
    message = loaded.database.get_message_by_name("2017_5")
    assert message.frame_id == 1275
    assert message.comment == "Unknown, 2017 models"
    assert loaded.original_names == {"_2017_5": "2017_5"}
    assert (
        loaded.line_of("_2017_5")
        == loaded.line_of("2017_5")
        == line_with(loaded_text("digit_message"), "BO_ 1275 2017_5")
    )


def _digit_leading_signals(loaded: LoadedDbc) -> None:
    message = loaded.database.get_message_by_name("DAT_BSI")
    assert message.get_signal_by_name("0_COUNTER").comment == "Alive counter"
    assert choices(loaded, "DAT_BSI", "0_CHECKSUM") == {0: "ZERO"}
    assert loaded.original_names == {"_0_COUNTER": "0_COUNTER", "_0_CHECKSUM": "0_CHECKSUM"}
    decoded = message.decode(bytes([0, 0, 0, 0, 0x5A, 0, 0, 0]))
    assert isinstance(decoded, dict)
    assert decoded["0_COUNTER"] == 0xA
    assert "_0_COUNTER" not in decoded


def _digit_leading_name_taken(loaded: LoadedDbc) -> None:
    assert {message.name for message in loaded.database.messages} == {"2017_5", "_2017_5"}
    assert loaded.database.get_message_by_name("2017_5").frame_id == 1275
    assert loaded.database.get_message_by_name("_2017_5").frame_id == 1276
    assert loaded.original_names == {"__2017_5": "2017_5"}


def _missing_semicolon_before_bo(loaded: LoadedDbc) -> None:
    assert loaded.database.get_message_by_name("CLUSTER_F").frame_id == 1664


def _missing_semicolon_before_val(loaded: LoadedDbc) -> None:
    assert choices(loaded, "BSM", "LEFT") == {0: "NONE", 1: "OBJECT"}
    assert choices(loaded, "BSM", "RIGHT") == {0: "NONE"}


REPAIRS = [
    Repair(
        "nameless_signal_comment",
        'BO_ 304 GAS: 8 ECU\n SG_ PEDAL : 7|8@0+ (1,0) [0|255] "" GW\n\n'
        'CM_ SG_ 304 "Seems to be platform-agnostic";\nCM_ SG_ 304 PEDAL "Accelerator pedal";\n',
        'CM_ SG_ 304 "Seems',
        "no signal name",
        _nameless_signal_comment,
    ),
    Repair(
        "message_comment_without_bo",
        'BO_ 145 FCEV: 8 ECU\n SG_ ACCEL : 7|8@0+ (1,0) [0|255] "" GW\n\n'
        'CM_ 145 "Accelerator pedal on fuel cell cars";\n',
        "CM_ 145",
        "CM_ BO_ 145",
        _message_comment_without_bo,
    ),
    Repair(
        "unflagged_extended_id",
        'BO_ 103596083 BSM_LEFT: 8 ECU\n SG_ DETECTED : 7|1@0+ (1,0) [0|1] "" GW\n\n'
        'BO_TX_BU_ 103596083 : GW;\nCM_ BO_ 103596083 "Blind spot, left";\n'
        'BA_DEF_ BO_ "GenMsgCycleTime" INT 0 65535;\nBA_DEF_DEF_ "GenMsgCycleTime" 0;\n'
        'BA_ "GenMsgCycleTime" BO_ 103596083 100;\nVAL_ 103596083 DETECTED 1 "YES" 0 "NO";\n',
        "BO_ 103596083 BSM_LEFT",
        "marked it extended",
        _unflagged_extended_id,
    ),
    Repair(
        "val_for_unknown_signal",
        'BO_ 715 GAS_REGEN: 8 ECU\n SG_ GasRegenCmdActive : 7|1@0+ (1,0) [0|1] "" GW\n\n'
        'VAL_ 715 GasRegenCmdActive 1 "ACTIVE" 0 "INACTIVE";\n'
        'VAL_ 715 GasRegenCmdActiveInv 1 "ACTIVE" 0 "INACTIVE";\n',
        "GasRegenCmdActiveInv",
        "GasRegenCmdActiveInv, which message GAS_REGEN does not have",
        _val_for_unknown_signal,
    ),
    Repair(
        "val_for_unknown_message",
        'BO_ 100 A: 8 ECU\n SG_ X : 7|8@0+ (1,0) [0|255] "" GW\n\nVAL_ 999 GHOST 0 "OFF";\n',
        "VAL_ 999",
        "message id 999",
        _val_for_unknown_message,
    ),
    Repair(
        "sig_valtype_for_unknown_signal",
        'BO_ 100 A: 8 ECU\n SG_ X : 7|32@0+ (1,0) [0|0] "" GW\n\nSIG_VALTYPE_ 100 GHOST : 1;\n',
        "SIG_VALTYPE_",
        "signal GHOST",
        _valtype_for_unknown_signal,
    ),
    Repair(
        "bare_fraction",
        'BO_ 500 ENGINE: 8 ECU\n SG_ ENGINE_TORQ_MAX : 4|13@0+ (.25,-500) [-500|1547.5] "NM" GW\n'
        ' SG_ TRIM : 23|8@0+ (1,-.5) [-.5|254.5] "" GW\n',
        "ENGINE_TORQ_MAX",
        "number .25",
        _bare_fraction,
    ),
    Repair(
        "digit_message",
        'BO_ 1275 2017_5: 8 ECU\n SG_ NEW_SIGNAL_1 : 7|8@0+ (1,0) [0|255] "" GW\n\n'
        'CM_ BO_ 1275 "Unknown, 2017 models";\n',
        "BO_ 1275 2017_5",
        "identifier 2017_5 starts with a digit; parsed it as _2017_5, kept as written",
        _digit_leading_message,
    ),
    Repair(
        "digit_signals",
        'BO_ 264 DAT_BSI: 8 ECU\n SG_ 0_COUNTER : 35|4@0+ (1,0) [0|15] "" GW\n'
        ' SG_ 0_CHECKSUM : 39|4@0+ (1,0) [0|15] "" GW\n\n'
        'CM_ SG_ 264 0_COUNTER "Alive counter";\nVAL_ 264 0_CHECKSUM 0 "ZERO";\n',
        "SG_ 0_COUNTER :",
        "identifier 0_COUNTER starts with a digit; parsed it as _0_COUNTER, kept as written",
        _digit_leading_signals,
    ),
    Repair(
        "digit_name_taken",
        'BO_ 1275 2017_5: 8 ECU\n SG_ A : 7|8@0+ (1,0) [0|255] "" GW\n\n'
        'BO_ 1276 _2017_5: 8 ECU\n SG_ B : 7|8@0+ (1,0) [0|255] "" GW\n',
        "BO_ 1275",
        "parsed it as __2017_5, kept as written",
        _digit_leading_name_taken,
    ),
    Repair(
        "missing_semicolon_before_bo",
        'BO_ 791 OBJECT_11: 8 ECU\n SG_ ID : 5|6@0+ (1,0) [0|63] "" GW\n\n'
        'CM_ "Front target"\nBO_ 1664 CLUSTER_F: 8 ECU\n SG_ LONG_DIST : 7|13@1+ (0.03,0) [0|245.73] "m" GW\n',
        'CM_ "Front target"',
        "CM_ statement has no closing ';'; added one",
        _missing_semicolon_before_bo,
    ),
    Repair(
        "missing_semicolon_before_val",
        'BO_ 1143 BSM: 8 ECU\n SG_ LEFT : 7|2@0+ (1,0) [0|3] "" GW\n SG_ RIGHT : 15|2@0+ (1,0) [0|3] "" GW\n\n'
        'VAL_ 1143 LEFT 0 "NONE" 1 "OBJECT"\nVAL_ 1143 RIGHT 0 "NONE";\n',
        "VAL_ 1143 LEFT",
        "VAL_ statement has no closing ';'",
        _missing_semicolon_before_val,
    ),
]
_TEXTS = {repair.id: dbc(repair.body) for repair in REPAIRS}


def loaded_text(case_id: str) -> str:
    return _TEXTS[case_id]


@pytest.mark.parametrize("repair", REPAIRS, ids=[repair.id for repair in REPAIRS])
def test_repairs_what_cantools_refuses(repair: Repair) -> None:
    text = loaded_text(repair.id)
    assert cantools_refuses(text), "the case must show a deviation cantools refuses"
    loaded = load_dbc(FILE, text=text)
    repair.check(loaded)
    line = f"line {line_with(text, repair.line_holding)}"
    named = [warning for warning in loaded.warnings if warning.location == line]
    assert named, f"no warning on {line}: {loaded.warnings}"
    assert any(repair.warning_says in warning.message for warning in named), named
    assert all(warning.file == FILE for warning in loaded.warnings)


def test_repairs_combine_on_one_message() -> None:
    # "CM_ <id>" gains its BO_ and the id its extended flag: the comment must still reach the message.
    text = dbc(
        'BO_ 103596083 2BSM: 8 ECU\n SG_ 1ST : 7|1@0+ (.5,0) [0|.5] "" GW\n\n'
        'CM_ 103596083 "Blind spot"\nVAL_ 103596083 1ST 1 "YES" 0 "NO";\n'
    )
    loaded = load_dbc(FILE, text=text)
    message = loaded.database.get_message_by_name("2BSM")
    assert (message.frame_id, message.is_extended_frame, message.comment) == (0x62CC033, True, "Blind spot")
    signal = message.get_signal_by_name("1ST")
    assert (signal.scale, signal.maximum) == (0.5, 0.5)
    assert choices(loaded, "2BSM", "1ST") == {1: "YES", 0: "NO"}
    assert loaded.original_names == {"_2BSM": "2BSM", "_1ST": "1ST"}
    assert len(loaded.warnings) == 7


def test_warnings_are_logged_and_returned_in_line_order(caplog: pytest.LogCaptureFixture) -> None:
    text = dbc(
        'BO_ 500 ENGINE: 8 ECU\n SG_ TORQUE : 4|13@0+ (.25,-500) [-500|1547.5] "NM" GW\n\n'
        'CM_ SG_ 500 "nameless";\nVAL_ 500 GHOST 0 "OFF";\n'
    )
    with caplog.at_level(logging.WARNING, logger="sdv.hal.dbc"):
        loaded = load_dbc(FILE, text=text)
    lines = [int(warning.location.split()[1]) for warning in loaded.warnings]
    assert lines == sorted(lines) and len(lines) == 3
    assert [record.getMessage() for record in caplog.records] == [str(warning) for warning in loaded.warnings]


def test_overlapping_signals_load_with_a_warning_naming_message_and_signals() -> None:
    text = dbc(
        'BO_ 1087 EMS2: 8 ECU\n SG_ TQ_STND : 7|8@0+ (1,0) [0|255] "" GW\n'
        ' SG_ CAN_VERS : 3|4@0+ (1,0) [0|15] "" GW\n'
    )
    assert cantools_refuses(text, strict=True) and not cantools_refuses(text)
    loaded = load_dbc(FILE, text=text)
    (warning,) = loaded.warnings
    assert warning.location == f"line {line_with(text, 'CAN_VERS')}"
    assert all(name in warning.message for name in ("EMS2", "CAN_VERS", "TQ_STND"))


def test_signals_told_apart_by_multiplexer_value_do_not_overlap() -> None:
    text = dbc(
        'BO_ 200 MUXED: 8 ECU\n SG_ SEL M : 0|8@1+ (1,0) [0|255] "" GW\n'
        ' SG_ A m0 : 8|8@1+ (1,0) [0|255] "" GW\n SG_ B m1 : 8|8@1+ (1,0) [0|255] "" GW\n'
    )
    assert load_dbc(FILE, text=text).warnings == ()


def test_signal_beyond_the_message_length_is_a_warning() -> None:
    text = dbc('BO_ 200 SHORT: 2 ECU\n SG_ LATE : 16|8@1+ (1,0) [0|255] "" GW\n')
    (warning,) = load_dbc(FILE, text=text).warnings
    assert warning.location == f"line {line_with(text, 'LATE')}"
    assert "SHORT" in warning.message and "does not fit" in warning.message


def test_a_clean_file_loads_without_warnings_from_a_path(tmp_path: Path) -> None:
    path = tmp_path / "clean.dbc"
    text = dbc('BO_ 100 A: 8 ECU\n SG_ X : 7|8@0+ (1,0) [0|255] "°C" GW\n')
    path.write_bytes(text.encode("cp1252"))  # what Vector tools write
    loaded = load_dbc(path)
    assert loaded.path == str(path)
    assert loaded.warnings == ()
    assert loaded.database.get_message_by_name("A").get_signal_by_name("X").unit == "°C"
    assert loaded.line_of("A") == line_with(text, "BO_ 100") and loaded.line_of("B") is None


def test_demo_dbc_of_the_project_loads_cleanly() -> None:
    path = Path(__file__).parents[2] / "dbc" / "sdv_demo.dbc"
    assert load_dbc(path).warnings == ()  # the project ships it: a missing file is a failure, not a skip


# -- line numbers survive the repairs ----------------------------------------------------------------------------

_MIXED = [
    ("BO_ 500 ENGINE: 8 ECU", None),
    (' SG_ 0_COUNTER : 4|13@0+ (.25,-500) [-500|1547.5] "NM" GW', "0_COUNTER"),
    ("", None),
    ('CM_ SG_ 500 "a comment', None),
    ('on two lines";', None),
    ('CM_ "missing semicolon"', "missing semicolon"),
    ('VAL_ 500 GHOST 0 "OFF";', "GHOST"),
    ("BO_ 5000 LATE: 8 ECU", "LATE"),
    (' SG_ X : 7|8@0+ (1,0) [0|255] "" GW', None),
]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from(["", "// note", "   "]), min_size=len(_MIXED), max_size=len(_MIXED)))
def test_warning_lines_point_into_the_original_text(padding: list[str]) -> None:
    body = "".join(f"{line}\n{pad}\n" for (line, _), pad in zip(_MIXED, padding, strict=True))
    text = dbc(body)
    loaded = load_dbc(FILE, text=text)
    lines = text.splitlines()
    for marker in (marker for _, marker in _MIXED if marker):
        number = line_with(text, marker)
        assert any(warning.location == f"line {number}" for warning in loaded.warnings), (
            marker,
            lines[number - 1],
        )
    for warning in loaded.warnings:
        assert lines[int(warning.location.split()[1]) - 1].strip(), warning


# -- refusals -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    id: str
    body: str
    line_holding: str
    says: tuple[str, ...]
    names_line_holding: str | None = None  # the message must also name the line holding this snippet


REFUSALS = [
    Refusal(
        "bad_signal_length",
        'BO_ 100 MSG: 8 ECU\n SG_ A : 0|8@1+ (1,0) [0|255] "" GW\n SG_ B : 8|x@1+ (1,0) [0|255] "" GW\n',
        "SG_ B",
        ("unexpected 'x' at column 12", "expected SG_ <name>"),
    ),
    Refusal(
        "message_without_colon",
        'BO_ 100 MSG 8 ECU\n SG_ A : 0|8@1+ (1,0) [0|255] "" GW\n',
        "BO_ 100",
        ("unexpected '8'", "expected BO_ <id> <name>: <length> <sender>"),
    ),
    Refusal(
        "unknown_statement",
        'BO_ 100 MSG: 8 ECU\n SG_ A : 0|8@1+ (1,0) [0|255] "" GW\n\nFOO_ bar;\n',
        "FOO_",
        ("unexpected 'FOO_' at column 1", "expected a statement starting with a DBC keyword"),
    ),
    Refusal(
        # The error sits after a repair on the same line: the column is that of the original text.
        "error_on_a_repaired_line",
        'BO_ 100 MSG: 8 ECU\n SG_ 0_A : 0|8@1+ (.5,0) [0|255] "" GW ?\n',
        "SG_ 0_A",
        ("unexpected '?' at column 40",),
    ),
    Refusal(
        "id_wider_than_29_bits",
        'BO_ 1075054137 BDB1F01_14: 8 ECU\n SG_ A : 0|8@1+ (1,0) [0|255] "" GW\n',
        "BO_ 1075054137",
        (
            "message BDB1F01_14",
            "0x40140639",
            "wider than 29 bits",
            "expected an 11-bit standard id or a 29-bit",
        ),
    ),
    Refusal(
        "duplicate_id",
        'BO_ 100 FIRST: 8 ECU\n SG_ A : 0|8@1+ (1,0) [0|255] "" GW\n\n'
        'BO_ 100 SECOND: 8 ECU\n SG_ B : 0|8@1+ (1,0) [0|255] "" GW\n',
        "SECOND",
        ("message SECOND", "already used by message FIRST", "expected each frame id once"),
        "FIRST",
    ),
    Refusal(
        "duplicate_id_once_marked_extended",
        'BO_ 5000 FIRST: 8 ECU\n SG_ A : 0|8@1+ (1,0) [0|255] "" GW\n\n'
        'BO_ 2147488648 SECOND: 8 ECU\n SG_ B : 0|8@1+ (1,0) [0|255] "" GW\n',
        "FIRST",
        ("message FIRST", "message SECOND", "already has extended id 0x1388", "expected each frame id once"),
        "SECOND",
    ),
    Refusal(
        "duplicate_signal_name",
        'BO_ 100 MSG: 8 ECU\n SG_ X : 7|8@0+ (1,0) [0|255] "" GW\n SG_ X : 15|8@0+ (1,0) [0|255] "" GW\n',
        "SG_ X : 15",
        ("message MSG has a second signal X", "expected each signal name once per message"),
        "SG_ X : 7",
    ),
    Refusal(
        "duplicate_name",
        'BO_ 100 SAME: 8 ECU\n SG_ A : 0|8@1+ (1,0) [0|255] "" GW\n\n'
        'BO_ 101 SAME: 8 ECU\n SG_ B : 0|8@1+ (1,0) [0|255] "" GW\n',
        "BO_ 101",
        ("message name SAME", "expected each message name once"),
        "BO_ 100",
    ),
]


@pytest.mark.parametrize("refusal", REFUSALS, ids=[refusal.id for refusal in REFUSALS])
def test_refuses_naming_file_line_and_what_was_expected(refusal: Refusal) -> None:
    text = dbc(refusal.body)
    with pytest.raises(DbcError) as raised:
        load_dbc(FILE, text=text)
    (problem,) = raised.value.problems
    assert problem.file == FILE
    assert problem.location == f"line {line_with(text, refusal.line_holding)}"
    for part in refusal.says:
        assert part in problem.message, problem.message
    if refusal.names_line_holding is not None:
        assert f"line {line_with(text, refusal.names_line_holding)}" in problem.message
    assert str(problem) in str(raised.value)


def test_every_wide_id_is_listed_at_once() -> None:
    text = dbc(
        'BO_ 1075054137 WIDE_1: 8 ECU\n SG_ A : 0|8@1+ (1,0) [0|255] "" GW\n\n'
        'BO_ 1075185211 WIDE_2: 8 ECU\n SG_ B : 0|8@1+ (1,0) [0|255] "" GW\n'
    )
    with pytest.raises(DbcError) as raised:
        load_dbc(FILE, text=text)
    assert [problem.location for problem in raised.value.problems] == [
        f"line {line_with(text, 'WIDE_1')}",
        f"line {line_with(text, 'WIDE_2')}",
    ]


def test_independent_signals_pseudo_message_is_not_a_wide_id() -> None:
    text = dbc(
        'BO_ 100 A: 8 ECU\n SG_ X : 7|8@0+ (1,0) [0|255] "" GW\n\n'
        'BO_ 3221225472 VECTOR__INDEPENDENT_SIG_MSG: 0 Vector__XXX\n SG_ LOOSE : 0|8@1+ (1,0) [0|0] "" GW\n\n'
        'VAL_ 3221225472 LOOSE 0 "NONE";\n'
    )
    assert cantools_refuses(text), "cantools skips the pseudo message, so its VAL_ is left over"
    loaded = load_dbc(FILE, text=text)
    assert [message.name for message in loaded.database.messages] == ["A"]
    (warning,) = loaded.warnings
    assert warning.location == f"line {line_with(text, 'VAL_ 3221225472')}"
    assert "VECTOR__INDEPENDENT_SIG_MSG" in warning.message


def test_byte_order_mark_is_ignored(tmp_path: Path) -> None:
    text = dbc('BO_ 100 A: 8 ECU\n SG_ X : 7|8@0+ (1,0) [0|255] "" GW\n')
    path = tmp_path / "bom.dbc"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    assert load_dbc(path).warnings == ()
    assert load_dbc(FILE, text="\ufeff" + text).line_of("A") == line_with(text, "BO_ 100")


def test_unreadable_file_names_it(tmp_path: Path) -> None:
    missing = tmp_path / "missing.dbc"
    with pytest.raises(DbcError) as raised:
        load_dbc(missing)
    (problem,) = raised.value.problems
    assert problem.file == str(missing)
    assert "cannot read" in problem.message
