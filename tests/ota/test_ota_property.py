"""No single-byte change anywhere in a valid bundle verifies.

The bundle is built and signed with the CLI (an Ed25519 and an ECDSA signature, exactly the threshold) and holds
a slot image and a file tree. Hypothesis samples positions over the whole file; a second test changes every byte
of the header (magic, lengths, manifest, signature section) once, since that is where a format could be lax.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import Keys, entry, make_tar, ok
from sdv.errors import VerificationError
from sdv.ota import BundleVerifier
from sdv.ota.bundle.store import load_trust, read_bundle_header


@pytest.fixture(scope="module")
def valid_bundle(tmp_path_factory: pytest.TempPathFactory, keys: Keys) -> bytes:
    directory = tmp_path_factory.mktemp("property")
    image = directory / "fw.bin"
    image.write_bytes(bytes(range(256)) * 8)
    tree = make_tar(directory / "cfg.tar", [(entry("a.conf"), b"a=1\n"), (entry("b.conf"), b"b=2\n")])
    bundle = directory / "bundle.sdvota"
    ok(
        "ota", "build", "--name", "prop", "--version", "3.1.4", "--release-counter", "7", "--hardware-id", "ecu-a",
        "--payload", image, "--payload", tree, "-o", bundle,
    )  # fmt: skip
    ok("ota", "sign", bundle, "--key", keys.private("a"), "--key", keys.private("e"))
    return bundle.read_bytes()


@pytest.fixture(scope="module")
def verifier(keys: Keys) -> BundleVerifier:
    return BundleVerifier(
        load_trust(keys.trust).signed, hardware_id="ecu-a", installed_counter=6, trusted_now=datetime.now(UTC)
    )


def _refused(verifier: BundleVerifier, data: bytes) -> bool:
    try:
        verifier.verify_stream(io.BytesIO(data), "mutated")
    except VerificationError:
        return True
    return False


def test_the_unchanged_bundle_verifies(verifier: BundleVerifier, valid_bundle: bytes) -> None:
    assert not _refused(verifier, valid_bundle)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_no_single_byte_change_verifies(
    verifier: BundleVerifier, valid_bundle: bytes, data: st.DataObject
) -> None:
    position = data.draw(st.integers(min_value=0, max_value=len(valid_bundle) - 1), label="position")
    delta = data.draw(st.integers(min_value=1, max_value=255), label="delta")
    mutated = bytearray(valid_bundle)
    mutated[position] = (mutated[position] + delta) % 256
    assert _refused(verifier, bytes(mutated)), f"changing byte {position} by {delta} was not detected"


def test_every_header_byte_is_protected(
    verifier: BundleVerifier, valid_bundle: bytes, tmp_path: Path
) -> None:
    path = tmp_path / "b.sdvota"
    path.write_bytes(valid_bundle)
    header_length = read_bundle_header(path).encoded_length
    for position in range(header_length):
        for delta in (1, 0x20, 0x80):
            mutated = bytearray(valid_bundle)
            mutated[position] = (mutated[position] + delta) % 256
            assert _refused(verifier, bytes(mutated)), f"changing header byte {position} by {delta} verified"
