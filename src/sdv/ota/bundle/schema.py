"""Write the manifest's JSON schema: ``python -m sdv.ota.bundle.schema ota/manifest.schema.json``.

The committed schema is generated from :class:`sdv.ota.bundle.manifest.Manifest`; a test checks that the two agree.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from sdv.ota.bundle.manifest import manifest_json_schema

__all__ = ["main", "schema_text"]


def schema_text() -> str:
    """The schema as committed: two-space indented JSON with sorted keys and a final newline."""
    return json.dumps(manifest_json_schema(), indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write the schema to the file named by the only argument, or to standard output."""
    arguments = sys.argv[1:] if argv is None else argv
    if arguments:
        Path(arguments[0]).write_text(schema_text(), encoding="utf-8")
    else:
        sys.stdout.write(schema_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
