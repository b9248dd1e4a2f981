"""The zenoh key layout of a federated vehicle (pure).

``sdv/<vehicle>/sig/<path>``
    the current datapoint of a signal, put by its owner on every change and answered by the owner's queryable;
    the VSS path with ``/`` for ``.`` (``Vehicle.Speed`` → ``sdv/demo/sig/Vehicle/Speed``).
``sdv/<vehicle>/act/<path>``
    an actuator: a query to the owner's exact-key queryable, answered with the owner's result.
``sdv/<vehicle>/meta/<ecu>``
    what an ECU owns, with the metadata a mirror checks before it takes a signal over.
``sdv/<vehicle>/ecu/<ecu>``
    an ECU's liveliness token: present while its session is up.

VSS segments are letters, digits and ``_``, so a path maps onto zenoh key chunks one to one and back; no path
contains the zenoh wildcards ``*`` or ``$``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["KeyLayout"]


@dataclass(frozen=True)
class KeyLayout:
    """The keys of one vehicle."""

    vehicle: str

    @property
    def root(self) -> str:
        """``sdv/<vehicle>``."""
        return f"sdv/{self.vehicle}"

    def signal(self, path: str) -> str:
        """The key of a signal's datapoints."""
        return f"{self.root}/sig/{path.replace('.', '/')}"

    def actuator(self, path: str) -> str:
        """The key actuation requests for ``path`` are sent to."""
        return f"{self.root}/act/{path.replace('.', '/')}"

    def meta(self, ecu: str) -> str:
        """The key of what ``ecu`` owns."""
        return f"{self.root}/meta/{ecu}"

    def ecu(self, ecu: str) -> str:
        """The liveliness token of ``ecu``."""
        return f"{self.root}/ecu/{ecu}"

    @property
    def every_signal(self) -> str:
        """The key expression of every signal of the vehicle."""
        return f"{self.root}/sig/**"

    @property
    def every_ecu(self) -> str:
        """The key expression of every ECU's liveliness token."""
        return f"{self.root}/ecu/*"

    def path_of(self, key: str, kind: str = "sig") -> str | None:
        """The VSS path a ``sig`` (or ``act``) key names; None for a key outside that part of the layout."""
        prefix = f"{self.root}/{kind}/"
        if not key.startswith(prefix) or len(key) == len(prefix):
            return None
        return key[len(prefix) :].replace("/", ".")

    def ecu_of(self, key: str) -> str | None:
        """The ECU a liveliness token names."""
        prefix = f"{self.root}/ecu/"
        name = key[len(prefix) :] if key.startswith(prefix) else ""
        return name if name and "/" not in name else None
