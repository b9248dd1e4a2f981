"""``kuksa-client`` against ``sdv serve`` on SocketCAN; prints one JSON object on stdout.

Run as a script, never imported by the test process (``kuksa-client`` registers the same protobuf symbols as
``sdv``). Usage: ``python kuksa_socketcan.py HOST PORT``: the current speed, then the low beam's target set to
true through v1 ``Set`` (``set_target_values``), which the HAL sends as a request frame.
"""

from __future__ import annotations

import json
import sys

from kuksa_client.grpc import Datapoint, VSSClient

SPEED = "Vehicle.Speed"
LOW_BEAM = "Vehicle.Body.Lights.Beam.Low.IsOn"


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    with VSSClient(host, port) as client:
        speed = client.get_current_values([SPEED])[SPEED]
        client.set_target_values({LOW_BEAM: Datapoint(True)})
    print(json.dumps({"speed": speed.value}))


if __name__ == "__main__":
    main()
