"""``kuksa-client`` reads current values and metadata, in a process of its own; prints one JSON object.

``kuksa-client`` registers the same protobuf symbols as ``sdv``, so it is never imported by a test process:
:func:`read_with_kuksa_client` runs this file as a script (``python kuksa_values.py HOST PORT PATH...``), which
prints ``{PATH: {"value": ..., "entry_type": ..., "data_type": ...}}``, the value ``null`` where the server has none.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

__all__ = ["read_with_kuksa_client"]


def read_with_kuksa_client(port: int, paths: list[str], timeout: float = 120) -> dict[str, dict[str, Any]]:
    """The current value, entry type and datatype of ``paths`` on 127.0.0.1:``port``, as kuksa-client reads them."""
    done = subprocess.run(
        [sys.executable, __file__, "127.0.0.1", str(port), *paths],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    values: dict[str, dict[str, Any]] = json.loads(done.stdout)
    return values


def main() -> None:
    from kuksa_client.grpc import VSSClient  # only in the script's own process

    host, port, paths = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    with VSSClient(host, port) as client:
        values = client.get_current_values(paths)
        metadata = client.get_metadata(paths)
    entries = {
        path: {
            "value": values[path].value if values.get(path) is not None else None,
            "entry_type": metadata[path].entry_type.name,
            "data_type": metadata[path].data_type.name,
        }
        for path in paths
    }
    print(json.dumps(entries))


if __name__ == "__main__":
    main()
