"""Fuzzing the recording readers with mutated recordings of every format: only BusError comes out."""

from __future__ import annotations

import gzip
import itertools

import can
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sdv.errors import BusError
from sdv.hal.recordings import read_recording
from sdv.resources import demo_recording
from tests.fuzz.harness import Examples, fuzz_settings, memory_bounded, mutated, run_budget

FORMATS = (".log", ".asc", ".blf", ".csv", ".trc")


@pytest.fixture(scope="module")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """Forty frames of the demo drive written in every format python-can writes."""
    directory = tmp_path_factory.mktemp("fuzz-recording-seeds")
    frames = list(itertools.islice(read_recording(demo_recording()), 40))
    written = {}
    for suffix in FORMATS:
        path = directory / f"seed{suffix}"
        with can.Logger(str(path)) as writer:
            for frame in frames:
                if suffix != ".trc" or len(frame.data) <= 8:  # TRC 2.1 has no CAN FD frames
                    writer.on_message_received(frame)
        written[suffix] = path.read_bytes()
    return written


@pytest.mark.parametrize("suffix", FORMATS)
def test_mutated_recordings_read_or_are_refused(
    tmp_path_factory: pytest.TempPathFactory, seeds: dict[str, bytes], suffix: str
) -> None:
    directory = tmp_path_factory.mktemp("fuzz-recording")

    examples = Examples()

    @fuzz_settings()
    @given(mutated([seeds[suffix]]), st.booleans())
    def read(data: bytes, compressed: bool) -> None:
        examples()
        path = directory / f"mutated{suffix}{'.gz' if compressed else ''}"
        path.write_bytes(gzip.compress(data, compresslevel=1) if compressed else data)
        try:
            for frame in read_recording(path):
                assert isinstance(frame, can.Message)
        except BusError as error:
            assert str(error).startswith(f"recording {path}: ")
            assert "\n" not in str(error)

    with memory_bounded():
        run_budget(f"recording {suffix}", read, examples)
