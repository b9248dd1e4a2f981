"""Subscription responses serialized once per change for all subscribers, and the handlers that send them.

The protobuf wire form of a message is the concatenation of its fields, and a repeated or map field's entries are
fields of their own: a ``SubscribeResponse`` with several entries is the concatenation of the serialized
responses of one entry each. :class:`EntryCache` keeps, per signal, the bytes of the one-entry response of its
latest datapoint. The broker hands every subscriber of a signal the same datapoint object, so each change is
serialized once, however many subscribers receive it; a response is a join of cached bytes.

Invariants:

* An entry is reused only for the very datapoint object it was built from (identity, not equality), so a
  subscriber never receives another datapoint than the one the broker gave it.
* A cache holds at most one entry per signal: memory bounded by the number of signals, whatever the rate.
* Servicers registered with :func:`add_servicer` may yield such bytes or messages; bytes go out unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

import grpc
from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass

from sdv.types.signals import Datapoint

__all__ = ["EntryCache", "add_servicer"]

Key = TypeVar("Key")


class EntryCache(Generic[Key]):
    """The serialized one-entry responses of the latest datapoints, by signal path.

    Args:
        encode: the serialized one-entry response of a signal (its path and what the subscriber's key for it
            is: a field name, an id and a field name...) holding a datapoint.
    """

    def __init__(self, encode: Callable[[str, Key, Datapoint], bytes]) -> None:
        self._encode = encode
        self._entries: dict[str, tuple[Datapoint, bytes]] = {}

    def response(self, batch: Mapping[str, Datapoint], keys: Mapping[str, Key]) -> bytes:
        """The serialized response holding every datapoint of ``batch``.

        Args:
            batch: datapoints by path, as a broker subscription delivers them.
            keys: what :attr:`encode` needs per path (the subscriber's view of the signal).
        """
        entries = self._entries
        encode = self._encode
        parts = []
        for path, datapoint in batch.items():
            cached = entries.get(path)
            if cached is None or cached[0] is not datapoint:
                cached = (datapoint, encode(path, keys[path], datapoint))
                entries[path] = cached
            parts.append(cached[1])
        return b"".join(parts)


def _serialize(response: Message | bytes) -> bytes:
    return response if isinstance(response, bytes) else response.SerializeToString()


_HANDLERS: dict[tuple[bool, bool], Callable[..., grpc.RpcMethodHandler[Any, Any]]] = {
    (False, False): grpc.unary_unary_rpc_method_handler,
    (False, True): grpc.unary_stream_rpc_method_handler,
    (True, False): grpc.stream_unary_rpc_method_handler,
    (True, True): grpc.stream_stream_rpc_method_handler,
}


def add_servicer(server: grpc.aio.Server, servicer: Any, service: ServiceDescriptor) -> None:
    """Register every method of ``service`` on ``server``, served by the same-named methods of ``servicer``.

    As the generated ``add_..._to_server`` functions do, except that a handler may answer with bytes that are
    already a serialized response (:class:`EntryCache`).
    """
    handlers = {
        method.name: _HANDLERS[method.client_streaming, method.server_streaming](
            getattr(servicer, method.name),
            request_deserializer=GetMessageClass(method.input_type).FromString,
            response_serializer=_serialize,
        )
        for method in service.methods
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service.full_name, handlers),))
