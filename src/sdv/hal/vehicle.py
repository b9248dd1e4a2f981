"""A vehicle: a validated profile together with the DBC files it names, compiled into codecs.

:func:`load_vehicle` is the one way from a profile file to something the HAL can run. It loads every DBC file of
every bus (tolerantly, see :mod:`sdv.hal.dbc`), checks each signal of the profile against them, and reports every
problem at once: unknown bus, message or signal (with close matches), a datatype or range that cannot hold the
DBC signal, value tables naming labels the DBC does not have, E2E settings naming missing signals, a CAN FD
message on a classic bus, a ``services`` mapping naming unknown fields or signals, or signals whose datatype, unit
or kind do not suit the field, and a ``diagnostics`` section naming unknown buses or taken paths. Given a VSS catalogue, it also checks every signal against it
(:mod:`sdv.hal.catalogue_check`). The result is immutable.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from sdv.errors import DbcError, Problem, ProfileError
from sdv.hal.catalogue_check import catalogue_problems
from sdv.hal.codec import MessageCodec, SignalLayout
from sdv.hal.codec_cantools import codec_from_cantools
from sdv.hal.dbc import LoadedDbc, load_dbc
from sdv.hal.diagnostics import diagnostics_problems
from sdv.hal.e2e import available_checksums
from sdv.hal.profile import (
    BusConfig,
    LocatedConfig,
    MessageConfig,
    ProfileConfig,
    ServicesConfig,
    SignalConfig,
    load_profile_config,
    parse_profile_text,
)
from sdv.hal.signal_fit import check_fit, value_table_for
from sdv.types.datatypes import Value, coerce
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
    paths = {signal.path for signal in config.signals}
    problems += diagnostics_problems(located, {bus.name: bus for bus in config.buses}, paths, catalogue)
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
            check_fit(located, where, signal, layout, problems, actuator=False)
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
            check_fit(located, where, signal, found[1], problems, actuator=True)
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
