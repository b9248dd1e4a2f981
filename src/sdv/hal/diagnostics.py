"""ECU identification over UDS (ISO 14229) on ISO-TP (ISO 15765-2): the configuration and its pure side.

A profile's ``diagnostics`` section names ECUs on the profile's buses (their ISO-TP addressing) and the data
identifiers (DIDs) read from each with ReadDataByIdentifier (service 0x22); each value is served as a VSS
attribute. By default the identification DIDs of ISO 14229-1 annex C.1 are read: 0xF187 (spare part number),
0xF189 (software version) and 0xF18C (serial number), each an ASCII string, published at
``Vehicle.SDV.Ecu.<ECU>.<DID name>`` unless the ECU's ``paths`` name another VSS path.

This module does no I/O: :meth:`DiagnosticPlan.compile` turns the configuration into immutable per-bus read
lists with the CAN ids to receive, :func:`decode_did` turns a positive response's data record into the value
served (or refuses it), and :func:`diagnostics_problems` checks the section against the rest of the profile.
:mod:`sdv.hal.diagnostics_runner` does the talking.

Invariants: every ECU answers on a (CAN id, extended) pair no other ECU of its bus uses; every attribute path is
served by exactly one (ECU, DID); a value is never longer than its DID's ``max_length`` (ISO-TP refuses a longer
message before it is reassembled).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import isotp
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from sdv.errors import Problem
from sdv.hal.config import BusReopenPolicy

if TYPE_CHECKING:  # the profile imports this module for its model
    from sdv.hal.profile import BusConfig, LocatedConfig
    from sdv.vss import Catalogue

__all__ = [
    "IDENTIFICATION_DIDS",
    "DiagnosticAttribute",
    "DiagnosticPlan",
    "DiagnosticsConfig",
    "DidConfig",
    "DidRead",
    "EcuConfig",
    "EcuPlan",
    "decode_did",
    "diagnostics_problems",
]

_SEGMENT = r"^[A-Za-z][A-Za-z0-9_]*$"
_VSS_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)+$")
_STANDARD_MAX = 0x7FF
_EXTENDED_MAX = 0x1FFFFFFF
_NORMAL_FIXED_PHYSICAL = 0x18DA0000
"""ISO 15765-2 normal fixed addressing, physical: priority 6, PF 0xDA, then N_TA and N_SA."""
_POSITIVE_OVERHEAD = 3
"""A ReadDataByIdentifier positive response: 0x62 and the DID's two bytes before the data record."""
_PADDING_BYTES = (0x00, 0xFF, 0x20)
"""Fill ECUs put after a shorter identification string in a fixed-size record (NUL, erased flash, space)."""
DEFAULT_PATH_PREFIX = "Vehicle.SDV.Ecu"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DidConfig(_Model):
    """One data identifier read from the ECUs, and how its data record becomes a value."""

    did: int = Field(ge=0, le=0xFFFF, description="the data identifier, e.g. 0xF189")
    name: str = Field(pattern=_SEGMENT, description="the last segment of its default VSS path")
    codec: Literal["ascii", "hex"] = Field(
        "ascii", description="ascii: printable ASCII text, padding stripped; hex: the bytes as hex digits"
    )
    max_length: int = Field(64, ge=1, le=4092, description="longest data record accepted, in bytes")


IDENTIFICATION_DIDS = (
    DidConfig(did=0xF187, name="SparePartNumber"),
    DidConfig(did=0xF189, name="SoftwareVersion"),
    DidConfig(did=0xF18C, name="SerialNumber"),
)
"""The identification DIDs read when the section lists none (ISO 14229-1 annex C.1)."""


class EcuConfig(_Model):
    """One ECU: its bus, its ISO-TP addressing, and which DIDs are read from it.

    ``normal`` addressing names the request and response CAN ids (11-bit, or 29-bit with ``extended_ids``);
    ``normal_fixed`` (29-bit, ISO 15765-2 §10.3.3) derives them from the ECU's ``target_address`` and the
    tester's ``source_address``.
    """

    name: str = Field(pattern=_SEGMENT, description="the ECU's name, a VSS path segment")
    bus: str
    addressing: Literal["normal", "normal_fixed"] = "normal"
    request_id: int | None = Field(
        None, ge=0, le=_EXTENDED_MAX, description="normal: the CAN id the tester sends"
    )
    response_id: int | None = Field(
        None, ge=0, le=_EXTENDED_MAX, description="normal: the CAN id the ECU answers"
    )
    extended_ids: bool = Field(False, description="normal: 29-bit request and response ids")
    target_address: int | None = Field(None, ge=0, le=0xFF, description="normal_fixed: the ECU's address")
    source_address: int = Field(0xF1, ge=0, le=0xFF, description="normal_fixed: the tester's address")
    padding: int | None = Field(
        0xCC, ge=0, le=0xFF, description="byte filling short frames; null sends them short"
    )
    dids: list[str] | None = Field(None, description="names of the section's DIDs read from it; default all")
    paths: dict[str, str] = Field(default_factory=dict, description="DID name → VSS path of its attribute")

    @model_validator(mode="after")
    def _addressing(self) -> EcuConfig:
        if self.addressing == "normal_fixed":
            given = [name for name in ("request_id", "response_id") if getattr(self, name) is not None]
            if given or self.extended_ids:
                raise ValueError(
                    "normal_fixed addressing derives the CAN ids from target_address and source_address; "
                    f"drop {', '.join(given or ['extended_ids'])}"
                )
            if self.target_address is None:
                raise ValueError("normal_fixed addressing needs target_address (the ECU's address)")
            if self.target_address == self.source_address:
                raise ValueError("target_address and source_address must differ")
            return self
        if self.request_id is None or self.response_id is None:
            raise ValueError(
                "normal addressing needs request_id and response_id (or addressing: normal_fixed)"
            )
        if self.target_address is not None:
            raise ValueError("target_address goes with addressing: normal_fixed")
        largest = _EXTENDED_MAX if self.extended_ids else _STANDARD_MAX
        for name in ("request_id", "response_id"):
            if getattr(self, name) > largest:
                raise ValueError(
                    f"{name} 0x{getattr(self, name):X} is not an 11-bit id (set extended_ids: true)"
                )
        if self.request_id == self.response_id:
            raise ValueError("request_id and response_id must differ")
        return self

    @field_validator("paths")
    @classmethod
    def _vss_paths(cls, paths: dict[str, str]) -> dict[str, str]:
        for path in paths.values():
            if not _VSS_PATH.match(path):
                raise ValueError(f"{path!r} is not a dotted VSS path such as Vehicle.SDV.Ecu.Engine.Version")
        return paths


class DiagnosticsConfig(_Model):
    """The profile's ``diagnostics`` section: ECUs, DIDs, and when and how patiently they are read.

    Each bus's ECUs are read one after the other when the server starts and every ``poll_interval_s`` after;
    an ECU that does not answer within ``response_timeout_s`` is asked again after the ``retry`` backoff, at
    most ``attempts`` times per poll.
    """

    ecus: list[EcuConfig] = Field(default_factory=list, max_length=256)
    dids: list[DidConfig] = Field(
        default_factory=lambda: list(IDENTIFICATION_DIDS), min_length=1, max_length=64
    )
    poll_interval_s: float = Field(600.0, gt=0, description="seconds between two reads of every ECU")
    response_timeout_s: float = Field(1.0, gt=0, description="wait for a response (the tester's P2)")
    pending_timeout_s: float = Field(5.0, gt=0, description="wait after 'response pending' (0x78, P2*)")
    attempts: int = Field(3, ge=1, le=20, description="tries per ECU and poll before it counts as silent")
    retry: BusReopenPolicy = BusReopenPolicy(initial_delay_s=0.5, factor=2.0, max_delay_s=10.0)

    @model_validator(mode="after")
    def _distinct(self) -> DiagnosticsConfig:
        for label, values in (
            ("DID", [f"0x{did.did:04X}" for did in self.dids]),
            ("DID name", [did.name for did in self.dids]),
            ("ECU name", [ecu.name for ecu in self.ecus]),
        ):
            repeated = sorted({value for value in values if values.count(value) > 1})
            if repeated:
                raise ValueError(f"{label} {', '.join(repeated)} listed twice")
        names = {did.name for did in self.dids}
        for ecu in self.ecus:
            unknown = sorted({*(ecu.dids or ()), *ecu.paths} - names)
            if unknown:
                raise ValueError(
                    f"ECU {ecu.name} names DIDs {', '.join(unknown)} the section does not list "
                    f"(dids: {', '.join(sorted(names))})"
                )
        return self


@dataclass(frozen=True)
class DidRead:
    """One DID read from one ECU, with the path its value is served at."""

    did: int
    name: str
    path: str
    codec: Literal["ascii", "hex"]
    max_length: int


@dataclass(frozen=True)
class DiagnosticAttribute:
    """One attribute the diagnostics serve: its path and what it is (for the signal's metadata)."""

    path: str
    ecu: str
    bus: str
    did: int
    name: str

    @property
    def description(self) -> str:
        """What the attribute holds, for its metadata."""
        return f"ECU {self.ecu} on bus {self.bus}: {self.name} (UDS DID 0x{self.did:04X})"


@dataclass(frozen=True)
class EcuPlan:
    """One ECU compiled: its ISO-TP address, the id it answers on, and its DID reads in order."""

    name: str
    bus: str
    addressing: Literal["normal", "normal_fixed"]
    request_id: int
    response_id: int
    extended: bool
    target_address: int | None
    source_address: int
    padding: int | None
    reads: tuple[DidRead, ...]

    @property
    def receive_key(self) -> tuple[int, bool]:
        """(CAN id, extended) of its responses: what the tester's socket lets through."""
        return self.response_id, self.extended

    @property
    def max_message_bytes(self) -> int:
        """The longest ISO-TP message accepted from it: the longest positive response it may send."""
        return _POSITIVE_OVERHEAD + max(read.max_length for read in self.reads)

    def isotp_address(self) -> isotp.Address:
        """The tester's side of the ISO-TP link to this ECU."""
        if self.addressing == "normal_fixed":
            return isotp.Address(
                isotp.AddressingMode.NormalFixed_29bits,
                target_address=self.target_address,
                source_address=self.source_address,
            )
        mode = isotp.AddressingMode.Normal_29bits if self.extended else isotp.AddressingMode.Normal_11bits
        return isotp.Address(mode, txid=self.request_id, rxid=self.response_id)


@dataclass(frozen=True)
class DiagnosticPlan:
    """What the diagnostics read, compiled once from the configuration.

    Attributes:
        config: the section as read (timeouts, attempts, backoff).
        ecus: bus name → its ECUs in profile order.
        attributes: every attribute served, in profile order (ECU, then DID).
    """

    config: DiagnosticsConfig
    ecus: Mapping[str, tuple[EcuPlan, ...]]
    attributes: tuple[DiagnosticAttribute, ...]

    @classmethod
    def compile(cls, config: DiagnosticsConfig) -> DiagnosticPlan:
        """The plan of a (validated) diagnostics section."""
        by_bus: dict[str, list[EcuPlan]] = {}
        attributes: list[DiagnosticAttribute] = []
        for ecu in config.ecus:
            plan = _compile_ecu(ecu, config.dids)
            by_bus.setdefault(ecu.bus, []).append(plan)
            attributes.extend(
                DiagnosticAttribute(read.path, ecu.name, ecu.bus, read.did, read.name) for read in plan.reads
            )
        return cls(config, {bus: tuple(ecus) for bus, ecus in by_bus.items()}, tuple(attributes))

    @property
    def paths(self) -> list[str]:
        """Every attribute path, in profile order."""
        return [attribute.path for attribute in self.attributes]

    def receive_keys(self, bus: str) -> list[tuple[int, bool]]:
        """The (CAN id, extended) pairs the ECUs of ``bus`` answer on."""
        return [ecu.receive_key for ecu in self.ecus.get(bus, ())]


def _compile_ecu(ecu: EcuConfig, dids: Sequence[DidConfig]) -> EcuPlan:
    chosen = set(ecu.dids) if ecu.dids is not None else None
    reads = tuple(
        DidRead(
            did.did,
            did.name,
            ecu.paths.get(did.name, f"{DEFAULT_PATH_PREFIX}.{ecu.name}.{did.name}"),
            did.codec,
            did.max_length,
        )
        for did in dids
        if chosen is None or did.name in chosen
    )
    if ecu.addressing == "normal_fixed":
        target = ecu.target_address if ecu.target_address is not None else 0
        request = _NORMAL_FIXED_PHYSICAL | target << 8 | ecu.source_address
        response = _NORMAL_FIXED_PHYSICAL | ecu.source_address << 8 | target
        extended = True
    else:
        request, response = ecu.request_id or 0, ecu.response_id or 0
        extended = ecu.extended_ids
    return EcuPlan(
        name=ecu.name,
        bus=ecu.bus,
        addressing=ecu.addressing,
        request_id=request,
        response_id=response,
        extended=extended,
        target_address=ecu.target_address,
        source_address=ecu.source_address,
        padding=ecu.padding,
        reads=reads,
    )


def decode_did(read: DidRead, record: bytes) -> str:
    """The value served for a DID's data record (the bytes after 0x62 and the DID).

    ``ascii``: printable ASCII (0x20 to 0x7E), trailing padding (NUL, 0xFF, spaces) stripped; ``hex``: the bytes
    as upper-case hex digits.

    Raises:
        ValueError: the record is empty, longer than ``max_length``, or not printable ASCII; the message names
            the DID and what was expected.
    """
    where = f"DID 0x{read.did:04X} ({read.name})"
    if not record:
        raise ValueError(f"{where}: empty data record")
    if len(record) > read.max_length:
        raise ValueError(f"{where}: {len(record)} bytes, at most {read.max_length} expected")
    if read.codec == "hex":
        return record.hex().upper()
    text = record.rstrip(bytes(_PADDING_BYTES))
    for offset, byte in enumerate(text):
        if not 0x20 <= byte <= 0x7E:
            raise ValueError(
                f"{where}: byte {offset} is 0x{byte:02X}, expected printable ASCII (0x20 to 0x7E)"
            )
    return text.decode("ascii")


def diagnostics_problems(
    located: LocatedConfig,
    buses: Mapping[str, BusConfig],
    signal_paths: Collection[str],
    catalogue: Catalogue | None = None,
) -> list[Problem]:
    """The diagnostics section against the rest of the profile (and a VSS catalogue), each problem located.

    An ECU must be on a bus of the profile that is an interface (a recording has no ECUs to ask), answer on an
    id no other ECU of its bus answers on, and its attribute paths must be new: not a profile signal, not
    another ECU's; in a catalogue, a path there must be a string.
    """
    config = located.config.diagnostics
    problems: list[Problem] = []
    plan = DiagnosticPlan.compile(config)
    answered: dict[tuple[str, int, bool], str] = {}
    served: dict[str, str] = {}
    plans = [ecu for ecus in plan.ecus.values() for ecu in ecus]
    by_name = {ecu.name: ecu for ecu in plans}
    for index, ecu in enumerate(config.ecus):
        where: tuple[int | str, ...] = ("diagnostics", "ecus", index)
        bus = buses.get(ecu.bus)
        if bus is None:
            problems.append(
                located.problem(
                    (*where, "bus"), f"unknown bus {ecu.bus!r}; buses: {', '.join(buses) or 'none'}"
                )
            )
        elif bus.recording is not None:
            problems.append(
                located.problem((*where, "bus"), f"bus {ecu.bus} replays a recording: there is no ECU to ask")
            )
        compiled = by_name[ecu.name]
        key = (ecu.bus, *compiled.receive_key)
        other = answered.setdefault(key, ecu.name)
        if other != ecu.name:
            problems.append(
                located.problem(
                    where,
                    f"ECU {ecu.name} answers on CAN id 0x{compiled.response_id:X}, as ECU {other} on bus {ecu.bus}",
                )
            )
        for read in compiled.reads:
            path_where = (*where, "paths", read.name) if read.name in ecu.paths else where
            owner = served.setdefault(read.path, f"{ecu.name} {read.name}")
            if owner != f"{ecu.name} {read.name}":
                problems.append(located.problem(path_where, f"{read.path} is served by ECU {owner} already"))
            elif read.path in signal_paths:
                problems.append(
                    located.problem(
                        path_where, f"{read.path} is a signal of the profile; choose another path"
                    )
                )
            node = catalogue.nodes.get(read.path) if catalogue is not None else None
            if node is not None and node.datatype != "string":
                problems.append(
                    located.problem(
                        path_where,
                        f"{read.path} is a {node.datatype} {node.kind} in the VSS catalogue; an ECU's "
                        f"{read.name} is a string",
                    )
                )
    return problems
