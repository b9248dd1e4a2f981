"""The update agent's activation steps: the staged bundle's groups on trial, their health checks, commit or
rollback, each group through its own boot selector."""

from __future__ import annotations

import logging
import subprocess

from sdv.ota.agent.groups import Sides
from sdv.ota.agent.records import journaled
from sdv.ota.agent.state import (
    AT_REST,
    AgentRecord,
    AgentState,
    check_activation,
    committed_groups,
    trial_sides,
    updated,
    with_bad_trial_sides,
    without_trial,
)
from sdv.ota.agent.trial_watch import TrialWatch
from sdv.ota.agent.vehicle_steps import VehicleSteps
from sdv.ota.errors import (
    AgentStateError,
)

__all__ = ["ActivationSteps"]

_logger = logging.getLogger(__name__)
_S = AgentState


class ActivationSteps(VehicleSteps):
    """Trial, commit and rollback (``Ready`` → ``Activating`` → ``Verifying`` → ``Activated``, or back)."""

    _watch: TrialWatch | None

    def _reboot(self, changing: set[str]) -> Sides | None:
        """Start what the boot selectors now say for the groups in ``changing``: a real reboot when the
        bootloader's group changes sides and the ECU has one, otherwise in-process (the trees follow).

        Returns:
            Each group's running side, or ``None`` when a real reboot was requested.
        """
        if self.groups.needs_reboot(changing):
            if self.config.reboot_command:
                _logger.warning("rebooting: %s", " ".join(self.config.reboot_command))
                subprocess.run(self.config.reboot_command, check=False)
            else:
                _logger.warning("the next boot starts the new selection; configure reboot_command to reboot")
            return None
        booted = self.groups.boot_in_process(changing)
        self._refresh_boot()
        return booted

    @journaled("activate")
    def activate(self) -> AgentRecord:
        """Start the staged bundle on trial: ``Ready`` → ``Activating`` → (boot) → ``Verifying``.

        Only the slot groups the bundle carries change sides; every other group keeps running its committed
        side.

        Raises:
            AgentStateError: no staged bundle.
            BadSlotError: a group's trial side failed its trial and was not installed anew since.
        """
        with self._mutex:
            self._require("activate", _S.READY)
            check_activation(self._record)
            self._vehicle_before_activate()  # preconditions and energy (sdv.ota.agent.vehicle_steps)
            self._go(_S.ACTIVATING)
            self._continue_activation()
            self._watch_trial()  # on trial: the vehicle is watched until the commit or the rollback
            return self._record

    def _continue_activation(self) -> None:
        trial = trial_sides(self._record)
        if not trial:  # pragma: no cover - READY always has a group on trial
            raise AgentStateError("no slot group is on trial")
        self.groups.set_trial(trial)
        self._refresh_boot()
        booted = self._reboot(set(trial))
        if booted is not None:
            self._after_boot(booted)

    def _after_boot(self, booted: Sides) -> None:
        """The decision after a boot with an update on trial (Activating, Verifying)."""
        trial = trial_sides(self._record)
        for name, slot in trial.items():
            if booted[name] != slot:
                self._rollback(
                    f"slot group {name}: the bootloader started side {booted[name]}, not side {slot} on trial "
                    "(its boot attempts ran out, or the activation was interrupted)"
                )
                return
        self.groups.switch_trees(booted)  # the trial sides' trees go live with them (after a real reboot too)
        if self._record.state is _S.ACTIVATING:
            self._go(_S.VERIFYING)
        failure = self._vehicle_broken() or self.groups.health_check(
            trial
        )  # vehicle first: no check while moving
        if failure is not None:
            self._rollback(failure)

    def _watch_trial(self) -> None:
        """Watch the vehicle while the update is on trial (:mod:`sdv.ota.agent.trial_watch`), when the staged
        bundle's gate has anything to check."""
        if self._record.state is not _S.VERIFYING or (self._watch is not None and self._watch.running):
            return
        if not self.gate.needed(self._staged_manifest()):
            return
        last = [None if self.last_check is None else self.last_check.summary()]  # recorded by the activation

        def round_() -> bool:
            if not self._mutex.acquire(blocking=False):
                return True  # a step under way checks the vehicle itself
            try:
                if self._record.state is not _S.VERIFYING:
                    return False
                check = self.gate.check("activation", self._staged_manifest())
                if not check.met or check.summary() != last[0]:  # a steady vehicle is recorded once
                    self._record_check(check)
                    last[0] = check.summary()
                if check.met:
                    return True
                _logger.warning("the vehicle left the update's preconditions on trial: %s", check.summary())
                self.rollback(f"the vehicle left the update's preconditions: {check.summary()}")
                return False
            finally:
                self._mutex.release()

        self._watch = TrialWatch(round_, self.config.vehicle.recheck_interval_s).start()

    def _stop_watch(self) -> None:
        watch, self._watch = self._watch, None
        if watch is not None:
            watch.stop()

    @journaled("mark good")
    def mark_good(self) -> AgentRecord:
        """Commit the groups on trial: their trial sides become active, the bundle their installed one, its
        release counter their counter, and its floors are raised.

        With no update under way and every group running its committed side, this only refreshes the boot
        counters (RAUC's ``mark-good`` at every boot), so a boot-time unit may call it unconditionally.
        """
        with self._mutex:
            record = self._record
            booted = self.groups.booted()
            active = {name: group.active_slot for name, group in record.groups.items() if name in booted}
            if record.state in AT_REST and booted == active:
                self.groups.mark_good(active)
                self._refresh_boot()
                return record
            self._require("mark good", _S.VERIFYING)
            trial = trial_sides(record)
            for name, slot in trial.items():
                if booted[name] != slot:
                    raise AgentStateError(
                        f"slot group {name}: side {slot} is on trial but side {booted[name]} is running; "
                        "reboot first"
                    )
            broken = (
                self._vehicle_broken()
            )  # the vehicle left the update's preconditions: the old software stays
            if broken is not None:
                self._rollback(broken)
                return self._record
            self.groups.mark_good(trial)
            self._go(_S.ACTIVATED, groups=committed_groups(record), installed=record.bundle, failure=None)
            self._vehicle_result(True, None)
            return self._record

    @journaled("roll back")
    def rollback(self, reason: str = "rollback requested") -> AgentRecord:
        """Go back to the active sides from a trial (``Activating``/``Verifying`` → ``RollingBack`` →
        ``RolledBack``); the trial sides are marked bad."""
        with self._mutex:
            self._require("roll back", _S.ACTIVATING, _S.VERIFYING)
            self._rollback(reason)
            return self._record

    def _rollback(self, reason: str) -> None:
        if self._record.state is not _S.ROLLING_BACK:
            self._go(_S.ROLLING_BACK, failure=reason)
        trial = trial_sides(self._record)
        self.groups.mark_bad(trial)
        groups = with_bad_trial_sides(self._record)
        if groups != self._record.groups:
            self._persist(updated(self._record, groups=groups))
        self._refresh_boot()
        running = self.groups.booted()
        changing = {name for name in trial if running[name] != self._record.groups[name].active_slot}
        booted = self._reboot(changing) if changing else running
        if booted is None:
            return  # the reboot finishes the rollback (_recover)
        self.groups.switch_trees(booted)
        self._go(_S.ROLLED_BACK, groups=without_trial(self._record))
        self._vehicle_result(False, reason)
