"""What the broker knows of each signal: its metadata and its latest datapoint."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import NamedTuple

from sdv.hal.datatypes import Value
from sdv.hal.processor import Status
from sdv.hal.vehicle import VehicleModel
from sdv.vss import Catalogue, VssNode

__all__ = ["Datapoint", "SignalMetadata", "metadata_from_catalogue", "metadata_from_vehicle"]


class Datapoint(NamedTuple):
    """A signal's value with the time it was measured and whether it can be trusted.

    ``value`` is the last value received; when ``status`` is not ``VALID`` it is the last valid value, kept so
    that apps can show it greyed out, and APIs that have no status field serve "no value" instead.
    """

    value: Value | None
    timestamp: float | None
    status: Status


NO_VALUE = Datapoint(None, None, Status.NOT_AVAILABLE)


@dataclass(frozen=True)
class SignalMetadata:
    """Static description of one signal, as the profile or the VSS catalogue declares it.

    Attributes:
        id: stable numeric id (1-based, in profile order, then catalogue order) for id-based APIs.
        path: the VSS path.
        kind: ``sensor``, ``actuator`` or ``attribute``.
        datatype: the VSS datatype name (``uint8``, ``string[]``).
        unit: the VSS unit, if any.
        min: smallest accepted value, if bounded.
        max: largest accepted value, if bounded.
        allowed: the accepted values, if restricted.
        description: what the signal means.
        comment: the catalogue's comment, if any.
        deprecation: the catalogue's deprecation note, if any.
        default: the catalogue's default value, served as the current value from the start, if any.
    """

    id: int
    path: str
    kind: str
    datatype: str
    unit: str | None = None
    min: float | None = None
    max: float | None = None
    allowed: tuple[Value, ...] | None = None
    description: str = ""
    comment: str | None = None
    deprecation: str | None = None
    default: Value | None = None


def metadata_from_vehicle(vehicle: VehicleModel, catalogue: Catalogue | None = None) -> list[SignalMetadata]:
    """Metadata of every signal of a vehicle profile, with ids in profile order.

    With a catalogue, a signal it has takes the catalogue's comment and deprecation note (the profile declares
    neither); everything else is the profile's, checked against its DBC files.
    """
    nodes = catalogue.nodes if catalogue is not None else {}
    return [
        SignalMetadata(
            id=index,
            path=signal.path,
            kind=signal.kind,
            datatype=signal.datatype,
            unit=signal.unit,
            min=signal.min,
            max=signal.max,
            allowed=tuple(signal.allowed) if signal.allowed is not None else None,
            description=signal.description,
            comment=_node_field(nodes.get(signal.path), "comment"),
            deprecation=_node_field(nodes.get(signal.path), "deprecation"),
        )
        for index, signal in enumerate(vehicle.signals.values(), start=1)
    ]


def _node_field(node: VssNode | None, name: str) -> str | None:
    value = getattr(node, name, None) if node is not None else None
    return value if isinstance(value, str) else None


def metadata_from_catalogue(
    catalogue: Catalogue, first_id: int = 1, skip: Collection[str] = ()
) -> list[SignalMetadata]:
    """Metadata of every leaf of a VSS catalogue (sensors, actuators, attributes), ids in catalogue order.

    Args:
        catalogue: the loaded catalogue, overlays applied.
        first_id: the id of the first leaf.
        skip: paths already served otherwise (the profile's signals).
    """
    metadata: list[SignalMetadata] = []
    for node in catalogue.leaves():
        if node.path in skip or node.datatype is None or node.kind == "branch":
            continue
        metadata.append(
            SignalMetadata(
                id=first_id + len(metadata),
                path=node.path,
                kind=node.kind,
                datatype=node.datatype,
                unit=node.unit,
                min=node.min,
                max=node.max,
                allowed=node.allowed,
                description=node.description,
                comment=node.comment,
                deprecation=node.deprecation,
                default=node.default,
            )
        )
    return metadata
