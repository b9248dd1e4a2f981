"""Limits and policies of the OTA verifier, in one validated model.

Every number the verifier compares against lives here with its documented default, so that an integrator tunes
one object instead of hunting constants. The limits defend against Uptane's "endless data" attack: nothing is
read, buffered or hashed beyond them, and the checks on declared sizes happen before any payload byte is read.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["DEFAULT_LIMITS", "OtaLimits"]

_KIB = 1024
_MIB = 1024 * _KIB
_GIB = 1024 * _MIB


class OtaLimits(BaseModel):
    """Size limits and policies applied while reading and verifying bundles.

    Attributes:
        max_manifest_bytes: largest manifest section accepted (default 64 KiB).
        max_signatures_bytes: largest signature section accepted (default 64 KiB).
        max_signatures: most signatures a bundle or trust root may carry (default 32).
        max_payloads: most payloads one bundle may declare (default 64).
        max_payload_bytes: largest single payload (default 8 GiB).
        max_total_payload_bytes: largest sum of all payloads of a bundle (default 16 GiB).
        max_trust_root_bytes: largest trust root file accepted (default 256 KiB).
        max_report_bytes: largest ECU version report accepted (default 64 KiB).
        max_archive_entries: most entries in one file-tree payload (default 100 000).
        max_archive_path_bytes: longest entry or link path in a file-tree payload (default 4096).
        max_pax_header_bytes: largest pax or GNU long-name header in a file-tree payload (default 64 KiB).
        max_link_hops: most symbolic links followed while resolving one link target (default 40, as Linux).
        chunk_bytes: size of the buffer payloads are streamed through (default 1 MiB).
        max_decoder_memory_bytes: largest zstd window or xz dictionary a compressed payload may need to be
            decompressed (default 64 MiB; ``sdv ota build`` needs 8 MiB at most).
        strict_signatures: when true (default), every signature by a key the trust root lists, in any role,
            must verify, or the bundle is refused (``BadSignatureError``), so that no byte the ECU can check
            changes without the bundle being refused; when false, such a bad signature is ignored. With either
            policy, signatures by keys the trust root does not list are ignored and never count, and only
            release keys count toward the threshold, so a bundle signed by the old and the new release keys
            during a rotation verifies on ECUs holding either trust root.
        allow_setid_bits: accept set-user-id and set-group-id bits on file-tree entries (default false).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_manifest_bytes: int = Field(default=64 * _KIB, ge=256, le=16 * _MIB)
    max_signatures_bytes: int = Field(default=64 * _KIB, ge=256, le=16 * _MIB)
    max_signatures: int = Field(default=32, ge=1, le=1024)
    max_payloads: int = Field(default=64, ge=1, le=4096)
    max_payload_bytes: int = Field(default=8 * _GIB, ge=0)
    max_total_payload_bytes: int = Field(default=16 * _GIB, ge=0)
    max_trust_root_bytes: int = Field(default=256 * _KIB, ge=256, le=16 * _MIB)
    max_report_bytes: int = Field(default=64 * _KIB, ge=256, le=16 * _MIB)
    max_archive_entries: int = Field(default=100_000, ge=1)
    max_archive_path_bytes: int = Field(default=4096, ge=100, le=1 * _MIB)
    max_pax_header_bytes: int = Field(default=64 * _KIB, ge=512, le=16 * _MIB)
    max_link_hops: int = Field(default=40, ge=1, le=1000)
    chunk_bytes: int = Field(default=1 * _MIB, ge=4 * _KIB, le=64 * _MIB)
    max_decoder_memory_bytes: int = Field(default=64 * _MIB, ge=1 * _MIB, le=2 * _GIB)
    strict_signatures: bool = True
    allow_setid_bits: bool = False


DEFAULT_LIMITS = OtaLimits()
"""The limits used when a caller passes none."""
