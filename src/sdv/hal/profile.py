"""The vehicle profile: which buses exist and which DBC signals become which VSS signals.

A profile is a YAML (``.yaml``/``.yml``) or TOML (``.toml``) file validated by the pydantic models below. This
module checks the file on its own (shape, types, required fields, duplicates); :mod:`sdv.hal.vehicle` checks it
against the DBC files it names. Both report every problem at once, each with the file and the key path
(``signals[3].source.message``), and for YAML files the line.

Relative paths in a profile (DBC files, recordings) are resolved against the profile's own directory. The ``hal:``
section is a :class:`~sdv.hal.config.HalConfig`: how the HAL runs the buses (decode workers, batching, reopening).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from sdv.config_files import parse_toml, parse_yaml, read_config_text
from sdv.errors import ConfigError, Problem, ProfileError
from sdv.federation_config import FederationConfig
from sdv.hal.config import HalConfig
from sdv.hal.diagnostics import DiagnosticsConfig
from sdv.hal.expressions import compile_expression
from sdv.located import node_lines
from sdv.types.datatypes import INTEGER_RANGES, Datatype, Rounding

__all__ = [
    "ActuatorTarget",
    "BusConfig",
    "E2EConfig",
    "FreshnessConfig",
    "MessageConfig",
    "ProfileConfig",
    "Provider",
    "RecordingConfig",
    "ServicesConfig",
    "SignalConfig",
    "SignalSource",
    "Transform",
    "UpdatePolicy",
    "ValueMapping",
    "format_key_path",
    "load_profile_config",
    "parse_profile_text",
]

VSS_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)+$")
Scalar = bool | int | float | str


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RecordingConfig(_Model):
    """A python-can recording (candump ``.log``, ``.asc``, ``.blf``, ``.trc``, optionally ``.gz``) replayed as a bus."""

    file: Path
    realtime: bool = Field(True, description="replay at the recorded pace; false replays as fast as possible")
    loop: bool = Field(False, description="start over at the end of the recording")
    channel: str | None = Field(None, description="replay only frames recorded on this channel")


class BusConfig(_Model):
    """One CAN bus: a python-can interface or a recording, and the DBC files describing its traffic."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$")]
    interface: str | None = Field(
        None, description="python-can interface: socketcan, virtual, pcan, kvaser, ..."
    )
    channel: str | int | None = Field(None, description="python-can channel, e.g. can0")
    options: dict[str, Any] = Field(default_factory=dict, description="further python-can Bus arguments")
    recording: RecordingConfig | None = None
    fd: bool = Field(False, description="CAN FD bus (frames up to 64 bytes, bit rate switch)")
    dbc: list[Path] = Field(min_length=1)

    @model_validator(mode="after")
    def _one_source(self) -> BusConfig:
        if (self.interface is None) == (self.recording is None):
            raise ValueError("a bus needs exactly one of 'interface' (a python-can interface) or 'recording'")
        return self


class SignalSource(_Model):
    """Where a signal's value comes from: a DBC signal of a message on a bus."""

    bus: str
    message: str
    signal: str


class ActuatorTarget(_Model):
    """The DBC message and signal that carry requests for an actuator (the bus defaults to the source's)."""

    bus: str | None = None
    message: str
    signal: str


class ValueMapping(_Model):
    """One entry of a KUKSA-style value mapping: the DBC value (choice label or number) and the VSS value."""

    from_: Scalar = Field(alias="from")
    to: Scalar


class Transform(_Model):
    """From the DBC physical value to the VSS value: a linear map, a value table, or an expression (one kind).

    Value-table keys are DBC choice labels (``"P"``) or numbers (as strings in YAML when needed); ``mapping`` is
    the same table in the KUKSA CAN provider's form (``[{from: P, to: 126}]``). ``math`` is an expression of
    ``x``, the DBC physical value (:mod:`sdv.hal.expressions`); an actuator the HAL encodes needs ``inverse``
    as well, the expression of ``x``, the requested VSS value, that gives the DBC value.
    """

    factor: float = 1.0
    offset: float = 0.0
    value_table: dict[str, Scalar] | None = None
    mapping: list[ValueMapping] | None = None
    math: str | None = Field(None, description="expression of x, e.g. 'floor(x*100)/100'")
    inverse: str | None = Field(
        None, description="for actuators: expression of the VSS value x giving the DBC value"
    )

    @model_validator(mode="after")
    def _one_kind(self) -> Transform:
        kinds = [
            name
            for name, given in (
                ("factor/offset", self.factor != 1.0 or self.offset != 0.0),
                ("value_table", self.value_table is not None),
                ("mapping", self.mapping is not None),
                ("math", self.math is not None),
            )
            if given
        ]
        if len(kinds) > 1:
            raise ValueError(
                f"use one of factor/offset, value_table, mapping or math, not {' and '.join(kinds)}"
            )
        if self.factor == 0:
            raise ValueError("factor must not be 0")
        if self.inverse is not None and self.math is None:
            raise ValueError("'inverse' goes with 'math': it undoes that expression for actuator requests")
        return self

    @field_validator("value_table", mode="before")
    @classmethod
    def _keys_as_text(cls, table: object) -> object:
        if isinstance(table, Mapping):
            return {str(key): value for key, value in table.items()}
        return table

    @field_validator("math", "inverse")
    @classmethod
    def _expression(cls, text: str | None) -> str | None:
        if text is not None:
            compile_expression(text)  # ValueError: reported at this key, with its line
        return text

    @field_validator("mapping")
    @classmethod
    def _distinct_sources(cls, mapping: list[ValueMapping] | None) -> list[ValueMapping] | None:
        seen: set[str] = set()
        for entry in mapping or ():
            key = str(entry.from_)
            if key in seen:
                raise ValueError(f"'from' {key!r} is mapped twice")
            seen.add(key)
        return mapping

    @property
    def table(self) -> dict[str, Scalar] | None:
        """The value table, from ``value_table`` or ``mapping``; None for a linear map or an expression."""
        if self.mapping is not None:
            return {str(entry.from_): entry.to for entry in self.mapping}
        return self.value_table


class UpdatePolicy(_Model):
    """When a changed value is published: on every change, or at most every ``min_interval_ms``."""

    min_interval_ms: float = Field(0.0, ge=0, description="0 publishes every change")


Provider = Literal["hal", "external"]


class SignalConfig(_Model):
    """One VSS signal of the vehicle.

    Who owns what: a signal ``provided_by: hal`` (the default) gets its value from the HAL, decoded from its
    ``source`` (or, for an attribute, the fixed ``value``); a signal ``provided_by: external`` has neither and is
    published by an outside provider over gRPC. An actuator is actuated by the HAL when it names the request
    signal (``actuator``); one the HAL only reads (a ``source`` and no ``actuator``, as VSS makes many status
    signals actuators: doors, indicators, the selected gear) takes no requests; an actuator ``provided_by:
    external`` is actuated by an outside actuation provider (:attr:`actuated_by`).
    """

    path: str
    kind: Literal["sensor", "actuator", "attribute"]
    datatype: Datatype
    provided_by: Provider = Field(
        "hal",
        description="hal: decoded from 'source' (or a fixed attribute 'value'); external: an outside provider",
    )
    unit: str | None = None
    min: float | None = None
    max: float | None = None
    allowed: list[Scalar] | None = None
    description: str = ""
    source: SignalSource | None = None
    value: Scalar | None = Field(None, description="fixed value of an attribute without a source")
    transform: Transform | None = None
    actuator: ActuatorTarget | None = None
    update: UpdatePolicy = UpdatePolicy()
    rounding: Rounding | None = Field(
        None, description="how a fractional value becomes an integer datatype: round, floor, ceil, truncate"
    )

    @field_validator("path")
    @classmethod
    def _vss_path(cls, path: str) -> str:
        if not VSS_PATH.match(path):
            raise ValueError("expected a dotted VSS path such as Vehicle.Speed")
        return path

    @property
    def actuated_by(self) -> Provider | None:
        """Who carries out requests of an actuator: the HAL (it names ``actuator``) or an outside provider
        (``provided_by: external``); None for sensors, attributes and actuators the HAL only reads."""
        if self.kind != "actuator":
            return None
        if self.actuator is not None:
            return "hal"
        return "external" if self.provided_by == "external" else None

    @property
    def read_only_actuator(self) -> bool:
        """An actuator whose value the HAL decodes but for which the profile names no request message."""
        return self.kind == "actuator" and self.provided_by == "hal" and self.actuator is None

    @model_validator(mode="after")
    def _consistent(self) -> SignalConfig:
        if self.kind != "actuator" and self.actuator is not None:
            raise ValueError(f"only actuators take 'actuator'; this signal is a {self.kind}")
        if self.provided_by == "external":
            given = [
                name
                for name in ("source", "value", "transform", "actuator")
                if getattr(self, name) is not None
            ]
            if given:
                raise ValueError(
                    f"a signal provided_by: external takes no {', '.join(map(repr, given))}: an outside provider "
                    "publishes its value and answers its requests"
                )
        elif self.source is None and not (self.kind == "attribute" and self.value is not None):
            raise ValueError(
                "needs 'source' (bus, message, signal), or 'provided_by: external' for a signal an outside "
                "provider publishes; only attributes may give a fixed 'value'"
            )
        transform = self.transform
        if self.rounding is not None:
            if self.datatype not in INTEGER_RANGES:
                raise ValueError(
                    f"'rounding' applies to integer datatypes only; this signal is {self.datatype}"
                )
            if transform is not None and transform.table is not None:
                raise ValueError("'rounding' does not apply to a value table: its values are given exactly")
        if (
            transform is not None
            and transform.math is not None
            and transform.inverse is None
            and self.actuated_by == "hal"
        ):
            raise ValueError(
                "an actuator with a 'math' transform needs 'inverse' too: the expression of x, the requested "
                "value, that gives the DBC value"
            )
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        return self


class E2EConfig(_Model):
    """End-to-end protection of a message: its counter and checksum signals and the algorithm."""

    counter: str
    checksum: str
    algorithm: str = "crc8_sae_j1850"
    data_id: int | None = Field(None, ge=0, le=0xFFFF)
    max_counter_jump: int = Field(1, ge=1, description="largest accepted counter step (1 = no frame lost)")


class MessageConfig(_Model):
    """Settings of one DBC message on one bus."""

    bus: str
    message: str
    cycle_time_ms: float | None = Field(None, gt=0, description="overrides the DBC's GenMsgCycleTime")
    e2e: E2EConfig | None = None


class FreshnessConfig(_Model):
    """Freshness monitoring of cyclic messages."""

    enabled: bool = True
    timeout_multiple: float = Field(
        3.0, ge=1.0, description="a message is stale after this many cycle times without a frame"
    )


class ServicesConfig(_Model):
    """Which profile signal fills which field of the typed services (``sdv.cockpit.v1``, ``sdv.adas.v1``).

    Each service maps its field names (see :mod:`sdv.types.service_fields`) to VSS paths of the profile's signals; a
    field left out is served as not available. :mod:`sdv.hal.vehicle` checks the names, paths, datatypes, units
    and that command fields map to actuators.
    """

    cockpit: dict[str, str] = Field(default_factory=dict, description="ClusterState field → VSS path")
    adas: dict[str, str] = Field(default_factory=dict, description="VehicleDynamics field → VSS path")

    def mapping(self, service: str) -> Mapping[str, str]:
        """The field → path mapping of ``service`` (``cockpit`` or ``adas``)."""
        return dict(getattr(self, service))


class ProfileConfig(_Model):
    """A vehicle profile, as read from its file."""

    name: str = "vehicle"
    description: str = ""
    buses: list[BusConfig] = Field(min_length=1)
    signals: list[SignalConfig] = Field(default_factory=list)
    messages: list[MessageConfig] = Field(default_factory=list)
    freshness: FreshnessConfig = FreshnessConfig()
    services: ServicesConfig = ServicesConfig()
    federation: FederationConfig | None = None  # this ECU in a federated vehicle (docs/federation.md)
    diagnostics: DiagnosticsConfig = DiagnosticsConfig()
    # how the HAL runs the buses; sdv serve --decode-workers overrides its workers
    hal: HalConfig = HalConfig()


def format_key_path(location: tuple[int | str, ...]) -> str:
    """``("signals", 3, "source")`` → ``signals[3].source``."""
    text = ""
    for part in location:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "(top level)"


class LocatedConfig:
    """A validated profile with what is needed to point back into its file."""

    def __init__(self, config: ProfileConfig, file: str, lines: Mapping[tuple[int | str, ...], int]) -> None:
        self.config = config
        self.file = file
        self._lines = dict(lines)
        self.directory = Path(file).resolve().parent if not file.startswith("<") else Path.cwd()

    def problem(self, location: tuple[int | str, ...], message: str) -> Problem:
        """A problem at ``location`` (a key path), with the file line where one is known."""
        return Problem(self.file, _describe(location, self._lines), message)

    def resolve(self, path: Path) -> Path:
        """A path from the profile, relative to the profile's directory."""
        return path if path.is_absolute() else self.directory / path


def _describe(location: tuple[int | str, ...], lines: Mapping[tuple[int | str, ...], int]) -> str:
    probe = location
    while probe and probe not in lines:
        probe = probe[:-1]
    line = lines.get(probe)
    key_path = format_key_path(location)
    return f"line {line}: {key_path}" if line else key_path


def parse_profile_text(text: str, file: str = "<string>", *, toml: bool = False) -> LocatedConfig:
    """Parse and validate profile text.

    Raises:
        ProfileError: with every problem found, each with its key path (and line, for YAML).
    """
    lines: dict[tuple[int | str, ...], int] = {}
    try:
        if toml:
            data: Any = parse_toml(text, file)
        else:
            data, node = parse_yaml(text, file)  # bounded: size, UTF-8, nesting, integers, duplicate keys
            lines.update(node_lines(node))
    except ConfigError as error:
        raise ProfileError(error.problems) from None
    if not isinstance(data, dict):
        raise ProfileError([Problem(file, "(top level)", "expected a mapping with at least 'buses'")])
    try:
        config = ProfileConfig.model_validate(data)
    except ValidationError as error:
        problems = []
        for item in error.errors():
            location = tuple(
                part for part in item["loc"] if not isinstance(part, str) or not part.startswith("function-")
            )
            message = item["msg"].removeprefix("Value error, ")
            if item["type"] == "missing":
                message = "required field is missing"
            elif item["type"] == "extra_forbidden":
                message = "unknown field (check the spelling)"
            problems.append(Problem(file, _describe(location, lines), message))
        raise ProfileError(problems) from None
    located = LocatedConfig(config, file, lines)
    duplicates = _duplicate_problems(located)
    if duplicates:
        raise ProfileError(duplicates)
    return located


def _duplicate_problems(located: LocatedConfig) -> list[Problem]:
    problems = []
    seen: dict[str, int] = {}
    for index, bus in enumerate(located.config.buses):
        if bus.name in seen:
            problems.append(
                located.problem(
                    ("buses", index, "name"), f"duplicate bus {bus.name!r} (also buses[{seen[bus.name]}])"
                )
            )
        seen.setdefault(bus.name, index)
    paths: dict[str, int] = {}
    for index, signal in enumerate(located.config.signals):
        if signal.path in paths:
            problems.append(
                located.problem(
                    ("signals", index, "path"),
                    f"duplicate path {signal.path} (also signals[{paths[signal.path]}])",
                )
            )
        paths.setdefault(signal.path, index)
    messages: dict[tuple[str, str], int] = {}
    for index, message in enumerate(located.config.messages):
        key = (message.bus, message.message)
        if key in messages:
            problems.append(
                located.problem(
                    ("messages", index), f"duplicate settings for {message.message} on bus {message.bus}"
                )
            )
        messages.setdefault(key, index)
    return problems


def load_profile_config(path: str | Path) -> LocatedConfig:
    """Read and validate a profile file (YAML, or TOML by its ``.toml`` suffix).

    Raises:
        ProfileError: when the file cannot be read or does not validate.
    """
    file = Path(path)
    try:
        text = read_config_text(file)
    except ConfigError as error:
        raise ProfileError(error.problems) from None
    return parse_profile_text(text, str(file), toml=file.suffix.lower() == ".toml")
