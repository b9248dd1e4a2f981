"""One offered bundle taken through the agent's steps: download, verify and stage, trial, commit.

The next step follows from the agent's persisted record and the offered bundle's SHA-256 alone, so a restart at
any instant (a power loss mid-download, the reboot into the trial slot) continues where the agent stands:
a transfer of the same bundle resumes, a staged one is activated, one on trial (its health checks passed) is
committed, and one already installed is reported as such.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from sdv.errors import ServerUnreachableError
from sdv.ota.errors import AgentStateError, OtaError
from sdv.ota.fleet.download import Artifact, Downloader
from sdv.ota.fleet.updater import AT_REST, Updater

__all__ = ["Delivery", "Outcome", "ProgressThrottle", "Step"]

_logger = logging.getLogger(__name__)
_CANCELLABLE = frozenset({"transferring", "transferred", "ready"})


class Step(StrEnum):
    """The steps of a delivery, in order (reported as ``cnt`` of ``of`` to hawkBit)."""

    DOWNLOADING = "downloading"
    DOWNLOADED = "downloaded"
    STAGED = "staged"
    ON_TRIAL = "on trial"
    COMMITTED = "committed"


STEPS = tuple(Step)


@dataclass(frozen=True)
class Outcome:
    """Where a delivery ended.

    Attributes:
        finished: ``success``, ``failure`` or ``none`` (not finished: waiting for a reboot or for permission
            to install).
        details: what happened, for the server and the log.
    """

    finished: str
    details: str


class ProgressThrottle:
    """Says when download progress is worth reporting: at most every ``interval_s``, and at the last byte."""

    def __init__(self, interval_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._interval_s = interval_s
        self._clock = clock
        self._at: float | None = None

    def due(self, held: int, size: int) -> bool:
        """Whether to report (held, size) now."""
        now = self._clock()
        if held < size and self._at is not None and now - self._at < self._interval_s:
            return False
        self._at = now
        return True


Report = Callable[[Step, str], None]
"""Told of each step reached (the step, a line of details)."""


class Delivery:
    """Takes offered bundles through the agent's steps.

    Args:
        updater: the agent.
        downloader: brings the bundle into the agent's transfer.
        report: told of every step.
        on_progress: told of download progress (bytes held, size).
    """

    def __init__(
        self,
        updater: Updater,
        downloader: Downloader,
        report: Report,
        on_progress: Callable[[int, int], None],
    ) -> None:
        self._updater = updater
        self._downloader = downloader
        self._report = report
        self._on_progress = on_progress

    def installed(self, sha256: str) -> bool:
        """Whether the bundle is the committed one."""
        installed = self._updater.status().record.installed
        return installed is not None and installed.bundle_sha256 == sha256

    def deliver(self, artifact: Artifact, *, install: bool = True) -> Outcome:
        """Take ``artifact`` as far as it goes: committed, or (``install`` false) staged.

        Raises:
            Stopped: the agent is stopping (whatever was reached stays, and is continued at the next start).
        """
        try:
            return self._deliver(artifact, install)
        except (
            OtaError,
            ServerUnreachableError,
        ) as error:  # a refusal of the agent or the server's last failure: the reason is the details
            _logger.warning("%s: %s", artifact.name, error)
            return Outcome("failure", str(error))

    def _deliver(self, artifact: Artifact, install: bool) -> Outcome:
        sha = artifact.sha256
        if self.installed(sha):
            return Outcome("success", f"{artifact.name} is installed")
        record = self._updater.status().record
        state = record.state.value
        ours = (record.transfer is not None and record.transfer.bundle_sha256 == sha) or (
            record.bundle is not None and record.bundle.bundle_sha256 == sha
        )
        if not ours and state in _CANCELLABLE:
            _logger.warning("abandoning the update under way (%s) for %s", state, artifact.name)
            self._updater.cancel()
        elif not ours and state not in AT_REST:
            raise AgentStateError(f"another update is under way (state {state}); finish it first")
        if state in ("activating", "verifying") and ours:
            return self._commit(artifact)
        if state == "ready" and ours:
            return self._activate(artifact, install)
        if state != "transferred" or not ours:
            self._report(Step.DOWNLOADING, f"downloading {artifact.name} ({artifact.size} bytes)")
            self._downloader.fetch(artifact, self._on_progress)
        self._report(Step.DOWNLOADED, f"downloaded {artifact.name}; verifying and staging")
        bundle = self._updater.process()
        self._report(Step.STAGED, f"staged {bundle.name} {bundle.version}")
        return self._activate(artifact, install)

    def _activate(self, artifact: Artifact, install: bool) -> Outcome:
        if not install:
            return Outcome("none", f"{artifact.name} is staged; waiting for permission to install")
        self._updater.activate()
        return self._commit(artifact)

    def _commit(self, artifact: Artifact) -> Outcome:
        record = self._updater.status().record
        state = record.state.value
        if state == "activating":  # a reboot into the trial slot was asked for; the next start continues
            return Outcome("none", f"{artifact.name}: rebooting into the trial slot")
        if state != "verifying":
            return Outcome("failure", record.failure or f"{artifact.name}: the trial ended in state {state}")
        bundle = record.bundle
        self._report(
            Step.ON_TRIAL, f"{bundle.version if bundle else artifact.name} on trial; health checks passed"
        )
        self._updater.mark_good()
        installed = self._updater.status().record.installed
        version = installed.version if installed is not None else "?"
        self._report(Step.COMMITTED, f"committed {artifact.name} (version {version})")
        return Outcome("success", f"installed {artifact.name} version {version}")
