"""The client SDK: apps read, subscribe to, actuate and provide vehicle signals served over ``kuksa.val.v2``.

Values and metadata come back as the broker's own types (:class:`~sdv.broker.Datapoint`,
:class:`~sdv.broker.SignalMetadata`), and refused requests as the project's exceptions.
"""

from sdv.client.channel import ChannelSecurity, open_channel
from sdv.client.client import DEFAULT_SERVER, VehicleClient
from sdv.client.errors import ServerUnreachableError
from sdv.client.provider import ActuationHandler, ProviderStream

__all__ = [
    "DEFAULT_SERVER",
    "ActuationHandler",
    "ChannelSecurity",
    "ProviderStream",
    "ServerUnreachableError",
    "VehicleClient",
    "open_channel",
]
