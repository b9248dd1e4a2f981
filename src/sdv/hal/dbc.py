"""Tolerant DBC loading: repair the deviations real DBC files carry, refuse what is ambiguous.

:func:`load_dbc` reads a DBC text, repairs the deviations below in a pass over its tokens, records one warning
per repair (a :class:`~sdv.errors.Problem` naming the file and the line, also logged), and hands the repaired
text to cantools (``strict=False``). Every repair keeps the text's line structure, so line numbers in warnings
and errors always point at the original text.

Repaired (a warning each):

* ``CM_ SG_ <id> "<text>";`` (a signal comment without a signal name): the comment is dropped.
* ``CM_ <id> "<text>";`` (a message comment without ``BO_``): read as ``CM_ BO_ <id> "<text>";``; dropped if
  no message has that id.
* ``BO_ <id>`` with an id above 0x7FF but without the extended flag (bit 31 of the DBC id): the message is
  marked extended, and every reference to that id (``CM_``, ``BA_``, ``BA_REL_``, ``VAL_``, ``SIG_VALTYPE_``,
  ``BO_TX_BU_``, ``SG_MUL_VAL_``, ``SIG_GROUP_``) is rewritten with it.
* ``VAL_`` and ``SIG_VALTYPE_`` entries for a message or signal that does not exist (or for a signal of
  ``VECTOR__INDEPENDENT_SIG_MSG``, which cantools skips): dropped.
* Numbers without a leading digit (``.25``): written ``0.25``.
* Identifiers that start with a digit (``BO_ 1275 2017_5: ...``, ``SG_ 0_COUNTER : ...``): cantools' grammar
  has no such names, so they are parsed under a leading underscore (``_2017_5``, ``_0_COUNTER``; more
  underscores if that name is taken) and given back their spelling in the file once parsed: messages, signals,
  multiplexer references and nodes of :attr:`LoadedDbc.database` carry the names as written, so decoded
  output, profiles and generated profiles use them. :attr:`LoadedDbc.original_names` maps each parsed name to
  the written one.
* A statement without its closing ``;`` (the next statement starts first): the ``;`` is added.
* A signal of fewer than 1 or more than 64 bits (nothing can read it): dropped, with what refers to it. The
  length is checked before any work is done per bit, so a declared length costs nothing.

Reported as warnings but loaded unchanged:

* Signals of one message that share bits (and are not told apart by a multiplexer value), and signals that
  do not fit in their message's length. cantools loads them with ``strict=False``; a signal that does not fit
  is never decoded.
* A signal whose multiplexer (named by ``SG_MUL_VAL_``) is not a multiplexer signal: cantools never selects
  it, and neither does :mod:`sdv.hal.codec`.

Refused with :class:`~sdv.errors.DbcError` (every problem of the file at once, each with its line and what was
expected):

* A syntax error the repairs do not cover.
* A ``BO_`` frame id wider than 29 bits (after removing the extended flag, bit 31); the pseudo message
  ``VECTOR__INDEPENDENT_SIG_MSG`` is exempt, as cantools skips it.
* Two ``BO_`` with the same frame id (also once a repair marked one extended), or with the same name.
* Two ``SG_`` with the same name in one message.
* A number of more than 100 digits (Python reads no integer of more than 4,300), a message longer than 64 bytes
  (a CAN FD frame), a message of more than 1,024 signals, an IEEE float signal (``SIG_VALTYPE_ 1`` or ``2``)
  that is not 32 or 64 bits long.

A file of more than :data:`MAX_DBC_BYTES` is refused before it is parsed. A file is read as UTF-8, else as
Windows-1252 (what Vector tools write); a leading byte order mark is ignored.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final

from cantools.database.can import Database

from sdv.errors import DbcError, Problem
from sdv.hal.dbc_repair import EXTENDED_FLAG as _EXTENDED_FLAG
from sdv.hal.dbc_repair import Repairer as _Repairer
from sdv.hal.dbc_repair import syntax_problem

__all__ = ["MAX_DBC_BYTES", "LoadedDbc", "load_dbc"]

_LOG = logging.getLogger(__name__)
# The largest file of the opendbc corpus has 485 KB; cantools holds several times a file's size while parsing.
MAX_DBC_BYTES: Final = 32 * 1024 * 1024


@dataclass(frozen=True)
class LoadedDbc:
    """A DBC file loaded into cantools, with the repairs made on the way.

    Attributes:
        path: the file's path, or the name given with ``text``.
        database: the cantools database of the repaired text.
        warnings: one problem per repair or suspicious construct, in line order, each naming file and line.
        original_names: the name an identifier was parsed under -> the identifier as written in the file, for
            each identifier that starts with a digit (the database carries the written ones).
        message_lines: message name -> 1-based line of its ``BO_`` in the original text (see :meth:`line_of`).
    """

    path: str
    database: Database
    warnings: tuple[Problem, ...]
    original_names: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    message_lines: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}), repr=False)

    def line_of(self, message_name: str) -> int | None:
        """Return the line of a message's ``BO_`` in the original text.

        Args:
            message_name: the message's name in :attr:`database`, or as written in the file.

        Returns:
            The 1-based line number, or ``None`` if the file has no such message.
        """
        return self.message_lines.get(message_name)


def _read(path: str) -> str:
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_DBC_BYTES + 1)
    except OSError as error:
        raise DbcError([Problem(path, "file", f"cannot read the file: {error.strerror or error}")]) from error
    if len(data) > MAX_DBC_BYTES:
        raise DbcError([Problem(path, "file", f"larger than {MAX_DBC_BYTES} bytes; expected at most that")])
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        # Vector tools write Windows-1252; latin-1 never fails for the bytes cp1252 leaves undefined.
        try:
            return data.decode("cp1252")
        except UnicodeDecodeError:
            return data.decode("latin-1")


def _sorted(entries: list[tuple[int, Problem]]) -> Iterator[Problem]:
    return (problem for _, problem in sorted(entries, key=lambda entry: entry[0]))


def load_dbc(source: str | os.PathLike[str], *, text: str | None = None) -> LoadedDbc:
    """Load a DBC file, repairing the deviations listed in the module documentation.

    Args:
        source: the path of the file to read, or, with ``text``, the name used in warnings and errors.
        text: the DBC text; if given, ``source`` is not read.

    Returns:
        The loaded database with the warnings of every repair. Each warning is also logged.

    Raises:
        DbcError: the file cannot be read, has a syntax error the repairs do not cover, a frame id wider than
            29 bits, two messages with the same frame id or name, or two signals of one message with the
            same name. Lists every such problem with its line.
    """
    file = os.fspath(source)
    if text is None:
        text = _read(file)
    if text.startswith("\ufeff"):
        # A byte order mark is encoding, not content; a blank keeps every column in place.
        text = " " + text[1:]
    repairer = _Repairer(file, text)
    repairer.split(repairer.tokenize())
    repairer.collect()
    repairer.check_ids()
    repairer.check_value_types()
    if repairer.errors:
        raise DbcError(list(_sorted(repairer.errors)))
    repairer.repair()
    repairer.check_layout()
    repaired = repairer.repaired_text()
    database = Database(strict=False)
    try:
        database.add_dbc_string(repaired)
    except Exception as error:  # cantools raises parser errors, ValueError, KeyError ...: all mean "bad file"
        raise DbcError([syntax_problem(file, repairer, error)]) from error
    original_names = {new: old for old, new in repairer.renames.items()}
    if original_names:
        _restore_names(database, original_names)
    _warn_unselected(repairer, database)
    warnings = tuple(_sorted(repairer.warnings))
    for warning in warnings:
        _LOG.warning("%s", warning)
    return LoadedDbc(
        path=file,
        database=database,
        warnings=warnings,
        original_names=MappingProxyType(original_names),
        message_lines=MappingProxyType(_message_lines(repairer, database, original_names)),
    )


def _warn_unselected(repairer: _Repairer, database: Database) -> None:
    # SG_MUL_VAL_ may name a plain signal as multiplexer: cantools (and so sdv) never selects what it selects.
    entries = {message.name: message for message in repairer.messages.values()}
    for message in database.messages:
        multiplexers = {signal.name for signal in message.signals if signal.is_multiplexer}
        entry = entries.get(message.name)
        for signal in message.signals:
            if (
                signal.multiplexer_signal is None
                or signal.multiplexer_signal in multiplexers
                or entry is None
            ):
                continue
            line = entry.signals[signal.name].line if signal.name in entry.signals else entry.line
            repairer.warn(
                repairer.line_starts[line - 1],
                f"signal {signal.name} of message {message.name} is selected by {signal.multiplexer_signal}, "
                "which is no multiplexer signal (M); kept it as written, never decoded",
            )


def _restore_names(database: Database, original_names: Mapping[str, str]) -> None:
    """Give every parsed name of the database back its spelling in the file (then rebuild cantools' lookups)."""

    def written(name: str) -> str:
        return original_names.get(name, name)

    for node in database.nodes:
        node.name = written(node.name)
    for message in database.messages:
        message.name = written(message.name)
        message.senders[:] = [written(sender) for sender in message.senders]
        for signal in message.signals:
            signal.name = written(signal.name)
            signal.receivers[:] = [written(receiver) for receiver in signal.receivers]
            if signal.multiplexer_signal is not None:
                signal.multiplexer_signal = written(signal.multiplexer_signal)
    database.refresh()


def _message_lines(
    repairer: _Repairer, database: Database, original_names: Mapping[str, str]
) -> dict[str, int]:
    lines: dict[str, int] = {}
    by_frame: dict[tuple[int, bool], int] = {}
    for message in repairer.messages.values():
        dbc_id = repairer.id_rewrites.get(message.dbc_id, message.dbc_id)
        by_frame[(dbc_id & ~_EXTENDED_FLAG, bool(dbc_id & _EXTENDED_FLAG))] = message.line
        # As written in the file, and as renamed.
        lines[message.name] = message.line
        lines.setdefault(repairer.renames.get(message.name, message.name), message.line)
    for loaded in database.messages:
        line = by_frame.get((loaded.frame_id, loaded.is_extended_frame))
        if line is not None:
            lines[loaded.name] = line
            original = original_names.get(loaded.name)
            if original is not None:
                lines.setdefault(original, line)
    return lines
