"""A vehicle: a validated profile together with the DBC files it names, compiled into codecs.

:func:`load_vehicle` is the one way from a profile file to something the HAL can run. It loads every DBC file of
every bus (tolerantly, see :mod:`sdv.hal.dbc`), checks each signal of the profile against them, and reports every
problem at once: unknown bus, message or signal (with close matches), a datatype or range that cannot hold the
DBC signal, value tables naming labels the DBC does not have, E2E settings naming missing signals, a CAN FD
message on a classic bus, a ``services`` mapping naming unknown fields or signals, or signals whose datatype, unit
or kind do not suit the field. Given a VSS catalogue, it also checks every signal against it
(:mod:`sdv.hal.catalogue_check`). The result is immutable.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from sdv.errors import DbcError, Problem, ProfileError
from sdv.hal.catalogue_check import catalogue_problems
from sdv.hal.codec import MessageCodec, SignalLayout, codec_from_cantools
from sdv.hal.dbc import LoadedDbc, load_dbc
from sdv.hal.e2e import available_checksums
from sdv.hal.expressions import compile_expression
from sdv.hal.profile import (
    BusConfig,
    LocatedConfig,
    MessageConfig,
    ProfileConfig,
    ServicesConfig,
    SignalConfig,
    Transform,
    load_profile_config,
    parse_profile_text,
)
from sdv.types.datatypes import INTEGER_RANGES, ROUNDING, Value, coerce
from sdv.types.service_fields import SERVICE_FIELDS, family_of
from sdv.vss import Catalogue

__all__ = ["BusModel", "VehicleDefinition", "load_vehicle", "value_table_for", "vehicle_from_text"]


@dataclass(frozen=True)
class BusModel:
    """One bus with its messages, compiled from its DBC files."""

    config: BusConfig
    dbcs: tuple[LoadedDbc, ...]
    codecs: Mapping[tuple[int, bool], MessageCodec]
    by_name: Mapping[str, MessageCodec]

    @property
    def name(self) -> str:
        """The bus name."""
        return self.config.name


@dataclass(frozen=True)
class VehicleDefinition:
    """A profile checked against its DBC files.

    Attributes:
        config: the profile as read.
        file: the profile file (for messages).
        directory: the profile's directory, against which relative paths resolve.
        buses: bus name → bus.
        signals: VSS path → signal configuration, in profile order.
        messages: (bus, message) → message settings.
        warnings: the DBC loader's repairs and other non-fatal findings.
        catalogue: the VSS catalogue the profile was checked against, if one was given.
    """

    config: ProfileConfig
    file: str
    directory: Path
    buses: Mapping[str, BusModel]
    signals: Mapping[str, SignalConfig]
    messages: Mapping[tuple[str, str], MessageConfig]
    warnings: tuple[Problem, ...]
    catalogue: Catalogue | None = None

    def codec(self, bus: str, message: str) -> MessageCodec:
        """The codec of a message on a bus."""
        return self.buses[bus].by_name[message]

    def cycle_time_ms(self, bus: str, message: str) -> float | None:
        """The message's cycle time: the profile's setting, else the DBC's ``GenMsgCycleTime``."""
        settings = self.messages.get((bus, message))
        if settings is not None and settings.cycle_time_ms is not None:
            return settings.cycle_time_ms
        cycle = self.codec(bus, message).cycle_time_ms
        return float(cycle) if cycle else None

    def resolve(self, path: Path) -> Path:
        """A path from the profile, relative to its directory."""
        return path if path.is_absolute() else self.directory / path


def load_vehicle(path: str | Path, *, catalogue: Catalogue | None = None) -> VehicleDefinition:
    """Load a profile file and the DBC files it names, and check them against each other.

    Args:
        path: the profile file.
        catalogue: a VSS catalogue (:func:`sdv.vss.load_catalogue`) every signal is checked against.

    Raises:
        ProfileError: listing every problem, each with the profile file and key path (and line).
    """
    return _check(load_profile_config(path), catalogue)


def vehicle_from_text(
    text: str, file: str, *, toml: bool = False, catalogue: Catalogue | None = None
) -> VehicleDefinition:
    """Like :func:`load_vehicle`, for profile text; relative paths resolve against ``file``'s directory."""
    return _check(parse_profile_text(text, file, toml=toml), catalogue)


def _suggest(name: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(candidates), n=3)
    return f"; did you mean {', '.join(close)}?" if close else ""


def _check(located: LocatedConfig, catalogue: Catalogue | None = None) -> VehicleDefinition:
    config = located.config
    problems: list[Problem] = []
    warnings: list[Problem] = []
    buses: dict[str, BusModel] = {}
    for bus_index, bus in enumerate(config.buses):
        model = _load_bus(located, bus_index, bus, problems)
        warnings.extend(w for dbc in model.dbcs for w in dbc.warnings)
        buses[bus.name] = model
    messages: dict[tuple[str, str], MessageConfig] = {}
    for index, message in enumerate(config.messages):
        messages[(message.bus, message.message)] = message
        _check_message(located, index, message, buses, problems)
    produced: dict[str, list[Value]] = {}
    for index, signal in enumerate(config.signals):
        layout = _check_signal(located, index, signal, buses, problems)
        table = _table_or_none(signal, layout) if layout is not None else None
        if table is not None:
            produced[signal.path] = list(table.values())
    _check_services(located, config.services, {signal.path: signal for signal in config.signals}, problems)
    if catalogue is not None:
        problems.extend(catalogue_problems(located, catalogue, produced))
    if problems:
        raise ProfileError(problems)
    return VehicleDefinition(
        config=config,
        file=located.file,
        directory=located.directory,
        buses=buses,
        signals={signal.path: signal for signal in config.signals},
        messages=messages,
        warnings=tuple(warnings),
        catalogue=catalogue,
    )


def _load_bus(located: LocatedConfig, bus_index: int, bus: BusConfig, problems: list[Problem]) -> BusModel:
    dbcs = []
    codecs: dict[tuple[int, bool], MessageCodec] = {}
    by_name: dict[str, MessageCodec] = {}
    for dbc_index, dbc_path in enumerate(bus.dbc):
        where = ("buses", bus_index, "dbc", dbc_index)
        resolved = located.resolve(dbc_path)
        try:
            loaded = load_dbc(resolved)
        except DbcError as error:
            problems.append(located.problem(where, f"DBC file {resolved} does not load:"))
            problems.extend(error.problems)
            continue
        dbcs.append(loaded)
        for message in loaded.database.messages:
            codec = codec_from_cantools(message)
            key = (codec.frame_id, codec.is_extended)
            if key in codecs:
                problems.append(
                    located.problem(
                        where,
                        f"{resolved}: message {codec.name} uses frame id 0x{codec.frame_id:X}, already used by "
                        f"{codecs[key].name} on bus {bus.name}",
                    )
                )
                continue
            codecs[key] = codec
            by_name[codec.name] = codec
    if bus.recording is not None:
        recording = located.resolve(bus.recording.file)
        try:
            missing = None if recording.is_file() else f"no such recording: {recording}"
        except OSError as error:  # a name too long, a loop of links: is_file() raises for those
            missing = f"recording {recording} cannot be accessed: {error.strerror or error}"
        if missing is not None:
            problems.append(located.problem(("buses", bus_index, "recording", "file"), missing))
    return BusModel(config=bus, dbcs=tuple(dbcs), codecs=codecs, by_name=by_name)


def _find(
    located: LocatedConfig,
    where: tuple[int | str, ...],
    buses: Mapping[str, BusModel],
    bus: str,
    message: str,
    signal: str | None,
    problems: list[Problem],
) -> tuple[MessageCodec, SignalLayout | None] | None:
    model = buses.get(bus)
    if model is None:
        problems.append(
            located.problem((*where, "bus"), f"unknown bus {bus!r}; buses: {', '.join(buses) or 'none'}")
        )
        return None
    if not model.dbcs:
        return None  # the DBC problem is already reported
    codec = model.by_name.get(message)
    if codec is None:
        files = ", ".join(dbc.path for dbc in model.dbcs)
        problems.append(
            located.problem(
                (*where, "message"),
                f"unknown message {message!r} on bus {bus!r} ({files}){_suggest(message, model.by_name)}",
            )
        )
        return None
    if not model.config.fd and (codec.is_fd or codec.length > 8):
        problems.append(
            located.problem(
                (*where, "message"),
                f"message {message} is a CAN FD message but bus {bus!r} is not 'fd: true'",
            )
        )
    if signal is None:
        return codec, None
    if not codec.has_signal(signal):
        problems.append(
            located.problem(
                (*where, "signal"),
                f"message {message} has no signal {signal!r}{_suggest(signal, codec.signal_names)}",
            )
        )
        return None
    return codec, codec.signal(signal)


def _check_message(
    located: LocatedConfig,
    index: int,
    message: MessageConfig,
    buses: Mapping[str, BusModel],
    problems: list[Problem],
) -> None:
    where: tuple[int | str, ...] = ("messages", index)
    found = _find(located, where, buses, message.bus, message.message, None, problems)
    if found is None or message.e2e is None:
        return
    codec = found[0]
    for field_name in ("counter", "checksum"):
        name = getattr(message.e2e, field_name)
        if not codec.has_signal(name):
            problems.append(
                located.problem(
                    (*where, "e2e", field_name),
                    f"message {codec.name} has no signal {name!r}{_suggest(name, codec.signal_names)}",
                )
            )
    if message.e2e.algorithm not in available_checksums():
        problems.append(
            located.problem(
                (*where, "e2e", "algorithm"),
                f"unknown checksum algorithm {message.e2e.algorithm!r}; known: {', '.join(available_checksums())}",
            )
        )


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


def _check_signal(
    located: LocatedConfig,
    index: int,
    signal: SignalConfig,
    buses: Mapping[str, BusModel],
    problems: list[Problem],
) -> SignalLayout | None:
    """Check one signal against its DBC signals; returns the layout of its source, if found."""
    where: tuple[int | str, ...] = ("signals", index)
    layout = None
    for key, values in (
        ("allowed", signal.allowed or []),
        ("value", [] if signal.value is None else [signal.value]),
    ):
        for value in values:
            try:
                coerce(signal.datatype, value)
            except ValueError as error:
                problems.append(located.problem((*where, key), f"{error} (datatype {signal.datatype})"))
    if signal.source is not None:
        found = _find(
            located,
            (*where, "source"),
            buses,
            signal.source.bus,
            signal.source.message,
            signal.source.signal,
            problems,
        )
        if found is not None and found[1] is not None:
            layout = found[1]
            _check_fit(located, where, signal, layout, problems, actuator=False)
    if signal.actuator is not None:
        bus = signal.actuator.bus or (signal.source.bus if signal.source else "")
        found = _find(
            located,
            (*where, "actuator"),
            buses,
            bus,
            signal.actuator.message,
            signal.actuator.signal,
            problems,
        )
        if found is not None and found[1] is not None:
            _check_fit(located, where, signal, found[1], problems, actuator=True)
    return layout


def _table_or_none(signal: SignalConfig, layout: SignalLayout) -> dict[float, Value] | None:
    try:
        return value_table_for(signal, layout)
    except ValueError:
        return None  # reported by _check_fit


def _check_services(
    located: LocatedConfig,
    services: ServicesConfig,
    signals: Mapping[str, SignalConfig],
    problems: list[Problem],
) -> None:
    """Whether each mapped field exists and its signal exists and suits it (family, unit, actuator for commands)."""
    for service, fields in SERVICE_FIELDS.items():
        for name, path in services.mapping(service).items():
            where: tuple[int | str, ...] = ("services", service, name)
            field = fields.get(name)
            if field is None:
                problems.append(
                    located.problem(
                        where, f"the {service} service has no field {name!r}{_suggest(name, fields)}"
                    )
                )
                continue
            signal = signals.get(path)
            if signal is None:
                problems.append(
                    located.problem(where, f"no signal {path!r} in this profile{_suggest(path, signals)}")
                )
                continue
            family = family_of(signal.datatype)
            if family is not field.family:
                problems.append(
                    located.problem(
                        where,
                        f"{path} is a {signal.datatype} signal; the field {name} needs a {field.family.value} "
                        "datatype",
                    )
                )
            if field.unit is not None and signal.unit is not None and signal.unit != field.unit:
                problems.append(
                    located.problem(where, f"{path} is in {signal.unit}; the field {name} is in {field.unit}")
                )
            if field.command and signal.kind != "actuator":
                problems.append(
                    located.problem(
                        where,
                        f"{path} is a {signal.kind}; the field {name} is commanded, so it needs an actuator",
                    )
                )


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


def _check_fit(
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
