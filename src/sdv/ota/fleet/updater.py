"""What the fleet clients need of the update agent: the same in-process steps the gRPC push uses.

The fleet package never imports the agent at run time (the agent's configuration holds the fleet section, so
the two would import each other); :class:`~sdv.ota.agent.core.UpdateAgent` is an :class:`Updater` as it is.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from sdv.ota.bundle.config import OtaLimits

if TYPE_CHECKING:
    from sdv.ota.agent.state import AgentRecord, BundleRecord, TransferRecord
    from sdv.ota.agent.store import AgentStatus

__all__ = ["AT_REST", "Identity", "Updater"]

AT_REST = frozenset({"idle", "activated", "rolled-back", "failed"})
"""The agent's states (their values) in which no update is under way."""


class Updater(Protocol):
    """The agent's transfer, install and activation steps."""

    def begin_transfer(self, size: int, bundle_sha256: str, header: bytes) -> TransferRecord: ...

    def upload(self) -> AbstractContextManager[None]: ...

    def write_chunk(self, bundle_sha256: str, offset: int, data: bytes) -> TransferRecord: ...

    def process(self) -> BundleRecord: ...

    def activate(self) -> AgentRecord: ...

    def mark_good(self) -> AgentRecord: ...

    def cancel(self) -> AgentRecord: ...

    def status(self) -> AgentStatus: ...

    def subscribe(self, listener: Callable[[AgentStatus], None]) -> Callable[[], None]: ...


@dataclass(frozen=True)
class Identity:
    """Who the ECU is and what it trusts, from the agent's configuration.

    Attributes:
        hardware_id: the ECU's hardware id.
        ecu_id: the ECU's identity (serial number).
        trust: the ECU's trust file (a signed index is checked against its release role).
        state_dir: the agent's state directory (the fleet client keeps ``fleet.json`` there).
        limits: bundle limits (the header read before a download is bounded by them).
        max_chunk_bytes: the largest chunk the agent accepts.
    """

    hardware_id: str
    ecu_id: str
    trust: Path
    state_dir: Path
    limits: OtaLimits
    max_chunk_bytes: int
