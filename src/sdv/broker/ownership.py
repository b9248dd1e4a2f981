"""Who provides each signal and each actuator: one ownership model for the HAL and outside providers (pure).

An **owner** is whatever feeds the broker: the HAL (the signals it decodes, the actuators it encodes) or an
outside provider connected over gRPC (one ``OpenProviderStream`` call). To the broker all owners are the same kind
of thing: they claim paths, publish values for the signals they claimed, carry out actuations on the actuators
they claimed, and release everything at once when they go away (the HAL stops, the stream ends).

Invariants:

* A signal has at most one owner and an actuator at most one provider; a claim is all or nothing, and a claim of
  a path another owner holds is refused with :class:`~sdv.errors.AlreadyProvidedError` naming the holder's kind
  (``the HAL`` or ``a client``) — the same owner claiming again is not an error.
* An unclaimed signal may be published by any caller (the broker checks the ``provide`` right); a claimed one
  only by its owner.
* An owner may hold an actuator without a provider: a read-only actuator (the HAL decodes its value from the
  bus but has no request message for it); nobody else can provide it and requests for it are refused.
* :meth:`Ownership.release` ends every claim of one owner and returns the signals it held.

Not thread-safe on its own: the broker calls it under its lock.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from sdv.broker.providers import ActuationProvider
from sdv.errors import AlreadyProvidedError

__all__ = ["Owner", "OwnerKind", "Ownership"]


class OwnerKind(enum.Enum):
    """What an owner is; the value is how refusals name it."""

    HAL = "the HAL"
    CLIENT = "a client"


@dataclass(frozen=True, eq=False)
class Owner:
    """One source of signals and actuations; compared by identity (two streams of one client are two owners).

    Attributes:
        kind: the HAL or a client.
        name: who it is, for messages and logs (a client's token subject or peer address).
    """

    kind: OwnerKind
    name: str = ""

    def describe(self) -> str:
        """``the HAL`` or ``a client (NAME)``, as refusals name the holder of a claim."""
        if self.kind is OwnerKind.HAL or not self.name:
            return self.kind.value
        return f"{self.kind.value} ({self.name})"


class Ownership:
    """The claims on signals and actuators (see the module invariants)."""

    def __init__(self) -> None:
        self._signals: dict[str, Owner] = {}
        self._actuators: dict[str, tuple[Owner, ActuationProvider | None]] = {}

    def _refuse_held(self, paths: Sequence[str], owner: Owner, held: dict[str, Owner]) -> None:
        for path in paths:
            holder = held.get(path)
            if holder is not None and holder is not owner:
                raise AlreadyProvidedError(f"{path} is already provided by {holder.describe()}")

    def claim_signals(self, paths: Sequence[str], owner: Owner) -> None:
        """Make ``owner`` the one publisher of ``paths`` (all or none).

        Raises:
            AlreadyProvidedError: another owner holds one of the signals.
        """
        self._refuse_held(paths, owner, self._signals)
        for path in paths:
            self._signals[path] = owner

    def claim_actuators(self, paths: Sequence[str], owner: Owner, provider: ActuationProvider | None) -> None:
        """Make ``owner`` (carrying out requests with ``provider``) the one provider of ``paths`` (all or none).

        A ``provider`` of None holds the actuators read-only: nobody else provides them and they take no requests.

        Raises:
            AlreadyProvidedError: another owner provides one of the actuators.
        """
        self._refuse_held(paths, owner, {path: held[0] for path, held in self._actuators.items()})
        for path in paths:
            self._actuators[path] = (owner, provider)

    def check_publisher(self, path: str, owner: Owner | None) -> None:
        """Whether ``owner`` (None: a caller that claimed nothing) may publish ``path``.

        Raises:
            AlreadyProvidedError: another owner holds the signal.
        """
        holder = self._signals.get(path)
        if holder is not None and holder is not owner:
            raise AlreadyProvidedError(f"{path} is already provided by {holder.describe()}")

    def signal_owner(self, path: str) -> Owner | None:
        """The owner of the signal at ``path``, if claimed."""
        return self._signals.get(path)

    def actuation_provider(self, path: str) -> tuple[Owner, ActuationProvider | None] | None:
        """The owner and provider (None: read-only) of the actuator at ``path``, if claimed."""
        return self._actuators.get(path)

    def release(self, owner: Owner) -> list[str]:
        """End every claim of ``owner``.

        Returns:
            The signal paths it held (its actuators are released too).
        """
        signals = [path for path, holder in self._signals.items() if holder is owner]
        for path in signals:
            del self._signals[path]
        for path in [path for path, (holder, _) in self._actuators.items() if holder is owner]:
            del self._actuators[path]
        return signals
