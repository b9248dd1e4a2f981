"""The unchanged ``kuksa-client`` as a provider and as a publisher, run as its own process by the tests.

Never imported by the test process (``kuksa-client`` registers the same protobuf symbols as ``sdv``).

* ``publish HOST PORT``: ``set_current_values`` of a few VSS 4.0 signals, then ``get_current_values`` and a
  ``subscribe_current_values`` until it has seen the value; prints one JSON object.
* ``provide HOST PORT PATH``: ``subscribe_target_values([PATH])`` (kuksa-client opens a v2 provider stream with
  ``ProvideActuationRequest``); prints one JSON line per actuation request it receives, forever.
* ``target HOST PORT PATH VALUE``: ``set_target_values`` (v1 ``Set`` of the target); prints ``{"result": "ok"}``
  or the error's code and message.
* ``metadata HOST PORT``: ``set_metadata`` of one signal's unit; prints the error's code and message.
* ``current HOST PORT JSON``: ``set_current_values`` of the ``{path: value}`` object, then ``get_current_values``
  of its paths; prints them, or the error's code and message when the server refused a value.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from kuksa_client.grpc import Datapoint, Metadata, VSSClient, VSSClientError

PUBLISHED: dict[str, Any] = {
    "Vehicle.Speed": 42.5,
    "Vehicle.Cabin.Door.Row1.DriverSide.IsOpen": True,
    "Vehicle.OBD.DTCList": ["P0001", "U0100"],
}


def _wire(value: Any) -> Any:
    """kuksa-client takes an array value as its text form (``[P0001, U0100]``)."""
    return f"[{', '.join(value)}]" if isinstance(value, list) else value


def _plain(value: Any) -> Any:
    """A value kuksa-client returns as JSON (its arrays are the proto's array messages)."""
    return list(value.values) if hasattr(value, "values") else value


def publish(client: VSSClient) -> dict[str, Any]:
    client.set_current_values({path: Datapoint(_wire(value)) for path, value in PUBLISHED.items()})
    current = client.get_current_values(list(PUBLISHED))
    seen: dict[str, Any] = {}
    for updates in client.subscribe_current_values(list(PUBLISHED), timeout=30):
        seen.update({path: _plain(dp.value) for path, dp in updates.items() if dp is not None})
        if all(path in seen for path in PUBLISHED):
            break
    return {"current": {path: _plain(dp.value) for path, dp in current.items()}, "subscribed": seen}


def provide(client: VSSClient, path: str) -> None:
    for updates in client.subscribe_target_values([path]):
        for received, datapoint in updates.items():
            print(json.dumps({"path": received, "value": datapoint.value}), flush=True)


def _error(error: VSSClientError) -> dict[str, Any]:
    return {"code": error.error.get("code"), "message": error.error.get("message")}


def target(client: VSSClient, path: str, value: str) -> dict[str, Any]:
    try:
        client.set_target_values({path: Datapoint(json.loads(value))})
    except VSSClientError as error:
        return _error(error)
    return {"result": "ok"}


def current(client: VSSClient, values: dict[str, Any]) -> dict[str, Any]:
    try:
        client.set_current_values({path: Datapoint(_wire(value)) for path, value in values.items()})
    except VSSClientError as error:
        return _error(error)
    read = client.get_current_values(list(values))
    return {"current": {path: _plain(dp.value) for path, dp in read.items()}}


def metadata(client: VSSClient) -> dict[str, Any]:
    try:
        client.set_metadata({"Vehicle.Speed": Metadata(unit="mph")})
    except VSSClientError as error:
        return _error(error)
    return {"result": "ok"}


def main() -> None:
    mode, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    with VSSClient(host, port) as client:
        if mode == "provide":
            provide(client, sys.argv[4])
            return
        if mode == "publish":
            result = publish(client)
        elif mode == "current":
            result = current(client, json.loads(sys.argv[4]))
        elif mode == "target":
            result = target(client, sys.argv[4], sys.argv[5])
        else:
            result = metadata(client)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
