"""Every deployable opendbc DBC file loads, except the one whose frame ids do not fit 29 bits."""

from __future__ import annotations

import functools
import re

import pytest

from sdv.errors import DbcError
from sdv.hal.dbc import LoadedDbc, load_dbc
from tests.hal.opendbc_corpus import deployable_dbc_files, gc_paused

# Its BO_ ids set bit 30 (e.g. 0x40140639 for BDB1F01_14): no CAN frame can carry them.
REFUSED = "toyota_2017_ref_pt"
NAMES = [name for name, _ in deployable_dbc_files()]
LOCATION = re.compile(r"line (\d+)")


@functools.cache
def outcome(name: str) -> LoadedDbc | DbcError:
    # Loaded once per file: the count test reuses what the per-file tests loaded.
    text = dict(deployable_dbc_files())[name]
    with gc_paused():
        try:
            return load_dbc(f"{name}.dbc", text=text)
        except DbcError as error:
            return error


def test_the_corpus_has_the_94_deployable_files() -> None:
    assert len(NAMES) == 94
    assert sum(name.endswith("_generated") for name in NAMES) == 36


@pytest.mark.parametrize("name", [name for name in NAMES if name != REFUSED])
def test_file_loads(name: str) -> None:
    result = outcome(name)
    assert isinstance(result, LoadedDbc), str(result)
    assert result.database.messages
    line_count = dict(deployable_dbc_files())[name].count("\n") + 1
    for warning in result.warnings:
        assert warning.file == f"{name}.dbc"
        match = LOCATION.fullmatch(warning.location)
        assert match is not None, warning
        assert 1 <= int(match.group(1)) <= line_count
    for message in result.database.messages:
        assert result.line_of(message.name) is not None, message.name


def test_ids_wider_than_29_bits_are_refused_naming_the_message() -> None:
    result = outcome(REFUSED)
    assert isinstance(result, DbcError)
    first = result.problems[0]
    assert first.file == f"{REFUSED}.dbc"
    assert first.location == "line 387"
    assert "BDB1F01_14" in first.message
    assert "0x40140639" in first.message
    assert "29 bits" in first.message


@pytest.mark.slow
def test_93_of_94_files_load() -> None:
    loaded = [name for name in NAMES if isinstance(outcome(name), LoadedDbc)]
    assert len(loaded) == 93
    assert REFUSED not in loaded
