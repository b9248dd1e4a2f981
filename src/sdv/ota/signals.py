"""Where the update agent's live signals come from, and where its software identification goes: the two
implementations of :class:`~sdv.ota.agent.preconditions.SignalSource` (and of the publisher of
:mod:`sdv.ota.software_id`).

* :class:`RemoteSignals`: ``sdv serve`` over the KUKSA ``kuksa.val.v2`` API (:mod:`sdv.sdk`'s blocking client, which
  reconnects), with the agent's own token: read scope on the paths its conditions name, provide scope on the
  software identification branch;
* :class:`BrokerSignals`: the broker of the same process, for an agent run inside ``sdv serve``; it reads and
  publishes with the rights it is given (default: the server's own, ``UNRESTRICTED``).

The agent knows nothing of either (``sdv.ota.agent`` imports no signal stack); the command line builds one from
the agent configuration's ``vehicle.signals`` and hands it to the agent.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from types import TracebackType

from sdv.broker import Broker
from sdv.broker.access import UNRESTRICTED, Access
from sdv.client import ChannelSecurity
from sdv.ota.agent.vehicle_config import SignalsConfig
from sdv.sdk.sync import SyncVehicle
from sdv.types.datatypes import Value
from sdv.types.signals import Datapoint

__all__ = ["BrokerSignals", "RemoteSignals"]

_logger = logging.getLogger(__name__)


class BrokerSignals:
    """The signals of a broker in the same process.

    Args:
        broker: the broker.
        access: the rights reads and publishing run with.
    """

    def __init__(self, broker: Broker, *, access: Access = UNRESTRICTED) -> None:
        self._broker = broker
        self._access = access

    def read(self, paths: Sequence[str]) -> Mapping[str, Datapoint]:
        """The broker's current datapoints (a path the broker does not know is left out: not available)."""
        found: dict[str, Datapoint] = {}
        for path in paths:
            try:
                found[path] = self._broker.get(path, access=self._access)
            except LookupError:
                continue
        return found

    def publish(self, values: Mapping[str, Value]) -> None:
        """Publish attribute values (the software identification)."""
        for path, value in values.items():
            self._broker.publish_value(path, value, access=self._access)


class RemoteSignals:
    """The signals of ``sdv serve`` over the KUKSA API, with the agent's token; use in ``with`` or :meth:`close`.

    Args:
        config: the agent configuration's ``vehicle.signals`` (its ``server`` is required).
    """

    def __init__(self, config: SignalsConfig) -> None:
        if config.server is None:
            raise ValueError("RemoteSignals needs vehicle.signals.server")
        security = ChannelSecurity.from_files(token_file=config.token_file, tls_ca=config.ca)
        self._vehicle = SyncVehicle(config.server, timeout=config.timeout_s, security=security)
        self._open = False

    def __enter__(self) -> RemoteSignals:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _connected(self) -> SyncVehicle:
        if not self._open:  # connected at the first read: the agent starts even while sdv serve is down
            self._vehicle.__enter__()
            self._open = True
        return self._vehicle

    def read(self, paths: Sequence[str]) -> Mapping[str, Datapoint]:
        """The server's current values (a signal without a value is not available).

        Raises:
            SdvError: the server cannot be reached, refuses the token, or knows a path not.
        """
        values = self._connected().get_many(list(paths))
        return {
            path: Datapoint(
                value.value, None if value.timestamp is None else value.timestamp.timestamp(), value.status
            )
            for path, value in values.items()
        }

    def publish(self, values: Mapping[str, Value]) -> None:
        """Publish attribute values (the software identification) as their provider."""
        vehicle = self._connected()
        for path, value in values.items():
            vehicle.publish(path, value)

    def close(self) -> None:
        """Close the connection."""
        if self._open:
            self._open = False
            self._vehicle.close()
