"""Checks run by the unchanged ``kuksa-client`` package against a server; prints one JSON object on stdout.

Run as a script, never imported by the test process: ``kuksa-client`` registers the same protobuf symbols as
``sdv``'s generated modules. Usage: ``python kuksa_checks.py read|actuate HOST PORT``.

* ``read``: server info, the current value of ``Vehicle.Speed``, its metadata, and a subscription until it has
  seen five different values.
* ``secured``: with a bearer token (``TOKEN``) over TLS trusting ``CA``: the current speed and its metadata, then
  a v1 target for the low beam, which the token may or may not allow (its error is reported, not raised).
  Usage: ``python kuksa_checks.py secured HOST PORT TOKEN CA``.
* ``actuate``: the low beam's target set to true through v1 ``Set`` (``set_target_values``), read back, then
  actuated to false through v2 ``Actuate`` with the client's own v2 stub (kuksa-client 0.6 wraps no v2 actuation).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from kuksa.val.v2 import types_pb2 as types_v2
from kuksa.val.v2 import val_pb2 as val_v2
from kuksa_client.grpc import Datapoint, VSSClient, VSSClientError

SPEED = "Vehicle.Speed"
LOW_BEAM = "Vehicle.Body.Lights.Beam.Low.IsOn"
DISTINCT_SPEEDS = 5
SUBSCRIBE_SECONDS = 40


def read(client: VSSClient) -> dict[str, Any]:
    info = client.get_server_info()
    speed = client.get_current_values([SPEED])[SPEED]
    metadata = client.get_metadata([SPEED])[SPEED]
    speeds: list[float] = []
    for updates in client.subscribe_current_values([SPEED], timeout=SUBSCRIBE_SECONDS):
        datapoint = updates.get(SPEED)
        if datapoint is not None and datapoint.value is not None:
            speeds.append(datapoint.value)
        if len(set(speeds)) >= DISTINCT_SPEEDS:
            break
    return {
        "server": [info.name, info.version],
        "speed": speed.value,
        "speed_type": type(speed.value).__name__,
        "data_type": metadata.data_type.name,
        "entry_type": metadata.entry_type.name,
        "unit": metadata.unit,
        "speeds": speeds,
    }


def actuate(client: VSSClient) -> dict[str, Any]:
    client.set_target_values({LOW_BEAM: Datapoint(True)})
    target = client.get_target_values([LOW_BEAM])[LOW_BEAM]
    request = val_v2.ActuateRequest(
        signal_id=types_v2.SignalID(path=LOW_BEAM), value=types_v2.Value(bool=False)
    )
    client.client_stub_v2.Actuate(request, timeout=10)
    return {"target_after_v1": target.value if target is not None else None, "v2_actuate": "ok"}


def secured(client: VSSClient) -> dict[str, Any]:
    speed = client.get_current_values([SPEED])[SPEED]
    metadata = client.get_metadata([SPEED])[SPEED]
    try:
        client.set_target_values({LOW_BEAM: Datapoint(True)})
        actuation = "ok"
    except VSSClientError as error:
        actuation = str(error.error.get("code"))
    return {"speed": speed.value, "unit": metadata.unit, "actuation": actuation}


def main() -> None:
    mode, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if mode == "secured":
        token, ca = sys.argv[4], Path(sys.argv[5])
        with VSSClient(host, port, token=token, root_certificates=ca, tls_server_name="localhost") as client:
            print(json.dumps(secured(client)))
        return
    with VSSClient(host, port) as client:
        result = read(client) if mode == "read" else actuate(client)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
