"""The ECU's slot groups as the update agent drives them: a slot backend and a boot selector per group.

Every method acts on the groups it is given and leaves the others alone, so a bundle changes only the groups it
carries (see docs/ota.md, "Slot groups and release counters"). The decisions — which sides are on trial, which
are bad, what is committed — are the record's (:mod:`sdv.ota.agent.state`); this module does the I/O they call
for: boot selections, tree links, health check processes, staging leftovers.
"""

from __future__ import annotations

import shutil

from sdv.ota.agent.boot import BootSelector, UBootBootSelector
from sdv.ota.agent.config import AgentConfig
from sdv.ota.agent.slots import SlotGroup, TreeSlotGroup
from sdv.ota.agent.state import AgentRecord, SlotName
from sdv.ota.agent.store import (
    GroupBoot,
    boot_view,
    make_group,
    make_selectors,
    run_health_check,
    seed_selector,
)
from sdv.ota.bundle.manifest import Manifest, Payload
from sdv.ota.errors import UnknownSlotError

__all__ = ["SlotGroups"]

Sides = dict[str, SlotName]
"""Slot group name → one of its sides."""


class SlotGroups:
    """The slot groups of one ECU, the boot selector's group first.

    Args:
        config: the agent configuration.
        boot_selector: the boot selector of the bootloader's group (default: the configured one).
    """

    def __init__(self, config: AgentConfig, boot_selector: BootSelector | None = None) -> None:
        self.config = config
        self.selectors = make_selectors(config, boot_selector)
        self.slots: dict[str, SlotGroup] = {slot.name: make_group(slot) for slot in config.ordered_slots()}

    @property
    def names(self) -> list[str]:
        """The groups' names, the boot selector's group first."""
        return list(self.slots)

    @property
    def boot_selector(self) -> BootSelector:
        """The selector of the group the bootloader starts."""
        return self.selectors[self.config.boot_group]

    def seed(self, record: AgentRecord) -> None:
        """Give each group's own selection file its first content from the record, where it has none."""
        for name, selector in self.selectors.items():
            seed_selector(selector, record.groups[name])

    def view(self, record: AgentRecord) -> tuple[GroupBoot, ...]:
        """Each group's running side and boot attempts left."""
        return boot_view(record, self.selectors)

    # -- payloads ------------------------------------------------------------------------------------------------

    def group_for(self, payload: Payload, source: str) -> SlotGroup:
        """The group a payload installs into.

        Raises:
            UnknownSlotError: no group serves the payload's target.
        """
        slot = self.config.slot_for(payload)
        if slot is None:
            raise UnknownSlotError(
                f"{source}: payload {payload.name} targets {payload.target.model_dump()}, "
                f"which no slot of this ECU serves ({', '.join(s.name for s in self.config.slots)})"
            )
        return self.slots[slot.name]

    def components(self, manifest: Manifest) -> list[str]:
        """The groups a manifest's payloads install into."""
        source = f"bundle {manifest.name} {manifest.version}"
        return [self.group_for(payload, source).name for payload in manifest.payloads]

    def remove_staging_leftovers(self) -> None:
        """Drop what an interrupted staging left in the tree groups."""
        for group in self.slots.values():
            if isinstance(group, TreeSlotGroup) and group.root.exists():
                for leftover in group.root.glob(".*.incoming.tar"):
                    leftover.unlink()
                for leftover in group.root.glob(".*.new"):
                    shutil.rmtree(leftover, ignore_errors=True)

    # -- boot selection ------------------------------------------------------------------------------------------

    def booted(self) -> Sides:
        """Each group's running side."""
        return {name: selector.booted() for name, selector in self.selectors.items()}

    def start(self, *, boot: bool) -> Sides:
        """Each group's running side at the agent's start; with ``boot``, after a (simulated) boot that counts an
        attempt, as a real reboot would."""
        return {
            name: selector.boot() if boot else selector.booted() for name, selector in self.selectors.items()
        }

    def set_trial(self, sides: Sides) -> None:
        """Boot these sides next, on trial."""
        for name, slot in sides.items():
            self.selectors[name].set_trial(slot)

    def mark_good(self, sides: Sides) -> None:
        """These sides are good: their groups keep booting them with a full counter."""
        for name, slot in sides.items():
            self.selectors[name].mark_good(slot)

    def mark_bad(self, sides: Sides) -> None:
        """These sides failed: their groups never boot them again until they are set on trial anew."""
        for name, slot in sides.items():
            self.selectors[name].mark_bad(slot)

    def needs_reboot(self, changing: set[str]) -> bool:
        """Whether starting ``changing`` needs a real reboot: the bootloader's group changes sides and a reboot
        command (or, on U-Boot with a kernel command line, the next boot) does it."""
        if self.config.boot_group not in changing:
            return False
        selector = self.boot_selector
        return bool(self.config.reboot_command) or (
            isinstance(selector, UBootBootSelector) and selector.cmdline is not None
        )

    def boot_in_process(self, changing: set[str]) -> Sides:
        """Start what the selectors say for ``changing`` without a reboot; the trees follow. Returns every
        group's running side."""
        booted = {
            name: selector.boot() if name in changing else selector.booted()
            for name, selector in self.selectors.items()
        }
        self.switch_trees(booted)
        return booted

    def switch_trees(self, booted: Sides) -> None:
        """Point each tree group's ``current`` link at its running side."""
        for name, slot in booted.items():
            self.slots[name].switch(slot)

    # -- health --------------------------------------------------------------------------------------------------

    def health_check(self, trial: Sides) -> str | None:
        """The agent's check, then each trial group's own; the first failure, or ``None`` when all pass."""
        first = next(iter(trial.values()))
        failure = run_health_check(self.config.health_check, first, trial)
        for name, slot in trial.items():
            if failure is not None:
                break
            failure = run_health_check(self.config.slot(name).health_check, slot, trial, name)
        return failure
