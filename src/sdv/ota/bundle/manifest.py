"""The bundle manifest: what a bundle contains, for which hardware, and for how long it is valid.

Invariants (enforced by validation, so a :class:`Manifest` object always satisfies them):

* names (bundle, payloads, slots, hardware ids) use a restricted ASCII alphabet, so they are safe in file
  names, logs and shell scripts;
* the version is a Semantic Versioning 2.0.0 string; the release counter is a positive integer that the
  vehicle maker only ever increases (the version is for humans, the counter for anti-rollback, as Uptane's
  release counter in Targets metadata);
* hardware ids and payload names are unique; ``expires`` lies after ``created``;
* a file-tree payload's install path is absolute, normalized and free of ``..``.

The manifest's canonical JSON (:mod:`sdv.ota.bundle.canonical`) is what release keys sign. Its JSON schema, generated
from these models by :func:`manifest_json_schema`, is committed as ``ota/manifest.schema.json``.
"""

from __future__ import annotations

import posixpath
from typing import Annotated, Any, Final, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

from sdv.ota.bundle.canonical import UtcTime
from sdv.ota.bundle.vehicle_terms import VehicleTerms

__all__ = [
    "MANIFEST_TYPE",
    "MAX_COUNTER",
    "NAME_PATTERN",
    "PATTERN_WORDS",
    "SEMVER_PATTERN",
    "FileTreeTarget",
    "HardwareId",
    "Manifest",
    "Name",
    "Payload",
    "PayloadCompression",
    "PayloadTarget",
    "SlotImageTarget",
    "manifest_json_schema",
]

MANIFEST_TYPE: Final = "sdv-ota/manifest/v1"
"""The ``type`` of a manifest, also the label of its signatures."""

MAX_COUNTER = 2**63 - 1
"""Largest release counter (fits a signed 64-bit integer on any ECU)."""

_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$"

Name = Annotated[str, Field(pattern=_NAME_PATTERN, description="letters, digits and . _ + -; at most 128")]
"""A bundle, payload or slot name."""

HardwareId = Annotated[
    str, Field(pattern=_NAME_PATTERN, description="an ECU hardware type, as the ECU reports it")
]
"""An ECU hardware id."""

_SEMVER_PATTERN = (
    r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)"
    r"(?:-((?:0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*)(?:\.(?:0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*))*))?"
    r"(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$"
)

NAME_PATTERN = _NAME_PATTERN
"""What a bundle, payload or slot name and a hardware id must match."""
SEMVER_PATTERN = _SEMVER_PATTERN
"""What a bundle version must match: Semantic Versioning 2.0.0."""
PATTERN_WORDS = {
    _NAME_PATTERN: "1 to 128 letters, digits and . _ + - (starting with a letter or digit)",
    _SEMVER_PATTERN: "a semantic version such as 1.4.0",
}
"""What each pattern of the manifest's fields means, for error messages (``sdv.located``)."""

_STRICT = ConfigDict(extra="forbid", frozen=True)
_OPTIONAL_FIELDS = ("reinstall", "counter_floors", "vehicle")


class SlotImageTarget(BaseModel):
    """Install the payload as a raw image into a slot (a partition of an A/B pair, a firmware bank).

    Attributes:
        kind: always ``"slot-image"``.
        slot: the slot's name, as the ECU's installer knows it.
    """

    model_config = _STRICT

    kind: Literal["slot-image"]
    slot: Name


class FileTreeTarget(BaseModel):
    """Unpack the payload, a POSIX tar archive (decompressed first if the payload is compressed), below a directory.

    Attributes:
        kind: always ``"file-tree"``.
        path: the absolute, normalized directory the tree is installed into.
    """

    model_config = _STRICT

    kind: Literal["file-tree"]
    path: str = Field(min_length=1, max_length=1024, pattern=r"^/[A-Za-z0-9._+/-]*$")

    @field_validator("path")
    @classmethod
    def _normalized(cls, value: str) -> str:
        if posixpath.normpath(value) != value or ".." in value.split("/"):
            raise ValueError(f"install path {value!r} is not a normalized absolute path without '..'")
        return value


PayloadTarget = Annotated[SlotImageTarget | FileTreeTarget, Field(discriminator="kind")]
"""Where a payload is installed."""


class PayloadCompression(BaseModel):
    """How a compressed payload is decompressed, and what it must decompress to.

    Attributes:
        algorithm: ``"zstd"`` (a Zstandard frame) or ``"xz"`` (an xz stream).
        size: length of the decompressed content in bytes; a decoder stops at this many bytes and refuses the
            payload when more would follow (the decompression bomb cap).
        sha256: SHA-256 of the decompressed content in lowercase hex.
    """

    model_config = _STRICT

    algorithm: Literal["zstd", "xz"]
    size: int = Field(ge=0, le=MAX_COUNTER)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class Payload(BaseModel):
    """One payload of a bundle, stored in the bundle in manifest order.

    Attributes:
        name: unique within the bundle.
        size: length in bytes as stored in the bundle (compressed, for a compressed payload).
        sha256: SHA-256 of the bytes stored in the bundle, in lowercase hex.
        target: where it is installed.
        compression: for a compressed payload, the algorithm and the decompressed size and SHA-256; ``None``
            (left out of the canonical form, so older manifests keep their signed bytes) for one stored as is.
    """

    model_config = _STRICT

    name: Name
    size: int = Field(ge=0, le=MAX_COUNTER)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    target: PayloadTarget
    compression: PayloadCompression | None = None

    @model_serializer(mode="wrap")
    def _without_default(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if data.get("compression", False) is None:
            data.pop("compression")
        return data

    @property
    def installed_size(self) -> int:
        """Length of the content installed: the decompressed size of a compressed payload, else ``size``."""
        return self.size if self.compression is None else self.compression.size

    @property
    def installed_sha256(self) -> str:
        """SHA-256 of the content installed (decompressed for a compressed payload)."""
        return self.sha256 if self.compression is None else self.compression.sha256


class Manifest(BaseModel):
    """The signed description of a bundle.

    Attributes:
        type: the document type, ``"sdv-ota/manifest/v1"``.
        name: the bundle's name.
        version: its Semantic Versioning 2.0.0 version, for humans.
        release_counter: strictly increasing release number, for anti-rollback.
        hardware_ids: the ECU hardware ids the bundle may be installed on.
        created: when the bundle was built.
        expires: after this time the bundle is refused (freeze attack defence).
        payloads: the payloads, in the order they follow the header in the bundle.
        reinstall: the bundle may be installed on a slot group whose committed release counter equals its own
            (a repair), where the ECU's policy allows it; a lower counter is always refused.
        counter_floors: slot group → the lowest release counter the group accepts once this bundle is
            committed (the vehicle maker's minimum version); floors are only ever raised.
        vehicle: what the bundle asks of the vehicle: preconditions on live signals, an energy budget, the user
            notice (:mod:`sdv.ota.bundle.vehicle_terms`).

    ``reinstall``, ``counter_floors`` and ``vehicle`` are left out of the canonical form at their defaults, so manifests
    without them keep their signed bytes.
    """

    model_config = _STRICT

    type: Literal["sdv-ota/manifest/v1"]
    name: Name
    version: str = Field(max_length=256, pattern=_SEMVER_PATTERN)
    release_counter: int = Field(ge=1, le=MAX_COUNTER)
    hardware_ids: list[HardwareId] = Field(min_length=1, max_length=256)
    created: UtcTime
    expires: UtcTime
    payloads: list[Payload] = Field(min_length=1, max_length=4096)
    reinstall: bool = False
    counter_floors: dict[Name, Annotated[int, Field(ge=1, le=MAX_COUNTER)]] = Field(
        default_factory=dict, max_length=256
    )
    vehicle: VehicleTerms | None = None

    @model_serializer(mode="wrap")
    def _without_defaults(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        for name in _OPTIONAL_FIELDS:
            if name in data and data[name] in (False, {}, None):
                data.pop(name, None)
        return data

    @model_validator(mode="after")
    def _consistent(self) -> Manifest:
        if len(set(self.hardware_ids)) != len(self.hardware_ids):
            raise ValueError("hardware_ids lists an id twice")
        names = [payload.name for payload in self.payloads]
        if len(set(names)) != len(names):
            raise ValueError("two payloads share a name")
        if self.expires <= self.created:
            raise ValueError("expires must lie after created")
        return self

    @property
    def total_size(self) -> int:
        """Sum of the payload sizes as stored in the bundle."""
        return sum(payload.size for payload in self.payloads)

    @property
    def total_installed_size(self) -> int:
        """Sum of the installed (decompressed) payload sizes."""
        return sum(payload.installed_size for payload in self.payloads)


def manifest_json_schema() -> dict[str, Any]:
    """The JSON schema of the manifest, as committed in ``ota/manifest.schema.json``."""
    schema = Manifest.model_json_schema(mode="validation")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://sdv.example/ota/manifest.schema.json",
        **schema,
    }
