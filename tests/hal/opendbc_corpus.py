"""The deployable DBC files of the opendbc corpus, for tests that load real-world DBC text.

Deployable means what a vehicle integrator would use: the ``.dbc`` files at the top of ``opendbc/dbc`` and the
``*_generated`` files that opendbc's generator assembles from its templates (in memory, nothing is written).
"""

from __future__ import annotations

import contextlib
import functools
import gc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["deployable_dbc_files", "gc_paused", "opendbc_decode", "opendbc_messages"]


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the garbage collector while large files load.

    cantools allocates about a million tuples per large file; the collector's full passes over pytest's heap
    would double the time of the corpus tests without finding anything to free.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


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


def opendbc_messages(name: str) -> dict[str, Any]:
    """opendbc's own parse of a corpus file (``opendbc.can.dbc.DBC``, pure Python): message name -> its ``Msg``.

    opendbc reads a file line by line with regular expressions and knows no multiplexing: it decodes every
    signal it recognises from every frame.
    """
    from opendbc.can.dbc import DBC

    return {message.name: message for message in DBC(name).msgs.values()}


def opendbc_decode(message: Any, data: bytes) -> dict[str, float]:
    """The values opendbc's ``CANParser`` computes from a frame of ``message``, by signal name."""
    from opendbc.can.parser import get_raw_value

    values = {}
    for signal in message.sigs.values():
        raw = get_raw_value(data, signal)
        if signal.is_signed:
            raw -= ((raw >> (signal.size - 1)) & 0x1) * (1 << signal.size)
        values[signal.name] = raw * signal.factor + signal.offset
    return values
