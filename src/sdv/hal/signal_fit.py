"""Whether a profile signal's datatype and range can hold what its DBC signal carries, through its transform and
rounding rule, and whether an actuator's inverse transform gets back to the DBC value (pure; the problems are
located in the profile)."""

from __future__ import annotations

import math

from sdv.errors import Problem
from sdv.hal.codec import SignalLayout
from sdv.hal.expressions import compile_expression
from sdv.hal.profile import (
    LocatedConfig,
    SignalConfig,
    Transform,
)
from sdv.types.datatypes import INTEGER_RANGES, ROUNDING, Value, coerce

__all__ = ["check_fit", "value_table_for"]


def value_table_for(signal: SignalConfig, layout: SignalLayout) -> dict[float, Value] | None:
    """The value table of a signal keyed by DBC physical value, or ``None`` for a linear transform.

    Labels resolve through the DBC signal's choices; a ``string`` signal without a table takes the choice labels.

    Raises:
        ValueError: naming a key that is neither a choice label of the DBC signal nor a number.
    """
    transform = signal.transform
    table = transform.table if transform is not None else None
    if table is None and signal.datatype == "string" and layout.choices:
        table = {label: label for label in layout.choices.values()}
    if table is None:
        return None
    by_label = {label: raw for raw, label in layout.choices.items()}
    resolved: dict[float, Value] = {}
    for key, value in table.items():
        if key in by_label:
            raw = by_label[key]
            physical = layout.to_physical(raw & layout.mask)
        else:
            try:
                physical = float(key)
            except ValueError:
                labels = ", ".join(sorted(by_label)) or "none"
                raise ValueError(
                    f"{key!r} is neither a number nor a choice label of {layout.name} (labels: {labels})"
                ) from None
        resolved[float(physical)] = value
    return resolved


def _transformed_range(transform: Transform | None, layout: SignalLayout) -> tuple[float, float]:
    """The range of VSS values the DBC signal's range maps to (ValueError: an expression that can fail)."""
    low, high = layout.physical_bounds()
    if transform is not None and transform.math is not None:
        return compile_expression(transform.math).bounds(low, high)
    factor, offset = (transform.factor, transform.offset) if transform else (1.0, 0.0)
    ends = sorted((low * factor + offset, high * factor + offset))
    return ends[0], ends[1]


def _fractional(signal: SignalConfig, layout: SignalLayout) -> str | None:
    """Why the signal's values can be fractional (so an integer datatype needs a rounding rule), or None."""
    transform = signal.transform
    dbc_integral = (
        not layout.is_float and float(layout.scale).is_integer() and float(layout.offset).is_integer()
    )
    if transform is not None and transform.math is not None:
        if compile_expression(transform.math).is_integral(dbc_integral):
            return None
        return f"the expression {transform.math!r} gives fractional values of {layout.name}"
    factor, shift = (transform.factor, transform.offset) if transform else (1.0, 0.0)
    step, offset = layout.scale * factor, layout.offset * factor + shift
    if layout.is_float or not (float(step).is_integer() and float(offset).is_integer()):
        return f"the fractional values of {layout.name} (factor {step:g}, offset {offset:g})"
    return None


def check_fit(
    located: LocatedConfig,
    where: tuple[int | str, ...],
    signal: SignalConfig,
    layout: SignalLayout,
    problems: list[Problem],
    *,
    actuator: bool,
) -> None:
    """Whether the signal's datatype and range can hold every value the DBC signal carries."""
    part = "actuator" if actuator else "source"
    try:
        table = value_table_for(signal, layout)
    except ValueError as error:
        problems.append(located.problem((*where, "transform", _table_key(signal)), str(error)))
        return
    if table is not None:
        for value in table.values():
            try:
                coerce(signal.datatype, value)
            except ValueError as error:
                problems.append(
                    located.problem(
                        (*where, "transform", _table_key(signal)), f"{error} (datatype {signal.datatype})"
                    )
                )
        return
    if signal.datatype == "string":
        problems.append(
            located.problem(
                (*where, "datatype"),
                f"string needs a value_table: DBC signal {layout.name} has no choice labels",
            )
        )
        return
    if actuator and signal.transform is not None and signal.transform.inverse is not None:
        _check_inverse(located, where, signal, signal.transform.inverse, layout, problems)
        return
    try:
        low, high = _transformed_range(signal.transform, layout)
    except ValueError as error:
        problems.append(located.problem((*where, "transform", "math"), f"{error} (DBC signal {layout.name})"))
        return
    rounding = ROUNDING.get(signal.rounding or "")
    if rounding is not None and math.isfinite(low) and math.isfinite(high):
        low, high = float(rounding(low)), float(rounding(high))
    dbc_range = f"the DBC signal {layout.name}'s range [{_fmt(low)}, {_fmt(high)}]"
    if signal.datatype == "boolean" and not (low >= 0 and high <= 1):
        problems.append(located.problem((*where, "datatype"), f"boolean cannot hold {dbc_range}"))
    elif signal.datatype in INTEGER_RANGES:
        type_low, type_high = INTEGER_RANGES[signal.datatype]
        fractional = _fractional(signal, layout)
        if low < type_low or high > type_high:
            problems.append(
                located.problem((*where, "datatype"), f"{signal.datatype} cannot hold {dbc_range}")
            )
        elif fractional is not None and signal.rounding is None:
            problems.append(
                located.problem(
                    (*where, "datatype"),
                    f"{signal.datatype} cannot hold {fractional}; give 'rounding' (round, floor, ceil or "
                    "truncate) or a float datatype",
                )
            )
    if actuator:
        # Every request the profile accepts must be encodable into the request signal.
        for bound, name in ((signal.min, "min"), (signal.max, "max")):
            if bound is not None and not low <= bound <= high:
                problems.append(
                    located.problem((*where, name), f"{name} {_fmt(bound)} lies outside {dbc_range} ({part})")
                )
    else:
        # A sensor's range must hold what the bus can deliver, or valid frames would be rejected.
        if signal.min is not None and signal.min > low:
            problems.append(
                located.problem((*where, "min"), f"min {_fmt(signal.min)} cannot hold {dbc_range}")
            )
        if signal.max is not None and signal.max < high:
            problems.append(
                located.problem((*where, "max"), f"max {_fmt(signal.max)} cannot hold {dbc_range}")
            )


def _table_key(signal: SignalConfig) -> str:
    return (
        "mapping" if signal.transform is not None and signal.transform.mapping is not None else "value_table"
    )


def _check_inverse(
    located: LocatedConfig,
    where: tuple[int | str, ...],
    signal: SignalConfig,
    inverse_text: str,
    layout: SignalLayout,
    problems: list[Problem],
) -> None:
    """An actuator's ``inverse`` expression over its requests' range must land within the request signal."""
    inverse = compile_expression(inverse_text)
    low = -math.inf if signal.min is None else signal.min
    high = math.inf if signal.max is None else signal.max
    target_low, target_high = layout.physical_bounds()
    try:
        encoded_low, encoded_high = inverse.bounds(low, high)
    except ValueError as error:
        problems.append(located.problem((*where, "transform", "inverse"), str(error)))
        return
    if encoded_low < target_low or encoded_high > target_high:
        problems.append(
            located.problem(
                (*where, "transform", "inverse"),
                f"requests in [{_fmt(low)}, {_fmt(high)}] give DBC values in [{_fmt(encoded_low)}, "
                f"{_fmt(encoded_high)}], outside the range [{_fmt(target_low)}, {_fmt(target_high)}] of "
                f"{layout.name}; give min and max that fit",
            )
        )


def _fmt(number: float) -> str:
    if math.isinf(number):
        return "inf" if number > 0 else "-inf"
    return f"{number:g}"
