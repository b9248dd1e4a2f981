"""The rows of ``sdv monitor`` for the other ECUs of a federated vehicle (pure).

A federated ``sdv serve`` publishes its view of the other ECUs as four arrays under ``Sdv.Federation.Ecu``
(``Names``, ``States``, ``Signals``, ``Since``; one entry per ECU seen, in the same order; see
docs/federation.md). The monitor shows one row per ECU, e.g. ``ECU c (federation): UP for 12.0 s; 2 signals
mirrored``, and none for a server that is not federated.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from sdv.types.datatypes import Value
from sdv.types.signals import Datapoint

__all__ = ["FEDERATION_ROOT", "STATE_STYLES", "remote_ecu_rows"]

FEDERATION_ROOT = "Sdv.Federation"
"""The branch of the federation's status signals, shown as rows rather than in the table of signals."""
_ECUS = f"{FEDERATION_ROOT}.Ecu."
STATE_STYLES = {"UP": "", "JOINING": "yellow", "GONE": "bold red"}
"""How each state's row is shown."""


def _column(values: Mapping[str, Datapoint], name: str) -> tuple[Value, ...]:
    datapoint = values.get(_ECUS + name)
    value = datapoint.value if datapoint is not None else None
    return value if isinstance(value, tuple) else ()


def remote_ecu_rows(values: Mapping[str, Datapoint], age: Callable[[float], str]) -> list[tuple[str, str]]:
    """One ``(text, state)`` per remote ECU, or a single line saying none was seen; nothing when the server
    publishes no federation status.

    Args:
        values: the latest datapoints of the served signals.
        age: how long ago a Unix time was, as the monitor shows ages.
    """
    names = values.get(_ECUS + "Names")
    if names is None or not isinstance(names.value, tuple):
        return []
    if not names.value:
        return [("federation: no other ECU seen yet", "JOINING")]
    states, signals, since = (_column(values, name) for name in ("States", "Signals", "Since"))
    rows = []
    for index, name in enumerate(names.value):
        state = str(states[index]) if index < len(states) else "?"
        text = f"ECU {name} (federation): {state}"
        entered = since[index] if index < len(since) else None
        if isinstance(entered, float):
            text += f" for {age(entered)}"
        if index < len(signals):
            mirrored = signals[index]
            text += f"; {mirrored} signal{'' if mirrored == 1 else 's'} mirrored"
            if state == "GONE":
                text += ", not available"
        rows.append((text, state))
    return rows
