"""The deployable DBC files of the opendbc corpus, for tests that load real-world DBC text.

Deployable means what a vehicle integrator would use: the ``.dbc`` files at the top of ``opendbc/dbc`` and the
``*_generated`` files that opendbc's generator assembles from its templates (in memory, nothing is written).
"""

from __future__ import annotations

import functools
from pathlib import Path

__all__ = ["deployable_dbc_files"]


@functools.cache
def _corpus() -> tuple[tuple[str, str], ...]:
    import opendbc
    from opendbc.dbc.generator.generator import generate_all

    directory = Path(opendbc.__file__).parent / "dbc"
    files = {path.stem: path.read_text(encoding="utf-8") for path in directory.glob("*.dbc")}
    files.update(generate_all())
    return tuple(sorted(files.items()))


def deployable_dbc_files() -> list[tuple[str, str]]:
    """Return ``(name, text)`` for every deployable opendbc DBC file, sorted by name (read once, then cached).

    Names have no ``.dbc`` suffix; generated files end in ``_generated``.
    """
    return list(_corpus())
