"""Reads the software identification attributes with the unchanged ``kuksa-client`` package; prints one JSON
object on stdout (attribute path → value; a path without a value is left out).

Run as a script, never imported by the test process: ``kuksa-client`` registers the same protobuf symbols as
``sdv``'s generated modules. Usage: ``python kuksa_software.py HOST PORT TOKEN``.
"""

from __future__ import annotations

import json
import sys

from kuksa_client.grpc import VSSClient

PATHS = ["Vehicle.Software.Rxswin", "Vehicle.Software.Version", "Vehicle.Software.Components"]


def main() -> None:
    host, port, token = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    with VSSClient(host, port, token=token) as client:
        values = client.get_current_values(PATHS)
    found = {}
    for path, datapoint in values.items():
        if datapoint is None or datapoint.value is None:
            continue
        value = datapoint.value
        if hasattr(value, "values"):  # a string[] arrives as the protobuf StringArray
            value = list(value.values)
        found[path] = value
    print(json.dumps(found))


if __name__ == "__main__":
    main()
