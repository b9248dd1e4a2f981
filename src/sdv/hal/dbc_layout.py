"""The layout check of a DBC's messages: signals that share bits (per multiplexer value) or leave their message,
each warned about with a bounded number of steps however many signals share a bit."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Final

from sdv.hal.dbc_syntax import INDEPENDENT_SIGNALS, SignalEntry, signal_bits

if TYPE_CHECKING:
    from sdv.hal.dbc_repair import Repairer

__all__ = ["check_layout"]

# How many other signals an overlap warning names.
_NAMED_CLASHES: Final = 5


def check_layout(repairer: Repairer) -> None:
    """Warn about signals that share bits or leave their message.

    Signal lengths are bounded (1 to :data:`MAX_SIGNAL_BITS`) when the signals are collected, and only the
    bits inside the message are recorded, each with its owners grouped by multiplexer value. A warning names
    at most :data:`_NAMED_CLASHES` other signals, so each signal costs a bounded number of steps however many
    signals share its bits (a file of thousands of signals on one bit must not take minutes).
    """
    for message in repairer.messages.values():
        if message.name == INDEPENDENT_SIGNALS:
            continue
        # bit -> multiplexer value (None: always present) -> the signals on that bit, in file order
        owners: dict[int, dict[int | None, list[SignalEntry]]] = {}
        limit = message.length * 8
        for signal in message.signals.values():
            bits = signal_bits(signal)
            if any(bit >= limit or bit < 0 for bit in bits):
                repairer.warn(
                    repairer.line_starts[signal.line - 1],
                    f"signal {signal.name} of message {message.name} does not fit in {message.length} "
                    "bytes; kept it as written, never decoded",
                )
            own_keys: tuple[int | None, ...] = (
                (None,) if signal.multiplexer_ids is None else tuple(signal.multiplexer_ids)
            )
            clashes: dict[str, None] = {}
            for bit in bits:
                if not 0 <= bit < limit:
                    continue
                groups = owners.setdefault(bit, {})
                if len(clashes) <= _NAMED_CLASHES:
                    _collect_clashes(signal, groups, clashes)
                for key in own_keys:
                    groups.setdefault(key, []).append(signal)
            if clashes:
                names = ", ".join(list(clashes)[:_NAMED_CLASHES])
                more = " and more" if len(clashes) > _NAMED_CLASHES else ""
                repairer.warn(
                    repairer.line_starts[signal.line - 1],
                    f"signal {signal.name} of message {message.name} overlaps signal {names}{more}; kept "
                    "both as written",
                )


def _collect_clashes(
    signal: SignalEntry, groups: dict[int | None, list[SignalEntry]], clashes: dict[str, None]
) -> None:
    # A signal always present shares the bit with every group; a multiplexed one with the always-present
    # signals and those of its own multiplexer values. Each list is looked at up to the number named.
    keys: Iterable[int | None] = groups if signal.multiplexer_ids is None else (None, *signal.multiplexer_ids)
    for key in keys:  # lazily: a bit may carry thousands of multiplexer values
        for other in groups.get(key, ())[: _NAMED_CLASHES + 1]:
            clashes.setdefault(other.name)
            if len(clashes) > _NAMED_CLASHES:
                return
