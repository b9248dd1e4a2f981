"""The precondition language of update bundles: comparisons of live VSS signals joined by ``and``, ``or``, ``not``.

Examples::

    Vehicle.Speed == 0
    Vehicle.Powertrain.Transmission.SelectedGear == PARK        # a named value (an enum member, a string)
    Vehicle.Powertrain.TractionBattery.StateOfCharge.Current >= 30
    Vehicle.Chassis.ParkingBrake.IsEngaged                       # a bare boolean signal
    not Vehicle.Powertrain.TractionBattery.Charging.IsCharging
    Vehicle.Speed < 0.5 and (Vehicle.Body.Trunk.Rear.IsOpen == false or Vehicle.Speed == 0)

Grammar (``path`` is a VSS path of at least two segments, ``name`` a single identifier)::

    condition  := disjunct ("or" disjunct)*
    disjunct   := unary ("and" unary)*
    unary      := "not" unary | "(" condition ")" | path [op literal]
    op         := "==" | "!=" | "<" | "<=" | ">" | ">="
    literal    := number | "quoted string" | 'quoted string' | true | false | name

The text is tokenized and parsed by this module, never passed to ``eval``; it is bounded in length
(:data:`MAX_CONDITION_CHARS`) and depth (:data:`MAX_DEPTH`). A syntax error names the character offset and what
was expected.

Evaluation is fail-safe: a condition is met only when **every** signal it names has a valid value (status
``VALID``, not older than the caller's age limit) and the expression is true; a signal that is stale, not available
or failed its E2E check makes the condition unmet whatever the operators around it (``not`` of an unknown is not
true). A comparison of a number with a string is unmet too, never an error.

This module performs no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import NoReturn

from sdv.ota.errors import PreconditionSyntaxError
from sdv.types.datatypes import Value
from sdv.types.signals import Datapoint
from sdv.types.status import Status

__all__ = [
    "MAX_CONDITION_CHARS",
    "MAX_DEPTH",
    "Condition",
    "ConditionResult",
    "NamedValues",
    "SignalReading",
    "parse_condition",
    "reading_of",
]

MAX_CONDITION_CHARS = 1024
"""Longest condition text."""
MAX_DEPTH = 32
"""Deepest nesting of ``not``, ``and``/``or`` and parentheses."""

_TOKEN = re.compile(
    r"\s*(?:"
    r"(?P<number>-?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?)"
    r"|(?P<string>\"[^\"\\]{0,256}\"|'[^'\\]{0,256}')"
    r"|(?P<op>==|!=|<=|>=|<|>)"
    r"|(?P<paren>[()])"
    r"|(?P<word>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*)"
    r")"
)
_KEYWORDS = frozenset({"and", "or", "not"})
_BOOLEANS = {"true": True, "false": False}
_Compare = Callable[[object, object], bool]
_OPERATORS: dict[str, _Compare] = {
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,  # type: ignore[operator]
    "<=": lambda a, b: a <= b,  # type: ignore[operator]
    ">": lambda a, b: a > b,  # type: ignore[operator]
    ">=": lambda a, b: a >= b,  # type: ignore[operator]
}
_ORDERED = frozenset({"<", "<=", ">", ">="})
_SIGNAL = "a signal path such as Vehicle.Speed, 'not' or '('"
_LITERAL = "a number, a quoted string, true, false or a named value such as PARK"
NamedValues = Mapping[str, Mapping[str, Value]]
"""Signal path → named value → the value the signal carries for it (``PARK`` → 126 for VSS's gear)."""


@dataclass(frozen=True)
class SignalReading:
    """What a condition saw of one signal.

    Attributes:
        path: the VSS path.
        value: its value (None without a valid one).
        timestamp: when it was measured (Unix seconds), if known.
        status: the status name (``valid``, ``stale``, ``e2e_failed``, ``not_available``; ``too_old`` when the
            value is valid but older than the age limit).
    """

    path: str
    value: Value | None
    timestamp: float | None
    status: str

    @property
    def usable(self) -> bool:
        """Whether the value may decide a condition."""
        return self.status == Status.VALID.value and self.value is not None

    def as_data(self) -> dict[str, object]:
        """The reading as a JSON-ready mapping (for the event log)."""
        value = list(self.value) if isinstance(self.value, tuple) else self.value
        return {"path": self.path, "value": value, "timestamp": self.timestamp, "status": self.status}


@dataclass(frozen=True)
class ConditionResult:
    """The outcome of one condition.

    Attributes:
        text: the condition as written.
        met: whether it holds.
        readings: the signals it named, as seen.
        reason: why it is unmet (None when met).
    """

    text: str
    met: bool
    readings: tuple[SignalReading, ...]
    reason: str | None = None


class _Node:
    def evaluate(self, values: Mapping[str, Value], names: NamedValues) -> bool:  # pragma: no cover
        raise NotImplementedError


@dataclass(frozen=True)
class _Test(_Node):
    path: str
    operator: str | None = None
    literal: Value | None = None

    def evaluate(self, values: Mapping[str, Value], names: NamedValues) -> bool:
        value = values[self.path]
        if self.operator is None:
            return value is True
        literal = self.literal
        if isinstance(literal, str) and not isinstance(value, str):
            literal = names.get(self.path, {}).get(literal, literal)
        if isinstance(value, bool) != isinstance(literal, bool):
            return False
        if isinstance(value, (int, float)) != isinstance(literal, (int, float)):
            return False
        if self.operator in _ORDERED and not isinstance(value, (int, float)):
            return False
        return _OPERATORS[self.operator](value, literal)


@dataclass(frozen=True)
class _Not(_Node):
    operand: _Node

    def evaluate(self, values: Mapping[str, Value], names: NamedValues) -> bool:
        return not self.operand.evaluate(values, names)


@dataclass(frozen=True)
class _Join(_Node):
    conjunction: bool
    operands: tuple[_Node, ...]

    def evaluate(self, values: Mapping[str, Value], names: NamedValues) -> bool:
        results = (operand.evaluate(values, names) for operand in self.operands)
        return all(results) if self.conjunction else any(results)


@dataclass(frozen=True)
class Condition:
    """A parsed precondition.

    Attributes:
        text: the condition as written.
        paths: the signals it names, in order of appearance.
    """

    text: str
    paths: tuple[str, ...]
    _tree: _Node

    def evaluate(
        self,
        datapoints: Mapping[str, Datapoint],
        *,
        now: float | None = None,
        max_age_s: float | None = None,
        names: NamedValues | None = None,
    ) -> ConditionResult:
        """Evaluate on the signals' current datapoints.

        Args:
            datapoints: path → datapoint; a path missing counts as not available.
            now: the current time (Unix seconds), for the age limit.
            max_age_s: a valid value older than this counts as stale (None: no limit).
            names: the numbers named values stand for on signals that carry numbers.
        """
        readings = tuple(reading_of(path, datapoints.get(path), now, max_age_s) for path in self.paths)
        unusable = [reading for reading in readings if not reading.usable]
        if unusable:
            named = ", ".join(f"{reading.path} is {reading.status.replace('_', ' ')}" for reading in unusable)
            return ConditionResult(self.text, False, readings, f"{named} (counts as unmet)")
        values = {reading.path: reading.value for reading in readings if reading.value is not None}
        if self._tree.evaluate(values, names or {}):
            return ConditionResult(self.text, True, readings)
        seen = ", ".join(f"{reading.path} = {reading.value!r}" for reading in readings)
        return ConditionResult(self.text, False, readings, f"false for {seen}")


def reading_of(
    path: str, datapoint: Datapoint | None, now: float | None = None, max_age_s: float | None = None
) -> SignalReading:
    """What a condition sees of one signal: its value only when valid and (with an age limit) recent enough."""
    if datapoint is None:
        return SignalReading(path, None, None, Status.NOT_AVAILABLE.value)
    value, timestamp, status = datapoint
    name = status.value
    if status is Status.VALID and value is None:
        name = Status.NOT_AVAILABLE.value
    if (
        name == Status.VALID.value
        and max_age_s is not None
        and now is not None
        and (timestamp is None or now - timestamp > max_age_s)
    ):
        name = "too_old"
    return SignalReading(path, value if name == Status.VALID.value else None, timestamp, name)


class _Parser:
    def __init__(self, text: str, source: str) -> None:
        self.text = text
        self.source = source
        self.tokens: list[tuple[str, str, int]] = []
        self.position = 0
        self.paths: list[str] = []
        offset = 0
        while offset < len(text):
            if text[offset:].strip() == "":
                break
            match = _TOKEN.match(text, offset)
            if match is None or match.lastgroup is None:
                self.fail(
                    offset + len(text[offset:]) - len(text[offset:].lstrip()), "an unexpected character"
                )
            kind = match.lastgroup
            self.tokens.append((kind, match[kind], match.start(kind)))
            offset = match.end()

    def fail(self, offset: int, found: str, expected: str = "") -> NoReturn:
        wanted = f"; expected {expected}" if expected else ""
        raise PreconditionSyntaxError(
            f"{self.source}: condition {self.text!r}: at character {offset + 1}: {found}{wanted}"
        )

    def peek(self) -> tuple[str, str, int] | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self, expected: str) -> tuple[str, str, int]:
        token = self.peek()
        if token is None:
            self.fail(len(self.text), "the condition ends", expected)
        self.position += 1
        return token

    def word(self, value: str) -> bool:
        token = self.peek()
        if token is not None and token[0] == "word" and token[1] == value:
            self.position += 1
            return True
        return False

    def condition(self, depth: int) -> _Node:
        operands = [self.disjunct(depth)]
        while self.word("or"):
            operands.append(self.disjunct(depth))
        return operands[0] if len(operands) == 1 else _Join(False, tuple(operands))

    def disjunct(self, depth: int) -> _Node:
        operands = [self.unary(depth)]
        while self.word("and"):
            operands.append(self.unary(depth))
        return operands[0] if len(operands) == 1 else _Join(True, tuple(operands))

    def unary(self, depth: int) -> _Node:
        if depth > MAX_DEPTH:
            token = self.peek()
            self.fail(token[2] if token else len(self.text), f"nesting deeper than {MAX_DEPTH}")
        if self.word("not"):
            return _Not(self.unary(depth + 1))
        kind, value, offset = self.take(_SIGNAL)
        if kind == "paren" and value == "(":
            inner = self.condition(depth + 1)
            closing = self.peek()
            if closing is None or closing[:2] != ("paren", ")"):
                self.fail(closing[2] if closing else len(self.text), "no closing parenthesis", "')'")
            self.position += 1
            return inner
        if kind != "word" or "." not in value or value in _KEYWORDS:
            self.fail(offset, f"{value!r}", _SIGNAL)
        self.paths.append(value)
        operator = self.peek()
        if operator is None or operator[0] != "op":
            return _Test(value)
        self.position += 1
        return _Test(value, operator[1], self.literal())

    def literal(self) -> Value:
        kind, value, offset = self.take(_LITERAL)
        if kind == "number":
            number = float(value)
            return int(number) if number.is_integer() and re.fullmatch(r"-?\d+", value) else number
        if kind == "string":
            return value[1:-1]
        if kind == "word" and "." not in value and value not in _KEYWORDS:
            return _BOOLEANS.get(value, value)
        self.fail(
            offset, f"{value!r}", "a number, a quoted string, true, false or a named value such as PARK"
        )


def parse_condition(text: str, source: str = "precondition") -> Condition:
    """Parse a precondition.

    Args:
        text: the condition.
        source: where it was written, for errors (``manifest vehicle.preconditions[2]``).

    Raises:
        PreconditionSyntaxError: the text is empty, too long or not in the language; the message names the
            character and what was expected.
    """
    if not text.strip():
        raise PreconditionSyntaxError(
            f"{source}: the condition is empty; expected a comparison such as Vehicle.Speed == 0"
        )
    if len(text) > MAX_CONDITION_CHARS:
        raise PreconditionSyntaxError(
            f"{source}: the condition is longer than {MAX_CONDITION_CHARS} characters"
        )
    parser = _Parser(text, source)
    tree = parser.condition(0)
    rest = parser.peek()
    if rest is not None:
        parser.fail(rest[2], f"{rest[1]!r} after a complete condition", "'and', 'or' or the end")
    return Condition(text, tuple(dict.fromkeys(parser.paths)), tree)
