"""Unit tests of the pure OTA modules: archive inspection, canonical encoding, keys, trusted time, storage."""

from __future__ import annotations

import io
import json
import os
import tarfile
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from conftest import entry, make_tar
from sdv.durations import parse_duration
from sdv.errors import OtaError, SdvError, VerificationError
from sdv.ota import (
    ArchiveFormatError,
    BundleFormatError,
    KeyFormatError,
    KeyType,
    Manifest,
    OtaLimits,
    PublicKey,
    PublicKeyRecord,
    SizeLimitError,
    UnsafeArchiveEntryError,
    generate_private_key,
)
from sdv.ota.bundle.archive import EntryKind, TarInspector
from sdv.ota.bundle.canonical import canonical_bytes, canonical_json, parse_canonical, parse_time
from sdv.ota.bundle.keys import load_private_key_pem, load_public_key_pem
from sdv.ota.bundle.store import atomic_writer, save_time_state
from sdv.ota.bundle.trusted_time import TimeState, trusted_now


def _inspect(data: bytes, chunk: int = 1 << 20, limits: OtaLimits | None = None) -> TarInspector:
    inspector = TarInspector("t", limits or OtaLimits())
    for start in range(0, len(data), chunk):
        inspector.feed(data[start : start + chunk])
    inspector.finish()
    return inspector


def test_error_tree() -> None:
    assert issubclass(UnsafeArchiveEntryError, VerificationError)
    assert issubclass(KeyFormatError, OtaError)
    assert issubclass(VerificationError, SdvError)


@pytest.mark.parametrize("chunk", [1, 7, 512, 4096])
def test_archive_inspection_is_independent_of_chunking(tmp_path: Path, chunk: int) -> None:
    long_name = "deep/" * 30 + "file.txt"
    data = make_tar(
        tmp_path / "t.tar",
        [
            (entry("deep", tarfile.DIRTYPE), b""),
            (entry(long_name), b"x" * 1000),
            (entry("up", tarfile.SYMTYPE, link="deep/../deep"), b""),
        ],
    ).read_bytes()
    entries = _inspect(data, chunk).entries
    assert [(e.path, e.kind) for e in entries] == [
        ("deep", EntryKind.DIRECTORY),
        (long_name, EntryKind.FILE),
        ("up", EntryKind.SYMLINK),
    ]
    assert entries[1].size == 1000


def test_gnu_long_names_are_read(tmp_path: Path) -> None:
    path = tmp_path / "g.tar"
    with tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as archive:
        info = tarfile.TarInfo("n" * 150)
        info.size = 3
        archive.addfile(info, io.BytesIO(b"abc"))
    assert _inspect(path.read_bytes()).entries[0].path == "n" * 150


def test_archive_structure_problems(tmp_path: Path) -> None:
    data = make_tar(tmp_path / "t.tar", [(entry("a"), b"1")]).read_bytes()
    with pytest.raises(ArchiveFormatError, match="end-of-archive"):
        _inspect(data[:1024])
    with pytest.raises(ArchiveFormatError, match="after the end-of-archive"):
        _inspect(data + b"\x01")
    corrupt = bytearray(data)
    corrupt[0] ^= 1
    with pytest.raises(ArchiveFormatError, match="checksum"):
        _inspect(bytes(corrupt))
    with pytest.raises(ArchiveFormatError, match="not an octal number"):
        _inspect(b"\x01" * 512)


def test_archive_limits_and_link_rules(tmp_path: Path) -> None:
    many = make_tar(tmp_path / "m.tar", [(entry(f"f{i}"), b"") for i in range(5)]).read_bytes()
    with pytest.raises(SizeLimitError, match="more than 4 entries"):
        _inspect(many, limits=OtaLimits(max_archive_entries=4))
    loop = make_tar(
        tmp_path / "l.tar",
        [(entry("a", tarfile.SYMTYPE, link="b/x"), b""), (entry("b", tarfile.SYMTYPE, link="a/y"), b"")],
    ).read_bytes()
    with pytest.raises(UnsafeArchiveEntryError, match="link resolutions"):
        _inspect(loop)
    forward = make_tar(
        tmp_path / "h.tar", [(entry("h", tarfile.LNKTYPE, link="later"), b""), (entry("later"), b"")]
    ).read_bytes()
    with pytest.raises(UnsafeArchiveEntryError, match="not an earlier regular file"):
        _inspect(forward)
    fifo = make_tar(tmp_path / "f.tar", [(entry("pipe", tarfile.FIFOTYPE), b"")]).read_bytes()
    with pytest.raises(UnsafeArchiveEntryError, match="FIFO"):
        _inspect(fifo)
    setuid = make_tar(tmp_path / "s.tar", [(entry("su", mode=0o4755), b"")]).read_bytes()
    assert _inspect(setuid, limits=OtaLimits(allow_setid_bits=True)).entries[0].mode == 0o4755


def test_global_pax_header_may_not_rename_entries(tmp_path: Path) -> None:
    path = tmp_path / "p.tar"
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT, pax_headers={"path": "../escape"}) as archive:
        archive.addfile(tarfile.TarInfo("a"), io.BytesIO(b""))
    with pytest.raises(UnsafeArchiveEntryError, match="global pax header"):
        _inspect(path.read_bytes())


def _manifest_document() -> dict[str, object]:
    return {
        "type": "sdv-ota/manifest/v1",
        "name": "demo",
        "version": "1.0.0",
        "release_counter": 1,
        "hardware_ids": ["ecu-a"],
        "created": "2030-01-01T00:00:00Z",
        "expires": "2030-02-01T00:00:00Z",
        "payloads": [
            {"name": "fw.bin", "size": 1, "sha256": "0" * 64, "target": {"kind": "slot-image", "slot": "a"}}
        ],
    }


def test_canonical_round_trip_and_refusals() -> None:
    document = _manifest_document()
    data = canonical_json(document)
    manifest = parse_canonical(Manifest, data, "m")
    assert canonical_bytes(manifest) == data
    for spelling in (
        json.dumps(document).encode(),  # whitespace
        data.replace(b'"release_counter":1', b'"release_counter":1.0'),
        data.replace(b'"0000', b'"0A00'),
        data.replace(b'"name":"demo"', b'"name":"d\\u0065mo"'),
        data.replace(b"{", b'{"name":"demo",', 1),  # duplicate key
        data.replace(b"2030-01-01T00:00:00Z", b"2030-01-01T00:00:00+00:00"),
    ):
        with pytest.raises(ValueError, match="m"):
            parse_canonical(Manifest, spelling, "m")
    with pytest.raises(ValueError, match="floating-point"):
        canonical_json({"x": 1.5})


def test_manifest_validation() -> None:
    document = _manifest_document()
    bad = [
        {"version": "1.0"},
        {"release_counter": 0},
        {"hardware_ids": ["a", "a"]},
        {"expires": "2029-01-01T00:00:00Z"},
        {
            "payloads": [
                {
                    "name": "x",
                    "size": 1,
                    "sha256": "0" * 64,
                    "target": {"kind": "file-tree", "path": "/a/../b"},
                }
            ]
        },
    ]
    for change in bad:
        with pytest.raises(ValueError):
            Manifest.model_validate_json(json.dumps({**document, **change}))


@pytest.mark.parametrize("key_type", list(KeyType))
def test_keys_sign_verify_and_round_trip(key_type: KeyType) -> None:
    key = generate_private_key(key_type)
    signature = key.sign(b"message")
    public = load_public_key_pem(key.public_key.to_pem(), "p")
    assert public.keyid == key.keyid
    assert public.verify(bytes.fromhex(signature.sig), b"message")
    assert not public.verify(bytes.fromhex(signature.sig), b"massage")
    assert not public.verify(b"\x00" * 3, b"message")
    assert load_private_key_pem(key.to_pem(), "k").keyid == key.keyid


def test_key_format_refusals() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    compressed = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint
    )
    with pytest.raises(ValueError):
        PublicKey.from_record(PublicKeyRecord(type=KeyType.ECDSA_P256, public=compressed.hex()))
    rsa_pem = rsa.generate_private_key(public_exponent=65537, key_size=1024).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(KeyFormatError, match="unsupported key type"):
        load_private_key_pem(rsa_pem, "rsa.pem")
    other_curve = (
        ec.generate_private_key(ec.SECP384R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(KeyFormatError, match="P-256"):
        load_public_key_pem(other_curve, "p384.pem")
    with pytest.raises(KeyFormatError, match="not a PEM"):
        load_public_key_pem(b"garbage", "g.pem")


def test_trusted_time_never_goes_back(tmp_path: Path) -> None:
    floor = parse_time("2030-01-01T00:00:00Z")
    state = TimeState(latest=floor)
    assert trusted_now(floor - timedelta(days=400), state) == floor
    later = floor + timedelta(seconds=5, microseconds=300)
    assert trusted_now(later, state) == floor + timedelta(seconds=5)
    assert state.advanced(floor - timedelta(days=1)) is state
    path = tmp_path / "time.json"
    save_time_state(path, state.advanced(later))
    with pytest.raises(OtaError, match="back"):
        save_time_state(path, state)
    assert parse_duration("30d") == timedelta(days=30)
    assert parse_duration("2s") == timedelta(seconds=2)
    for text in ("0s", "3", "1y", "-1d"):
        with pytest.raises(ValueError):
            parse_duration(text)


def test_atomic_writer_keeps_the_old_file_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "trust.json"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_writer(target) as handle:
        handle.write(b"half")
        raise RuntimeError("power loss")
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["trust.json"]
    with atomic_writer(target) as handle:
        handle.write(b"new")
    assert target.read_bytes() == b"new"


def test_bundle_format_refusals(tmp_path: Path) -> None:
    from sdv.ota.bundle.format import read_header

    with pytest.raises(BundleFormatError, match="not an sdv OTA bundle"):
        read_header(io.BytesIO(b"PK\x03\x04" + bytes(100)), "zip")
