"""Which signals an ECU owns and which it mirrors, from its profile alone (pure).

Ownership is static and vehicle-wide, so that a partition never needs an election: an ECU owns the signals its
HAL decodes (``provided_by: hal``), the actuators it encodes, and the paths matching ``federation.provides`` (its
outside providers'); every other signal of its profile (``provided_by: external``) is a candidate for mirroring,
taken over when the ECU that owns it announces it and it matches ``federation.import``.
"""

from __future__ import annotations

from dataclasses import dataclass

from sdv.federation.codec import OwnedSignal
from sdv.federation.patterns import PathPatterns
from sdv.federation_config import FederationConfig
from sdv.hal.vehicle import VehicleDefinition

__all__ = ["EcuOwnership"]


@dataclass(frozen=True)
class EcuOwnership:
    """What one ECU owns, exports and may mirror.

    Attributes:
        owned: every signal this ECU owns, announced on ``meta/<ecu>``.
        exported: the owned signal paths shared with the other ECUs (``federation.export``).
        actuators: the owned actuators this ECU takes requests for.
        mirrorable: the paths of the profile another ECU may own (and that ``federation.import`` takes).
    """

    owned: tuple[OwnedSignal, ...]
    exported: tuple[str, ...]
    actuators: tuple[str, ...]
    mirrorable: frozenset[str]

    @classmethod
    def of(cls, vehicle: VehicleDefinition, config: FederationConfig) -> EcuOwnership:
        """The ownership of the ECU ``config.ecu`` whose profile is ``vehicle``."""
        provides = PathPatterns.compile(config.provides)
        export = PathPatterns.compile(config.export)
        imports = PathPatterns.compile(config.imports)
        owned: list[OwnedSignal] = []
        mirrorable: set[str] = set()
        for path, signal in vehicle.signals.items():
            mine = signal.provided_by == "hal" or provides.matches(path)
            if mine:
                actuatable = signal.kind == "actuator" and (
                    signal.actuator is not None or signal.provided_by == "external"
                )
                owned.append(OwnedSignal(path, signal.kind, str(signal.datatype), actuatable))
            elif imports.matches(path):
                mirrorable.add(path)
        return cls(
            owned=tuple(owned),
            exported=tuple(export.select(signal.path for signal in owned)),
            actuators=tuple(signal.path for signal in owned if signal.actuatable),
            mirrorable=frozenset(mirrorable),
        )
