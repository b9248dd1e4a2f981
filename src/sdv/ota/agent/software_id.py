"""Software identification: each installed component's version and the vehicle-level software identification
number (RXSWIN under UN R156 §7.1.1.3; the software identification code GB 44496-2024 asks to be readable), as
read-only VSS attributes under ``Vehicle.Software`` (the overlay ``ota/vss_software_overlay.json``).

Invariants:

* the identification is computed from the *committed* record only — a trial, a rollback or a failure never changes
  it; after a rollback it is what it was before the trial;
* without a configured RXSWIN it is derived from the committed software of every slot group (a SHA-256 over each
  group's bundle, version, release counter and payload digests), so two ECUs running the same software show the
  same number and any change of software changes it.

This module performs no I/O; the agent hands the values to a :class:`SoftwarePublisher`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Protocol

from sdv.ota.agent.config import AgentConfig
from sdv.ota.agent.state import AgentRecord
from sdv.types.datatypes import Value

__all__ = ["SoftwarePublisher", "components", "rxswin", "software_attributes"]

_DIGEST_CHARS = 16
_FACTORY = "factory software"


class SoftwarePublisher(Protocol):
    """Where the attributes go: ``sdv serve`` over the KUKSA API, or the broker of the same process."""

    def publish(self, values: Mapping[str, Value]) -> None:
        """Publish attribute values.

        Raises:
            SdvError: they cannot be published now.
        """
        ...  # pragma: no cover - protocol


def components(record: AgentRecord) -> list[str]:
    """``GROUP/PAYLOAD BUNDLE VERSION (counter N, sha256 PREFIX)`` for each committed component, sorted; a group
    running its factory software is ``GROUP factory software``."""
    found = []
    for name, group in sorted(record.groups.items()):
        installed = group.installed
        if installed is None:
            found.append(f"{name} {_FACTORY}")
            continue
        for payload, sha256 in sorted(installed.payloads.items()):
            if installed.targets.get(payload, name) == name:
                found.append(
                    f"{name}/{payload} {installed.name} {installed.version} "
                    f"(counter {group.counter}, sha256 {sha256[:_DIGEST_CHARS]})"
                )
    return found


def rxswin(record: AgentRecord, config: AgentConfig) -> str:
    """The vehicle's software identification number: the configured one, or one derived from the committed
    software (``HARDWARE-ID-SW-<16 hex digits>``)."""
    configured = config.vehicle.software.rxswin
    if configured is not None:
        return configured
    digest = hashlib.sha256("\n".join(components(record)).encode()).hexdigest()[:_DIGEST_CHARS].upper()
    return f"{config.hardware_id}-SW-{digest}"


def software_attributes(record: AgentRecord, config: AgentConfig) -> dict[str, Value]:
    """The attributes to publish: ``BRANCH.Rxswin``, ``BRANCH.Version``, ``BRANCH.Components``."""
    branch = config.vehicle.software.branch
    installed = record.installed
    version = _FACTORY if installed is None else f"{installed.name} {installed.version}"
    return {
        f"{branch}.Rxswin": rxswin(record, config),
        f"{branch}.Version": version,
        f"{branch}.Components": tuple(components(record)),
    }
