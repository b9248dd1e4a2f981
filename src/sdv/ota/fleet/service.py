"""The pulling side of ``sdv ota agent``: the configured fleet source's poll loop in a thread of its own, beside
the agent's gRPC service, stopped with the agent."""

from __future__ import annotations

import logging
import threading
from types import TracebackType

from sdv.ota.fleet.config import FleetConfig
from sdv.ota.fleet.hawkbit import HawkbitController
from sdv.ota.fleet.index_poller import IndexPoller
from sdv.ota.fleet.updater import Identity, Updater

__all__ = ["FleetService"]

_logger = logging.getLogger(__name__)
_JOIN_S = 30.0  # a request in flight ends at its timeout at the latest; a chunk being written at once


class FleetService:
    """Runs the poll loop of ``fleet`` (hawkBit or a signed index) for ``updater`` until :meth:`stop`.

    Args:
        fleet: where to pull from.
        updater: the agent.
        identity: the ECU.

    Raises:
        FleetServerError: a hawkBit token file that cannot be read.
    """

    def __init__(self, fleet: FleetConfig, updater: Updater, identity: Identity) -> None:
        self.source = (
            HawkbitController(fleet, updater, identity)
            if fleet.hawkbit is not None
            else IndexPoller(fleet, updater, identity)
        )
        self._thread = threading.Thread(target=self._run, name="sdv-ota-fleet", daemon=True)

    def _run(self) -> None:
        try:
            self.source.run()
        except Exception:  # the gRPC service keeps serving; the log says why pulling stopped
            _logger.exception("pulling updates stopped")

    def start(self) -> FleetService:
        """Start polling."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop polling: a download in progress ends at its next chunk and stays resumable."""
        self.source.http.stop.set()
        self._thread.join(_JOIN_S)

    def __enter__(self) -> FleetService:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
