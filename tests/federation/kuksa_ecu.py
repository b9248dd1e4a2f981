"""The unchanged ``kuksa-client`` against one ECU's ``sdv serve``; prints one JSON object on stdout.

Run as a script (``kuksa-client`` registers the same protobuf symbols as ``sdv``'s generated modules):

* ``read HOST PORT PATH...``: the current value of each path (null when not available);
* ``actuate HOST PORT PATH VALUE``: a v1 target (``set_target_values``) with the JSON ``VALUE``; prints
  ``{"result": "ok"}`` or the error's gRPC code and message, and the seconds it took.
"""

from __future__ import annotations

import json
import sys
import time

from kuksa_client.grpc import Datapoint, VSSClient, VSSClientError


def main() -> None:
    mode, host, port, *rest = sys.argv[1:]
    with VSSClient(host, int(port)) as client:
        if mode == "read":
            values = client.get_current_values(rest)
            print(json.dumps({path: (None if dp is None else dp.value) for path, dp in values.items()}))
            return
        path, value = rest[0], json.loads(rest[1])
        started = time.monotonic()
        try:
            client.set_target_values({path: Datapoint(value)})
            outcome = {"result": "ok"}
        except VSSClientError as error:
            outcome = {"code": str(error.error.get("code")), "message": str(error.error.get("message"))}
        outcome["seconds"] = time.monotonic() - started
        print(json.dumps(outcome))


if __name__ == "__main__":
    main()
