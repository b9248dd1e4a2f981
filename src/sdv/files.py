"""File helpers every layer may use: durable atomic replacement, bounded PEM reads, a certificate/key check."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from sdv.errors import FileWriteError, SecurityConfigError

__all__ = ["atomic_writer", "check_key_pair", "fsync_directory", "read_pem", "write_atomically"]

_MAX_PEM_BYTES = 1024 * 1024


def fsync_directory(directory: Path) -> None:
    """``fsync`` a directory, so that a rename or a new entry in it survives a power loss."""
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


@contextlib.contextmanager
def atomic_writer(path: Path, mode: int = 0o644) -> Iterator[BinaryIO]:
    """Write ``path`` atomically: yields a temporary file that replaces ``path`` when the block succeeds.

    The temporary file is in the same directory, flushed and ``fsync``-ed before ``os.replace``; the directory
    is ``fsync``-ed afterwards. If the block raises, the temporary file is removed and ``path`` is untouched.

    Raises:
        FileWriteError: the file cannot be created or completed (a missing folder, no permission, a full disk).
    """
    directory = path.resolve().parent
    try:
        handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed below, before the rename
            dir=directory, prefix=f".{path.name}.", suffix=".tmp", delete=False
        )
    except OSError as error:
        missing = "" if directory.is_dir() else f" (folder {directory} does not exist)"
        raise FileWriteError(f"{path}: cannot write: {error.strerror}{missing}") from error
    temporary = Path(handle.name)
    try:
        os.chmod(temporary, mode)
        yield handle  # type: ignore[misc]
        try:
            handle.flush()
            os.fsync(handle.fileno())
            handle.close()
            os.replace(temporary, path)
            fsync_directory(directory)
        except OSError as error:
            raise FileWriteError(f"{path}: cannot write: {error.strerror}") from error
    except BaseException:
        handle.close()
        temporary.unlink(missing_ok=True)
        raise


def write_atomically(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Replace ``path`` with ``data`` atomically (see :func:`atomic_writer`)."""
    with atomic_writer(path, mode) as handle:
        handle.write(data)


def read_pem(path: Path, what: str) -> bytes:
    """A PEM file of at most 1 MiB, named by the flag that gave it in errors.

    Raises:
        SecurityConfigError: unreadable, too large or not PEM.
    """
    try:
        with path.open("rb") as file:
            data = file.read(_MAX_PEM_BYTES + 1)
    except OSError as error:
        raise SecurityConfigError(f"{what} {path}: {error.strerror or error}") from error
    if len(data) > _MAX_PEM_BYTES or b"-----BEGIN" not in data:
        raise SecurityConfigError(f"{what} {path}: not a PEM file")
    return data


def check_key_pair(certificate_chain: bytes, private_key: bytes, cert_file: Path, key_file: Path) -> None:
    """Check that the first certificate of a chain is for the private key's public half, before gRPC sees them.

    gRPC reports a mismatch only when the port is bound, as a bind failure that says nothing of the files.

    Raises:
        SecurityConfigError: a file is no certificate or no unencrypted private key, or the two do not match;
            the message names both files.
    """
    from cryptography import x509  # noqa: PLC0415 - only TLS setups need it
    from cryptography.exceptions import UnsupportedAlgorithm  # noqa: PLC0415
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415

    try:
        certificate = x509.load_pem_x509_certificate(certificate_chain)
    except ValueError:
        raise SecurityConfigError(f"{cert_file}: not a PEM certificate") from None
    try:
        key = serialization.load_pem_private_key(private_key, password=None)
    except TypeError:
        raise SecurityConfigError(f"{key_file}: the private key is encrypted; give it unencrypted") from None
    except (ValueError, UnsupportedAlgorithm):
        raise SecurityConfigError(f"{key_file}: not a PEM private key") from None
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if certificate.public_key().public_bytes(*spki) != key.public_key().public_bytes(*spki):
        raise SecurityConfigError(
            f"{cert_file.name} does not match {key_file.name}: the certificate {cert_file} is for another key "
            f"than {key_file}"
        )
