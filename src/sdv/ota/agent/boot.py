"""Boot selection: which slot of the A/B pair the bootloader starts, with boot attempt counters.

The model is RAUC's for U-Boot: a boot order (``BOOT_ORDER="B A"``) and a number of attempts left per slot
(``BOOT_A_LEFT``, ``BOOT_B_LEFT``). At every boot the bootloader takes the first slot in the order with attempts
left and decrements its counter; a slot whose counter reached 0 is skipped, so a new slot that never gets
marked good falls back to the old one on its own. Marking a slot good resets its counter.

:class:`BootEnv` holds these rules without I/O. A :class:`BootSelector` stores a :class:`BootEnv`:
:class:`FileBootSelector` in a JSON file (tests, application-level A/B), :class:`UBootBootSelector` in the U-Boot
environment through ``fw_printenv``/``fw_setenv``, :class:`MemoryBootSelector` in memory.

Which slot *is* running comes from the bootloader: on a vehicle from the kernel command line (``rauc.slot=B``,
:attr:`UBootBootSelector.cmdline`). Without one, :meth:`BootSelector.boot` simulates the bootloader's choice and
records it (``booted``); the update agent calls it once per start, so restarting the agent stands for a reboot.
"""

from __future__ import annotations

import logging
import os
import subprocess
import tempfile
from abc import ABC, abstractmethod
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sdv.ota.agent.state import SlotName, other_slot
from sdv.ota.bundle.store import read_limited, write_atomically
from sdv.ota.errors import BootSelectorError

__all__ = ["BootEnv", "BootSelector", "FileBootSelector", "MemoryBootSelector", "UBootBootSelector"]

_logger = logging.getLogger(__name__)
_SLOTS: tuple[SlotName, SlotName] = ("A", "B")


def _factory_attempts(attempts: int) -> dict[SlotName, int]:
    """A factory-fresh ECU: slot A holds the software, slot B nothing bootable yet."""
    return {"A": attempts, "B": 0}


class BootEnv(BaseModel):
    """The bootloader's variables and the rules that change them (pure).

    Attributes:
        order: slots in the order the bootloader tries them.
        attempts_left: boots left per slot before the bootloader skips it.
        booted: the slot started by the last boot (``None`` before the first).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    order: tuple[SlotName, ...] = Field(default=("A", "B"), min_length=1, max_length=2)
    attempts_left: dict[SlotName, int] = Field(default_factory=lambda: _factory_attempts(3))
    booted: SlotName | None = None

    def left(self, slot: SlotName) -> int:
        """Boot attempts left for ``slot``."""
        return self.attempts_left.get(slot, 0)

    def _with(self, order: tuple[SlotName, ...], **left: int) -> BootEnv:
        return self.model_copy(update={"order": order, "attempts_left": {**self.attempts_left, **left}})

    def with_trial(self, slot: SlotName, attempts: int) -> BootEnv:
        """Boot ``slot`` next, at most ``attempts`` times unless it is marked good; fall back to the other."""
        return self._with((slot, other_slot(slot)), **{slot: attempts})

    def with_good(self, slot: SlotName, attempts: int) -> BootEnv:
        """``slot`` is good: first in the order with a full counter (RAUC ``mark-good``)."""
        return self._with((slot, other_slot(slot)), **{slot: attempts})

    def with_bad(self, slot: SlotName, attempts: int) -> BootEnv:
        """``slot`` is bad: never booted again; the other slot first, bootable (RAUC ``mark-bad``)."""
        other = other_slot(slot)
        return self._with((other, slot), **{slot: 0, other: max(self.left(other), attempts)})

    def next_boot(self, attempts: int) -> BootEnv:
        """The variables after one boot, with ``booted`` set: what a RAUC-style U-Boot script does.

        The first slot in the order with attempts left is booted and its counter decremented. When no slot has
        any left, the script resets every counter to ``attempts`` and boots the first slot of the order.
        """
        for slot in self.order:
            if self.left(slot) > 0:
                return self.model_copy(
                    update={
                        "attempts_left": {**self.attempts_left, slot: self.left(slot) - 1},
                        "booted": slot,
                    }
                )
        reset = {slot: attempts for slot in self.order}
        first = self.order[0]
        return self.model_copy(update={"attempts_left": {**reset, first: attempts - 1}, "booted": first})


class BootSelector(ABC):
    """Reads and changes the boot selection of an A/B pair.

    Args:
        max_attempts: boots a trial slot gets before the bootloader falls back, and the counter of a good slot.
    """

    def __init__(self, max_attempts: int = 3) -> None:
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {max_attempts}")
        self.max_attempts = max_attempts

    @abstractmethod
    def load(self) -> BootEnv:
        """The stored variables (defaults when nothing is stored yet)."""

    @abstractmethod
    def store(self, env: BootEnv) -> None:
        """Store the variables atomically."""

    def booted(self) -> SlotName:
        """The slot that is running (as the last boot recorded it; the first of the order before any boot)."""
        env = self.load()
        return env.booted or env.order[0]

    def adopt_running(self) -> SlotName:
        """Record the first slot of the order as running when no boot was recorded yet (a factory-fresh ECU), so
        that setting a trial later does not change what counts as running before the next boot."""
        env = self.load()
        if env.booted is None:
            env = env.model_copy(update={"booted": env.order[0]})
            self.store(env)
        return env.booted or env.order[0]

    def boot(self) -> SlotName:
        """Simulate the bootloader at a (re)boot: choose the slot, count the attempt, record it."""
        env = self.load().next_boot(self.max_attempts)
        self.store(env)
        _logger.info("boot: slot %s (attempts left %s)", env.booted, env.attempts_left)
        return env.booted or env.order[0]

    def attempts_left(self, slot: SlotName) -> int:
        """Boot attempts left for ``slot``."""
        return self.load().left(slot)

    def set_trial(self, slot: SlotName) -> None:
        """Boot ``slot`` next, on trial."""
        self.store(self.load().with_trial(slot, self.max_attempts))

    def mark_good(self, slot: SlotName) -> None:
        """Commit ``slot``: the bootloader keeps booting it."""
        self.store(self.load().with_good(slot, self.max_attempts))

    def mark_bad(self, slot: SlotName) -> None:
        """Never boot ``slot`` again until it is set on trial anew; the other slot boots."""
        self.store(self.load().with_bad(slot, self.max_attempts))


class MemoryBootSelector(BootSelector):
    """A boot selector that keeps its variables in memory (the in-memory twin for tests)."""

    def __init__(self, max_attempts: int = 3, env: BootEnv | None = None) -> None:
        super().__init__(max_attempts)
        self._env = env or BootEnv(attempts_left=_factory_attempts(max_attempts))

    def load(self) -> BootEnv:
        return self._env

    def store(self, env: BootEnv) -> None:
        self._env = env


class FileBootSelector(BootSelector):
    """A boot selector stored in a JSON file, replaced atomically on every change.

    Args:
        path: the file (created on the first change).
        max_attempts: see :class:`BootSelector`.
    """

    def __init__(self, path: Path, max_attempts: int = 3) -> None:
        super().__init__(max_attempts)
        self.path = path

    def load(self) -> BootEnv:
        if not self.path.exists():
            return BootEnv(attempts_left=_factory_attempts(self.max_attempts))
        data = read_limited(self.path, 4096, "boot selection")
        try:
            return BootEnv.model_validate_json(data)
        except ValidationError as error:
            raise BootSelectorError(f"{self.path}: malformed boot selection: {error}") from error

    def store(self, env: BootEnv) -> None:
        write_atomically(self.path, env.model_dump_json().encode())


class UBootBootSelector(BootSelector):
    """The U-Boot environment, read with ``fw_printenv`` and written with one ``fw_setenv --script`` call.

    Variables as RAUC's U-Boot integration uses them: ``BOOT_ORDER`` (``"A B"``), ``BOOT_A_LEFT``,
    ``BOOT_B_LEFT``. The running slot comes from the kernel command line (``rauc.slot=A``) when ``cmdline`` is
    given; otherwise the simulated boot records it in ``SDV_BOOTED``.

    Args:
        fw_printenv: the ``fw_printenv`` command.
        fw_setenv: the ``fw_setenv`` command (must accept ``-s FILE`` with ``NAME VALUE`` lines).
        max_attempts: see :class:`BootSelector`.
        cmdline: a kernel command line file (``/proc/cmdline``) naming the booted slot.
        timeout_s: how long one command may take.
    """

    def __init__(
        self,
        fw_printenv: str = "fw_printenv",
        fw_setenv: str = "fw_setenv",
        max_attempts: int = 3,
        cmdline: Path | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        super().__init__(max_attempts)
        self.fw_printenv = fw_printenv
        self.fw_setenv = fw_setenv
        self.cmdline = cmdline
        self.timeout_s = timeout_s

    def _run(self, *command: str) -> str:
        try:
            result = subprocess.run(
                command, capture_output=True, text=True, timeout=self.timeout_s, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            raise BootSelectorError(f"{command[0]}: cannot run: {error}") from error
        if result.returncode != 0:
            raise BootSelectorError(
                f"{' '.join(command)} exited with {result.returncode}: {result.stderr.strip()}"
            )
        return result.stdout

    def variables(self) -> dict[str, str]:
        """Every variable ``fw_printenv`` prints."""
        found: dict[str, str] = {}
        for line in self._run(self.fw_printenv).splitlines():
            name, separator, value = line.partition("=")
            if separator:
                found[name.strip()] = value.strip()
        return found

    def load(self) -> BootEnv:
        variables = self.variables()
        try:
            order = tuple(variables.get("BOOT_ORDER", "A B").split())
            left = {
                slot: int(variables.get(f"BOOT_{slot}_LEFT", self.max_attempts if slot == "A" else 0))
                for slot in _SLOTS
            }
            booted = variables.get("SDV_BOOTED") or None
            return BootEnv.model_validate({"order": order, "attempts_left": left, "booted": booted})
        except (ValueError, ValidationError) as error:
            raise BootSelectorError(f"{self.fw_printenv}: malformed RAUC boot variables: {error}") from error

    def store(self, env: BootEnv) -> None:
        lines = [f"BOOT_ORDER {' '.join(env.order)}"]
        lines += [f"BOOT_{slot}_LEFT {env.left(slot)}" for slot in _SLOTS]
        if env.booted is not None:
            lines.append(f"SDV_BOOTED {env.booted}")
        descriptor, name = tempfile.mkstemp(prefix="sdv-fw-setenv-", suffix=".txt")
        try:
            with os.fdopen(descriptor, "w") as script:
                script.write("\n".join(lines) + "\n")
            self._run(self.fw_setenv, "-s", name)
        finally:
            os.unlink(name)

    def booted(self) -> SlotName:
        if self.cmdline is None:
            return super().booted()
        text = read_limited(self.cmdline, 64 * 1024, "kernel command line").decode(errors="replace")
        for word in text.split():
            if word.startswith("rauc.slot="):
                slot = word.removeprefix("rauc.slot=")
                if slot in _SLOTS:
                    return "A" if slot == "A" else "B"
        raise BootSelectorError(f"{self.cmdline}: no rauc.slot=A or rauc.slot=B on the kernel command line")

    def adopt_running(self) -> SlotName:
        if self.cmdline is None:
            return super().adopt_running()
        return self.booted()  # the kernel command line says what runs

    def boot(self) -> SlotName:
        if self.cmdline is None:
            return super().boot()
        return self.booted()  # the real bootloader already chose and counted
