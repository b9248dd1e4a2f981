"""The agent pulling from a plain HTTP(S) server: it fetches the signed index at an interval, and installs the
bundle the index names for its hardware id when that is not the installed one.

``STATE_DIR/fleet-index.json`` keeps the highest index version accepted (an older index is refused) and the
last bundle that failed, which is not tried again until the index names another.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from urllib.parse import urljoin

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sdv.errors import ServerUnreachableError
from sdv.files import write_atomically
from sdv.ota.bundle.store import load_time_state, load_trust
from sdv.ota.bundle.trusted_time import trusted_now
from sdv.ota.errors import FleetServerError, VerificationError
from sdv.ota.fleet.config import FleetConfig
from sdv.ota.fleet.delivery import Delivery, Outcome, ProgressThrottle, Step
from sdv.ota.fleet.download import Artifact, Downloader
from sdv.ota.fleet.http import Backoff, FleetHttp
from sdv.ota.fleet.index import parse_index, verify_index
from sdv.ota.fleet.updater import Identity, Updater

__all__ = ["IndexPoller"]

_logger = logging.getLogger(__name__)
_MAX_STATE_BYTES = 4096


class _IndexState(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = Field(default=0, ge=0)
    failed_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")


class IndexPoller:
    """Polls one signed index until :attr:`http`'s stop event is set.

    Args:
        fleet: the fleet configuration (its ``index`` section is set).
        updater: the agent.
        identity: the ECU.
        clock: the clock for the index's expiry.
    """

    def __init__(
        self,
        fleet: FleetConfig,
        updater: Updater,
        identity: Identity,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if fleet.index is None:  # pragma: no cover - the caller picks the poller by the section
            raise ValueError("no index section")
        self.config = fleet.index
        self.http = FleetHttp(fleet.tls, fleet.download)
        self._identity = identity
        self._clock = clock
        self._state_path = identity.state_dir / "fleet-index.json"
        self._delivery = Delivery(
            updater, Downloader(self.http, updater, identity), self._step, self._progress
        )
        self._throttle = ProgressThrottle(fleet.download.progress_interval_s)

    def run(self) -> None:
        """Poll until stopped; every failure is logged and retried after a backoff."""
        backoff = Backoff(self.http.config.backoff)
        while not self.http.stop.is_set():
            sleep = self.config.poll_s
            try:
                self.poll_once()
                backoff.reset()
            except (FleetServerError, ServerUnreachableError, VerificationError) as error:
                sleep = min(backoff.next_delay(), self.config.poll_s)
                _logger.warning("index %s: %s; polling again in %.1f s", self.config.url, error, sleep)
            if self.http.stop.wait(sleep):
                break
        self.http.close()

    def poll_once(self) -> Outcome | None:
        """Fetch and check the index, and install what it names; returns the outcome, ``None`` for nothing to do.

        Raises:
            VerificationError: the index is refused (signatures, expiry, an older version, format).
            FleetServerError, ServerUnreachableError: the server's failures.
        """
        url, identity = self.config.url, self._identity
        index = parse_index(self.http.get_bytes(url), url, self.http.config.max_json_bytes)
        state = self._state()
        now = trusted_now(self._clock(), load_time_state(identity.state_dir / "time.json"))
        signed = verify_index(
            index,
            load_trust(identity.trust, identity.limits).signed,
            source=url,
            trusted_now=now,
            floor=state.version,
            limits=identity.limits,
        )
        if signed.version > state.version:
            state = state.model_copy(update={"version": signed.version})
            self._save(state)
        entry = signed.entry_for(identity.hardware_id)
        if entry is None or self._delivery.installed(entry.sha256) or entry.sha256 == state.failed_sha256:
            return None
        artifact = Artifact(
            urljoin(url, entry.url), entry.size, entry.sha256, f"{entry.name} {entry.version}"
        )
        outcome = self._delivery.deliver(artifact)
        _logger.info("index %s: %s: %s", url, outcome.finished, outcome.details)
        if outcome.finished == "failure":
            self._save(state.model_copy(update={"failed_sha256": entry.sha256}))
        return outcome

    def _step(self, step: Step, details: str) -> None:
        _logger.info("index %s: %s (%s)", self.config.url, details, step)

    def _progress(self, held: int, size: int) -> None:
        if self._throttle.due(held, size):
            _logger.info("index %s: %d of %d bytes", self.config.url, held, size)

    def _state(self) -> _IndexState:
        try:
            with self._state_path.open("rb") as handle:
                return _IndexState.model_validate_json(handle.read(_MAX_STATE_BYTES + 1))
        except FileNotFoundError:
            return _IndexState()
        except ValidationError:
            raise FleetServerError(
                f"{self._state_path}: unreadable; remove it to accept any index version"
            ) from None

    def _save(self, state: _IndexState) -> None:
        write_atomically(self._state_path, state.model_dump_json().encode())
