"""``kuksa-client`` reads current values and metadata; prints one JSON object on stdout.

Run as a script, never imported by the test process (``kuksa-client`` registers the same protobuf symbols as
``sdv``). Usage: ``python kuksa_values.py HOST PORT PATH...``: ``{PATH: {"value": ..., "entry_type": ...,
"data_type": ...}}``, the value ``null`` where the server has none.
"""

from __future__ import annotations

import json
import sys

from kuksa_client.grpc import VSSClient


def main() -> None:
    host, port, paths = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    with VSSClient(host, port) as client:
        values = client.get_current_values(paths)
        metadata = client.get_metadata(paths)
    print(
        json.dumps(
            {
                path: {
                    "value": values[path].value if values.get(path) is not None else None,
                    "entry_type": metadata[path].entry_type.name,
                    "data_type": metadata[path].data_type.name,
                }
                for path in paths
            }
        )
    )


if __name__ == "__main__":
    main()
