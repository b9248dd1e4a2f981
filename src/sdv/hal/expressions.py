"""Safe arithmetic expressions of one variable ``x``, as the KUKSA CAN provider's VSS mappings write them
(``transform: {math: "floor(x*100)/100"}``).

An expression is parsed once with :mod:`ast` and compiled into a tree of small closures; nothing is ever passed to
``eval``. The accepted language is closed: numbers, the variable ``x``, ``+ - * / // %``, unary ``-`` and ``+``,
parentheses and the functions ``floor``, ``ceil``, ``round`` (Python's: halves to even; ``round(v, digits)``),
``abs``, ``min`` and ``max``. No other names, no attribute access, no keywords, no strings; the text is bounded
in length and the tree in size and depth (:data:`MAX_EXPRESSION_CHARS`, :data:`MAX_NODES`, :data:`MAX_DEPTH`).

Besides evaluating, a compiled expression answers two questions at load time: the range of its values for a
range of ``x`` (interval arithmetic, so the answer is never too narrow), which refuses a division whose divisor
can be zero; and whether its values are always integers, which decides whether an integer VSS datatype needs a
rounding rule.
"""

from __future__ import annotations

import ast
import functools
import math
import operator
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = ["MAX_DEPTH", "MAX_EXPRESSION_CHARS", "MAX_NODES", "Expression", "compile_expression"]

MAX_EXPRESSION_CHARS = 512
MAX_NODES = 200
MAX_DEPTH = 32
_LARGEST = 1e300

Number = int | float
Interval = tuple[float, float]
_Evaluate = Callable[[Number], Number]

_FUNCTION_ARITY: dict[str, tuple[int, int]] = {
    "floor": (1, 1),
    "ceil": (1, 1),
    "round": (1, 2),
    "abs": (1, 1),
    "min": (2, 16),
    "max": (2, 16),
}
_FUNCTIONS: dict[str, Callable[..., Number]] = {
    "floor": math.floor,
    "ceil": math.ceil,
    "round": round,
    "abs": abs,
    "min": min,
    "max": max,
}
_BINARY: dict[type[ast.operator], tuple[str, Callable[[Number, Number], Number]]] = {
    ast.Add: ("+", operator.add),
    ast.Sub: ("-", operator.sub),
    ast.Mult: ("*", operator.mul),
    ast.Div: ("/", operator.truediv),
    ast.FloorDiv: ("//", operator.floordiv),
    ast.Mod: ("%", operator.mod),
}


@dataclass(frozen=True)
class _Node:
    """One compiled node: how to evaluate it, its range for a range of x, whether it stays integral."""

    evaluate: _Evaluate
    bounds: Callable[[Interval], Interval]
    integral: Callable[[bool], bool]


@dataclass(frozen=True)
class Expression:
    """A compiled expression of ``x``.

    Attributes:
        text: the expression as written.
    """

    text: str
    _root: _Node

    def __call__(self, x: Number) -> Number:
        """The value at ``x``.

        Raises:
            ArithmeticError: division by zero or overflow (impossible within a range :meth:`bounds` accepted).
            ValueError: ``floor``/``ceil`` of a NaN.
        """
        return self._root.evaluate(x)

    def bounds(self, low: float, high: float) -> Interval:
        """An interval holding every value of the expression for ``low <= x <= high``.

        Raises:
            ValueError: when a divisor's range contains zero, or finite inputs can give infinite values.
        """
        result = self._root.bounds((low, high))
        if math.isfinite(low) and math.isfinite(high) and not all(map(math.isfinite, result)):
            raise ValueError(f"{self.text!r} can overflow for x in [{low:g}, {high:g}]")
        return result

    def is_integral(self, x_integral: bool) -> bool:
        """Whether every value is an integer, given whether ``x`` always is."""
        return self._root.integral(x_integral)


@functools.lru_cache(maxsize=256)
def compile_expression(text: str) -> Expression:
    """Parse and compile an expression of ``x``.

    Raises:
        ValueError: naming what is not allowed and where (column), or what limit the text exceeds.
    """
    if not isinstance(text, str):
        raise ValueError(f"expected an expression as text, got {text!r}")
    if len(text) > MAX_EXPRESSION_CHARS:
        raise ValueError(f"expression longer than {MAX_EXPRESSION_CHARS} characters")
    if not text.strip():
        raise ValueError("empty expression; expected arithmetic of x such as 'x * 0.1 - 40'")
    try:
        with warnings.catch_warnings():  # Python's hints on odd text ("1if x") are no problem of the profile
            warnings.simplefilter("ignore", SyntaxWarning)
            tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as error:
        column = f" at column {error.offset}" if error.offset else ""
        raise ValueError(f"not an expression{column}: {error.msg}") from None
    except (RecursionError, MemoryError, ValueError):
        raise ValueError(f"expression nested too deeply (at most {MAX_DEPTH} levels)") from None
    count = sum(1 for _ in ast.walk(tree))
    if count > MAX_NODES:
        raise ValueError(f"expression of more than {MAX_NODES} parts")
    return Expression(text, _compile(tree.body, 1))


def _where(node: ast.AST) -> str:
    return f" at column {getattr(node, 'col_offset', 0) + 1}"


def _compile(node: ast.expr, depth: int) -> _Node:
    if depth > MAX_DEPTH:
        raise ValueError(f"expression nested too deeply (at most {MAX_DEPTH} levels)")
    if isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"only numbers and x are allowed, not {value!r}{_where(node)}")
        if not abs(value) <= _LARGEST:  # also refuses inf and nan
            raise ValueError(
                f"the number {node.value!r:.20}{_where(node)} is too large (at most {_LARGEST:g})"
            )
        return _constant(value)
    if isinstance(node, ast.Name):
        if node.id != "x":
            allowed = ", ".join(_FUNCTIONS)
            raise ValueError(
                f"unknown name {node.id!r}{_where(node)}; the variable is x, the functions {allowed}"
            )
        return _Node(lambda x: x, lambda interval: interval, lambda x_integral: x_integral)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        operand = _compile(node.operand, depth + 1)
        if isinstance(node.op, ast.UAdd):
            return operand
        evaluate = operand.evaluate
        return _Node(
            lambda x: -evaluate(x),
            lambda interval: _negate(operand.bounds(interval)),
            operand.integral,
        )
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        return _binary(node, depth)
    if isinstance(node, ast.Call):
        return _call(node, depth)
    raise ValueError(
        f"{_describe(node)} is not allowed{_where(node)}; expected numbers, x, + - * / // %, parentheses and "
        f"{', '.join(_FUNCTIONS)}"
    )


_OPERATORS: dict[type[ast.AST], str] = {
    ast.Pow: "**",
    ast.BitAnd: "&",
    ast.BitOr: "|",
    ast.BitXor: "^",
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.MatMult: "@",
    ast.Invert: "~",
    ast.Not: "not",
}
_CONSTRUCTS: dict[type[ast.AST], str] = {
    ast.Attribute: "attribute access",
    ast.Subscript: "indexing",
    ast.Compare: "a comparison",
    ast.BoolOp: "and/or",
    ast.Lambda: "lambda",
    ast.IfExp: "if/else",
}


def _describe(node: ast.AST) -> str:
    if isinstance(node, ast.BinOp | ast.UnaryOp):
        return f"the operator {_OPERATORS.get(type(node.op), type(node.op).__name__)}"
    return _CONSTRUCTS.get(type(node), f"'{type(node).__name__}'")


def _constant(value: Number) -> _Node:
    as_float = float(value)
    return _Node(
        lambda x: value, lambda interval: (as_float, as_float), lambda x_integral: float(value).is_integer()
    )


def _binary(node: ast.BinOp, depth: int) -> _Node:
    symbol, function = _BINARY[type(node.op)]
    left, right = _compile(node.left, depth + 1), _compile(node.right, depth + 1)
    left_evaluate, right_evaluate = left.evaluate, right.evaluate

    def bounds(interval: Interval) -> Interval:
        a, b = left.bounds(interval), right.bounds(interval)
        if symbol in ("/", "//", "%") and b[0] <= 0 <= b[1]:
            raise ValueError(
                f"division by zero is possible{_where(node.right)}: the divisor ranges over [{b[0]:g}, {b[1]:g}]"
            )
        if symbol == "%":  # the result has the divisor's sign and is smaller in magnitude
            return (0.0, max(abs(b[0]), abs(b[1]))) if b[0] > 0 else (-max(abs(b[0]), abs(b[1])), 0.0)
        if symbol in ("+", "-"):
            ends = [
                _apply(function, a[0], b[0] if symbol == "+" else b[1]),
                _apply(function, a[1], b[1] if symbol == "+" else b[0]),
            ]
        else:
            ends = [_apply(function, p, q) for p in a for q in b]
        if any(math.isnan(end) for end in ends):  # inf - inf, 0 * inf: unbounded either way
            return -math.inf, math.inf
        low, high = min(ends), max(ends)
        if symbol == "//":
            low, high = _floor_of(low), _floor_of(high)
        return low, high

    def integral(x_integral: bool) -> bool:
        if symbol in ("/", "//"):
            return symbol == "//"  # a floor division always gives a whole number
        return left.integral(x_integral) and right.integral(x_integral)

    return _Node(lambda x: function(left_evaluate(x), right_evaluate(x)), bounds, integral)


def _apply(function: Callable[[Number, Number], Number], a: float, b: float) -> float:
    try:
        return float(function(a, b))
    except OverflowError:
        return math.nan  # unbounded: the caller widens the interval


def _floor_of(value: float) -> float:
    return float(math.floor(value)) if math.isfinite(value) else value


def _negate(interval: Interval) -> Interval:
    return -interval[1], -interval[0]


def _call(node: ast.Call, depth: int) -> _Node:
    if not isinstance(node.func, ast.Name) or node.func.id not in _FUNCTIONS:
        raise ValueError(f"only the functions {', '.join(_FUNCTIONS)} may be called{_where(node)}")
    name = node.func.id
    if node.keywords or any(isinstance(arg, ast.Starred) for arg in node.args):
        raise ValueError(f"{name}() takes plain arguments only{_where(node)}")
    fewest, most = _FUNCTION_ARITY[name]
    if not fewest <= len(node.args) <= most:
        count = str(fewest) if fewest == most else f"{fewest} to {most}"
        raise ValueError(f"{name}() takes {count} argument(s), got {len(node.args)}{_where(node)}")
    if name == "round" and len(node.args) == 2:
        digits = node.args[1]
        if not (isinstance(digits, ast.Constant) and type(digits.value) is int and 0 <= digits.value <= 15):
            raise ValueError(f"round(value, digits) takes digits as a whole number 0 to 15{_where(digits)}")
    arguments = [_compile(arg, depth + 1) for arg in node.args]
    function = _FUNCTIONS[name]
    evaluators = [argument.evaluate for argument in arguments]
    if len(evaluators) == 1:
        only = evaluators[0]
        evaluate: _Evaluate = lambda x: function(only(x))  # noqa: E731 - the closure is the compiled form
    else:
        evaluate = lambda x: function(*[each(x) for each in evaluators])  # noqa: E731

    def bounds(interval: Interval) -> Interval:
        ranges = [argument.bounds(interval) for argument in arguments]
        return _call_bounds(name, ranges)

    def integral(x_integral: bool) -> bool:
        if name in ("floor", "ceil") or (name == "round" and len(arguments) == 1):
            return True
        if name == "round":
            return False
        return all(argument.integral(x_integral) for argument in arguments)

    return _Node(evaluate, bounds, integral)


def _call_bounds(name: str, ranges: Sequence[Interval]) -> Interval:
    low, high = ranges[0]
    if name == "floor":
        return _floor_of(low), _floor_of(high)
    if name == "ceil":
        return (float(math.ceil(low)) if math.isfinite(low) else low), (
            float(math.ceil(high)) if math.isfinite(high) else high
        )
    if name == "round":  # rounding to any number of digits moves a value by less than one
        return low - 1, high + 1
    if name == "abs":
        if low <= 0 <= high:
            return 0.0, max(-low, high)
        return min(abs(low), abs(high)), max(abs(low), abs(high))
    pick = min if name == "min" else max
    return pick(r[0] for r in ranges), pick(r[1] for r in ranges)
