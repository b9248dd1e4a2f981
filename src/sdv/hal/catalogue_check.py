"""A profile's signals checked against a VSS catalogue (pure).

Each profile signal must be a leaf of the catalogue with the same kind, datatype and unit; its own range must lie
within the catalogue's; its allowed values, the values its value table produces and an attribute's fixed value
must be values the catalogue allows. Every difference is one problem at the profile's line and key path, naming
the catalogue's value and the file it comes from, so that either side can be fixed from the message.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator, Mapping

from sdv.errors import Problem
from sdv.hal.profile import LocatedConfig, SignalConfig
from sdv.types.datatypes import Value
from sdv.vss import Catalogue, VssNode

__all__ = ["catalogue_problems"]

Location = tuple[int | str, ...]


def catalogue_problems(
    located: LocatedConfig, catalogue: Catalogue, produced: Mapping[str, Iterable[Value]]
) -> list[Problem]:
    """Every difference between the profile's signals and the catalogue.

    Args:
        located: the profile, with its lines.
        catalogue: the VSS catalogue (base file and overlays).
        produced: per signal path, the values the HAL can publish when they are a closed set (value tables).

    Returns:
        The problems, in profile order.
    """
    problems: list[Problem] = []
    leaves = [node.path for node in catalogue.leaves()]
    files = " + ".join(catalogue.files)
    for index, signal in enumerate(located.config.signals):
        where: Location = ("signals", index)
        node = catalogue.get(signal.path)
        if node is None:
            close = difflib.get_close_matches(signal.path, leaves, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            hint += " (a signal VSS does not have belongs in an overlay)"
            problems.append(
                located.problem(
                    (*where, "path"), f"{signal.path} is not in the VSS catalogue ({files}){hint}"
                )
            )
            continue
        for key, message in _differences(signal, node, produced.get(signal.path, ())):
            problems.append(located.problem((*where, *key), f"{message} ({node.source})"))
    return problems


def _shown(value: object) -> str:
    return "(none)" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def _differences(
    signal: SignalConfig, node: VssNode, produced: Iterable[Value]
) -> Iterator[tuple[Location, str]]:
    if node.kind == "branch":
        yield ("path",), f"{signal.path} is a branch in the VSS catalogue, not a signal"
        return
    for key, ours, theirs in (
        ("kind", signal.kind, node.kind),
        ("datatype", signal.datatype, node.datatype),
        ("unit", signal.unit, node.unit),
    ):
        if ours != theirs:
            yield (key,), f"{key} {_shown(ours)} differs from the VSS catalogue's {_shown(theirs)}"
    vss_range = f"[{_shown(node.min)}, {_shown(node.max)}]"
    for key, bound in (("min", signal.min), ("max", signal.max)):
        if bound is not None and not _within(bound, node):
            yield (key,), f"{key} {_shown(bound)} lies outside the VSS range {vss_range}"
    checked: list[tuple[Location, str, list[Value]]] = [
        (("allowed",), "allowed value", list(signal.allowed or ())),
        (("transform", "value_table"), "value table value", list(dict.fromkeys(produced))),
        (("value",), "value", [] if signal.value is None else [signal.value]),
    ]
    for location, what, values in checked:
        for value in values:
            if node.allowed is not None and value not in node.allowed:
                yield location, f"{what} {value!r} is not one of the VSS allowed values {list(node.allowed)}"
            elif isinstance(value, int | float) and not isinstance(value, bool) and not _within(value, node):
                yield location, f"{what} {_shown(value)} lies outside the VSS range {vss_range}"


def _within(value: float, node: VssNode) -> bool:
    return (node.min is None or value >= node.min) and (node.max is None or value <= node.max)
