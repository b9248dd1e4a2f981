"""DBC signals matched onto the leaves of a VSS catalogue by their names (pure): the rule of ``sdv profile init
--vss``.

The rule, in order:

1. A name is split into lowercase words at case changes, digits and underscores: ``DI_vehicleSpeed`` is
   ``di vehicle speed``, ``WheelSpeedFL`` is ``wheel speed fl``, ``ENGINE_RPM`` is ``engine rpm``.
2. A VSS leaf is known by the words of its last one, two and three path segments:
   ``Vehicle.Chassis.SteeringWheel.Angle`` by ``angle``, ``steering wheel angle`` and
   ``chassis steering wheel angle``.
3. A DBC signal is looked up by its message's words followed by its own, then by the words of its name, then by
   each shorter ending of them of at least two words (so that a prefix such as ``DI_`` falls away); the first of
   these names that finds a suitable leaf (rule 4) decides.
4. A leaf found so is a candidate when it suits the signal: a sensor or actuator that is not an array (attributes
   are not fed from a bus); ``boolean`` for a one-bit signal, ``string`` for a signal with a value table whose
   labels the leaf allows, a number datatype for any other signal; and the same unit once the DBC spelling is
   normalised (:data:`DBC_UNITS`: ``deg`` is ``degrees``, ``%`` is ``percent``), or no unit on either side.
5. Exactly one suitable leaf: the signal takes that leaf (with ``rounding: round`` when an integer datatype receives
   fractional values). None, or several (``Speed`` names many leaves): the signal stays unmatched, for the caller
   to place under an overlay branch of its own.

A match is a proposal by name; the caller checks the resulting profile against the catalogue as any other.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sdv.hal.codec import SignalLayout
from sdv.types.datatypes import INTEGER_RANGES
from sdv.vss import Catalogue, VssNode

__all__ = [
    "DBC_UNITS",
    "OverlayLeaf",
    "VssIndex",
    "VssMatch",
    "dbc_datatype",
    "overlay_document",
    "vss_unit",
    "words",
]

_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")
_LEAF_SEGMENTS = 3
"""How many trailing path segments of a VSS leaf its names are built from."""

DBC_UNITS: Mapping[str, str] = {
    **{spelling: "km/h" for spelling in ("km/h", "kph", "kmh")},
    **{spelling: "degrees" for spelling in ("deg", "degree", "degrees", "°")},
    **{spelling: "degrees/s" for spelling in ("deg/s", "°/s", "degrees/s")},
    **{spelling: "percent" for spelling in ("%", "percent", "pct")},
    **{spelling: "celsius" for spelling in ("degc", "°c", "celsius", "deg c")},
    **{spelling: "m/s^2" for spelling in ("m/s^2", "m/s2", "m/s²")},
    **{
        spelling: spelling for spelling in ("m/s", "m", "km", "mm", "cm", "s", "ms", "min", "h", "rpm", "bar")
    },
    **{
        "v": "V",
        "a": "A",
        "w": "W",
        "kw": "kW",
        "kwh": "kWh",
        "nm": "Nm",
        "kpa": "kPa",
        "pa": "Pa",
        "l": "l",
    },
}
"""DBC unit spellings (lowercase) and the VSS unit each one is."""


def words(name: str) -> tuple[str, ...]:
    """The lowercase words of a DBC or VSS name (rule 1)."""
    return tuple(word.lower() for word in _WORD.findall(name))


def vss_unit(dbc_unit: str | None) -> str | None:
    """The VSS unit a DBC unit spelling stands for; None for no unit; the spelling itself when unknown."""
    if dbc_unit is None or not dbc_unit.strip():
        return None
    return DBC_UNITS.get(dbc_unit.strip().lower(), dbc_unit.strip())


def dbc_datatype(layout: SignalLayout) -> str:
    """The VSS datatype that holds a DBC signal's physical values without loss."""
    if layout.choices:
        return "string"
    if layout.is_float:
        return "double" if layout.length > 32 else "float"
    low, high = layout.physical_bounds()
    if (
        layout.length == 1
        and not layout.is_signed
        and layout.conversion == "identity"
        and low >= 0
        and high <= 1
    ):
        return "boolean"
    if layout.conversion != "linear":
        for name in ("uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64"):
            type_low, type_high = INTEGER_RANGES[name]
            if type_low <= low and high <= type_high:
                return name
    return "double" if layout.length > 24 else "float"


def _fractional(layout: SignalLayout) -> bool:
    return (
        layout.is_float
        or float(layout.scale) != int(layout.scale)
        or float(layout.offset) != int(layout.offset)
    )


@dataclass(frozen=True)
class VssMatch:
    """The VSS leaf a DBC signal maps onto.

    Attributes:
        node: the leaf.
        rounding: an integer datatype receives fractional values, so the profile needs ``rounding: round``.
    """

    node: VssNode
    rounding: bool


class VssIndex:
    """The leaves of a catalogue by the words of their names, compiled once (rule 2)."""

    def __init__(self, catalogue: Catalogue) -> None:
        self._by_words: dict[tuple[str, ...], list[VssNode]] = {}
        for node in catalogue.leaves():
            if node.kind not in ("sensor", "actuator") or node.datatype is None or node.is_array:
                continue
            segments = node.path.split(".")
            seen: set[tuple[str, ...]] = set()
            for count in range(1, min(_LEAF_SEGMENTS, len(segments)) + 1):
                key = tuple(word for segment in segments[-count:] for word in words(segment))
                if key and key not in seen:
                    seen.add(key)
                    self._by_words.setdefault(key, []).append(node)

    def match(self, message: str, layout: SignalLayout) -> VssMatch | None:
        """The one leaf the signal's name and kind of value point to (rules 3 to 5), or None."""
        own = words(layout.name)
        datatype = dbc_datatype(layout)
        unit = vss_unit(layout.unit)
        # The longest name that finds a suitable leaf decides; shorter endings only when it finds none
        for key in (words(message) + own, own, *(own[start:] for start in range(1, len(own) - 1))):
            candidates = [
                node for node in self._by_words.get(key, ()) if _suits(node, layout, datatype, unit)
            ]
            if len(candidates) > 1:
                return None
            if candidates:
                node = candidates[0]
                return VssMatch(node, rounding=node.datatype in INTEGER_RANGES and _fractional(layout))
        return None


def _suits(node: VssNode, layout: SignalLayout, datatype: str, unit: str | None) -> bool:
    """Rule 4: the leaf can hold the signal's values, in the same unit."""
    if node.unit != unit:
        return False
    if datatype in ("boolean", "string") or node.datatype in ("boolean", "string"):
        if node.datatype != datatype:
            return False
        return (
            datatype != "string" or node.allowed is None or set(layout.choices.values()) <= set(node.allowed)
        )
    return True


@dataclass(frozen=True)
class OverlayLeaf:
    """A signal of an overlay branch: what the VSS overlay file says of it.

    Attributes:
        path: its path under the overlay branch (``Vehicle.SDV.ESP.YawRate``).
        datatype: the VSS datatype.
        unit: the unit, if any.
        description: what it is.
        allowed: the allowed values (a value table's labels), if restricted.
    """

    path: str
    datatype: str
    unit: str | None = None
    description: str = ""
    allowed: tuple[str, ...] | None = None


def overlay_document(leaves: list[OverlayLeaf], descriptions: Mapping[str, str]) -> dict[str, Any]:
    """The vss-tools JSON of an overlay holding ``leaves`` as sensors, with every branch they need.

    Args:
        leaves: the overlay's signals.
        descriptions: descriptions of branches by path; a branch not named gets one from its name. The top
            branch (``Vehicle``) exists in the catalogue and is given only its type, changing nothing there.
    """
    root: dict[str, Any] = {}
    for leaf in leaves:
        segments = leaf.path.split(".")
        siblings = root
        for depth, segment in enumerate(segments[:-1]):
            branch_path = ".".join(segments[: depth + 1])
            node: dict[str, Any] = siblings.setdefault(segment, {"type": "branch"})
            if depth > 0 and "description" not in node:
                node["description"] = descriptions.get(branch_path, f"The {segment} branch.")
            siblings = node.setdefault("children", {})
        entry: dict[str, object] = {"type": "sensor", "datatype": leaf.datatype}
        if leaf.unit:
            entry["unit"] = leaf.unit
        if leaf.allowed is not None:
            entry["allowed"] = list(leaf.allowed)
        entry["description"] = leaf.description or f"{segments[-1]}."
        siblings[segments[-1]] = entry
    return root
