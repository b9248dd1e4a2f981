"""The software identification an ECU reports to a fleet server: its hardware id, identity, the committed bundle
and each slot group's side and release counter (hawkBit ``configData`` attributes)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sdv.ota.fleet.updater import Identity

if TYPE_CHECKING:
    from sdv.ota.agent.store import AgentStatus

__all__ = ["software_identification"]


def software_identification(status: AgentStatus, identity: Identity) -> dict[str, str]:
    """Attributes (name → text) of the installed software, for the server's view of the ECU."""
    record = status.record
    installed = record.installed
    data = {
        "sdv.hardware_id": identity.hardware_id,
        "sdv.ecu_id": identity.ecu_id,
        "sdv.state": record.state.value,
        "sdv.bundle": installed.name if installed is not None else "factory",
        "sdv.version": installed.version if installed is not None else "factory",
        "sdv.release_counter": str(installed.release_counter if installed is not None else 0),
    }
    for name, group in record.groups.items():
        data[f"sdv.group.{name}.active"] = group.active_slot
        data[f"sdv.group.{name}.counter"] = str(group.counter)
        if group.installed is not None:
            data[f"sdv.group.{name}.version"] = group.installed.version
    return data
