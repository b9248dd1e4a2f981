"""Fuzzing the DBC loader with mutated opendbc files: only DbcError (or a load with warnings) comes out."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given

from sdv.errors import DbcError
from sdv.hal.codec_cantools import codec_from_cantools
from sdv.hal.dbc import load_dbc
from sdv.resources import demo_dbc
from tests.fuzz.harness import Examples, fuzz_settings, memory_bounded, mutated, run_budget

# Small real files that between them hold every statement kind the loader repairs or refuses: multiplexing,
# SIG_VALTYPE_, VAL_, CM_, BA_, extended ids.
OPENDBC_SEEDS = (
    "acura_ilx_2016_nidec",
    "fca_giorgio",
    "gm_global_a_high_voltage_management",
    "mazda_rx8",
    "nissan_xterra_2011",
)


def _seeds() -> list[bytes]:
    import opendbc

    directory = Path(opendbc.__file__).parent / "dbc"
    return [demo_dbc().read_bytes(), *((directory / f"{name}.dbc").read_bytes() for name in OPENDBC_SEEDS)]


SEEDS = _seeds()


def test_mutated_dbc_files_load_or_are_refused(tmp_path_factory: pytest.TempPathFactory) -> None:
    path = tmp_path_factory.mktemp("fuzz-dbc") / "mutated.dbc"

    examples = Examples()

    @fuzz_settings()
    @given(mutated(SEEDS))
    def load(data: bytes) -> None:
        examples()
        path.write_bytes(data)
        try:
            loaded = load_dbc(path)
        except DbcError as error:
            assert error.problems and all(problem.file == str(path) for problem in error.problems)
            return
        # What sdv serve and sdv decode do next with every message.
        for message in loaded.database.messages:
            codec = codec_from_cantools(message)
            codec.decode_labelled(bytes(codec.length))

    with memory_bounded():
        run_budget("dbc", load, examples)
