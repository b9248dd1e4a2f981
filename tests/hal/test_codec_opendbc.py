"""The compiled codec decodes every opendbc message exactly as cantools does.

For each deployable opendbc file and each of its messages, random payloads (deterministic per file) are decoded
by cantools (``Message.decode``, choices decoded) and by :func:`codec_from_cantools`; wherever cantools decodes,
both give the same value of the same type for every signal cantools reports. Files that plain cantools refuses
are compared on the database of the tolerant loader, which is cantools' own decoding of the repaired text.
"""

from __future__ import annotations

import functools
import math
import random

import cantools
import pytest
from cantools.database.namedsignalvalue import NamedSignalValue

from sdv.hal.codec import codec_from_cantools
from sdv.hal.dbc import LoadedDbc, load_dbc
from tests.hal.opendbc_corpus import deployable_dbc_files, gc_paused

# Its BO_ ids set bit 30: the tolerant loader refuses it by design (see test_opendbc_load).
REFUSED = "toyota_2017_ref_pt"
PAYLOADS_PER_MESSAGE = 5
TEXTS = dict(deployable_dbc_files())
LOADABLE = [name for name in TEXTS if name != REFUSED]


@functools.cache
def tolerant(name: str) -> LoadedDbc:
    # Loaded once per file: both tests of a file refused by plain cantools use it.
    with gc_paused():
        return load_dbc(f"{name}.dbc", text=TEXTS[name])


def payloads(name: str, message_name: str, length: int) -> list[bytes]:
    rng = random.Random(f"{name}/{message_name}")
    data = [bytes(length), bytes([0xFF] * length)]
    data += [rng.randbytes(length) for _ in range(PAYLOADS_PER_MESSAGE - len(data))]
    return data


def same(left: object, right: object) -> bool:
    if type(left) is not type(right):
        return False
    if isinstance(left, float) and isinstance(right, float) and math.isnan(left) and math.isnan(right):
        return True
    return left == right


def test_the_corpus_is_the_deployable_one() -> None:
    assert len(TEXTS) == 94
    assert len(LOADABLE) == 93


@pytest.mark.parametrize("name", LOADABLE)
def test_decode_labelled_matches_cantools(name: str) -> None:
    text = TEXTS[name]
    with gc_paused():
        try:
            database = cantools.database.load_string(text, "dbc", strict=False)
        except cantools.database.UnsupportedDatabaseFormatError:
            database = tolerant(name).database
    compared = 0
    mismatches: list[str] = []
    for message in database.messages:
        codec = codec_from_cantools(message)
        for data in payloads(name, message.name, message.length):
            try:
                expected = message.decode(data)
            except cantools.database.DecodeError:  # a payload cantools cannot decode is not compared
                continue
            got = codec.decode_labelled(data)
            compared += 1
            for signal, value in expected.items():
                want = str(value) if isinstance(value, NamedSignalValue) else value
                if signal not in got or not same(got[signal], want):
                    mismatches.append(
                        f"{message.name}.{signal} on {data.hex()}: "
                        f"cantools {want!r} ({type(want).__name__}), "
                        f"codec {got.get(signal)!r} ({type(got.get(signal)).__name__})"
                    )
            for signal in set(got) - set(expected):
                # cantools drops some branches of extended multiplexing (SG_MUL_VAL_); nothing else may differ.
                if codec.signal(signal).multiplexer is None:
                    mismatches.append(f"{message.name}.{signal} on {data.hex()}: not reported by cantools")
    assert not mismatches, "\n".join(mismatches[:20])
    assert compared > 0


@pytest.mark.parametrize("name", LOADABLE)
def test_every_message_compiles_and_decodes_zeros(name: str) -> None:
    database = tolerant(name).database
    assert database.messages
    for message in database.messages:
        codec = codec_from_cantools(message)
        values = codec.decode(bytes(message.length))
        assert codec.length == message.length
        assert set(values) <= set(codec.signal_names)
        # Every signal that fits and is not behind an inactive multiplexer branch has a value.
        unmultiplexed = {s.name for s in codec.signals if s.multiplexer is None}
        assert unmultiplexed <= set(values), message.name
        assert set(codec.signal_names) | set(codec.skipped_signals) == {s.name for s in message.signals}
