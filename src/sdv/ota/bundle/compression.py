"""Compressed payloads: Zstandard (the ``zstandard`` package) and xz (the standard library's :mod:`lzma`).

A compressed payload is stored in the bundle as one zstd frame or one xz stream; its manifest entry records the
compressed ``size`` and ``sha256`` and, in ``compression``, the decompressed ones
(:class:`~sdv.ota.bundle.manifest.PayloadCompression`).

Invariants:

* decoding is push-driven and bounded: :class:`Decoder` is fed compressed chunks and hands the decompressed
  output on in pieces of at most ``piece_bytes``, however far a chunk expands, so a chunk of a decompression bomb
  never sits whole in memory;
* the decoder's window (zstd) or dictionary (xz) memory is capped by ``OtaLimits.max_decoder_memory_bytes``;
* the output is capped at the signed decompressed size: the piece that would cross it is never handed on and
  :class:`~sdv.ota.errors.LengthMismatchError` is raised instead, so no more than the signed size reaches a slot;
* :class:`DecodingReader` is the same bounded decoder as a readable stream, for the tree unpacker.
"""

from __future__ import annotations

import io
import lzma
from collections.abc import Callable
from typing import IO, Any, BinaryIO, Final, Literal, Protocol, cast

import zstandard

from sdv.ota.errors import CompressionFormatError, LengthMismatchError

__all__ = [
    "ALGORITHMS",
    "Algorithm",
    "Decoder",
    "DecodingReader",
    "Encoder",
    "new_encoder",
]

Algorithm = Literal["zstd", "xz"]
"""A payload compression algorithm."""

ALGORITHMS: Final[tuple[Algorithm, ...]] = ("zstd", "xz")
"""The algorithms a manifest may name."""

ZSTD_LEVEL: Final = 3
"""The zstd level ``sdv ota build`` compresses with (zstd's own default)."""
XZ_PRESET: Final = 6
"""The xz preset ``sdv ota build`` compresses with (xz's own default: an 8 MiB dictionary)."""

_PIECE_BYTES = 1024 * 1024
_READ_BYTES = 64 * 1024
_FORMAT_ERRORS = (lzma.LZMAError, zstandard.ZstdError, EOFError)
"""What the decoders raise for bytes that are not a valid stream."""


def _xz_decoder(max_memory: int) -> lzma.LZMADecompressor:
    return lzma.LZMADecompressor(format=lzma.FORMAT_XZ, memlimit=max_memory)


def _zstd_decoder(max_memory: int) -> zstandard.ZstdDecompressor:
    return zstandard.ZstdDecompressor(max_window_size=max_memory)


def _not_valid(label: str, algorithm: Algorithm, error: Exception) -> CompressionFormatError:
    return CompressionFormatError(f"{label}: not a valid {algorithm} stream: {error}")


def _beyond_cap(label: str, cap: int) -> LengthMismatchError:
    return LengthMismatchError(
        f"{label}: decompresses to more than the {cap} bytes the manifest declares "
        "(refused at the cap; nothing beyond it was written)"
    )


class Encoder(Protocol):
    """A streaming compressor: ``compress`` each chunk, then ``flush`` once."""

    def compress(self, data: bytes, /) -> bytes:
        """Compress the next bytes; returns what is ready of the output."""

    def flush(self) -> bytes:
        """End the frame or stream; returns the rest of the output."""


def new_encoder(algorithm: Algorithm) -> Encoder:
    """A compressor writing one zstd frame (with its checksum) or one xz stream (CRC64)."""
    if algorithm == "zstd":
        compressor: Any = zstandard.ZstdCompressor(level=ZSTD_LEVEL, write_checksum=True).compressobj()
        return compressor  # type: ignore[no-any-return]
    return lzma.LZMACompressor(format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC64, preset=XZ_PRESET)


class _Forward:
    """The file-like end zstandard's stream writer writes decompressed output into."""

    def __init__(self, emit: Callable[[bytes], None]) -> None:
        self._emit = emit

    def write(self, data: bytes) -> int:
        self._emit(bytes(data))
        return len(data)


class Decoder:
    """Decompresses one payload pushed in chunks, handing the output on in bounded pieces, up to a cap.

    Args:
        algorithm: ``zstd`` or ``xz``.
        cap: the signed decompressed size; output beyond it is refused.
        label: names the payload in messages.
        emit: receives each piece of output (at most ``piece_bytes``), in order.
        max_memory: the decoder's window or dictionary memory limit in bytes.
        piece_bytes: the largest piece handed to ``emit``.
    """

    def __init__(
        self,
        algorithm: Algorithm,
        cap: int,
        label: str,
        emit: Callable[[bytes], None],
        *,
        max_memory: int,
        piece_bytes: int = _PIECE_BYTES,
    ) -> None:
        self._algorithm = algorithm
        self._cap = cap
        self._label = label
        self._emit = emit
        self._piece = piece_bytes
        self.produced = 0
        self._xz: lzma.LZMADecompressor | None = None
        self._zstd: Any = None
        if algorithm == "xz":
            self._xz = _xz_decoder(max_memory)
        else:
            forward = cast(IO[bytes], _Forward(self._capped))
            self._zstd = _zstd_decoder(max_memory).stream_writer(forward, write_size=piece_bytes)

    def _capped(self, piece: bytes) -> None:
        if self.produced + len(piece) > self._cap:
            raise _beyond_cap(self._label, self._cap)
        self.produced += len(piece)
        if piece:
            self._emit(piece)

    def feed(self, chunk: bytes | bytearray | memoryview) -> None:
        """Decompress the next compressed bytes.

        Raises:
            LengthMismatchError: the output would exceed the cap.
            CompressionFormatError: the bytes are not a valid stream of the algorithm (or need more memory).
        """
        try:
            if self._xz is not None:
                view = memoryview(chunk).cast("B")
                # in small slices: the decoder keeps a copy of the input it has not consumed yet
                for start in range(0, len(view), _READ_BYTES):
                    self._feed_xz(self._xz, view[start : start + _READ_BYTES])
            else:
                self._zstd.write(chunk)
        except _FORMAT_ERRORS as error:
            raise _not_valid(self._label, self._algorithm, error) from error

    def _feed_xz(self, decoder: lzma.LZMADecompressor, data: bytes | memoryview) -> None:
        if decoder.eof:
            if data:
                raise CompressionFormatError(f"{self._label}: data after the end of the xz stream")
            return
        while True:
            piece = decoder.decompress(data, max_length=self._piece)
            data = b""
            self._capped(piece)
            if decoder.eof:
                if decoder.unused_data:
                    raise CompressionFormatError(f"{self._label}: data after the end of the xz stream")
                return
            if decoder.needs_input:
                return

    def finish(self) -> None:
        """Conclude once every compressed byte was fed.

        Raises:
            CompressionFormatError: an xz stream that did not end (a zstd frame's end is checked by the decompressed
                size and SHA-256 the caller compares).
        """
        if self._xz is not None and not self._xz.eof:
            raise CompressionFormatError(f"{self._label}: the xz stream ends early (truncated)")
        if self._zstd is not None:
            try:
                self._zstd.flush()
            except zstandard.ZstdError as error:
                raise _not_valid(self._label, "zstd", error) from error


class DecodingReader(io.RawIOBase):
    """A compressed payload's decompressed content as a readable stream, decoded as it is read (pull-driven, so
    one read never produces more than it asks for).

    Args:
        source: the compressed bytes, ending where the payload ends.
        algorithm: ``zstd`` or ``xz``.
        cap: the signed decompressed size (more is refused).
        label: names the payload in messages.
        max_memory: the decoder's memory limit in bytes.
    """

    def __init__(
        self, source: BinaryIO, algorithm: Algorithm, cap: int, label: str, *, max_memory: int
    ) -> None:
        self._source = source
        self._algorithm = algorithm
        self._cap = cap
        self._label = label
        self.produced = 0
        self._xz: lzma.LZMADecompressor | None = None
        self._zstd: Any = None
        if algorithm == "xz":
            self._xz = _xz_decoder(max_memory)
        else:
            self._zstd = _zstd_decoder(max_memory).stream_reader(
                source, read_size=_READ_BYTES, read_across_frames=False
            )

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        try:
            data = self._read_xz(self._xz, len(view)) if self._xz is not None else self._zstd.read(len(view))
        except _FORMAT_ERRORS as error:
            raise _not_valid(self._label, self._algorithm, error) from error
        if self.produced + len(data) > self._cap:
            raise _beyond_cap(self._label, self._cap)
        self.produced += len(data)
        view[: len(data)] = data
        return len(data)

    def _read_xz(self, decoder: lzma.LZMADecompressor, size: int) -> bytes:
        while not decoder.eof:
            data = b""
            if decoder.needs_input:
                data = self._source.read(_READ_BYTES)
                if not data:
                    raise CompressionFormatError(f"{self._label}: the xz stream ends early (truncated)")
            piece = decoder.decompress(data, max_length=size)
            if piece:
                return piece
        return b""
