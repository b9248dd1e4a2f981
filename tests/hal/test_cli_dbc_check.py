"""``sdv dbc check``: the tolerant loader's warnings and errors with their lines, and every message's layout."""

from __future__ import annotations

import re
from pathlib import Path

import cantools

from sdv.cli.exit_codes import EXIT_FAILED
from sdv.resources import demo_dbc
from tests.test_cli_exit_codes import assert_one_clear_line, run


def test_every_message_and_signal_is_laid_out() -> None:
    result = run("dbc", "check", str(demo_dbc()))
    assert result.code == 0, result.err
    database = cantools.database.load_file(demo_dbc())
    lines = result.out.splitlines()
    for message in database.messages:
        frame = (
            f"0x{message.frame_id:08X} \\(extended\\)"
            if message.is_extended_frame
            else f"0x{message.frame_id:03X}"
        )
        header = next(line for line in lines if re.match(rf"{frame}  {message.name}  \(", line))
        assert f"{message.length} bytes" in header and "line " in header
    steering = next(line for line in lines if line.strip().startswith("SteeringAngle "))
    assert "start   7  length 16  big    signed" in steering and "scale 0.1" in steering
    assert "[-780 .. 780]  deg" in steering
    signals = sum(len(message.signals) for message in database.messages)
    assert (
        lines[-1] == f"{demo_dbc()}: ok: {len(database.messages)} messages, {signals} signals, 0 warning(s)"
    )


def test_repairs_are_warnings_naming_their_line(tmp_path: Path) -> None:
    dbc = tmp_path / "repaired.dbc"
    text = demo_dbc().read_text()
    dbc.write_text(text + 'CM_ 37 "steering, without the object type";\n')
    result = run("dbc", "check", "--quiet", str(dbc))
    assert result.code == 0, result.err
    line = len(text.splitlines()) + 1
    assert result.err == f"warning: {dbc}: line {line}: CM_ 37 lacks the object type; read as CM_ BO_ 37\n"
    assert result.out.strip().endswith("1 warning(s)")


def test_a_file_that_does_not_load_names_the_line(tmp_path: Path) -> None:
    dbc = tmp_path / "broken.dbc"
    dbc.write_text('VERSION ""\nBO_ abc X: 8 Y\n')
    result = run("dbc", "check", str(dbc))
    assert_one_clear_line(result, EXIT_FAILED, f"{dbc}: line 2: unexpected 'abc' at column 5", lines=2)
    assert not result.out
