"""What the broker knows of each signal: its metadata and its latest datapoint."""

from __future__ import annotations

from collections.abc import Collection

from sdv.hal.vehicle import VehicleDefinition
from sdv.types.signals import Datapoint, SignalMetadata
from sdv.vss import Catalogue, VssNode

__all__ = ["Datapoint", "SignalMetadata", "metadata_from_catalogue", "metadata_from_vehicle"]


def metadata_from_vehicle(
    vehicle: VehicleDefinition, catalogue: Catalogue | None = None
) -> list[SignalMetadata]:
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
