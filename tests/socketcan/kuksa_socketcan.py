"""``kuksa-client`` against ``sdv serve`` on SocketCAN; prints one JSON object on stdout.

Run as a script, never imported by the test process (``kuksa-client`` registers the same protobuf symbols as
``sdv``). Usage: ``python kuksa_socketcan.py HOST PORT [PATH ...]``: the current values of the paths (by default
the speed), then the low beam's target set to true through v1 ``Set`` (``set_target_values``), which the HAL sends
as a request frame. Prints ``{PATH: value}``.
"""

from __future__ import annotations

import json
import sys

from kuksa_client.grpc import Datapoint, VSSClient

SPEED = "Vehicle.Speed"
LOW_BEAM = "Vehicle.Body.Lights.Beam.Low.IsOn"


def main() -> None:
    host, port, paths = sys.argv[1], int(sys.argv[2]), sys.argv[3:] or [SPEED]
    with VSSClient(host, port) as client:
        current = client.get_current_values(paths)
        client.set_target_values({LOW_BEAM: Datapoint(True)})
    print(json.dumps({path: current[path].value if current[path] is not None else None for path in paths}))


if __name__ == "__main__":
    main()
