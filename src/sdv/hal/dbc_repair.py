"""The repair pass of the tolerant DBC loader: tokens, statements and the deviations it fixes.

:class:`Repairer` reads a DBC text into statements, records every message and signal, checks ids, repairs the
deviations :mod:`sdv.hal.dbc` documents (in place, keeping the text's line structure so that line numbers stay
those of the original), and collects warnings and errors as ``(offset, Problem)`` pairs. It does no I/O.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Mapping
from typing import Final

from sdv.errors import Problem
from sdv.hal.dbc_layout import check_layout
from sdv.hal.dbc_syntax import (
    BARE_FRACTION_RE,
    ID_AT_INDEX_1,
    INDEPENDENT_SIGNALS,
    KEYWORDS,
    NEAR_RE,
    NEWLINE_RE,
    OBJECT_KEYWORDS,
    OBJECT_POSITION,
    SEMICOLON_TERMINATED,
    STARTERS,
    SYNTAX,
    TOKEN_RE,
    MessageEntry,
    SignalEntry,
    Statement,
    Token,
    multiplexer_ids,
    whole_number,
)

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
_FLOAT_BITS: Final[Mapping[str, int]] = {"1": 32, "2": 64}
_DIGITS_RE: Final = re.compile(rf"\d{{{MAX_NUMBER_DIGITS + 1},}}")


class Repairer:
    """One file's repair pass: tokens -> statements -> edits and warnings."""

    def __init__(self, file: str, text: str) -> None:
        self.file = file
        self.text = text
        self.line_starts = [0, *(match.end() for match in NEWLINE_RE.finditer(text))]
        self.edits: list[tuple[int, int, str]] = []
        self.warnings: list[tuple[int, Problem]] = []
        self.errors: list[tuple[int, Problem]] = []
        self.renames: dict[str, str] = {}
        self.messages: dict[int, MessageEntry] = {}
        self.id_rewrites: dict[int, int] = {}
        self.statements: list[Statement] = []
        self.fast_signals: dict[int, SignalEntry] = {}
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

    def drop(self, statement: Statement, why: str) -> None:
        first, last = statement.tokens[0], statement.tokens[-1]
        # Keep the newlines so that every later line keeps its number.
        self.edits.append((first.start, last.end, "\n" * self.text.count("\n", first.start, last.end)))
        statement.dropped = True
        self.warn(first.start, f"{why}; dropped the statement")

    # -- pass 1: tokens and statements ---------------------------------------------------------------------

    def tokenize(self) -> list[Token]:
        tokens = []
        for match in TOKEN_RE.finditer(self.text):
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
            if kind == "word" and value in KEYWORDS:
                kind = "keyword"
            elif kind == "signal":
                self.fast_signals[match.start()] = SignalEntry(
                    name=match["sg_name"],
                    line=self.line(match.start()),
                    start=int(match["sg_start"]),
                    length=int(match["sg_length"]),
                    little_endian=match["sg_order"] == "1",
                    multiplexer_ids=multiplexer_ids(match["sg_mux"] or ""),
                )
            tokens.append(Token(kind, value, match.start(), match.end()))
        return tokens

    def split(self, tokens: list[Token]) -> None:
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
            elif keyword in SEMICOLON_TERMINATED:
                position = OBJECT_POSITION.get(keyword, -1)
                while end < count and tokens[end].value != ";":
                    token = tokens[end]
                    if token.kind in STARTERS and self._starts_statement(token, end - index, position):
                        break
                    end += 1
                if end < count and tokens[end].value == ";":
                    end += 1
                else:
                    last = tokens[end - 1]
                    self.edits.append((last.end, last.end, ";"))
                    self.warn(last.start, f"{keyword} statement has no closing ';'; added one")
            else:
                while end < count and tokens[end].kind not in STARTERS:
                    end += 1
            self.statements.append(Statement(keyword, tokens[index:end]))
            index = end

    def _starts_statement(self, token: Token, index: int, position: int | None) -> bool:
        if token.value not in OBJECT_KEYWORDS:
            return True
        if position is None or index == position:
            return False
        # An object keyword out of place: a new statement only if it opens a line (the usual layout), else
        # leave it to the syntax check.
        return self.line(token.start) != self.line(self._previous_end(token))

    def _previous_end(self, token: Token) -> int:
        # The offset just before the token, skipping blanks back to the previous token on the text.
        offset = token.start - 1
        while offset > 0 and self.text[offset] in " \t\r\n":
            offset -= 1
        return offset

    # -- pass 2: messages and signals ------------------------------------------------------------------------

    def collect(self) -> None:
        current: MessageEntry | None = None
        names: dict[str, MessageEntry] = {}
        for statement in self.statements:
            tokens = statement.tokens
            if statement.keyword == "BO_":
                current = None
                if len(tokens) < 5 or tokens[1].kind != "number" or not tokens[1].value.isdigit():
                    continue
                name = tokens[2].value
                declared = whole_number(tokens[4].value)
                length = declared if declared is not None else 0
                message = MessageEntry(int(tokens[1].value), name, self.line(tokens[0].start), length)
                current = message
                if not 0 <= length <= MAX_MESSAGE_BYTES:
                    self.refuse(
                        tokens[0].start,
                        f"message {name} is {length} bytes long; expected 0 to {MAX_MESSAGE_BYTES} bytes "
                        "(a CAN FD frame)",
                    )
                    continue
                if name == INDEPENDENT_SIGNALS:
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

    def _signal(self, tokens: list[Token]) -> SignalEntry | None:
        # SG_ <name> [mux] : <start> | <length> @ <order> <sign> ...
        if len(tokens) < 8:
            return None
        colon = 2 if tokens[2].value == ":" else 3
        if len(tokens) < colon + 7 or tokens[colon].value != ":":
            return None
        start, length, order = tokens[colon + 1], tokens[colon + 3], tokens[colon + 5]
        # cantools reads signed numbers here too ("+100000", "-1"): so must the checks.
        start_bit, bits = whole_number(start.value), whole_number(length.value)
        if start_bit is None or bits is None or order.value not in {"0", "1"}:
            return None
        mux = tokens[2].value if colon == 3 else ""
        return SignalEntry(
            name=tokens[1].value,
            line=self.line(tokens[0].start),
            start=start_bit,
            length=bits,
            little_endian=order.value == "1",
            multiplexer_ids=multiplexer_ids(mux),
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
            if message.name == INDEPENDENT_SIGNALS:
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
                    if token.value[0] in ".-+" and BARE_FRACTION_RE.match(token.value):
                        fixed = BARE_FRACTION_RE.sub(r"\g<1>0.", token.value)
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

    def _repair_comment(self, statement: Statement) -> None:
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

    def _check_reference(self, statement: Statement) -> None:
        tokens = statement.tokens
        keyword = statement.keyword
        if not tokens[1].value.isdigit():
            return
        message = self.messages.get(int(tokens[1].value))
        signal = tokens[2].value
        if message is None:
            self.drop(statement, f"{keyword} names message id {tokens[1].value}, which no BO_ defines")
        elif message.name == INDEPENDENT_SIGNALS:
            self.drop(statement, f"{keyword} names a signal of {INDEPENDENT_SIGNALS}, which is no message")
        elif signal not in message.signals:
            self.drop(
                statement, f"{keyword} names signal {signal}, which message {message.name} does not have"
            )

    @staticmethod
    def _is_id_reference(keyword: str | None, tokens: list[Token], index: int) -> bool:
        if index == 1:
            # CM_ counts for its "CM_ <id>" form, which the comment repair turns into "CM_ BO_ <id>".
            return keyword in {"BO_", "CM_"} or keyword in ID_AT_INDEX_1
        previous = tokens[index - 1].value
        if previous in {"BO_", "SG_"}:
            return keyword in {"CM_", "BA_", "BA_REL_"}
        # BA_REL_ "<name>" BU_BO_REL_ <node> <id> <value>;
        return keyword == "BA_REL_" and index >= 2 and tokens[index - 2].value == "BU_BO_REL_"

    def _rename(self, token: Token) -> None:
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
            self.warn(
                token.start, f"identifier {original} starts with a digit; parsed it as {new}, kept as written"
            )
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
        """Warn about signals that share bits or leave their message (:func:`sdv.hal.dbc_layout.check_layout`)."""
        check_layout(self)


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
    if match and first_on_line and match.group() not in KEYWORDS:
        expected = "a statement starting with a DBC keyword (BO_, SG_, CM_, BA_, VAL_, ...)"
    else:
        starts = [repairer.line(statement.tokens[0].start) for statement in repairer.statements]
        index = bisect.bisect_right(starts, line) - 1
        keyword = repairer.statements[index].keyword if index >= 0 else None
        expected = SYNTAX.get(
            keyword or "", "a statement starting with a DBC keyword (BO_, SG_, CM_, BA_, ...)"
        )
    return Problem(file, f"line {line}", f"unexpected {near} at column {column}; expected {expected}")
