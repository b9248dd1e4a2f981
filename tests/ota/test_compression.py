"""Compressed payloads end to end: built by ``sdv ota build --compress``, verified, staged by the real agent; bombs
and tampering refused with nothing left in the slots; uncompressed bundles unchanged."""

from __future__ import annotations

import hashlib
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import BuildBundle, Ecu, Keys, ok, run_cli
from sdv.ota.agent.config import load_agent_config
from sdv.ota.agent.core import UpdateAgent
from sdv.ota.agent.state import AgentState
from sdv.ota.bundle.canonical import canonical_bytes
from sdv.ota.bundle.compression import new_encoder
from sdv.ota.bundle.format import BundleHeader
from sdv.ota.bundle.manifest import MANIFEST_TYPE, Manifest, Payload, PayloadCompression, SlotImageTarget
from sdv.ota.bundle.store import load_private_key, read_bundle_header
from sdv.ota.bundle.verifier import PayloadChecker
from sdv.ota.errors import CompressionFormatError, HashMismatchError, LengthMismatchError, VerificationError

pytestmark = pytest.mark.usefixtures("no_leaked_threads")

_S = AgentState
_MIB = 1024 * 1024


def _build(
    tmp_path: Path, keys: Keys, payloads: dict[str, Path], compress: list[str], output: str = "packed.sdvota"
) -> Path:
    bundle = tmp_path / output
    arguments: list[str | os.PathLike[str]] = [
        "ota", "build", "--name", "demo", "--version", "1.5.0", "--release-counter", "5", "--hardware-id", "ecu-a",
        "--payload", payloads["image"], "--payload", payloads["tree"], "-o", bundle,
    ]  # fmt: skip
    for spec in compress:
        arguments += ["--compress", spec]
    ok(*arguments)
    for signer in ("a", "e"):
        ok("ota", "sign", bundle, "--key", keys.private(signer))
    return bundle


def _install(ecu: Ecu, bundle: Path) -> UpdateAgent:
    agent = UpdateAgent(load_agent_config(ecu.config))
    agent.receive_file(bundle, chunk_bytes=8192)
    return agent


def _compressed(data: bytes, algorithm: str) -> bytes:
    encoder = new_encoder(algorithm)  # type: ignore[arg-type]
    return encoder.compress(data) + encoder.flush()


@pytest.mark.parametrize(
    ("compress", "expected"),
    [
        (["zstd"], {"rootfs.img": "zstd", "app.tar": "zstd"}),
        (["xz"], {"rootfs.img": "xz", "app.tar": "xz"}),
        (["rootfs.img=zstd", "app.tar=xz"], {"rootfs.img": "zstd", "app.tar": "xz"}),
        (["xz", "rootfs.img=none"], {"rootfs.img": None, "app.tar": "xz"}),
    ],
    ids=["zstd", "xz", "mixed", "default-and-none"],
)
def test_compressed_bundles_verify_and_stage_the_original_content(
    tmp_path: Path,
    keys: Keys,
    payloads: dict[str, Path],
    ecu: Ecu,
    new_software: tuple[str, str],
    compress: list[str],
    expected: dict[str, str | None],
) -> None:
    bundle = _build(tmp_path, keys, payloads, compress)
    manifest = read_bundle_header(bundle).parse_manifest(str(bundle))
    for payload in manifest.payloads:
        algorithm = expected[payload.name]
        source = payloads["image"] if payload.name == "rootfs.img" else payloads["tree"]
        content = source.read_bytes()
        if algorithm is None:
            assert payload.compression is None and payload.sha256 == hashlib.sha256(content).hexdigest()
            continue
        assert payload.compression is not None and payload.compression.algorithm == algorithm
        assert payload.compression.size == len(content)
        assert payload.compression.sha256 == hashlib.sha256(content).hexdigest()
        assert payload.sha256 != payload.compression.sha256  # the stored bytes are the compressed ones
    ok("ota", "verify", bundle, "--trust", keys.trust, "--hardware-id", "ecu-a")
    with _install(ecu, bundle) as agent:
        agent.process()
        assert agent.record.state is _S.READY
    assert ecu.software("B") == new_software


def test_inspect_shows_each_payloads_compression(
    tmp_path: Path, keys: Keys, payloads: dict[str, Path]
) -> None:
    bundle = _build(tmp_path, keys, payloads, ["rootfs.img=zstd", "app.tar=xz"])
    text = ok("ota", "inspect", bundle)
    tree_size = payloads["tree"].stat().st_size
    assert f"compressed with xz: decompresses to {tree_size} bytes" in text
    assert f"compressed with zstd: decompresses to {payloads['image'].stat().st_size} bytes" in text
    document = json.loads(ok("ota", "inspect", bundle, "--json"))
    packed = {entry["name"]: entry.get("compression") for entry in document["manifest"]["payloads"]}
    assert packed["app.tar"]["algorithm"] == "xz" and packed["rootfs.img"]["algorithm"] == "zstd"


def test_an_unknown_algorithm_or_payload_name_is_refused(tmp_path: Path, payloads: dict[str, Path]) -> None:
    base = [
        "ota",
        "build",
        "--name",
        "d",
        "--version",
        "1.0.0",
        "--release-counter",
        "1",
        "--hardware-id",
        "e",
    ]
    for spec, message in (
        ("brotli", "--compress 'brotli'"),
        ("other.img=zstd", "--compress names no payload"),
    ):
        result = run_cli(
            *base, "--payload", payloads["image"], "--compress", spec, "-o", tmp_path / "x.sdvota"
        )
        assert result.code == 2 and message in result.err and "Traceback" not in result.err
        assert not (tmp_path / "x.sdvota").exists()


def test_an_uncompressed_bundle_keeps_its_manifest_bytes_and_installs(
    ecu: Ecu, build_bundle: BuildBundle, new_software: tuple[str, str]
) -> None:
    bundle = build_bundle()
    header = read_bundle_header(bundle)
    assert b"compression" not in header.manifest_bytes  # the optional field is left out at its default
    manifest = header.parse_manifest(str(bundle))
    assert canonical_bytes(manifest) == header.manifest_bytes
    with _install(ecu, bundle) as agent:
        agent.process()
    assert ecu.software("B") == new_software


def test_a_tampered_compressed_payload_is_refused(
    tmp_path: Path, keys: Keys, payloads: dict[str, Path], ecu: Ecu
) -> None:
    bundle = _build(tmp_path, keys, payloads, ["zstd"])
    header = read_bundle_header(bundle)
    data = bytearray(bundle.read_bytes())
    data[header.encoded_length + 200] ^= 0x40  # inside the compressed image
    bundle.write_bytes(bytes(data))
    result = run_cli("ota", "verify", bundle, "--trust", keys.trust, "--hardware-id", "ecu-a")
    assert result.code == 1 and "SHA-256 is" in result.err and "rootfs.img" in result.err
    with _install(ecu, bundle) as agent, pytest.raises(HashMismatchError, match=r"rootfs\.img"):
        agent.process()
    assert agent.record.state is _S.FAILED
    assert not ecu.image("B").exists() or ecu.image("B").stat().st_size == 0
    assert not (ecu.tree_root / "B").exists()


def _bomb(tmp_path: Path, keys: Keys, algorithm: str, declared: int, real: int) -> Path:
    """A signed bundle whose image decompresses to ``real`` zero bytes while its manifest declares ``declared``."""
    stored = _compressed(bytes(real), algorithm)
    payload = Payload(
        name="rootfs.img",
        size=len(stored),
        sha256=hashlib.sha256(stored).hexdigest(),
        target=SlotImageTarget(kind="slot-image", slot="rootfs"),
        compression=PayloadCompression(
            algorithm=algorithm,  # type: ignore[arg-type]
            size=declared,
            sha256=hashlib.sha256(bytes(declared)).hexdigest(),
        ),
    )
    created = datetime.now(UTC).replace(microsecond=0)
    manifest = Manifest(
        type=MANIFEST_TYPE, name="bomb", version="1.6.0", release_counter=6, hardware_ids=["ecu-a"],
        created=created, expires=created + timedelta(days=1), payloads=[payload],
    )  # fmt: skip
    header = BundleHeader.for_manifest(manifest)
    for signer in ("a", "e"):
        header = header.with_signature(load_private_key(keys.private(signer)))
    bundle = tmp_path / f"bomb-{algorithm}.sdvota"
    bundle.write_bytes(header.encode() + stored)
    return bundle


@pytest.mark.parametrize("algorithm", ["zstd", "xz"])
def test_a_decompression_bomb_is_refused_at_the_cap_with_nothing_left_in_the_slot(
    tmp_path: Path, keys: Keys, ecu: Ecu, algorithm: str
) -> None:
    declared, real = 1 * _MIB, 256 * _MIB
    bundle = _bomb(tmp_path, keys, algorithm, declared, real)
    assert bundle.stat().st_size < 64 * 1024  # tiny on the wire
    result = run_cli("ota", "verify", bundle, "--trust", keys.trust, "--hardware-id", "ecu-a")
    assert result.code == 1 and f"decompresses to more than the {declared} bytes" in result.err
    with (
        _install(ecu, bundle) as agent,
        pytest.raises(LengthMismatchError, match="decompresses to more than"),
    ):
        agent.process()
    assert agent.record.state is _S.FAILED and "decompresses to more than" in (agent.record.failure or "")
    assert ecu.image("B").stat().st_size == 0  # the image file was emptied; nothing of the bomb stays
    assert not agent.incoming.exists()


@pytest.mark.parametrize("algorithm", ["zstd", "xz"])
def test_the_checker_hands_on_no_byte_past_the_signed_size(
    tmp_path: Path, keys: Keys, algorithm: str
) -> None:
    declared = 3 * _MIB + 5
    bundle = _bomb(tmp_path, keys, algorithm, declared, 64 * _MIB)
    header = read_bundle_header(bundle)
    payload = header.parse_manifest(str(bundle)).payloads[0]
    stored = bundle.read_bytes()[header.encoded_length :]

    class Counter:
        total = 0
        largest = 0

        def write(self, chunk: memoryview, /) -> None:
            Counter.total += len(chunk)
            Counter.largest = max(Counter.largest, len(chunk))

    checker = PayloadChecker(payload, label="bomb", sink=Counter())
    for start in range(0, len(stored), 4096):
        checker.feed(stored[start : start + 4096])
    with pytest.raises(LengthMismatchError, match=f"more than the {declared} bytes"):
        checker.finish()
    assert Counter.total <= declared and Counter.largest <= 1 * _MIB


def test_a_payload_that_is_no_stream_of_its_algorithm_is_refused(tmp_path: Path, keys: Keys) -> None:
    stored = b"not xz at all" * 100
    payload = Payload(
        name="rootfs.img",
        size=len(stored),
        sha256=hashlib.sha256(stored).hexdigest(),
        target=SlotImageTarget(kind="slot-image", slot="rootfs"),
        compression=PayloadCompression(algorithm="xz", size=10, sha256="0" * 64),
    )
    checker = PayloadChecker(payload, label="garbage")
    checker.feed(stored)
    with pytest.raises(CompressionFormatError, match=r"garbage.*not a valid xz stream"):
        checker.finish()
    assert issubclass(CompressionFormatError, VerificationError)


def test_a_compressed_tree_bomb_leaves_no_tree(
    tmp_path: Path, keys: Keys, payloads: dict[str, Path], ecu: Ecu
) -> None:
    """A tree whose archive decompresses past its signed size: refused, no tree below the slot root."""
    archive = payloads["tree"].read_bytes()
    stored = _compressed(archive + bytes(8 * _MIB), "zstd")  # the end-of-archive zeros go on and on
    bundle = _bomb(tmp_path, keys, "zstd", 1, 1)  # only for its keys' header shape; rebuilt below
    payload = Payload.model_validate(
        {
            "name": "app.tar",
            "size": len(stored),
            "sha256": hashlib.sha256(stored).hexdigest(),
            "target": {"kind": "file-tree", "path": "/opt/app"},
            "compression": {
                "algorithm": "zstd",
                "size": len(archive),
                "sha256": hashlib.sha256(archive).hexdigest(),
            },
        }
    )
    manifest = (
        read_bundle_header(bundle).parse_manifest(str(bundle)).model_copy(update={"payloads": [payload]})
    )
    header = BundleHeader.for_manifest(manifest)
    for signer in ("a", "e"):
        header = header.with_signature(load_private_key(keys.private(signer)))
    bundle.write_bytes(header.encode() + stored)
    with _install(ecu, bundle) as agent, pytest.raises(LengthMismatchError, match=r"app\.tar"):
        agent.process()
    assert agent.record.state is _S.FAILED
    assert sorted(path.name for path in ecu.tree_root.iterdir()) == ["A", "current"]


@pytest.mark.parametrize("algorithm", ["zstd", "xz"])
def test_the_tree_reader_refuses_a_truncated_stream_and_output_past_the_cap(algorithm: str) -> None:
    import io

    from sdv.ota.bundle.compression import DecodingReader

    content = os.urandom(300_000)
    stored = _compressed(content, algorithm)
    whole = DecodingReader(io.BytesIO(stored), algorithm, len(content), "tree", max_memory=64 * _MIB)  # type: ignore[arg-type]
    assert io.BufferedReader(whole).read() == content
    capped = DecodingReader(io.BytesIO(stored), algorithm, len(content) - 1, "tree", max_memory=64 * _MIB)  # type: ignore[arg-type]
    with pytest.raises(LengthMismatchError, match="more than the 299999 bytes"):
        io.BufferedReader(capped).read()
    if algorithm == "xz":  # a zstd frame's end is checked by the decompressed size and SHA-256 instead
        cut = DecodingReader(io.BytesIO(stored[:-40]), algorithm, len(content), "tree", max_memory=64 * _MIB)  # type: ignore[arg-type]
        with pytest.raises(CompressionFormatError, match="ends early"):
            io.BufferedReader(cut).read()


def test_sign_refuses_a_bomb_and_leaves_the_bundle_as_it_was(tmp_path: Path, keys: Keys) -> None:
    bundle = _bomb(tmp_path, keys, "zstd", 1 * _MIB, 32 * _MIB)
    before = bundle.read_bytes()
    result = run_cli("ota", "sign", bundle, "--key", keys.private("b"))
    assert result.code == 1 and "decompresses to more than" in result.err and "Traceback" not in result.err
    assert bundle.read_bytes() == before


@settings(max_examples=60, deadline=None)
@given(
    content=st.binary(max_size=200_000) | st.builds(bytes, st.integers(0, 300_000)),
    algorithm=st.sampled_from(["zstd", "xz"]),
    cuts=st.lists(st.integers(1, 70_000), max_size=12),
    piece=st.integers(1, 100_000),
)
def test_decoding_round_trips_in_any_chunking_and_never_emits_more_than_asked(
    content: bytes, algorithm: str, cuts: list[int], piece: int
) -> None:
    from sdv.ota.bundle.compression import Decoder

    stored = _compressed(content, algorithm)
    out = bytearray()
    largest = 0

    def emit(data: bytes) -> None:
        nonlocal largest
        largest = max(largest, len(data))
        out.extend(data)

    decoder = Decoder(algorithm, len(content), "round trip", emit, max_memory=64 * _MIB, piece_bytes=piece)  # type: ignore[arg-type]
    position = 0
    for cut in [*cuts, len(stored)]:
        decoder.feed(stored[position : position + cut])
        position += cut
    decoder.feed(stored[position:])
    decoder.finish()
    assert bytes(out) == content and decoder.produced == len(content)
    assert largest <= max(piece, 1)
