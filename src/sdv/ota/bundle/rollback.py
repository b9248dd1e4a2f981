"""Rollback protection per component (Uptane's per-image release counters; RAUC's ``min-bundle-version``).

Each slot group of an ECU is a component with its own committed release counter and its own floor. A bundle is
checked against every group it carries:

* a counter below the group's floor is refused (the vehicle maker's signed minimum, raised by bundles);
* a counter below the group's committed one is refused;
* an equal counter is refused unless the bundle says ``reinstall`` and the ECU's policy allows re-installs;
* groups the bundle does not carry are not compared: an ``apps`` bundle at 43 does not block a ``rootfs``
  bundle at 42.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from sdv.ota.bundle.manifest import Manifest
from sdv.ota.errors import RollbackError

__all__ = ["ComponentCounters", "RollbackCheck", "SingleCounter"]


class RollbackCheck(Protocol):
    """Decides whether a verified manifest's release counter may be installed."""

    def check(self, manifest: Manifest, what: str) -> None:
        """Raise :class:`~sdv.ota.errors.RollbackError` naming ``what`` when it may not."""


@dataclass(frozen=True)
class SingleCounter:
    """One release counter for the whole ECU, strictly increasing (``sdv ota verify --installed-counter``)."""

    installed: int

    def check(self, manifest: Manifest, what: str) -> None:
        if manifest.release_counter <= self.installed:
            raise RollbackError(
                f"{what} has release counter {manifest.release_counter}, not above the installed {self.installed}"
            )


@dataclass(frozen=True)
class ComponentCounters:
    """Counters and floors per slot group.

    Attributes:
        counters: group → committed release counter (missing: 0, the factory software).
        floors: group → lowest release counter accepted (missing: 0).
        components: the groups a manifest's payloads install into (raises for a payload no group serves).
        allow_reinstall: whether a bundle marked ``reinstall`` may install at a group's committed counter.
    """

    counters: Mapping[str, int]
    floors: Mapping[str, int]
    components: Callable[[Manifest], Iterable[str]]
    allow_reinstall: bool = True

    def check(self, manifest: Manifest, what: str) -> None:
        counter = manifest.release_counter
        for group in sorted(set(self.components(manifest))):
            floor = self.floors.get(group, 0)
            installed = self.counters.get(group, 0)
            if counter < floor:
                raise RollbackError(
                    f"{what} has release counter {counter}, below the floor {floor} of slot group {group}"
                )
            if counter < installed:
                raise RollbackError(
                    f"{what} has release counter {counter}, below the installed {installed} of slot group {group}"
                )
            if counter == installed and not (manifest.reinstall and self.allow_reinstall):
                why = (
                    "re-installs are not allowed on this ECU (allow_reinstall: false)"
                    if manifest.reinstall
                    else "the bundle is not marked reinstall"
                )
                raise RollbackError(
                    f"{what} has release counter {counter}, equal to the installed one of slot group {group}, "
                    f"and {why}"
                )
