"""The agent as a hawkBit controller: polls the DDI controller base at the server's interval, takes deployments
through the agent's steps with feedback at each, honours cancellations, asks consent in the confirmation flow
and answers ``configData`` with the installed software.

What the agent reported last for an action is kept in ``STATE_DIR/fleet.json``: an action whose ``closed``
feedback was lost is answered again, never installed a second time.
"""

from __future__ import annotations

import logging
import os
import subprocess

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sdv.errors import ServerUnreachableError
from sdv.files import write_atomically
from sdv.ota.errors import AgentStateError, FleetServerError
from sdv.ota.fleet.config import FleetConfig, HawkbitConfig
from sdv.ota.fleet.ddi import ActionDocument, DdiClient, Feedback, parse_sleep
from sdv.ota.fleet.delivery import STEPS, Delivery, Outcome, ProgressThrottle, Step
from sdv.ota.fleet.download import Artifact, Downloader
from sdv.ota.fleet.http import Backoff, FleetHttp
from sdv.ota.fleet.software import software_identification
from sdv.ota.fleet.updater import Identity, Updater

__all__ = ["HawkbitController"]

_logger = logging.getLogger(__name__)
_MAX_STATE_BYTES = 64 * 1024
_BUNDLE_SUFFIX = ".sdvota"


class _Closed(BaseModel):
    """The last action the agent closed, and how."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    action_id: str = Field(max_length=64)
    finished: str = Field(pattern=r"^(success|failure)$")
    details: str = Field(max_length=4096)


class _Cancelled(Exception):
    pass


def _token(config: HawkbitConfig) -> str | None:
    if config.token_file is not None:
        try:
            with config.token_file.open("rb") as handle:
                text = handle.read(4097)
        except OSError as error:
            raise FleetServerError(f"token file {config.token_file}: {error.strerror or error}") from None
        if len(text) > 4096 or not text.strip():
            raise FleetServerError(f"token file {config.token_file}: expected one token of at most 4 KiB")
        return text.decode("ascii", "replace").strip()
    return os.environ.get(config.token_env) or None


class HawkbitController:
    """Polls one hawkBit server for this controller until :attr:`http`'s stop event is set.

    Args:
        fleet: the fleet configuration (its ``hawkbit`` section is set).
        updater: the agent.
        identity: the ECU.

    Raises:
        FleetServerError: the token file cannot be read.
    """

    def __init__(self, fleet: FleetConfig, updater: Updater, identity: Identity) -> None:
        if fleet.hawkbit is None:  # pragma: no cover - the caller picks the controller by the section
            raise ValueError("no hawkbit section")
        self.config = fleet.hawkbit
        token = _token(self.config)
        kind = "GatewayToken" if self.config.token_kind == "gateway" else "TargetToken"  # noqa: S105
        headers = {"Authorization": f"{kind} {token}"} if token else {}
        self.http = FleetHttp(
            fleet.tls, fleet.download, headers, credentials_for=self.config.url.rstrip("/") + "/"
        )
        self.ddi = DdiClient(self.config, self.http)
        self._updater = updater
        self._identity = identity
        self._state_path = identity.state_dir / "fleet.json"
        self._action: str | None = None
        self._throttle = ProgressThrottle(fleet.download.progress_interval_s)
        self._sent_config: dict[str, str] | None = None
        self._downloader = Downloader(self.http, updater, identity)

    # -- the loop -----------------------------------------------------------------------------------------------

    def run(self) -> None:
        """Poll until stopped; every failure is logged and retried after a backoff."""
        backoff = Backoff(self.http.config.backoff)
        sleep = self.config.poll_s
        while not self.http.stop.is_set():
            try:
                sleep = self.poll_once()
                backoff.reset()
            except (FleetServerError, ServerUnreachableError) as error:
                sleep = backoff.next_delay()
                _logger.warning("hawkBit: %s; polling again in %.1f s", error, sleep)
            if self.http.stop.wait(sleep):
                break
        self.http.close()

    def poll_once(self) -> float:
        """One poll and what it asks for; returns the seconds until the next poll."""
        base = self.ddi.poll()
        sleep = parse_sleep(base.config.polling.sleep) if base.config is not None else self.config.poll_s
        sleep = min(max(sleep, self.config.min_poll_s), self.config.max_poll_s)
        if (url := self.ddi.link(base, "cancelAction")) is not None:
            self._cancel(url)
        elif (url := self.ddi.link(base, "confirmationBase")) is not None:
            self._confirm(url)
        elif (url := self.ddi.link(base, "deploymentBase")) is not None:
            self._deploy(url)
        if self.ddi.link(base, "configData") is not None or self._sent_config != self._config_data():
            self._send_config_data()
        return sleep

    # -- deployments --------------------------------------------------------------------------------------------

    def _deploy(self, url: str) -> None:
        action = self.ddi.action(url)
        offer = action.offer
        closed = self._closed()
        if closed is not None and closed.action_id == action.id:  # the closed feedback was lost: say it again
            self._feedback(
                action.id, Feedback(execution="closed", finished=closed.finished, details=(closed.details,))
            )
            return
        if offer.download == "skip":
            _logger.info("hawkBit action %s: download skipped, as the server asks", action.id)
            return
        try:
            artifact = self._artifact(action)
        except FleetServerError as error:
            self._close(action.id, Outcome("failure", str(error)))
            return
        install = offer.update != "skip" and offer.maintenance_window != "unavailable"
        self._action = action.id
        delivery = Delivery(self._updater, self._downloader, self._step, self._download_progress)
        try:
            outcome = delivery.deliver(artifact, install=install)
        except _Cancelled:
            self._action = None
            return  # the next poll sees the cancelAction and answers it
        if outcome.finished == "none":
            self._feedback(
                action.id,
                Feedback(execution="proceeding" if install else "downloaded", details=(outcome.details,)),
            )
        else:
            self._close(action.id, outcome)
        self._action = None

    def _artifact(self, action: ActionDocument) -> Artifact:
        """The deployment's one bundle artifact (``*.sdvota``, or the only artifact)."""
        artifacts = [artifact for chunk in action.offer.chunks for artifact in chunk.artifacts]
        bundles = [
            artifact for artifact in artifacts if artifact.filename.endswith(_BUNDLE_SUFFIX)
        ] or artifacts
        if len(bundles) != 1:
            raise FleetServerError(
                f"action {action.id}: expected one {_BUNDLE_SUFFIX} artifact, the deployment has {len(bundles)}"
            )
        chosen = bundles[0]
        return Artifact(
            self.ddi.download_url(chosen), chosen.size, chosen.hashes.sha256.lower(), chosen.filename
        )

    def _step(self, step: Step, details: str) -> None:
        _logger.info("hawkBit action %s: %s", self._action, details)
        if self._action is not None:
            number = STEPS.index(step) + 1
            execution = "downloaded" if step is Step.DOWNLOADED else "proceeding"
            self._feedback(
                self._action, Feedback(execution=execution, details=(details,), progress=(number, len(STEPS)))
            )

    def _download_progress(self, held: int, size: int) -> None:
        if not self._throttle.due(held, size):
            return
        _logger.info("hawkBit action %s: %d of %d bytes", self._action, held, size)
        if self._action is None:
            return
        details = f"downloaded {held} of {size} bytes"
        self._feedback(
            self._action, Feedback(execution="proceeding", details=(details,), progress=(1, len(STEPS)))
        )
        base = self.ddi.poll()  # a cancellation while downloading stops the download at once
        if self.ddi.link(base, "cancelAction") is not None:
            raise _Cancelled

    def _close(self, action_id: str, outcome: Outcome) -> None:
        closed = _Closed(action_id=action_id, finished=outcome.finished, details=outcome.details[:4096])
        write_atomically(self._state_path, closed.model_dump_json().encode())
        _logger.info("hawkBit action %s: %s: %s", action_id, outcome.finished, outcome.details)
        self._feedback(
            action_id, Feedback(execution="closed", finished=closed.finished, details=(closed.details,))
        )
        self._send_config_data()

    def _feedback(self, action_id: str, feedback: Feedback, kind: str = "deploymentBase") -> None:
        self.ddi.feedback(kind, action_id, feedback)

    def _closed(self) -> _Closed | None:
        try:
            with self._state_path.open("rb") as handle:
                data = handle.read(_MAX_STATE_BYTES + 1)
        except FileNotFoundError:
            return None
        try:
            return _Closed.model_validate_json(data)
        except ValidationError:
            _logger.warning("%s: unreadable; forgetting the last closed action", self._state_path)
            return None

    # -- cancel and confirmation --------------------------------------------------------------------------------

    def _cancel(self, url: str) -> None:
        document = self.ddi.cancel(url)
        state = self._updater.status().record.state.value
        try:
            if state in ("transferring", "transferred", "ready", "failed"):
                self._updater.cancel()
            elif state not in ("idle", "activated", "rolled-back"):
                raise AgentStateError(f"the update is in state {state}; it can no longer be cancelled")
        except AgentStateError as error:
            _logger.warning("hawkBit: cancel of action %s refused: %s", document.cancel_action.stop_id, error)
            feedback = Feedback(execution="rejected", finished="failure", details=(str(error),))
        else:
            _logger.info("hawkBit: action %s cancelled", document.cancel_action.stop_id)
            feedback = Feedback(execution="closed", finished="success", details=("cancelled",))
        self._feedback(document.id, feedback, kind="cancelAction")

    def _confirm(self, url: str) -> None:
        action = self.ddi.action(url)
        consent = self.config.confirmation
        if consent.auto_confirm:
            self.ddi.confirm(action.id, True, "confirmed automatically by the agent's configuration")
            return
        if consent.command is None:
            _logger.info("hawkBit action %s waits for consent given on the server", action.id)
            return
        versions = " ".join(chunk.version for chunk in action.offer.chunks)
        environment = {**os.environ, "SDV_OTA_ACTION": action.id, "SDV_OTA_VERSION": versions}
        try:
            result = subprocess.run(
                consent.command, env=environment, timeout=consent.timeout_s, check=False, capture_output=True
            )
            confirmed, details = result.returncode == 0, f"consent command exited with {result.returncode}"
        except (OSError, subprocess.TimeoutExpired) as error:
            confirmed, details = False, f"consent command failed: {error}"
        self.ddi.confirm(action.id, confirmed, details)

    # -- configData ---------------------------------------------------------------------------------------------

    def _config_data(self) -> dict[str, str]:
        return {**self.config.attributes, **software_identification(self._updater.status(), self._identity)}

    def _send_config_data(self) -> None:
        data = self._config_data()
        self.ddi.config_data(data)
        self._sent_config = data
