"""Every frame of every opendbc message decodes into the signals and values its DBC declares.

For each of the 93 loadable deployable opendbc files, each message gets a few frames: seeded random payloads,
all zeros and all ones, one padded past the message's length, and one encoded frame per multiplexer branch (the random payload with the multiplexers
set to select the branch), so that every signal is decoded at least once. Each frame is decoded by sdv
(:func:`load_dbc` and :func:`codec_from_cantools`, choice labels applied) and compared with two references:

* cantools (``Message.decode``), on the file as plain cantools loads it, or, where plain cantools refuses the
  file, on the tolerant loader's repaired text: the same set of signal names (under the names written in the
  file) and the same value of the same type for each; a multiplexer value cantools refuses is one sdv counts as
  ``unknown_multiplexer``. Messages cantools cannot decode at all (signals that overlap or leave the message:
  "unpacking failed") are left to the second reference.
* opendbc's own parser (``opendbc.can.dbc.DBC`` and the ``get_raw_value`` of ``opendbc.can.parser``; both pure
  Python): every signal sdv reports is one opendbc parsed, with the same value, and every signal opendbc
  parsed that no multiplexer selects is reported. opendbc knows no multiplexing, so for multiplexed signals
  only the values are compared; it reads the bits of a signal that leaves its message as far as they go,
  where sdv, having warned about the signal when the file loaded, does not decode it at all.

Zero disagreements are allowed.
"""

from __future__ import annotations

import functools
import math
import random
from collections.abc import Iterator
from typing import Any

import cantools
import pytest
from cantools.database.namedsignalvalue import NamedSignalValue

from sdv.errors import FrameError
from sdv.hal.codec import MessageCodec
from sdv.hal.codec_cantools import codec_from_cantools
from sdv.hal.dbc import LoadedDbc, load_dbc
from tests.hal.opendbc_corpus import deployable_dbc_files, gc_paused, opendbc_decode, opendbc_messages

# Its BO_ ids set bit 30: the tolerant loader refuses it by design (see test_opendbc_load).
REFUSED = "toyota_2017_ref_pt"
RANDOM_PAYLOADS = 4
CLASSIC_LENGTH = 8
TEXTS = dict(deployable_dbc_files())
LOADABLE = [name for name in TEXTS if name != REFUSED]
# cantools' message for a multiplexer value without branch; any other DecodeError means it cannot decode.
MULTIPLEXER_REFUSED = "expected multiplexer id"


@functools.cache
def tolerant(name: str) -> LoadedDbc:
    # Loaded once per file: both tests of a file use it.
    with gc_paused():
        return load_dbc(f"{name}.dbc", text=TEXTS[name])


def cantools_database(name: str) -> tuple[cantools.database.can.Database, bool]:
    """The file as plain cantools loads it (and True), else cantools' load of the repaired text (and False)."""
    with gc_paused():
        try:
            return cantools.database.load_string(TEXTS[name], "dbc", strict=False), True
        except cantools.database.UnsupportedDatabaseFormatError:
            return tolerant(name).database, False


def branch_values(codec: MessageCodec) -> Iterator[dict[str, int]]:
    """For each signal behind a multiplexer, the multiplexer values that select it (outermost first)."""
    for signal in codec.signals:
        values: dict[str, int] = {}
        current = signal
        while current.multiplexer is not None:
            values[current.multiplexer] = current.multiplexer_ids[0]
            current = codec.signal(current.multiplexer)
        if values:
            yield values


def frames(name: str, codec: MessageCodec) -> list[bytes]:
    rng = random.Random(f"{name}/{codec.name}")
    data = [bytes(codec.length), bytes([0xFF] * codec.length)]
    data += [rng.randbytes(codec.length) for _ in range(RANDOM_PAYLOADS)]
    if codec.length < CLASSIC_LENGTH:
        # Longer than the DBC says (a sender padding to 8 bytes): the excess carries no signal.
        data.append(rng.randbytes(codec.length) + b"\xa5" * (CLASSIC_LENGTH - codec.length))
    for values in branch_values(codec):
        data.append(codec.encode(values, base=rng.randbytes(codec.length)))
    return data


def same(left: object, right: object) -> bool:
    if type(left) is not type(right):
        return False
    if isinstance(left, float) and isinstance(right, float) and math.isnan(left) and math.isnan(right):
        return True
    return left == right


def sdv_decode(codec: MessageCodec, data: bytes, labelled: bool) -> dict[str, Any] | FrameError:
    try:
        return codec.decode_labelled(data) if labelled else dict(codec.decode(data))
    except FrameError as error:
        return error


def cantools_disagreements(message: Any, codec: MessageCodec, data: bytes) -> list[str]:
    where = f"{message.name} on {data.hex()}"
    got = sdv_decode(codec, data, labelled=True)
    try:
        expected = message.decode(data)
    except cantools.database.DecodeError as error:
        if MULTIPLEXER_REFUSED not in str(error):
            return []  # cantools cannot decode this message: opendbc is the reference
        if isinstance(got, FrameError) and got.reason == "unknown_multiplexer":
            return []
        return [f"{where}: cantools refuses it ({error}), sdv decodes {got}"]
    if isinstance(got, FrameError):
        return [f"{where}: cantools decodes it, sdv refuses it ({got})"]
    wanted = {signal: str(v) if isinstance(v, NamedSignalValue) else v for signal, v in expected.items()}
    problems = [f"{where}: {signal} missing (cantools {wanted[signal]!r})" for signal in wanted.keys() - got]
    problems += [f"{where}: {signal} not selected, yet decoded" for signal in got.keys() - wanted]
    problems += [
        f"{where}: {signal}: cantools {value!r} ({type(value).__name__}), "
        f"sdv {got[signal]!r} ({type(got[signal]).__name__})"
        for signal, value in wanted.items()
        if signal in got and not same(got[signal], value)
    ]
    return problems


def opendbc_disagreements(theirs: Any, codec: MessageCodec, data: bytes) -> list[str]:
    where = f"{codec.name} on {data.hex()}"
    got = sdv_decode(codec, data, labelled=False)
    if isinstance(got, FrameError):
        return []  # opendbc knows no multiplexing: a refused multiplexer value is cantools' to judge
    expected = opendbc_decode(theirs, data)
    problems = [f"{where}: {signal} decoded, opendbc has no such signal" for signal in got.keys() - expected]
    plain = {signal.name for signal in codec.signals if signal.multiplexer is None}
    problems += [f"{where}: {signal} missing" for signal in plain - got.keys()]
    problems += [
        f"{where}: {signal}: opendbc {expected[signal]!r}, sdv {value!r}"
        for signal, value in got.items()
        if signal in expected and float(value) != expected[signal]
    ]
    return problems


def test_the_corpus_is_the_deployable_one() -> None:
    assert len(TEXTS) == 94
    assert len(LOADABLE) == 93


@pytest.mark.parametrize("name", LOADABLE)
def test_every_signal_of_every_message_agrees_with_cantools_and_opendbc(name: str) -> None:
    database, plain = cantools_database(name)
    loaded = tolerant(name)
    theirs = opendbc_messages(name)
    by_name = {message.name: message for message in database.messages}
    disagreements: list[str] = []
    compared = {"cantools": 0, "opendbc": 0}
    for message in loaded.database.messages:
        codec = codec_from_cantools(message)
        reference = by_name.get(message.name)
        if reference is None:
            disagreements.append(f"{message.name}: cantools has no such message")
            continue
        opendbc_message = theirs.get(message.name)
        if opendbc_message is None:
            disagreements.append(f"{message.name}: opendbc has no such message")
            continue
        # What opendbc parsed of the message that sdv decodes: signals that leave the message are warned about
        # when the file loads and never decoded.
        declared = {signal.name for signal in message.signals}
        assert set(opendbc_message.sigs) <= declared, message.name
        for data in frames(name, codec):
            disagreements += cantools_disagreements(reference, codec, data)
            disagreements += opendbc_disagreements(opendbc_message, codec, data)
            compared["cantools"] += 1
            compared["opendbc"] += 1
    assert not disagreements, f"{len(disagreements)} disagreements (plain cantools: {plain}):\n" + "\n".join(
        disagreements[:20]
    )
    assert compared["cantools"] > 0


@pytest.mark.parametrize("name", LOADABLE)
def test_signals_never_decoded_are_those_warned_about(name: str) -> None:
    loaded = tolerant(name)
    warned = " ".join(warning.message for warning in loaded.warnings)
    for message in loaded.database.messages:
        codec = codec_from_cantools(message)
        assert codec.length == message.length
        assert set(codec.signal_names) | set(codec.skipped_signals) == {s.name for s in message.signals}
        for signal in codec.skipped_signals:
            assert f"signal {signal} of message {message.name}" in warned, (message.name, signal)
