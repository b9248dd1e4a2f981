"""The repair pass of the tolerant DBC loader: tokens, statements and the deviations it fixes.

:class:`Repairer` reads a DBC text into statements, records every message and signal, checks ids, repairs the
deviations :mod:`sdv.hal.dbc` documents (in place, keeping the text's line structure so that line numbers stay
those of the original), and collects warnings and errors as ``(offset, Problem)`` pairs. It does no I/O.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final, NamedTuple

from sdv.errors import Problem

__all__ = [
    "EXTENDED_FLAG",
    "MAX_MESSAGE_BYTES",
    "MAX_NUMBER_DIGITS",
    "MAX_SIGNALS_PER_MESSAGE",
    "MAX_SIGNAL_BITS",
    "Repairer",
    "syntax_problem",
]

EXTENDED_FLAG: Final = 0x80000000
_STANDARD_MAX: Final = 0x7FF
_EXTENDED_LIMIT: Final = 1 << 29
# Bounds checked before anything is built from a number: no real DBC needs more (the opendbc corpus has at most
# 20 digits in a number and 64-byte messages).
MAX_NUMBER_DIGITS: Final = 100
# The longest CAN frame, a CAN FD frame (ISO 11898-1:2015).
MAX_MESSAGE_BYTES: Final = 64
# An integer signal is read from at most 64 bits; IEEE floats (SIG_VALTYPE_ 1 and 2) have exactly 32 and 64.
MAX_SIGNAL_BITS: Final = 64
# cantools builds a multiplexed message's codec in time quadratic in its signals; real messages have at most
# about a hundred (the opendbc corpus: 106).
MAX_SIGNALS_PER_MESSAGE: Final = 1024
# How many other signals an overlap warning names.
_NAMED_CLASHES: Final = 5
_FLOAT_BITS: Final[Mapping[str, int]] = {"1": 32, "2": 64}
_DIGITS_RE: Final = re.compile(rf"\d{{{MAX_NUMBER_DIGITS + 1},}}")
# cantools skips this pseudo message (it holds signals assigned to no message), so its id is no frame id.
_INDEPENDENT_SIGNALS: Final = "VECTOR__INDEPENDENT_SIG_MSG"

_NUMBER: Final = r"[-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?"
_NAME: Final = r"[A-Za-z_][A-Za-z0-9_]*"
# The token kinds follow cantools' DBC tokenizer, with three differences. A number may start with "." and a
# number glued to letters or "_" is an identifier, so that the repairs see what cantools would misread. And a
# well-formed signal line (standard numbers, names starting with a letter) is one token: none of the repairs
# applies to it, and it is most of a DBC file, so this keeps the pass fast.
_TOKEN_RE: Final = re.compile(
    rf"""
    (?P<skip>[ \t\r\n]+|//[^\n]*)
    | (?P<signal>
        SG_[ \t]+(?P<sg_name>{_NAME})(?:[ \t]+(?P<sg_mux>M|m\d+M?))?[ \t]*:
        [ \t]*(?P<sg_start>\d+)\|(?P<sg_length>\d+)@(?P<sg_order>[01])[+-]
        [ \t]*\([ \t]*{_NUMBER}[ \t]*,[ \t]*{_NUMBER}[ \t]*\)
        [ \t]*\[[ \t]*{_NUMBER}[ \t]*\|[ \t]*{_NUMBER}[ \t]*\]
        [ \t]*"(?:\\"|[^"])*"
        [ \t]*{_NAME}(?:[ \t]*,[ \t]*{_NAME})*
        (?=[ \t]*(?:\r?\n|//|\Z))
      )
    | (?P<string>"(?:\\"|[^"])*?")
    | (?P<number>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?(?![A-Za-z0-9_]))
    | (?P<word>[A-Za-z0-9_]+)
    | (?P<punct>[()\[\],|@+\-;:])
    | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)
# What a syntax error message quotes: the token at the error's offset.
NEAR_RE: Final = re.compile(r'"[^"\n]*"?|[A-Za-z0-9_.]+|\S')
_NEWLINE_RE: Final = re.compile(r"\n")
_BARE_FRACTION_RE: Final = re.compile(r"^([-+]?)\.")
_WHOLE_RE: Final = re.compile(r"[-+]?[0-9]+")

# Every keyword cantools' tokenizer knows: a word with one of these values starts or structures a statement.
_KEYWORDS: Final = frozenset(
    {
        "BA_",
        "BA_DEF_",
        "BA_DEF_DEF_",
        "BA_DEF_DEF_REL_",
        "BA_DEF_REL_",
        "BA_DEF_SGTYPE_",
        "BA_REL_",
        "BA_SGTYPE_",
        "BO_",
        "BO_TX_BU_",
        "BS_",
        "BU_",
        "BU_BO_REL_",
        "BU_EV_REL_",
        "BU_SG_REL_",
        "CAT_",
        "CAT_DEF_",
        "CM_",
        "ENVVAR_DATA_",
        "EV_",
        "EV_DATA_",
        "FILTER",
        "NS_",
        "NS_DESC_",
        "SG_",
        "SG_MUL_VAL_",
        "SGTYPE_",
        "SGTYPE_VAL_",
        "SIG_GROUP_",
        "SIG_TYPE_REF_",
        "SIG_VALTYPE_",
        "SIGTYPE_VALTYPE_",
        "VAL_",
        "VAL_TABLE_",
        "VERSION",
    }
)
# Statements that end with ";". The others (VERSION, NS_, BS_, BU_, BO_, SG_) end where the next one starts.
_SEMICOLON_TERMINATED: Final = frozenset(
    {
        "BA_",
        "BA_DEF_",
        "BA_DEF_DEF_",
        "BA_DEF_DEF_REL_",
        "BA_DEF_REL_",
        "BA_REL_",
        "BO_TX_BU_",
        "CM_",
        "ENVVAR_DATA_",
        "EV_",
        "SG_MUL_VAL_",
        "SIG_GROUP_",
        "SIG_VALTYPE_",
        "VAL_",
        "VAL_TABLE_",
    }
)
# Token kinds that start a statement (a keyword, or a whole signal line).
_STARTERS: Final = frozenset({"keyword", "signal"})
# Keywords that name an object type inside another statement (CM_ SG_ ..., BA_ "x" BO_ ...). Anywhere else
# they start a new statement.
_OBJECT_KEYWORDS: Final = frozenset({"BO_", "SG_", "BU_", "EV_", "BU_SG_REL_", "BU_BO_REL_", "BU_EV_REL_"})
# Where an object keyword may stand inside a statement: its token index, or None for anywhere.
_OBJECT_POSITION: Final[Mapping[str, int | None]] = {
    "CM_": 1,
    "BA_DEF_": 1,
    "BA_": 2,
    "BA_REL_": None,
    "BA_DEF_REL_": None,
}
# Statements whose token 1 is a message id when it is a number (VAL_ may also name an environment variable).
_ID_AT_INDEX_1: Final = frozenset({"VAL_", "SIG_VALTYPE_", "BO_TX_BU_", "SG_MUL_VAL_", "SIG_GROUP_"})

# What each statement should look like, for syntax errors.
SYNTAX: Final[Mapping[str, str]] = {
    "VERSION": 'VERSION "<text>"',
    "NS_": "NS_ : <keyword> ...",
    "BS_": "BS_:",
    "BU_": "BU_: <node> ...",
    "BO_": "BO_ <id> <name>: <length> <sender>",
    "SG_": (
        'SG_ <name> [M|m<value>] : <start>|<length>@<0|1><+|-> (<factor>,<offset>) [<min>|<max>] "<unit>" '
        "<receiver>,..."
    ),
    "CM_": 'CM_ [BU_ <node> | BO_ <id> | SG_ <id> <signal> | EV_ <variable>] "<text>";',
    "BA_DEF_": 'BA_DEF_ [BU_|BO_|SG_|EV_] "<name>" <INT|HEX|FLOAT|STRING|ENUM> [<min> <max> | "<item>",...];',
    "BA_DEF_DEF_": 'BA_DEF_DEF_ "<name>" <value>;',
    "BA_": 'BA_ "<name>" [BU_ <node> | BO_ <id> | SG_ <id> <signal> | EV_ <variable>] <value>;',
    "BA_DEF_REL_": 'BA_DEF_REL_ <BU_SG_REL_|BU_BO_REL_|BU_EV_REL_> "<name>" <type> ...;',
    "BA_DEF_DEF_REL_": 'BA_DEF_DEF_REL_ "<name>" <value>;',
    "BA_REL_": 'BA_REL_ "<name>" BU_SG_REL_ <node> SG_ <id> <signal> <value>;',
    "VAL_": 'VAL_ <id> <signal> <value> "<label>" ...;',
    "VAL_TABLE_": 'VAL_TABLE_ <name> <value> "<label>" ...;',
    "SIG_VALTYPE_": "SIG_VALTYPE_ <id> <signal> : <0|1|2|3>;",
    "BO_TX_BU_": "BO_TX_BU_ <id> : <node>,...;",
    "SG_MUL_VAL_": "SG_MUL_VAL_ <id> <signal> <multiplexer> <low>-<high>,...;",
    "SIG_GROUP_": "SIG_GROUP_ <id> <group> <repetitions> : <signal> ...;",
    "EV_": 'EV_ <name> : <type> [<min>|<max>] "<unit>" <initial> <id> <access> <node>,...;',
    "ENVVAR_DATA_": "ENVVAR_DATA_ <variable> : <size>;",
}


class _Token(NamedTuple):
    kind: str
    value: str
    start: int
    end: int


@dataclass
class _Statement:
    keyword: str | None
    tokens: list[_Token]
    dropped: bool = False


@dataclass
class _Signal:
    name: str
    line: int
    start: int
    length: int
    little_endian: bool
    multiplexer_ids: frozenset[int] | None


@dataclass
class _Message:
    dbc_id: int
    name: str
    line: int
    length: int
    signals: dict[str, _Signal] = field(default_factory=dict)


class Repairer:
    """One file's repair pass: tokens -> statements -> edits and warnings."""

    def __init__(self, file: str, text: str) -> None:
        self.file = file
        self.text = text
        self.line_starts = [0, *(match.end() for match in _NEWLINE_RE.finditer(text))]
        self.edits: list[tuple[int, int, str]] = []
        self.warnings: list[tuple[int, Problem]] = []
        self.errors: list[tuple[int, Problem]] = []
        self.renames: dict[str, str] = {}
        self.messages: dict[int, _Message] = {}
        self.id_rewrites: dict[int, int] = {}
        self.statements: list[_Statement] = []
        self.fast_signals: dict[int, _Signal] = {}
        self.words: set[str] | None = None

    # -- helpers ---------------------------------------------------------------------------------------------

    def line(self, offset: int) -> int:
        return bisect.bisect_right(self.line_starts, offset)

    def warn(self, offset: int, message: str) -> None:
        line = self.line(offset)
        self.warnings.append((line, Problem(self.file, f"line {line}", message)))

    def refuse(self, offset: int, message: str) -> None:
        line = self.line(offset)
        self.errors.append((line, Problem(self.file, f"line {line}", message)))

    def drop(self, statement: _Statement, why: str) -> None:
        first, last = statement.tokens[0], statement.tokens[-1]
        # Keep the newlines so that every later line keeps its number.
        self.edits.append((first.start, last.end, "\n" * self.text.count("\n", first.start, last.end)))
        statement.dropped = True
        self.warn(first.start, f"{why}; dropped the statement")

    # -- pass 1: tokens and statements ---------------------------------------------------------------------

    def tokenize(self) -> list[_Token]:
        tokens = []
        for match in _TOKEN_RE.finditer(self.text):
            kind = match.lastgroup
            if kind is None or kind == "skip":
                continue
            value = match.group()
            if kind in {"number", "signal"} and (long_number := _DIGITS_RE.search(value)) is not None:
                # Python refuses to read integers of more than 4,300 digits, and nothing needs a hundred.
                self.refuse(
                    match.start(),
                    f"number of {len(long_number.group())} digits; expected at most {MAX_NUMBER_DIGITS} digits",
                )
                continue
            if kind == "word" and value in _KEYWORDS:
                kind = "keyword"
            elif kind == "signal":
                self.fast_signals[match.start()] = _Signal(
                    name=match["sg_name"],
                    line=self.line(match.start()),
                    start=int(match["sg_start"]),
                    length=int(match["sg_length"]),
                    little_endian=match["sg_order"] == "1",
                    multiplexer_ids=_multiplexer_ids(match["sg_mux"] or ""),
                )
            tokens.append(_Token(kind, value, match.start(), match.end()))
        return tokens

    def split(self, tokens: list[_Token]) -> None:
        """Group the tokens into statements, adding each missing ``;``."""
        count = len(tokens)
        index = 0
        while index < count:
            first = tokens[index]
            keyword = "SG_" if first.kind == "signal" else first.value if first.kind == "keyword" else None
            end = index + 1
            if keyword == "NS_":
                # Like cantools: the NS_ list runs up to the token before the next ":" (that of "BS_:").
                end = index + 2
                while end + 1 < count and tokens[end + 1].value != ":":
                    end += 1
            elif keyword in _SEMICOLON_TERMINATED:
                position = _OBJECT_POSITION.get(keyword, -1)
                while end < count and tokens[end].value != ";":
                    token = tokens[end]
                    if token.kind in _STARTERS and self._starts_statement(token, end - index, position):
                        break
                    end += 1
                if end < count and tokens[end].value == ";":
                    end += 1
                else:
                    last = tokens[end - 1]
                    self.edits.append((last.end, last.end, ";"))
                    self.warn(last.start, f"{keyword} statement has no closing ';'; added one")
            else:
                while end < count and tokens[end].kind not in _STARTERS:
                    end += 1
            self.statements.append(_Statement(keyword, tokens[index:end]))
            index = end

    def _starts_statement(self, token: _Token, index: int, position: int | None) -> bool:
        if token.value not in _OBJECT_KEYWORDS:
            return True
        if position is None or index == position:
            return False
        # An object keyword out of place: a new statement only if it opens a line (the usual layout), else
        # leave it to the syntax check.
        return self.line(token.start) != self.line(self._previous_end(token))

    def _previous_end(self, token: _Token) -> int:
        # The offset just before the token, skipping blanks back to the previous token on the text.
        offset = token.start - 1
        while offset > 0 and self.text[offset] in " \t\r\n":
            offset -= 1
        return offset

    # -- pass 2: messages and signals ------------------------------------------------------------------------

    def collect(self) -> None:
        current: _Message | None = None
        names: dict[str, _Message] = {}
        for statement in self.statements:
            tokens = statement.tokens
            if statement.keyword == "BO_":
                current = None
                if len(tokens) < 5 or tokens[1].kind != "number" or not tokens[1].value.isdigit():
                    continue
                name = tokens[2].value
                declared = _whole_number(tokens[4].value)
                length = declared if declared is not None else 0
                message = _Message(int(tokens[1].value), name, self.line(tokens[0].start), length)
                current = message
                if not 0 <= length <= MAX_MESSAGE_BYTES:
                    self.refuse(
                        tokens[0].start,
                        f"message {name} is {length} bytes long; expected 0 to {MAX_MESSAGE_BYTES} bytes "
                        "(a CAN FD frame)",
                    )
                    continue
                if name == _INDEPENDENT_SIGNALS:
                    # Kept for the references to it, out of the frame id and name checks.
                    self.messages.setdefault(message.dbc_id, message)
                    continue
                other = self.messages.get(message.dbc_id)
                if other is not None:
                    self.refuse(
                        tokens[0].start,
                        f"message {name} has frame id {message.dbc_id}, already used by message {other.name} "
                        f"on line {other.line}; expected each frame id once",
                    )
                    continue
                same_name = names.get(name)
                if same_name is not None:
                    self.refuse(
                        tokens[0].start,
                        f"message name {name} already used by the message on line {same_name.line}; "
                        "expected each message name once",
                    )
                    continue
                self.messages[message.dbc_id] = message
                names[name] = message
            elif statement.keyword == "SG_" and current is not None:
                signal = self.fast_signals.get(tokens[0].start) or self._signal(tokens)
                if signal is None:
                    continue
                if not 1 <= signal.length <= MAX_SIGNAL_BITS:
                    # Checked before any per-bit work: a declared length is only a number in the file.
                    self.drop(
                        statement,
                        f"signal {signal.name} of message {current.name} is {signal.length} bits long; expected "
                        f"1 to {MAX_SIGNAL_BITS} bits",
                    )
                    continue
                if len(current.signals) == MAX_SIGNALS_PER_MESSAGE:
                    self.refuse(
                        tokens[0].start,
                        f"message {current.name} (line {current.line}) has more than {MAX_SIGNALS_PER_MESSAGE} "
                        f"signals; expected at most {MAX_SIGNALS_PER_MESSAGE}",
                    )
                    current = None  # once per message
                    continue
                twin = current.signals.get(signal.name)
                if twin is not None:
                    # cantools keeps both and decodes only one of them: which one is meant cannot be known.
                    self.refuse(
                        tokens[0].start,
                        f"message {current.name} has a second signal {signal.name} (the first is on line "
                        f"{twin.line}); expected each signal name once per message",
                    )
                    continue
                current.signals[signal.name] = signal

    def _signal(self, tokens: list[_Token]) -> _Signal | None:
        # SG_ <name> [mux] : <start> | <length> @ <order> <sign> ...
        if len(tokens) < 8:
            return None
        colon = 2 if tokens[2].value == ":" else 3
        if len(tokens) < colon + 7 or tokens[colon].value != ":":
            return None
        start, length, order = tokens[colon + 1], tokens[colon + 3], tokens[colon + 5]
        # cantools reads signed numbers here too ("+100000", "-1"): so must the checks.
        start_bit, bits = _whole_number(start.value), _whole_number(length.value)
        if start_bit is None or bits is None or order.value not in {"0", "1"}:
            return None
        mux = tokens[2].value if colon == 3 else ""
        return _Signal(
            name=tokens[1].value,
            line=self.line(tokens[0].start),
            start=start_bit,
            length=bits,
            little_endian=order.value == "1",
            multiplexer_ids=_multiplexer_ids(mux),
        )

    def check_value_types(self) -> None:
        """Refuse an IEEE float signal (``SIG_VALTYPE_ 1`` or ``2``) whose length is not that of the float."""
        for statement in self.statements:
            tokens = statement.tokens
            if statement.keyword != "SIG_VALTYPE_" or len(tokens) < 5 or not tokens[1].value.isdigit():
                continue
            message = self.messages.get(int(tokens[1].value))
            signal = message.signals.get(tokens[2].value) if message is not None else None
            value_type = tokens[4].value if tokens[3].value == ":" else tokens[3].value
            bits = _FLOAT_BITS.get(value_type)
            if message is None or signal is None or bits is None or signal.length == bits:
                continue
            self.refuse(
                tokens[0].start,
                f"signal {signal.name} of message {message.name} (line {signal.line}) is {signal.length} bits "
                f"long; SIG_VALTYPE_ {value_type} expected an IEEE float of {bits} bits",
            )

    # -- pass 3: repairs -------------------------------------------------------------------------------------

    def check_ids(self) -> None:
        for message in self.messages.values():
            if message.name == _INDEPENDENT_SIGNALS:
                continue
            raw = message.dbc_id & ~EXTENDED_FLAG
            if raw >= _EXTENDED_LIMIT:
                self.refuse(
                    self.line_starts[message.line - 1],
                    f"message {message.name} has frame id {message.dbc_id} (0x{message.dbc_id:X}), wider "
                    "than 29 bits; expected an 11-bit standard id or a 29-bit extended id with bit 31 set",
                )
            elif raw > _STANDARD_MAX and not message.dbc_id & EXTENDED_FLAG:
                extended = message.dbc_id | EXTENDED_FLAG
                other = self.messages.get(extended)
                if other is not None:
                    self.refuse(
                        self.line_starts[message.line - 1],
                        f"message {message.name} has standard frame id 0x{raw:X}, wider than 11 bits, and "
                        f"message {other.name} on line {other.line} already has extended id 0x{raw:X}; "
                        "expected each frame id once",
                    )
                    continue
                self.id_rewrites[message.dbc_id] = extended
                self.warn(
                    self.line_starts[message.line - 1],
                    f"message {message.name} has standard frame id 0x{raw:X}, wider than 11 bits; "
                    f"marked it extended (DBC id {message.dbc_id | EXTENDED_FLAG})",
                )

    def repair(self) -> None:
        for statement in self.statements:
            tokens = statement.tokens
            keyword = statement.keyword
            if keyword == "CM_" and len(tokens) >= 3:
                self._repair_comment(statement)
            elif keyword in {"VAL_", "SIG_VALTYPE_"} and len(tokens) >= 3 and tokens[1].kind == "number":
                self._check_reference(statement)
            if statement.dropped:
                continue
            for index, token in enumerate(tokens):
                if token.kind == "number":
                    if token.value[0] in ".-+" and _BARE_FRACTION_RE.match(token.value):
                        fixed = _BARE_FRACTION_RE.sub(r"\g<1>0.", token.value)
                        self.edits.append((token.start, token.end, fixed))
                        self.warn(
                            token.start,
                            f"number {token.value} has no digit before the point; read as {fixed}",
                        )
                    elif self.id_rewrites and self._is_id_reference(keyword, tokens, index):
                        rewritten = self.id_rewrites.get(int(token.value)) if token.value.isdigit() else None
                        if rewritten is not None:
                            self.edits.append((token.start, token.end, str(rewritten)))
                elif token.kind == "word" and token.value[0].isdigit():
                    self._rename(token)

    def _repair_comment(self, statement: _Statement) -> None:
        tokens = statement.tokens
        second, third = tokens[1], tokens[2]
        if (
            second.value == "SG_"
            and third.kind == "number"
            and len(tokens) > 3
            and tokens[3].kind == "string"
        ):
            self.drop(statement, f"CM_ SG_ {third.value} has no signal name")
        elif second.kind == "number" and third.kind == "string" and second.value.isdigit():
            if int(second.value) in self.messages:
                self.edits.append((second.start, second.start, "BO_ "))
                self.warn(
                    second.start, f"CM_ {second.value} lacks the object type; read as CM_ BO_ {second.value}"
                )
            else:
                self.drop(statement, f"CM_ {second.value} lacks the object type and no message has that id")

    def _check_reference(self, statement: _Statement) -> None:
        tokens = statement.tokens
        keyword = statement.keyword
        if not tokens[1].value.isdigit():
            return
        message = self.messages.get(int(tokens[1].value))
        signal = tokens[2].value
        if message is None:
            self.drop(statement, f"{keyword} names message id {tokens[1].value}, which no BO_ defines")
        elif message.name == _INDEPENDENT_SIGNALS:
            self.drop(statement, f"{keyword} names a signal of {_INDEPENDENT_SIGNALS}, which is no message")
        elif signal not in message.signals:
            self.drop(
                statement, f"{keyword} names signal {signal}, which message {message.name} does not have"
            )

    @staticmethod
    def _is_id_reference(keyword: str | None, tokens: list[_Token], index: int) -> bool:
        if index == 1:
            # CM_ counts for its "CM_ <id>" form, which the comment repair turns into "CM_ BO_ <id>".
            return keyword in {"BO_", "CM_"} or keyword in _ID_AT_INDEX_1
        previous = tokens[index - 1].value
        if previous in {"BO_", "SG_"}:
            return keyword in {"CM_", "BA_", "BA_REL_"}
        # BA_REL_ "<name>" BU_BO_REL_ <node> <id> <value>;
        return keyword == "BA_REL_" and index >= 2 and tokens[index - 2].value == "BU_BO_REL_"

    def _rename(self, token: _Token) -> None:
        original = token.value
        new = self.renames.get(original)
        if new is None:
            new = "_" + original
            if self.words is None:
                self.words = {
                    token.value
                    for statement in self.statements
                    for token in statement.tokens
                    if token.kind == "word"
                }
            taken = self.words | set(self.renames.values())
            while new in taken:
                new = "_" + new
            self.renames[original] = new
            self.warn(token.start, f"identifier {original} starts with a digit; renamed it {new} throughout")
        self.edits.append((token.start, token.end, new))

    # -- pass 4: apply -----------------------------------------------------------------------------------

    def repaired_text(self) -> str:
        if not self.edits:
            return self.text
        self.edits.sort(key=lambda edit: (edit[0], edit[1]))
        parts = []
        position = 0
        for start, end, replacement in self.edits:
            parts.append(self.text[position:start])
            parts.append(replacement)
            position = end
        parts.append(self.text[position:])
        return "".join(parts)

    def original_offset(self, offset: int) -> int:
        """Map an offset in the repaired text back to the original text (the start of an edit inside one)."""
        shift = 0
        for start, end, replacement in self.edits:
            if offset < start + shift:
                break
            if offset < start + shift + len(replacement):
                return start
            shift += len(replacement) - (end - start)
        return offset - shift

    def check_layout(self) -> None:
        """Warn about signals that share bits or leave their message.

        Signal lengths are bounded (1 to :data:`MAX_SIGNAL_BITS`) when the signals are collected, and only the
        bits inside the message are recorded, each with its owners grouped by multiplexer value. A warning names
        at most :data:`_NAMED_CLASHES` other signals, so each signal costs a bounded number of steps however many
        signals share its bits (a file of thousands of signals on one bit must not take minutes).
        """
        for message in self.messages.values():
            if message.name == _INDEPENDENT_SIGNALS:
                continue
            # bit -> multiplexer value (None: always present) -> the signals on that bit, in file order
            owners: dict[int, dict[int | None, list[_Signal]]] = {}
            limit = message.length * 8
            for signal in message.signals.values():
                bits = _signal_bits(signal)
                if any(bit >= limit or bit < 0 for bit in bits):
                    self.warn(
                        self.line_starts[signal.line - 1],
                        f"signal {signal.name} of message {message.name} does not fit in {message.length} "
                        "bytes; kept it as written",
                    )
                own_keys: tuple[int | None, ...] = (
                    (None,) if signal.multiplexer_ids is None else tuple(signal.multiplexer_ids)
                )
                clashes: dict[str, None] = {}
                for bit in bits:
                    if not 0 <= bit < limit:
                        continue
                    groups = owners.setdefault(bit, {})
                    if len(clashes) <= _NAMED_CLASHES:
                        _collect_clashes(signal, groups, clashes)
                    for key in own_keys:
                        groups.setdefault(key, []).append(signal)
                if clashes:
                    names = ", ".join(list(clashes)[:_NAMED_CLASHES])
                    more = " and more" if len(clashes) > _NAMED_CLASHES else ""
                    self.warn(
                        self.line_starts[signal.line - 1],
                        f"signal {signal.name} of message {message.name} overlaps signal {names}{more}; kept "
                        "both as written",
                    )


def _collect_clashes(
    signal: _Signal, groups: dict[int | None, list[_Signal]], clashes: dict[str, None]
) -> None:
    # A signal always present shares the bit with every group; a multiplexed one with the always-present
    # signals and those of its own multiplexer values. Each list is looked at up to the number named.
    keys: Iterable[int | None] = groups if signal.multiplexer_ids is None else (None, *signal.multiplexer_ids)
    for key in keys:  # lazily: a bit may carry thousands of multiplexer values
        for other in groups.get(key, ())[: _NAMED_CLASHES + 1]:
            clashes.setdefault(other.name)
            if len(clashes) > _NAMED_CLASHES:
                return


def _whole_number(text: str) -> int | None:
    """The value of an optionally signed decimal integer (how cantools reads sizes and bits), else None."""
    return int(text) if _WHOLE_RE.fullmatch(text) else None


def _multiplexer_ids(mux: str) -> frozenset[int] | None:
    # "m3" and "m3M" (a multiplexed multiplexer) are shown for multiplexer value 3; "M" and "" always.
    if mux.startswith("m") and mux[1:].rstrip("M").isdigit():
        return frozenset({int(mux[1:].rstrip("M"))})
    return None


def _signal_bits(signal: _Signal) -> list[int]:
    if signal.little_endian:
        return list(range(signal.start, signal.start + signal.length))
    # Motorola order: the start bit is the most significant one, counted in the DBC's sawtooth numbering.
    bits = []
    position = signal.start
    for _ in range(signal.length):
        bits.append(position)
        position = position + 15 if position % 8 == 0 else position - 1
    return bits


def syntax_problem(file: str, repairer: Repairer, error: Exception) -> Problem:
    """The located problem for a cantools parse error of the repaired text, pointing at the original line."""
    offset = getattr(error, "offset", None)
    if not isinstance(offset, int):
        # Not a parser error (cantools raises ValueError, KeyError ... on content it cannot use).
        return Problem(file, "file", f"cannot load the DBC: {error}; expected a DBC that cantools accepts")
    original = repairer.original_offset(offset)
    line = repairer.line(original)
    column = original - repairer.line_starts[line - 1] + 1
    match = NEAR_RE.match(repairer.text, original)
    near = repr(match.group()) if match else "the end of the file"
    first_on_line = not repairer.text[repairer.line_starts[line - 1] : original].strip()
    if match and first_on_line and match.group() not in _KEYWORDS:
        expected = "a statement starting with a DBC keyword (BO_, SG_, CM_, BA_, VAL_, ...)"
    else:
        starts = [repairer.line(statement.tokens[0].start) for statement in repairer.statements]
        index = bisect.bisect_right(starts, line) - 1
        keyword = repairer.statements[index].keyword if index >= 0 else None
        expected = SYNTAX.get(
            keyword or "", "a statement starting with a DBC keyword (BO_, SG_, CM_, BA_, ...)"
        )
    return Problem(file, f"line {line}", f"unexpected {near} at column {column}; expected {expected}")
