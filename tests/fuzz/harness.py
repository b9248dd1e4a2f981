"""The fuzzing harness: mutated real inputs, a time budget through hypothesis settings profiles, a memory bound.

Every fuzz target is a hypothesis test that feeds a mutation of a real file (opendbc DBC files, the demo profile,
recordings of every format) to one reader and asserts that nothing but the project's own errors comes out.

Budget: without ``SDV_FUZZ_SECONDS`` each target runs the ``sdv-fuzz-short`` profile once (a few hundred
examples, a few seconds, part of ``make test``). With ``SDV_FUZZ_SECONDS=N``, each target runs rounds of the
``sdv-fuzz-long`` profile, each round with fresh random examples, until N seconds have passed; the run prints
how many examples each target tried.

Memory: each target runs with the process's address space limited to what it uses plus
:data:`HEADROOM_BYTES`; a reader that builds something per declared bit or byte then fails with MemoryError,
which is a finding like any other exception.
"""

from __future__ import annotations

import contextlib
import os
import re
import resource
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

__all__ = ["FUZZ_SECONDS", "Examples", "fuzz_settings", "memory_bounded", "mutated", "run_budget"]

FUZZ_SECONDS = float(os.environ.get("SDV_FUZZ_SECONDS", "0") or 0)
HEADROOM_BYTES = 1 << 30

_COMMON = {
    "deadline": None,
    "database": None,  # findings become regression tests, not a cache on one machine
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
}
settings.register_profile("sdv-fuzz-short", max_examples=300, **_COMMON)  # type: ignore[arg-type]
settings.register_profile("sdv-fuzz-long", max_examples=2000, **_COMMON)  # type: ignore[arg-type]


def fuzz_settings() -> settings:
    """The hypothesis settings of a fuzz target: the long profile when a time budget is set."""
    return settings.get_profile("sdv-fuzz-long" if FUZZ_SECONDS else "sdv-fuzz-short")


class Examples:
    """Counts the examples a target tried (hypothesis reports no statistics for an inner test)."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


def run_budget(name: str, target: Callable[[], None], examples: Examples) -> None:
    """Run a hypothesis test once, or in rounds until ``SDV_FUZZ_SECONDS`` have passed, and print the figures."""
    start = time.monotonic()
    rounds = 0
    while True:
        target()
        rounds += 1
        if time.monotonic() - start >= FUZZ_SECONDS:
            break
    elapsed = time.monotonic() - start
    print(f"fuzz {name}: {examples.count} examples in {rounds} rounds, {elapsed:.1f} s")


def _address_space_in_use() -> int:
    status = Path("/proc/self/status").read_text()
    match = re.search(r"^VmSize:\s+(\d+) kB", status, re.MULTILINE)
    return int(match.group(1)) * 1024 if match else 0


@contextlib.contextmanager
def memory_bounded() -> Iterator[None]:
    """Limit the process's address space to its current size plus :data:`HEADROOM_BYTES` while fuzzing."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    in_use = _address_space_in_use()
    limit = in_use + HEADROOM_BYTES if in_use else soft
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


# What the mutations insert: the sizes, numbers and tokens hostile files are made of.
INTERESTING: Sequence[bytes] = (
    b"0",
    b"-1",
    b"65",
    b"4096",
    b"100000",
    b"10000000",
    b"4294967295",
    b"18446744073709551616",
    b"9" * 120,
    b"9" * 5000,
    b"1e400",
    b"-1e400",
    b".5",
    b"\xff",
    b"\x00",
    b"\xc3\x28",
    b"\n",
    b"\r\n",
    b";",
    b":",
    b"|",
    b"@",
    b"#",
    b"(",
    b")",
    b"[",
    b"]",
    b"{",
    b"}",
    b",",
    b'"',
    b"'",
    b"- ",
    b"&a ",
    b"*a",
    b"!!binary ",
    b"[" * 300,
    b"{a: " * 100,
    b"BO_ ",
    b" SG_ ",
    b"VAL_ ",
    b"CM_ ",
    b"BA_ ",
    b"SIG_VALTYPE_ ",
    b"SG_MUL_VAL_ ",
    b" m1 ",
    b" M ",
    b"LOBJ",
    b"LOGG",
    b"\xff\xff\xff\x7f",
)
_NUMBER_RE = re.compile(rb"\d+")


@st.composite
def mutated(draw: st.DrawFn, seeds: Sequence[bytes]) -> bytes:
    """A seed file with one to eight mutations: byte flips, insertions, deletions, repeats, number swaps."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 8))):
        operation = draw(st.sampled_from(("flip", "insert", "delete", "repeat", "truncate", "number")))
        position = draw(st.integers(0, len(data)))
        if operation == "flip" and data:
            index = min(position, len(data) - 1)
            data[index] ^= 1 << draw(st.integers(0, 7))
        elif operation == "insert":
            data[position:position] = draw(st.sampled_from(INTERESTING) | st.binary(max_size=16))
        elif operation == "delete":
            del data[position : position + draw(st.integers(1, 64))]
        elif operation == "repeat":
            chunk = data[position : position + draw(st.integers(1, 200))]
            data[position:position] = chunk * draw(st.integers(1, 50))
        elif operation == "truncate":
            del data[position:]
        elif operation == "number":
            numbers = list(_NUMBER_RE.finditer(data))
            if numbers:
                number = numbers[draw(st.integers(0, len(numbers) - 1))]
                data[number.start() : number.end()] = draw(st.sampled_from(INTERESTING[:13]))
    return bytes(data)
