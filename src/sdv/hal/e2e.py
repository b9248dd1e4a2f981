"""End-to-end (E2E) protection of CAN messages: checksums and alive counters.

A protected message carries a checksum signal and a counter signal. The checksum is computed over the payload
bytes that do not hold the checksum itself (in payload order), optionally preceded by a 16-bit data id that binds
the checksum to the message's meaning (the idea behind AUTOSAR E2E Profile 1's Data ID; the exact byte layouts of
the AUTOSAR profiles differ between OEMs, so a custom algorithm can be registered with :func:`register_checksum`).

Shipped algorithms:

* ``crc8_sae_j1850``: CRC-8, polynomial 0x1D, initial value 0xFF, final XOR 0xFF (SAE J1850; the CRC of
  AUTOSAR E2E Profile 1 and 2). Check value of ``b"123456789"`` is 0x4B.
* ``byte_sum``: the sum of the covered bytes (and data id bytes) modulo 2**bits of the checksum signal.
* ``xor``: the XOR of the covered bytes (and data id bytes).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sdv.hal.codec import MessageCodec
    from sdv.hal.profile import E2EConfig

__all__ = [
    "ChecksumFunction",
    "E2ECheck",
    "available_checksums",
    "byte_sum",
    "checksum_function",
    "compute_checksum",
    "counter_step_ok",
    "crc8_sae_j1850",
    "register_checksum",
    "xor_checksum",
]

ChecksumFunction = Callable[[bytes], int]
"""Maps the covered bytes (data id bytes first, then the payload without the checksum bytes) to a checksum."""


def _crc8_table(polynomial: int) -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = ((crc << 1) ^ polynomial) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
        table.append(crc)
    return tuple(table)


_J1850_TABLE = _crc8_table(0x1D)


def crc8_sae_j1850(data: bytes) -> int:
    """CRC-8 SAE J1850 (poly 0x1D, init 0xFF, xorout 0xFF) of ``data``."""
    crc = 0xFF
    table = _J1850_TABLE
    for byte in data:
        crc = table[crc ^ byte]
    return crc ^ 0xFF


def byte_sum(data: bytes) -> int:
    """Sum of the bytes of ``data`` (the caller masks it to the checksum signal's width)."""
    return sum(data)


def xor_checksum(data: bytes) -> int:
    """XOR of the bytes of ``data``."""
    result = 0
    for byte in data:
        result ^= byte
    return result


_REGISTRY: dict[str, ChecksumFunction] = {
    "crc8_sae_j1850": crc8_sae_j1850,
    "byte_sum": byte_sum,
    "xor": xor_checksum,
}


def register_checksum(name: str, function: ChecksumFunction) -> None:
    """Make a checksum algorithm available to profiles under ``name``.

    Raises:
        ValueError: when ``name`` is already registered.
    """
    if name in _REGISTRY:
        raise ValueError(f"checksum algorithm {name!r} is already registered")
    _REGISTRY[name] = function


def available_checksums() -> list[str]:
    """Names of every registered checksum algorithm."""
    return sorted(_REGISTRY)


def checksum_function(name: str) -> ChecksumFunction:
    """The algorithm registered under ``name``.

    Raises:
        KeyError: when no algorithm has that name.
    """
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(
            f"unknown checksum algorithm {name!r}; known: {', '.join(available_checksums())}"
        ) from None


def compute_checksum(
    function: ChecksumFunction,
    payload: bytes,
    checksum_bytes: frozenset[int],
    data_id: int | None,
    bits: int,
) -> int:
    """The checksum of ``payload`` as the E2E contract defines it.

    Args:
        function: the algorithm (see :func:`checksum_function`).
        payload: the whole frame payload; the bytes that hold the checksum signal are left out of the input.
        checksum_bytes: indices of the payload bytes the checksum signal occupies.
        data_id: when set, its two bytes (little-endian) precede the covered payload bytes.
        bits: width of the checksum signal; the result is reduced to it.

    Returns:
        The raw checksum value to place in, or compare with, the checksum signal.
    """
    covered = bytes(byte for index, byte in enumerate(payload) if index not in checksum_bytes)
    if data_id is not None:
        covered = data_id.to_bytes(2, "little") + covered
    return function(covered) & ((1 << bits) - 1)


def counter_step_ok(previous: int, current: int, bits: int, max_step: int) -> bool:
    """Whether an alive counter advanced by 1..``max_step`` (modulo 2**bits) since the previous frame.

    A repeated value (a frozen sender) and a jump larger than ``max_step`` (lost frames) both fail.
    """
    step = (current - previous) % (1 << bits)
    return 1 <= step <= max_step


class E2ECheck:
    """Counter and checksum verification of one message, compiled once from its profile entry and codec."""

    __slots__ = (
        "_after",
        "_checksum_mask",
        "_counter_mask",
        "_first",
        "_length",
        "_prefix",
        "checksum",
        "checksum_bytes",
        "counter",
        "data_id",
        "function",
        "max_jump",
        "previous_counter",
    )

    def __init__(self, config: E2EConfig, codec: MessageCodec) -> None:
        self.counter = codec.signal(config.counter)
        self.checksum = codec.signal(config.checksum)
        self.checksum_bytes = self.checksum.covered_bytes(8 * codec.length)
        self.function = checksum_function(config.algorithm)
        self.data_id = config.data_id
        self.max_jump = config.max_counter_jump
        self.previous_counter: int | None = None
        self._length = codec.length
        self._prefix = b"" if config.data_id is None else config.data_id.to_bytes(2, "little")
        self._first = min(self.checksum_bytes)
        self._after = max(self.checksum_bytes) + 1
        self._checksum_mask = self.checksum.mask
        self._counter_mask = self.counter.mask

    def failure(self, data: bytes | bytearray, counter: Any, checksum: Any) -> str | None:
        """``None`` when the frame passes, else the reason (``e2e_checksum`` or ``e2e_counter``).

        ``data`` is the payload cut to the message length; ``counter`` and ``checksum`` are the two signals'
        values decoded from it. The checks are those of :func:`sdv.hal.e2e.compute_checksum` and
        :func:`sdv.hal.e2e.counter_step_ok`, inlined: this runs for every protected frame.
        """
        # The checksum covers the payload without its own bytes (a contiguous range), after the data id.
        if (
            checksum
            != self.function(self._prefix + data[: self._first] + data[self._after :]) & self._checksum_mask
        ):
            self.previous_counter = None  # a corrupted frame's counter means nothing: resynchronise
            return "e2e_checksum"
        previous = self.previous_counter
        self.previous_counter = counter
        if previous is not None:
            step = (counter - previous) & self._counter_mask
            if step == 0 or step > self.max_jump:
                return "e2e_counter"
        return None
