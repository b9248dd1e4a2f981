"""The ``federation:`` section of a vehicle profile: how one ``sdv serve`` joins the vehicle's other ECUs (pure).

A module of its own, below the HAL, so that the profile (:mod:`sdv.hal.profile`) can validate the section without
the HAL importing the federation, which builds on the broker and the HAL (:mod:`sdv.federation`).

Every limit of the federation lives here, with its default; relative file names (TLS material) are resolved
against the profile's directory by whoever opens them. So do the status signals a federated ECU serves
(:func:`status_metadata`), which the broker is built with before the federation starts.
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from sdv.types.signals import SignalMetadata

__all__ = [
    "ECU_STATES",
    "NAME_PATTERN",
    "PATH_PATTERN",
    "STATUS_ROOT",
    "STATUS_SIGNALS",
    "CloudLink",
    "DownsampleRule",
    "FederationConfig",
    "FederationTls",
    "status_metadata",
]

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
"""A vehicle id or ECU name: one zenoh key segment without wildcards, usable as a certificate common name."""
PATH_PATTERN = re.compile(r"^(\*\*|[A-Za-z0-9_]+|\*)(\.([A-Za-z0-9_]+|\*))*$")
"""A signal path pattern: VSS segments, ``*`` for one segment; a pattern matches the path and everything below."""
_ENDPOINT = re.compile(r"^(tcp|tls|udp|quic)/[^\s/]+:\d{1,5}$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_patterns(patterns: list[str]) -> list[str]:
    for pattern in patterns:
        if not PATH_PATTERN.fullmatch(pattern):
            raise ValueError(
                f"{pattern!r} is not a signal path pattern (segments of letters, digits and '_', '*' for one "
                "segment, or '**' alone for every signal)"
            )
    return patterns


def _check_endpoints(endpoints: list[str]) -> list[str]:
    for endpoint in endpoints:
        if not _ENDPOINT.fullmatch(endpoint):
            raise ValueError(f"{endpoint!r} is not an endpoint PROTOCOL/HOST:PORT (tcp, tls, udp or quic)")
    return endpoints


class FederationTls(_Model):
    """Mutual TLS between ECUs: every ECU has a certificate whose common name is its ECU name."""

    root_ca: Path = Field(description="PEM file of the CA that signed every ECU's certificate")
    certificate: Path = Field(description="PEM file of this ECU's certificate (common name: the ECU name)")
    private_key: Path = Field(description="PEM file of this ECU's private key")
    verify_name: bool = Field(
        False,
        description="check the peer's host name against its certificate (off: ECUs are reached by address)",
    )


class DownsampleRule(_Model):
    """At most one value every ``min_interval_ms`` for the signals matching ``pattern`` on the cloud link."""

    pattern: str
    min_interval_ms: float = Field(gt=0)

    @field_validator("pattern")
    @classmethod
    def _valid_pattern(cls, value: str) -> str:
        return _check_patterns([value])[0]


class CloudLink(_Model):
    """The gateway ECU's own link to the cloud: outbound, TLS, one certificate per vehicle; read-only for the
    cloud unless ``actuators`` lists what it may request."""

    endpoint: str = Field(description="the cloud's zenoh endpoint, e.g. tls/cloud.example:7447")
    tls: FederationTls | None = Field(
        None, description="the vehicle's certificate for the cloud (required for tls/)"
    )
    export: list[str] = Field(default_factory=lambda: ["**"], description="signal patterns sent to the cloud")
    downsample: list[DownsampleRule] = Field(default_factory=list, description="first matching rule applies")
    buffer_size: int = Field(
        10_000, ge=1, le=1_000_000, description="values kept while the link is down (oldest dropped first)"
    )
    actuators: list[str] = Field(
        default_factory=list,
        description="actuator patterns the cloud may send requests for (none by default: the cloud only reads); "
        "each request carries an app's token, checked here and again at the actuator's owner",
    )

    @field_validator("export", "actuators")
    @classmethod
    def _valid_export(cls, value: list[str]) -> list[str]:
        return _check_patterns(value)

    @model_validator(mode="after")
    def _tls_for_tls(self) -> CloudLink:
        _check_endpoints([self.endpoint])
        if self.endpoint.startswith(("tls/", "quic/")) and self.tls is None:
            raise ValueError("a tls/ or quic/ cloud endpoint needs 'tls' (the vehicle's certificate)")
        return self


class FederationConfig(_Model):
    """One ECU of a vehicle federated with the others over Eclipse Zenoh.

    Ownership is static: this ECU owns the signals its HAL decodes and the actuators it encodes, plus the paths
    matching ``provides`` (served by outside providers connected to this ECU); every other signal of the profile
    (``provided_by: external``) that another ECU announces is mirrored here.
    """

    vehicle: str = Field(description="the vehicle id, the same on every ECU of the vehicle")
    ecu: str = Field(description="this ECU's name, unique in the vehicle")
    listen: list[str] = Field(default_factory=list, description="endpoints this ECU listens on")
    peers: list[str] = Field(default_factory=list, description="endpoints of other ECUs to connect to")
    multicast_scouting: bool = Field(False, description="discover peers by UDP multicast")
    lease_ms: int = Field(
        3000, ge=100, le=600_000, description="a silent peer is declared gone after this many milliseconds"
    )
    keep_alives_per_lease: int = Field(
        4, ge=1, le=100, description="keep-alive messages sent per lease period"
    )
    tls: FederationTls | None = Field(
        None, description="mutual TLS between ECUs (required for tls/ endpoints)"
    )
    access_rules: Path | None = Field(
        None, description="zenoh access control file written by `sdv federation acl` for this ECU"
    )
    provides: list[str] = Field(
        default_factory=list, description="paths this ECU owns through outside providers connected to it"
    )
    export: list[str] = Field(
        default_factory=lambda: ["**"], description="owned signals shared with other ECUs"
    )
    imports: list[str] = Field(
        default_factory=lambda: ["**"], alias="import", description="remote signals mirrored here"
    )
    actuation_timeout_s: float = Field(
        2.0, gt=0, le=60, description="an actuation without reply from its owner ends as 'outcome unknown'"
    )
    query_timeout_s: float = Field(2.0, gt=0, le=60, description="how long a resynchronising get waits")
    close_timeout_s: float = Field(2.0, gt=0, le=60, description="the longest wait for the session to close")
    max_payload_bytes: int = Field(
        65_536, ge=256, le=16_777_216, description="larger samples, requests and replies are refused unread"
    )
    gateway: CloudLink | None = Field(
        None, description="set on the one ECU that links the vehicle to the cloud"
    )

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("vehicle", "ecu")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        if not NAME_PATTERN.fullmatch(value):
            raise ValueError(
                f"{value!r} is not a name of lower-case letters, digits, '-' and '_' (at most 63)"
            )
        return value

    @field_validator("listen", "peers")
    @classmethod
    def _valid_endpoints(cls, value: list[str]) -> list[str]:
        return _check_endpoints(value)

    @field_validator("provides", "export", "imports")
    @classmethod
    def _valid_patterns(cls, value: list[str]) -> list[str]:
        return _check_patterns(value)

    @model_validator(mode="after")
    def _tls_for_tls(self) -> FederationConfig:
        secure = [
            endpoint for endpoint in (*self.listen, *self.peers) if endpoint.startswith(("tls/", "quic/"))
        ]
        if secure and self.tls is None:
            raise ValueError(f"{secure[0]} needs 'tls' (root_ca, certificate, private_key)")
        return self


# --- the status signals ----------------------------------------------------------------------------------------
STATUS_ROOT = "Sdv.Federation.Ecu"
"""The branch of the status signals: one entry per other ECU seen, in the same order in each array."""
ECU_STATES = ("JOINING", "UP", "GONE")
"""JOINING: its token appeared, its signals are being synchronised; UP: mirrored; GONE: its token went."""
STATUS_SIGNALS: dict[str, tuple[str, str]] = {
    "Names": ("string[]", "federation: the other ECUs of the vehicle seen so far, by name"),
    "States": ("string[]", "federation: the state of each: JOINING, UP or GONE (its signals not available)"),
    "Signals": ("uint32[]", "federation: the signals mirrored from each"),
    "Since": ("double[]", "federation: when each entered its state (Unix time, s)"),
}


def status_metadata(first_id: int) -> list[SignalMetadata]:
    """Metadata of the status signals under :data:`STATUS_ROOT`, with ids from ``first_id``."""
    return [
        SignalMetadata(
            id=first_id + index,
            path=f"{STATUS_ROOT}.{name}",
            kind="sensor",
            datatype=datatype,
            description=description,
        )
        for index, (name, (datatype, description)) in enumerate(STATUS_SIGNALS.items())
    ]
