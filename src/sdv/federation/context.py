"""What the parts of one ECU's federation share: its broker, its zenoh session, its section, its ownership, its loop.

:class:`~sdv.federation.node.Federation` builds one once the session is open and hands it to the
:class:`~sdv.federation.exporter.Exporter` and the :class:`~sdv.federation.mirror.Mirror`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import zenoh

from sdv.broker import Broker
from sdv.federation.keys import KeyLayout
from sdv.federation.ownership_map import EcuOwnership
from sdv.federation_config import FederationConfig

__all__ = ["FederationContext"]


@dataclass(frozen=True)
class FederationContext:
    """One ECU's federation, as its parts see it.

    Attributes:
        broker: this ECU's broker.
        session: the federation's zenoh session (the in-vehicle one).
        config: the ``federation:`` section.
        ownership: what this ECU owns, exports and may mirror.
        loop: the event loop the broker's asynchronous side runs on; zenoh's callbacks hand their work to it.
        layout: the vehicle's keys.
    """

    broker: Broker
    session: zenoh.Session
    config: FederationConfig
    ownership: EcuOwnership
    loop: asyncio.AbstractEventLoop
    layout: KeyLayout = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "layout", KeyLayout(self.config.vehicle))
